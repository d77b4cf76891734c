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
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import orjson

__all__ = ["EventBus", "InProcessBus", "RedisStreamsBus", "make_bus"]

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
    (each event goes to one worker of the group) or its own group (every worker sees
    everything, e.g. a second activator for another purpose). Entries are acknowledged
    after the handler ran, so a worker that dies leaves them pending for another.

    `url` is a redis URL such as `redis://localhost:6379/0`.
    """

    def __init__(self, url: str = "redis://localhost:6379/0", *, stream: str = "micromoments:events",
                 group: str = "activators", consumer: str | None = None, maxlen: int = 1_000_000,
                 block_ms: int = 500):
        try:
            import redis  # noqa: PLC0415 — optional dependency, only for this bus
        except ModuleNotFoundError as exc:
            from micromoments.errors import ConfigError

            raise ConfigError("the Redis Streams bus needs the `redis` package",
                              where="[server] bus", hint="pip install redis, or use bus = \"inprocess\"") from exc
        self._redis = redis.Redis.from_url(url)
        self.stream = stream
        self.group = group
        self.consumer = consumer or f"{socket.gethostname()}-{id(self):x}"
        self.maxlen = maxlen
        self.block_ms = block_ms
        self._handlers: list[Handler] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.published = 0
        self.delivered = 0
        self.handler_errors = 0

    def publish(self, event: dict[str, Any]) -> None:
        self._redis.xadd(self.stream, {b"e": _encode(event)}, maxlen=self.maxlen, approximate=True)
        self.published += 1

    def publish_many(self, events: list[dict[str, Any]]) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for event in events:
            pipe.xadd(self.stream, {b"e": _encode(event)}, maxlen=self.maxlen, approximate=True)
        pipe.execute()
        self.published += len(events)

    def subscribe(self, handler: Handler) -> None:
        import redis  # noqa: PLC0415

        self._handlers.append(handler)
        if self._thread is None:
            try:
                self._redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
            self._thread = threading.Thread(target=self._run, name="redis-bus", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                replies = self._redis.xreadgroup(self.group, self.consumer, {self.stream: ">"},
                                                 count=500, block=self.block_ms)
            except Exception:
                if self._stop.is_set():
                    return
                log.exception("reading the Redis stream failed; retrying")
                time.sleep(1)
                continue
            for _stream, entries in replies or []:
                ids = []
                for entry_id, fields in entries:
                    try:
                        event = _decode(fields[b"e"])
                        for handler in self._handlers:
                            handler(event)
                    except Exception:
                        self.handler_errors += 1
                        log.exception("redis bus handler failed on entry %s", entry_id)
                    self.delivered += 1
                    ids.append(entry_id)
                if ids:
                    self._redis.xack(self.stream, self.group, *ids)

    def queued(self) -> int:
        """Entries of the stream this group has not read yet (its lag)."""
        try:
            for info in self._redis.xinfo_groups(self.stream):
                if info["name"].decode() == self.group:
                    return int(info.get("lag") or 0)
        except Exception:
            return 0
        return 0

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._redis.close()


def make_bus(spec: str) -> EventBus:
    """`"inprocess"` or a `redis://` URL (from `[server] bus`)."""
    if spec in ("", "inprocess", "in-process"):
        return InProcessBus()
    if spec.startswith(("redis://", "rediss://", "unix://")):
        return RedisStreamsBus(spec)
    from micromoments.errors import ConfigError

    raise ConfigError(f"unknown bus {spec!r}", where="[server] bus", hint='use "inprocess" or a redis:// URL')
