"""The intent engine: text classifier, custom moments, `other`, event rules, robustness, accuracy."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from micromoments import classify
from micromoments.config import Config, CustomMoment, IntentConfig
from micromoments.errors import ConfigError, InputError
from micromoments.intent import Classifier, evaluate_labels, load_rules, match_rule
from micromoments.intent.cues import find_cues, site_name
from micromoments.intent.text import normalize_text, url_to_text

DEV = Path(__file__).parent / "fixtures" / "intent" / "dev.csv"

GET_AWAY = CustomMoment(
    "get-away",
    "planning a short break or weekend trip",
    [
        "weekend getaway ideas", "romantic cabin weekend", "last minute beach weekend", "quick escape from the city",
        "cheap weekend trips", "glamping weekend by a lake", "road trip for the long weekend", "spa weekend break",
        "mini vacation ideas", "two night escape for couples", "cottage break in the countryside",
        "where to go for a long weekend", "city break for two",
    ],
)
PRODUCTIVE = CustomMoment(
    "be-more-productive",
    "wanting to get more done at work",
    [
        "productivity tips for work", "how to stop procrastinating", "best time management techniques",
        "pomodoro technique", "morning routine for productivity", "how to focus better at work",
        "getting things done method", "deep work habits", "how to prioritise tasks", "to do list apps",
        "how to be more efficient", "beat afternoon slump at work",
    ],
)


# -- the base classifier --------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("query", "moment", "go_type"),
    [
        ("gmail login", "go", "site"),
        ("facebok", "go", "site"),
        ("garden centre near me", "go", "local"),
        ("what time does b&q close on sunday", "go", "local"),
        ("how to build a raised garden bed", "do", None),
        ("easy lasagna recipie", "do", None),
        ("cordless hedge trimmer for sale", "buy", None),
        ("cheapest flights to lisbon", "buy", None),
        ("tamerind", "know", None),
        ("tacoma wheelbase", "know", None),
        ("who is the prime minister of canada", "know", None),
    ],
)
def test_classifies_web_search_shapes(query: str, moment: str, go_type: str | None) -> None:
    r = classify(query)
    assert (r.moment, r.go_type) == (moment, go_type), r


def test_result_has_calibrated_scores_and_cues() -> None:
    results = classify(["hardware store near me", "how do i fix a dripping tap"])
    assert isinstance(results, list) and len(results) == 2
    local, howto = results
    assert abs(sum(local.scores.values()) - 1) < 1e-3
    assert 0.5 < local.confidence <= 1 and local.confidence == local.scores["go"]
    assert "near me" in local.cues
    assert any("how do i" in c or "fix" in c for c in howto.cues)


def test_confidence_is_lower_for_ambiguous_text() -> None:
    clear = classify("buy cordless drill online").confidence
    vague = classify("drill").confidence
    assert clear > vague


def test_landing_page_context_is_used() -> None:
    bare = classify("decking")
    with_url = classify("decking", url="https://www.example.com/how-to/lay-decking-step-by-step")
    with_title = classify("decking", title="Composite decking boards - buy online, free delivery")
    assert with_url.moment == "do" and with_url.scores["do"] > bare.scores["do"]
    assert with_title.moment == "buy" and with_title.scores["buy"] > bare.scores["buy"]


def test_list_with_per_text_urls() -> None:
    out = classify(["paint", "paint"], url=["/how-to/paint-a-fence", "/checkout/cart"])
    assert out[0].scores["do"] > out[1].scores["do"]
    with pytest.raises(InputError):
        Classifier().predict(["a", "b"], urls=["only one"])


# -- custom moments and other ---------------------------------------------------------------------

def test_custom_moments_recognised_from_examples_without_retraining() -> None:
    clf = Classifier(custom_moments=[GET_AWAY, PRODUCTIVE])
    out = clf.predict(["romantic weekend away in the cotswolds", "tips to stay focused while working from home",
                       "gmail login", "how to lay patio slabs"])
    assert [r.moment for r in out] == ["get-away", "be-more-productive", "go", "do"]
    assert out[0].scores["get-away"] == out[0].confidence > 0.5
    assert out[0].cues, "custom moments explain themselves too"
    assert "+custom[" in clf.version  # the store cache is keyed on it


def test_custom_moments_from_config() -> None:
    cfg = Config(intent=IntentConfig(custom_moments=[GET_AWAY]))
    assert classify("cheap weekend break by the sea", config=cfg).moment == "get-away"
    assert classify("cheap weekend break by the sea").moment != "get-away"


def test_custom_moment_needs_examples() -> None:
    with pytest.raises(ConfigError, match="examples"):
        Classifier(custom_moments=[CustomMoment("tiny", "", ["one"])])
    with pytest.raises(ConfigError, match="reserved"):
        Classifier(custom_moments=[CustomMoment("buy", "", GET_AWAY.examples)])


@pytest.mark.parametrize("text", ["thank you so much", "tell me a joke", "yes please", "are you a robot", "😀😀😀", "!!!"])
def test_off_topic_text_is_other_with_low_confidence(text: str) -> None:
    r = classify(text)
    assert r.moment == "other"
    assert r.confidence <= 0.3
    assert r.go_type is None and r.cues == []


# -- robustness ------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "text",
    ["", "   ", None, "x" * 10_000, "how to " * 2_000, "🌻🌻 near me 🚗", "comment réparer un robinet qui fuit",
     "油漆 价格", "أين أقرب متجر", "Ремонт крыши своими руками", "\x00\x01 weird \ufeff bytes", "a"],
)
def test_robust_to_odd_input(text: str | None) -> None:
    r = classify(text)
    assert r.moment in {"know", "go", "do", "buy", "other"}
    assert 0.0 <= r.confidence <= 1.0
    assert all(len(c) <= 60 for c in r.cues)


def test_empty_and_long_texts_behave_sensibly() -> None:
    assert classify("").moment == "other" and classify("").confidence == 0.0
    assert classify("near me " * 2000).moment == "go"
    assert classify("🌻🌻 near me 🚗").go_type == "local"


# -- accuracy on the hand-written dev set (never trained on) --------------------------------------

def guideline_label(query: str, label: str) -> str:
    """The older hand-written and demo sets call a price or 'best X' without a purchase cue buy;
    docs/intent-guideline.md calls it know (research)."""
    from micromoments.intent.cues import FAMILIES

    fam = {f.name: f.pattern for f in FAMILIES}
    q = query.lower()
    return "know" if label == "buy" and fam["price"].search(q) and not fam["buy"].search(q) else label


def test_accuracy_floor_on_dev_set() -> None:
    with DEV.open(newline="", encoding="utf-8") as fh:
        rows = [{**r, "label": guideline_label(r["query"], r["label"])} for r in csv.DictReader(fh)]
    assert len(rows) >= 250 and {r["label"] for r in rows} == {"know", "go", "do", "buy"}
    preds = classify([r["query"] for r in rows])
    ev = evaluate_labels([r["label"] for r in rows], [p.moment for p in preds])
    assert ev.macro_f1 >= 0.85, ev.f1
    assert min(ev.f1.values()) >= 0.75, ev.f1
    go_rows = [(r, p) for r, p in zip(rows, preds) if r["label"] == "go" and p.moment == "go"]
    assert sum(r["go_type"] == p.go_type for r, p in go_rows) / len(go_rows) >= 0.85


def test_dev_set_is_not_in_training_data() -> None:
    from micromoments.intent.training import read_web_queries

    with DEV.open(newline="", encoding="utf-8") as fh:
        dev = {normalize_text(r["query"]) for r in csv.DictReader(fh)}
    overlap = dev & {t for t, _ in read_web_queries()}
    # A few generic head queries ('linkedin') occur in both lists; training drops them (exclude=dev).
    assert len(overlap) <= 15


def test_demo_test_split_macro_f1(tmp_path: Path) -> None:
    generator = pytest.importorskip("micromoments.demo.generator")
    paths = generator.generate(tmp_path, users=150, days=30, seed=3)
    with open(paths.truth_moments, newline="", encoding="utf-8") as fh:
        test = [r for r in csv.DictReader(fh) if r["split"] == "test"]
    assert len(test) > 100
    preds = classify([r["query"] for r in test])
    ev = evaluate_labels([guideline_label(r["query"], r["moment"]) for r in test], [p.moment for p in preds])
    assert ev.macro_f1 >= 0.85, ev.f1


# -- event rules -----------------------------------------------------------------------------------

def test_default_event_rules() -> None:
    rules = load_rules(None)
    assert match_rule(rules, event="Checkout Started").moment == "buy"
    assert match_rule(rules, event="order completed").moment == "buy"
    assert match_rule(rules, event="Product Added").moment == "buy"
    loc = match_rule(rules, event="Directions Requested")
    assert (loc.moment, loc.go_type) == ("go", "local")
    assert match_rule(rules, event="Map Clicked").go_type == "local"
    assert match_rule(rules, event="Video Played", properties='{"title": "DIY: tiling a splashback"}').moment == "do"
    assert match_rule(rules, event="Video Played", properties='{"title": "Summer advert 2026"}') is None
    assert match_rule(rules, event="Page Viewed", url="https://x.example/store-locator?postcode=LS1").go_type == "local"
    assert match_rule(rules, event="Page Viewed", url="https://x.example/checkout/payment").moment == "buy"
    assert match_rule(rules, event="Page Viewed", url="https://x.example/garden/roses") is None
    assert match_rule(rules, event="Products Searched") is None  # uses its query text instead


def test_config_rules_come_first_and_are_validated() -> None:
    cfg = Config(intent=IntentConfig(event_rules=[
        {"event": "Product Viewed", "moment": "know", "confidence": 0.6},
        {"url": "/inspiration/", "moment": "get-away"},
    ]))
    rules = load_rules(cfg)
    assert match_rule(rules, event="Product Viewed").moment == "know"
    assert match_rule(rules, event="Page Viewed", url="/inspiration/cabins").moment == "get-away"
    for bad, msg in [({"moment": "buy"}, "matches nothing"), ({"event": "x"}, "moment"),
                     ({"url": "([", "moment": "do"}, "regular expression"),
                     ({"event": "x", "moment": "do", "go_type": "local"}, "go_type"),
                     ({"event": "x", "moment": "do", "colour": 1}, "unknown")]:
        with pytest.raises(ConfigError, match=msg) as err:
            load_rules(Config(intent=IntentConfig(event_rules=[bad])))
        assert "event_rules][0]" in str(err.value)


# -- small pieces ----------------------------------------------------------------------------------

def test_text_helpers() -> None:
    assert normalize_text("  How TO  Tile\n a FLOOR ") == "how to tile a floor"
    assert url_to_text("https://shop.example.com/c/garden-furniture/12345?utm_source=x") == "garden furniture"
    assert url_to_text("/search?q=hedge+trimmer") == "search hedge trimmer"
    assert url_to_text(None) == ""
    assert site_name("www.youtube.com") == "youtube"
    assert site_name("youtube how to tile") is None
    assert {c.family for c in find_cues("where is the nearest post office")} >= {"local"}


def test_evaluation_counts_other_as_a_miss_and_gives_a_ci() -> None:
    ev = evaluate_labels(["know", "go", "do", "buy"] * 10, ["know", "go", "do", "other"] * 10, n_boot=200)
    assert ev.recall["buy"] == 0.0 and ev.accuracy == 0.75
    assert "other" in ev.confusion_columns and ev.confusion.sum() == 40
    lo, hi = ev.macro_f1_ci
    assert lo <= ev.macro_f1 <= hi


def test_rules_and_custom_moments_from_toml(tmp_path: Path) -> None:
    from micromoments.config import load_config

    path = tmp_path / "micromoments.toml"
    examples = ", ".join(f'"{e}"' for e in GET_AWAY.examples)
    path.write_text(
        '[[intent.event_rules]]\nevent = "Store Located"\nmoment = "go"\ngo_type = "local"\n\n'
        '[[intent.event_rules]]\nurl = "/inspiration/"\nmoment = "know"\nconfidence = 0.8\n\n'
        f'[[intent.custom_moments]]\nname = "get-away"\ndescription = "short breaks"\nexamples = [{examples}]\n'
    )
    cfg = load_config(path)
    rules = load_rules(cfg)
    assert match_rule(rules, event="store located").go_type == "local"
    assert match_rule(rules, url="https://x.example/inspiration/sheds").confidence == 0.8
    assert classify("weekend getaway for couples", config=cfg).moment == "get-away"
    path.write_text('[[intent.event_rules]]\nevent = "X"\nmoment = "go"\ngo_type = "nearby"\n')
    with pytest.raises(ConfigError) as err:
        load_rules(load_config(path))
    assert str(path) in str(err.value) and "go_type" in str(err.value)
