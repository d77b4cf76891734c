"""Write a demo data set: Segment JSONL plus ground truth, streamed person by person.

Memory stays flat in the number of events: only the current person, a write buffer and
the set of distinct query texts (bounded by the grammar, not by the event count) are held.

>>> import tempfile
>>> paths = generate(tempfile.mkdtemp(), users=5, days=7, seed=1)
>>> paths.events.name, paths.n_events > 0
('events.jsonl', True)
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import multiprocessing as mp
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from micromoments.demo.journey import Journey, Person, make_person
from micromoments.demo.queries import FAMILY_BY_ID, Family
from micromoments.demo.stores import write_stores_csv
from micromoments.errors import InputError

DEFAULT_START = dt.date(2026, 9, 1)
TRUTH_EVENT_COLUMNS = ("messageId", "person_key", "persona", "session_key", "episode_id", "episode_moment",
                       "episode_go_type", "true_timestamp")
TRUTH_MOMENT_COLUMNS = ("query", "moment", "go_type", "split", "family")
TRUTH_PERSONA_COLUMNS = ("person_key", "persona", "persona_label", "user_id", "anonymous_ids", "app_anonymous_id",
                         "home_store_id", "country")
BLOCK_PEOPLE = 200  # people per work unit: ~10k events, ~10 MB in flight


@dataclass
class DemoPaths:
    """Where `generate` wrote each file, and what it wrote."""

    out_dir: Path
    events: Path
    truth_moments: Path
    truth_events: Path
    truth_personas: Path
    stores: Path
    users: int
    days: int
    seed: int
    n_events: int
    n_queries: int          # distinct query texts
    n_sessions: int
    n_episodes: int
    seconds: float

    @property
    def events_per_second(self) -> float:
        return self.n_events / self.seconds if self.seconds else 0.0

    @property
    def events_per_user(self) -> float:
        return self.n_events / self.users if self.users else 0.0


@dataclass
class _Block:
    """What simulating a block of people produced, ready to append to the files."""

    events: bytes | Path   # JSONL (a gzip member when compressing), or the part file holding it
    truth: str | Path      # truth_events.csv rows, or the part file holding them
    personas: list[list[str]]
    queries: dict[str, str]  # text -> family id, first seen first
    n_events: int
    n_sessions: int
    n_episodes: int


class _BlockSink:
    """The sink a `Journey` writes to: collects one block's events, truth rows and queries."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.truth: list[str] = []
        self.personas: list[list[str]] = []
        self.queries: dict[str, str] = {}
        self._dumps = orjson.dumps

    def event(self, ev: dict[str, Any], truth: tuple[Any, ...]) -> None:
        self.lines.append(self._dumps(ev))
        self.truth.append(",".join(truth))

    def query(self, text: str, family: Family) -> None:
        # One label per distinct text: the first family that produced it wins.
        if text not in self.queries:
            self.queries[text] = family.id

    def person(self, person: Person) -> None:
        app = person.app_device.anon_id if person.app_device else ""
        ids = [d.anon_id for d in person.web_devices] + ([app] if app else [])
        self.personas.append([person.key, person.persona.key, person.persona.label, person.user_id or "",
                              "|".join(ids), app, person.store.store_id, person.store.country])


Job = tuple[int, dt.date, int, int, int, bool, "Path | None"]


def _simulate_block(job: Job) -> _Block:
    """Simulate people `lo..hi-1`. Pure in its inputs, so blocks can run in any process.

    With `parts` set (a directory), the bulky output goes to part files there rather than
    back through a pipe: pickling 10 MB per block costs more than simulating it.
    """
    seed, start, days, lo, hi, gz, parts = job
    sink = _BlockSink()
    n_sessions = n_episodes = 0
    for i in range(lo, hi):
        person, rng = make_person(seed, i)
        journey = Journey(sink, person, rng, start, days, seed)
        journey.run()
        sink.person(person)
        n_sessions += journey.n_sessions
        n_episodes += journey.n_episodes
    data = b"\n".join(sink.lines) + b"\n" if sink.lines else b""
    if gz:
        # Each block is its own gzip member; concatenated members are one valid gzip file.
        # Level 1: the generator should not wait on zlib; the file is still ~8x smaller.
        data = gzip.compress(data, compresslevel=1, mtime=0)
    truth = "\n".join(sink.truth) + "\n" if sink.truth else ""
    if parts is None:
        return _Block(data, truth, sink.personas, sink.queries, len(sink.lines), n_sessions, n_episodes)
    ev_part, truth_part = parts / f"{lo:09d}.events", parts / f"{lo:09d}.truth"
    ev_part.write_bytes(data)
    truth_part.write_text(truth, encoding="utf-8")
    return _Block(ev_part, truth_part, sink.personas, sink.queries, len(sink.lines), n_sessions, n_episodes)


