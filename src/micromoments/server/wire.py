"""The collector routes of other wire formats: PostHog's capture API and GA4's Measurement Protocol.

Each handler turns a request into Segment-shaped events (`wire_posthog`, `wire_ga4`) and
hands them to the same `Collector` as `/v1/batch`: validated, deduplicated by messageId,
on disk (the WAL's group commit) before the answer, rate-limited per source. `FastPath`
(server/endpoints.py) calls `ROUTES[path]` with the decoded body.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson

from micromoments.server import wire_ga4, wire_posthog
from micromoments.server.collector import Rejected, gc_paused, received_now
from micromoments.server.endpoints import WireInfo, parse_json

if TYPE_CHECKING:
    from micromoments.server.endpoints import Api, Result

log = logging.getLogger("micromoments.server")


async def _ingest(api: Api, source: str, items: list[tuple[int, dict[str, Any]]], sent_at: Any,
                  rejects: list[tuple[int, Rejected, Any]]) -> list[tuple[int, Rejected, Any]]:
    """Log the good events of `items` ((index in the request, Segment event)) as `/v1/batch` does;
    the bad ones join `rejects` (index, why, event) and go to the quarantine with their reason.
    Returns every reject, by request index."""
    collector = api._collector()
    received_at, received_iso = received_now()
    refused: list[tuple[int, Rejected, Any]] = []
    with gc_paused():
        prepared = collector.prepare_batch([event for _, event in items], received_at=received_at,
                                           received_iso=received_iso, sent_at=sent_at,
                                           keep_events=collector.needs_events, rejects=refused)
    rejects = list(rejects)
    for i, exc, item in refused:  # named by their place in the request, not in `items`
        if exc.field and exc.field.startswith(f"batch[{i}]"):
            exc.field = f"batch[{items[i][0]}]" + exc.field[len(f"batch[{i}]"):]
        rejects.append((items[i][0], exc, item))
    rejects.sort(key=lambda r: r[0])
    if rejects:  # durable in the quarantine file before the answer says so
        await api._refuse(collector, rejects, source)
    if prepared:
        await collector.accept(prepared, source=source)
    return rejects


def _rejected(rejects: list[tuple[int, Rejected, Any]]) -> list[dict[str, Any]]:
    return [{"index": i, "field": exc.field, "error": exc.message, **({"hint": exc.hint} if exc.hint else {})}
            for i, exc, _ in rejects]


def _source(api: Api, keys: Any, key: str | None, field: str, hint: str) -> str:
    source = keys.source_for_key(key) if key else None
    if source is None:
        raise Rejected(401, "unknown key" if key else "missing key", field, hint=hint)
    api.admit(source)
    return source


async def _guarded(api: Api, work: Callable[[], Awaitable[Result]]) -> Result:
    api.requests += 1
    try:
        return await work()
    except Rejected as exc:
        return api.reject(exc)
    except (OSError, RuntimeError) as exc:  # the WAL cannot write: say so, never pretend
        log.error("WAL write failed: %s", exc)
        return api.reject(Rejected(503, f"cannot write the event log: {exc}", None, hint="retry later"))


async def posthog_capture(api: Api, req: WireInfo, body: bytes) -> Result:
    """POST /batch/, /capture/, /e/, /i/v0/e/: PostHog SDK events, keyed by the project api_key."""

    async def work() -> Result:
        doc = wire_posthog.parse_body(body, req.content_type, req.query)
        source = _source(api, api.posthog_keys, wire_posthog.api_key_of(doc), "api_key",
                         "send the project key as api_key; map it to a source in [server] posthog_keys")
        items, sent_at, bad = wire_posthog.segment_batch(doc)
        total = len(items) + len(bad)
        rejects = await _ingest(api, source, items, sent_at, bad)
        if not rejects:
            return 200, wire_posthog.SUCCESS, None
        return 200, orjson.dumps({"status": 1, "accepted": total - len(rejects),
                                  "rejected": _rejected(rejects)}), None

    return await _guarded(api, work)


async def ga4_collect(api: Api, req: WireInfo, body: bytes) -> Result:
    """POST /mp/collect?measurement_id=...&api_secret=...: keyed by the api secret. 204 when stored."""

    async def work() -> Result:
        source = _source(api, api.ga4_secrets, req.param("api_secret"), "api_secret",
                         "pass ?api_secret=...; map it to a source in [server] ga4_api_secrets")
        doc = parse_json(body)
        messages = wire_ga4.validate_request(doc)
        if messages:  # no client id, no events array: nothing to keep
            raise wire_ga4.rejected_for(messages)
        _, received_iso = received_now()
        events, bad = wire_ga4.split_events(doc)
        items = list(zip(events, wire_ga4.to_segment({**doc, "events": [doc["events"][i] for i in events]},
                                                     received_iso=received_iso, indexes=events)))
        rejects = await _ingest(api, source, items, None, bad)
        # Google answers 2xx whatever the events; the bad ones here are in the quarantine
        # (and /debug/mp/collect says why).
        return 204, b"", None

    return await _guarded(api, work)


async def ga4_debug(api: Api, req: WireInfo, body: bytes) -> Result:
    """POST /debug/mp/collect: Google's validation answer; nothing is stored."""

    async def work() -> Result:
        _source(api, api.ga4_secrets, req.param("api_secret"), "api_secret",
                "pass ?api_secret=...; map it to a source in [server] ga4_api_secrets")
        try:
            doc: Any = parse_json(body)
        except Rejected as exc:
            return 200, orjson.dumps({"validationMessages": [
                {"fieldPath": "", "description": exc.message, "validationCode": "VALUE_INVALID"}]}), None
        return 200, orjson.dumps({"validationMessages": wire_ga4.validate(doc)}), None

    return await _guarded(api, work)


Handler = Callable[["Api", WireInfo, bytes], Awaitable["Result"]]
ROUTES: dict[str, Handler] = {
    **dict.fromkeys(wire_posthog.PATHS, posthog_capture),
    wire_ga4.PATH: ga4_collect,
    wire_ga4.DEBUG_PATH: ga4_debug,
}
