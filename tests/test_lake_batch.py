"""The batch commands that were DuckDB-only, on the lake: `monitor`, `segments export`, `personas
export | assign | update`, each compared with DuckDB on the same data.

The input goes as in tests/test_lake_live.py: the same WAL rounds (demo events over 24 days, so the
monitor has a baseline, and activation logs: decisions, exposures, click and conversion outcomes)
through DuckDB's `StoreLoader` and the lake's `LakeLoader`. Between the rounds the DuckDB store is
classified and its personas built; those tables (and the model) are copied to the lake, so the
commands are compared on equal inputs (classify-store and personas build themselves are compared in
tests/test_engines_cli.py). The second round brings people with no persona yet, for `assign`.
Counts and text exactly, floats to 1e-9 relative; one SparkSession (conftest) serves the module.
"""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import shutil
from pathlib import Path

import orjson
import pandas as pd
import pytest
from typer.testing import CliRunner

from micromoments.activation.lake_loader import LakeLoader
from micromoments.activation.wal import WriteAheadLog
from micromoments.activation.wal_loader import StoreLoader
from micromoments.cli import app
from micromoments.demo import generate
from micromoments.intent import classify_store
from micromoments.personas.build import build_personas
from micromoments.store.lake import LakeStore
from test_engines_cli import same_frames

