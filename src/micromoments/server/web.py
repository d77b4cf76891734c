"""What a website loads from `micromoments serve`: the script, Analytics Next's settings, the demo shop.

- `GET /js/micromoments.js`: the in-page script (docs/web.md), static and dependency-free.
- `GET /v1/projects/{writeKey}/settings`: what Analytics Next fetches from its CDN host first;
  it points the Segment.io integration's `apiHost` back at this server.
- `GET /js/analytics-next/{file}`: a local copy of Analytics Next's bundle when
  `[server] analytics_next_dir` names one (nothing is fetched from a CDN).
- `GET /demo`, `/demo/product`, `/demo/store`: the demo shop page (`[server] demo_page`,
  on with `serve --dev`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

from micromoments.config import ServerConfig
from micromoments.server.auth import AdminTokens, RateLimiter, WriteKeys
from micromoments.server.cors import Cors
from micromoments.server.endpoints import Api
from micromoments.server.pages.guard import Proxies
from micromoments.server.wire import ROUTES as WIRE_ROUTES

STATIC = Path(__file__).with_name("static")
_JS = "text/javascript; charset=utf-8"
_TYPES = {".js": _JS, ".map": "application/json", ".json": "application/json"}
_CACHE = "public, max-age=300"


def configure_api(api: Api, server: ServerConfig, admin: AdminTokens) -> None:
    """Give `api` the keys of the other wire formats and the page limits of /v1/decide."""
    api.posthog_keys = WriteKeys(server.posthog_keys)
    api.ga4_secrets = WriteKeys(server.ga4_api_secrets)
    api.wire_routes = dict(WIRE_ROUTES)
    api.admin = admin
    api.decide_limiter = RateLimiter(server.decide_rate_limit_per_second)
    proxies = Proxies(server.trusted_proxies)
    if proxies.networks:  # behind trusted proxies the page's address is in X-Forwarded-For
        api.client_of = lambda scope: proxies.client_address(Request(scope))


def settings_body(write_key: str, api_host: str, protocol: str) -> dict[str, Any]:
    """The project settings Analytics Next expects, sending everything to `api_host` (host[:port]/v1).

    >>> settings_body("wk", "127.0.0.1:8787/v1", "http")["integrations"]["Segment.io"]["apiHost"]
    '127.0.0.1:8787/v1'
    """
    return {
        "integrations": {"Segment.io": {"apiKey": write_key, "apiHost": api_host, "protocol": protocol,
                                        "unbundledIntegrations": [], "addBundledMetadata": True,
                                        "maybeBundledConfigIds": {}}},
        "plan": {"track": {"__default": {"enabled": True, "integrations": {}}},
                 "identify": {"__default": {"enabled": True}}, "group": {"__default": {"enabled": True}}},
        "edgeFunction": {}, "analyticsNextEnabled": True, "middlewareSettings": {}, "enabledMiddleware": {},
        "metrics": {"sampleRate": 0}, "legacyVideoPluginsEnabled": False, "remotePlugins": [],
        "consentSettings": {"allCategories": [], "hasUnmappedDestinations": False},
    }


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def _not_found(what: str) -> Response:
    return _json({"success": False, "error": f"{what} not found", "field": None}, 404)


def add_web_routes(app: FastAPI, server: ServerConfig) -> None:
    """Configure `app.state.api` (`configure_api`), add CORS, and register the script, settings,
    Analytics Next and demo routes on `app`."""
    configure_api(app.state.api, server, AdminTokens(server.admin_tokens))
    app.add_middleware(Cors, origins=server.allowed_origins)
    analytics_next = Path(server.analytics_next_dir).resolve() if server.analytics_next_dir else None
    proxies = Proxies(server.trusted_proxies)

    @app.get("/v1/projects/{write_key}/settings", tags=["web"], summary="Analytics Next project settings",
             response_class=Response)
    async def project_settings(write_key: str, request: Request) -> Response:
        if request.app.state.api.write_keys.source_for_key(write_key) is None:
            return _not_found("write key")
        # As the browser sees this server (behind a trusted TLS proxy: https and the public host).
        host = proxies.host(request) or f"{server.host}:{server.port}"
        return _json(settings_body(write_key, f"{host}/v1", proxies.scheme(request)))

    @app.get("/js/micromoments.js", tags=["web"], summary="The in-page script (docs/web.md)",
             response_class=Response)
    async def script() -> Response:
        return Response((STATIC / "micromoments.js").read_bytes(), media_type=_JS,
                        headers={"Cache-Control": _CACHE})

    # Analytics Next loads its own chunks from `<cdnURL>/analytics-next/bundles/`.
    @app.get("/analytics-next/bundles/{name:path}", include_in_schema=False, response_class=Response)
    @app.get("/js/analytics-next/{name:path}", tags=["web"], summary="Analytics Next's bundle, when configured",
             response_class=Response)
    async def analytics_next_file(name: str) -> Response:
        if analytics_next is None:
            return _not_found("analytics-next (set [server] analytics_next_dir)")
        path = (analytics_next / name).resolve()
        if analytics_next not in path.parents or not path.is_file() or path.suffix not in _TYPES:
            return _not_found(name)
        return Response(path.read_bytes(), media_type=_TYPES[path.suffix], headers={"Cache-Control": _CACHE})

    if server.demo_page:
        from micromoments.server.demo_page import add_demo_routes

        add_demo_routes(app, server, analytics_next=analytics_next is not None)
