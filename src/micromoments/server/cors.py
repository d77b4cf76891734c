"""CORS for the browser-facing routes: `[server] allowed_origins` may read decisions and send events.

A plain ASGI middleware in front of everything. For a request from an allowed `Origin`
to a public route (the collector, /v1/decide, the settings, /js/...) it answers the
`OPTIONS` preflight itself and adds `Access-Control-Allow-Origin` to the response.
Credentials are never allowed (no cookies cross origins: the write key in the body or
the Authorization header is the only credential). A refused preflight gets 403 without
any `Access-Control-*` header, so the browser blocks the request; admin routes and the
pages never get CORS headers.

An origin entry is exact (`https://shop.example`), `*` (any origin), or ends in `:*`
(any port of that scheme and host, for local development).

>>> allowed = OriginPolicy(["https://shop.example", "http://127.0.0.1:*"])
>>> allowed.allows("https://shop.example"), allowed.allows("http://127.0.0.1:5173"), allowed.allows("https://evil.example")
(True, True, False)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

PUBLIC_PREFIXES = ("/v1/", "/js/", "/batch", "/capture", "/e/", "/e", "/i/v0/e", "/mp/collect", "/debug/mp/collect")
ALLOWED_METHODS = "GET, POST, OPTIONS"
ALLOWED_HEADERS = frozenset({"authorization", "content-type", "content-encoding", "x-requested-with"})
MAX_AGE = "600"


class OriginPolicy:
    """Which `Origin`s the browser may call from."""

    def __init__(self, origins: list[str]):
        self.any = "*" in origins
        self.exact = {o.rstrip("/") for o in origins if o != "*" and not o.endswith(":*")}
        self.any_port = tuple(o[:-1] for o in origins if o.endswith(":*"))  # "http://127.0.0.1:"

    def __bool__(self) -> bool:
        return self.any or bool(self.exact) or bool(self.any_port)

    def allows(self, origin: str) -> bool:
        if self.any or origin in self.exact:
            return True
        for prefix in self.any_port:
            if origin.startswith(prefix) and origin[len(prefix):].isdigit():
                return True
        return False


def _public(path: str) -> bool:
    return path.startswith(PUBLIC_PREFIXES) and not path.startswith("/v1/admin")


class Cors:
    """ASGI middleware: preflights and `Access-Control-Allow-Origin` for `OriginPolicy`'s origins."""

    def __init__(self, app: Any, origins: list[str]):
        self.app = app
        self.policy = OriginPolicy(origins)

    async def __call__(self, scope: dict[str, Any], receive: Callable[[], Awaitable[dict[str, Any]]],
                       send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        if scope["type"] != "http" or scope.get("micromoments.cors"):
            return await self.app(scope, receive, send)
        scope["micromoments.cors"] = True  # `serve` puts one in front of FastPath and the app has its own
        origin = request_method = request_headers = None
        for name, value in scope["headers"]:
            if name == b"origin":
                origin = value.decode("latin-1")
            elif name == b"access-control-request-method":
                request_method = value.decode("latin-1")
            elif name == b"access-control-request-headers":
                request_headers = value.decode("latin-1")
        if origin is None or not _public(scope["path"]):
            return await self.app(scope, receive, send)
        allowed = self.policy.allows(origin)
        if scope["method"] == "OPTIONS" and request_method is not None:
            wanted = {h.strip().lower() for h in (request_headers or "").split(",") if h.strip()}
            ok = allowed and request_method.upper() in ("GET", "POST") and wanted <= ALLOWED_HEADERS
            await _preflight(send, origin if ok else None, ", ".join(sorted(wanted)))
            return None
        if not allowed:
            return await self.app(scope, receive, send)  # answered, but the browser will not read it

        async def send_with_cors(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                vary = [v for k, v in headers if k.lower() == b"vary"]
                headers = [(k, v) for k, v in headers if k.lower() != b"vary"]
                headers += [(b"access-control-allow-origin", origin.encode("latin-1")),
                            (b"vary", b", ".join([*vary, b"Origin"]))]
                message = {**message, "headers": headers}
            await send(message)

        return await self.app(scope, receive, send_with_cors)


async def _preflight(send: Callable[[dict[str, Any]], Awaitable[None]], origin: str | None, headers: str) -> None:
    if origin is None:
        body = b'{"success":false,"error":"origin not allowed","field":"Origin","hint":"add it to [server] allowed_origins"}'
        await send({"type": "http.response.start", "status": 403, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), (b"vary", b"Origin")]})
        await send({"type": "http.response.body", "body": body})
        return
    out = [(b"access-control-allow-origin", origin.encode("latin-1")),
           (b"access-control-allow-methods", ALLOWED_METHODS.encode()),
           (b"access-control-max-age", MAX_AGE.encode()), (b"vary", b"Origin"), (b"content-length", b"0")]
    if headers:
        out.append((b"access-control-allow-headers", headers.encode("latin-1")))
    await send({"type": "http.response.start", "status": 204, "headers": out})
    await send({"type": "http.response.body", "body": b""})
