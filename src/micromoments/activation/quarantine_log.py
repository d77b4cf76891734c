"""Events the collector refused, kept on disk until the store loader moves them into `quarantine`.

The collector answers a mixed batch with 200 and the index and reason of each bad event; the bad
events must not be lost either, so they go, with their reason, to `quarantine.jsonl` next to the
write-ahead log (appended and flushed before the answer). `StoreLoader` takes the file on each
round and inserts its rows into the store's `quarantine` table, as `micromoments ingest` would
have quarantined them (source `api`, the item's index in its request as `line`).

>>> import tempfile
>>> q = QuarantineLog(tempfile.mkdtemp(), fsync=False)
>>> q.append([{"line": 3, "field": "batch[3].timestamp", "reason": "in the future", "raw": "{}"}])
>>> [r["field"] for r in q.take()]
['batch[3].timestamp']
>>> q.done(); q.take()
[]
"""

from __future__ import annotations

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

    def append(self, rows: list[dict[str, Any]]) -> None:
        """Write rows {line, field, reason, raw} durably (flushed, fsync'd when `fsync`)."""
        if not rows:
            return
        data = b"".join(orjson.dumps({**r, "raw": str(r.get("raw") or "")[:MAX_RAW_CHARS]}) + b"\n"
                        for r in rows)
        with self._lock:
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
