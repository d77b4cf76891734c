"""The intent engine on real queries: the frozen evaluation set, the guideline's hard cases, weak supervision."""

from __future__ import annotations

import csv
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from micromoments.intent import classify
from micromoments.intent.evaluate import evaluate_labels
from micromoments.intent.text import normalize_text
from micromoments.intent.weak import CLASSES, LabelModel, apply_lfs, domain_matches

REAL = Path(__file__).parent / "fixtures" / "intent" / "real"
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))


def read_tsv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def read(name: str) -> list[dict[str, str]]:
    return read_tsv(REAL / name)


def moment(label: str) -> str:
    return "go" if label.startswith("go") else label


# -- the frozen evaluation set ---------------------------------------------------------------------

def test_eval_set_is_real_sourced_split_and_double_labelled() -> None:
    from eval_intent_real import cohen_kappa

    rows = read("eval.tsv")
    assert len(rows) >= 1500 and len({r["id"] for r in rows}) == len(rows)
    assert all(r["source"] and r["licence"] in {"MIT", "Apache-2.0"} for r in rows)
    assert {r["lang"] for r in rows} == {"en", "de", "fr", "es"}
    by_source = Counter((r["source"], r["lang"], r["split"]) for r in rows)
    for (source, lang, split), n in by_source.items():
        other = by_source[(source, lang, "test" if split == "dev" else "dev")]
        assert abs(n - other) <= 1, (source, lang)
    a = {r["id"]: r["label"] for r in read("pass_a.tsv")}
    b = {r["id"]: r["label"] for r in read("pass_b.tsv")}
    assert set(a) == set(b) == {r["id"] for r in rows}
    ids = sorted(a)
    assert cohen_kappa([moment(a[i]) for i in ids], [moment(b[i]) for i in ids]) >= 0.6
    resolved = {r["id"]: r["final"] for r in read("resolved.tsv")}
    assert set(resolved) == {i for i in ids if a[i] != b[i]}
    for r in rows:  # the frozen label is the agreed one, or the resolution of a disagreement
        assert r["label"] == resolved.get(r["id"], a[r["id"]])


@pytest.mark.slow
def test_eval_set_is_never_trained_on() -> None:
    from micromoments.intent.training import build_training_set

    held = {normalize_text(r["query"]) for r in read("eval.tsv")}
    train = {t for t, _ in build_training_set(None, exclude=held)}
    assert not held & train


@pytest.mark.slow
def test_real_test_split_floor() -> None:
    """Reported in docs/intent.md; the floor sits a few points under the measured value."""
    rows = [r for r in read("eval.tsv") if r["split"] == "test"]
    preds = classify([r["query"] for r in rows], explain=False)
    ev = evaluate_labels([moment(r["label"]) for r in rows], [p.moment for p in preds],
                         labels=["know", "go", "do", "buy"])
    assert ev.macro_f1 >= 0.60, ev.f1
    assert ev.precision["buy"] >= 0.45, ev.precision


# -- the guideline's hard cases --------------------------------------------------------------------

@pytest.mark.parametrize(
    ("query", "moment", "go_type"),
    [
        ("plumbr near mee", "go", "local"),
        ("lawnmoer reapir near mee", "go", "local"),
        ("wann schließt der baumarkt", "go", "local"),
        ("baumarkt in der nähe", "go", "local"),
        ("facebok", "go", "site"),
        ("servicenow", "go", "site"),
        ("argos", "go", "site"),
        ("bellagio hotel las vegas", "go", "local"),
        ("st mary's hospital", "go", "local"),
        ("city of springfield", "go", "site"),
        ("lincoln high school", "go", "site"),
        ("bathroom remodel cost", "know", None),
        ("how much does a gym membership cost", "know", None),
        ("how much is an iphone 12", "know", None),
        ("best kayak for fishing", "know", None),
        ("who makes kirkland batteries", "know", None),
        ("can you paint a fence in winter", "know", None),
        ("how long does it take to lay turf", "know", None),
        ("how to lay turf", "do", None),
        ("safe mode windows 10", "do", None),            # rule 6: an instruction cue, no question word
        ("wedding invitations", "do", None),
        ("open heic file", "do", None),                  # rule 6: a task verb first
        ("turn off autocorrect", "do", None),
        ("download zoom", "buy", None),                  # ...but obtaining a resource stays buy
        ("what is windows 11", "know", None),
        ("sourdough recipe", "do", None),
        ("denver", "know", None),                        # rule 1: a bare town is a place to learn about
        ("chicken pot pie", "do", None),                 # rule 6: a dish alone asks for the recipe...
        ("vegetable soup calories", "know", None),       # ...with a fact word it is know
        ("brandy melville", "go", "site"),               # rule 2: organisations.txt (not in the eval set)
        ("general dynamics", "go", "site"),
        ("plumber denver", "go", "local"),
        ("buy iphone 12", "buy", None),
        ("iphone 12 deals", "buy", None),
        ("gift card", "buy", None),
        ("money off code", "buy", None),
        ("complaints", "do", None),
        ("wie backe ich brot", "do", None),
        ("cómo hacer pan casero", "do", None),
        ("comprar zapatillas", "buy", None),
        ("¿quién escribió don quijote?", "know", None),
    ],
)
def test_guideline_hard_cases(query: str, moment: str, go_type: str | None) -> None:
    r = classify(query)
    assert (r.moment, r.go_type) == (moment, go_type), r


