"""The journey map (stage × moment) and the path flows behind the Sankey diagram.

Both take episodes that carry a `stage` (`assign_stages(episodes(...))`).
"""

from __future__ import annotations

from typing import Literal

import ibis
import ibis.expr.types as ir

ARROW = " → "


def _person_order() -> list:
    return ["secs_start", "session_no", "episode_no"]


def journey_map(staged: ir.Table) -> ir.Table:
    """Per stage × moment: episodes, people, conversions, conversion rate, revenue and the median
    seconds from an episode to the person's next *different* stage (NULL if they never moved on);
    with `same_session_rate` and `window_rate` when the episodes carry `journey.conversion`'s flags.

    >>> # journey_map(assign_stages(episodes(sessionize(events))))
    """
    w = ibis.window(group_by="person_id", order_by=_person_order())
    prev = staged.stage.lag().over(w)
    t = staged.mutate(_changed=ibis.ifelse(prev.isnull() | (staged.stage != prev), 1, 0))
    # The next stage starts at the first later episode that changed stage: episodes are in
    # `secs_start` order, so that is the least start among the later changes (one window pass
    # instead of numbering the runs, aggregating them and joining them back).
    later = ibis.window(group_by="person_id", order_by=_person_order(), rows=(1, None))
    t = t.mutate(_next_start=ibis.ifelse(t._changed == 1, t.secs_start, ibis.null("int64")).min().over(later))
    t = t.mutate(_to_next=(t._next_start - t.secs_start).cast("float64"))
    # Both conversion definitions of `journey.conversion`, when the episodes carry them.
    rates = {f"{name}_rate": t[col].cast("float64").mean()
             for name, col in (("same_session", "converted_session"), ("window", "converted_window"))
             if col in t.columns}
    return t.group_by(["stage", "moment"]).aggregate(
        episodes=t.count(),
        people=t.person_id.nunique(),
        conversions=t.converted.cast("int64").sum(),
        conversion_rate=t.converted.cast("float64").mean(),
        **rates,
        revenue=t.revenue.sum(),
        median_s_to_next_stage=t._to_next.median(),
    )


def _steps(staged: ir.Table, by: str) -> ir.Table:
    """Each person's episodes as steps, consecutive repeats collapsed; `step` is 1-based."""
    w = ibis.window(group_by="person_id", order_by=_person_order())
    t = staged.mutate(_label=staged[by].fill_null("(none)"))
    t = t.mutate(_prev=t._label.lag().over(w))
    t = t.filter(t._prev.isnull() | (t._prev != t._label))
    t = t.mutate(step=ibis.row_number().over(w) + 1)
    buyers = staged.group_by("person_id").aggregate(_buyer=staged.converted.cast("int64").max())
    buyers = buyers.rename(_b_person="person_id")
    return t.join(buyers, t.person_id == buyers._b_person).drop("_b_person")


def top_paths(staged: ir.Table, by: Literal["moment", "stage"] = "moment", max_steps: int = 5) -> ir.Table:
    """The most common sequences (per person) of moments or stages, e.g. `know → buy → do`,
    with how many people took each path and how many of them purchased. Longer paths end in `…`.
    """
    t = _steps(staged, by)
    w = ibis.window(group_by="person_id", order_by="step")
    path = t._label
    for k in range(1, max_steps):
        nxt = t._label.lead(k).over(w)
        path = ibis.ifelse(nxt.isnull(), path, path.concat(ARROW, nxt))
    more = t._label.lead(max_steps).over(w)
    path = ibis.ifelse(more.isnull(), path, path.concat(ARROW, "…"))
    firsts = t.mutate(path=path).filter(lambda x: x.step == 1)
    out = firsts.group_by("path").aggregate(
        people=firsts.count(), converted=firsts._buyer.sum(),
    )
    return out.mutate(conversion_rate=out.converted.cast("float64") / out.people).order_by(
        [ibis.desc("people"), "path"]
    )


def path_links(staged: ir.Table, by: Literal["moment", "stage"] = "moment", max_steps: int = 5) -> ir.Table:
    """Sankey links `(step, source, target, people)`: `1. know` → `2. buy` → … → `purchase` or
    `no purchase`. Nodes carry their step number, so a person who returns to a moment type
    flows forward instead of looping.
    """
    t = _steps(staged, by)
    w = ibis.window(group_by="person_id", order_by="step")
    t = t.mutate(_next=t._label.lead().over(w))
    t = t.filter(t.step <= max_steps)
    source = t.step.cast("string").concat(". ", t._label)
    terminal = ibis.ifelse(t._buyer > 0, "purchase", "no purchase")
    target = ibis.cases(
        (t._next.isnull(), terminal),
        (t.step == max_steps, ibis.literal("more steps")),
        else_=(t.step + 1).cast("string").concat(". ", t._next),
    )
    links = t.mutate(source=source, target=target)
    return links.group_by(["step", "source", "target"]).aggregate(people=links.count())
