"""The `/app` routes: login, the pages, their JSON endpoints and the static files (plotly.js from the
installed `plotly` package, so the pages work offline).

Every page needs a signed-in admin (anonymous requests are redirected to `/app/login`, API calls
get 401); every POST checks the CSRF token of the session. Each response carries a
`Server-Timing: app;dur=<ms>` header, which `benchmarks/pages.py` reads.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from micromoments.errors import MicromomentsError
from micromoments.frames import blank_missing, records
from micromoments.journey.conversion import window_days_of
from micromoments.report.markup import rich
from micromoments.server.pages import views
from micromoments.server.pages.analytics import AnalyticsCache, Snapshot
from micromoments.server.pages.quick import QUICK_PAGES, progress, quick_snapshot
from micromoments.server.pages.auth import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    Auth,
    Session,
    check_csrf,
    cookie_args,
)
from micromoments.server.pages.guard import same_origin
from micromoments.server.security import HEADERS

HERE = Path(__file__).parent
log = logging.getLogger(__name__)
NAV = (("overview", "/app", "Overview"), ("live", "/app/live", "Live moments"), ("journey", "/app/journey", "Journey"),
       ("questions", "/app/questions", "Questions & keywords"), ("search", "/app/search", "Search"),
       ("personas", "/app/personas", "Personas"), ("playbooks", "/app/playbooks", "Playbooks & content"),
       ("experiments", "/app/experiments", "Experiments"))
SECURITY_HEADERS = HEADERS  # also when the pages are mounted on an app without `SecurityHeaders`


class TimedRoute(APIRoute):
    """Adds `Server-Timing` and the security headers to every response of the router."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def timed(request: Request) -> Response:
            started = time.perf_counter()
            response = await handler(request)
            response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
            for k, v in SECURITY_HEADERS.items():
                response.headers.setdefault(k, v)
            if response.media_type in ("text/html", "application/json"):
                response.headers.setdefault("Cache-Control", "no-store")
            return response

        return timed


def _safe_next(target: str | None) -> str:
    """Only a path of this site under /app: a login must never bounce to another site.

    >>> _safe_next("/app/journey?x=1"), _safe_next("//evil.example/app"), _safe_next(chr(92).join(["/app", "@evil"])), _safe_next("/apple")
    ('/app/journey?x=1', '/app', '/app', '/app')
    """
    if not target or not (target == "/app" or target.startswith(("/app/", "/app?"))):
        return "/app"
    if "\\" in target or "//" in target or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in target):
        return "/app"
    return target


MAX_FORM_BYTES = 64 * 1024  # the largest form: 200 keyword lines
_PASSWORD_CHECKS = threading.Semaphore(1)


def _checked_one_at_a_time(auth: Auth, name: str, password: str) -> bool:
    with _PASSWORD_CHECKS:
        return auth.authenticate(name, password)


