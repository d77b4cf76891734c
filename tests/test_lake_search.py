"""Search Console data on the lake: `seo --input FILES --db LAKE` with the Spark engine loads and
classifies the exports as DuckDB does, and `seo --db` and the report's Search section read them.

The same demo export (the `micromoments demo` "search console" step's generator, two weeks) and a
small Queries CSV with bad rows go into a DuckDB store and a lake, twice (a re-load replaces, never
duplicates). Then the 12 CSV tables of `seo --db`, its printed summary, the stored search tables,
the quarantine and the report's Search section are compared: counts and text exactly, floats to
1e-9 relative. One SparkSession (conftest) serves the module.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd
import pytest

from micromoments.config import load_config
from micromoments.demo.search_console import write_search_console
from micromoments.report.seo import search_sections
from micromoments.seo.run import SeoResult
from micromoments.store import open_configured
from test_engines_cli import _cli, _configs, same_frames

pytestmark = [pytest.mark.slow, pytest.mark.spark,
              pytest.mark.filterwarnings("ignore:The .future.infer_string. option"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::FutureWarning")]
BAD_QUERIES = "Top queries,Clicks,Impressions,CTR,Position\nlay turf,1,10,10%,2\n,1,5,20%,3\nfence paint,x,4,0%,5\n"


def _seo(engine: str, cfg: dict[str, Path], tmp: Path, out: str, *files: Path) -> str:
    """`seo` in store mode: DuckDB by the config key, Spark by --engine over the duckdb config."""
    target = tmp / ("s.duckdb" if engine == "duckdb" else "lake")
    args = ["seo", *[a for f in files for a in ("--input", str(f))], "--db", str(target), "--out", str(tmp / out),
            "--min-impressions", "10", "--config", str(cfg["duckdb"])]
    text = _cli(*(["--engine", "spark"] if engine == "spark" else []), *args)
    # The store's path and the last line (the engine's own folder) differ by design.
    return re.sub(r"\s+", " ", text.split("wrote ")[0].replace(str(target), "STORE"))


@pytest.fixture(scope="module")
def loaded(tmp_path_factory, spark_session) -> tuple[Path, dict[str, Path], dict[str, list[str]]]:
    tmp = tmp_path_factory.mktemp("lake-search")
    sc = write_search_console(tmp / "sc", days=14, seed=3, draws=3000, daily_impressions=600, ui_zip=False)
    bad = tmp / "Queries.csv"
    bad.write_text(BAD_QUERIES)
    cfg = _configs(tmp)
    printed: dict[str, list[str]] = {}
    for engine in ("duckdb", "spark"):
        first = _seo(engine, cfg, tmp, f"load-{engine}", sc.bulk, bad)
        again = _seo(engine, cfg, tmp, f"again-{engine}", sc.bulk, bad)  # replaces the files' rows
        read = _seo(engine, cfg, tmp, f"out-{engine}", )  # store mode, no input: every query cached
        printed[engine] = [first, again, read]
    return tmp, cfg, printed


def test_seo_store_mode_agrees(loaded) -> None:
    tmp, cfg, printed = loaded
    for d, s in zip(printed["duckdb"], printed["spark"]):
        assert d == s, next((d[i - 80:i + 200], s[i - 80:i + 200]) for i in range(len(d)) if d[:i] != s[:i])
    first, again, read = printed["spark"]
    assert "7,245 loaded" in first or "loaded, 2 quarantined from 2 tables" in first, first
    assert "loaded, 2 quarantined from 2 tables" in again
    assert re.search(r"[\d,]+ distinct queries: 0 classified", again), again  # the cache on the lake too
    assert "Cannibalisation" in read and "Below the curve" in read
    for out in ("load", "again", "out"):
        for name in SeoResult.CSV_TABLES:
            frames = [pd.read_csv(tmp / f"{out}-{e}" / f"{name}.csv") for e in ("duckdb", "spark")]
            same_frames(frames[0], frames[1], f"{out}/{name}")
        assert len(pd.read_csv(tmp / f"{out}-spark" / "cannibalisation.csv")) > 0


def test_search_tables_and_quarantine_agree(loaded) -> None:
    tmp, cfg, _ = loaded
    duck, lake = (open_configured(load_config(cfg[e])) if e == "duckdb" else
                  open_configured(load_config(cfg["spark"])) for e in ("duckdb", "spark"))
    try:
        counts = {}
        for name in ("search_rows", "search_moments", "search_query_moments"):
            frames = [s.ibis.execute(s.table(name)) for s in (duck, lake)]
            same_frames(frames[0], frames[1], name)
            counts[name] = len(frames[1])
        assert counts["search_rows"] == 7245 + 1  # loaded twice, held once
        q = [s.ibis.execute(s.table("quarantine").drop("quarantined_at")) for s in (duck, lake)]
        same_frames(q[0], q[1], "quarantine")
        assert sorted(q[1].reason.str.split(" ").str[0]) and len(q[1]) == 2
    finally:
        duck.close()


def test_report_search_section_agrees(loaded) -> None:
    tmp, cfg, _ = loaded
    sections = []
    for engine in ("duckdb", "spark"):
        config = load_config(cfg[engine])
        store = open_configured(config)
        sections.append(search_sections(store, config))
        store.close()
    duck, lake = sections
    assert len(duck) == len(lake) == 1
    a, b = duck[0], lake[0]
    assert a.kpis == b.kpis and a.notes == b.notes and a.table == b.table
    assert b.kpis and "Content gaps" in b.table and "chart-search-curve" in b.figure
    same_text_and_numbers(a.figure, b.figure)


def same_text_and_numbers(a: str, b: str) -> None:
    """Equal HTML but for the last digits of floats (1e-9 relative)."""
    number = r"-?\d+\.\d+(?:e[-+]?\d+)?"
    assert re.sub(number, "#", a) == re.sub(number, "#", b)
    for x, y in zip(re.findall(number, a), re.findall(number, b)):
        assert math.isclose(float(x), float(y), rel_tol=1e-9, abs_tol=1e-12), (x, y)
