"""The app's Search page: charts and tables from the store's search data, everything escaped."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from micromoments.store.search_load import load_search_files
from test_app_pages import login, pages_client
from test_report import make_store

pytestmark = [pytest.mark.filterwarnings("ignore:The .future.infer_string. option"),
              pytest.mark.slow]  # each builds a store and waits for the app's first snapshot
FIXTURES = Path(__file__).parent / "fixtures" / "search"


def signed_in(path: Path) -> TestClient:
    _, _, client = pages_client(path)
    login(client)
    return client


def test_search_page_shows_the_analysis_escaped(tmp_path: Path) -> None:
    store = make_store(tmp_path / "s.duckdb", people=60)
    hostile = tmp_path / "searchdata_url_impression.csv"
    text = (FIXTURES / "searchdata_url_impression.csv").read_text()
    hostile.write_text(text.replace("cordless drill 18v", '<img src=x onerror="alert(1)"> drill'))
    load_search_files(store.duck, [hostile])
    store.close()
    client = signed_in(tmp_path / "s.duckdb")
    assert client.get("/app/search", follow_redirects=False).status_code == 200
    page = client.get("/app/search").text
    assert 'data-nav="search"' in page and "By moment" in page and "Cannibalisation" in page
    assert 'id="chart-search-moments"' in page and 'id="chart-search-curve"' in page
    assert "how to build a raised bed" in page and "(anonymized)" in page
    assert '<img src=x onerror="alert(1)">' not in page
    assert "TestClient" not in page and "Traceback" not in page


def test_search_page_without_search_data_says_how_to_load_it(tmp_path: Path) -> None:
    make_store(tmp_path / "s.duckdb", people=60).close()
    page = signed_in(tmp_path / "s.duckdb").get("/app/search")
    assert page.status_code == 200 and "No search data in the store yet" in page.text
    assert "<code>micromoments seo --input" in page.text
