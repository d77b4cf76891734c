"""The report's Search section: there when the store holds search data, absent otherwise; data escaped."""

from __future__ import annotations

from pathlib import Path

from micromoments.report import build_report
from micromoments.store import Store
from micromoments.store.search_load import load_search_files

FIXTURES = Path(__file__).parent / "fixtures" / "search"


def test_search_section_only_with_search_data(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.duckdb")
    assert 'id="search"' not in build_report(store, tmp_path / "empty.html").read_text()
    load_search_files(store.duck, [FIXTURES / "searchdata_url_impression.csv"])
    html = build_report(store, tmp_path / "report.html").read_text()
    store.close()
    assert 'id="search"' in html and "Impressions and CTR by moment" in html
    for chart in ("chart-search-moments", "chart-search-weekly", "chart-search-curve"):
        assert f'id="{chart}"' in html
    assert "Cannibalisation: one query, several pages" in html and "Not shown" not in html


def test_search_section_escapes_the_queries(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.duckdb")
    queries = tmp_path / "Queries.csv"
    queries.write_text("Top queries,Clicks,Impressions,CTR,Position\n"
                       "<script>alert(1)</script> how to lay turf,1,4000,0.03%,2\n"
                       + "".join(f"garden query {k},80,1000,8%,2\n" for k in range(6)))
    load_search_files(store.duck, [queries])
    html = build_report(store, tmp_path / "report.html").read_text()
    store.close()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; how to lay turf" in html  # the below-curve table