def build_router(cache: AnalyticsCache, auth: Auth, *, get_activator: Callable[[], Any],
                 workspace: str | None = None) -> APIRouter:
    # Our templates end in .html.j2, which Jinja's default selection would not escape: escape everything.
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(HERE / "templates")), autoescape=True,
                             finalize=blank_missing)  # never "None"/"nan" on a page
    env.filters["rich"] = rich
    env.filters["urlpart"] = lambda v: urllib.parse.quote(str(v), safe="")  # one path segment: "/" too
    templates = Jinja2Templates(env=env)
    templates.env.globals.update(pct=views.pct, moment_name=views.charts.moment_name,
                                 duration=views.charts.duration)
    router = APIRouter(prefix="/app", route_class=TimedRoute)

    # -- helpers -----------------------------------------------------------------------------
    def session_of(request: Request) -> Session | None:
        return auth.read_session(request.cookies.get(SESSION_COOKIE))

    def require_page(request: Request) -> Session:
        s = session_of(request)
        if s is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise HTTPException(status_code=303, detail="login required",
                                headers={"Location": "/app/login?next=" + urllib.parse.quote(target, safe="")})
        return s

    def require_api(request: Request) -> Session:
        s = session_of(request)
        if s is None:
            raise HTTPException(status_code=401, detail="login required: sign in at /app/login")
        return s

    def snapshot_or_none() -> Snapshot | None:
        return cache.ready()

    def page(request: Request, session: Session, name: str, active: str, **context: Any) -> HTMLResponse:
        snap = snapshot_or_none()
        if snap is None and active in QUICK_PAGES:  # these read small tables: no need to wait
            snap = quick_snapshot(cache)
        if snap is None:
            return templates.TemplateResponse(request, "computing.html.j2", dict(
                user=session.user, csrf=session.csrf, nav=NAV, active=active, workspace=workspace,
                error=cache.last_error, progress=progress(cache)), status_code=503, headers={"Retry-After": "3"})
        ctx = dict(user=session.user, csrf=session.csrf, nav=NAV, active=active, snap=snap, workspace=workspace,
                   kpis_all=snap.report.kpis, computed_seconds=snap.seconds)
        try:
            ctx.update(context.pop("build", lambda s: {})(snap))
        except Exception as exc:  # this page's panels failed: say so, keep the navigation and other pages
            log.exception("the %s page failed", active)
            snap.panel_errors[f"page-{active}"] = f"{type(exc).__name__}: {exc}"[:300]
            return templates.TemplateResponse(request, "failed.html.j2", dict(
                user=session.user, csrf=session.csrf, nav=NAV, active=active, workspace=workspace,
                error=f"This page could not be computed ({type(exc).__name__}); the other pages are unaffected."))
        ctx.update(context)
        return templates.TemplateResponse(request, name, ctx)

    async def form_of(request: Request) -> dict[str, str]:
        """The urlencoded form (no multipart parser needed), from a page of this site, at most
        `MAX_FORM_BYTES`; else 403 or 413."""
        if not same_origin(request, auth.proxies):
            raise HTTPException(status_code=403, detail="the form was posted from another site")
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > MAX_FORM_BYTES:
            raise HTTPException(status_code=413, detail=f"a form is at most {MAX_FORM_BYTES:,} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_FORM_BYTES:
                raise HTTPException(status_code=413, detail=f"a form is at most {MAX_FORM_BYTES:,} bytes")
            chunks.append(chunk)
        body = b"".join(chunks).decode("utf-8", errors="replace")
        return {k: v[-1] for k, v in urllib.parse.parse_qs(body, keep_blank_values=True).items()}

    async def checked_form(request: Request) -> tuple[Session, dict[str, str]]:
        s = session_of(request)
        if s is None:
            raise HTTPException(status_code=303, detail="login required", headers={"Location": "/app/login"})
        form = await form_of(request)
        if not check_csrf(s, form.get("csrf_token")):
            raise HTTPException(status_code=403, detail="the form's CSRF token is missing or stale: reload the page")
        return s, form

    # -- static ------------------------------------------------------------------------------
    @router.get("/static/plotly.min.js", include_in_schema=False)
    def plotly_js() -> FileResponse:
        import plotly

        path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
        return FileResponse(path, media_type="text/javascript",
                            headers={"Cache-Control": "public, max-age=86400", "X-Plotly-Version": plotly.__version__})

    @router.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> FileResponse:
        path = HERE / "static" / name
        if "/" in name or not path.is_file():
            raise HTTPException(404, "no such file")
        kind = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}.get(
            path.suffix, "application/octet-stream")
        return FileResponse(path, media_type=kind, headers={"Cache-Control": "public, max-age=3600"})

    # -- login -------------------------------------------------------------------------------
    @router.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_form(request: Request, next: str = "/app", error: str = "") -> HTMLResponse:
        token, cookie = auth.login_token()
        resp = templates.TemplateResponse(request, "login.html.j2", dict(
            csrf=token, next=_safe_next(next), error=error, no_users=not auth.users, workspace=workspace))
        resp.set_cookie(LOGIN_CSRF_COOKIE, cookie, max_age=3600, **cookie_args(request, auth.proxies))
        return resp

    @router.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        form = await form_of(request)
        target = _safe_next(form.get("next"))
        if not auth.check_login_token(form.get("csrf_token", ""), request.cookies.get(LOGIN_CSRF_COOKIE)):
            return RedirectResponse("/app/login?error=expired&next=" + urllib.parse.quote(target), status_code=303)
        name, password = form.get("username", "").strip()[:200], form.get("password", "")
        address = auth.proxies.client_address(request)
        wait = auth.throttle.retry_after(name, address)
        if wait:  # before any hashing: a flood of guesses costs no scrypt time
            token, cookie = auth.login_token()
            resp = templates.TemplateResponse(request, "login.html.j2", dict(
                csrf=token, next=target, error="throttled", retry_after=wait, no_users=not auth.users,
                workspace=workspace), status_code=429, headers={"Retry-After": str(wait)})
            resp.set_cookie(LOGIN_CSRF_COOKIE, cookie, max_age=3600, **cookie_args(request, auth.proxies))
            return resp
        # One password check at a time: guesses from many addresses cannot take every core.
        ok = await run_in_threadpool(_checked_one_at_a_time, auth, name, password)
        if not ok:
            auth.throttle.failed(name, address)
            return RedirectResponse("/app/login?error=bad&next=" + urllib.parse.quote(target), status_code=303)
        auth.throttle.succeeded(name)
        resp = RedirectResponse(target, status_code=303)
        resp.set_cookie(SESSION_COOKIE, auth.new_session(name), max_age=12 * 3600,
                        **cookie_args(request, auth.proxies))
        resp.delete_cookie(LOGIN_CSRF_COOKIE, path="/app")
        return resp

    @router.post("/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        session, _ = await checked_form(request)
        auth.end_session(session)  # a copy of the cookie kept elsewhere stops working too
        resp = RedirectResponse("/app/login", status_code=303)
        resp.delete_cookie(SESSION_COOKIE, path="/app")
        return resp

    # -- pages -------------------------------------------------------------------------------
    @router.get("", response_class=HTMLResponse, include_in_schema=False)
    @router.get("/", response_class=HTMLResponse, include_in_schema=False)
    def overview(request: Request, period: str = "7d") -> HTMLResponse:
        s = require_page(request)
        return page(request, s, "overview.html.j2", "overview",
                    build=lambda snap: {"o": views.overview(snap, period) if snap.has_events else None})

    @router.get("/live", response_class=HTMLResponse, include_in_schema=False)
    def live(request: Request) -> HTMLResponse:
        s = require_page(request)
        return page(request, s, "live.html.j2", "live",
                    build=lambda snap: {"channels": views.channels(snap), "moments": views.MOMENTS,
                                        "live_source": "live" if get_activator() is not None else "store"})

    @router.get("/journey", response_class=HTMLResponse, include_in_schema=False)
    def journey(request: Request) -> HTMLResponse:
        s = require_page(request)
        return page(request, s, "journey.html.j2", "journey",
                    build=lambda snap: {"j": views.journey(snap) if snap.has_events else None})

    @router.get("/journey/examples", response_class=HTMLResponse, include_in_schema=False)
    def journey_examples(request: Request, path: str = "", stage: str = "", moment: str = "",
                         persona: str = "") -> HTMLResponse:
        s = require_page(request)
        return page(request, s, "examples.html.j2", "journey", path=path, stage=stage, moment=moment, persona=persona,
                    build=lambda snap: {"ex": views.examples(snap, path=path or None, stage=stage or None,
                                                             moment=moment or None, persona=persona or None)})

    @router.get("/people/{person_id}", response_class=HTMLResponse, include_in_schema=False)
    def person(request: Request, person_id: str) -> HTMLResponse:
        s = require_page(request)
        resp = page(request, s, "person.html.j2", "journey",
                    build=lambda snap: {"p": views.person(snap, person_id)}, person_id=person_id)
        return resp

    @router.get("/questions", response_class=HTMLResponse, include_in_schema=False)
    def questions(request: Request) -> HTMLResponse:
        s = require_page(request)
        return page(request, s, "questions.html.j2", "questions",
                    build=lambda snap: {"q": views.questions(snap) if snap.has_events else {}})

    @router.post("/questions/keywords", response_class=HTMLResponse, include_in_schema=False)
    async def classify_keywords(request: Request) -> HTMLResponse:
        s, form = await checked_form(request)
        lines = [ln.strip() for ln in form.get("keywords", "").splitlines() if ln.strip()][:200]
        # A line with no letter or digit (emoji, punctuation) says nothing to classify.
        words = [ln for ln in lines if any(ch.isalnum() for ch in ln)]

        def run() -> dict[str, Any]:
            if not words:
                return {"kw_error": "paste at least one keyword (with letters or digits), one a line"}
            import pandas as pd

            from micromoments.journey.keywords import keyword_research

            try:
                res = keyword_research(pd.DataFrame({"keyword": words}), max_topics=8)
            except MicromomentsError as exc:
                return {"kw_error": str(exc)}
            except Exception as exc:  # a bug in the analysis must not cost the page
                log.exception("classifying %d keywords failed", len(words))
                return {"kw_error": f"these keywords could not be classified ({type(exc).__name__})"}
            return {"kw_result": records(res)}

        extra = await run_in_threadpool(run)
        return await run_in_threadpool(lambda: page(
            request, s, "questions.html.j2", "questions", kw_text="\n".join(lines), **extra,
            build=lambda snap: {"q": views.questions(snap) if snap.has_events else {}}))

    @router.get("/search", response_class=HTMLResponse, include_in_schema=False)
    def search(request: Request) -> HTMLResponse:
        s = require_page(request)
        from micromoments.server.pages import search as search_page

        return page(request, s, "search.html.j2", "search",
                    build=lambda snap: {"s": search_page.search(snap, cache.config)})

    @router.get("/personas", response_class=HTMLResponse, include_in_schema=False)
    def personas(request: Request) -> HTMLResponse:
        s = require_page(request)
        from micromoments.server.pages import panels

        return page(request, s, "personas.html.j2", "personas", build=lambda snap: {"pp": panels.personas(snap)})

    @router.get("/playbooks", response_class=HTMLResponse, include_in_schema=False)
    def playbooks(request: Request, msg: str = "") -> HTMLResponse:
        s = require_page(request)
        from micromoments.server.pages import panels

        return page(request, s, "playbooks.html.j2", "playbooks", msg=msg,
                    build=lambda snap: {"pb": panels.playbooks(snap, get_activator(), cache.config)})

    @router.post("/playbooks/toggle", include_in_schema=False)
    async def toggle_playbook(request: Request) -> Response:
        _, form = await checked_form(request)
        from micromoments.server.pages import panels

        name, enable = form.get("name", ""), form.get("enabled") == "1"
        try:
            msg = await run_in_threadpool(panels.set_playbook_enabled, name, enable, get_activator(), cache.config)
        except MicromomentsError as exc:
            msg = f"error: {exc}"
        return RedirectResponse("/app/playbooks?msg=" + urllib.parse.quote(msg), status_code=303)

    @router.get("/experiments", response_class=HTMLResponse, include_in_schema=False)
    def experiments(request: Request) -> HTMLResponse:
        s = require_page(request)
        from micromoments.server.pages import panels

        return page(request, s, "experiments.html.j2", "experiments",
                    build=lambda snap: {"ex": panels.experiments(snap, cache.config)})

    # -- JSON --------------------------------------------------------------------------------
    def api_snapshot() -> Snapshot:
        snap = snapshot_or_none()
        if snap is None:
            raise HTTPException(503, "the analytics are still being computed; retry in a few seconds",
                                headers={"Retry-After": "3"})
        return snap

    @router.get("/api/status")
    def status(request: Request) -> dict[str, Any]:
        require_api(request)
        snap = cache._snap
        return {"ready": snap is not None, "error": cache.last_error,
                "failed_panels": {} if snap is None else {**{f"report-{k}": v for k, v in snap.report.errors.items()},
                                                          **snap.panel_errors},
                "computed_seconds": None if snap is None else round(snap.seconds, 2),
                "signature": None if snap is None else dict(snap.signature)}

    @router.get("/api/moments")
    def moments(request: Request, type: str = "", channel: str = "", limit: int = 100) -> dict[str, Any]:
        require_api(request)
        snap = snapshot_or_none() or quick_snapshot(cache)  # the live page opens before the analytics
        return views.live_moments(snap, get_activator(), type or None, channel or None, max(1, min(limit, 500)))

    @router.get("/api/funnel")
    def funnel_api(request: Request, steps: str = "", step: list[str] | None = Query(None), mode: str = "ordered",
                   window_days: float | None = None, breakdown: str = "") -> JSONResponse:
        """A funnel over the stored events: `steps=A,B,C` (or repeated `step=`), `mode` ordered /
        strict / unordered, `window_days` from the first step, optional `breakdown` column."""
        require_api(request)
        snap = api_snapshot()
        chosen = [x for x in (step or []) if x] or [x.strip() for x in steps.split(",") if x.strip()]
        try:
            days = window_days if window_days is not None else window_days_of(cache.config)  # the configured window
            out = views.funnel_result(snap, chosen, mode, days, breakdown or None)
        except MicromomentsError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(out)

    return router
