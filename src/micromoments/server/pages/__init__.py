"""The web app at `/app`: server-rendered pages over the store, for signed-in admins.

`mount_pages(app, store_path=...)` adds the routes to a FastAPI app (the `micromoments serve` app
calls it; tests mount it on a bare `FastAPI()`).

>>> # from fastapi import FastAPI; app = FastAPI()
>>> # mount_pages(app, store_path="micromoments.duckdb", admin_users={"ada": hash_password("s3cret")})
"""

from __future__ import annotations

import os
from typing import Any

from micromoments.server.pages.auth import Auth, hash_password, verify_password

__all__ = ["hash_password", "mount_pages", "verify_password"]


def mount_pages(app: Any, *, store_path: str, admin_users: dict[str, str] | None = None,
                config: Any | None = None, session_secret: str | None = None, warm: bool = True) -> Any:
    """Add `/app/...` (login, pages, `/app/api/...` JSON, plotly.js) to the FastAPI `app`.

    `admin_users` maps names to password hashes (`hash_password`); when None they come from
    `[server] admin_users` of `config` (or of `micromoments.toml`). The session cookies are signed
    with `session_secret`, else `$MICROMOMENTS_SESSION_SECRET`, else a random key per process.
    The analytics are computed in a background thread right away (`warm`) and cached per store
    state; the live moments page reads `app.state.activator` when the app has one.
    Returns the `AnalyticsCache` (also at `app.state.pages_cache`).
    """
    from micromoments.server.pages.analytics import AnalyticsCache
    from micromoments.server.pages.routes import build_router

    if config is None:
        config = getattr(getattr(app, "state", None), "config", None)
    if config is None:
        from micromoments.config import load_config

        config = load_config(None)
    if admin_users is None:
        admin_users = dict(getattr(getattr(config, "server", None), "admin_users", None) or {})
    auth = Auth(admin_users, secret=session_secret or os.environ.get("MICROMOMENTS_SESSION_SECRET") or None,
                trusted_proxies=list(getattr(getattr(config, "server", None), "trusted_proxies", None) or []))
    app.state.pages_auth = auth  # sessions, the login throttle and the trusted proxies
    from micromoments.server.pages import panels, views  # noqa: F401  (they register their pre-render parts)
    from micromoments.server.pages.prerender import prerender

    cache = AnalyticsCache(store_path, config, prerender=prerender)

    def get_activator() -> Any | None:
        return getattr(app.state, "activator", None)

    app.include_router(build_router(cache, auth, get_activator=get_activator))
    app.state.pages_cache = cache
    if warm:
        cache.warm()
    return cache
