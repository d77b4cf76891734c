"""Durable file steps on a lake without Spark: the live loader's appends and the compaction's swap.

A plain Parquet lake has no transaction log, so a change of several files commits through a
*journal*: the new files are written under hidden names (a leading "." - Spark, pyarrow and DuckDB
globs skip them), flushed to disk; then a small JSON journal listing the renames (and the files to
delete) is written and renamed into place - that rename is the commit point; then the renames and
deletes run and the journal goes. A crash before the journal leaves hidden files that `sweep`
removes (the change never happened); a crash after it is finished by `replay` (the change happened).

`LakeFiles` works on a local folder (fsync of files and folders) or, through pyarrow's filesystems,
on an object store URL (`s3a://` is read as `s3://`; a put there is atomic per object).

>>> import tempfile, pathlib
>>> files = LakeFiles(tempfile.mkdtemp())
>>> hidden = files.write_hidden("t/part-1.parquet", lambda p: pathlib.Path(p).write_bytes(b"x"))
>>> files.commit("j1.json", {"moves": [[hidden, "t/part-1.parquet"]], "deletes": []})
>>> files.visible("t")
['t/part-1.parquet']
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from typing import Any

import orjson

from micromoments.store.lake import is_local

JOURNALS = "_journal"  # <lake>/_journal/*.json: committed changes not finished yet


def hidden_name(rel: str) -> str:
    """The hidden name a file is written under before it is published.

    >>> hidden_name("events/event_date=2026-01-05/part-live-1.parquet")
    'events/event_date=2026-01-05/.part-live-1.parquet.tmp'
    """
    folder, name = os.path.split(rel)
    return os.path.join(folder, f".{name}.tmp")


class LakeFiles:
    """File steps on the lake at `url` (a folder, file:// or an object store URL)."""

    def __init__(self, url: str):
        self.url = str(url).rstrip("/")
        self.fs: Any = None
        if is_local(self.url):
            self.root = self.url.removeprefix("file://")
        else:
            from pyarrow import fs as pafs

            self.fs, self.root = pafs.FileSystem.from_uri(self.url.replace("s3a://", "s3://", 1))

    def path(self, rel: str) -> str:
        return f"{self.root}/{rel}" if rel else self.root

    # -- reading
    def listing(self, rel: str) -> list[str]:
        """Every file under `rel` (recursively), as paths relative to the lake."""
        base = self.path(rel)
        if self.fs is None:
            if not os.path.isdir(base):
                return []
            return sorted(os.path.relpath(os.path.join(d, f), self.root) for d, _, fs in os.walk(base) for f in fs)
        from pyarrow import fs as pafs

        infos = self.fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
        return sorted(i.path[len(self.root) + 1:] for i in infos if i.type == pafs.FileType.File)

    def visible(self, rel: str) -> list[str]:
        """The Parquet files readers see under `rel` (not hidden, not in a `_` folder)."""
        return [f for f in self.listing(rel) if f.endswith(".parquet")
                and not any(part.startswith((".", "_")) for part in f.split("/")[1:])]

    def exists(self, rel: str) -> bool:
        if self.fs is None:
            return os.path.exists(self.path(rel))
        from pyarrow import fs as pafs

        return self.fs.get_file_info(self.path(rel)).type != pafs.FileType.NotFound

    def read(self, rel: str, columns: list[str] | None = None) -> Any:
        """The visible Parquet under `rel` as one Arrow table (None when there is none)."""
        import pyarrow.dataset as ds

        files = self.visible(rel)
        if not files:
            return None
        data = ds.dataset([self.path(f) for f in files], filesystem=self.fs, format="parquet")
        return data.to_table(columns=columns)

    def rows(self, rel: str) -> int:
        """Rows in the visible Parquet under `rel`, from the files' footers."""
        import pyarrow.parquet as pq

        return sum(pq.ParquetFile(self._open(f)).metadata.num_rows for f in self.visible(rel))

    def _open(self, rel: str) -> Any:
        return self.path(rel) if self.fs is None else self.fs.open_input_file(self.path(rel))

    # -- writing
    def write_hidden(self, rel: str, writer: Callable[[str], None]) -> str:
        """Write the file to be published at `rel` under its hidden name, durably; returns that name.

        `writer(local_path)` writes it (e.g. DuckDB's COPY); an object store gets the file uploaded.
        """
        hidden = hidden_name(rel)
        if self.fs is None:
            target = self.path(hidden)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            writer(target)
            _fsync(target)
            return hidden
        with tempfile.TemporaryDirectory(prefix="mm-lake-") as tmp:
            local = os.path.join(tmp, "file")
            writer(local)
            self.fs.create_dir(os.path.dirname(self.path(hidden)), recursive=True)
            with open(local, "rb") as src, self.fs.open_output_stream(self.path(hidden)) as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        return hidden

    def commit(self, name: str, change: dict[str, Any], after: Callable[[dict[str, Any]], None] | None = None) -> None:
        """Commit `change` ({"moves": [[hidden, final], ...], "deletes": [rel, ...], ...}) and carry it out;
        `after(change)` runs (also on a replay) before the journal goes, for steps outside the lake."""
        body = orjson.dumps(change)
        rel = f"{JOURNALS}/{name}"
        self.write_hidden(rel, lambda p: _write_bytes(p, body))
        self._move(hidden_name(rel), rel)  # the commit point
        self.replay(name, after)

    def replay(self, prefix: str = "", after: Callable[[dict[str, Any]], None] | None = None) -> int:
        """Finish every committed change whose journal name starts with `prefix` (after a crash;
        idempotent, and safe next to another process finishing the same one); returns how many."""
        done = 0
        for rel in self.listing(JOURNALS):
            name = os.path.basename(rel)
            if name.startswith(".") or not name.endswith(".json") or not name.startswith(prefix):
                continue
            try:
                change = orjson.loads(self._read_bytes(rel))
            except FileNotFoundError:  # finished by the other process meanwhile
                continue
            for hidden, final in change.get("moves", []):
                if self.exists(hidden):
                    self._move(hidden, final)
            for old in change.get("deletes", []):
                self.delete(old)
            if after is not None:
                after(change)
            self.delete(rel)
            done += 1
        return done

    def sweep(self, prefix: str, rel: str = "") -> int:
        """Delete the hidden files named `prefix`... that a crash left before their commit (the caller
        owns that prefix and has no change in progress); returns how many."""
        gone = 0
        for f in self.listing(rel):
            if os.path.basename(f).startswith("." + prefix) and f.endswith(".tmp"):
                self.delete(f)
                gone += 1
        return gone

    def delete(self, rel: str) -> None:
        if self.fs is None:
            try:
                os.remove(self.path(rel))
            except FileNotFoundError:
                pass
            return
        if self.exists(rel):
            self.fs.delete_file(self.path(rel))

    def _move(self, src: str, dst: str) -> None:
        if self.fs is None:
            os.makedirs(os.path.dirname(self.path(dst)), exist_ok=True)
            try:
                os.replace(self.path(src), self.path(dst))
            except FileNotFoundError:  # another process finishing the same journal moved it
                if not os.path.exists(self.path(dst)):
                    raise
            _fsync_dir(os.path.dirname(self.path(dst)))
        else:
            self.fs.move(self.path(src), self.path(dst))

    def _read_bytes(self, rel: str) -> bytes:
        if self.fs is None:
            with open(self.path(rel), "rb") as f:
                return f.read()
        with self.fs.open_input_stream(self.path(rel)) as f:
            return f.read()


def _write_bytes(path: str, body: bytes) -> None:
    with open(path, "wb") as f:
        f.write(body)


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: str) -> None:
    # The rename is durable once the folder's entry is on disk.
    try:
        _fsync(folder)
    except OSError:  # some filesystems refuse a folder fsync; the rename itself is still atomic
        pass
