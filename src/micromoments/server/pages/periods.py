"""The overview's parts: complete days only, the daily chart with round ticks, the moment mix frame.

A store's last day is usually partial (the data stops mid-day, or the day is today): compared with a
full previous period it makes every KPI fall, so periods end on the last complete day.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from micromoments.journey.people import anonymous_note
from micromoments.report import charts
from micromoments.report.markup import plot_text

MOMENTS = ("know", "go", "do", "buy")
COMPLETE_FROM_HOUR = 23  # a day with data up to this hour (UTC) or later counts as complete


def last_complete_day_end(last: pd.Timestamp) -> pd.Timestamp:
    """The end (exclusive) of the last complete day of data: the data's last day when its events
    reach its final hour, else the day before (a nearly empty last day would make every
    comparison with the previous period fall).

    >>> last_complete_day_end(pd.Timestamp("2026-05-08 09:14"))
    Timestamp('2026-05-08 00:00:00')
    >>> last_complete_day_end(pd.Timestamp("2026-05-08 23:40"))
    Timestamp('2026-05-09 00:00:00')
    """
    day = pd.Timestamp(last).floor("D")
    return day + pd.Timedelta(days=1) if pd.Timestamp(last) >= day + pd.Timedelta(hours=COMPLETE_FROM_HOUR) else day


def daily_chart(ep: pd.DataFrame, ses: pd.DataFrame) -> go.Figure:
    """Micro-moments per day (stacked by type) and conversions per day (a line on the right axis).

    >>> # daily_chart(episodes_of_the_period, sessions_of_the_period)
    """
    fig = go.Figure()
    if not ep.empty:
        daily = ep.groupby(["day", "moment"]).size().unstack(fill_value=0)
        order = [m for m in MOMENTS if m in daily.columns] + sorted(set(daily.columns) - set(MOMENTS))
        for m in order:
            fig.add_trace(go.Bar(x=daily.index, y=daily[m], name=plot_text(charts.moment_name(m)),
                                 marker_color=charts.COLORS.get(m, "#9D755D")))
    if not ses.empty:
        conv = ses.groupby("day").converted.sum()
        fig.add_trace(go.Scatter(x=conv.index, y=conv.values, name="conversions", yaxis="y2", mode="lines+markers",
                                 line=dict(color="#222", width=2)))
    # Round ticks on both axes, on the same gridlines (no 14.1, 28.1 on the right).
    left = float(ep.groupby("day").size().max()) if not ep.empty else 1.0
    right = float(ses.groupby("day").converted.sum().max()) if not ses.empty else 1.0
    (l_step, r_step), n = charts.paired_ticks(left, right)
    fig.update_layout(**{**charts.LAYOUT, "height": 340}, barmode="stack", legend=dict(orientation="h", y=1.15),
                      yaxis=dict(title="micro-moments", dtick=l_step, range=[0, l_step * n], tickformat=",d"),
                      yaxis2=dict(title="conversions", overlaying="y", side="right", showgrid=False,
                                  dtick=r_step, range=[0, r_step * n], tickformat=",d"))
    return fig


def people_note(cur: dict[str, float | None]) -> str:
    """What the people KPI counts, in plain words."""
    return anonymous_note(int(cur.get("anonymous") or 0))


def moment_mix_frame(ep: pd.DataFrame) -> pd.DataFrame:
    """Per moment type: episodes, people, conversion rate, abandoned share, median duration (as the report)."""
    if ep.empty:
        return pd.DataFrame(columns=["moment", "episodes", "people", "conversion_rate", "same_session_rate",
                                     "window_rate", "abandoned", "median_duration_s"])
    g = ep.assign(_conv=ep.converted.astype(float), _ab=(ep.outcome == "abandoned").astype(float),
                  _same=ep.converted_session.astype(float), _win=ep.converted_window.astype(float)).groupby("moment")
    return pd.DataFrame({
        "episodes": g.size(), "people": g.person_id.nunique(), "conversion_rate": g._conv.mean(),
        "same_session_rate": g._same.mean(), "window_rate": g._win.mean(),
        "abandoned": g._ab.mean(), "median_duration_s": g.duration_s.median(),
    }).reset_index().sort_values("episodes", ascending=False)
