"""The collector's work for one request, apart from HTTP: validate, dedupe, log durably, publish.

`Collector.prepare(event)` validates and stamps one event; `Collector.accept(prepared,
source=...)` takes a request's prepared events and returns once they
are on disk (the WAL's group commit), or raises `Rejected` with the HTTP status and the
field at fault. Duplicate `messageId`s within the dedupe window are acknowledged without
being written again; a duplicate of an event still being written waits for that write, so
a 200 always means durable.

`Collector.prepare_batch(items, ...)` does the same for a `/v1/batch` body. Most events are
plain (string ids, object properties, numbers where numbers go, a parseable time): `_fast_line`
accepts those in one pass of dict lookups; anything else goes through the full rules
(`prepare`, `validate_event`), which also write every error message, so a fast path can never
change what a client is told. `tests/test_server_collector_fast.py` checks both give the same
bytes and the same errors.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import gc
import hashlib
import math
from collections.abc import Iterator
from typing import Any

import orjson

from micromoments.activation.bus import EventBus
from micromoments.activation.live_events import parse_time, time_error, validate_event
from micromoments.activation.quarantine_log import QuarantineLog
from micromoments.activation.wal import WriteAheadLog
from micromoments.errors import InputError
from micromoments.events.model import EVENT_TYPES, LATITUDE_RANGE, LONGITUDE_RANGE, MIN_TIMESTAMP

_FAST_TYPES = frozenset(EVENT_TYPES)
_NUMBER = (int, float)  # `type(v) in _NUMBER`: bool is not accepted, as in the SQL mapping
# The properties the SQL mapping reads as numbers (`live_events._type_error` checks the same).
_NUMBER_PROPERTIES = frozenset(("latitude", "longitude", "revenue", "total", "value"))
_COORDINATES = ("latitude", "longitude")  # of `context.location`
_RANGES = (("latitude", LATITUDE_RANGE), ("longitude", LONGITUDE_RANGE))
_NUL = b"\\u0000"  # how orjson writes a NUL character: refused (`events.sql` quarantines it too)


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

    A set answers "seen?" (a whole batch at once with `isdisjoint`), a deque remembers the
    order to forget the oldest, and only ids whose write is still in flight have an entry in
    `pending`: once durable the future is dropped (`done`), since a million futures alive
    would be a million objects for every full pass of the garbage collector (40-100 ms).

    >>> w = DedupeWindow(2)
    >>> w.add("a", None); w.add("b", None); w.add("c", None)
    >>> "a" in w, "c" in w
    (False, True)
    >>> w.add_many(["d", "e"], None); w.isdisjoint(["c", "d"]), w.isdisjoint(["c"])
    (False, True)
    """

    def __init__(self, size: int):
        self.size = size
        self._seen: set[str] = set()
        self._order: collections.deque[str] = collections.deque()
        self._pending: dict[str, asyncio.Future] = {}

    def __contains__(self, message_id: str) -> bool:
        return message_id in self._seen

    def isdisjoint(self, message_ids: list[str]) -> bool:
        """True when none of these ids is in the window (the common case: a batch of new events)."""
        return self._seen.isdisjoint(message_ids)

    def get(self, message_id: str) -> asyncio.Future | None:
        """The pending write of this id (None when unknown or already durable)."""
        return self._pending.get(message_id)

    def add(self, message_id: str, fut: asyncio.Future | None) -> None:
        if message_id not in self._seen:
            self._seen.add(message_id)
            self._order.append(message_id)
        if fut is not None:
            self._pending[message_id] = fut
        self._trim()

    def add_many(self, message_ids: list[str], fut: asyncio.Future | None) -> None:
        """Add ids not in the window yet (and distinct), all written by the same `fut`."""
        self._seen.update(message_ids)
        self._order.extend(message_ids)
        if fut is not None:
            self._pending.update(dict.fromkeys(message_ids, fut))
        self._trim()

    def _trim(self) -> None:
        order, seen, pending = self._order, self._seen, self._pending
        while len(order) > self.size:
            old = order.popleft()
            seen.discard(old)
            if pending:
                pending.pop(old, None)

    def done(self, message_ids: list[str]) -> None:
        pop = self._pending.pop
        for mid in message_ids:
            pop(mid, None)

    def forget(self, message_id: str) -> None:
        # The id stays in the deque; it is then forgotten again, harmlessly, when it comes out.
        self._seen.discard(message_id)
        self._pending.pop(message_id, None)

    def __len__(self) -> int:
        return len(self._seen)


