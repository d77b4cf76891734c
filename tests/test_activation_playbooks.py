"""Playbook and catalog files: validation to the exact line, trigger semantics, live stages = batch stages."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

import pytest
from typer.testing import CliRunner

from micromoments.activation.catalog import Catalog
from micromoments.activation.engine import examples_dir
from micromoments.activation.limits import local_time
from micromoments.activation.playbooks import MatchContext, load_playbooks, load_playbooks_text
from micromoments.activation.stages import LiveStageRules, live_stage
from micromoments.cli import app
from micromoments.errors import ConfigError

CATALOG = Catalog.load(examples_dir() / "catalog.yaml")
CHECKS = {"moments": ("know", "go", "do", "buy", "other"), "catalog": CATALOG,
          "stages": ("awareness", "consideration", "decision", "post-purchase"), "webhooks": ["crm"]}

GOOD = """\
playbooks:
  - name: go-near-store
    priority: 100
    when:
      moments: [go]
      near_store_km: 25
    action:
      channel: push
      content: [store-nearby-push]
"""

# (broken text, line, column, words in the message)
BROKEN = [
    (GOOD.replace("near_store_km: 25", "near_store_km: ten"), 6, 22, "near_store_km"),
    (GOOD.replace("      near_store_km: 25", "      near_stor_km: 25"), 6, 7, "Extra inputs"),
    (GOOD.replace("moments: [go]", "moments: [go, wander]"), 5, 21, "unknown moment 'wander'"),
    (GOOD.replace("content: [store-nearby-push]", "content: [store-nearby-pushh]"), 9, 17,
     "no content 'store-nearby-pushh'"),
    (GOOD.replace("content: [store-nearby-push]", "content: [cart-reminder-email]"), 9, 17,
     "not for channel 'push'"),
    (GOOD.replace("channel: push", "channel: pigeon"), 8, 16, "action.channel"),
    (GOOD + "    limits: {quiet_hours: '9pm-8am'}\n", 10, 27, "quiet hours must look like"),
    (GOOD + "    limits: {caps: [{scope: playbook, max: -1}]}\n", 10, 44, "max"),
    (GOOD.replace("    action:\n      channel: push\n      content: [store-nearby-push]\n", ""), 2, 5,
     "action: Field required"),
    (GOOD.replace("moments: [go]", "moments: [go"), 6, 20, "not valid YAML"),
    (GOOD + "    when2: {}\n", 10, 5, "when2"),
    (GOOD.replace("moments: [go]", "moments: [go]\n      stages: [shopping]"), 6, 16, "unknown stage"),
    (GOOD.replace("channel: push\n      content: [store-nearby-push]", "channel: webhook\n      webhook: erp"),
     9, 16, "unknown webhook 'erp'"),
    (GOOD.replace("moments: [go]", "moments: [go]\n      properties: {price: {above: 3}}"), 6, 19, "above"),
]


@pytest.mark.parametrize("text,line,col,words", BROKEN)
def test_errors_point_to_the_exact_line(text: str, line: int, col: int, words: str):
    with pytest.raises(ConfigError) as exc:
        load_playbooks_text(text, "pb/go.yaml", **CHECKS)
    where = exc.value.where
    assert where == f"pb/go.yaml:{line}:{col}", (str(exc.value), text.splitlines()[line - 1])
    assert words in str(exc.value)
    assert exc.value.hint


def test_cli_validate_reports_file_line_and_exits_2(tmp_path: Path):
    runner = CliRunner()
    ok = runner.invoke(app, ["playbooks", "validate"])
    assert ok.exit_code == 0, ok.output
    assert "5 playbook(s)" in ok.output
    (tmp_path / "a_good.yaml").write_text(GOOD)
    (tmp_path / "b_bad.yaml").write_text(BROKEN[0][0])
    (tmp_path / "c_bad.yml").write_text(BROKEN[2][0])
    res = runner.invoke(app, ["playbooks", "validate", str(tmp_path)])
    assert res.exit_code == 2
    out = res.output + (res.stderr if res.stderr_bytes is not None else "")
    assert f"{tmp_path / 'b_bad.yaml'}:6:22" in out.replace("\n", "")
    assert f"{tmp_path / 'c_bad.yml'}:5:21" in out.replace("\n", "")


def test_duplicate_names_across_files(tmp_path: Path):
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "b.yaml").write_text(GOOD)
    with pytest.raises(ConfigError, match="duplicate playbook name 'go-near-store'") as exc:
        load_playbooks(tmp_path, **CHECKS)
    assert exc.value.where == f"{tmp_path / 'b.yaml'}:2:5"


def test_shipped_examples_are_valid_and_sorted_by_priority():
    pbs = load_playbooks(examples_dir() / "playbooks", **CHECKS)
    assert [p.priority for p in pbs] == sorted((p.priority for p in pbs), reverse=True)
    assert pbs[0].name == "go-near-store" and pbs[0].source.endswith("go_near_store.yaml:4:5")


def test_trigger_conditions():
    [pb] = load_playbooks_text("""
