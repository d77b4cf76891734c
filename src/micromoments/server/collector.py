"""The collector's work for one request, apart from HTTP: validate, dedupe, log durably, publish.

`Collector.prepare(event)` validates and stamps one event; `Collector.accept(prepared,
source=...)` takes a request's prepared events and returns once they
are on disk (the WAL's group commit), or raises `Rejected` with the HTTP status and the
field at fault. Duplicate `messageId`s within the dedupe window are acknowledged without
being written again; a duplicate of an event still being written waits for that write, so
a 200 always means durable.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import hashlib
from typing import Any

import orjson

from micromoments.activation.bus import EventBus
from micromoments.activation.live_events import parse_time, validate_event
from micromoments.activation.wal import WriteAheadLog
from micromoments.errors import InputError


class Rejected(Exception):
    """A request the collector refuses: HTTP status, message, field, hint."""

    def __init__(self, status: int, message: str, field: str | None = None, hint: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.hint = hint
        self.headers = headers

    def body(self) -> bytes:
        out: dict[str, Any] = {"success": False, "error": self.message, "field": self.field}
        if self.hint:
            out["hint"] = self.hint
        return orjson.dumps(out)


class DedupeWindow:
    """The last `size` messageIds; an id still being written keeps the future of its WAL write.

    Once the write is durable the future is dropped (`done`): a million futures alive would
    be a million objects for every full pass of the garbage collector (a 40-100 ms pause).

    >>> w = DedupeWindow(2)
    >>> w.add("a", None); w.add("b", None); w.add("c", None)
    >>> "a" in w, "c" in w
    (False, True)
    """

    def __init__(self, size: int):
        self.size = size
        self._ids: collections.OrderedDict[str, asyncio.Future | None] = collections.OrderedDict()

    def __contains__(self, message_id: str) -> bool:
        return message_id in self._ids

    def get(self, message_id: str) -> asyncio.Future | None:
        """The pending write of this id (None when unknown or already durable)."""
        return self._ids.get(message_id)

    def add(self, message_id: str, fut: asyncio.Future | None) -> None:
        self._ids[message_id] = fut
        if len(self._ids) > self.size:
            self._ids.popitem(last=False)

    def done(self, message_ids: list[str]) -> None:
        ids = self._ids
        for mid in message_ids:
            if mid in ids:
                ids[mid] = None

    def forget(self, message_id: str) -> None:
        self._ids.pop(message_id, None)

    def __len__(self) -> int:
        return len(self._ids)


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _iso(ts: dt.datetime) -> str:
    return ts.isoformat(timespec="microseconds") + "Z"


class Collector:
    """Validation + idempotency + durability + fan-out for Segment events."""

    def __init__(self, wal: WriteAheadLog, bus: EventBus | None, *, max_event_bytes: int = 32 * 1024,
                 max_future_hours: float = 24.0, dedupe_window: int = 1_000_000):
        self.wal = wal
        self.bus = bus
        self.max_event_bytes = max_event_bytes
        self.max_future_hours = max_future_hours
        self.dedupe = DedupeWindow(dedupe_window)
        self.events_accepted = 0
        self.duplicates = 0
        self.by_source: collections.Counter[str] = collections.Counter()

    def prepare(self, raw: Any, *, received_at: dt.datetime, received_iso: str, sent_at: Any = None,
                event_bytes: bytes | None = None, where: str = "",
                forced_type: str | None = None) -> tuple[bytes, str, dict[str, Any]]:
        """One event -> (its WAL line, its messageId, the stamped event). Raises `Rejected` naming the field.

        The stamped event is what the WAL holds and the bus carries: the client's event plus
        `receivedAt` (and `timestamp`, `messageId`, `sentAt` when it had none).
        """
        if not isinstance(raw, dict):
            got = "array" if isinstance(raw, list) else type(raw).__name__
            raise Rejected(400, f"expected a JSON object, got {got}", where.rstrip(".") or "body")
        if forced_type is not None:
            given = raw.get("type")
            if given is not None and given != forced_type:
                raise Rejected(400, f"type {given!r} sent to /v1/{forced_type}", f"{where}type",
                               hint=f"post it to /v1/{given} or /v1/batch" if isinstance(given, str) else None)
            raw["type"] = forced_type
        raw.pop("writeKey", None)  # a secret: never stored
        if raw.get("timestamp") is None and raw.get("originalTimestamp") is None:
            raw["timestamp"] = received_iso  # Segment's rule: no timestamp = when received
        if sent_at is not None and raw.get("sentAt") is None:
            raw["sentAt"] = sent_at
        raw["receivedAt"] = received_iso
        message_id = raw.get("messageId")
        if message_id is None:
            # A retry of the same body gets the same id, so it is still deduplicated.
            digest = hashlib.md5(event_bytes if event_bytes is not None else orjson.dumps(raw)).hexdigest()
            message_id = raw["messageId"] = "h:" + digest
        elif not isinstance(message_id, str):
            if isinstance(message_id, (int, float)) and not isinstance(message_id, bool):
                message_id = raw["messageId"] = str(message_id)
            else:
                raise Rejected(400, f"expected a string, got {type(message_id).__name__}", f"{where}messageId")
        # The SQL ingest cannot even fail gracefully on some of these (an epoch past year
        # 294,000 aborts the load): refuse what does not parse as a time here.
        for key in ("sentAt", "originalTimestamp", "timestamp"):
            value = raw.get(key)
            if value is not None and parse_time(value) is None:
                raise Rejected(400, f"{key} is not ISO-8601 or an epoch in years 1-9999: {str(value)[:40]}",
                               f"{where}{key}", hint="send e.g. 2026-09-01T10:00:00.000Z")
        if raw["type"] == "track" and not raw.get("event"):
            raise Rejected(400, "track needs an event name", f"{where}event",
                           hint="e.g. {\"event\": \"Products Searched\"}")
        try:
            validate_event(raw, received_at=received_at, now=received_at, max_future_hours=self.max_future_hours)
        except InputError as exc:
            field = getattr(exc, "field", None)
            raise Rejected(400, exc.message.split(": ", 1)[-1] if field else exc.message,
                           f"{where}{field}" if field else where.rstrip(".") or None, exc.hint) from None
        line = orjson.dumps(raw)
        if len(line) > self.max_event_bytes + 200:  # room for the fields the collector added
            raise Rejected(413, f"event is {len(line):,} bytes; the limit is {self.max_event_bytes:,}",
                           where.rstrip(".") or "body", hint="send less in properties/context")
        return line + b"\n", message_id, raw

    async def accept(self, prepared: list[tuple[bytes, str, dict[str, Any]]], *, source: str) -> int:
        """Write new events durably (one group commit), publish them; returns how many were new."""
        waits: list[asyncio.Future] = []
        lines: list[bytes] = []
        ids: list[str] = []
        events: list[dict[str, Any]] = []
        seen_here: set[str] = set()
        dedupe = self.dedupe
        for line, mid, event in prepared:
            pending = dedupe.get(mid)
            if pending is not None or mid in seen_here or mid in dedupe:
                self.duplicates += 1
                if pending is not None and not pending.done():
                    waits.append(pending)  # acknowledge only once the first copy is durable
                continue
            seen_here.add(mid)
            lines.append(line)
            ids.append(mid)
            events.append(event)
        if lines:
            fut = self.wal.submit(b"".join(lines) if len(lines) > 1 else lines[0])
            for mid in ids:
                dedupe.add(mid, fut)
            try:
                await fut
            except BaseException:
                for mid in ids:
                    dedupe.forget(mid)
                raise
            dedupe.done(ids)
            self.events_accepted += len(ids)
            self.by_source[source] += len(ids)
            if self.bus is not None:
                publish_lines = getattr(self.bus, "publish_lines", None)
                publish_many = getattr(self.bus, "publish_many", None)
                if publish_lines is not None:  # bytes: nothing for the garbage collector to walk
                    publish_lines(lines)
                elif publish_many is not None:
                    publish_many(events)
                else:
                    for event in events:
                        self.bus.publish(event)
        for w in waits:
            await asyncio.shield(w)
        return len(ids)


def received_now() -> tuple[dt.datetime, str]:
    """(naive UTC now, its ISO text) — the `receivedAt` stamped on a request's events."""
    now = _utc_now()
    return now, _iso(now)
