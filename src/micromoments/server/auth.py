"""Write keys (Segment Basic auth), admin Bearer tokens, and per-key rate limits.

>>> keys = WriteKeys({"wk_1": "web"})
>>> keys.source_for_header("Basic d2tfMTo=")   # base64("wk_1:")
'web'
>>> keys.source_for_header("Basic bm9wZTo=") is None
True
>>> bucket = RateLimiter(rate=2.0, burst=2.0)
>>> [bucket.allow("web", now=0.0) for _ in range(3)]
[True, True, False]
"""

from __future__ import annotations

import base64
import binascii
import hmac
import time


class WriteKeys:
    """Maps a write key to its source name. Headers already seen are cached by their text."""

    def __init__(self, keys: dict[str, str]):
        self.keys = dict(keys)
        self._by_header: dict[str, str] = {}

    def source_for_key(self, key: str | None) -> str | None:
        if not key:
            return None
        # Constant-time compare against every key: a write key is a (weak) secret.
        found = None
        for known, source in self.keys.items():
            if hmac.compare_digest(known.encode(), key.encode()):
                found = source
        return found

    def source_for_header(self, header: str | None) -> str | None:
        """The source of an `Authorization: Basic base64(key:)` header, or None."""
        if not header:
            return None
        cached = self._by_header.get(header)
        if cached is not None:
            return cached
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic" or not value:
            return None
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
        source = self.source_for_key(decoded.partition(":")[0])
        if source is not None and len(self._by_header) < 10_000:
            self._by_header[header] = source
        return source


class AdminTokens:
    """Bearer tokens for the admin endpoints."""

    def __init__(self, tokens: list[str]):
        self.tokens = [t.encode() for t in tokens if t]

    def check(self, header: str | None) -> bool:
        if not header or not self.tokens:
            return False
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer":
            return False
        given = value.strip().encode()
        ok = False
        for token in self.tokens:
            ok |= hmac.compare_digest(token, given)
        return ok


class RateLimiter:
    """A token bucket per key: `rate` requests per second, bursts up to `burst`."""

    def __init__(self, rate: float, burst: float | None = None):
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else max(1.0, 2.0 * rate))
        self._buckets: dict[str, list[float]] = {}  # key -> [tokens, last time]

    def allow(self, key: str, cost: float = 1.0, now: float | None = None) -> bool:
        if self.rate <= 0:
            return True  # 0 = no limit
        now = time.monotonic() if now is None else now
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = [self.burst, now]
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens < cost:
            bucket[0] = tokens
            return False
        bucket[0] = tokens - cost
        return True

    def retry_after(self, cost: float = 1.0) -> int:
        """Seconds to wait before `cost` tokens are back, at least 1."""
        return max(1, int(cost / self.rate + 0.999)) if self.rate > 0 else 0
