"""Attribution of conversions (and their value) to channels/touchpoints.

Input is a set of *paths*: one row per distinct path with its conversions, conversion value and
non-converting journeys (`nulls`), the `ChannelAttribution` format
`path,total_conversions,total_conversion_value,total_null` with paths like `a > b > c`.
`read_paths` reads such a file; `store_paths` builds the same from the store's sessions.

Models (every one allocates exactly the observed conversions and value, so the totals agree):

* heuristics — first touch, last touch, linear, time decay (half-life in touches) and position-based
  40/20/40;
* `markov` — first-order Markov chain removal effect (Anderl, Becker, von Wangenheim & Schumann
  2016), solved *exactly* from the absorbing chain: P(conversion) = [(I − Q)⁻¹ R]_start, with a sparse
  LU solve per removed channel instead of simulation;
* `shapley` — Shapley values of the coalition game v(S) = conversions of paths whose channels all lie
  in S (Zhao, Mahboobi & Bagheri 2018), computed exactly over all 2^n coalitions.

Paths are held as flat integer arrays (channel codes plus offsets), so every model is a few numpy
passes and 1M paths take seconds.

>>> p = paths_from_lists([["a", "b"], ["b"]], conversions=[1, 1], values=[10, 20], nulls=[0, 1])
>>> heuristic(p, "last_touch")["conversions"].to_dict()
{'a': 0.0, 'b': 2.0}
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from micromoments.errors import InputError

HEURISTICS = ("first_touch", "last_touch", "linear", "time_decay", "position_based")
PATH_COLUMNS = ("path", "total_conversions", "total_conversion_value", "total_null")


@dataclass
class Paths:
    """Distinct paths as flat arrays: path i is `codes[starts[i]:starts[i]+lengths[i]]`."""

    channels: list[str]
    codes: np.ndarray        # int32 channel code per touch
    lengths: np.ndarray      # int64 touches per path (≥ 1)
    conversions: np.ndarray  # float per path
    values: np.ndarray       # float per path
    nulls: np.ndarray        # float per path

    @property
    def starts(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.lengths)[:-1]])

    @property
    def path_of_touch(self) -> np.ndarray:
        return np.repeat(np.arange(self.lengths.size), self.lengths)

    @property
    def position(self) -> np.ndarray:
        """0-based position of each touch inside its path."""
        return np.arange(self.codes.size) - np.repeat(self.starts, self.lengths)

    def __len__(self) -> int:
        return int(self.lengths.size)


def paths_from_lists(paths: list[list[str]], conversions: Any, values: Any | None = None,
                     nulls: Any | None = None) -> Paths:
    """Build `Paths` from Python lists (one list of channel names per path)."""
    flat = [c for p in paths for c in p]
    codes, uniq = pd.factorize(pd.Series(flat, dtype=object), sort=True)
    n = len(paths)
    return Paths(list(map(str, uniq)), codes.astype(np.int32), np.asarray([len(p) for p in paths], np.int64),
                 np.asarray(conversions, float),
                 np.zeros(n) if values is None else np.asarray(values, float),
                 np.zeros(n) if nulls is None else np.asarray(nulls, float))


def paths_from_frame(frame: pd.DataFrame, sep: str = ">", where: str = "paths") -> Paths:
    """`Paths` from a DataFrame in the ChannelAttribution layout (value and null columns optional)."""
    if "path" not in frame.columns or "total_conversions" not in frame.columns:
        raise InputError("missing column 'path' or 'total_conversions'", where=where,
                         hint=f"the header must be {','.join(PATH_COLUMNS)}")
    frame = frame[frame["path"].notna()]
    touches = frame["path"].astype(str).str.split(sep)
    lengths = touches.str.len().to_numpy(np.int64)
    flat = touches.explode().str.strip()
    if (flat == "").any():
        bad = int(np.flatnonzero((flat == "").groupby(level=0).any().to_numpy())[0])
        raise InputError(f"empty channel name in path {frame['path'].iloc[bad]!r}", where=f"{where}, row {bad + 2}",
                         hint=f"write paths as 'a {sep} b {sep} c'")
    codes, uniq = pd.factorize(flat, sort=True)
    num = {}
    for col in ("total_conversions", "total_conversion_value", "total_null"):
        if col in frame.columns:
            v = pd.to_numeric(frame[col], errors="coerce")
            if v.isna().any() or (v < 0).any():
                bad = int(np.flatnonzero((v.isna() | (v < 0)).to_numpy())[0])
                raise InputError(f"'{col}' must be a non-negative number, got {frame[col].iloc[bad]!r}",
                                 where=f"{where}, row {bad + 2}, column {col}", hint="fix or drop that row")
            num[col] = v.to_numpy(float)
        else:
            num[col] = np.zeros(len(frame))
    return Paths(list(map(str, uniq)), codes.astype(np.int32), lengths, num["total_conversions"],
                 num["total_conversion_value"], num["total_null"])


def read_paths(path: str | Path, sep: str = ">", delimiter: str | None = None) -> Paths:
    """Read a ChannelAttribution path file (header `path,total_conversions,...`): comma- or
    semicolon-separated (ChannelAttribution's own `Data.csv`), sniffed unless `delimiter` is given."""
    from micromoments.sources.delimited import describe_delimiter, read_delimited, sniff_delimiter

    path = Path(path)
    delim = delimiter or (sniff_delimiter(path) if path.exists() else ",")
    frame = read_delimited(path, delim, what="path file", dtype={"path": str})
    if "path" not in frame.columns or "total_conversions" not in frame.columns:
        found = ", ".join(map(str, frame.columns[:6])) + ("…" if len(frame.columns) > 6 else "")
        raise InputError(f"missing column 'path' or 'total_conversions' (read as {describe_delimiter(delim)}-separated, "
                         f"columns found: {found})", where=str(path),
                         hint=f"the header must be {','.join(PATH_COLUMNS)}; give the separator with --delimiter")
    return paths_from_frame(frame, sep=sep, where=str(path))


def store_paths(touches: pd.DataFrame, *, touch: str = "channel", order: str = "session_no",
                missing: str = "direct", max_touches: int = 50) -> Paths:
    """Paths from one row per touch (`person_id`, `order`, `touch`, `conversions`, `revenue`): each
    person's touches up to and including a converting one form a converting path; the touches after
    the last conversion form a null path. Sessions give channel paths (`touch="channel"`); moment
    episodes give micro-moment paths (`touch="moment"`, `order="start"`).

    >>> s = pd.DataFrame({"person_id": ["p", "p", "p"], "session_no": [1, 2, 3],
    ...                   "channel": ["social", "email", "app"], "conversions": [0, 2, 0], "revenue": [0, 80.0, 0]})
    >>> p = store_paths(s)
    >>> p.conversions.tolist(), p.nulls.tolist()
    ([0.0, 2.0], [1.0, 0.0])
    """
    s = touches.sort_values(["person_id", order])
    s = s.assign(**{touch: s[touch].astype(object).where(s[touch].notna(), missing).astype(str)})
    n_conv = s["conversions"].fillna(0).to_numpy(float)
    conv = n_conv > 0
    # journey number: converting touches before this one, per person
    prior = pd.Series(conv.astype(int), index=s.index).groupby(s["person_id"]).cumsum() - conv.astype(int)
    s = s.assign(_j=prior.to_numpy(), _n=n_conv, _rev=s["revenue"].fillna(0.0).to_numpy(float))
    g = s.groupby(["person_id", "_j"], sort=False)
    sums = g.agg(total_conversions=("_n", "sum"), total_conversion_value=("_rev", "sum"))
    recent = s[g.cumcount(ascending=False).to_numpy() < max_touches]  # the last max_touches touches
    frame = sums.join(recent.groupby(["person_id", "_j"], sort=False)[touch].agg(" > ".join).rename("path"))
    frame["total_null"] = (frame["total_conversions"] == 0).astype(float)
    frame = frame.groupby("path", as_index=False).sum(numeric_only=True)
    return paths_from_frame(frame)


def _allocate(p: Paths, weights: np.ndarray) -> pd.DataFrame:
    """Spread each path's conversions and value over its touches by `weights` (summing to 1 per path)."""
    path = p.path_of_touch
    k = len(p.channels)
    conv = np.bincount(p.codes, weights=weights * p.conversions[path], minlength=k)
    val = np.bincount(p.codes, weights=weights * p.values[path], minlength=k)
    return pd.DataFrame({"conversions": conv, "value": val}, index=pd.Index(p.channels, name="channel"))


def touch_weights(p: Paths, model: str, half_life: float = 7.0) -> np.ndarray:
    """Each touch's share of its path's credit under a heuristic `model`."""
    pos = p.position
    L = np.repeat(p.lengths, p.lengths).astype(float)
    if model == "first_touch":
        return (pos == 0).astype(float)
    if model == "last_touch":
        return (pos == L - 1).astype(float)
    if model == "linear":
        return 1.0 / L
    if model == "time_decay":
        # credit halves every `half_life` touches back from the conversion (touches carry no times here)
        w = np.power(0.5, (L - 1 - pos) / half_life)
        return w / np.bincount(p.path_of_touch, weights=w)[p.path_of_touch]
    if model == "position_based":
        mid = np.where(L > 2, 0.2 / np.maximum(L - 2, 1), 0.0)
        ends = np.where(L == 1, 1.0, np.where(L == 2, 0.5, 0.4))
        return np.where((pos == 0) | (pos == L - 1), ends, mid)
    raise InputError(f"unknown attribution model '{model}'", where="--model",
                     hint=f"use one of {', '.join(HEURISTICS + ('markov', 'shapley'))}")


def heuristic(p: Paths, model: str, half_life: float = 7.0) -> pd.DataFrame:
    """Conversions and value per channel under a rule-based model.

    >>> p = paths_from_lists([["a", "b", "c", "d"]], conversions=[1], values=[100])
    >>> heuristic(p, "position_based")["value"].round(1).tolist()
    [40.0, 10.0, 10.0, 40.0]
    """
    return _allocate(p, touch_weights(p, model, half_life))


# --------------------------------------------------------------------------- Markov
START, CONV, NULL = "(start)", "(conversion)", "(null)"


def markov_states(p: Paths, order: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The chain state of every touch for a Markov chain of `order` k: the last k channels (fewer at
    the start of a path). Returns `(state id per touch, S × n_channels bool matrix of the channels
    each state contains)`. With k = 1 the states are the channels themselves."""
    n = len(p.channels)
    if order == 1:
        return p.codes.astype(np.int64), np.eye(n, dtype=bool)
    if order < 1 or (n + 1) ** order >= 2**62:
        raise InputError(f"Markov order must be between 1 and {int(62 / np.log2(n + 1))} here, got {order}",
                         where="--order", hint="orders 1-3 are usual")
    pos = p.position
    key = np.zeros(p.codes.size, np.int64)
    for j in range(order):  # pack the last `order` channels (0 = before the path started) in base n+1
        prev = np.zeros(p.codes.size, np.int64)
        ok = pos >= j
        prev[ok] = p.codes[np.flatnonzero(ok) - j].astype(np.int64) + 1
        key = key * (n + 1) + prev
    uniq, state = np.unique(key, return_inverse=True)
    contains = np.zeros((uniq.size, n), bool)
    rest = uniq.copy()
    for _ in range(order):
        digit = rest % (n + 1)
        has = digit > 0
        contains[np.flatnonzero(has), digit[has] - 1] = True
        rest //= n + 1
    return state.astype(np.int64), contains


def transition_counts(p: Paths, order: int = 1) -> tuple[Any, np.ndarray, np.ndarray]:
    """Transition weights among chain states (sparse S×S), from start (S) and to conversion / null
    (2×S). States are channels for `order=1` (see `markov_states`).

    Each path contributes (conversions + nulls) to each of its transitions, conversions to its last
    state → conversion and nulls to last state → null (the ChannelAttribution convention).
    """
    from scipy import sparse

    codes, contains = markov_states(p, order)
    k = contains.shape[0]
    w = p.conversions + p.nulls
    starts = p.starts
    last = starts + p.lengths - 1
    from_start = np.bincount(codes[starts], weights=w, minlength=k)
    to_conv = np.bincount(codes[last], weights=p.conversions, minlength=k)
    to_null = np.bincount(codes[last], weights=p.nulls, minlength=k)
    inner = np.ones(codes.size, bool)
    inner[last] = False  # a touch that is not its path's last has a successor
    src = codes[inner]
    dst = codes[np.flatnonzero(inner) + 1]
    tw = w[p.path_of_touch[inner]]
    between = sparse.coo_matrix((tw, (src, dst)), shape=(k, k)).tocsr()
    return between, from_start, np.vstack([to_conv, to_null])


def conversion_probability(between: Any, from_start: np.ndarray, absorb: np.ndarray,
                           removed: int | np.ndarray | None = None) -> float:
    """P(reaching conversion from start) in the absorbing chain, solved exactly:
    x = (I − Q)⁻¹ r (Kemeny & Snell 1960, fundamental matrix), with state `removed` (an index or a
    bool mask of states) turned into a dead end: transitions into it lead to null. Sparse LU, so tens
    of thousands of states are fine."""
    from scipy import sparse
    from scipy.sparse.linalg import spsolve

    out = np.asarray(between.sum(axis=1)).ravel() + absorb.sum(axis=0)
    alive = out > 0
    if removed is not None:
        mask = np.zeros(out.size, bool)
        mask[removed] = True
        alive &= ~mask
    keep = np.flatnonzero(alive)
    inv = np.zeros_like(out)
    inv[out > 0] = 1.0 / out[out > 0]
    Q = (sparse.diags(inv) @ between).tocsr()[keep][:, keep]
    r = absorb[0][keep] * inv[keep]
    A = sparse.identity(keep.size, format="csc") - Q.tocsc()
    x = np.atleast_1d(spsolve(A, r)) if keep.size else np.zeros(0)
    total = from_start.sum()
    return float(from_start[keep] @ x / total) if total > 0 else 0.0


def markov(p: Paths, order: int = 1) -> pd.DataFrame:
    """Markov-chain removal-effect attribution (Anderl et al. 2016), exact, of any `order`.

    removal effect_c = 1 − P(conv | c removed) / P(conv), where removing c removes every state that
    contains it; conversions and value are shared in proportion to the removal effects, so the totals
    equal the observed ones.

    >>> p = paths_from_lists([["a", "b"], ["a"]], conversions=[1, 0], nulls=[0, 1])
    >>> markov(p)["removal_effect"].round(3).tolist()
    [1.0, 1.0]
    """
    _, contains = markov_states(p, order)
    between, from_start, absorb = transition_counts(p, order)
    base = conversion_probability(between, from_start, absorb)
    k = len(p.channels)
    effects = np.zeros(k)
    if base > 0:
        for c in range(k):
            effects[c] = 1 - conversion_probability(between, from_start, absorb, removed=contains[:, c]) / base
    effects = np.clip(effects, 0, None)
    share = effects / effects.sum() if effects.sum() > 0 else np.full(k, 1.0 / k)
    return pd.DataFrame({"conversions": share * p.conversions.sum(), "value": share * p.values.sum(),
                         "removal_effect": effects}, index=pd.Index(p.channels, name="channel"))


# --------------------------------------------------------------------------- Shapley
MAX_EXACT_CHANNELS = 16


def _path_sets(p: Paths) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bitmask of the channel set of every path, aggregated: (masks, conversions, values)."""
    bits = np.left_shift(np.int64(1), p.codes.astype(np.int64))
    masks = np.bitwise_or.reduceat(bits, p.starts) if bits.size else np.zeros(0, np.int64)
    frame = pd.DataFrame({"m": masks, "c": p.conversions, "v": p.values}).groupby("m").sum()
    return frame.index.to_numpy(np.int64), frame["c"].to_numpy(), frame["v"].to_numpy()


def shapley_from_game(v: np.ndarray, n: int) -> np.ndarray:
    """Exact Shapley values φ_i = Σ_{S ∌ i} |S|!(n−|S|−1)!/n! · (v(S ∪ i) − v(S)) for a game given as an
    array `v` over all 2^n coalitions (index = bitmask; Shapley 1953). Vectorised over coalitions."""
    masks = np.arange(1 << n, dtype=np.int64)
    size = np.zeros(masks.size, np.int64)
    for i in range(n):
        size += (masks >> i) & 1
    fact = np.array([math.factorial(s) for s in range(n + 1)], float)
    weight = fact[size] * fact[n - size - 1].clip(min=0) / fact[n] if n else np.zeros(1)
    phi = np.zeros(n)
    for i in range(n):
        without = masks[((masks >> i) & 1) == 0]
        phi[i] = (weight[without] * (v[without | (1 << i)] - v[without])).sum()
    return phi


def coalition_game(masks: np.ndarray, amounts: np.ndarray, n: int) -> np.ndarray:
    """v(S) = Σ amounts of paths whose channel set ⊆ S, for every S (a zeta transform over subsets)."""
    v = np.zeros(1 << n)
    np.add.at(v, masks, amounts)
    idx = np.arange(1 << n)
    for i in range(n):  # sum over subsets, one bit at a time
        has = (idx >> i) & 1 == 1
        v[has] += v[idx[has] ^ (1 << i)]
    return v


def shapley(p: Paths) -> pd.DataFrame:
    """Shapley-value attribution of conversions and value (Zhao et al. 2018, the coalition game above).

    Exact over all coalitions for up to 16 channels. For this game the Shapley value has the closed
    form Σ_paths amount/|channel set| (each path's credit split evenly over its *distinct* channels),
    which is used beyond 16 channels; the tests check both agree.

    >>> p = paths_from_lists([["a", "b", "a"], ["b"]], conversions=[2, 1])
    >>> shapley(p)["conversions"].tolist()
    [1.0, 2.0]
    """
    n = len(p.channels)
    masks, conv, val = _path_sets(p)
    if n <= MAX_EXACT_CHANNELS:
        c = shapley_from_game(coalition_game(masks, conv, n), n)
        v = shapley_from_game(coalition_game(masks, val, n), n)
    else:
        sizes = np.array([bin(int(m)).count("1") for m in masks], float)
        c, v = np.zeros(n), np.zeros(n)
        for i in range(n):
            hit = ((masks >> i) & 1) == 1
            c[i] = (conv[hit] / sizes[hit]).sum()
            v[i] = (val[hit] / sizes[hit]).sum()
    return pd.DataFrame({"conversions": c, "value": v}, index=pd.Index(p.channels, name="channel"))


# --------------------------------------------------------------------------- all together
def attribute(p: Paths, models: tuple[str, ...] | list[str] | None = None, half_life: float = 7.0,
              order: int = 1) -> pd.DataFrame:
    """One tidy frame: channel, model, conversions, value, share — for every model asked for.

    >>> p = paths_from_lists([["a", "b"], ["b"]], conversions=[1, 1], values=[10, 20])
    >>> t = attribute(p, ["linear", "markov"])
    >>> t.groupby("model").conversions.sum().tolist()
    [2.0, 2.0]
    """
    models = list(models or (*HEURISTICS, "markov", "shapley"))
    if len(p) == 0:
        raise InputError("no paths to attribute", where="paths", hint="give a path file or ingest events first")
    frames = []
    for m in models:
        if m in HEURISTICS:
            f = heuristic(p, m, half_life)
        elif m == "markov":
            f = markov(p, order).drop(columns="removal_effect")
        elif m == "shapley":
            f = shapley(p)
        else:
            touch_weights(p, m)  # raises the InputError naming the models
            continue
        total = f["conversions"].sum()
        frames.append(f.assign(model=m, share=f["conversions"] / total if total else 0.0).reset_index())
    return pd.concat(frames, ignore_index=True)[["channel", "model", "conversions", "value", "share"]]
