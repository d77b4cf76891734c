"""The event bus between the collector and the live path (activator, workers).

`EventBus` is the interface: `publish(event)` hands over one canonical event and returns at
once; `subscribe(handler)` registers a callable that receives every published event.

- `InProcessBus` (default): a bounded queue and one dispatcher thread, so a slow handler
  never slows the collector. When the queue is full the oldest event is dropped and
  counted (the event is still in the WAL and the store; only the live reaction is lost).
- `RedisStreamsBus`: `XADD` to a Redis stream; every subscriber reads it through a consumer
  group, so N stateless collectors can feed M workers. `redis` is imported only here.

>>> bus = InProcessBus()
>>> seen = []
>>> bus.subscribe(seen.append)
>>> bus.publish({"message_id": "m1"})
>>> bus.drain(timeout=2)
True
>>> seen
[{'message_id': 'm1'}]
>>> bus.close()
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import socket
import threading
import time
import zlib
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import orjson

# Re-exported: the server imports the shipper from here.
from micromoments.activation.wal_shipper import WalShipper, _joined  # noqa: F401

__all__ = ["EventBus", "InProcessBus", "RedisStreamsBus", "WalShipper", "make_bus", "partition_of"]

log = logging.getLogger("micromoments.server")

Handler = Callable[[dict[str, Any]], Any]


@runtime_checkable
class EventBus(Protocol):
    """What the collector publishes to and the live path subscribes to."""

    def publish(self, event: dict[str, Any]) -> None: ...

    def subscribe(self, handler: Handler) -> None: ...

    def close(self) -> None: ...


class InProcessBus:
    """Handlers run on one dispatcher thread, in publish order."""

    def __init__(self, max_queue: int = 100_000):
        self._queue: collections.deque[dict[str, Any]] = collections.deque()
        self._max = max_queue
        self._handlers: list[Handler] = []
        self._cond = threading.Condition()
        self._busy = False
        self._closed = False
        self.published = 0
        self.delivered = 0
        self.dropped = 0
        self.handler_errors = 0
        self._thread: threading.Thread | None = None

    def subscribe(self, handler: Handler) -> None:
        self._handlers.append(handler)
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="bus-dispatch", daemon=True)
            self._thread.start()

    def publish(self, event: dict[str, Any]) -> None:
        if not self._handlers:
            return  # nobody listens: keep nothing
        with self._cond:
            if len(self._queue) >= self._max:
                self._queue.popleft()
                self.dropped += 1
            self._queue.append(event)
            self.published += 1
            if len(self._queue) == 1:
                self._cond.notify()

    def publish_many(self, events: list[dict[str, Any]]) -> None:
        if not self._handlers or not events:
            return
        with self._cond:
            was_empty = not self._queue
            self._queue.extend(events)
            self.published += len(events)
            over = len(self._queue) - self._max
            for _ in range(max(0, over)):
                self._queue.popleft()
            self.dropped += max(0, over)
            if was_empty:
                self._cond.notify()

    def publish_lines(self, lines: list[bytes]) -> None:
        """Events as their JSON lines (decoded on the dispatcher thread).

        The collector publishes this way: a queue of bytes costs the garbage collector
        nothing, where 100,000 queued event dicts made each full pass stall the server.
        """
        self.publish_many(lines)  # type: ignore[arg-type]

    def _run(self) -> None:
        while True:
            with self._cond:
                self._busy = False
                self._cond.notify_all()
                while not self._queue and not self._closed:
                    self._cond.wait()
                if self._closed and not self._queue:
                    return
                batch = list(self._queue)
                self._queue.clear()
                self._busy = True
            for event in batch:
                if isinstance(event, bytes):
                    event = orjson.loads(event)
                for handler in self._handlers:
                    try:
                        handler(event)
                    except Exception:  # one bad event or handler must not stop the live path
                        self.handler_errors += 1
                        log.exception("bus handler failed on %s", event.get("message_id"))
                self.delivered += 1

    def queued(self) -> int:
        return len(self._queue)

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every published event was handled (for tests and shutdown)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=10)


def _encode(event: dict[str, Any]) -> bytes:
    return orjson.dumps(event, option=orjson.OPT_NAIVE_UTC)


def _decode(data: bytes) -> dict[str, Any]:
    event = orjson.loads(data)
    for key in ("ts", "sent_at", "received_at"):  # back to naive UTC datetimes
        value = event.get(key)
        if isinstance(value, str):
            event[key] = dt.datetime.fromisoformat(value).replace(tzinfo=None)
    return event


class RedisStreamsBus:
    """Redis Streams: `XADD` on publish; each subscriber reads through a consumer group.

    Collectors publish to `stream`; every worker process subscribes with the same `group`
    (each entry goes to one consumer of the group) or its own group (every worker sees
    everything, e.g. one group per person partition, see `partition_of`). Entries are
    acknowledged after the handlers ran, so a worker that dies leaves them pending; a
    consumer with a fixed `consumer` name re-reads its own pending entries when it restarts
    (at-least-once: handlers must tolerate a repeat, e.g. by `messageId`).

    An entry holds one event (field `e`) or a JSONL blob of stamped events (field `b`, one
    WAL group commit, written by `WalShipper`): a blob costs one `XADD` for hundreds of events.

    `url` is a redis URL such as `redis://localhost:6379/0`. `async_publish=True` makes
    `publish`/`publish_many` only queue (a thread pipelines the `XADD`s), so a request never
    waits for Redis; `flush()` waits until the queue is sent.
    """

    def __init__(self, url: str = "redis://localhost:6379/0", *, stream: str = "micromoments:events",
                 group: str = "activators", consumer: str | None = None, maxlen: int = 1_000_000,
                 block_ms: int = 500, async_publish: bool = False, start_id: str = "0"):
        try:
            import redis  # noqa: PLC0415 — optional dependency, only for this bus
        except ModuleNotFoundError as exc:
            from micromoments.errors import ConfigError

            raise ConfigError("the Redis Streams bus needs the `redis` package",
                              where="[server] bus", hint="pip install redis, or use bus = \"inprocess\"") from exc
        self.url = url
        self._redis = redis.Redis.from_url(url)
        self.stream = stream
        self.group = group
        self.consumer = consumer or f"{socket.gethostname()}-{id(self):x}"
        self.maxlen = maxlen
        self.block_ms = block_ms
        # Where a *new* group starts: "0" = the whole stream (the store loader), "$" = only what
        # comes next (a new activator must not replay old events as if live). An existing group
        # always continues where it was.
        self.start_id = start_id
        self._handlers: list[Handler] = []
        self._blob_handlers: list[Callable[[list[bytes]], Any]] = []
        self._after_batch: list[Callable[[], Any]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.published = 0
        self.delivered = 0
        self.handler_errors = 0
        self.dropped = 0
        self.publish_errors = 0
        self._async = async_publish
        self._outbox: collections.deque[bytes] = collections.deque()
        self._out_cond = threading.Condition()
        self._out_busy = False
        self._publisher: threading.Thread | None = None

    # -- publishing -----------------------------------------------------------------------------
    def _xadd_all(self, payloads: list[tuple[bytes, bytes]]) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for key, data in payloads:
            pipe.xadd(self.stream, {key: data}, maxlen=self.maxlen, approximate=True)
        pipe.execute()

    def publish(self, event: dict[str, Any]) -> None:
        self.publish_many([event])

    def publish_many(self, events: list[dict[str, Any]]) -> None:
        if not events:
            return
        if self._async:
            self._enqueue([_encode(e) for e in events])
            return
        self._xadd_all([(b"e", _encode(e)) for e in events])
        self.published += len(events)

    def publish_lines(self, lines: list[bytes]) -> None:
        """Events as their JSON lines (as the WAL holds them): one blob entry per call."""
        if not lines:
            return
        if self._async:
            self._enqueue([line.rstrip(b"\n") for line in lines])
            return
        self.publish_blob(b"".join(line if line.endswith(b"\n") else line + b"\n" for line in lines))

    def publish_blob(self, jsonl: bytes) -> None:
        """One entry holding many stamped events as JSON lines (synchronous: raises if Redis fails)."""
        self._xadd_all([(b"b", jsonl)])
        self.published += jsonl.count(b"\n")

    def publish_blobs(self, blobs: list[bytes]) -> None:
        """Several JSONL entries in one round trip (synchronous)."""
        if blobs:
            self._xadd_all([(b"b", b) for b in blobs])
            self.published += sum(b.count(b"\n") for b in blobs)

    def _enqueue(self, encoded: list[bytes]) -> None:
        with self._out_cond:
            if self._publisher is None:
                self._publisher = threading.Thread(target=self._publish_loop, name="redis-publish", daemon=True)
                self._publisher.start()
            over = len(self._outbox) + len(encoded) - self.maxlen
            for _ in range(max(0, over)):
                if self._outbox:
                    self._outbox.popleft()
                    self.dropped += 1  # Redis has been down a long time: the live path loses the oldest
            self._outbox.extend(encoded)
            self._out_cond.notify()

    def _publish_loop(self) -> None:
        while True:
            with self._out_cond:
                self._out_busy = False
                self._out_cond.notify_all()
                while not self._outbox and not self._stop.is_set():
                    self._out_cond.wait()
                if not self._outbox:
                    return
                batch = list(self._outbox)
                self._outbox.clear()
                self._out_busy = True
            # Blob entries: one XADD per 500 events; consumers split the lines.
            blobs = [b"\n".join(batch[i:i + 500]) + b"\n" for i in range(0, len(batch), 500)]
            while True:
                try:
                    self.publish_blobs(blobs)
                    break
                except Exception:
                    self.publish_errors += 1
                    log.exception("publishing to the Redis stream failed; retrying")
                    if self._stop.wait(0.5):
                        return

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued by an async publisher is in Redis."""
        deadline = time.monotonic() + timeout
        with self._out_cond:
            while self._outbox or self._out_busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._out_cond.wait(left)
        return True

    # -- consuming ------------------------------------------------------------------------------
    def subscribe(self, handler: Handler) -> None:
        """`handler(event)` for every event (blob entries are split and decoded)."""
        self._handlers.append(handler)
        self._start()

    def subscribe_blobs(self, handler: Callable[[list[bytes]], Any]) -> None:
        """`handler(lines)` once per read with the raw JSON lines of every entry (no decoding).

        For the store loader: it appends them to its own log as they are.
        """
        self._blob_handlers.append(handler)
        self._start()

    def after_batch(self, fn: Callable[[], Any]) -> None:
        """`fn()` after each read's entries were handled and before they are acknowledged."""
        self._after_batch.append(fn)

    def _start(self) -> None:
        import redis  # noqa: PLC0415

        if self._thread is None:
            try:
                self._redis.xgroup_create(self.stream, self.group, id=self.start_id, mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
            self._thread = threading.Thread(target=self._run, name=f"redis-bus-{self.group}", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        cursor = "0"  # first our own pending entries (a restart after a crash), then new ones
        count = 500
        while not self._stop.is_set():
            try:
                replies = self._redis.xreadgroup(self.group, self.consumer, {self.stream: cursor},
                                                 count=count, block=None if cursor == "0" else self.block_ms)
            except Exception:
                if self._stop.is_set():
                    return
                log.exception("reading the Redis stream failed; retrying")
                time.sleep(1)
                continue
            entries = [e for _stream, es in (replies or []) for e in es]
            if cursor == "0" and not entries:
                cursor = ">"
                continue
            if not entries:
                continue
            count = self._next_count(entries)
            try:
                self._handle(entries)
            except Exception:  # e.g. the loader's disk: leave them pending, retry from the start
                self.handler_errors += 1
                log.exception("redis bus batch handler failed; will retry")
                cursor = "0"
                time.sleep(0.5)
                continue
            self._redis.xack(self.stream, self.group, *[entry_id for entry_id, _ in entries])

    read_events = 20_000  # about this many events per read (blob entries hold hundreds each)

    def _next_count(self, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> int:
        """How many entries to ask for next time, from the size of these.

        A collector under load ships entries of 100-1,000 events; 500 of them in one read
        would be a reply of ~100 MB that blocks Redis (and every `/v1/decide` reading a
        snapshot) while it is built, and snapshots and acknowledgements would wait for the
        whole read. Single-event entries keep reads of 500.
        """
        lines = 0
        for _id, fields in entries:
            blob = fields.get(b"b")
            lines += blob.count(b"\n") if blob is not None else 1
        per_entry = max(1.0, lines / len(entries))
        return max(1, min(500, int(self.read_events / per_entry)))

    def _handle(self, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        if self._blob_handlers:
            lines: list[bytes] = []
            for _id, fields in entries:
                if b"b" in fields:
                    lines.extend(x for x in fields[b"b"].split(b"\n") if x)
                elif b"e" in fields:
                    lines.append(fields[b"e"])
            for blob_handler in self._blob_handlers:
                blob_handler(lines)  # an error propagates: nothing is acknowledged
            self.delivered += len(lines)
        if self._handlers:
            for entry_id, fields in entries:
                raw = fields[b"b"].split(b"\n") if b"b" in fields else [fields.get(b"e", b"")]
                for data in raw:
                    if not data:
                        continue
                    try:
                        event = _decode(data)
                        for handler in self._handlers:
                            handler(event)
                    except Exception:
                        self.handler_errors += 1
                        log.exception("redis bus handler failed on entry %s", entry_id)
                    self.delivered += 1
        for fn in self._after_batch:
            fn()

    def queued(self) -> int:
        """Entries of the stream this group has not read yet (its lag)."""
        try:
            for info in self._redis.xinfo_groups(self.stream):
                if info["name"].decode() == self.group:
                    return int(info.get("lag") or 0) + len(self._outbox)
        except Exception:
            return len(self._outbox)
        return len(self._outbox)

    def close(self) -> None:
        if self._async:
            self.flush(timeout=10)
        self._stop.set()
        with self._out_cond:
            self._out_cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._publisher is not None:
            self._publisher.join(timeout=5)
        self._redis.close()


def partition_of(event: dict[str, Any], count: int) -> int:
    """The worker partition of an event: a stable hash of its anonymousId (else userId).

    The anonymous id first, because Segment clients send it on every event of a device,
    before and after login, so a person's session stays on one worker.

    >>> partition_of({"anonymousId": "a1", "userId": "u1"}, 4) == partition_of({"anonymousId": "a1"}, 4)
    True
    """
    if count <= 1:
        return 0
    key = event.get("anonymousId") or event.get("anonymous_id") or event.get("userId") or event.get("user_id") or ""
    return zlib.crc32(str(key).encode()) % count


def make_bus(spec: str) -> EventBus:
    """`"inprocess"` or a `redis://` URL (from `[server] bus`)."""
    if spec in ("", "inprocess", "in-process"):
        return InProcessBus()
    if spec.startswith(("redis://", "rediss://", "unix://")):
        return RedisStreamsBus(spec, async_publish=True)  # a request never waits for Redis
    from micromoments.errors import ConfigError

    raise ConfigError(f"unknown bus {spec!r}", where="[server] bus", hint='use "inprocess" or a redis:// URL')
