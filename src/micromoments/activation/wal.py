"""A write-ahead log with group commit: the collector answers 200 only after an fsync.

Events are appended as JSON lines to numbered segment files (`wal-000000000001.jsonl`).
One writer thread owns the open segment: it takes everything that queued up while the
previous fsync ran, writes it in one `write`, calls `fdatasync` once, then wakes every
waiter of that group. Under load a group holds hundreds of events, so the fsync cost is
shared; with no load an event waits for one fsync only.

Closed segments (every segment but the open one) are what the store loader moves into the
store and then deletes. After a crash, `WriteAheadLog` truncates a torn last line (it was
never acknowledged) and starts a new segment, so everything in the directory is complete.

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

from micromoments.errors import InputError

__all__ = ["WriteAheadLog", "segment_seq"]

_SEGMENT = re.compile(r"^wal-(\d{12})\.jsonl$")


def segment_seq(path: Path) -> int | None:
    """The sequence number of a segment file, or None for other files."""
    m = _SEGMENT.match(path.name)
    return int(m.group(1)) if m else None


def _segment_name(seq: int) -> str:
    return f"wal-{seq:012d}.jsonl"


def _fsync_dir(directory: Path) -> None:
    # A new file's directory entry must reach the disk too, or a power cut can lose it.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _truncate_torn_tail(path: Path) -> int:
    """Cut a segment back to its last complete line; returns the bytes removed."""
    size = path.stat().st_size
    if size == 0:
        return 0
    with open(path, "rb+") as fh:
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return 0
        # Walk back to the last newline (a torn write is at most one group long).
        pos, chunk = size, 65536
        while pos > 0:
            start = max(0, pos - chunk)
            fh.seek(start)
            block = fh.read(pos - start)
            nl = block.rfind(b"\n")
            if nl >= 0:
                keep = start + nl + 1
                break
            pos = start
        else:
            keep = 0
        fh.truncate(keep)
        fh.flush()
        os.fsync(fh.fileno())
        return size - keep


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
    `segment_max_bytes` rotates a segment that grew that big.
    """

    def __init__(self, directory: str | Path, *, fsync: bool = True, group_commit_ms: float = 0.0,
                 segment_max_bytes: int = 64 * 1024 * 1024):
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create the WAL directory: {exc}", where=str(self.directory),
                             hint="set [server] wal_dir to a writable directory") from exc
        self.fsync = fsync
        self.group_commit_s = group_commit_ms / 1000.0
        self.segment_max_bytes = segment_max_bytes
        self.recovered_bytes_dropped = 0
        existing = sorted(p for p in self.directory.iterdir() if segment_seq(p) is not None)
        for path in existing:
            self.recovered_bytes_dropped += _truncate_torn_tail(path)
        self.recovered_segments = [p for p in existing if p.stat().st_size > 0]
        for p in existing:
            if p.stat().st_size == 0:
                p.unlink()
        self._seq = max((segment_seq(p) or 0 for p in existing), default=0)
        self._fd = -1
        self._size = 0
        self._open_next()
        # Counters, read by /admin/stats.
        self.appends = 0
        self.groups = 0
        self.bytes_written = 0
        self._pending: list[_Group] = []
        self._cond = threading.Condition()
        self._rotate_requested = False
        self._closing = False
        self._error: BaseException | None = None
        self._durable_listeners: list[Callable[[int, bytes], None]] = []
        self._thread = threading.Thread(target=self._run, name="wal-writer", daemon=True)
        self._thread.start()

    # -- segments ---------------------------------------------------------------------------
    def _open_next(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
        self._seq += 1
        path = self.directory / _segment_name(self._seq)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._size = 0
        if self.fsync:
            _fsync_dir(self.directory)

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
        if self.fsync:
            os.fdatasync(self._fd)
        self._size += len(buf)
        self.bytes_written += len(buf)
        self.groups += 1

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
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
            current = self.directory / _segment_name(self._seq)
            if current.exists() and current.stat().st_size == 0:
                current.unlink()
            self._seq += 1  # every segment is closed now: the loader may take them all
