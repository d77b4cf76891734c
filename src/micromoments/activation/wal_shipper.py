"""The WAL shipper of a collector: what the write-ahead log made durable goes onto the Redis stream.

A collector (`serve --role collector`) acknowledges an event once its WAL group is durable; the
shipper then moves the group to the bus off the request path, and deletes a segment once all of
it is on the stream (docs/deploy.md). Events the collector refused (its `QuarantineLog`) go to
`<stream>:quarantine`, where the loader worker picks them up for the `quarantine` table.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from micromoments.activation.bus import RedisStreamsBus
    from micromoments.activation.quarantine_log import QuarantineLog

log = logging.getLogger("micromoments.server")


def _joined(groups: list[bytes], limit: int) -> list[bytes]:
    """Whole groups joined into blobs of at most about `limit` bytes (one stream entry each)."""
    out: list[bytes] = []
    part: list[bytes] = []
    size = 0
    for g in groups:
        if part and size + len(g) > limit:
            out.append(b"".join(part))
            part, size = [], 0
        part.append(g)
        size += len(g)
    if part:
        out.append(b"".join(part))
    return out


class WalShipper:
    """Moves what the WAL made durable onto the Redis stream, off the request path.

    The WAL calls `shipper.on_durable(seq, data)` on its writer thread after each group
    commit; a shipper thread `XADD`s the groups (one blob entry each, in order) and deletes
    a closed segment once all of it is on the stream. The open segment is rotated every
    `interval_ms` so that segments stay small. On start, segments left by a crash are
    shipped again (at-least-once: the store and the workers deduplicate by `messageId`).
    """

    entry_bytes = 4 << 20  # stream entries are about this size at most
    coalesce_s = 0.005  # how long queued groups gather before one XADD ships them

    def __init__(self, wal: Any, bus: RedisStreamsBus, *, interval_ms: int = 1000,
                 refused: QuarantineLog | None = None, refused_bus: RedisStreamsBus | None = None):
        self.wal = wal
        self.bus = bus
        self.refused, self.refused_bus = refused, refused_bus  # the collector's quarantine log, its stream
        self.interval_s = interval_ms / 1000.0
        self._queue: collections.deque[bytes] = collections.deque()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_rotate = time.monotonic()
        self._ship_lock = threading.Lock()  # the thread and /admin/flush both ship
        self.shipped = 0
        self.errors = 0
        self.last_error: str | None = None
        # Segments that were closed before this process started were never (fully) shipped.
        self._backlog = list(wal.closed_segments())
        wal.add_durable_listener(self.on_durable)

    def on_durable(self, seq: int, data: bytes) -> None:
        with self._cond:
            self._queue.append(data)
            self._cond.notify()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="wal-shipper", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.ship_once()
            except Exception as exc:  # Redis is down: the segments stay on disk until it is back
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("shipping the WAL to Redis failed (%s); retrying", exc)
                self._stop.wait(0.5)
                continue
            with self._cond:
                if not self._queue:
                    self._cond.wait(min(0.05, self.interval_s))
            # Let a few fsync groups gather: one XADD per 5 ms instead of one per group keeps the
            # shipper's share of the collector's GIL small (the live path is not waiting on ms).
            self._stop.wait(self.coalesce_s)

    def ship_once(self, *, rotate: bool = False, final: bool = False) -> int:
        """Ship the backlog and every queued group; delete fully shipped closed segments."""
        with self._ship_lock:
            return self._ship(rotate=rotate, final=final)

    def _ship(self, *, rotate: bool, final: bool) -> int:
        n = 0
        while self._backlog:
            seg = self._backlog[0]
            if seg.exists():
                data = seg.read_bytes()
                start = 0
                while start < len(data):  # entries of ~4 MB, cut after a whole line
                    end = data.find(b"\n", min(len(data), start + self.entry_bytes) - 1)
                    end = len(data) if end < 0 else end + 1
                    if data[start:end].strip():
                        self.bus.publish_blob(data[start:end])
                    start = end
                n += data.count(b"\n")
                seg.unlink()
            self._backlog.pop(0)
        now = time.monotonic()
        if not final and (rotate or now - self._last_rotate >= self.interval_s):
            self._last_rotate = now
            self.wal.rotate()
        closed = self.wal.closed_segments()  # every group of these is already queued
        with self._cond:
            groups = list(self._queue)
        if groups:
            self.bus.publish_blobs(_joined(groups, self.entry_bytes))
            with self._cond:
                for _ in groups:
                    self._queue.popleft()
            k = sum(g.count(b"\n") for g in groups)
            n += k
            self.shipped += k
        for seg in closed:
            seg.unlink(missing_ok=True)
        self._ship_refused()
        return n

    def _ship_refused(self) -> None:
        """Refused events onto their stream; forgotten here once Redis has them (a repeat is harmless)."""
        if self.refused is None or self.refused_bus is None:
            return
        rows = self.refused.take()
        if rows:
            self.refused_bus.publish_blob(b"".join(orjson.dumps(r) + b"\n" for r in rows))
        self.refused.done()

    def pending(self) -> int:
        return len(self._queue) + len(self._backlog)

    def close(self) -> None:
        """Ship what is left (call after the WAL is closed)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=10)
        try:
            self.ship_once(rotate=False, final=True)
        except Exception as exc:
            log.warning("could not ship the last WAL groups (%s); they will be shipped at the next start", exc)
