"""Zero-filled WAL segments made ahead of time, so an acknowledgement's fsync never allocates.

On ext4 (and most journaling file systems) an `fdatasync` after an *append* must commit the
journal, because the file's size and block map changed; that commit waits behind every other
process's writeback on the disk (a 1.5 GB copy next to the collector pushed single-event p99
from 6 ms to 0.1-0.7 s). An `fdatasync` after *overwriting* blocks that were already written
and synced only writes those blocks. So, as PostgreSQL does with its WAL segments
(`wal_init_zero`), a background thread writes the next segments full of zeros and syncs them
while the current one is in use; the writer then overwrites them in place. (Measured: it helps
`benchmarks/wal_fsync.py` next to a heavy writer, not the whole server on our VM, whose fsync
stalls come from the host; so `[server] wal_preallocate` is off by default.)

A spare is made under a temporary name and renamed to the segment name it will have
(`wal-<seq>.jsonl`, a sequence number the writer has not reached) only once its zeros and the
rename are on disk, so a crash never leaves half a spare under a segment's name. Whatever the
writer did not fill is cut off when the segment closes, and recovery cuts a zero tail left by a
crash (JSON lines never contain a NUL byte).

>>> import tempfile, time
>>> pool = SparePool(tempfile.mkdtemp(), name_for=lambda seq: f"wal-{seq:012d}.jsonl", first_seq=2)
>>> pool.start()
>>> while pool.ready_count() == 0: time.sleep(0.01)
>>> path, size, durable = pool.claim(2)
>>> path.name, durable, size == pool.target_bytes, path.read_bytes().count(0) == size
('wal-000000000002.jsonl', True, True, True)
>>> pool.close()
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable
from pathlib import Path

__all__ = ["SparePool", "fsync_dir"]

# Zeros go down one page per write: the page cache sizes its folios by the write, and with
# larger folios each later fsync of one small group would write back the whole folio.
_PAGE = 4096
_ZEROS = bytes(_PAGE)
_SPARE_PREFIX = "spare-"


def fsync_dir(directory: Path) -> None:
    """Make a directory's entries (a new or renamed file) durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale_spares(directory: Path) -> None:
    """Delete half-made spares a crash left behind (they hold zeros only)."""
    for p in directory.glob(f"{_SPARE_PREFIX}*.tmp"):
        p.unlink(missing_ok=True)


class SparePool:
    """Keeps up to `ready` zero-filled segments ahead of the writer.

    `claim(seq)` hands the writer the spare named for `seq` when there is one, else None; from then on the pool never touches that sequence number. The size of the
    next spares follows the writer: `want(nbytes)` (the WAL asks for a quarter more than its last
    segment held, so an idle server does not write megabytes of zeros a second).
    """

    def __init__(self, directory: str | Path, *, name_for: Callable[[int], str], first_seq: int,
                 ready: int = 2, min_bytes: int = 1 << 20, max_bytes: int = 64 << 20,
                 target_bytes: int = 4 << 20):
        self.directory = Path(directory)
        self._name_for = name_for
        self._ready_max = ready
        self.min_bytes = min_bytes
        self.max_bytes = max_bytes
        self.target_bytes = self._clamp(target_bytes)
        self._claimed_upto = first_seq - 1  # the writer has used every seq up to this one
        self._ready: dict[int, int] = {}  # seq -> size, zeros and name on disk
        self._renaming: dict[int, int] = {}  # seq -> size, renamed, directory not yet synced
        self._lock = threading.Condition()
        self._closing = False
        self._counter = itertools.count()
        self._thread: threading.Thread | None = None
        self.made = 0
        self.claimed = 0
        self.missed = 0  # the writer found no spare ready and created a plain file
        self.error: str | None = None

    def _clamp(self, nbytes: int) -> int:
        # Whole MiB, so the zeros are written in full blocks.
        mib = -(-max(self.min_bytes, min(self.max_bytes, nbytes)) // (1 << 20))
        return mib << 20

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="wal-spares", daemon=True)
        self._thread.start()

    def want(self, nbytes: int) -> None:
        """Size the next spares for about `nbytes` of log."""
        with self._lock:
            self.target_bytes = self._clamp(nbytes)

    def ready_count(self) -> int:
        with self._lock:
            return len(self._ready)

    def claim(self, seq: int) -> tuple[Path, int, bool] | None:
        """The spare for `seq` as (path, size, name_is_durable), or None (create the segment).

        `name_is_durable` is False when the spare was renamed but its directory entry is still
        being synced: the caller syncs the directory itself before acknowledging anything.
        """
        with self._lock:
            self._claimed_upto = max(self._claimed_upto, seq)
            durable = seq in self._ready
            size = self._ready.pop(seq, None) if durable else self._renaming.pop(seq, None)
            # Spares for numbers the writer skipped are of no use any more.
            stale = [s for s in self._ready if s <= seq]
            for s in stale:
                del self._ready[s]
            self._lock.notify_all()
        for s in stale:
            (self.directory / self._name_for(s)).unlink(missing_ok=True)
        if size is None:
            self.missed += 1
            return None
        self.claimed += 1
        return self.directory / self._name_for(seq), size, durable

    # -- the preparing thread ---------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._closing and len(self._ready) >= self._ready_max:
                    self._lock.wait()
                if self._closing:
                    return
                size = self.target_bytes
            try:
                self._make_one(size)
            except Exception as exc:  # disk full: the writer falls back to plain files
                self.error = f"{type(exc).__name__}: {exc}"
                with self._lock:
                    if self._lock.wait(1.0) and self._closing:
                        return

    def _make_one(self, size: int) -> None:
        tmp = self.directory / f"{_SPARE_PREFIX}{os.getpid()}-{next(self._counter)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            written = 0
            while written < size:
                written += os.write(fd, _ZEROS[: size - written])
                # Sync every 4 MiB: small bursts, so the log's own fsyncs never queue behind a big one.
                if written % (4 << 20) == 0 or written >= size:
                    os.fdatasync(fd)
                if self._closing:
                    break
        finally:
            os.close(fd)
        with self._lock:
            if self._closing or written < size:
                tmp.unlink(missing_ok=True)
                return
            seq = max([self._claimed_upto, *self._ready, *self._renaming]) + 1
            path = self.directory / self._name_for(seq)
            os.rename(tmp, path)
            self._renaming[seq] = size
        fsync_dir(self.directory)  # the name is durable before the writer may rely on it
        with self._lock:
            if self._renaming.pop(seq, None) is None:
                return  # the writer claimed it meanwhile (and synced the directory itself)
            if not self._closing:
                self._ready[seq] = size
                self.made += 1
                return
        path.unlink(missing_ok=True)

    def close(self) -> None:
        """Stop making spares and delete the unused ones."""
        with self._lock:
            self._closing = True
            self._lock.notify_all()
            left = [*self._ready, *self._renaming]
            self._ready.clear()
            self._renaming.clear()
        if self._thread is not None:
            self._thread.join(timeout=30)
        for s in left:
            (self.directory / self._name_for(s)).unlink(missing_ok=True)
