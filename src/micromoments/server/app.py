"""The ASGI app of `micromoments serve`: Segment-compatible collector, /v1/decide, admin, health.

>>> import os, tempfile
>>> from micromoments.config import Config
>>> app = create_app(Config(), db_path=os.path.join(tempfile.mkdtemp(), "store.duckdb"))
>>> sorted(p for p in app.openapi()["paths"] if p.startswith("/v1/"))[:3]
['/v1/alias', '/v1/batch', '/v1/decide']

The hot path (POST /v1/track ...) is `server/endpoints.py`: it reads the body itself,
validates with `validate_event` (the batch ingest's rules), waits for the WAL's group commit
and answers with prebuilt bytes; the pydantic models in `server/models.py` only describe it
in `/openapi.json`.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import time
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from micromoments.activation.bus import EventBus, make_bus
from micromoments.activation.quarantine_log import QuarantineLog
from micromoments.activation.wal import WriteAheadLog
from micromoments.activation.lake_loader import make_loader
from micromoments.activation.wal_loader import LogSink, StoreLoader
from micromoments.config import Config
from micromoments.errors import ConfigError
from micromoments.server import models
from micromoments.server.auth import AdminTokens, RateLimiter, WriteKeys
from micromoments.server.collector import Collector, Rejected
from micromoments.server.endpoints import EVENT_TYPES, Api, FastPath, Result, check_length, dumps, read_asgi_body
from micromoments.server.openapi import complete_openapi
from micromoments.server.scale_out import NoLoader, collector_wal, live_handler, start_scale_out
from micromoments.server.security import SecurityHeaders
from micromoments.server.web import add_web_routes
from micromoments.store import Store

__all__ = ["create_app", "live_handler"]

log = logging.getLogger("micromoments.server")

_JSON = "application/json"


def _json(data: Any, status: int = 200) -> Response:
    return Response(dumps(data), status_code=status, media_type=_JSON)


def _result(result: Result) -> Response:
    status, body, headers = result
    return Response(body, status_code=status, media_type=_JSON, headers=headers)


def _error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {400: "Invalid payload (the body names the field)", 401: "Missing or unknown key",
            413: "Too large", 429: "Rate limit for this write key", 500: "A bug (logged)",
            503: "Starting, stopping, or the event log cannot be written"}
    return {c: {"model": models.Error, "description": text[c]} for c in codes}


def _body_schema(model: type, description: str) -> dict[str, Any]:
    return {"requestBody": {"required": True, "description": description, "content": {
        _JSON: {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}}


async def _body(request: Request, limit: int, what: str) -> bytes:
    check_length(request.headers.get("content-length"), limit, what)
    return await read_asgi_body(request.receive, limit, what)


ROLES = ("all", "collector", "worker")


def create_app(config: Config, *, db_path: str | Path | None = None, data_dir: str | Path | None = None,
               activator: Any = None, log_sink: LogSink | None = None, bus: EventBus | None = None,
               role: str | None = None, dev: bool = False) -> FastAPI:
    """The FastAPI app. Background parts (WAL writer, store loader, bus) start with the app's lifespan.

    `db_path` defaults to `[store] path`; the WAL lives in `data_dir/wal` when `data_dir` is
    given, else in `[server] wal_dir`. `activator` (an `activation.engine.Activator`) receives
    every accepted event through the bus and answers `/v1/decide`; its decision logs go to the
    store through `log_sink` (pass the same sink the activator was built with). `/docs` (Swagger UI,
    whose assets come from a CDN) is served only with `dev`; `/openapi.json` always is.
    """
    server = config.server
    role = role or server.role
    if role not in ROLES:
        raise ConfigError(f"unknown role {role!r}", where="[server] role", hint="use all, collector or worker")
    if role != "all" and not server.bus.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"role {role!r} needs a shared bus", where="[server] bus",
                          hint='set bus = "redis://host:6379/0" (every process of the setup uses the same one)')
    store_path = str(db_path or (config.store.lake if config.store.engine == "spark" else config.store.path))
    wal_dir = Path(data_dir) / "wal" if data_dir is not None else Path(server.wal_dir)
    admin = AdminTokens(server.admin_tokens)
    api = Api(write_keys=WriteKeys(server.write_keys), limiter=RateLimiter(server.rate_limit_per_second),
              event_limit=config.ingest.max_event_bytes, batch_limit=server.max_batch_bytes)
    api.activator = activator
    sink = log_sink if log_sink is not None else LogSink()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        if role != "all":  # `collector` / `worker`: see start_scale_out and docs/deploy.md
            parts = start_scale_out(app, api, config, role, wal_dir, store_path, activator, sink, bus,
                                     opened.pop() if opened else None)
            gc.collect()
            gc.freeze()
            try:
                yield
            finally:
                api.collector = None
                parts.close()
            return
        wal = collector_wal(wal_dir, server)
        refused = QuarantineLog(wal_dir, fsync=server.fsync)
        the_bus = bus if bus is not None else make_bus(server.bus)
        loader = make_loader(wal, store_path, config=config, interval_ms=server.flush_interval_ms, log_sink=sink,
                             store=opened.pop() if opened else None, quarantine=refused)
        if wal.recovered_segments:
            log.info("loading %d WAL segment(s) left by the last run", len(wal.recovered_segments))
        loader.start()
        if activator is not None and hasattr(activator, "on_event"):
            the_bus.subscribe(live_handler(activator.on_event, config))
        app.state.wal = wal
        app.state.bus = the_bus
        app.state.loader = loader
        app.state.collector = api.collector = Collector(
            wal, the_bus, max_event_bytes=api.event_limit,
            max_future_hours=config.ingest.max_future_skew_hours, dedupe_window=server.dedupe_window,
            min_time=config.ingest.min_time(), quarantine=refused)
        # Everything loaded so far (libraries, models, playbooks) lives as long as the process:
        # keep it out of the garbage collector's full passes, which would otherwise stall
        # requests for tens of milliseconds.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            api.collector = None  # new requests get 503 from here on
            wal.close()  # everything acknowledged is on disk; the loader takes the last segment
            drain = getattr(the_bus, "drain", None)
            if drain is not None:
                drain(timeout=10)
            the_bus.close()
            if activator is not None and hasattr(activator, "close"):
                with contextlib.suppress(Exception):
                    activator.close()
            loader.close()

    app = FastAPI(
        title="micromoments",
        version="0.1.0",
        summary="Segment-compatible collector, live decisions and admin API.",
        description=(
            "Send events as Segment does (Basic auth: the write key as user name, empty password). "
            "A 200 means the event is on disk (write-ahead log, fsync) and will reach the store. "
            "Every 4xx body is `{success: false, error, field, hint}`."
        ),
        lifespan=lifespan,
        docs_url="/docs" if dev else None,
        redoc_url=None,
    )
    app.state.api = api
    app.state.role = role
    app.state.loader = None
    app.state.shipper = None
    app.state.activator = activator
    app.state.store_path = store_path
    app.state.data_dir = str(data_dir) if data_dir is not None else None
    app.state.log_sink = sink
    app.state.config = config
    # The collector and decide routes are answered here, before FastAPI's routing; the routes
    # below describe them in /openapi.json (and serve them if the middleware is bypassed).
    app.add_middleware(FastPath, api=api)
    add_web_routes(app, server)  # and CORS for the browser-facing routes
    app.add_middleware(SecurityHeaders)  # outermost: CSP, nosniff, no framing on every response

    def add_event_route(type_: str) -> None:
        model = models.EVENT_MODELS[type_]

        async def endpoint(request: Request) -> Response:
            try:
                body = await _body(request, api.event_limit, "event")
            except Rejected as exc:
                return _result(api.reject(exc))
            return _result(await api.collect(type_, request.headers.get("authorization"), body))

        endpoint.__name__ = f"collect_{type_}"
        app.post(
            f"/v1/{type_}", tags=["collector"], summary=f"Record one {type_} event",
            description=(model.__doc__ or "") + " Answered 200 once it is durable (fsync'd write-ahead log).",
            openapi_extra=_body_schema(model, f"A Segment {type_} call (max {api.event_limit:,} bytes)."),
            responses={200: {"model": models.Success}, **_error_responses(400, 401, 413, 429, 500, 503)},
            response_class=Response,
        )(endpoint)

    for type_ in EVENT_TYPES:
        add_event_route(type_)

    @app.post("/v1/batch", tags=["collector"], summary="Record a batch of events",
              description="The good events are stored; each bad one is quarantined and named in a 200 answer "
                          "`{accepted, rejected: [{index, field, error}]}`. A 400 refuses the whole request "
                          "(not JSON, no `batch` array).",
              openapi_extra=_body_schema(models.BatchRequest, f"Segment batch (max {api.batch_limit:,} bytes)."),
              responses={200: {"model": models.Success}, **_error_responses(400, 401, 413, 429, 500, 503)},
              response_class=Response)
    async def collect_batch(request: Request) -> Response:
        try:
            body = await _body(request, api.batch_limit, "batch")
        except Rejected as exc:
            return _result(api.reject(exc))
        return _result(await api.batch(request.headers.get("authorization"), body))

    @app.post("/v1/decide", tags=["decide"], summary="Best content for this user now",
              description="For web and in-app placements. With a write key (public: a web page holds it): only "
                          "decision_id, status, content_id and the content's display fields, rate-limited per key "
                          "and address; with an admin token (Bearer): the whole decision. Every decision is logged.",
              openapi_extra=_body_schema(models.DecideRequest, "Who asks, and where they are."),
              responses={200: {"model": models.Decision}, **_error_responses(400, 401, 413, 429, 500)},
              response_class=Response)
    async def decide(request: Request) -> Response:
        try:
            body = await _body(request, api.event_limit, "request")
        except Rejected as exc:
            return _result(api.reject(exc))
        return _result(await api.decide(request.headers.get("authorization"), body))

    @app.get("/health", tags=["admin"], summary="Liveness and lag", response_model=models.Health)
    async def health(request: Request) -> Response:
        state = request.app.state
        loader: StoreLoader | None = getattr(state, "loader", None)
        pending = loader.pending_segments() if loader else 0
        lag = (time.time() - loader.last_round_at) if loader and loader.last_round_at else None
        the_bus = getattr(state, "bus", None)
        queued = the_bus.queued() if the_bus is not None and hasattr(the_bus, "queued") else 0
        shipper = getattr(state, "shipper", None)
        if loader is None and shipper is not None:  # a collector: its WAL drains to the bus, not a store
            pending = shipper.pending()
        ok = (loader is None or loader.last_error is None) and (shipper is None or shipper.errors == 0
                                                                  or shipper.pending() == 0)
        return _json({"status": "ok" if ok else "degraded", "role": state.role, "wal_pending_segments": pending,
                      "bus_queued": queued, "store_lag_seconds": lag, "activator": state.activator is not None})

    def require_admin(request: Request) -> None:
        if not admin.check(request.headers.get("authorization")):
            raise Rejected(401, "missing or unknown admin token", "Authorization",
                           hint="send Authorization: Bearer <one of [server] admin_tokens>",
                           headers={"WWW-Authenticate": 'Bearer realm="micromoments-admin"'})

    @app.get("/admin/stats", tags=["admin"], summary="Counters of the collector, WAL, loader and bus",
             response_model=models.Stats, responses=_error_responses(401))
    async def stats(request: Request) -> Response:
        try:
            require_admin(request)
        except Rejected as exc:
            return _result(api.reject(exc))
        state = request.app.state
        collector: Collector = state.collector
        wal: WriteAheadLog = state.wal
        loader: StoreLoader = state.loader
        the_bus = state.bus
        import anyio.to_thread

        in_store = await anyio.to_thread.run_sync(loader.event_count) if loader is not None else 0
        if loader is None:  # a collector (or a worker that does not own the store)
            loader = NoLoader(state.shipper)
        return _json({"role": state.role,
            "requests": api.requests, "events_accepted": collector.events_accepted,
            "duplicates": collector.duplicates, "rejected": api.rejected, "refused_events": collector.refused,
            "sources": dict(collector.by_source),
            "wal": {"appends": wal.appends, "group_commits": wal.groups, "bytes": wal.bytes_written,
                    "segment": wal.current_seq, "pending_segments": loader.pending_segments(),
                    "fsync_max_ms": round(wal.fsync_max_ms, 3), "fsyncs_over_25ms": wal.fsyncs_over_25ms,
                    "preallocated_segments": wal.spares_used,
                    "dedupe_ids": len(collector.dedupe)},
            "store": {"path": store_path, "events": in_store, "loaded": loader.loaded,
                      "duplicates": loader.duplicates, "quarantined": loader.quarantined,
                      "log_rows": loader.log_rows, "rounds": loader.rounds,
                      "last_round_seconds": round(loader.last_round_seconds, 4), "last_error": loader.last_error},
            "bus": {"kind": type(the_bus).__name__, "published": getattr(the_bus, "published", 0),
                    "delivered": getattr(the_bus, "delivered", 0), "dropped": getattr(the_bus, "dropped", 0),
                    "handler_errors": getattr(the_bus, "handler_errors", 0),
                    "queued": the_bus.queued() if hasattr(the_bus, "queued") else 0},
            "shipper": ({"shipped": state.shipper.shipped, "pending_groups": state.shipper.pending(),
                         "errors": state.shipper.errors, "last_error": state.shipper.last_error}
                        if state.shipper is not None else None),
        })

    @app.post("/admin/flush", tags=["admin"], summary="Move everything logged so far into the store now",
              response_model=models.FlushResult, responses=_error_responses(401))
    async def flush(request: Request) -> Response:
        try:
            require_admin(request)
        except Rejected as exc:
            return _result(api.reject(exc))
        import anyio.to_thread

        state = request.app.state
        if state.loader is not None:
            result = await anyio.to_thread.run_sync(state.loader.flush)
        else:  # a collector: push its WAL onto the bus now
            shipped = await anyio.to_thread.run_sync(lambda: state.shipper.ship_once(rotate=True))
            result = {"loaded": 0, "duplicates": 0, "quarantined": 0, "segments": 0, "log_rows": 0,
                      "shipped": shipped}
        return _json(result)

    @app.get("/admin/profiles/{person_id}", tags=["admin"], summary="Live profile state of one person",
             responses={200: {"content": {_JSON: {"schema": {"type": "object"}}}}, **_error_responses(401)},
             response_class=Response)
    async def profile(person_id: str, request: Request) -> Response:
        try:
            require_admin(request)
        except Rejected as exc:
            return _result(api.reject(exc))
        act = request.app.state.activator
        if act is None or not hasattr(act, "state"):
            return _json({"person_id": person_id, "activator": False})
        return _json(act.state(person_id))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        loc = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "path", "query"))
        return _result(api.reject(Rejected(400, first.get("msg", "invalid request"), loc or None)))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        return Response(orjson.dumps({"success": False, "error": str(exc.detail), "field": None}),
                        status_code=exc.status_code, media_type=_JSON, headers=getattr(exc, "headers", None))

    complete_openapi(app)
    # Create the store's tables now, before the pages (or anything else) open the same file.
    # Only the process that owns the store opens it (DuckDB has one writer): `all`, or the loader worker.
    # With engine = "spark" the loader appends to the lake and the pages (DuckDB only) are not mounted.
    owns_store = (role == "all" or (role == "worker" and server.load_store)) and config.store.engine != "spark"
    opened = [Store(store_path)] if owns_store else []
    if owns_store:
        _mount_pages(app, store_path)
    return app


def _mount_pages(app: FastAPI, store_path: str) -> None:
    try:
        from micromoments.server.pages import mount_pages
    except ModuleNotFoundError as exc:  # the web pages are not built (yet)
        if exc.name != "micromoments.server.pages":
            raise
        return
    mount_pages(app, store_path=store_path)