def _numbers_or_absent(obj: dict[str, Any], keys: Any) -> bool:
    """Whether each of `keys` in `obj` is a real number (not bool) or absent/null."""
    for key in keys:
        value = obj.get(key)
        if value is not None and type(value) not in _NUMBER:
            return False
    return True


def _in_ranges(props: dict[str, Any] | None, loc: dict[str, Any] | None) -> bool:
    """Whether the coordinates and amounts (already known to be numbers) are in range and finite."""
    for obj in (loc, props):
        if obj:
            for key, (lo, hi) in _RANGES:
                value = obj.get(key)
                if value is not None and not lo <= value <= hi:
                    return False
    if props:
        for key in ("revenue", "total", "value"):
            value = props.get(key)
            if value is not None and not math.isfinite(value):
                return False
    return True


def _fast_line(raw: dict[str, Any], received_at: dt.datetime, received_iso: str, sent_at: Any,
               latest: dt.datetime, max_line: int, earliest: dt.datetime = MIN_TIMESTAMP) -> bytes | None:
    """The WAL line of a plain, valid event, stamped as `Collector.prepare` stamps it; else None.

    None means "not sure": the caller then applies the full rules, which accept the event or
    say what is wrong. Accepted here only: a known lower-case type (alias with previousId and
    userId, track with an event name), a string messageId, string or absent ids (one of
    anonymousId/userId), objects or nothing for properties/context/traits, real numbers or
    nothing for the coordinates and amounts, times that parse and are not later than
    `latest`, and a line of at most `max_line` bytes. `validate_event` holds the same rules
    for every other shape; `tests/test_server_collector_fast.py` compares the two.
    """
    get = raw.get
    type_ = get("type")
    if type(type_) is not str or type_ not in _FAST_TYPES or type(get("messageId")) is not str:
        return None
    anonymous_id, user_id, previous_id = get("anonymousId"), get("userId"), get("previousId")
    if not anonymous_id and not user_id:  # none, or "" (no id): the full rules say which
        return None
    for value in (anonymous_id, user_id, previous_id):
        if value is not None and type(value) is not str:
            return None
    if type_ == "track":
        name = get("event")
        if type(name) is not str or not name:
            return None
    elif type_ == "alias" and (previous_id is None or user_id is None):
        return None
    props, ctx, traits = get("properties"), get("context"), get("traits")
    if traits is not None and type(traits) is not dict:
        return None
    if props is not None:
        if type(props) is not dict:
            return None
        # Most events have none of these keys: one set test spares the loop.
        if not _NUMBER_PROPERTIES.isdisjoint(props) and (not _numbers_or_absent(props, _NUMBER_PROPERTIES)
                                                         or not _in_ranges(props, None)):
            return None
    if ctx is not None:
        if type(ctx) is not dict:
            return None
        ctx_traits, loc = ctx.get("traits"), ctx.get("location")
        if ctx_traits is not None and type(ctx_traits) is not dict:
            return None
        if loc is not None:
            if type(loc) is not dict:
                return None
            if not _numbers_or_absent(loc, _COORDINATES) or not _in_ranges(None, loc):
                return None
    # Times: what `prepare` defaults, then `validate_event`'s clock-skew correction.
    ts, original = get("timestamp"), get("originalTimestamp")
    if original is not None:
        when = parse_time(original)
        if when is None or (ts is not None and parse_time(ts) is None):
            return None
    elif ts is not None:
        when = parse_time(ts)
        if when is None:
            return None
    else:
        when = received_at
    sent = get("sentAt")
    if sent is None:
        sent = sent_at
    if sent is not None:
        sent_time = parse_time(sent)
        if sent_time is None or not earliest <= sent_time <= latest:
            return None
        try:
            when = received_at - (sent_time - when)
        except OverflowError:
            return None
    if when > latest or when < earliest:
        return None
    # Stamp as `prepare` does, in the same order (same bytes in the WAL).
    if "writeKey" in raw:
        del raw["writeKey"]  # a secret: never stored
    if ts is None and original is None:
        raw["timestamp"] = received_iso
    if sent_at is not None and get("sentAt") is None:
        raw["sentAt"] = sent_at
    raw["receivedAt"] = received_iso
    try:
        line = orjson.dumps(raw)
    except orjson.JSONEncodeError:  # nested deeper than orjson writes: the full rules say so
        return None
    if len(line) > max_line or _NUL in line:
        return None
    return line + b"\n"


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No automatic cyclic garbage collection inside the block (for synchronous, allocation-heavy code).

    Objects created and freed inside the block never meet the collector: CPython counts
    allocations minus deallocations, so they do not bring the next collection closer either.

    >>> with gc_paused():
    ...     gc.isenabled()
    False
    """
    if not gc.isenabled():  # someone else paused it: leave it as found
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _iso(ts: dt.datetime) -> str:
    return ts.isoformat(timespec="microseconds") + "Z"


class Collector:
    """Validation + idempotency + durability + fan-out for Segment events."""

    def __init__(self, wal: WriteAheadLog, bus: EventBus | None, *, max_event_bytes: int = 32 * 1024,
                 max_future_hours: float = 24.0, dedupe_window: int = 1_000_000,
                 min_time: dt.datetime = MIN_TIMESTAMP, quarantine: QuarantineLog | None = None):
        self.wal = wal
        self.bus = bus
        self.max_event_bytes = max_event_bytes
        self.max_future_hours = max_future_hours
        self.min_time = min_time  # with max_future_hours: the accepted range of event times
        self.quarantine = quarantine  # where refused events go (None: they are only counted)
        self.refused = 0
        self.dedupe = DedupeWindow(dedupe_window)
        self.events_accepted = 0
        self.duplicates = 0
        self.by_source: collections.Counter[str] = collections.Counter()

    def _latest(self, received_at: dt.datetime) -> dt.datetime:
        # `validate_event`'s limit: a timestamp later than this is "in the future".
        return received_at + dt.timedelta(seconds=int(self.max_future_hours * 3600))

    @property
    def needs_events(self) -> bool:
        """Whether `accept` publishes event dicts (a bus without `publish_lines`), not just WAL lines."""
        return self.bus is not None and getattr(self.bus, "publish_lines", None) is None

    def prepare_batch(self, items: list[Any], *, received_at: dt.datetime, received_iso: str,
                      sent_at: Any = None, keep_events: bool = True,
                      rejects: list[tuple[int, Rejected, Any]] | None = None) -> list[tuple[bytes, str, Any]]:
        """`prepare` for every item of a batch, in order; a bad item raises `Rejected`, or with
        `rejects` is appended there as (index, why, item) and the rest go on.

        Plain events take `_fast_line`; any other item goes through `prepare_full`, whose error
        names it (`batch[3].userId`). With `keep_events=False` the tuples hold None instead
        of the event dict (see `needs_events`), so the parsed body can be freed at once.

        >>> import tempfile; from micromoments.activation.wal import WriteAheadLog
        >>> c = Collector(WriteAheadLog(tempfile.mkdtemp(), fsync=False), None)
        >>> now, iso = received_now()
        >>> [mid for _, mid, _ in c.prepare_batch([{"type": "track", "event": "Viewed", "userId": "u1",
        ...     "messageId": "m1"}], received_at=now, received_iso=iso)]
        ['m1']
        >>> try:
        ...     c.prepare_batch([{"type": "page", "userId": "u1"}, {"type": "track", "userId": "u1"}],
        ...                     received_at=now, received_iso=iso)
        ... except Rejected as exc:
        ...     print(exc.status, exc.field, exc.message)
        400 batch[1].event track needs an event name
        >>> c.wal.close()
        """
        latest = self._latest(received_at)
        earliest = self.min_time
        max_line = self.max_event_bytes + 200
        out = []
        append = out.append
        for i, item in enumerate(items):
            try:
                if type(item) is dict:
                    line = _fast_line(item, received_at, received_iso, sent_at, latest, max_line, earliest)
                    if line is not None:
                        append((line, item["messageId"], item if keep_events else None))
                        continue
                    if item.get("type") is None:
                        raise Rejected(400, "missing event type", f"batch[{i}].type",
                                       hint=f"one of {', '.join(EVENT_TYPES)}")
                line, mid, event = self.prepare_full(item, received_at=received_at, received_iso=received_iso,
                                                     sent_at=sent_at, where=f"batch[{i}].")
            except Rejected as exc:
                if rejects is None:
                    raise
                rejects.append((i, exc, item))
                continue
            append((line, mid, event if keep_events else None))
        return out

    def prepare(self, raw: Any, *, received_at: dt.datetime, received_iso: str, sent_at: Any = None,
                event_bytes: bytes | None = None, where: str = "",
                forced_type: str | None = None) -> tuple[bytes, str, dict[str, Any]]:
        """One event -> (its WAL line, its messageId, the stamped event). Raises `Rejected` naming the field.

        The stamped event is what the WAL holds and the bus carries: the client's event plus
        `receivedAt` (and `timestamp`, `messageId`, `sentAt` when it had none).
        """
        if type(raw) is dict and (forced_type is None or raw.get("type", forced_type) == forced_type):
            if forced_type is not None:
                raw["type"] = forced_type
            line = _fast_line(raw, received_at, received_iso, sent_at, self._latest(received_at),
                              self.max_event_bytes + 200, self.min_time)
            if line is not None:
                return line, raw["messageId"], raw
        return self.prepare_full(raw, received_at=received_at, received_iso=received_iso, sent_at=sent_at,
                                 event_bytes=event_bytes, where=where, forced_type=forced_type)

    def prepare_full(self, raw: Any, *, received_at: dt.datetime, received_iso: str, sent_at: Any = None,
                     event_bytes: bytes | None = None, where: str = "",
                     forced_type: str | None = None) -> tuple[bytes, str, dict[str, Any]]:
        """`prepare` without the fast path: every rule, and the error message of each."""
        if not isinstance(raw, dict):
            got = "array" if isinstance(raw, list) else type(raw).__name__
            raise Rejected(400, f"expected a JSON object, got {got}", where.rstrip(".") or "body")
        try:
            text = orjson.dumps(raw)
        except orjson.JSONEncodeError as exc:  # the parser reads 1,024 levels, the writer 254
            raise Rejected(400, f"the event cannot be stored: {exc}", where.rstrip(".") or "body",
                           hint="nest properties at most 250 levels deep") from None
        if _NUL in text:
            raise Rejected(400, "the event contains a NUL character (\\u0000)", where.rstrip(".") or "body",
                           hint="remove U+0000 from the text fields")
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
                err = time_error(key, value)
                raise Rejected(400, err.message.split(": ", 1)[-1], f"{where}{key}", err.hint)
        if raw["type"] == "track" and not raw.get("event"):
            raise Rejected(400, "track needs an event name", f"{where}event",
                           hint="e.g. {\"event\": \"Products Searched\"}")
        try:
            validate_event(raw, received_at=received_at, now=received_at, max_future_hours=self.max_future_hours,
                           min_time=self.min_time)
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
        dedupe = self.dedupe
        ids = [p[1] for p in prepared]
        if dedupe.isdisjoint(ids) and len(set(ids)) == len(ids):
            # The common case, checked in two set operations: every event is new.
            lines = [p[0] for p in prepared]
            events = [p[2] for p in prepared]
        else:
            lines, ids, events = [], [], []
            seen_here: set[str] = set()
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
            dedupe.add_many(ids, fut)
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
