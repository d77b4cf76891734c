"""Score detected moment episodes against ground truth (the demo generator's, or a labelled sample).

Ground truth is one row per event: `messageId`, the true `episode_id` and its `episode_moment`
(empty for events outside any moment). Only events the detector put in an episode are
compared, because only intent-bearing events belong to detected episodes.

Three figures, each in [0, 1] (ARI can dip below 0 for worse-than-chance boundaries):
  * `event_type_agreement`: share of those events whose detected episode type equals their
    true episode's type;
  * `episode_type_agreement`: share of true episodes whose events' detected types, by
    majority, equal the true type;
  * `boundary_ari`: adjusted Rand index between detected and true episode membership.

>>> import pandas as pd
>>> detected = pd.DataFrame({"message_id": ["a", "b", "c"], "episode_id": ["s#1", "s#1", "s#2"],
...                          "moment": ["go", "go", "buy"]})
>>> truth = pd.DataFrame({"messageId": ["a", "b", "c"], "episode_id": ["E1", "E1", "E2"],
...                       "episode_moment": ["go", "go", "know"]})
>>> r = score_episodes(detected, truth)
>>> round(r.event_type_agreement, 3), r.episode_type_agreement, r.boundary_ari
(0.667, 0.5, 1.0)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import ibis.expr.types as ir
import pandas as pd

from micromoments.errors import InputError
from micromoments.journey.episodes import DEFAULT_EPISODE_GAP_MINUTES, episode_events

TRUTH_COLUMNS = ("messageId", "episode_id", "episode_moment")


@dataclass(frozen=True)
class EpisodeAgreement:
    events_compared: int
    true_episodes: int
    event_type_agreement: float
    episode_type_agreement: float
    boundary_ari: float
    by_moment: dict[str, float]  # event-level agreement per true moment type

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def detected_membership(sessionized: ir.Table, episodes_table: ir.Table,
                        episode_gap_minutes: int = DEFAULT_EPISODE_GAP_MINUTES) -> ir.Table:
    """`message_id, episode_id, moment`: each intent event with its detected episode's type."""
    ev = episode_events(sessionized, episode_gap_minutes)
    ev = ev.select(message_id=ev.message_id, _sid=ev.session_id, _ep=ev.episode_no)
    ep = episodes_table.select("session_id", "episode_no", "episode_id", "moment")
    joined = ev.join(ep, (ev._sid == ep.session_id) & (ev._ep == ep.episode_no))
    return joined.select("message_id", "episode_id", "moment")


def score_episodes(detected: pd.DataFrame, truth: pd.DataFrame) -> EpisodeAgreement:
    """Compare `detected(message_id, episode_id, moment)` with `truth(messageId, episode_id, episode_moment)`."""
    from sklearn.metrics import adjusted_rand_score

    missing = [c for c in TRUTH_COLUMNS if c not in truth.columns]
    if missing:
        raise InputError(f"ground truth lacks column(s) {', '.join(missing)}",
                         hint="expected the demo generator's truth_events.csv columns: " + ", ".join(TRUTH_COLUMNS))
    t = truth.loc[truth.episode_moment.notna() & (truth.episode_moment.astype(str) != ""),
                  list(TRUTH_COLUMNS)].rename(columns={"messageId": "message_id", "episode_id": "true_episode",
                                                       "episode_moment": "true_moment"})
    m = detected.merge(t, on="message_id", how="inner")
    if m.empty:
        raise InputError("no detected episode event matches a ground-truth event by messageId",
                         hint="score the store that was loaded from the same generated events")
    m["hit"] = m.moment == m.true_moment
    majority = (m.groupby(["true_episode", "true_moment"]).moment
                .agg(lambda s: s.value_counts().index[0]).reset_index())
    return EpisodeAgreement(
        events_compared=len(m),
        true_episodes=int(majority.shape[0]),
        event_type_agreement=float(m.hit.mean()),
        episode_type_agreement=float((majority.moment == majority.true_moment).mean()),
        boundary_ari=float(adjusted_rand_score(m.true_episode, m.episode_id)),
        by_moment={k: round(float(v), 4) for k, v in m.groupby("true_moment").hit.mean().items()},
    )
