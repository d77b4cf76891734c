"""Plain-words names and descriptions for personas, from what distinguishes them.

Each persona is compared with everyone: a trait is distinguishing when the persona's mean is far
from the population's (in population standard deviations). The name is built from the strongest
time-of-week pattern, a qualifier (deal-seeking, high-value, trade, local...) and the dominant
moment type, e.g. "Weekend DIY doers"; the description lists the traits with numbers, e.g.
"61% do-moments, mostly desktop (63%), Saturday and Sunday, buy in store (55% collect)".

>>> import pandas as pd
>>> f = pd.DataFrame({"persona_id": [0, 0, 1, 1], "moment_do": [.7, .6, .1, .2], "moment_buy": [.1, .2, .8, .7]})
>>> describe_personas(f).persona.tolist()
['DIY doers', 'Buyers']
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

MOMENT_NOUNS = {"know": "researchers", "go": "store visitors", "do": "DIY doers", "buy": "buyers"}
MOMENT_WORDS = {"know": "know-moments", "go": "go-moments", "do": "do-moments", "buy": "buy-moments"}
DAYPART_WORDS = {"early": ("Early-bird", "early mornings"), "morning": ("Morning", "mornings"),
                 "midday": ("Lunchtime", "around lunch"), "afternoon": ("Afternoon", "afternoons"),
                 "evening": ("Evening", "evenings"), "late": ("Late-night", "late evenings"),
                 "night": ("Night-owl", "at night")}
CHANNEL_WORDS = {"organic_search": "search", "paid_search": "ads", "email": "email", "social": "social media",
                 "direct": "direct visits", "app": "the app", "referral": "referrals"}


def _pct(x: float) -> str:
    return f"{x:.0%}"


def _lift(cluster: pd.Series, pop_mean: pd.Series, pop_sd: pd.Series) -> pd.Series:
    return (cluster - pop_mean) / pop_sd.replace(0, np.nan)


def _top(prefix: str, means: pd.Series) -> tuple[str, float] | None:
    cols = [c for c in means.index if c.startswith(prefix)]
    if not cols:
        return None
    c = max(cols, key=lambda k: means[k])
    return c[len(prefix):], float(means[c])


def _name_and_traits(means: pd.Series, z: pd.Series) -> tuple[str, list[str], dict[str, float]]:
    words: list[str] = []
    traits: list[str] = []
    shown: dict[str, float] = {}

    # Time of week: weekend vs weekday, then the most over-represented part of the day.
    weekend = float(means.get("day_sat", 0) + means.get("day_sun", 0)) if "day_sat" in means else None
    if weekend is not None and weekend >= 0.5:
        words.append("Weekend")
        traits.append(f"{_pct(weekend)} of visits on Saturday or Sunday")
        shown["weekend_share"] = weekend
    elif weekend is not None and weekend <= 0.12:
        words.append("Weekday")
        traits.append(f"weekdays ({_pct(1 - weekend)} of visits)")
        shown["weekday_share"] = 1 - weekend
    hours = {c: z[c] for c in z.index if c.startswith("hour_") and pd.notna(z[c])}
    if hours:
        best = max(hours, key=lambda c: hours[c])
        part = best[len("hour_"):]
        if hours[best] > 0.5 and part in DAYPART_WORDS:
            if not words:
                words.append(DAYPART_WORDS[part][0])
            traits.append(f"{DAYPART_WORDS[part][1]} ({_pct(means[best])} of visits)")
            shown[best] = float(means[best])

    # A qualifier from the strongest of: price hunting, trade, high value, local.
    qualifiers = [("query_price", "deal-seeking"), ("query_trade", "trade"), ("aov", "high-value"),
                  ("directions_share", "local"), ("query_question", "curious")]
    cands = [(float(z[c]), w, c) for c, w in qualifiers if c in z.index and pd.notna(z[c]) and z[c] > 0.6]
    if cands:
        _, word, col = max(cands)
        words.append(word)
        if col == "aov":
            traits.append(f"spend {means[col]:,.0f} per order")
        elif col.startswith("query_"):
            traits.append(f"{_pct(means[col])} of searches are {col[len('query_'):]} searches")
        shown[col] = float(means[col])

    moment = _top("moment_", means)
    lifted = {c: z[c] for c in z.index if c.startswith("moment_") and pd.notna(z[c])}
    if lifted and max(lifted.values()) > 0.3:  # name by the most over-represented moment type
        best = max(lifted, key=lambda c: lifted[c])
        moment = (best[len("moment_"):], float(means[best]))
    if moment:
        m, share = moment
        words.append(MOMENT_NOUNS.get(m, f"{m.replace('_', ' ')} people"))
        traits.insert(0, f"{_pct(share)} {MOMENT_WORDS.get(m, m + '-moments')}")
        shown[f"moment_{m}"] = share
    else:
        words.append("people")
    device = _top("device_", means)
    if device and device[1] >= 0.5:
        traits.append(f"mostly {device[0]} ({_pct(device[1])})")
        shown[f"device_{device[0]}"] = device[1]
    channel = _top("channel_", means)
    if channel and channel[1] >= 0.3:
        traits.append(f"come via {CHANNEL_WORDS.get(channel[0], channel[0])} ({_pct(channel[1])})")
        shown[f"channel_{channel[0]}"] = channel[1]
    if "collect_share" in means and means.get("orders", 0) > 0 and z.get("collect_share", 0) > 0.3:
        traits.append(f"buy in store ({_pct(means['collect_share'])} click & collect)")
        shown["collect_share"] = float(means["collect_share"])
    name = " ".join(words)
    return name[0].upper() + name[1:], traits, shown


def describe_personas(features: pd.DataFrame, *, label: str = "persona_id",
                      paths: dict[int, str] | None = None, is_person: pd.Series | None = None) -> pd.DataFrame:
    """One row per persona: `persona_id, persona, description, people, anonymous, share, mean_clv,
    mean_revenue, typical_path, traits` (JSON of the distinguishing values). `features` carries `label`.

    `is_person` (person_id -> bool, `journey.people.counts_as_person`): `people` counts the ids that
    signed in, `anonymous` the ids not linked to anyone yet, `share` is of all people. Without it
    every id is a person.
    """
    numeric = features.select_dtypes("number").drop(columns=[label], errors="ignore")
    pop_mean, pop_sd = numeric.mean(), numeric.std(ddof=0)
    rows = []
    if is_person is None or "person_id" not in features:
        person = pd.Series(True, index=features.index)
    else:  # an id missing from the events (none should be) counts as a person, as without the flags
        person = ~features.person_id.isin(is_person.index[~is_person])
    n_all = int(person.sum())
    for pid, group in features.groupby(label, sort=True):
        people = int(person[group.index].sum())
        means = group[numeric.columns].mean()
        z = _lift(means, pop_mean, pop_sd)
        name, traits, shown = _name_and_traits(means, z)
        if "area" in group.columns:
            top_area = group.area.astype("string").value_counts(normalize=True)
            if len(top_area) and top_area.index[0] != "unknown" and top_area.iloc[0] >= 0.6:
                traits.append(f"{_pct(top_area.iloc[0])} {top_area.index[0]}")
        rows.append({
            label: int(pid), "persona": name, "description": ", ".join(traits),
            "people": people, "anonymous": int(len(group)) - people, "share": people / n_all if n_all else 0.0,
            "mean_clv": float(group["clv"].mean()) if "clv" in group else float("nan"),
            "mean_revenue": float(group["revenue"].mean()) if "revenue" in group else float("nan"),
            "typical_path": (paths or {}).get(int(pid), ""),
            "traits": json.dumps({k: round(v, 4) for k, v in shown.items()}),
        })
    out = pd.DataFrame(rows)
    return _unique_names(out, features, label)


def _unique_names(out: pd.DataFrame, features: pd.DataFrame, label: str) -> pd.DataFrame:
    """Two personas with the same name get their dominant device or channel added, then a number."""
    if out.empty:
        return out
    for name, idx in out.groupby("persona").groups.items():
        if len(idx) < 2:
            continue
        for i in idx:
            pid = out.at[i, label]
            group = features[features[label] == pid]
            dev = _top("device_", group.select_dtypes("number").mean())
            if dev:
                out.at[i, "persona"] = f"{name} ({dev[0]})"
    dup = out.persona.duplicated(keep=False)
    if dup.any():
        out.loc[dup, "persona"] = out.loc[dup].apply(lambda r: f"{r.persona} #{r[label] + 1}", axis=1)
    return out


def persona_card(row: Any) -> str:
    """One line for the CLI: name, size, value and traits.

    >>> persona_card({"persona": "Weekend DIY doers", "people": 10, "share": .2, "mean_clv": 50.0,
    ...               "description": "61% do-moments"})
    'Weekend DIY doers: 10 people (20%), mean CLV 50: 61% do-moments'
    """
    get = row.get if isinstance(row, dict) else (lambda k, d=None: getattr(row, k, d))
    return (f"{get('persona')}: {get('people'):,} people ({_pct(get('share'))}), "
            f"mean CLV {get('mean_clv'):,.0f}: {get('description')}")