def test_landing_url_naming_the_brand_counts_for_go_site() -> None:
    bare = classify("kryptonite tools")
    nav = classify("kryptonite tools", url="https://www.kryptonitetools.com/")
    assert nav.moment == "go" and nav.go_type == "site" and nav.scores["go"] > bare.scores["go"]
    howto = classify("decking", url="https://www.example.com/how-to/lay-decking")
    shop = classify("paint", url="https://www.amazon.com/dp/B000123/")
    assert howto.moment == "do" and shop.moment == "buy"



def test_a_product_page_counts_for_buy_unless_the_query_asks_how_or_what() -> None:
    page = "https://shop.example/products/grass-seed-1kg"
    assert classify("grass seed").moment != "buy"  # the query alone reads as something else
    assert classify("grass seed", url=page).moment == "buy"
    # Search research reports these as content gaps, so the page must not overrule the query.
    assert classify("how to sow grass seed", url=page).moment == "do"
    assert classify("grass seed price", url=page).moment == "know"

def test_a_video_page_counts_for_buy_only_when_the_query_is_not_a_task() -> None:
    video = "https://www.youtube.com/watch?v=abc123"
    assert classify("baby shark", url=video).scores["buy"] > classify("baby shark").scores["buy"] + 0.1
    # A video showing how to do something answers a how-to (ORCAS-I's 'instrumental'), not a purchase.
    assert classify("tie a tie", url=video).moment == "do"
    assert classify("how to tie a tie", url=video).moment == "do"


def test_a_task_page_counts_for_do() -> None:
    # GOV.UK-style service pages: the query alone reads as a topic, the page says it is a task.
    for query, url in [("passport renewal", "https://www.gov.uk/renew-adult-passport"),
                       ("mortgage", "https://bank.example/mortgages/mortgage-calculator")]:
        assert classify(query).moment != "do"
        assert classify(query, url=url).moment == "do"
    # ...but not for a question: the page then answers it.
    assert classify("how much is a mortgage", url="https://bank.example/mortgages/mortgage-calculator").moment == "know"


def test_govuk_pilot_is_double_labelled_and_resolved() -> None:
    base = Path(__file__).parent / "fixtures" / "intent" / "govuk_url"
    rows = read_tsv(base / "eval.tsv")
    a = {r["id"]: r["label"] for r in read_tsv(base / "pass_a.tsv")}
    b = {r["id"]: r["label"] for r in read_tsv(base / "pass_b.tsv")}
    resolved = {r["id"]: r["label"] for r in read_tsv(base / "resolved.tsv")}
    assert len(rows) == len(a) == len(b) == 220 and {r["split"] for r in rows} == {"dev", "test"}
    for r in rows:
        assert r["url"].startswith("https://www.gov.uk/") and r["licence"] == "MIT"
        assert r["label"] == (resolved[r["id"]] if a[r["id"]] != b[r["id"]] else a[r["id"]])
    assert set(resolved) == {i for i in a if a[i] != b[i]}


# -- weak supervision ------------------------------------------------------------------------------

def test_domain_match() -> None:
    assert domain_matches("dsw", "https://www.dsw.com/")
    assert domain_matches("chase login", "https://secure.chase.com/web/auth")
    assert not domain_matches("diabetes diet", "https://www.webmd.com/diabetes")
    assert not domain_matches("dsw", "not a url")
    # A fact about the brand is not navigation: the URL rule stays quiet.
    assert classify("diabetes symptoms", url="https://www.diabetes.org/diabetes/symptoms").moment == "know"


def test_label_model_learns_lf_accuracies_from_overlaps() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, 3000)
    votes = np.full((3000, 3), -1, dtype=np.int8)
    for j, acc in enumerate((0.95, 0.9, 0.55)):  # two good LFs and one poor one, all always voting
        right = rng.random(3000) < acc
        votes[:, j] = np.where(right, truth, (truth + rng.integers(1, 3, 3000)) % 3)
    lm = LabelModel(prior=np.full(3, 1 / 3)).fit(votes)
    assert lm.accuracy[0] > lm.accuracy[2] + 0.2 and lm.accuracy[1] > lm.accuracy[2] + 0.2
    assert np.mean(lm.predict(votes) == truth) > 0.9


def test_lfs_vote_and_abstain() -> None:
    votes = apply_lfs(["how to tile a floor", "gmail login", "cheap flights to rome", "tamarind"],
                      urls=["", "", "", "https://en.wikipedia.org/wiki/Tamarind"])
    assert CLASSES.index("do") in votes[0] and CLASSES.index("go_site") in votes[1]
    assert CLASSES.index("buy") in votes[2] and set(votes[3][votes[3] >= 0]) == {CLASSES.index("know")}
