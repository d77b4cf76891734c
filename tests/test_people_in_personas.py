"""Personas count people as every headline does (journey.people): ids that signed in, with the
anonymous ids not linked to anyone yet said apart, in the build summary (`micromoments demo`'s
personas step), the report's persona section and the app's personas page."""

from __future__ import annotations

import re

import pytest

from micromoments.config import Config
from micromoments.journey.people import anonymous_note, people_counts
from micromoments.personas.build import build_personas
from test_app_pages import login, pages_client
from test_report import make_store

pytestmark = [pytest.mark.filterwarnings("ignore:The .future.infer_string. option"),
              # personas.clv on these hand-built purchases (not what this test is about)
              pytest.mark.filterwarnings("ignore::RuntimeWarning")]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """240 ids, every third of which never signed in, in two personas."""
    path = tmp_path_factory.mktemp("people") / "s.duckdb"
    store = make_store(path, people=240)
    ids = store.duck.execute("SELECT DISTINCT person_id FROM events ORDER BY person_id").df().person_id
    store.duck.execute("UPDATE events SET user_id = NULL WHERE list_contains(?, person_id)", [ids[::3].tolist()])
    result = build_personas(store, Config(), n_clusters=2, save=False, with_paths=False)
    yield store, path, result


def test_persona_build_counts_signed_in_people(built) -> None:
    store, _, result = built
    people, anonymous = people_counts(store.table("events"), store.ibis)
    assert (people, anonymous) == (160, 80)
    desc = result.descriptions
    assert int(desc.people.sum()) == people and int(desc.anonymous.sum()) == anonymous
    assert abs(desc.share.sum() - 1) < 1e-9
    assert "160 people and 80 anonymous ids not linked to anyone yet in 2 personas" in result.summary()


@pytest.mark.slow
def test_report_and_app_persona_pages_count_people(built, tmp_path) -> None:
    store, path, result = built
    from micromoments.report import build_report

    html = build_report(store, tmp_path / "r.html").read_text(encoding="utf-8")
    assert anonymous_note(80) in html
    for r in result.descriptions.itertuples():
        assert f"{r.people:,} people · " in html, r.persona
    store.close()

    _, _, client = pages_client(path)
    login(client)
    page = client.get("/app/personas").text
    assert "160 people and 80 anonymous ids not linked to anyone yet in 2 personas" in page
    shown = sorted(int(n.replace(",", "")) for n in re.findall(r'<div class="big">([\d,]+) <small', page))
    assert shown == sorted(result.descriptions.people.tolist())
