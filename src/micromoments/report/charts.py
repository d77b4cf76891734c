"""Plotly figures and the plain-words takeaways under them. Pure: frames in, figures/text out."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from micromoments.journey.conversion import explanation, window_text
from micromoments.journey.heatmap import WEEKDAYS
from micromoments.journey.stages import STAGES
from micromoments.report.markup import plot_text

MOMENT_NAMES = {"know": "I want to know", "go": "I want to go", "do": "I want to do", "buy": "I want to buy"}
COLORS = {"know": "#4C78A8", "go": "#F58518", "do": "#54A24B", "buy": "#E45756"}
LAYOUT = dict(template="plotly_white", margin=dict(l=40, r=20, t=30, b=40), height=380,
              font=dict(family="Inter, Segoe UI, Helvetica, Arial, sans-serif", size=13))


def nice_step(top: float, ticks: int = 5) -> float:
    """A round tick step (1, 2, 2.5 or 5 × a power of ten; at least 1) so about `ticks` ticks cover `top`.

    >>> nice_step(70), nice_step(2), nice_step(1234)
    (20, 1, 250)
    """
    import math

    raw = max(float(top), 1.0) / ticks
    base = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * base >= raw:
            step = max(m * base, 1.0)
            return int(step) if float(step).is_integer() else step
    return int(10 * base)


def paired_ticks(left: float, right: float, ticks: int = 5) -> tuple[tuple[float, float], int]:
    """Round steps for two y axes sharing gridlines, and the number of gridlines both need.

    >>> paired_ticks(700, 60)
    ((200, 20), 4)
    """
    import math

    lstep, rstep = nice_step(left, ticks), nice_step(right, ticks)
    n = max(math.ceil(max(left, 1.0) / lstep), math.ceil(max(right, 1.0) / rstep), 1)
    return (lstep, rstep), n


def moment_name(m: str) -> str:
    return MOMENT_NAMES.get(m, m)


def pct(x: float) -> str:
    return f"{x:.0%}" if x >= 0.01 or x == 0 else f"{x:.1%}"


def duration(seconds: float | None) -> str:
    if seconds is None or pd.isna(seconds):
        return "—"
    s = float(seconds)
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    if s < 2 * 86400:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} days"


def conversion_cell(same: float, window: float, days: float = 7.0) -> str:
    """`12% same visit · 30% within 7 days`: both conversion rates of a moment, as every chart writes them."""
    return f"{pct(same)} same visit · {pct(window)} within {window_text(days)}"


def moment_mix(mix: pd.DataFrame, window_days: float = 7.0) -> tuple[go.Figure, list[str]]:
    mix = mix.sort_values("episodes", ascending=True)
    fig = go.Figure(go.Bar(
        x=mix.episodes, y=[plot_text(moment_name(m)) for m in mix.moment], orientation="h",
        marker_color=[COLORS.get(m, "#9D755D") for m in mix.moment],
        text=[f"{int(n):,} moments · {conversion_cell(s, w, window_days)}"
              for n, s, w in zip(mix.episodes, mix.same_session_rate, mix.window_rate)],
        textposition="auto", hovertemplate="%{y}: %{x:,} moments<extra></extra>",
    ))
    fig.update_layout(**LAYOUT, xaxis=dict(title="micro-moments (episodes)", tickformat=",d"))
    total = int(mix.episodes.sum())
    top = mix.sort_values("episodes").iloc[-1]
    best = mix.sort_values("window_rate").iloc[-1]
    notes = [f"<b>{moment_name(top.moment)}</b> moments are the most common: {pct(top.episodes / total)} of all {total:,}."]
    notes.append(f"<b>{moment_name(best.moment)}</b> moments lead to a purchase most often: {pct(best.window_rate)} are "
                 f"followed by one within {window_text(window_days)} ({pct(best.same_session_rate)} in the same visit).")
    worst = mix.sort_values("abandoned").iloc[-1]
    notes.append(f"{pct(worst.abandoned)} of <b>{moment_name(worst.moment)}</b> moments are the last thing people do in the "
                 "session: a place to follow up.")
    notes.append(explanation(window_days))
    return fig, notes


def journey_matrix(jm: pd.DataFrame, window_days: float = 7.0) -> tuple[go.Figure, list[str]]:
    stages = [s for s in STAGES if s in set(jm.stage)] + sorted(set(jm.stage) - set(STAGES))
    moments = [m for m in ("know", "go", "do", "buy") if m in set(jm.moment)] + sorted(set(jm.moment) - set(COLORS))
    grid = jm.set_index(["stage", "moment"])
    z, text = [], []
    for st in stages:
        zr, tr = [], []
        for m in moments:
            if (st, m) in grid.index:
                r = grid.loc[(st, m)]
                zr.append(float(r.window_rate))
                tr.append(f"{int(r.episodes):,} moments<br>{pct(r.same_session_rate)} same visit<br>"
                          f"{pct(r.window_rate)} within {window_text(window_days)}<br>"
                          f"next stage {duration(r.median_s_to_next_stage)}")
            else:
                zr.append(None)
                tr.append("")
        z.append(zr)
        text.append(tr)
    fig = go.Figure(go.Heatmap(
        z=z, x=[plot_text(moment_name(m)) for m in moments], y=[plot_text(s) for s in stages], text=text,
        texttemplate="%{text}", colorscale="Blues",
        colorbar=dict(title=f"bought within<br>{window_text(window_days)}", tickformat=".0%"), hoverinfo="text",
    ))
    fig.update_layout(**{**LAYOUT, "height": 460}, yaxis=dict(autorange="reversed"))
    top = jm.sort_values("episodes").iloc[-1]
    notes = [f"The busiest cell is <b>{moment_name(top.moment)}</b> in <b>{top.stage}</b> ({int(top.episodes):,} moments)."]
    sizable = jm[jm.episodes >= max(5, jm.episodes.sum() * 0.02)]
    if not sizable.empty:
        best = sizable.sort_values("window_rate").iloc[-1]
        notes.append(f"<b>{moment_name(best.moment)}</b> moments in <b>{best.stage}</b> lead to a purchase most often "
                     f"({pct(best.window_rate)} within {window_text(window_days)}).")
        moving = sizable.dropna(subset=["median_s_to_next_stage"])
        if not moving.empty:
            slow = moving.sort_values("median_s_to_next_stage").iloc[-1]
            notes.append(f"People are slowest to move on after <b>{moment_name(slow.moment)}</b> in <b>{slow.stage}</b>: "
                         f"a median of {duration(slow.median_s_to_next_stage)} before the next stage.")
    notes.append(explanation(window_days))
    return fig, notes


def stage_bars(stages: pd.DataFrame) -> tuple[go.Figure, list[str]]:
    order = {s: i for i, s in enumerate(STAGES)}
    stages = stages.sort_values("stage", key=lambda c: c.map(lambda s: order.get(s, 9)))
    fig = go.Figure(go.Bar(x=[plot_text(s) for s in stages.stage], y=stages.sessions, marker_color="#4C78A8",
                           text=[f"{pct(r)} convert" for r in stages.conversion_rate], textposition="auto"))
    fig.update_layout(**LAYOUT, yaxis_title="sessions")
    top = stages.sort_values("sessions").iloc[-1]
    return fig, [f"Most sessions are in <b>{top.stage}</b> ({int(top.sessions):,})."]


def sankey(links: pd.DataFrame, paths: pd.DataFrame | None) -> tuple[go.Figure, list[str]]:
    nodes = sorted(set(links.source) | set(links.target),
                   key=lambda n: (n in ("purchase", "no purchase", "more steps"), n))
    index = {n: i for i, n in enumerate(nodes)}

    def color(n: str) -> str:
        base = n.split(". ", 1)[-1]
        return {"purchase": "#2CA02C", "no purchase": "#BBBBBB"}.get(base, COLORS.get(base, "#9D755D"))

    fig = go.Figure(go.Sankey(
        arrangement="snap",
        node=dict(label=[plot_text(n.split(". ", 1)[0] + ". " + moment_name(n.split(". ", 1)[1]) if ". " in n else n)
                         for n in nodes],
                  color=[color(n) for n in nodes], pad=14, thickness=16),
        link=dict(source=[index[s] for s in links.source], target=[index[t] for t in links.target],
                  value=links.people.tolist(), color="rgba(120,120,120,0.25)"),
    ))
    fig.update_layout(**{**LAYOUT, "height": 460})
    notes = []
    if paths is not None and not paths.empty:
        top = paths.iloc[0]
        notes.append(f"The most common path is <b>{top.path}</b> ({int(top.people):,} people, {pct(top.conversion_rate)} bought).")
        sizable = paths[paths.people >= max(3, paths.people.max() * 0.1)]
        if len(sizable) > 1:
            best = sizable.sort_values("conversion_rate").iloc[-1]
            notes.append(f"Of the common paths, <b>{best.path}</b> converts best ({pct(best.conversion_rate)}).")
    return fig, notes


def funnel_chart(fun: pd.DataFrame) -> tuple[go.Figure, list[str]]:
    fun = fun.sort_values("step")
    fig = go.Figure(go.Funnel(y=[plot_text(s) for s in fun.step_name], x=fun.people, marker_color="#4C78A8",
                              texttemplate="%{value:,} · %{percentInitial:.0%}",
                              hovertemplate="%{y}: %{x:,} people<extra></extra>"))
    fig.update_layout(**LAYOUT)
    notes = []
    if len(fun) >= 2 and fun.people.iloc[0] > 0:
        drops = fun.iloc[:-1].assign(rate=1 - fun.conversion_from_previous.shift(-1).iloc[:-1])
        worst = drops.sort_values("rate").iloc[-1]
        nxt = fun[fun.step == worst.step + 1].iloc[0]
        notes.append(f"The biggest leak is from <b>{worst.step_name}</b> to <b>{nxt.step_name}</b>: "
                     f"{pct(worst.rate)} of people stop there.")
        last = fun.iloc[-1]
        notes.append(f"{pct(last.conversion_from_start)} of people who start make it to <b>{last.step_name}</b>, "
                     f"in a median of {duration(last.median_s_from_start)}.")
    return fig, notes


def breakdown_chart(fun: pd.DataFrame, label: str, top: int = 6) -> tuple[go.Figure, list[str]]:
    starts = fun[fun.step == 1].sort_values("people", ascending=False).head(top)
    keep = starts.breakdown.tolist()
    last = fun.step.max()
    fig = go.Figure()
    for step, grp in fun[fun.breakdown.isin(keep)].groupby("step"):
        grp = grp.set_index("breakdown").reindex(keep)
        fig.add_trace(go.Bar(name=plot_text(grp.step_name.iloc[0]), x=[plot_text(moment_name(k)) for k in keep], y=grp.people))
    fig.update_layout(**LAYOUT, barmode="group", yaxis_title="people", legend=dict(orientation="h", y=1.12))
    ends = fun[(fun.step == last) & fun.breakdown.isin(keep)]
    notes = []
    starts_n = starts.set_index("breakdown").people
    ends = ends.assign(start=ends.breakdown.map(starts_n)).query("start >= 5")
    if len(ends) >= 2:
        best, worst = ends.sort_values("conversion_from_start").iloc[-1], ends.sort_values("conversion_from_start").iloc[0]
        notes.append(f"By {label}: <b>{moment_name(best.breakdown)}</b> converts best ({pct(best.conversion_from_start)}), "
                     f"<b>{moment_name(worst.breakdown)}</b> worst ({pct(worst.conversion_from_start)}).")
    return fig, notes


def heatmap_chart(hm: pd.DataFrame) -> tuple[go.Figure, list[str]]:
    moments = hm.groupby("moment").events.sum().sort_values(ascending=False).index.tolist()
    fig = go.Figure()
    notes = []
    for i, m in enumerate(moments):
        sub = hm[hm.moment == m]
        grid = sub.pivot_table(index="weekday", columns="hour", values="events", aggfunc="sum").reindex(
            index=range(7), columns=range(24)).fillna(0)
        fig.add_trace(go.Heatmap(z=grid.values, x=[f"{h:02d}h" for h in range(24)], y=list(WEEKDAYS),
                                 colorscale="YlOrRd", visible=(i == 0), name=plot_text(moment_name(m)),
                                 hovertemplate="%{y} %{x}: %{z:,} events<extra></extra>"))
        peak = sub.sort_values("events").iloc[-1]
        if i < 4:
            notes.append(f"<b>{moment_name(m)}</b> peaks on <b>{WEEKDAYS[int(peak.weekday)]}s around "
                         f"{int(peak.hour):02d}:00</b> local time.")
    buttons = [dict(label=plot_text(moment_name(m)), method="update",
                    args=[{"visible": [j == i for j in range(len(moments))]}]) for i, m in enumerate(moments)]
    fig.update_layout(**{**LAYOUT, "height": 360}, yaxis=dict(autorange="reversed"),
                      updatemenus=[dict(buttons=buttons, direction="right", type="buttons", x=0, y=1.18,
                                        xanchor="left")] if len(moments) > 1 else [])
    return fig, notes


def faq_chart(faq: pd.DataFrame, top: int = 12) -> tuple[go.Figure, list[str]]:
    """Themes by searches, "other questions" (if shown) at the bottom, content gaps in red."""
    named = faq[~faq.is_other] if "is_other" in faq else faq
    shown = pd.concat([named.head(top), faq[faq.is_other]]) if "is_other" in faq else faq.head(top)
    shown = shown.iloc[::-1]
    other = shown.is_other if "is_other" in shown else pd.Series(False, index=shown.index)
    fig = go.Figure(go.Bar(
        x=shown.searches, y=[plot_text(str(e)[:48]) for e in shown.label], orientation="h",
        marker_color=["#BBBBBB" if o else "#E45756" if g else "#4C78A8" for g, o in zip(shown.content_gap, other)],
        text=[f"{pct(r)} of visits bought" + (" · content gap" if g else "")
              for r, g in zip(shown.conversion_rate, shown.content_gap)],
        textposition="auto", customdata=[plot_text(v) for v in shown.example],
        hovertemplate="%{y}: %{x:,} searches (most asked: %{customdata})<extra></extra>",
    ))
    fig.update_layout(**{**LAYOUT, "height": max(300, 40 * len(shown) + 80)},
                      xaxis=dict(title="searches", tickformat=",d"))
    gaps = named[named.content_gap]
    notes = []
    if not named.empty:
        notes.append(f"{len(named)} question themes; the biggest is <b>“{named.iloc[0].label}”</b> "
                     f"({int(named.iloc[0].searches):,} searches).")
    if len(named) < len(faq):
        o = faq[faq.is_other].iloc[0]
        notes.append(f"{int(o.searches):,} searches share too few words with any theme: they are listed last as "
                     "<i>other questions</i>.")
    if not gaps.empty:
        g = gaps.sort_values("searches").iloc[-1]
        notes.append(f"<b>Content gap:</b> people often ask <b>“{g.label}”</b>: {g.gap_reason}. "
                     "A clear answer page is the obvious next piece of content.")
    else:
        notes.append("No theme stands out as a content gap: frequent questions convert about as well as other searches.")
    return fig, notes


def touchpoint_chart(tp: pd.DataFrame, top: int = 15) -> tuple[go.Figure, list[str]]:
    tp = tp.sort_values("sessions", ascending=False).head(top).iloc[::-1]
    colors = {"peak": "#2CA02C", "falters": "#E45756", "": "#9DB4CC"}
    fig = go.Figure(go.Bar(
        x=tp.conversion_rate, y=[plot_text(t) for t in tp.touchpoint], orientation="h", marker_color=[colors.get(f, "#9DB4CC") for f in tp.flag],
        text=[f"{int(n):,} sessions · {pct(e)} exit" for n, e in zip(tp.sessions, tp.exit_rate)], textposition="auto",
        hovertemplate="%{y}: %{x:.0%} of sessions buy<extra></extra>",
    ))
    fig.update_layout(**{**LAYOUT, "height": max(300, 32 * len(tp) + 80)}, xaxis=dict(tickformat=".0%", title="sessions that convert"))
    notes = []
    for flag, word in (("peak", "lift"), ("falters", "lose")):
        f = tp[tp.flag == flag]
        if not f.empty:
            r = f.sort_values("sessions").iloc[-1]
            notes.append(f"<b>{r.touchpoint}</b> {'peaks' if flag == 'peak' else 'falters'}: {r.why} "
                         f"(significant after correcting for {len(tp)} pages tested).")
    if not notes:
        notes.append("No page converts or loses people significantly differently from the rest.")
    return fig, notes
