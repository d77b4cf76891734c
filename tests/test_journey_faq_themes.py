"""FAQ themes: one computation, named by a real query, "other questions" last, gaps with their numbers."""

from __future__ import annotations

import pandas as pd

from micromoments.journey.faq import OTHER_LABEL, faq_themes


def stats() -> pd.DataFrame:
    rows = []
    themes = {
        "door": ["how to fix a loose door handle", "fix loose door handle", "hey google fix loose door handle",
                 "why is my door handle loose"],
        "grass": ["how do i sow grass seed", "what grass seed for shade", "when to sow grass seed"],
    }
    for name, qs in themes.items():
        for i, q in enumerate(qs):
            rows.append(dict(query=q, searches=40 - 5 * i, people=20, sessions=30 - 3 * i,
                             converted_sessions=0 if name == "door" else 12))
    # Many one-off long-tail searches sharing nothing: together the biggest pile, but "other".
    letters = "abcdefghijklmnopqrstuvwxyz"
    for i in range(60):
        words = " ".join(letters[(i + k) % 26] + letters[(3 * i + k) % 26] + f"q{i}w{k}" for k in range(4))
        rows.append(dict(query=words, searches=3, people=3, sessions=3, converted_sessions=1))
    rows.append(dict(query="paint", searches=500, people=200, sessions=400, converted_sessions=120))  # head term
    return pd.DataFrame(rows)


def test_themes_are_named_by_a_query_and_other_comes_last() -> None:
    out = faq_themes(stats())
    assert out.label.iloc[-1] == OTHER_LABEL and out.is_other.iloc[-1]
    assert out.searches.iloc[-1] > out.searches.iloc[0]  # the biggest pile still comes last
    named = out[~out.is_other]
    assert len(named) == 2
    queries = set(stats()["query"])
    assert set(named.label) <= queries  # a query someone typed, not "door / handle / hey"
    assert not any("hey google" in q for q in named.label)
    door = named[named.label.str.contains("door")].iloc[0]
    assert door.queries == 4 and door.content_gap
    assert "searches" in door.gap_reason and "p = " in door.gap_reason and "%" in door.gap_reason
    grass = named[named.label.str.contains("grass")].iloc[0]
    assert not grass.content_gap and grass.gap_reason == ""


def test_the_same_themes_whatever_the_row_order() -> None:
    a = faq_themes(stats())
    b = faq_themes(stats().sample(frac=1.0, random_state=7))
    pd.testing.assert_frame_equal(a, b)
