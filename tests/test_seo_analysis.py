"""The search analysis: moments with their landing page, the expected-CTR curve and the opportunities."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import ibis
import pytest

from micromoments.seo import Thresholds, analyse_search, classify_search
from micromoments.store.search_load import load_search_files

FIXTURES = Path(__file__).parent / "fixtures" / "search"


@dataclass
class Result:
    moment: str
    go_type: str | None
    confidence: float = 0.9


class StubClassifier:
    """Moments by a fixed table, recording the landing pages it was given."""

    version = "stub-1"

    def __init__(self, moments: dict[str, str]):
        self.moments = moments
        self.seen: dict[str, str | None] = {}

    def predict(self, texts, urls=None, titles=None, *, explain=True):  # noqa: ANN001, ANN201
        out = []
        for i, t in enumerate(texts):
            self.seen[t] = urls[i] if urls else None
            m = self.moments.get(t, "buy")
            out.append(Result(m.split("/")[0], m.split("/")[1] if "/" in m else None))
        return out


MOMENTS = {
    "how to build a raised bed": "do", "garden centre near me": "go/local", "how to use a hedge trimmer": "do",
    "what is the best compost for tomatoes": "know", "cordless drill 18v": "buy", "rose feed": "buy",
}


def test_anonymized_counted_not_classified_landing_page_as_context_and_cache() -> None:
    ib = ibis.duckdb.connect()
    load_search_files(ib.con, [FIXTURES / "searchdata_url_impression.csv"])
    stub = StubClassifier(MOMENTS)
    stats = classify_search(ib.con, classifier=stub)
    assert stats["classified"] == 6 and None not in stub.seen and "" not in stub.seen
    # The query's landing page with the most impressions (420 against 250) is its context.
    assert stub.seen["how to build a raised bed"].endswith("/how-to/build-a-raised-bed")
    assert classify_search(ib.con, classifier=stub)["cached"] == 6
    result = analyse_search(ib, classify=False, thresholds=Thresholds(min_impressions=100))
    moments = result.by_moment.set_index("moment")
    assert moments.loc["(anonymized)", "impressions"] == 65 and moments.loc["(anonymized)", "queries"] == 0
    assert moments.loc["do", "impressions"] == 300 + 250 + 120 + 180
    assert moments.loc["go/local", "ctr"] == pytest.approx(40 / 400)
    assert moments.impression_share.sum() == pytest.approx(1.0)
    assert "rose feed" not in set(result.below_curve.get("query", []))  # an image search: web only by default
    assert result.totals["impressions"] == 1625 and result.totals["anonymized_share"] == pytest.approx(65 / 1625)
    # Two weeks, devices and countries, each split by moment.
    assert sorted(result.weekly.week.astype(str).str[:10].unique()) == ["2026-08-31", "2026-09-07"]
    by_device = result.by_device.groupby("device").impressions.sum().to_dict()
    assert by_device == {"desktop": 325, "mobile": 1210, "tablet": 90}
    assert set(result.by_country.country) == {"gbr", "irl", "usa"}


def test_content_gaps_and_cannibalisation_on_the_bulk_fixture() -> None:
    ib = ibis.duckdb.connect()
    load_search_files(ib.con, [FIXTURES / "searchdata_url_impression.csv"])
    classify_search(ib.con, classifier=StubClassifier(MOMENTS))
    result = analyse_search(ib, classify=False, thresholds=Thresholds(min_impressions=100))
    gaps = {(r.gap, r.query) for r in result.content_gaps.itertuples()}
    assert gaps == {("do_on_product_page", "how to use a hedge trimmer"),
                    ("know_question_no_answer_page", "what is the best compost for tomatoes")}
    summary = result.gap_summary.set_index("gap")
    assert summary.loc["go_local_no_store_page", "queries"] == 0  # it lands on /stores/leeds
    assert summary.loc["know_question_no_answer_page", "share_of_moment"] == 1.0
    c = result.cannibalisation
    assert list(c["query"]) == ["how to build a raised bed"]
    row = c.iloc[0]
    assert (row.pages, row.impressions, row.clicks) == (2, 670, 32)
    assert row.top_page.endswith("/how-to/build-a-raised-bed") and row.top_click_share == pytest.approx(27 / 32)
    assert "63% of impressions, 84% of clicks" in row.split and "/advice/raised-beds 37%" in row.split


def ui_queries(tmp_path: Path, rows: list[tuple[str, int, int, int]]) -> Path:
    path = tmp_path / "Queries.csv"
    lines = ["Top queries,Clicks,Impressions,CTR,Position"]
    lines += [f"{q},{c},{i},{100 * c / i:.2f}%,{p}" for q, i, c, p in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_expected_ctr_curve_and_opportunities_on_hand_made_data(tmp_path: Path) -> None:
    """Five ordinary queries at each position 1-6, and five planted ones whose fate is known."""
    ctr = {1: 0.30, 2: 0.15, 3: 0.10, 4: 0.06, 5: 0.07, 6: 0.03}   # position 5 above 4: not monotone
    rows = [(f"ordinary topic {p} number {k}", 1000, int(ctr[p] * 1000), p) for p in ctr for k in range(5)]
    rows += [
        ("planted a", 2000, 200, 1),   # 10% at the top: far below -> listed first
        ("planted b", 80, 0, 2),       # no clicks, but too few impressions to say
        ("planted c", 1000, 90, 3),    # 9% against ~10%: within the margin
        ("planted d", 1500, 30, 4),    # 2% against ~6%: listed
        ("planted e", 300, 12, 6),     # above the curve
    ]
    ib = ibis.duckdb.connect()
    load_search_files(ib.con, [ui_queries(tmp_path, rows)])
    classify_search(ib.con, classifier=StubClassifier({}))
    result = analyse_search(ib, classify=False)

    # By hand: each bin pools its clicks over its impressions; bins 4 and 5 break the order and pool.
    pooled = {1: (5 * 300 + 200) / 7000, 2: (5 * 150 + 0) / 5080, 3: (5 * 100 + 90) / 6000,
              4: (5 * 60 + 30 + 5 * 70) / (6500 + 5000), 6: (5 * 30 + 12) / 5300}
    expected = [pooled[1], pooled[2], pooled[3], pooled[4], pooled[4], pooled[6]]
    assert list(result.curve.position) == [1, 2, 3, 4, 5, 6]
    assert list(result.curve.expected_ctr) == pytest.approx(expected)
    assert result.curve.observed_ctr.iloc[4] == pytest.approx(0.07)

    below = result.below_curve
    assert list(below["query"]) == ["planted a", "planted d"]
    assert list(below.missed_clicks) == pytest.approx([2000 * pooled[1] - 200, 1500 * pooled[4] - 30])
    assert (below.p_value < 0.01).all()
    # No landing pages in a UI export: said, not guessed.
    assert result.content_gaps.empty and any("landing pages" in n for n in result.notes)


@pytest.mark.slow
def test_the_demo_export_is_read_clean_and_what_was_planted_is_found(tmp_path: Path) -> None:
    """The demo's export loads without a bad row, in both forms, and the analysis finds what the generator
    planted: most below-curve queries are planted under-performers or gap pages, the gaps and the
    cannibalised queries it lists are planted ones."""
    import pandas as pd

    from micromoments.demo.search_console import write_search_console

    paths = write_search_console(tmp_path, days=35, draws=8_000, daily_impressions=15_000)
    ib = ibis.duckdb.connect()
    loaded = load_search_files(ib.con, [paths.bulk, paths.ui_zip])
    assert loaded.quarantined == 0 and {t.grain for t in loaded.tables} == {
        "url", "query", "page", "country", "device", "date"}
    result = analyse_search(ib)
    assert result.grains == {"google": "url"}  # the URL rows are analysed, the UI's tables not added to them
    truth = pd.read_csv(paths.truth, keep_default_na=False)
    planted = set(truth[truth.under_performer | (truth.gap != "")]["query"])
    below = set(result.below_curve["query"])
    assert len(below) >= 10 and len(below & planted) / len(below) >= 0.6
    for gap, found in result.content_gaps.groupby("gap"):
        # Not all: a gap follows the classifier's moment ("gifts for diy lovers" reads as do, planted as buy).
        hits = set(found["query"]) & set(truth[truth.gap == gap]["query"])
        assert len(hits) / len(found) >= 0.8, (gap, set(found["query"]) - hits)
    assert set(result.cannibalisation["query"]) <= set(truth[truth.second_page != ""]["query"])
    trend = result.style_slopes
    assert trend["question"] > 0 and trend["voice"] > 0  # the generator grows them
