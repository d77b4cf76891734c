"""What the web pages check before trusting a request: the proxies, the origin, the sign-in rate.

- `Proxies`: `X-Forwarded-For/-Proto/-Host` are read only when the peer is one of
  `[server] trusted_proxies` (addresses or networks); otherwise any client could claim https or
  another address.
- `same_origin`: a state-changing POST must come from a page of this site (Origin, else Referer),
  on top of the form's CSRF token.
- `LoginThrottle`: wrong passwords per account and per client address; past the limit the login
  answers 429 with Retry-After before any password hashing is done.

>>> p = Proxies(["10.0.0.0/8"])
>>> p.trusts("10.1.2.3"), p.trusts("203.0.113.9"), p.trusts(None)
(True, False, False)
>>> t = LoginThrottle(per_account=2, per_address=10, lockout_s=60, clock=lambda: 0.0)
>>> t.failed("ada", "1.2.3.4"); t.failed("ada", "1.2.3.4"); t.retry_after("ada", "1.2.3.4")
60
"""

from __future__ import annotations

import collections
import ipaddress
import math
import time
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["LoginThrottle", "Proxies", "same_origin"]


class Proxies:
    """The reverse proxies whose `X-Forwarded-*` headers are believed."""

    def __init__(self, trusted: Iterable[str] = ()):
        self.networks = [ipaddress.ip_network(t.strip(), strict=False) for t in trusted if t.strip()]

    def trusts(self, address: str | None) -> bool:
        if not address or not self.networks:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.networks)

    def _forwarded(self, request: Any, name: str) -> str | None:
        peer = request.client.host if request.client else None
        if not self.trusts(peer):
            return None
        value = request.headers.get(name)
        return value.split(",")[0].strip() if value else None

    def client_address(self, request: Any) -> str:
        """The client's address: the peer, or behind trusted proxies the last untrusted forwarded hop."""
        peer = request.client.host if request.client else "unknown"
        if not self.trusts(peer):
            return peer
        hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",") if h.strip()]
        for hop in reversed(hops):
            if not self.trusts(hop):
                return hop
        return hops[0] if hops else peer

    def scheme(self, request: Any) -> str:
        proto = self._forwarded(request, "x-forwarded-proto")
        return proto.lower() if proto in ("http", "https", "HTTP", "HTTPS") else request.url.scheme

    def host(self, request: Any) -> str:
        return self._forwarded(request, "x-forwarded-host") or request.headers.get("host", "")

    def origin(self, request: Any) -> str:
        """This site as the browser sees it: scheme://host[:port]."""
        return f"{self.scheme(request)}://{self.host(request)}".lower()


def same_origin(request: Any, proxies: Proxies) -> bool:
    """Whether a POST comes from a page of this site: Origin if sent, else Referer; neither (no
    browser sends neither on a form post) is let through to the CSRF-token check."""
    own = proxies.origin(request)
    origin = request.headers.get("origin")
    if origin is not None:
        return origin.lower() == own
    referer = request.headers.get("referer")
    if referer:
        parts = urllib.parse.urlsplit(referer)
        return f"{parts.scheme}://{parts.netloc}".lower() == own
    return True


class LoginThrottle:
    """Failed sign-ins in a sliding window, per account and per client address.

    After `per_account` failures for one name (or `per_address` from one address) within
    `window_s`, sign-ins for it wait `lockout_s` after the last failure, doubling with each
    further failure (at most an hour). A success clears the account's failures.
    """

    def __init__(self, *, per_account: int = 5, per_address: int = 20, window_s: float = 900.0,
                 lockout_s: float = 30.0, max_keys: int = 100_000,
                 clock: Callable[[], float] = time.monotonic):
        self.per_account = per_account
        self.per_address = per_address
        self.window_s = window_s
        self.lockout_s = lockout_s
        self.max_keys = max_keys
        self.clock = clock
        self._failures: collections.OrderedDict[str, list[float]] = collections.OrderedDict()

    def _recent(self, key: str, now: float) -> list[float]:
        times = [t for t in self._failures.get(key, ()) if now - t < self.window_s]
        if times:
            self._failures[key] = times
        else:
            self._failures.pop(key, None)
        return times

    def _wait(self, key: str, limit: int, now: float) -> float:
        times = self._recent(key, now)
        if len(times) < limit:
            return 0.0
        lockout = min(3600.0, self.lockout_s * 2 ** (len(times) - limit))
        return max(0.0, times[-1] + lockout - now)

    def retry_after(self, account: str, address: str) -> int:
        """Seconds before this account may try again from this address (0: now)."""
        now = self.clock()
        wait = max(self._wait("u:" + account.lower(), self.per_account, now),
                   self._wait("a:" + address, self.per_address, now))
        return math.ceil(wait)

    def failed(self, account: str, address: str) -> None:
        now = self.clock()
        for key in ("u:" + account.lower(), "a:" + address):
            self._failures.setdefault(key, []).append(now)
            self._failures.move_to_end(key)
        while len(self._failures) > self.max_keys:  # a flood of made-up names must not fill the memory
            self._failures.popitem(last=False)

    def succeeded(self, account: str) -> None:
        self._failures.pop("u:" + account.lower(), None)
