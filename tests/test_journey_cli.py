"""The journey commands, end to end on a small store, and a REES46-shaped clickstream."""

from __future__ import annotations

from pathlib import Path

import ibis
import pytest
from typer.testing import CliRunner

from micromoments.cli import app
from micromoments.journey import assign_stages, episodes, session_features, sessionize, sessions, without_moments
from micromoments.journey.funnels import funnel
from micromoments.journey.touchpoints import touchpoints
from micromoments.store import Store
from micromoments.store.ingest import ingest_file
from test_report import make_store

pytestmark = pytest.mark.filterwarnings("ignore:The .future.infer_string. option")
runner = CliRunner()


def test_commands_print_and_export(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    make_store(db).close()
    for args in (["sessions"], ["journey-map"], ["journey-map", "--paths"], ["heatmap"], ["faq"], ["touchpoints"],
                 ["funnel", "--steps", "Product Viewed,Product Added,Order Completed", "--breakdown", "channel"]):
        out = tmp_path / f"{args[0]}.csv"
        result = runner.invoke(app, [*args, "--db", str(db), "--output", str(out)])
        assert result.exit_code == 0, (args, result.output)
        assert out.stat().st_size > 100
    result = runner.invoke(app, ["report", "--db", str(db), "--output", str(tmp_path / "r.html")])
    assert result.exit_code == 0 and (tmp_path / "r.html").stat().st_size > 1_000_000


def test_funnel_errors_exit_2_with_a_hint(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    make_store(db).close()
    result = runner.invoke(app, ["funnel", "--steps", "Product Viewed", "--db", str(db)])
    assert result.exit_code == 2 and "at least 2 steps" in result.output


def test_keywords_command(tmp_path: Path) -> None:
    src = tmp_path / "kw.csv"
    src.write_text("term,vol\nrunning shoes,100\nhow to lace running shoes,20\nshoe store near me,50\n")
    out = tmp_path / "out.csv"
    result = runner.invoke(app, ["keywords", "--input", str(src), "--keyword-column", "term", "--volume-column", "vol",
                                 "--output", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert text.splitlines()[0].startswith("keyword,volume,moment")
    result = runner.invoke(app, ["keywords", "--input", str(tmp_path / "missing.csv")])
    assert result.exit_code == 2 and "missing.csv" in result.output


def test_rees46_clickstream_without_queries(tmp_path: Path) -> None:
    """REES46 rows ingested with a column mapping: sessions, stages, funnel and touchpoints still work."""
    csv = tmp_path / "rees.csv"
    rows = ["event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session"]
    def r(t: str, kind: str, pid: int, user: int, price: float = 10.0) -> str:
        return f"2019-10-01 {t} UTC,{kind},{pid},2053013555631882655,electronics.smartphone,apple,{price},{user},s{user}"
    rows += [r("10:00:00", "view", 1, 1), r("10:01:00", "view", 2, 1), r("10:02:00", "cart", 2, 1),
             r("10:03:00", "purchase", 2, 1, 99.5),
             r("11:00:00", "view", 1, 2), r("11:05:00", "cart", 1, 2), r("11:06:00", "remove_from_cart", 1, 2),
             r("12:00:00", "view", 3, 3), r("15:00:00", "view", 3, 3)]
    csv.write_text("\n".join(rows) + "\n")
    store = Store(tmp_path / "s.duckdb")
    ingest_file(store, csv, mapping="timestamp=event_time,event=event_type,user_id=user_id")
    events = without_moments(store.table("events"))
    s = sessionize(events)
    sess = store.ibis.execute(sessions(s)).sort_values("session_id")
    assert sess.session_id.tolist() == ["1:1", "2:1", "3:1", "3:2"]
    assert sess.converted.tolist() == [True, False, False, False]
    stages = store.ibis.execute(assign_stages(session_features(s, episodes(s)))).sort_values("session_id")
    assert stages.stage.tolist() == ["decision", "decision", "awareness", "consideration"]
    f = store.ibis.execute(funnel(events, ["view", "cart", "purchase"])).sort_values("step")
    assert f.people.tolist() == [3, 2, 1]
    assert store.ibis.execute(episodes(s)).empty  # no intent without the classifier
    tp = store.ibis.execute(touchpoints(s, "channel"))
    assert tp.sessions.sum() == 4
