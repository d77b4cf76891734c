"""`/openapi.json` completed: the request models the collector routes reference, and the security
schemes every operation uses (write key, admin token, page session).

The collector routes describe their bodies with `openapi_extra` (they read the body themselves),
so their models are added to `components.schemas` here; each operation then names the scheme
that guards it, so a client generator or a fuzzer (schemathesis) knows how to authenticate.

>>> from fastapi import FastAPI
>>> app = FastAPI(); complete_openapi(app)
>>> sorted(app.openapi()["components"]["securitySchemes"])
['adminToken', 'pageSession', 'writeKey']
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from micromoments.server import models

__all__ = ["SECURITY_SCHEMES", "complete_openapi"]

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "writeKey": {"type": "http", "scheme": "basic",
                 "description": "Segment style: the source's write key as user name, empty password. "
                                "Write keys ship in browsers and apps: treat them as public."},
    "adminToken": {"type": "http", "scheme": "bearer", "description": "One of `[server] admin_tokens`."},
    "pageSession": {"type": "apiKey", "in": "cookie", "name": "mm_session",
                    "description": "The session cookie of a signed-in web user (`/app/login`)."},
}


def _scheme_of(path: str) -> str | None:
    if path.startswith("/v1/projects/"):  # Analytics Next's settings: the write key is in the path
        return None
    if path.startswith("/v1/"):
        return "writeKey"
    if path.startswith("/admin/"):
        return "adminToken"
    if path.startswith("/app/api/"):
        return "pageSession"
    return None  # /health is public


def complete_openapi(app: FastAPI) -> None:
    """Make `app.openapi()` add the collector's request models and the security schemes."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        comps = schema.setdefault("components", {})
        schemas = comps.setdefault("schemas", {})
        for model in (*models.EVENT_MODELS.values(), models.BatchRequest, models.DecideRequest):
            js = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, sub in js.pop("$defs", {}).items():
                schemas.setdefault(name, sub)
            schemas[model.__name__] = js
        comps["securitySchemes"] = SECURITY_SCHEMES
        for path, operations in schema.get("paths", {}).items():
            scheme = _scheme_of(path)
            for op in operations.values():
                if isinstance(op, dict):
                    op["security"] = [{scheme: []}] if scheme else []
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
