"""`micromoments serve`: the collector, /v1/decide, the admin API (and the /app pages).

`--role all` (default) runs everything in one process; `--role collector` and `--role worker`
split it over processes that share a Redis bus (docs/deploy.md).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from micromoments.cli._app import CONFIG_OPTION, DB_OPTION, app, console, friendly_errors

DEV_WRITE_KEY = "dev-write-key"
DEV_ADMIN_TOKEN = "dev-admin-token"
DEV_ADMIN_USER, DEV_ADMIN_PASSWORD = "admin", "dev-admin"


def build_activator(cfg, sink):  # noqa: ANN001, ANN201 — optional capability
    """The playbooks engine, when it is installed (None otherwise)."""
    try:
        from micromoments.activation.engine import Activator
    except ModuleNotFoundError as exc:
        if exc.name != "micromoments.activation.engine":
            raise
        return None
    return Activator(cfg, log_sink=sink, scorer=load_scorer(cfg))


def load_scorer(cfg):  # noqa: ANN001, ANN201
    """The `[predict] model_path` model as a live scorer, if one was trained (None otherwise)."""
    from micromoments.predict.live import LiveScorer

    path = Path(cfg.predict.model_path)
    if not (path / "manifest.json").exists():
        return None
    return LiveScorer(path, config=cfg)


def preload_personas(activator, store_path: Path) -> int:  # noqa: ANN001
    """Give the live profiles the personas of the last `personas build`, so playbooks can target them.

    Returns how many people got one. The store is opened and closed before the server opens it.
    """
    from micromoments.personas.segments import persona_lookup
    from micromoments.store import Store

    if activator is None or not store_path.exists():
        return 0
    with Store(store_path, read_only=True) as store:
        lookup = persona_lookup(store) if store.has_table("personas") else {}
    known = {person_id: persona for person_id, persona in lookup.items() if persona is not None}
    for person_id, persona in known.items():
        activator.set_persona(person_id, persona)
    return len(known)


def warm_start_bandit(activator, store_path: Path) -> int:  # noqa: ANN001
    """Seed the content bandit with the clicks and conversions already logged in the store, so a
    restart does not forget what it learned. Returns the number of (context, content) cells."""
    from micromoments.activation.bandit import warm_start_from_store
    from micromoments.store import Store

    if activator is None or activator.bandit is None or not store_path.exists():
        return 0
    with Store(store_path, read_only=True) as store:
        return warm_start_from_store(activator.bandit, store)


@app.command()
@friendly_errors
def serve(
    host: Optional[str] = typer.Option(None, help="Interface to listen on (default: \\[server] host, 127.0.0.1)."),
    port: Optional[int] = typer.Option(None, help="Port (default: \\[server] port, 8787)."),
    dev: bool = typer.Option(False, "--dev", help=f"Use the write key '{DEV_WRITE_KEY}', admin token "
                             f"'{DEV_ADMIN_TOKEN}' and page login {DEV_ADMIN_USER}/{DEV_ADMIN_PASSWORD} "
                             "when none are configured."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Keep the write-ahead log in DIR/wal "
                                            "(default: \\[server] wal_dir)."),
    no_activator: bool = typer.Option(False, "--no-activator", help="Collect only: no playbooks, /v1/decide "
                                      "answers status no_activator."),
    role: Optional[str] = typer.Option(None, "--role", help="all (one process, the default: \\[server] role), "
                                       "collector (validate, WAL, ship to the bus) or worker (also playbooks, "
                                       "live state and the store). collector/worker need \\[server] bus = redis://..."),
    bus: Optional[str] = typer.Option(None, "--bus", help="Override \\[server] bus, e.g. redis://127.0.0.1:6379/0."),
    worker_index: Optional[int] = typer.Option(None, "--worker-index", help="This worker's person partition."),
    worker_count: Optional[int] = typer.Option(None, "--worker-count", help="How many workers split the people."),
    no_loader: bool = typer.Option(False, "--no-loader", help="Worker: do not own the store (another worker does)."),
    engine: Optional[str] = typer.Option(None, "--engine", help="duckdb or spark: where the loader writes (default: "
                                         "\\[store] engine); spark appends Parquet to the lake (--db or \\[store] lake)."),
    log_level: str = typer.Option("warning", help="uvicorn log level."),
    db: Optional[Path] = DB_OPTION,
    config_path: Optional[Path] = CONFIG_OPTION,
) -> None:
    """Start the Segment-compatible collector and live activation API (FastAPI + uvicorn)."""
    import uvicorn

    from micromoments.activation.wal_loader import LogSink
    from micromoments.activation.wal import check_sync_interval
    from micromoments.config import load_config
    from micromoments.errors import ConfigError
    from micromoments.server.app import create_app
    from micromoments.server.cors import Cors
    from micromoments.server.endpoints import FastPath

    from micromoments.config import set_engine_override

    if engine is not None:
        set_engine_override(engine)
    cfg = load_config(config_path)
    server = cfg.server
    if role is not None:
        server.role = role
    if bus is not None:
        server.bus = bus
    if worker_index is not None:
        server.worker_index = worker_index
    if worker_count is not None:
        server.worker_count = worker_count
    if no_loader:
        server.load_store = False
    if server.role not in ("all", "collector", "worker"):
        raise ConfigError(f"unknown role {server.role!r}", where="--role", hint="use all, collector or worker")
    if not 0 <= server.worker_index < max(1, server.worker_count):
        raise ConfigError(f"worker index {server.worker_index} is not in 0..{server.worker_count - 1}",
                          where="--worker-index", hint="number the workers 0 .. worker_count-1")
    # Here, not at the server's start-up, so the CLI prints one line instead of a traceback.
    check_sync_interval(server.fsync_interval_ms, f"{cfg.source_path or 'micromoments.toml'}: [server] fsync_interval_ms")
    if dev:
        server.write_keys = server.write_keys or {DEV_WRITE_KEY: "dev"}
        server.admin_tokens = server.admin_tokens or [DEV_ADMIN_TOKEN]
        server.allowed_origins = server.allowed_origins or ["http://127.0.0.1:*", "http://localhost:*"]
        server.demo_page = True
        bundle = Path("node_modules/@segment/analytics-next/dist/umd")
        if not server.analytics_next_dir and (bundle / "index.js").exists():  # `npm install @segment/analytics-next`
            server.analytics_next_dir = str(bundle)
        if not server.admin_users:  # so the /app pages can be opened at once
            from micromoments.server.pages.auth import hash_password

            server.admin_users = {DEV_ADMIN_USER: hash_password(DEV_ADMIN_PASSWORD)}
    if not server.write_keys:
        raise ConfigError("no write keys configured", where=cfg.source_path or "micromoments.toml",
                          hint='set write_keys = {"<key>" = "<source name>"} in the server section, or run with --dev')
    sink = LogSink()
    activator = None if no_activator else build_activator(cfg, sink)
    # A collector reads profiles from the shared snapshots; only workers (and `all`) hold them.
    # Both read the DuckDB store; on Spark the lake has no personas table the live profiles could use yet.
    duck = server.role != "collector" and cfg.store.engine != "spark"
    with_persona = preload_personas(activator, Path(db or cfg.store.path)) if duck else 0
    learned = warm_start_bandit(activator, Path(db or cfg.store.path)) if duck else 0
    application = create_app(cfg, db_path=db, data_dir=data_dir, activator=activator, log_sink=sink, dev=dev)
    host = host or server.host
    port = port or server.port
    console.print(f"micromoments serving on http://{host}:{port}  (role {server.role}, "
                  f"store {application.state.store_path if server.role == 'all' or (server.role == 'worker' and server.load_store) else '-'}, "
                  f"activator {'on' if activator is not None else 'off'}, {with_persona:,} people with a persona, "
                  f"{learned:,} content cells learned from the logs)")
    if dev:
        console.print(f"  dev write key: {next(iter(server.write_keys))}   admin token: {server.admin_tokens[0]}")
        if DEV_ADMIN_USER in server.admin_users and cfg.store.engine != "spark":  # the pages read DuckDB only
            console.print(f"  pages: http://{host}:{port}/app  (user {DEV_ADMIN_USER}, password {DEV_ADMIN_PASSWORD})")
        console.print(f"  demo shop page: http://{host}:{port}/demo")
    try:
        import uvloop  # noqa: F401
        loop = "uvloop"
    except ModuleNotFoundError:
        loop = "asyncio"
    try:
        import httptools  # noqa: F401
        http = "httptools"
    except ModuleNotFoundError:
        http = "h11"
    # Background threads (WAL writer, store loader, bus) share the GIL with the event loop:
    # a shorter switch interval keeps a request from waiting 5 ms behind them.
    sys.setswitchinterval(0.001)
    # The collector routes are answered in front of FastAPI (its telemetry and middleware
    # layers cost more than the rest of an event request); everything else passes through.
    asgi = Cors(FastPath(application, application.state.api), server.allowed_origins)
    uvicorn.run(asgi, host=host, port=port, loop=loop, http=http, log_level=log_level,
                access_log=False, proxy_headers=False, timeout_graceful_shutdown=10)
