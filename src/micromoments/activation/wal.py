"""A write-ahead log with group commit: the collector answers 200 only once an event is in it.

Events are appended as JSON lines to numbered segment files (`wal-000000000001.jsonl`).
One writer thread owns the open segment: it takes everything that queued up while the
previous fsync ran, writes it in one `write`, calls `fdatasync` once, then wakes every
waiter of that group. Under load a group holds hundreds of events, so the fsync cost is
shared; with no load an event waits for one fsync only. With `sync_interval_ms` > 0 (the
server's default, `[server] fsync_interval_ms = 100`) the waiters wake after the `write` and a
syncer thread fsyncs on a timer instead.

Closed segments (every segment but the open one) are what the store loader moves into the
store and then deletes. After a crash, `WriteAheadLog` cuts the zeros of a preallocated tail and
a torn last line (neither was acknowledged) and starts a new segment, so everything in the
directory is complete.

With `preallocate=True` (`wal_spares.SparePool`) a background thread writes the next segments full
of zeros, so an acknowledgement's `fdatasync` overwrites synced blocks and does not wait for a
journal commit behind other processes' writeback; a segment is cut to what it holds when it
closes. It is off by default: in the whole server on our benchmark VM it did not help (docs/deploy.md).

>>> import tempfile
>>> wal = WriteAheadLog(tempfile.mkdtemp())
>>> wal.write_sync(b'{"type":"track"}\\n')
>>> wal.rotate()
>>> [p.name for p in wal.closed_segments()]
['wal-000000000001.jsonl']
>>> wal.close()
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from micromoments.activation.wal_spares import SparePool, fsync_dir, remove_stale_spares
from micromoments.errors import ConfigError, InputError

__all__ = ["WriteAheadLog", "check_sync_interval", "segment_seq"]

SPARE_MAX_BYTES = 8 << 20
_SEGMENT = re.compile(r"^wal-(\d{12})\.jsonl$")


def segment_seq(path: Path) -> int | None:
    """The sequence number of a segment file, or None for other files."""
    m = _SEGMENT.match(path.name)
    return int(m.group(1)) if m else None


def _segment_name(seq: int) -> str:
    return f"wal-{seq:012d}.jsonl"


def _first_nul(fh: Any, size: int) -> int:
    """Offset of the first NUL byte (where a preallocated segment's unwritten zeros begin)."""
    fh.seek(0)
    pos = 0
    while pos < size:
        block = fh.read(1 << 20)
        if not block:
            break
        nul = block.find(b"\0")
        if nul >= 0:
            return pos + nul
        pos += len(block)
    return size


def _truncate_torn_tail(path: Path) -> int:
    """Cut a segment back to its last complete line, preallocated zeros first.

    Returns the bytes of a torn (never acknowledged) line that were removed; zeros don't count.
    """
    original = path.stat().st_size
    if original == 0:
        return 0
    with open(path, "rb+") as fh:
        size = _first_nul(fh, original)
        keep = size
        if size and not _ends_with_newline(fh, size):
            # Walk back to the last newline (a torn write is at most one group long).
            pos, chunk = size, 65536
            keep = 0
            while pos > 0:
                start = max(0, pos - chunk)
                fh.seek(start)
                nl = fh.read(pos - start).rfind(b"\n")
                if nl >= 0:
                    keep = start + nl + 1
                    break
                pos = start
        if keep < original:
            fh.truncate(keep)
            fh.flush()
            os.fsync(fh.fileno())
        return size - keep


def _ends_with_newline(fh: Any, size: int) -> bool:
    fh.seek(size - 1)
    return fh.read(1) == b"\n"


def _check_no_nul(data: bytes) -> None:
    # Recovery reads the first NUL as the end of a preallocated segment's data.
    if b"\0" in data:
        raise ValueError("a WAL append cannot contain a NUL byte; JSON lines never do "
                         "(serialise with json/orjson, which escape it as \\u0000)")


def check_sync_interval(ms: float, where: str = "[server] fsync_interval_ms") -> None:
    """Refuse a negative `fsync_interval_ms` (0 = fsync before every acknowledgement).

    >>> check_sync_interval(100.0)
    """
    if ms < 0:
        raise ConfigError(f"the fsync interval must be 0 or more ms, got {ms}", where=where,
                          hint="0 fsyncs before every acknowledgement; e.g. 100 fsyncs every 100 ms")


class _Group:
    """Waiters of one append: asyncio futures (resolved on their loop) or a callback."""

    __slots__ = ("data", "future", "loop", "callback")

    def __init__(self, data: bytes, future: asyncio.Future | None = None,
                 loop: asyncio.AbstractEventLoop | None = None,
                 callback: Callable[[BaseException | None], None] | None = None):
        self.data = data
        self.future = future
        self.loop = loop
        self.callback = callback


def _resolve(futures: list[asyncio.Future], error: BaseException | None) -> None:
    for fut in futures:
        if not fut.done():
            if error is None:
                fut.set_result(None)
            else:
                fut.set_exception(error)


class WriteAheadLog:
    """Durable appends of JSON lines with group commit.

    `fsync=False` skips the fsync (a dev server: a crash of the machine, not of the
    process, can then lose the last events). `group_commit_ms` waits that long before
    each fsync to gather more appends; 0 relies on the natural grouping under load.
    `segment_max_bytes` rotates a segment that grew that big. `preallocate` writes the next
    segments full of zeros ahead of time (see the module's docstring); it needs `fsync`.

    `sync_interval_ms` > 0 trades durability for latency, as Redis's `appendfsync everysec`
    does: an append is acknowledged once it is written to the OS (it survives a `kill -9` of
    the process) and a background thread `fdatasync`s every that many ms, so a power loss can
    lose about that much. 0 (this class's default; the server's is 100 ms) fsyncs before every
    acknowledgement.
    """

    def __init__(self, directory: str | Path, *, fsync: bool = True, group_commit_ms: float = 0.0,
                 segment_max_bytes: int = 64 * 1024 * 1024, preallocate: bool = False,
                 sync_interval_ms: float = 0.0):
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create the WAL directory: {exc}", where=str(self.directory),
                             hint="set [server] wal_dir to a writable directory") from exc
        check_sync_interval(sync_interval_ms)
        self.fsync = fsync
        self.sync_interval_s = sync_interval_ms / 1000.0 if fsync else 0.0
        self._sync_per_ack = fsync and self.sync_interval_s <= 0
        self._retired: list[int] = []  # closed segments' fds the syncer syncs, then closes
        self._dir_dirty = False
        self._sync_lock = threading.Lock()
        self._sync_stop = threading.Event()
        self.group_commit_s = group_commit_ms / 1000.0
        self.segment_max_bytes = segment_max_bytes
        self.recovered_bytes_dropped = 0
        remove_stale_spares(self.directory)
        existing = sorted(p for p in self.directory.iterdir() if segment_seq(p) is not None)
        for path in existing:
            self.recovered_bytes_dropped += _truncate_torn_tail(path)
        self.recovered_segments = [p for p in existing if p.stat().st_size > 0]
        for p in existing:
            if p.stat().st_size == 0:
                p.unlink()  # an unused spare, or a segment that never got a whole line
        self._seq = max((segment_seq(p) or 0 for p in self.recovered_segments), default=0)
        self._fd = -1
        self._size = 0
        self._capacity = 0  # preallocated bytes of the open segment (0: a plain, growing file)
        self._spares: SparePool | None = None
        self._open_next()
        if preallocate and fsync:
            # Spares stop at 8 MiB: past that only batch load grows a segment, and there one fsync
            # carries hundreds of events, so zeroing ahead would cost more than it saves.
            self._spares = SparePool(self.directory, name_for=_segment_name, first_seq=self._seq + 1,
                                     max_bytes=min(segment_max_bytes, SPARE_MAX_BYTES))
            self._spares.start()
        # Counters, read by /admin/stats.
        self.appends = 0
        self.groups = 0
        self.bytes_written = 0
        self.fsync_max_ms = 0.0
        self.fsyncs_over_25ms = 0
        self.syncs = 0  # background sync rounds (sync_interval_ms > 0)
        self._pending: list[_Group] = []
        self._cond = threading.Condition()
        self._rotate_requested = False
        self._closing = False
        self._error: BaseException | None = None
        self._durable_listeners: list[Callable[[int, bytes], None]] = []
        self._thread = threading.Thread(target=self._run, name="wal-writer", daemon=True)
        self._thread.start()
        self._syncer: threading.Thread | None = None
        if self.sync_interval_s > 0:
            self._syncer = threading.Thread(target=self._sync_loop, name="wal-syncer", daemon=True)
            self._syncer.start()

    # -- segments ---------------------------------------------------------------------------
    def _open_next(self) -> None:
        self._close_segment()
        self._seq += 1
        spare = self._spares.claim(self._seq) if self._spares is not None else None
        if spare is not None:
            path, self._capacity, name_durable = spare
            self._fd = os.open(path, os.O_WRONLY)  # overwritten in place, from offset 0
        else:
            path, self._capacity, name_durable = self.directory / _segment_name(self._seq), 0, False
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        self._size = 0
        if self.fsync and not name_durable:
            # A new file's directory entry must reach the disk too, or a power cut can lose it.
            if self._sync_per_ack:
                fsync_dir(self.directory)
            else:
                self._dir_dirty = True

    def _close_segment(self) -> None:
        if self._fd < 0:
            return
        if self._capacity > self._size:
            # Readers get exact JSON lines; if a crash beats this, recovery cuts the zeros.
            os.ftruncate(self._fd, self._size)
        if self.sync_interval_s > 0:
            with self._sync_lock:
                self._retired.append(self._fd)  # synced (then closed) by the syncer, off the ack path
        else:
            os.close(self._fd)
        self._fd = -1
        if self._spares is not None and self._size:
            self._spares.want(self._size + self._size // 4)  # segments hold ~flush_interval_ms of log

    @property
    def spares_used(self) -> int:
        """Segments that started preallocated (the others were plain, growing files)."""
        return self._spares.claimed if self._spares is not None else 0

    @property
    def current_seq(self) -> int:
        return self._seq

    def closed_segments(self) -> list[Path]:
        """Complete segments no writer appends to any more, oldest first."""
        current = self._seq
        return sorted(
            (p for p in self.directory.iterdir() if (s := segment_seq(p)) is not None and s < current),
            key=lambda p: segment_seq(p) or 0,
        )

    def rotate(self, timeout: float = 10.0) -> None:
        """Close the open segment (if it holds anything) so the loader can take it. Blocks until done."""
        with self._cond:
            if self._size == 0 and not self._pending:
                return
            target = self._seq
            self._rotate_requested = True
            self._cond.notify_all()
            deadline = time.monotonic() + timeout
            while self._seq == target and not self._closing:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("WAL rotation timed out")
                self._cond.wait(left)

    def add_durable_listener(self, fn: Callable[[int, bytes], None]) -> None:
        """`fn(segment_seq, data)` on the writer thread after each group is on disk, in log order.

        Called before the segment can rotate, so once a segment is closed every group of it
        has been handed to the listeners (the `WalShipper` relies on that).
        """
        self._durable_listeners.append(fn)

    # -- appends ----------------------------------------------------------------------------
    def _check(self) -> None:
        if self._error is not None:
            raise OSError(f"the write-ahead log failed: {self._error}")
        if self._closing:
            raise RuntimeError("the write-ahead log is closed")

    def submit(self, data: bytes) -> asyncio.Future:
        """Queue `data` (whole JSON lines); the returned future resolves once it is on disk.

        Call from a running event loop.
        """
        _check_no_nul(data)
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        with self._cond:
            self._check()
            self._pending.append(_Group(data, fut, loop))
            if len(self._pending) == 1:
                self._cond.notify()
        return fut

    def append(self, data: bytes, callback: Callable[[BaseException | None], None]) -> None:
        """Queue `data`; `callback(error_or_None)` runs on the writer thread after the fsync."""
        _check_no_nul(data)
        with self._cond:
            self._check()
            self._pending.append(_Group(data, callback=callback))
            if len(self._pending) == 1:
                self._cond.notify()

    def write_sync(self, data: bytes, timeout: float = 30.0) -> None:
        """Append and wait until it is durable (for scripts and tests)."""
        done = threading.Event()
        box: list[BaseException | None] = []

        def cb(err: BaseException | None) -> None:
            box.append(err)
            done.set()

        self.append(data, cb)
        if not done.wait(timeout):
            raise TimeoutError("WAL append timed out")
        if box[0] is not None:
            raise box[0]

    # -- the writer thread ------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closing and not self._rotate_requested:
                    self._cond.wait()
                if self._closing and not self._pending:
                    return
            if self.group_commit_s and self._pending:
                time.sleep(self.group_commit_s)
            with self._cond:
                group, self._pending = self._pending, []
                rotate, self._rotate_requested = self._rotate_requested, False
            error: BaseException | None = None
            if group:
                data = b"".join(g.data for g in group)
                try:
                    self._write(data)
                except BaseException as exc:  # disk full, I/O error: every waiter hears it
                    error = exc
                    self._error = exc
                if error is None:
                    for listener in self._durable_listeners:
                        try:
                            listener(self._seq, data)
                        except Exception:  # a listener's bug must not stop the log
                            pass
                self._wake(group, error)
            if rotate or self._size >= self.segment_max_bytes:
                with self._cond:
                    if self._size:
                        self._open_next()
                    self._cond.notify_all()

    def _write(self, buf: bytes) -> None:
        view = memoryview(buf)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        if self._sync_per_ack:
            self._timed_fdatasync(self._fd)
        self._size += len(buf)
        self.bytes_written += len(buf)
        self.groups += 1

    def _timed_fdatasync(self, fd: int) -> None:
        started = time.perf_counter()
        os.fdatasync(fd)
        ms = (time.perf_counter() - started) * 1000.0
        if ms > self.fsync_max_ms:
            self.fsync_max_ms = ms
        if ms > 25.0:
            self.fsyncs_over_25ms += 1

    # -- the syncer thread (sync_interval_ms > 0) --------------------------------------------
    def _sync_loop(self) -> None:
        while not self._sync_stop.wait(self.sync_interval_s):
            try:
                self.sync_now()
            except OSError as exc:  # as PostgreSQL: after a failed fsync nothing more is acknowledged
                self._error = exc
                return

    def sync_now(self) -> None:
        """Make everything written so far durable (the syncer calls this every interval)."""
        with self._cond:  # the writer cannot close or swap the open segment meanwhile
            current = os.dup(self._fd) if self._fd >= 0 else -1
            dir_dirty, self._dir_dirty = self._dir_dirty, False
        with self._sync_lock:
            retired, self._retired = self._retired, []
        try:
            for fd in (*retired, current):
                if fd >= 0:
                    self._timed_fdatasync(fd)
            if dir_dirty:
                fsync_dir(self.directory)
            self.syncs += 1
        finally:
            for fd in (*retired, current):
                if fd >= 0:
                    os.close(fd)

    def _wake(self, group: list[_Group], error: BaseException | None) -> None:
        self.appends += len(group)
        by_loop: dict[Any, list[asyncio.Future]] = {}
        for g in group:
            if g.future is not None:
                by_loop.setdefault(g.loop, []).append(g.future)
            elif g.callback is not None:
                try:
                    g.callback(error)
                except Exception:  # a waiter's bug must not stop the log
                    pass
        # One wake-up per event loop per group, not one per request.
        for loop, futures in by_loop.items():
            try:
                loop.call_soon_threadsafe(_resolve, futures, error)
            except RuntimeError:  # that loop is closed: nobody waits any more
                pass

    def close(self) -> None:
        """Write what is queued, then stop the writer and close the segment."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout=30)
        if self._spares is not None:
            self._spares.close()
        if self._syncer is not None:
            self._sync_stop.set()
            self._syncer.join(timeout=30)
        if self._fd >= 0:
            self._close_segment()
            if self.sync_interval_s > 0:
                self.sync_now()
            current = self.directory / _segment_name(self._seq)
            if current.exists() and current.stat().st_size == 0:
                current.unlink()
            self._seq += 1  # every segment is closed now: the loader may take them all
