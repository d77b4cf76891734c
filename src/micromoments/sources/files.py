"""Open a file (plain or gzip) and stream it as numbered lines, in chunks, with flat memory.

>>> import tempfile, os
>>> p = os.path.join(tempfile.mkdtemp(), "a.jsonl")
>>> from pathlib import Path
>>> _ = Path(p).write_text('{"a": 1}\\n{"a": 2}\\n')
>>> [(c.first_line, [line.strip() for line in c.lines.to_pylist()]) for c in iter_line_chunks(p)]
[(1, ['{"a": 1}', '{"a": 2}'])]
"""

from __future__ import annotations

import gzip
import os
import threading
import zlib
from collections.abc import Callable, Iterator
from queue import Queue
from typing import TypeVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa

from micromoments.errors import InputError

BLOCK_BYTES = 134217728
T = TypeVar("T")


@dataclass
class LineChunk:
    """Lines `first_line .. first_line + len(lines) - 1` of a file, as an Arrow string array.

    Each line keeps its trailing newline: the array is a zero-copy view of the block read.
    Lines that are not valid UTF-8 are blanked and kept apart in `undecodable` (line
    number, escaped text), so the caller can quarantine them instead of guessing.
    """

    first_line: int
    lines: pa.LargeStringArray
    undecodable: list[tuple[int, str]] = field(default_factory=list)
    data: memoryview = field(default_factory=lambda: memoryview(b""))  # the block the lines view

    def contains(self, needle: bytes) -> bool:
        """Whether any line contains `needle` (one fast pass over the block, no copy)."""
        obj = self.data.obj
        if isinstance(obj, (bytes, bytearray)) and len(obj) >= len(self.data):
            # The chunk views the start of its block: search the block in place.
            return obj.find(needle, 0, len(self.data)) >= 0
        return needle in self.data.tobytes()


