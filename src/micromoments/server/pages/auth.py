"""Login for the web pages: hashed admin passwords, signed session cookies and CSRF tokens.

Passwords are stored as `scrypt$<n>$<r>$<p>$<salt>$<hash>` (stdlib `hashlib.scrypt`, base64 parts);
`pbkdf2_sha256$<iterations>$<salt>$<hash>` is accepted too. The session is an itsdangerous-signed
cookie (`mm_session`: the user name, that session's CSRF token, and a fingerprint of the user's
password hash), HttpOnly, SameSite=Lax and Secure when the request came over https. Every form
carries the CSRF token and every POST checks it. Signing out ends the session on the server (its
token is revoked until the cookie would have expired) and a new password ends every session of the
user (the fingerprint no longer matches).

>>> stored = hash_password("correct horse")
>>> verify_password("correct horse", stored), verify_password("wrong", stored)
(True, False)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

from micromoments.errors import ConfigError
from micromoments.server.pages.guard import LoginThrottle, Proxies

SESSION_COOKIE = "mm_session"
LOGIN_CSRF_COOKIE = "mm_login_csrf"
SESSION_MAX_AGE_S = 12 * 3600
# scrypt cost: ~50 ms per check on one core (slow for guessing, quick enough for a login).
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


def _b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def _unb64(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """A salted scrypt hash of `password`, as the text to put in `[server] admin_users`.

    >>> hash_password("x", salt=b"0123456789abcdef").startswith("scrypt$16384$8$1$")
    True
    """
    if not password:
        raise ValueError("the password is empty")
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P,
                            maxmem=64 * 1024 * 1024, dklen=32)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def check_hash_format(stored: str, where: str = "[server] admin_users") -> None:
    """Raise `ConfigError` if `stored` is not a hash this module can check (e.g. a plain password)."""
    parts = stored.split("$")
    ok = (parts[0] == "scrypt" and len(parts) == 6 and all(p.isdigit() for p in parts[1:4])) or (
        parts[0] == "pbkdf2_sha256" and len(parts) == 4 and parts[1].isdigit())
    if not ok:
        raise ConfigError("an admin password is not a scrypt or pbkdf2_sha256 hash", where=where,
                          hint="create it with `micromoments users add NAME` (never put a plain password there)")


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches `stored` (constant-time comparison)."""
    parts = stored.split("$")
    try:
        if parts[0] == "scrypt" and len(parts) == 6:
            n, r, p = (int(x) for x in parts[1:4])
            salt, want = _unb64(parts[4]), _unb64(parts[5])
            got = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p,
                                 maxmem=128 * n * r * p + 16 * 1024 * 1024, dklen=len(want))
        elif parts[0] == "pbkdf2_sha256" and len(parts) == 4:
            salt, want = _unb64(parts[2]), _unb64(parts[3])
            got = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, int(parts[1]), dklen=len(want))
        else:
            return False
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


# Checked against when the user name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = hash_password("not-a-real-password", salt=b"micromoments-dummy")


@dataclass
class Session:
    user: str
    csrf: str


class Auth:
    """Users, the cookie signer and the CSRF checks for one mounted app."""

    def __init__(self, users: dict[str, str], secret: str | None = None, *, trusted_proxies: list[str] | None = None,
                 throttle: LoginThrottle | None = None):
        for name, stored in users.items():
            check_hash_format(stored, where=f"[server] admin_users.{name}")
        self.users = dict(users)
        # A random secret means sessions end when the server restarts; set
        # MICROMOMENTS_SESSION_SECRET to keep them across restarts or share them between workers.
        self._secret = (secret or secrets.token_urlsafe(32)).encode()
        self.signer = URLSafeTimedSerializer(self._secret, salt="micromoments-pages")
        self.proxies = Proxies(trusted_proxies or ())
        self.throttle = throttle or LoginThrottle()
        self._revoked: dict[str, float] = {}  # session token -> when its cookie expires anyway
        self._lock = threading.Lock()

    def _fingerprint(self, user: str) -> str:
        """A keyed digest of the user's password hash: a new password invalidates older cookies."""
        stored = self.users.get(user, "")
        return hmac.new(self._secret, stored.encode(), hashlib.sha256).hexdigest()[:16]

    def authenticate(self, name: str, password: str) -> bool:
        stored = self.users.get(name)
        ok = verify_password(password, stored or _DUMMY_HASH)
        return ok and stored is not None

    def new_session(self, user: str) -> str:
        return self.signer.dumps({"u": user, "c": secrets.token_urlsafe(24), "p": self._fingerprint(user)})

    def end_session(self, session: Session) -> None:
        """Sign out: this session's cookie stops working here, even if a copy of it was kept."""
        now = time.time()
        with self._lock:
            self._revoked = {k: t for k, t in self._revoked.items() if t > now}
            self._revoked[session.csrf] = now + SESSION_MAX_AGE_S

    def set_password(self, user: str, stored: str) -> None:
        """A new password hash for `user`: every session they had ends."""
        check_hash_format(stored)
        self.users[user] = stored

    def read_session(self, cookie: str | None) -> Session | None:
        if not cookie:
            return None
        try:
            data: Any = self.signer.loads(cookie, max_age=SESSION_MAX_AGE_S)
        except BadSignature:  # also covers an expired cookie
            return None
        if not isinstance(data, dict) or data.get("u") not in self.users:
            return None  # a user removed from the config loses their session
        if not hmac.compare_digest(str(data.get("p", "")), self._fingerprint(str(data["u"]))):
            return None  # the password changed since this cookie was made
        csrf = str(data.get("c", ""))
        if not csrf or csrf in self._revoked:
            return None  # signed out
        return Session(user=str(data["u"]), csrf=csrf)

    def login_token(self) -> tuple[str, str]:
        """(token for the form, signed value for the cookie): the login form's double-submit CSRF pair."""
        token = secrets.token_urlsafe(24)
        return token, self.signer.dumps({"login": token})

    def check_login_token(self, form_token: str, cookie: str | None) -> bool:
        try:
            data: Any = self.signer.loads(cookie or "", max_age=3600)
        except BadSignature:
            return False
        return isinstance(data, dict) and hmac.compare_digest(str(data.get("login", "")), form_token or "")


def check_csrf(session: Session, token: str | None) -> bool:
    return bool(token) and hmac.compare_digest(session.csrf, token or "")


def cookie_args(request: Any, proxies: Proxies) -> dict[str, Any]:
    """Cookie flags: Secure over https (directly, or as a trusted proxy says)."""
    return dict(httponly=True, samesite="lax", secure=proxies.scheme(request) == "https", path="/app")
