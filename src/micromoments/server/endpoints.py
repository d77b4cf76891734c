"""The request logic of the collector and /v1/decide, apart from the web framework.

`Api` turns (Authorization header, body bytes) into (status, body bytes, headers). Two
front doors call it: the FastAPI routes (which document the API in `/openapi.json`) and
`FastPath`, a plain ASGI middleware that answers `POST /v1/track ...` before FastAPI's
routing, request and response objects are built: that cut the CPU per event request by
about half in `benchmarks/serve.py`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from micromoments.errors import MicromomentsError
from micromoments.events.model import EVENT_TYPES
from micromoments.server.auth import AdminTokens, RateLimiter, WriteKeys
from micromoments.server.collector import Collector, Rejected, gc_paused, received_now
from micromoments.server.decoding import decode_body

log = logging.getLogger("micromoments.server")

SUCCESS = b'{"success":true}'
Result = tuple[int, bytes, dict[str, str] | None]
Receive = Callable[[], Awaitable[dict[str, Any]]]


def _default(value: Any) -> Any:
    import dataclasses
    import datetime as dt

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return str(value)


def dumps(data: Any) -> bytes:
    return orjson.dumps(data, default=_default, option=orjson.OPT_NAIVE_UTC)


def parse_json(body: bytes) -> Any:
    if not body.strip():
        raise Rejected(400, "empty body", "body", hint="send one JSON object")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Rejected(400, f"not valid JSON: {exc}", "body") from None


def too_large(what: str, size: int, limit: int, *, at_least: bool = False) -> Rejected:
    hint = "split it into smaller requests" if what == "batch" else "send less in properties/context"
    got = f"over {limit:,} bytes" if at_least else f"{size:,} bytes"
    return Rejected(413, f"{what} is {got}; the limit is {limit:,}", "body", hint=hint)


def check_length(content_length: str | None, limit: int, what: str) -> None:
    if content_length is None:
        return
    try:
        n = int(content_length)
    except ValueError:
        raise Rejected(400, "Content-Length is not a number", "Content-Length") from None
    if n > limit:
        raise too_large(what, n, limit)


async def read_asgi_body(receive: Receive, limit: int, what: str) -> bytes:
    """The body from ASGI `receive`, refusing (413) anything over `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Rejected(400, "client disconnected", "body")
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise too_large(what, size, limit, at_least=True)
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class Api:
    """Collector + decide logic. `collector` and `activator` are set when the app starts."""

    def __init__(self, *, write_keys: WriteKeys, limiter: RateLimiter, event_limit: int, batch_limit: int):
        self.write_keys = write_keys
        self.limiter = limiter
        self.event_limit = event_limit
        self.batch_limit = batch_limit
        self.collector: Collector | None = None
        self.activator: Any = None
        self.admin: AdminTokens | None = None  # admin tokens get the whole decision from /v1/decide
        self.decide_limiter = RateLimiter(10.0)
        # the client address of an ASGI scope (server/web.py believes X-Forwarded-For from trusted proxies)
        self.client_of: Callable[[dict[str, Any]], str | None] = _peer
        self.posthog_keys = WriteKeys({})  # PostHog project api_key -> source (server/wire.py)
        self.ga4_secrets = WriteKeys({})   # GA4 Measurement Protocol api_secret -> source
        # path -> handler of the other wire formats (server/wire.py ROUTES, set by create_app)
        self.wire_routes: dict[str, Callable[[Api, WireInfo, bytes], Awaitable[Result]]] = {}
        self.requests = 0
        self.rejected: dict[str, int] = {}

    # -- shared pieces ------------------------------------------------------------------------
    def reject(self, exc: Rejected) -> Result:
        key = str(exc.status)
        self.rejected[key] = self.rejected.get(key, 0) + 1
        return exc.status, exc.body(), exc.headers

    def authenticate(self, header: str | None, body_key: Any = None) -> str:
        source = self.write_keys.source_for_header(header)
        if source is None and isinstance(body_key, str):
            source = self.write_keys.source_for_key(body_key)
        if source is None:
            msg = "unknown write key" if header or body_key else "missing write key"
            raise Rejected(401, msg, "Authorization",
                           hint="send Basic auth with the source's write key as user name and an empty password",
                           headers={"WWW-Authenticate": 'Basic realm="micromoments"'})
        self.admit(source)
        return source

    def admit(self, source: str) -> None:
        """429 when `source` is over its rate limit."""
        if not self.limiter.allow(source):
            raise Rejected(429, f"rate limit of {self.limiter.rate:g} requests/s for source '{source}'",
                           "Authorization", hint="retry after the Retry-After seconds, or batch events",
                           headers={"Retry-After": str(self.limiter.retry_after())})

    def _collector(self) -> Collector:
        if self.collector is None:
            raise Rejected(503, "the server is starting or stopping", None, hint="retry in a second")
        return self.collector

    # -- endpoints ----------------------------------------------------------------------------
    async def collect(self, kind: str, auth: str | None, body: bytes) -> Result:
        """POST /v1/{track,page,screen,identify,alias,group}."""
        self.requests += 1
        try:
            raw = parse_json(body) if auth is None else None
            source = self.authenticate(auth, raw.get("writeKey") if isinstance(raw, dict) else None)
            if raw is None:
                raw = parse_json(body)
            collector = self._collector()
            received_at, received_iso = received_now()
            try:
                prepared = collector.prepare(raw, received_at=received_at, received_iso=received_iso,
                                             event_bytes=body, forced_type=kind)
            except Rejected as exc:  # kept in the quarantine with its reason, as the ingest would
                await self._refuse(collector, [(0, exc, raw)], source)
                raise
            await collector.accept([prepared], source=source)
        except Rejected as exc:
            return self.reject(exc)
        except (OSError, RuntimeError) as exc:  # the WAL cannot write: say so, never pretend
            log.error("WAL write failed: %s", exc)
            return self.reject(Rejected(503, f"cannot write the event log: {exc}", None, hint="retry later"))
        return 200, SUCCESS, None

    async def batch(self, auth: str | None, body: bytes) -> Result:
        """POST /v1/batch: the good events are stored; each bad one is quarantined and named in the answer.

        A batch with bad events still gets a 200 (Segment's SDKs drop a batch answered 400, good
        events and all): `{success: true, accepted: n, rejected: [{index, field, error, hint}]}`.
        """
        self.requests += 1
        rejects: list[tuple[int, Rejected, Any]] = []
        try:
            # Parse, check and serialise with the cyclic GC paused: the ~15 objects per event
            # are freed (by reference counting) before the WAL write is awaited, so no
            # collection scans them, promotes them, and then walks the whole heap because of
            # them (GC took a fifth of the collector's CPU under a batch flood).
            with gc_paused():
                source, prepared = self._prepare_batch(auth, body, rejects)
            if rejects:  # durable in the quarantine file before the answer says so
                await self._refuse(self._collector(), rejects, source)
            if prepared:
                await self._collector().accept(prepared, source=source)
        except Rejected as exc:
            return self.reject(exc)
        except (OSError, RuntimeError) as exc:
            log.error("WAL write failed: %s", exc)
            return self.reject(Rejected(503, f"cannot write the event log: {exc}", None, hint="retry later"))
        if not rejects:
            return 200, SUCCESS, None
        return 200, dumps({"success": True, "accepted": len(prepared), "rejected": [
            {"index": i, "field": exc.field, "error": exc.message, **({"hint": exc.hint} if exc.hint else {})}
            for i, exc, _ in rejects]}), None

    async def _refuse(self, collector: Collector, rejects: list[tuple[int, Rejected, Any]], source: str) -> None:
        """Count refused events and keep them, with their reasons, in the collector's quarantine log."""
        collector.refused += len(rejects)
        if collector.quarantine is None:
            return
        rows = []
        for index, exc, item in rejects:
            try:
                raw = orjson.dumps(item).decode()
            except orjson.JSONEncodeError:
                raw = repr(item)[:4096]
            rows.append({"line": index, "field": exc.field, "reason": exc.message, "raw": raw})
        import anyio.to_thread

        await anyio.to_thread.run_sync(collector.quarantine.append, rows)

    def _prepare_batch(self, auth: str | None, body: bytes,
                       rejects: list[tuple[int, Rejected, Any]] | None = None) -> tuple[str, list[tuple[bytes, str, Any]]]:
        """(source, the WAL lines and messageIds) of a batch body; bad items go to `rejects`."""
        doc = parse_json(body)
        if not isinstance(doc, dict):
            raise Rejected(400, "expected a JSON object with a `batch` array", "body")
        source = self.authenticate(auth, doc.get("writeKey"))
        items = doc.get("batch")
        if not isinstance(items, list):
            raise Rejected(400, "missing `batch` array" if items is None else "`batch` must be an array",
                           "batch", hint='send {"batch": [event, ...]}')
        collector = self._collector()
        received_at, received_iso = received_now()
        return source, collector.prepare_batch(items, received_at=received_at, received_iso=received_iso,
                                               sent_at=doc.get("sentAt"), keep_events=collector.needs_events,
                                               rejects=rejects)

    async def decide(self, auth: str | None, body: bytes, client: str | None = None) -> Result:
        """POST /v1/decide: the activator's best content for this person now.

        With an admin token the whole decision (moment, stage, persona, propensity...); with a
        write key, which a web page holds in the clear, only the content (`public_decision`),
        rate-limited per key and client address (docs/security.md).
        """
        self.requests += 1
        full = self.admin is not None and self.admin.check(auth)
        try:
            doc = parse_json(body)
            if not isinstance(doc, dict):
                raise Rejected(400, "expected a JSON object", "body")
            if not full:
                source = self.authenticate(auth, doc.get("writeKey"))
                if not self.decide_limiter.allow(f"{source}|{client}"):
                    raise Rejected(429, f"decide rate limit of {self.decide_limiter.rate:g}/s per key and address",
                                   "Authorization", hint="ask once per page view",
                                   headers={"Retry-After": str(self.decide_limiter.retry_after())})
            person = None
            for key in ("userId", "anonymousId"):
                value = doc.get(key)
                if value is None:
                    continue
                if not isinstance(value, str) or not value:
                    raise Rejected(400, "expected a non-empty string", key)
                person = person or value
            if person is None:
                raise Rejected(400, "neither userId nor anonymousId is set", "userId")
            context = doc.get("context")
            if context is not None and not isinstance(context, dict):
                raise Rejected(400, "expected an object", "context")
        except Rejected as exc:
            return self.reject(exc)
        act = self.activator
        if act is None:
            if not full:
                return 200, dumps({"status": "no_activator", "decision_id": None, "content": None}), None
            return 200, dumps({"status": "no_activator", "person_id": person, "content": None}), None
        try:
            decision = act.decide(person, context or {})
        except MicromomentsError as exc:  # something the caller can fix in the context
            return self.reject(Rejected(400, exc.message, getattr(exc, "field", None) or "context", exc.hint))
        except Exception as exc:  # a bug: a 500 that says so, and the traceback in the log
            log.exception("decide failed for %s", person)
            return 500, dumps({"success": False, "error": f"decide failed: {type(exc).__name__}", "field": None}), None
        out = decision.to_dict() if hasattr(decision, "to_dict") else decision
        return 200, dumps(out if full else public_decision(out)), None


_FAST_PATHS = {f"/v1/{t}": t for t in EVENT_TYPES} | {"/v1/batch": "batch", "/v1/decide": "decide"}
# Analytics Next (Segment's browser library) posts to one-letter paths, text/plain bodies.
SHORT_PATHS = {"/v1/t": "track", "/v1/p": "page", "/v1/i": "identify", "/v1/a": "alias", "/v1/g": "group",
               "/v1/s": "screen", "/v1/b": "batch", "/v1/m": "metrics"}
_FAST_PATHS |= SHORT_PATHS


class FastPath:
    """ASGI middleware: serves the collector and decide routes straight from `Api`."""

    def __init__(self, app: Any, api: Api):
        self.app = app
        self.api = api

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Callable) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        path = scope["path"]
        kind = _FAST_PATHS.get(path)
        wire = self.api.wire_routes.get(path) if kind is None else None
        if kind is None and wire is None:
            return await self.app(scope, receive, send)
        api = self.api
        auth = length = encoding = content_type = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                auth = value.decode("latin-1")
            elif name == b"content-length":
                length = value.decode("latin-1")
            elif name == b"content-encoding":
                encoding = value.decode("latin-1")
            elif name == b"content-type":
                content_type = value.decode("latin-1")
        if kind == "metrics":  # Analytics Next's own telemetry: nothing to keep
            kind, wire = None, _discard
        limit = api.batch_limit if kind in ("batch", None) else api.event_limit
        what = "batch" if kind in ("batch", None) else "event" if kind != "decide" else "request"
        query = scope.get("query_string", b"").decode("latin-1")
        if "compression=gzip" in query and encoding is None:  # posthog-js: ?compression=gzip-js
            encoding = "gzip"
        try:
            try:
                check_length(length, limit, what)
                body = await read_asgi_body(receive, limit, what)
                body = decode_body(body, encoding, limit=limit, what=what)
            except Rejected as exc:
                api.requests += 1
                status, out, headers = api.reject(exc)
            else:
                if wire is not None:
                    status, out, headers = await wire(api, WireInfo(path, query, content_type), body)
                elif kind == "batch":
                    status, out, headers = await api.batch(auth, body)
                elif kind == "decide":
                    status, out, headers = await api.decide(auth, body, api.client_of(scope))
                else:
                    status, out, headers = await api.collect(kind, auth, body)
        except Exception:  # a bug: answer 500 with JSON rather than dropping the connection
            log.exception("collector request failed")
            status, out, headers = 500, b'{"success":false,"error":"internal error","field":null}', None
        raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(out)).encode()),
                       (b"x-content-type-options", b"nosniff")]
        if headers:
            raw_headers += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": out})


def _peer(scope: dict[str, Any]) -> str | None:
    client = scope.get("client")
    return client[0] if client else None


PUBLIC_CONTENT = ("id", "title", "body", "url", "image", "cta", "discount_code")


def public_decision(decision: dict[str, Any]) -> dict[str, Any]:
    """What a page may see of a decision: its id, status and the content's display fields.

    Not the person id (it may be the user id stitched to an anonymous id), the moment,
    stage, persona, propensity, experiment or context.

    >>> public_decision({"decision_id": "d1", "status": "chosen", "persona": "p", "content_id": "c",
    ...                  "content": {"id": "c", "title": "Hi", "data": {"secret": 1}}})
    {'decision_id': 'd1', 'status': 'chosen', 'content_id': 'c', 'content': {'id': 'c', 'title': 'Hi'}}
    """
    content = decision.get("content")
    if isinstance(content, dict):
        content = {k: content[k] for k in PUBLIC_CONTENT if k in content}
    return {"decision_id": decision.get("decision_id"), "status": decision.get("status"),
            "content_id": decision.get("content_id"), "content": content}


class WireInfo:
    """What a wire handler reads of the request besides the body (server/wire.py)."""

    __slots__ = ("path", "query", "content_type")

    def __init__(self, path: str, query: str = "", content_type: str | None = None):
        self.path, self.query, self.content_type = path, query, content_type

    def param(self, name: str) -> str | None:
        import urllib.parse

        values = urllib.parse.parse_qs(self.query).get(name)
        return values[0] if values else None


async def _discard(api: Api, req: WireInfo, body: bytes) -> Result:
    return 200, SUCCESS, None
