"""Defence in depth for every response: Content-Security-Policy and the other security headers.

`SecurityHeaders` is a plain ASGI middleware that adds `HEADERS` to every HTTP response that does
not set them itself. The policy allows scripts only from this site (`/app/static/...`): no inline
script, no `javascript:` URL, no `eval`, and no framing. Styles may be inline because plotly.js
writes `<style>` rules when it draws. `/docs` (Swagger UI, only with `serve --dev`) loads its
assets from a CDN and runs one inline script, so its pages get `DOCS_CSP` instead.

>>> HEADERS["X-Content-Type-Options"], "frame-ancestors 'none'" in CSP
('nosniff', True)
>>> "'unsafe-inline'" in CSP.split("style-src")[0]  # never for scripts
False
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["CSP", "DOCS_CSP", "HEADERS", "SecurityHeaders"]

CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
       "font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
            "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
            "img-src 'self' data: https://fastapi.tiangolo.com; "
            "object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
DOCS_PATHS = ("/docs", "/redoc")

Send = Callable[[dict[str, Any]], Awaitable[None]]


class SecurityHeaders:
    """ASGI middleware: `HEADERS` on every response (a header the app set itself is kept)."""

    def __init__(self, app: Any, *, docs_paths: tuple[str, ...] = DOCS_PATHS):
        self.app = app
        self.docs_paths = docs_paths
        self._raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in HEADERS.items()]
        self._docs_raw = [(k, DOCS_CSP.encode() if k == b"content-security-policy" else v)
                          for k, v in self._raw]

    async def __call__(self, scope: dict[str, Any], receive: Callable, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        extra = self._docs_raw if scope["path"].startswith(self.docs_paths) else self._raw

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in extra if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
