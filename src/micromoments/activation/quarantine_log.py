"""Events the collector refused, kept on disk until the store loader moves them into `quarantine`.

The collector answers a mixed batch with 200 and the index and reason of each bad event; the bad
events must not be lost either, so they go, with their reason, to `quarantine.jsonl` next to the
write-ahead log (appended and flushed before the answer). `StoreLoader` takes the file on each
round and inserts its rows into the store's `quarantine` table, as `micromoments ingest` would
have quarantined them (source `api`, the item's index in its request as `line`). In a scale-out
setup the `WalShipper` ships the file to the `<stream>:quarantine` stream and the loader worker
keeps it in its own log. Each row is stamped `at` (unique per process, to the microsecond): with
`line` and `raw` it keys the row, so a row shipped or loaded twice after a crash is stored once.

>>> import tempfile
>>> q = QuarantineLog(tempfile.mkdtemp(), fsync=False)
>>> q.append([{"line": 3, "field": "batch[3].timestamp", "reason": "in the future", "raw": "{}"}])
>>> [r["field"] for r in q.take()]
['batch[3].timestamp']
>>> q.done(); q.take()
[]
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from pathlib import Path
from typing import Any

import orjson

__all__ = ["QuarantineLog"]

FILE_NAME = "quarantine.jsonl"
TAKING_NAME = "quarantine-loading.jsonl"
MAX_RAW_CHARS = 64 * 1024  # a refused event is kept whole up to this size, then cut


class QuarantineLog:
    """Append-only file of refused events; thread-safe."""

    def __init__(self, directory: str | Path, *, fsync: bool = True):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / FILE_NAME
        self.fsync = fsync
        self._lock = threading.Lock()
        self.appended = 0
        self._last_at = dt.datetime.min

    def append(self, rows: list[dict[str, Any]]) -> None:
        """Write rows {line, field, reason, raw[, at]} durably (flushed, fsync'd when `fsync`).

        A row without `at` (UTC, naive ISO) is stamped now; rows that have one (shipped from a
        collector) keep it, so the store loader can recognise a repeat.
        """
        if not rows:
            return
        with self._lock:
            stamped = []
            for r in rows:
                if not r.get("at"):
                    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
                    self._last_at = max(now, self._last_at + dt.timedelta(microseconds=1))
                    r = {**r, "at": self._last_at.isoformat(timespec="microseconds")}
                stamped.append(r)
            data = b"".join(orjson.dumps({**r, "raw": str(r.get("raw") or "")[:MAX_RAW_CHARS]}) + b"\n"
                            for r in stamped)
            with open(self.path, "ab") as f:
                f.write(data)
                f.flush()
                if self.fsync:
                    os.fsync(f.fileno())
            self.appended += len(rows)

    def take(self) -> list[dict[str, Any]]:
        """The rows written so far (and any a crash left being loaded); `done()` once they are stored."""
        taking = self.directory / TAKING_NAME
        with self._lock:
            if self.path.exists() and not taking.exists():
                os.replace(self.path, taking)
        if not taking.exists():
            return []
        rows = []
        for line in taking.read_bytes().splitlines():
            try:
                rows.append(orjson.loads(line))
            except orjson.JSONDecodeError:  # a line cut by a crash mid-write
                continue
        if not rows:
            taking.unlink(missing_ok=True)
        return rows

    def done(self) -> None:
        """The rows of the last `take` are in the store: forget them."""
        (self.directory / TAKING_NAME).unlink(missing_ok=True)