pytestmark = [pytest.mark.slow, pytest.mark.spark,
              pytest.mark.filterwarnings("ignore:The .future.infer_string. option"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::FutureWarning")]
runner = CliRunner()
CONFIG = '[store]\npath = "{db}"\nlake = "{lake}"\nengine = "{engine}"\n'
MOMENTS = ("buy", "know")  # two series, so each has enough exposures a day to be checked
PERSONA_TABLES = ("person_features", "personas", "persona_descriptions")


def _hash(text: str) -> int:
    return int(hashlib.sha1(text.encode()).hexdigest()[:6], 16)


def _log_rows(rows: list[dict], incident: set[str]) -> list[tuple[str, dict]]:
    """What the activator would log on page views and tracked events: a decision and an exposure
    each, a click on about a quarter of them (none on the `incident` days: the monitor must see it)
    and a conversion on some, picked by a hash (the same on every run)."""
    out = []
    for r in rows:
        if r.get("type") not in ("page", "track"):
            continue
        mid, person = r["messageId"], r.get("userId") or r.get("anonymousId")
        ts = dt.datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00")).replace(tzinfo=None).isoformat()
        h = _hash(mid)
        out.append(("decisions", {"decision_id": f"d-{mid}", "ts": ts, "person_id": person, "playbook": "hero",
                                   "content_id": "banner", "channel": "web", "moment": MOMENTS[h % 2],
                                   "propensity": 0.5, "status": "chosen", "context": {"page": "/"}}))
        out.append(("exposures", {"exposure_id": f"x-{mid}", "decision_id": f"d-{mid}", "ts": ts, "person_id": person,
                                  "content_id": "banner", "channel": "web", "delivery_status": "delivered"}))
        for kind, every in (("click", 4), ("conversion", 9)):
            if h // 7 % every == 0 and not (kind == "click" and ts[:10] in incident):
                out.append(("outcomes", {"outcome_id": f"{kind}-{mid}", "decision_id": f"d-{mid}", "ts": ts,
                                         "person_id": person, "kind": kind, "revenue": 20.0 if kind == "conversion" else None}))
    return out


def _round(loaders: tuple[StoreLoader, LakeLoader], lines: list[bytes], incident: set[str]) -> None:
    """One WAL round with its log rows into both loaders; both must count the same."""
    logs = _log_rows([orjson.loads(line) for line in lines], incident)
    for loader in loaders:
        loader.wal.write_sync(b"".join(line + b"\n" for line in lines))
        for table, row in logs:
            loader.log_sink(table, dict(row))
    counts = [loader.flush() for loader in loaders]
    assert counts[0]["loaded"] == counts[1]["loaded"] == len(lines) and counts[0]["log_rows"] == counts[1]["log_rows"]


def _copy(duck_store, lake: LakeStore, tables: tuple[str, ...]) -> None:
    for table in tables:
        lake.write_table(table, duck_store.ibis.execute(duck_store.table(table)))


@pytest.fixture(scope="module")
def stores(tmp_path_factory, spark_session) -> dict:
    tmp = tmp_path_factory.mktemp("lake-batch")
    lines = generate(tmp / "data", users=60, days=24, seed=3).events.read_bytes().splitlines()
    cut = int(len(lines) * 0.85)  # people come in blocks: the rest are mostly new people
    duck = StoreLoader(WriteAheadLog(tmp / "wal-duck"), tmp / "s.duckdb")
    loaders = (duck, LakeLoader(WriteAheadLog(tmp / "wal-lake"), tmp / "lake"))
    lake = LakeStore(str(tmp / "lake"), spark_session)
    # No clicks on the two days before the last (which is partial): a CTR incident to alert on.
    last = max(dt.date.fromisoformat(orjson.loads(line)["timestamp"][:10]) for line in lines)
    incident = {str(last - dt.timedelta(days=n)) for n in (1, 2)}
    _round(loaders, lines[:cut], incident)
    classify_store(duck.store)
    build_personas(duck.store, n_clusters=3)
    _copy(duck.store, lake, ("event_moments", *PERSONA_TABLES))
    shutil.copy(f"{tmp / 's.duckdb'}.personas.joblib", f"{tmp / 'lake'}.personas.joblib")
    _round(loaders, lines[cut:], incident)
    classify_store(duck.store)
    _copy(duck.store, lake, ("event_moments",))
    for loader in loaders:
        loader.close()
        loader.wal.close()
    cfg = {}
    for engine in ("duckdb", "spark"):
        cfg[engine] = tmp / f"{engine}.toml"
        cfg[engine].write_text(CONFIG.format(db=tmp / "s.duckdb", lake=tmp / "lake", engine=engine))
    return {"tmp": tmp, "cfg": cfg}


def _both(stores: dict, *args: str, output: str | None = None) -> list[str]:
    """The command's printed lines on each engine: DuckDB by the config key, Spark by --engine
    over the same config (and its --output CSV, when `output` names one)."""
    outs = []
    for engine in ("duckdb", "spark"):
        gc.collect()  # the previous command's DuckDB connection
        pre = ("--engine", "spark") if engine == "spark" else ()
        extra = ("--output", str(stores["tmp"] / f"{output}-{engine}.csv")) if output else ()
        result = runner.invoke(app, [*pre, *args, *extra, "--config", str(stores["cfg"]["duckdb"])])
        assert result.exit_code == 0, (engine, args, result.output, result.exception)
        outs.append([line for line in result.output.splitlines() if not line.startswith("wrote ")])
    assert outs[0] == outs[1], args
    return outs[0]


def _csvs(stores: dict, name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    return tuple(pd.read_csv(stores["tmp"] / f"{name}-{e}.csv") for e in ("duckdb", "spark"))  # type: ignore[return-value]


def test_monitor_agrees(stores) -> None:
    lines = _both(stores, "monitor", "--backtest", output="monitor")
    duck, spark = _csvs(stores, "monitor")
    assert (duck.metric == "ctr").sum() >= 10 and duck.day.nunique() >= 5, duck.metric.value_counts()
    same_frames(duck, spark, "monitor --backtest checks")
    alerts = duck[duck.alert]
    assert (alerts.metric == "ctr").any() and (alerts[alerts.metric == "ctr"].observed == 0).all(), alerts
    assert any(line.startswith("alert:") and "click-through rate down to 0.0%" in line for line in lines), lines
    assert any(line.startswith("drift check moment_mix") for line in lines)
    assert any(line.startswith("drift check confidence") for line in lines)
    _both(stores, "monitor", output="monitor-day")
    same_frames(*_csvs(stores, "monitor-day"), "monitor checks of the last complete day")


def test_segments_and_personas_export_agree(stores) -> None:
    rules = ["abandoners=moment:buy<=7d & !purchase<=7d", "lookers=event:Product Viewed<=3d & p_alive>=0.5",
             "first=persona=0", "!moment:know<=14d"]
    lines = _both(stores, "segments", "export", *rules, output="segments")
    assert sum(int(line.split(": ")[1].split()[0].replace(",", "")) for line in lines if ": " in line) > 20, lines
    same_frames(*_csvs(stores, "segments"), "segments export")
    _both(stores, "personas", "export", output="personas")
    duck, spark = _csvs(stores, "personas")
    assert len(duck) > 40 and duck.persona.nunique() == 3
    same_frames(duck, spark, "personas export")


def test_personas_assign_and_update_agree(stores) -> None:
    from micromoments.config import load_config
    from micromoments.store import open_configured

    (line,) = _both(stores, "personas", "assign")
    assert int(line.split()[1]) >= 10, line  # the second round's new people
    frames = []
    for engine in ("duckdb", "spark"):
        store = open_configured(load_config(stores["cfg"][engine]), read_only=True)
        p = store.table("personas")
        frames.append(store.ibis.execute(p.select("person_id", "persona_id", "persona", "distance", "method")))
        store.close()
    assert (frames[0].method == "incremental").sum() == int(line.split()[1])
    same_frames(*frames, "personas after assign")
    # The scheduled job: the model is recent, so it assigns incrementally; nobody has new data now.
    assert _both(stores, "personas", "update") == ["incremental: 0 people"]


def test_personas_import_survey_agrees(stores) -> None:
    from micromoments.config import load_config
    from micromoments.store import open_configured

    duck = open_configured(load_config(stores["cfg"]["duckdb"]), read_only=True)
    users = sorted(duck.ibis.execute(duck.table("identities").filter(lambda t: t.id_type == "user")).id)[:6]
    duck.close()
    survey = stores["tmp"] / "survey.csv"
    rows = [f"{u},{goal},25-34" for u, goal in zip(users, ["gift", "garden", "repair"] * 2)]
    survey.write_text("user_id,goal,age_band\n" + "\n".join([*rows, "nobody-yet,gift,", "x,too,many,cells", ",gift,18-24"]) + "\n")
    for _ in range(2):  # a re-import replaces the file's answers
        (line,) = _both(stores, "personas", "import-survey", str(survey))
    assert line.startswith("7 of 9 rows imported (13 answers), 2 quarantined; 6 people matched, 1 keys"), line
    tables = {"survey_answers": ["person_id", "user_id", "field", "value", "source", "line"],
              "quarantine": ["source", "line", "field", "reason", "raw"]}
    for table, cols in tables.items():
        frames = []
        for engine in ("duckdb", "spark"):
            store = open_configured(load_config(stores["cfg"][engine]), read_only=True)
            t = store.table(table)
            frames.append(store.ibis.execute(t.filter(t.source == str(survey)).select(*cols)))
            store.close()
        assert len(frames[0]) == {"survey_answers": 13, "quarantine": 4}[table], frames[0]  # quarantined twice
        same_frames(*frames, table)


def test_seo_needs_no_store_on_either_engine(tmp_path: Path) -> None:
    """`seo --input` analyses the export files in an in-memory DuckDB whatever the engine (no Spark,
    no lake): the same tables either way (a lake holds no search data; `--db` names a DuckDB file)."""
    from micromoments.demo.search_console import write_search_console

    export = write_search_console(tmp_path / "sc", days=7, draws=2000, daily_impressions=2000).ui_zip
    outs = []
    for engine in ("duckdb", "spark"):
        result = runner.invoke(app, ["--engine", engine, "seo", "--input", str(export), "--out", str(tmp_path / engine)])
        assert result.exit_code == 0, (engine, result.output)
        outs.append(tmp_path / engine)
    names = sorted(p.name for p in outs[0].glob("*.csv"))
    assert len(names) >= 10 and names == sorted(p.name for p in outs[1].glob("*.csv"))
    for name in names:
        a, b = ((o / name).read_text() for o in outs)
        if a.strip() and b.strip():  # a table with no rows is written without a header
            same_frames(pd.read_csv(outs[0] / name), pd.read_csv(outs[1] / name), f"seo {name}")
        else:
            assert a == b, name
