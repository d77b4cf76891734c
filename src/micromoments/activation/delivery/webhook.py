"""HMAC-SHA256 signed webhooks (a Stripe-like `t=<unix>,v1=<hex>` header over `"<t>.<body>"`).

The receiver recomputes the HMAC with the shared secret and compares in constant time; the
timestamp in the signed text stops replays of an old body.

>>> body = b'{"a": 1}'
>>> header = sign("s3cret", body, timestamp=1700000000)
>>> header.startswith("t=1700000000,v1=")
True
>>> verify_signature("s3cret", body, header, now=1700000010)
True
>>> verify_signature("s3cret", b'{"a": 2}', header, now=1700000010)
False
>>> verify_signature("other", body, header, now=1700000010)
False
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from typing import Any

from micromoments.activation.delivery.base import DeliveryError, Message

SIGNATURE_HEADER = "X-Micromoments-Signature"
USER_AGENT = "micromoments-webhook/1"


def sign(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    """The signature header value for `body`."""
    t = int(time.time()) if timestamp is None else int(timestamp)
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify_signature(secret: str, body: bytes, header: str | None, *, tolerance_s: float = 300,
                     now: float | None = None) -> bool:
    """True when `header` is a valid, fresh signature of `body` with `secret`."""
    if not header:
        return False
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        t = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - t) > tolerance_s:
        return False
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", ""))


def post_signed(url: str, payload: dict[str, Any], secret: str, *, timeout: float = 5.0,
                headers: dict[str, str] | None = None) -> int:
    """POST JSON with the signature header; raise DeliveryError (retryable unless a 4xx) on failure."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str).encode()
    h = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **(headers or {})}
    if secret:
        h[SIGNATURE_HEADER] = sign(secret, body)
    req = urllib.request.Request(url, data=body, headers=h, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        # 408/429 and 5xx may pass; other 4xx will fail again the same way.
        retry = exc.code >= 500 or exc.code in (408, 425, 429)
        raise DeliveryError(f"{url} answered HTTP {exc.code}", retryable=retry) from None
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
        raise DeliveryError(f"{url}: {getattr(exc, 'reason', exc)}") from None


class WebhookDeliverer:
    """POST the decision and its rendered content as signed JSON to one URL."""

    def __init__(self, url: str, secret: str = "", *, timeout: float = 5.0):
        self.url, self.secret, self.timeout = url, secret, timeout

    def send(self, message: Message) -> str:
        post_signed(self.url, {"type": "micromoments.decision", **message.as_dict()}, self.secret,
                    timeout=self.timeout)
        return self.url
