"""Attribution: heuristics by hand, exact Markov vs brute force, Shapley axioms, totals, file input."""

from __future__ import annotations

import itertools
from collections import defaultdict

import numpy as np
import pandas as pd
import pytest

from micromoments.errors import InputError
from micromoments.measure import attribution as at

SMALL = [["search", "email", "social"], ["social"], ["email", "search"], ["search", "social", "social", "email"]]
CONV = [2, 1, 0, 1]
VALUE = [200.0, 50.0, 0.0, 80.0]
NULL = [1, 3, 2, 0]


def _small():
    return at.paths_from_lists(SMALL, CONV, VALUE, NULL)


def test_heuristics_by_hand():
    p = _small()
    got = {m: at.heuristic(p, m) for m in at.HEURISTICS}
    # first touch: search gets paths 1 and 4 (2 + 1 conversions), social path 2 (1)
    assert got["first_touch"].conversions.to_dict() == {"email": 0.0, "search": 3.0, "social": 1.0}
    assert got["first_touch"].value.to_dict() == {"email": 0.0, "search": 280.0, "social": 50.0}
    # last touch: social path 1 (2) + path 2 (1); email path 4 (1)
    assert got["last_touch"].conversions.to_dict() == {"email": 1.0, "search": 0.0, "social": 3.0}
    # linear: path1 2/3 each; path2 social 1; path4 1/4 each touch (social twice)
    lin = got["linear"].conversions
    assert lin["search"] == pytest.approx(2 / 3 + 1 / 4)
    assert lin["email"] == pytest.approx(2 / 3 + 1 / 4)
    assert lin["social"] == pytest.approx(2 / 3 + 1 + 2 / 4)
    # position 40/20/40: path1 (3 touches) 0.4/0.2/0.4 of 2; path4 (4 touches) 0.4/0.1/0.1/0.4 of 1
    pos = got["position_based"].conversions
    assert pos["search"] == pytest.approx(0.8 + 0.4)
    assert pos["email"] == pytest.approx(0.4 + 0.4)
    assert pos["social"] == pytest.approx(0.8 + 1 + 0.2)
    # time decay, half-life 1 touch: path1 weights 1/4, 1/2, 1 (normalised by 7/4)
    td = at.heuristic(at.paths_from_lists([["a", "b", "c"]], [7], [70]), "time_decay", half_life=1).conversions
    assert td.tolist() == pytest.approx([1.0, 2.0, 4.0])


def _brute_markov(paths, conv, nulls, order=1):
    """Independent Markov: dictionaries of counts over tuple states (the last `order` channels),
    P(conv) by value iteration until it stops changing."""
    counts = defaultdict(lambda: defaultdict(float))
    for path, c, n in zip(paths, conv, nulls):
        states = ["S", *[tuple(path[max(0, i - order + 1):i + 1]) for i in range(len(path))]]
        for a, b in zip(states, states[1:]):
            counts[a][b] += c + n
        counts[states[-1]]["C"] += c
        counts[states[-1]]["N"] += n

    def gone(state, removed):
        return removed is not None and isinstance(state, tuple) and removed in state

    def p_conv(removed=None):
        x = defaultdict(float)
        x["C"] = 1.0
        for _ in range(5000):
            new = defaultdict(float, C=1.0)
            for s, nxt in counts.items():
                if gone(s, removed):
                    continue
                tot = sum(nxt.values())
                new[s] = sum(w / tot * (0.0 if gone(t, removed) else x[t]) for t, w in nxt.items()) if tot else 0.0
            if max(abs(new[k] - x[k]) for k in set(new) | set(x)) < 1e-15:
                break
            x = new
        return x["S"]

    base = p_conv()
    chans = sorted({c for p in paths for c in p})
    return base, {c: 1 - p_conv(c) / base for c in chans}


@pytest.mark.parametrize("seed", range(8))
def test_exact_markov_matches_value_iteration(seed):
    rng = np.random.default_rng(seed)
    chans = list("abcde")[: rng.integers(2, 6)]
    paths = [list(rng.choice(chans, rng.integers(1, 6))) for _ in range(rng.integers(3, 30))]
    conv = rng.integers(0, 5, len(paths)).astype(float)
    nulls = rng.integers(0, 5, len(paths)).astype(float)
    conv[0] = max(conv[0], 1)
    p = at.paths_from_lists(paths, conv, None, nulls)
    between, from_start, absorb = at.transition_counts(p)
    base, effects = _brute_markov(paths, conv, nulls)
    assert at.conversion_probability(between, from_start, absorb) == pytest.approx(base, abs=1e-10)
    got = at.markov(p)
    for c, e in effects.items():
        assert got.loc[c, "removal_effect"] == pytest.approx(max(e, 0.0), abs=1e-9)
    assert got.conversions.sum() == pytest.approx(conv.sum())


@pytest.mark.parametrize("seed", range(4))
def test_higher_order_markov_matches_value_iteration(seed):
    rng = np.random.default_rng(50 + seed)
    chans = list("abcd")
    paths = [list(rng.choice(chans, rng.integers(1, 6))) for _ in range(30)]
    conv = rng.integers(0, 4, 30).astype(float)
    nulls = rng.integers(0, 4, 30).astype(float)
    conv[0] = max(conv[0], 1)
    p = at.paths_from_lists(paths, conv, conv * 5, nulls)
    for order in (2, 3):
        _, effects = _brute_markov(paths, conv, nulls, order=order)
        got = at.markov(p, order=order)
        for c, e in effects.items():
            assert got.loc[c, "removal_effect"] == pytest.approx(max(e, 0.0), abs=1e-9), (order, c)
        assert got.conversions.sum() == pytest.approx(conv.sum()) and got.value.sum() == pytest.approx(conv.sum() * 5)