def _append(fh: Any, part: bytes | str | Path) -> None:
    """Append a block's output to an open file; part files are copied by the kernel and removed."""
    if not isinstance(part, Path):
        fh.write(part)
        return
    fh.flush()
    with open(part, "rb") as src:
        size, offset = os.fstat(src.fileno()).st_size, 0
        while offset < size:
            offset += os.sendfile(fh.fileno(), src.fileno(), offset, size - offset)
    part.unlink()


def _blocks(jobs: list[Job], workers: int) -> Iterator[_Block]:
    if workers <= 1 or len(jobs) <= 1:
        yield from map(_simulate_block, jobs)
        return
    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
    with ctx.Pool(workers) as pool:
        # imap keeps the order of blocks, so the output does not depend on `workers`.
        yield from pool.imap(_simulate_block, jobs, chunksize=1)


def generate(
    out_dir: str | Path,
    *,
    users: int = 2000,
    days: int = 30,
    seed: int = 42,
    start: dt.date | str = DEFAULT_START,
    gzip_events: bool = False,
    workers: int = 1,
    on_progress: Callable[[int, int], None] | None = None,
) -> DemoPaths:
    """Generate `users` people over `days` days from `start` into `out_dir`.

    Deterministic for a seed: the same arguments give byte-identical files, whatever
    `workers` is (people are simulated in blocks, by that many processes, and written in
    order). `on_progress(users_done, events_done)` is called after each block.

    >>> import tempfile
    >>> a = generate(tempfile.mkdtemp(), users=3, days=5, seed=7)
    >>> b = generate(tempfile.mkdtemp(), users=3, days=5, seed=7)
    >>> a.events.read_bytes() == b.events.read_bytes()
    True
    """
    if users < 1 or days < 1:
        raise InputError(f"need at least one user and one day, got --users {users} --days {days}",
                         where="demo-data", hint="pass --users N --days D with N, D >= 1")
    if isinstance(start, str):
        try:
            start = dt.date.fromisoformat(start)
        except ValueError as exc:
            raise InputError(f"--start {start!r} is not a date", where="demo-data",
                             hint="use YYYY-MM-DD, e.g. 2026-09-01") from exc
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "events": out / ("events.jsonl.gz" if gzip_events else "events.jsonl"),
        "truth_moments": out / "truth_moments.csv",
        "truth_events": out / "truth_events.csv",
        "truth_personas": out / "truth_personas.csv",
        "stores": out / "stores.csv",
    }
    # A stale file of the other compression would be mistaken for this run's output.
    stale = out / ("events.jsonl" if gzip_events else "events.jsonl.gz")
    if stale.exists():
        stale.unlink()
    write_stores_csv(paths["stores"])

    began = time.perf_counter()
    n_sessions = n_episodes = n_events = 0
    queries: dict[str, str] = {}
    parts = out / ".parts" if workers > 1 else None
    if parts is not None:
        parts.mkdir(exist_ok=True)
    jobs: list[Job] = [(seed, start, days, lo, min(users, lo + BLOCK_PEOPLE), gzip_events, parts)
                       for lo in range(0, users, BLOCK_PEOPLE)]
    with open(paths["events"], "wb") as ev_fh, \
            open(paths["truth_events"], "w", encoding="utf-8", newline="", buffering=1 << 20) as te_fh, \
            open(paths["truth_personas"], "w", encoding="utf-8", newline="") as tp_fh:
        te_fh.write(",".join(TRUTH_EVENT_COLUMNS) + "\n")
        personas = csv.writer(tp_fh, lineterminator="\n")
        personas.writerow(TRUTH_PERSONA_COLUMNS)
        done = 0
        for block in _blocks(jobs, workers):
            _append(ev_fh, block.events)
            _append(te_fh, block.truth)
            personas.writerows(block.personas)
            for text, fid in block.queries.items():
                queries.setdefault(text, fid)
            n_events += block.n_events
            n_sessions += block.n_sessions
            n_episodes += block.n_episodes
            done += len(block.personas)
            if on_progress is not None:
                on_progress(done, n_events)

    if parts is not None:
        parts.rmdir()

    with open(paths["truth_moments"], "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(TRUTH_MOMENT_COLUMNS)
        for text in sorted(queries):
            fam = FAMILY_BY_ID[queries[text]]
            w.writerow([text, fam.moment, fam.go_type, fam.split, fam.id])

    return DemoPaths(
        out_dir=out, **paths, users=users, days=days, seed=seed, n_events=n_events,
        n_queries=len(queries), n_sessions=n_sessions, n_episodes=n_episodes,
        seconds=time.perf_counter() - began,
    )