def is_gzip(path: str | Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def check_readable(path: str | Path) -> Path:
    """The path, if it names a readable file; else a one-line `InputError`."""
    p = Path(path)
    if not p.exists():
        raise InputError("file not found", where=str(p), hint="check the path")
    if p.is_dir():
        raise InputError("is a directory, not a file", where=str(p))
    return p


def read_head(path: str | Path, n_bytes: int) -> bytes:
    """The first `n_bytes` of the (decompressed) file."""
    stream, raw = open_binary(path)
    with raw, stream:  # closing a GzipFile leaves the file it reads open
        try:
            return stream.read(n_bytes)
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(f"cannot read: {exc}", where=str(path),
                             hint="is the file truncated or not really gzip?") from exc


def open_binary(path: str | Path) -> tuple[BinaryIO, BinaryIO]:
    """Return (stream of decompressed bytes, the underlying file for progress)."""
    p = check_readable(path)
    try:
        raw = open(p, "rb")
    except OSError as exc:
        raise InputError(f"cannot open: {exc.strerror}", where=str(p)) from exc
    if raw.read(2) == b"\x1f\x8b":
        raw.seek(0)
        return gzip.GzipFile(fileobj=raw, mode="rb"), raw  # type: ignore[return-value]
    raw.seek(0)
    return raw, raw


def iter_line_chunks(
    path: str | Path,
    *,
    block_bytes: int = BLOCK_BYTES,
    on_progress: Callable[[int], None] | None = None,
) -> Iterator[LineChunk]:
    """Yield the file's lines in chunks of about `block_bytes`, numbering from 1.

    `on_progress` gets the number of (compressed) bytes read so far.
    """
    stream, underlying = open_binary(path)
    if stream is underlying:
        # An uncompressed file needs no block bigger than what is left of it. CPython zeroes a new
        # bytearray holding the GIL: 128 MB took 85-240 ms, which stalled the server's requests
        # each time its loader read a few-MB WAL segment. The chunks are the same either way.
        left = os.fstat(underlying.fileno()).st_size
        block_bytes = min(block_bytes, max(1 << 16, left + 1))
    next_line = 1
    carry = b""
    try:
        while True:
            # Read straight into the buffer the chunk will view: no copy of the block
            # (joining it to the previous block's tail and slicing it copied it twice).
            buf = bytearray(len(carry) + block_bytes)
            buf[:len(carry)] = carry
            filled = len(carry) + _read_into(stream, memoryview(buf)[len(carry):], path)
            if on_progress is not None:
                on_progress(underlying.tell())
            if filled == len(carry):  # end of file
                break
            cut = buf.rfind(b"\n", 0, filled)
            if cut < 0:
                carry = bytes(buf[:filled])
                continue
            carry = bytes(buf[cut + 1:filled])
            chunk = _decode(memoryview(buf)[:cut + 1], next_line)
            next_line += len(chunk.lines)
            yield chunk
        if carry:
            yield _decode(memoryview(carry), next_line)
    finally:
        stream.close()
        if underlying is not stream:
            underlying.close()


def _read_into(stream: BinaryIO, view: memoryview, path: str | Path) -> int:
    """Fill `view` from `stream` (a gzip stream may return less per call); bytes read."""
    done = 0
    while done < len(view):
        try:
            n = stream.readinto(view[done:])  # type: ignore[attr-defined]
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(f"cannot read: {exc}", where=str(path),
                             hint="is the file truncated or not really gzip?") from exc
        if not n:
            break
        done += n
    return done


def prefetch(items: Iterator[T], ahead: int = 1) -> Iterator[T]:
    """Yield from `items`, producing up to `ahead` items ahead in a background thread.

    Reading and splitting the next block (file I/O, numpy, Arrow: mostly without the GIL)
    then overlaps with the caller's work on the current one. At most `ahead + 1` items
    are alive at once: the producer starts item k + 2 only after the caller is done with
    item k. Errors surface in the caller.

    >>> list(prefetch(iter(range(3))))
    [0, 1, 2]
    """
    done = object()
    queue: Queue = Queue()
    slots = threading.Semaphore(ahead + 1)
    stop = threading.Event()

    def produce() -> None:
        try:
            while True:
                while not slots.acquire(timeout=0.1):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                try:
                    item = next(items)
                except StopIteration:
                    queue.put((done, None))
                    return
                queue.put((item, None))
        except BaseException as exc:  # handed to the consumer
            queue.put((done, exc))

    worker = threading.Thread(target=produce, name="prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item, exc = queue.get()
            if item is done:
                if exc is not None:
                    raise exc
                return
            yield item
            del item  # the caller is done with it: its slot is free
            slots.release()
    finally:
        stop.set()
        worker.join()


def _decode(data: memoryview, first_line: int) -> LineChunk:
    """Split a block into lines without copying it: offsets from numpy, text from the block."""
    raw = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(raw == 10) + 1
    if len(ends) == 0 or ends[-1] != len(data):
        ends = np.append(ends, len(data))
    offsets = np.concatenate(([0], ends)).astype(np.int64)
    lines = pa.LargeStringArray.from_buffers(len(ends), pa.py_buffer(offsets), pa.py_buffer(data))
    try:
        lines.validate(full=True)  # checks UTF-8
    except pa.ArrowInvalid:
        return _decode_line_by_line(data.tobytes(), first_line)
    return LineChunk(first_line, lines, data=data)


def _decode_line_by_line(data: bytes, first_line: int) -> LineChunk:
    texts: list[str] = []
    bad: list[tuple[int, str]] = []
    for i, raw in enumerate(data.split(b"\n")):
        try:
            texts.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            texts.append("")  # keeps numbering; the line itself goes to quarantine
            bad.append((first_line + i, raw.decode("utf-8", errors="backslashreplace")))
    if texts and texts[-1] == "" and data.endswith(b"\n"):
        texts.pop()
    return LineChunk(first_line, pa.array(texts, pa.large_string()), bad, data=memoryview(data))


def file_size(path: str | Path) -> int:
    return os.path.getsize(path)


def read_text(path: str | Path, *, limit_bytes: int = 1 << 30) -> str:
    """Read a whole (maybe gzipped) text file, refusing files over `limit_bytes`."""
    data = read_head(path, limit_bytes + 1)
    if len(data) > limit_bytes:
        raise InputError(f"a single JSON document over {limit_bytes >> 20} MB", where=str(path),
                         hint="write one event per line (JSONL) to stream large files")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 at byte {exc.start}", where=str(path)) from exc


__all__ = ["LineChunk", "iter_line_chunks", "prefetch", "open_binary", "is_gzip", "file_size", "read_text", "read_head", "check_readable"]