def test_markov_by_hand_and_simulation():
    # a > b converts once; a alone fails once; c alone converts once.
    p = at.paths_from_lists([["a", "b"], ["a"], ["c"]], [1, 0, 1], [10, 0, 30], [0, 1, 0])
    m = at.markov(p)
    # P(conv) = 2/3·(1/2) + 1/3·1 = 2/3 ; without a or b: 1/3 ; without c: 1/3 -> equal effects 1/2
    assert m.removal_effect.tolist() == pytest.approx([0.5, 0.5, 0.5])
    assert m.conversions.tolist() == pytest.approx([2 / 3] * 3)
    assert m.value.sum() == pytest.approx(40.0)


def _brute_shapley(paths, conv):
    chans = sorted({c for p in paths for c in p})
    sets = [frozenset(p) for p in paths]

    def v(s):
        return sum(c for ps, c in zip(sets, conv) if ps <= s)

    phi = dict.fromkeys(chans, 0.0)
    perms = list(itertools.permutations(chans))
    for order in perms:
        seen: set[str] = set()
        for c in order:
            phi[c] += v(seen | {c}) - v(seen)
            seen.add(c)
    return {c: x / len(perms) for c, x in phi.items()}


@pytest.mark.parametrize("seed", range(5))
def test_shapley_matches_permutations_and_axioms(seed):
    rng = np.random.default_rng(100 + seed)
    chans = list("abcdef")[: rng.integers(2, 7)]
    paths = [list(rng.choice(chans, rng.integers(1, 5))) for _ in range(25)]
    conv = rng.integers(0, 4, 25).astype(float)
    p = at.paths_from_lists(paths, conv, conv * 10)
    got = at.shapley(p)
    want = _brute_shapley(paths, conv)
    assert got.conversions.to_dict() == pytest.approx(want)
    assert got.conversions.sum() == pytest.approx(conv.sum())  # efficiency
    assert got.value.sum() == pytest.approx(conv.sum() * 10)


def test_shapley_symmetry_and_closed_form():
    # x and y are interchangeable in every path: they must get equal credit.
    paths = [["x", "y"], ["y", "x", "z"], ["z"], ["x", "w", "y"]]
    p = at.paths_from_lists(paths, [3, 2, 1, 4], [30, 20, 10, 40])
    s = at.shapley(p)
    assert s.loc["x", "conversions"] == pytest.approx(s.loc["y", "conversions"])
    # the >16-channel closed form agrees with the exact enumeration
    old = at.MAX_EXACT_CHANNELS
    try:
        at.MAX_EXACT_CHANNELS = 0
        closed = at.shapley(p)
    finally:
        at.MAX_EXACT_CHANNELS = old
    pd.testing.assert_frame_equal(s, closed)


def test_every_model_sums_to_observed_totals_and_reads_path_file(tmp_path):
    rng = np.random.default_rng(9)
    chans = ["email", "paid-search", "social", "organic-search", "direct", "app"]
    rows = []
    for _ in range(400):
        path = " > ".join(rng.choice(chans, rng.integers(1, 8)))
        rows.append((path, int(rng.integers(0, 5)), float(rng.gamma(2, 40)), int(rng.integers(0, 20))))
    frame = pd.DataFrame(rows, columns=list(at.PATH_COLUMNS)).groupby("path", as_index=False).sum()
    frame.loc[frame.total_conversions == 0, "total_conversion_value"] = 0.0
    f = tmp_path / "paths.csv"
    frame.to_csv(f, index=False)
    p = at.read_paths(f)
    assert sorted(p.channels) == sorted(chans)
    table = at.attribute(p)
    assert set(table.model) == {*at.HEURISTICS, "markov", "shapley"}
    sums = table.groupby("model")[["conversions", "value"]].sum()
    assert np.allclose(sums.conversions, frame.total_conversions.sum())
    assert np.allclose(sums.value, frame.total_conversion_value.sum())
    assert (table.conversions >= -1e-12).all()


def test_bad_path_file_names_row_and_column(tmp_path):
    f = tmp_path / "bad.csv"
    f.write_text("path,total_conversions,total_conversion_value,total_null\na > b,1,10,0\nb > c,-3,0,1\n")
    with pytest.raises(InputError, match=r"row 3, column total_conversions"):
        at.read_paths(f)
    f.write_text("route,conv\na,1\n")
    with pytest.raises(InputError, match="path"):
        at.read_paths(f)


def test_store_paths_split_at_conversions():
    sessions = pd.DataFrame({
        "person_id": ["p1"] * 4 + ["p2"] * 2,
        "session_no": [1, 2, 3, 4, 1, 2],
        "channel": ["social", "email", "direct", "social", "paid-search", None],
        "conversions": [0, 1, 0, 0, 0, 0],
        "revenue": [0, 50.0, 0, 0, 0, 0],
    })
    p = at.store_paths(sessions)
    table = at.attribute(p, ["first_touch", "last_touch"]).set_index(["model", "channel"])
    assert table.loc[("first_touch", "social"), "conversions"] == 1.0
    assert table.loc[("last_touch", "email"), "value"] == 50.0
    assert p.nulls.sum() == 2  # p1 after buying, and p2


def test_store_paths_keep_the_last_touches_and_moment_paths():
    s = pd.DataFrame({"person_id": ["p"] * 4, "start": [1, 2, 3, 4], "moment": ["know", "go", "do", "buy"],
                      "conversions": [0, 0, 0, 1], "revenue": [0, 0, 0, 30.0]})
    p = at.store_paths(s, touch="moment", order="start", max_touches=2)
    assert [p.channels[c] for c in p.codes] == ["do", "buy"] and p.values.tolist() == [30.0]