playbooks:
  - name: evening-garden
    when:
      fire_on: event
      moments: [buy, garden-makeover]
      channels: [app]
      devices: [mobile, tablet]
      near_store_km: 10
      local_time: {hours: "17:00-21:00", days: [fri, sat]}
      properties: {category: garden, price: {gte: 20, lt: 100}, "product.brand": {in: [bosch, ryobi]},
                   coupon: {exists: false}}
    action: {channel: app}
""", "x.yaml")
    # Friday 2026-09-04 18:30 in London = 17:30 UTC.
    fri = local_time(dt.datetime(2026, 9, 4, 17, 30), "Europe/London")
    base = dict(moment="garden-makeover", channel="app", device="mobile", store_km=3.0, local=fri,
                properties={"category": "garden", "price": 49.0, "product": {"brand": "bosch"}})
    assert pb.when.matches(MatchContext(**base))
    for change in [{"moment": "know"}, {"channel": "web"}, {"device": "desktop"}, {"store_km": 12.0},
                   {"store_km": None},
                   {"local": local_time(dt.datetime(2026, 9, 4, 21, 30), "Europe/London")},  # 22:30
                   {"local": local_time(dt.datetime(2026, 9, 6, 17, 30), "Europe/London")},  # Sunday
                   {"properties": {**base["properties"], "price": 150}},
                   {"properties": {**base["properties"], "product": {"brand": "stanley"}}},
                   {"properties": {**base["properties"], "coupon": "X"}},
                   {"properties": {"price": 49.0}}]:
        assert not pb.when.matches(MatchContext(**{**base, **change})), change
    # Same UTC instant, another timezone: 13:30 in New York is outside 17:00-21:00.
    assert not pb.when.matches(MatchContext(**{**base, "local": local_time(dt.datetime(2026, 9, 4, 17, 30),
                                                                               "America/New_York")}))


def test_catalog_templates_csv_and_sandbox(tmp_path: Path):
    csv = tmp_path / "catalog.csv"
    csv.write_text("id,channels,moments,stages,title,body,discount_code\n"
                   "c1,push|app,go,,\"{{ nearest_store.name }}\",\"Hi {{ first_name }}\",\n"
                   "c2,email,buy,decision,Cart,\"Code {{ discount_code }}\",SAVE-{{ person_code }}\n")
    cat = Catalog.load(csv)
    assert [i.id for i in cat.candidates(moment="buy", stage="decision", channel="email")] == ["c2"]
    out = cat.render(cat.by_id["c2"], {"person_code": "AB12"})
    assert (out["body"], out["discount_code"]) == ("Code SAVE-AB12", "SAVE-AB12")
    # Missing values render empty instead of failing.
    assert cat.render(cat.by_id["c1"], {})["title"] == ""
    # A template error points to the CSV row; the sandbox refuses Python internals.
    bad = tmp_path / "bad.csv"
    bad.write_text("id,title\nok,fine\nx,\"{{ first_name \"\n")
    with pytest.raises(ConfigError) as exc:
        Catalog.load(bad)
    assert exc.value.where == f"{bad}:3"
    evil = Catalog.from_yaml_text("items:\n  - id: e\n    body: \"{{ ''.__class__.__mro__[1].__subclasses__() }}\"\n",
                                  "e.yaml")
    from jinja2.exceptions import SecurityError

    with pytest.raises(SecurityError):
        evil.render(evil.by_id["e"], {})
    with pytest.raises(ConfigError) as exc:
        Catalog.from_yaml_text("items:\n  - id: a\n  - id: b\n    chanels: [push]\n", "c.yaml")
    assert exc.value.where == "c.yaml:4:5"


def test_live_stage_equals_the_batch_stage_rules():
    """Every combination of session features gets the same stage from the Python evaluator and
    from `journey.stages.stage_expr` (the SQL the report uses), for the default and a custom rule set."""
    import ibis
    import pandas as pd

    from micromoments.journey.stages import stage_expr

    custom = [{"stage": "loyal", "when": [{"purchased_before": True, "has_moment": False}]},
              {"stage": "shopping", "when": [{"moment_in": ["buy", "go"], "min_product_views": 1},
                                             {"has_cart": True, "converted": False}]},
              {"stage": "other", "when": [{"moment_not_in": ["know"]}]}]
    rows = [dict(moment=m, purchased_before=pb, first_session=fs, converted=cv, cart_events=ce,
                 support_events=se, product_views=pv)
            for m, pb, fs, cv, ce, se, pv in itertools.product(
                [None, "know", "go", "do", "buy"], [False, True], [False, True], [False, True], [0, 2],
                [0, 1], [0, 1, 3])]
    frame = pd.DataFrame(rows)
    con = ibis.duckdb.connect()
    t = con.create_table("f", frame)
    for rules in (None, custom):
        batch = t.mutate(stage=stage_expr(t, rules)).order_by(list(frame.columns)).to_pandas()
        compiled = LiveStageRules(rules)
        for rec in batch.to_dict("records"):
            feats = {k: (None if k == "moment" and not isinstance(rec[k], str) else rec[k]) for k in frame.columns}
            live = compiled.stage(feats)
            assert live == (rec["stage"] if isinstance(rec["stage"], str) else None), (feats, rec["stage"], live)
    assert live_stage({"moment": None, "first_session": True}) == "awareness"
