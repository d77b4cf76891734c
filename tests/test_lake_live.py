"""The live worker on the lake: WAL segments -> Parquet appends, crash safety, `lake compact`, and
`experiment analyze` on the logs the live path wrote, each compared with DuckDB's `StoreLoader`.

The same WAL input (demo events in two rounds, a row without ids, a resent event, and activation-log
rows: assignments, decisions, exposures, outcomes) goes through `StoreLoader` into a DuckDB file and
through `LakeLoader` into a lake; the lake read on Spark must equal the DuckDB store (counts and text
exactly, floats to 1e-9 relative). The crash tests need no Spark.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import orjson
import pandas as pd
import pytest
from typer.testing import CliRunner

from micromoments.activation.lake_loader import LakeLoader, make_loader
from micromoments.activation.wal import WriteAheadLog
from micromoments.activation.wal_loader import StoreLoader
from micromoments.cli import app
from micromoments.config import Config, ExperimentConfig, load_config
from micromoments.demo import generate
from micromoments.measure.experiments import live_assignments
from micromoments.store import Store
from micromoments.store.lake_files import LakeFiles
from micromoments.store.schema import EVENTS_COLUMNS, TABLES
from test_engines_cli import CONFIG, same_frames, same_json  # CONFIG: store, lake, engine, the hero-banner experiment

runner = CliRunner()
pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"), pytest.mark.filterwarnings("ignore::FutureWarning"),
              pytest.mark.filterwarnings("ignore:The .future.infer_string. option")]
EXPERIMENT = ExperimentConfig(name="hero-banner", variants=["control", "big"], primary_metric="conversion")
BAD = b'{"type":"track","event":"No Ids","timestamp":"2026-09-03T10:00:00Z"}\n'


def _log_rows(people: list[tuple[str, object]]) -> list[tuple[str, dict]]:
    """What the activator would log for these people: an assignment, a decision, an exposure for the
    people shown the banner, and a conversion for some (picked by a hash, so the same on each run)."""
    rows = []
    for i, (person, ts) in enumerate(people):
        (assignment,) = live_assignments(person, [EXPERIMENT], ts)
        rows.append(("assignments", assignment))
        shown = assignment["variant"] == "big"
        rows.append(("decisions", {"decision_id": f"d{i}", "ts": ts, "person_id": person, "playbook": "hero",
                                   "content_id": "banner" if shown else None, "channel": "web", "moment": "buy",
                                   "experiment": EXPERIMENT.name, "variant": assignment["variant"], "propensity": 0.5,
                                   "status": "chosen" if shown else "holdout", "context": {"page": "/"}}))
        if shown:
            rows.append(("exposures", {"exposure_id": f"x{i}", "decision_id": f"d{i}", "ts": ts, "person_id": person,
                                       "content_id": "banner", "channel": "web", "delivery_status": "delivered"}))
        if int(hashlib.sha1(person.encode()).hexdigest()[:4], 16) % 3 == 0:
            rows.append(("outcomes", {"outcome_id": f"o{i}", "decision_id": f"d{i}", "ts": ts, "person_id": person,
                                      "kind": "conversion", "revenue": 12.5 + i}))
    return rows


def _write(wal: WriteAheadLog, lines: list[bytes]) -> None:
    wal.write_sync(b"".join(line if line.endswith(b"\n") else line + b"\n" for line in lines))


@pytest.fixture(scope="module")
def live(tmp_path_factory, spark_session) -> dict:
    """Two rounds of the same WAL input into DuckDB (StoreLoader) and the lake (LakeLoader), then compaction."""
    tmp = tmp_path_factory.mktemp("lake-live")
    lines = generate(tmp / "data", users=80, days=4, seed=11).events.read_bytes().splitlines()
    half = len(lines) // 2
    # An anonymous visitor of the first round who never logs in... until the second round: DuckDB
    # re-keys their first-round events, the lake must too (an identities delta).
    rows = [orjson.loads(line) for line in lines]
    users = {r["anonymousId"] for r in rows if r.get("userId") and r.get("anonymousId")}
    late = next(r["anonymousId"] for r in rows[:half] if r.get("anonymousId") and r["anonymousId"] not in users)
    login = orjson.dumps({"type": "identify", "anonymousId": late, "userId": "late-user", "messageId": "late-login",
                          "timestamp": rows[-1]["timestamp"]})
    rounds = [lines[:half] + [BAD], lines[half:] + [lines[3], login]]  # lines[3] again: a client's resend
    duck = StoreLoader(WriteAheadLog(tmp / "wal-duck"), tmp / "s.duckdb")
    lake = LakeLoader(WriteAheadLog(tmp / "wal-lake"), tmp / "lake")
    flushed = []
    for n, batch in enumerate(rounds):
        for loader in (duck, lake):
            _write(loader.wal, batch)
        if n == 1:  # log rows for the people the first round saw
            people = duck.store.duck.execute("SELECT person_id, min(ts) FROM events GROUP BY 1 ORDER BY 1").fetchall()
            for table, row in _log_rows([(p, ts.isoformat()) for p, ts in people]):
                duck.log_sink(table, dict(row))
                lake.log_sink(table, dict(row))
        flushed.append((duck.flush(), lake.flush()))
    for loader in (duck, lake):
        loader.close()
        loader.wal.close()
    cfg = {}
    for engine in ("duckdb", "spark"):
        cfg[engine] = tmp / f"{engine}.toml"
        cfg[engine].write_text(CONFIG.format(db=tmp / "s.duckdb", lake=tmp / "lake", engine=engine))
    files = LakeFiles(str(tmp / "lake"))
    before = {t: len(files.visible(t)) for t in ("events", "identity_links", "assignments")}
    from micromoments.store import open_configured

    store = open_configured(load_config(cfg["spark"]), read_only=True)  # before compaction
    ids = store.view("events").select("message_id")
    read_before = (ids.count(), ids.distinct().count(), len(files.visible("identities")))
    # Already equal to DuckDB: the identity deltas of each round are read latest-first.
    events = _frames(cfg, "events", ["message_id", "person_id"])
    assert (events[0].person_id == "late-user").sum() > 1  # the first round's events of the late login too
    same_frames(*events, "events before compaction")
    same_frames(*_frames(cfg, "identities", ["id", "id_type", "person_id"]), "identities before compaction")
    compacted = [runner.invoke(app, ["lake", "compact", "--config", str(cfg["spark"])]) for _ in range(2)]
    after = {t: len(files.visible(t)) for t in before}
    return {"tmp": tmp, "cfg": cfg, "flushed": flushed, "before": before, "after": after, "compacted": compacted,
            "read_before": read_before,
            "lake_loaded": lake.loaded, "duck_loaded": duck.loaded}


def _frames(cfg: dict, table: str, cols: list[str]) -> list[pd.DataFrame]:
    from micromoments.store import open_configured

    out = []
    for engine in ("duckdb", "spark"):
        store = open_configured(load_config(cfg[engine]), read_only=True)
        frame = store.ibis.execute(store.table(table).select(*cols))
        for col in frame.columns:
            if pd.api.types.is_datetime64_any_dtype(frame[col]):
                frame[col] = pd.to_datetime(frame[col]).dt.tz_localize(None).astype("datetime64[us]")
        out.append(frame)
        store.close()
    return out


@pytest.mark.slow
@pytest.mark.spark
def test_live_rounds_count_like_duckdb(live) -> None:
    for duck, lake in live["flushed"]:
        assert {k: duck[k] for k in ("loaded", "duplicates", "quarantined", "log_rows")} == \
               {k: lake[k] for k in ("loaded", "duplicates", "quarantined", "log_rows")}
    assert live["flushed"][0][1]["quarantined"] == 1 and live["flushed"][1][1]["duplicates"] == 1
    assert live["flushed"][1][1]["log_rows"] >= 20
    assert live["lake_loaded"] == live["duck_loaded"] > 150
    # Read on Spark before any compaction: every event once; an identities delta per round.
    assert live["read_before"] == (live["duck_loaded"], live["duck_loaded"], 2)


@pytest.mark.slow
@pytest.mark.spark
def test_lake_after_live_and_compaction_equals_duckdb(live) -> None:
    first, second = live["compacted"]
    assert first.exit_code == 0, first.output
    assert "duplicate rows dropped" in first.output
    # Two rounds appended two files per event date and two per table; compaction leaves one.
    assert live["before"]["events"] > live["after"]["events"] >= 4
    assert live["before"]["identity_links"] == 2 and live["after"]["identity_links"] == 1
    assert second.exit_code == 0 and "0 of" in second.output, second.output  # idempotent: nothing to do
    cols = list(EVENTS_COLUMNS)
    same_frames(*_frames(live["cfg"], "events", cols), "events")
    same_frames(*_frames(live["cfg"], "identities", ["id", "id_type", "person_id"]), "identities")
    same_frames(*_frames(live["cfg"], "identity_links", ["a", "b", "via"]), "identity_links")
    q = _frames(live["cfg"], "quarantine", ["source", "line", "field", "reason", "raw"])
    assert len(q[0]) == 1
    same_frames(*q, "quarantine")
    for table in ("assignments", "decisions", "exposures", "outcomes"):
        same_frames(*_frames(live["cfg"], table, list(TABLES[table])), table)


@pytest.mark.slow
@pytest.mark.spark
def test_experiment_analyze_and_ope_logs_agree(live) -> None:
    from micromoments.measure.ope import logged_decisions_expr
    from micromoments.store import open_configured

    outs = []
    for pre, engine in (((), "duckdb"), (("--engine", "spark"), "duckdb"), ((), "spark")):
        result = runner.invoke(app, [*pre, "experiment", "analyze", "hero-banner", "--json", "--config",
                                     str(live["cfg"][engine])])
        assert result.exit_code == 0, result.output
        outs.append(json.loads(result.output))
    counts = outs[0]["counts"]
    assert sum(counts.values()) >= 20 and set(counts) == {"control", "big"}
    for other in outs[1:]:
        same_json(outs[0], other, "experiment analyze")
    logs = []
    for engine in ("duckdb", "spark"):
        store = open_configured(load_config(live["cfg"][engine]), read_only=True)
        logs.append(store.ibis.execute(logged_decisions_expr(store.table("decisions"), store.table("outcomes"),
                                                             "conversion")))
        store.close()
    assert len(logs[0]) >= 10
    same_frames(logs[0][sorted(logs[0].columns)], logs[1][sorted(logs[1].columns)], "ope logs")
    policy = live["tmp"] / "policy.csv"
    policy.write_text("moment,content_id,probability\nbuy,banner,0.5\nbuy,,0.5\n")
    values = []
    for engine in ("duckdb", "spark"):
        out = live["tmp"] / f"ope-{engine}.csv"
        result = runner.invoke(app, ["ope", "--policy", str(policy), "--n-boot", "200", "--output", str(out),
                                     "--config", str(live["cfg"][engine])])
        assert result.exit_code == 0, result.output
        values.append(pd.read_csv(out))
    assert len(values[0]) >= 3 and values[0]["value"].notna().all()
    same_frames(values[0], values[1], "ope")


# --------------------------------------------------------------------------- crashes (no Spark)
EVENTS = [orjson.dumps({"type": "track", "event": "Viewed", "anonymousId": f"a{i % 3}", "messageId": f"m{i}",
                        "timestamp": f"2026-01-0{5 + i % 2}T10:00:0{i}Z"}) for i in range(6)]


def _lake_ids(lake: Path) -> list[str]:
    table = LakeFiles(str(lake)).read("events", ["message_id"])
    return sorted(table.column("message_id").to_pylist()) if table is not None else []


class Crash(Exception):
    pass


def test_crash_after_the_commit_finishes_the_round_on_restart(tmp_path: Path, monkeypatch) -> None:
    wal = WriteAheadLog(tmp_path / "wal")
    _write(wal, EVENTS)
    loader = LakeLoader(wal, tmp_path / "lake")

    def crash(change):  # the files are in the lake, the segments not deleted yet
        raise Crash()

    monkeypatch.setattr(loader, "_forget", crash)
    with pytest.raises(Crash):
        loader.flush()
    loader.store.close()  # what the dying process releases
    wal.close()
    assert _lake_ids(tmp_path / "lake") == [f"m{i}" for i in range(6)]
    assert os.listdir(tmp_path / "lake" / "_journal")  # committed, not finished
    monkeypatch.undo()
    wal = WriteAheadLog(tmp_path / "wal")  # the restart: the segment is still there
    again = LakeLoader(wal, tmp_path / "lake")
    assert not wal.closed_segments() and again.flush()["loaded"] == 0
    again.close()
    wal.close()
    assert _lake_ids(tmp_path / "lake") == [f"m{i}" for i in range(6)]
    assert not os.listdir(tmp_path / "lake" / "_journal")


def test_crash_before_the_commit_loads_the_segment_again(tmp_path: Path, monkeypatch) -> None:
    wal = WriteAheadLog(tmp_path / "wal")
    _write(wal, EVENTS)
    loader = LakeLoader(wal, tmp_path / "lake")

    def crash(*args, **kwargs):  # the hidden files are written, the journal is not
        raise Crash()

    monkeypatch.setattr(loader.files, "commit", crash)
    with pytest.raises(Crash):
        loader.flush()
    loader.store.close()  # what the dying process releases
    wal.close()
    hidden = [f for f in LakeFiles(str(tmp_path / "lake")).listing("") if os.path.basename(f).startswith(".")]
    assert hidden and _lake_ids(tmp_path / "lake") == []
    monkeypatch.undo()
    wal = WriteAheadLog(tmp_path / "wal")
    again = LakeLoader(wal, tmp_path / "lake")
    assert again.flush()["loaded"] == 6
    _write(wal, EVENTS[:2])  # a client resends two events: the lake holds them already
    assert again.flush()["duplicates"] == 2
    again.close()
    wal.close()
    assert _lake_ids(tmp_path / "lake") == [f"m{i}" for i in range(6)]
    assert not [f for f in LakeFiles(str(tmp_path / "lake")).listing("") if os.path.basename(f).startswith(".")]


def test_make_loader_follows_the_engine(tmp_path: Path) -> None:
    cfg = Config()
    wal = WriteAheadLog(tmp_path / "wal")
    duck = make_loader(wal, tmp_path / "s.duckdb", config=cfg)
    assert type(duck) is StoreLoader
    duck.close()
    cfg.store.engine = "spark"
    lake = make_loader(wal, tmp_path / "lake", config=cfg, store=Store(":memory:"))
    assert isinstance(lake, LakeLoader) and lake.event_count() == 0
    assert lake.interval_s == 60 and (wal.directory / "lake-scratch.duckdb").exists()  # rounds of a minute at most
    lake.close()
    assert not (wal.directory / "lake-scratch.duckdb").exists()
    wal.close()
    out = runner.invoke(app, ["serve", "--engine", "oracle", "--dev"])  # serve's own switch is checked too
    assert out.exit_code == 2 and "duckdb" in out.output


@pytest.mark.slow
@pytest.mark.spark
def test_compaction_crash_leaves_a_readable_lake(tmp_path: Path, spark_session, monkeypatch) -> None:
    from micromoments.store.lake import LakeStore
    from micromoments.store.lake_compact import compact_lake

    wal = WriteAheadLog(tmp_path / "wal")
    loader = LakeLoader(wal, tmp_path / "lake", seen_dates=1)
    # m0 resent with a later timestamp: another event date, and its own date's ids are no longer
    # cached (seen_dates=1), so the lake holds it twice until compaction keeps the first received.
    resent = orjson.dumps({**orjson.loads(EVENTS[0]), "timestamp": "2026-01-07T10:00:00Z"})
    assert [loader.flush()["loaded"] for part in (EVENTS[:3], EVENTS[3:], [resent]) if _write(wal, part) is None] == \
        [3, 3, 1]
    loader.close()
    wal.close()
    store = LakeStore(str(tmp_path / "lake"), spark_session)
    real = LakeFiles.replay

    def crash_once(self, prefix="", after=None):  # the journal is committed, nothing moved yet
        if prefix.endswith("-events.json"):
            raise Crash()
        return real(self, prefix, after)

    monkeypatch.setattr(LakeFiles, "replay", crash_once)
    with pytest.raises(Crash):
        compact_lake(store)
    monkeypatch.undo()
    store.refresh("events")
    assert sorted(r.message_id for r in store.view("events").select("message_id").collect()) == \
        ["m0", *(f"m{i}" for i in range(6))]  # readable: the old files, as before the compaction
    done = {t.table: t for t in compact_lake(store)}  # finishes the swap, then finds nothing to do
    assert done["events"].rows_after == 6 and not done["events"].rewritten
    assert len(LakeFiles(str(tmp_path / "lake")).visible("events")) == 2  # one file per event date
    assert store.count("events") == 6
    assert store.view("events").where("message_id = 'm0'").first().ts.day == 5  # the first received



def test_serve_with_engine_spark_appends_to_the_lake(tmp_path: Path) -> None:
    import httpx

    from _server_harness import ThreadServer, basic, bearer

    cfg = Config()
    cfg.store.engine, cfg.store.lake = "spark", str(tmp_path / "lake")
    cfg.server.write_keys, cfg.server.admin_tokens = {"wk_test": "test"}, ["adm_test"]
    cfg.server.flush_interval_ms, cfg.store.lake_round_seconds = 100, 0
    with ThreadServer(cfg, db_path=tmp_path / "lake", data_dir=tmp_path) as srv, \
            httpx.Client(base_url=srv.url, timeout=10) as client:
        batch = [{**orjson.loads(e), "timestamp": "2026-09-01T10:00:00Z"} for e in EVENTS]
        assert client.post("/v1/batch", json={"batch": batch}, headers=basic("wk_test")).status_code == 200
        deadline = time.monotonic() + 20
        while (stats := client.get("/admin/stats", headers=bearer("adm_test")).json())[
                "store"]["events"] < 6:
            assert time.monotonic() < deadline, stats
            time.sleep(0.1)
        assert stats["store"]["path"] == str(tmp_path / "lake") and stats["store"]["last_error"] is None
    assert _lake_ids(tmp_path / "lake") == [f"m{i}" for i in range(6)]
    assert not (tmp_path / "lake.duckdb").exists() and not list(tmp_path.glob("*.duckdb"))


def test_an_object_store_lake_goes_through_pyarrow_filesystems(tmp_path: Path) -> None:
    # pyarrow's in-memory "mock:" filesystem stands in for s3://: the same code path, no local disk.
    wal = WriteAheadLog(tmp_path / "wal")
    loader = LakeLoader(wal, "mock:///lake")
    assert loader.files.fs is not None
    _write(wal, EVENTS)
    assert loader.flush()["loaded"] == 6
    _write(wal, EVENTS[:2])
    assert loader.flush()["duplicates"] == 2
    files = loader.files
    assert sorted(files.read("events", ["message_id"]).column("message_id").to_pylist()) == [f"m{i}" for i in range(6)]
    assert len(files.visible("events")) == 2 and not files.listing("_journal")
    assert not [f for f in files.listing("") if os.path.basename(f).startswith(".")]
    assert loader.event_count() == 6 and not wal.closed_segments()
    loader.close()
    wal.close()


@pytest.mark.slow
@pytest.mark.spark
def test_compaction_next_to_the_live_loader_loses_nothing(tmp_path: Path, spark_session, monkeypatch) -> None:
    from micromoments.store.lake import LakeStore
    from micromoments.store.lake_compact import compact_lake

    wal = WriteAheadLog(tmp_path / "wal")
    loader = LakeLoader(wal, tmp_path / "lake")
    for part in (EVENTS[:3], EVENTS[3:]):
        _write(wal, part)
        loader.flush()
    late = [orjson.dumps({**orjson.loads(e), "messageId": f"n{i}"}) for i, e in enumerate(EVENTS)]
    real = LakeFiles.commit

    def round_meanwhile(self, name, change, after=None):  # the loader appends while the compaction swaps
        if name.startswith("compact-") and name.endswith("-events.json"):
            _write(wal, late)
            assert loader.flush()["loaded"] == 6
        return real(self, name, change, after)

    monkeypatch.setattr(LakeFiles, "commit", round_meanwhile)
    done = {t.table: t for t in compact_lake(LakeStore(str(tmp_path / "lake"), spark_session))}
    monkeypatch.undo()
    loader.close()
    wal.close()
    assert done["events"].rewritten and done["events"].rows_after == 6  # the files it listed
    assert _lake_ids(tmp_path / "lake") == sorted([f"m{i}" for i in range(6)] + [f"n{i}" for i in range(6)])
    again = {t.table: t for t in compact_lake(LakeStore(str(tmp_path / "lake"), spark_session))}
    assert again["events"].rows_after == 12 and len(LakeFiles(str(tmp_path / "lake")).visible("events")) == 2
