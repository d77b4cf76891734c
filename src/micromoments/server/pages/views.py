"""What each page shows, sliced from a `Snapshot`: plain dicts and frames for the templates, and the
report's Plotly figures (`report.charts`) rendered once per snapshot.

Pure functions of (snapshot, request parameters); no FastAPI here, so they are easy to test and time.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from micromoments.errors import InputError
from micromoments.frames import records
from micromoments.journey.funnels import MODES, funnel
from micromoments.report import charts
from micromoments.report.markup import PlotlyDiv, plot_text
from micromoments.server.pages.analytics import Snapshot
from micromoments.server.pages.periods import daily_chart, last_complete_day_end, moment_mix_frame, people_note
from micromoments.server.pages.prerender import prerender_parts

log = logging.getLogger(__name__)

MOMENTS = ("know", "go", "do", "buy")
PERIODS = {"7d": 7, "14d": 14, "30d": 30, "all": None}
PERIOD_LABELS = {"7d": "last 7 days", "14d": "last 14 days", "30d": "last 30 days", "all": "all time"}
PLOT_CONFIG = {"displaylogo": False, "responsive": True}
MIN_WINDOW_DAYS, MAX_WINDOW_DAYS = 1 / 1440, 3650.0  # a funnel window: one minute to ten years


def figure_html(fig: go.Figure, div_id: str) -> PlotlyDiv:
    """The figure as an empty `<div>` with its JSON in an attribute; `/app/static/app.js` draws it."""
    return PlotlyDiv(fig, div_id, PLOT_CONFIG)


def chart(snap: Snapshot, key: str, build: Any) -> dict[str, Any]:
    """`build() -> (fig, notes)` once per snapshot; returns {"html", "notes"}."""

    def make() -> dict[str, Any]:
        try:
            fig, notes = build()
        except Exception as exc:  # this chart shows its error; the rest of the page renders
            log.exception("chart %s failed", key)
            snap.panel_errors[f"chart-{key}"] = f"{type(exc).__name__}: {exc}"[:300]
            return {"html": None, "notes": [], "error": f"This chart could not be drawn ({type(exc).__name__})."}
        return {"html": figure_html(fig, f"chart-{key}"), "notes": notes}

    return snap.remember(("chart", key), make)


def pct(x: float | None) -> str:
    return "—" if x is None or pd.isna(x) else charts.pct(float(x))


def change(cur: float | None, prev: float | None) -> dict[str, Any] | None:
    """The trend against the previous period: {"text": "+12%", "dir": "up"}."""
    if cur is None or prev is None or pd.isna(cur) or pd.isna(prev) or prev == 0:
        return None
    rel = (cur - prev) / abs(prev)
    return {"text": f"{rel:+.0%}", "dir": "up" if rel > 0.005 else "down" if rel < -0.005 else "flat"}


# --- overview ------------------------------------------------------------------------------------
def period_bounds(snap: Snapshot, period: str) -> tuple[pd.Timestamp, pd.Timestamp, pd.Timestamp | None]:
    """(start, end, previous start) of a period of complete days ending on the last complete day
    (all time: up to the last event)."""
    k = snap.report.kpis
    end = (pd.Timestamp(k["complete_until"]) if "complete_until" in k
           else last_complete_day_end(pd.Timestamp(k["last"])))
    if end <= pd.Timestamp(k["first"]).floor("D"):  # less than one complete day: show what there is
        end = pd.Timestamp(k["last"]).floor("D") + pd.Timedelta(days=1)
    days = PERIODS.get(period, 7)
    if days is None:  # all time: nothing to compare with, so the last day counts, complete or not
        return pd.Timestamp(k["first"]).floor("D"), pd.Timestamp(k["last"]).floor("D") + pd.Timedelta(days=1), None
    start = end - pd.Timedelta(days=days)
    return start, end, start - pd.Timedelta(days=days)


def _window(frame: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    if frame.empty:
        return frame
    return frame[(frame.day >= start) & (frame.day < end)]


def _activation_counts(snap: Snapshot, start: pd.Timestamp, end: pd.Timestamp) -> tuple[int, int]:
    """(exposures, clicks) in [start, end) from the live activation logs (small tables, read per request)."""
    if not {"exposures", "outcomes"} <= snap.tables:
        return 0, 0
    row = snap.query(
        "SELECT (SELECT count(*) FROM exposures WHERE ts >= ? AND ts < ?) AS exposures, "
        "(SELECT count(*) FROM outcomes WHERE kind = 'click' AND ts >= ? AND ts < ?) AS clicks",
        [start.to_pydatetime(), end.to_pydatetime()] * 2)
    return int(row.exposures[0]), int(row.clicks[0])


def _kpis(snap: Snapshot, start: pd.Timestamp, end: pd.Timestamp) -> dict[str, float | None]:
    def journey_kpis() -> dict[str, float | None]:  # fixed per snapshot and period
        ses, ep = _window(snap.sessions, start, end), _window(snap.episodes, start, end)
        known = ses.known if "known" in ses else pd.Series(True, index=ses.index)
        return dict(
            moments=float(len(ep)), people=float(ses.person_id[known].nunique()),
            anonymous=float(ses.person_id[~known].nunique()), sessions=float(len(ses)),
            conversions=float(ses.converted.sum()), conversion_rate=float(ses.converted.mean()) if len(ses) else None,
            revenue=float(ses.revenue.sum()))

    exposures, clicks = _activation_counts(snap, start, end)  # live logs: read every time
    return dict(snap.remember(("kpis", start, end), journey_kpis), exposures=float(exposures),
                ctr=clicks / exposures if exposures else None)


def overview(snap: Snapshot, period: str) -> dict[str, Any]:
    period = period if period in PERIODS else "7d"
    start, end, prev_start = period_bounds(snap, period)
    cur = _kpis(snap, start, end)
    prev = _kpis(snap, prev_start, start) if prev_start is not None else {}
    fmt = {
        "moments": ("micro-moments", lambda v: f"{v:,.0f}"), "people": ("people", lambda v: f"{v:,.0f}"),
        "anonymous": ("anonymous ids not linked", lambda v: f"{v:,.0f}"),
        "sessions": ("sessions", lambda v: f"{v:,.0f}"), "conversions": ("conversions", lambda v: f"{v:,.0f}"),
        "conversion_rate": ("sessions that buy", pct), "revenue": ("revenue", lambda v: f"{v:,.0f}"),
        "ctr": ("content CTR", pct),
    }
    kpis = []
    for key, (label, f) in fmt.items():
        v = cur.get(key)
        # Fewer unlinked ids is no loss: that KPI gets no red or green arrow.
        trend = None if key == "anonymous" else change(v, prev.get(key))
        kpis.append(dict(key=key, label=label, value="—" if v is None else f(v), trend=trend))
    ep_w, ses_w = _window(snap.episodes, start, end), _window(snap.sessions, start, end)

    def build() -> dict[str, Any]:
        out: dict[str, Any] = {"daily": figure_html(daily_chart(ep_w, ses_w), "chart-daily")}
        mix = moment_mix_frame(ep_w)
        if not mix.empty:
            fig, notes = charts.moment_mix(mix, snap.report.conversion_window_days)
            out.update(mix=figure_html(fig, "chart-moments"), mix_notes=notes)
        return out

    figs = snap.remember(("overview", period), build)
    last = pd.Timestamp(snap.report.kpis["last"])
    partial = last if last >= end else None  # the data's last day, left out because it is not complete
    return dict(period=period, periods=PERIOD_LABELS, start=start, end=end - pd.Timedelta(days=1),
                has_prev=prev_start is not None, kpis=kpis, ctr_note=cur["exposures"] == 0, partial=partial,
                partial_from=end,
                people_note=people_note(cur), **figs)


# --- live moments -------------------------------------------------------------------------------
LIVE_COLUMNS = ("ts", "person_id", "moment", "go_type", "channel", "text", "event", "confidence")


def _clean(value: Any) -> Any:
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NaT:
        return None
    if isinstance(value, (pd.Timestamp, dt.datetime)):
        return pd.Timestamp(value).isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def normalise_moment(row: dict[str, Any]) -> dict[str, Any]:
    """One moment as the live page shows it, from an activator record or a store row."""
    text = row.get("text") or row.get("query") or row.get("page_title") or row.get("name") or row.get("event")
    return {
        "ts": _clean(row.get("ts") or row.get("detected_at")), "person_id": _clean(row.get("person_id")),
        "moment": _clean(row.get("moment")), "go_type": _clean(row.get("go_type")),
        "channel": _clean(row.get("channel")), "text": _clean(text), "event": _clean(row.get("event")),
        "confidence": _clean(row.get("confidence")),
    }


def store_moments(snap: Snapshot, moment: str | None, channel: str | None, limit: int = 100) -> list[dict[str, Any]]:
    """The latest classified moments in the store (when no live activator runs in this process)."""
    if not {"events", "event_moments"} <= snap.tables:
        return []
    where, params = ["m.moment IS NOT NULL", "m.moment <> 'other'"], []
    if moment:
        where.append("m.moment = ?")
        params.append(moment)
    if channel:
        where.append("e.channel = ?")
        params.append(channel)
    def sql(recent_only: bool) -> str:
        # The last day of events first (a cheap range scan), the whole table only if that is too few.
        recent = "AND e.ts >= (SELECT max(ts) FROM events) - INTERVAL 1 DAY " if recent_only else ""
        return ("SELECT e.ts, e.person_id, m.moment, m.go_type, e.channel, "
                "coalesce(e.query, e.page_title, e.name, e.event) AS text, e.event, m.confidence "
                "FROM events e JOIN event_moments m ON e.message_id = m.message_id "
                f"WHERE {' AND '.join(where)} {recent}ORDER BY e.ts DESC, e.message_id LIMIT {int(limit)}")

    def build() -> pd.DataFrame:
        rows = snap.query(sql(True), params)
        return rows if len(rows) >= limit else snap.query(sql(False), params)

    rows = snap.remember(("live", moment, channel, limit, _events_count(snap)), build, limit=64)
    return [normalise_moment(r) for r in records(rows)]


def _events_count(snap: Snapshot) -> int:
    """Cheap (DuckDB keeps the row count), so the stream notices new events between snapshots."""
    return int(snap.query("SELECT count(*) AS n FROM events").n[0])


def live_moments(snap: Snapshot, activator: Any | None, moment: str | None, channel: str | None,
                 limit: int = 100) -> dict[str, Any]:
    """{"source": "live" | "store", "moments": [...]} newest first, filtered by type and channel."""
    if activator is not None and hasattr(activator, "recent_moments"):
        rows = [normalise_moment(r if isinstance(r, dict) else vars(r)) for r in activator.recent_moments(1000)]
        rows = [r for r in rows if (not moment or r["moment"] == moment) and (not channel or r["channel"] == channel)]
        rows.sort(key=lambda r: r["ts"] or "", reverse=True)
        if rows or not snap.has_events:
            return {"source": "live", "moments": rows[:limit]}
    return {"source": "store", "moments": store_moments(snap, moment, channel, limit)}


def channels(snap: Snapshot) -> list[str]:
    if snap.partial and "events" in snap.tables:  # no journeys yet: the channels straight from the events
        return sorted(str(c) for c in snap.query("SELECT DISTINCT channel FROM events WHERE channel IS NOT NULL "
                                                 "LIMIT 100").channel)
    if snap.sessions.empty:
        return []
    col = snap.episodes.channel if not snap.episodes.empty else pd.Series(dtype=str)
    return sorted(str(c) for c in col.dropna().unique())


# --- journey ---------------------------------------------------------------------------------------
def journey(snap: Snapshot) -> dict[str, Any]:
    d = snap.report
    out: dict[str, Any] = {"has_moments": d.has_moments}
    if d.journey_map is not None and not d.journey_map.empty:
        out["map"] = chart(snap, "journey", lambda: charts.journey_matrix(d.journey_map, d.conversion_window_days))
    elif d.session_stages is not None and not d.session_stages.empty:
        out["map"] = chart(snap, "journey", lambda: charts.stage_bars(d.session_stages))
    if d.links is not None and not d.links.empty:
        out["sankey"] = chart(snap, "sankey", lambda: charts.sankey(d.links, d.paths))
    out["paths"] = records(d.paths)
    if d.touchpoints is not None and not d.touchpoints.empty:
        out["touchpoints"] = chart(snap, "touchpoints", lambda: charts.touchpoint_chart(d.touchpoints))
    if d.heatmap is not None and not d.heatmap.empty:
        out["heatmap"] = chart(snap, "heatmap", lambda: charts.heatmap_chart(d.heatmap))
    out["default_steps"] = list(d.funnel_steps)
    out["step_options"] = funnel_options(snap)
    out["modes"] = MODES
    # The funnel window: the configured one ([journey] conversion_window_days) is preselected.
    days = snap.report.conversion_window_days
    out["window_days"] = int(days) if float(days).is_integer() else days
    out["window_choices"] = sorted({1, 7, 14, 30, out["window_days"]})
    return out


def funnel_options(snap: Snapshot) -> list[dict[str, str]]:
    """What a funnel step can be: the 40 commonest event names, then the moment types."""
    opts = [{"value": str(e), "label": f"{e} ({int(n):,})"} for e, n in snap.event_counts.head(40).items()]
    if snap.report.has_moments:
        opts += [{"value": f"moment:{m}", "label": f"moment: {charts.moment_name(m)}"} for m in MOMENTS]
    return opts


def funnel_result(snap: Snapshot, steps: list[str], mode: str = "ordered", window_days: float = 7.0,
                  breakdown: str | None = None) -> dict[str, Any]:
    """The funnel as JSON-ready dicts (what `/app/api/funnel` returns). Raises `InputError` on bad steps
    or a window that is not a number of days from 1 minute to 10 years."""
    if not (math.isfinite(window_days) and MIN_WINDOW_DAYS <= window_days <= MAX_WINDOW_DAYS):
        raise InputError(f"window_days {window_days!r} is not between {MIN_WINDOW_DAYS:g} and {MAX_WINDOW_DAYS:g}",
                         where="window_days", hint="e.g. window_days=7")
    if snap.journey is None:
        return {"steps": [], "mode": mode, "window_days": window_days, "note": "no events in the store"}
    key = ("funnel", tuple(steps), mode, float(window_days), breakdown)

    def build() -> dict[str, Any]:
        expr = funnel(snap.journey.sessionized, steps, mode=mode,  # type: ignore[arg-type]
                      window=dt.timedelta(days=window_days), breakdown=breakdown)
        frame = snap.execute(expr).sort_values(["breakdown", "step"])
        rows = [{k: _clean(v) for k, v in r.items()} for r in records(frame)]
        return {"steps": [r for r in rows if r["breakdown"] == "all"] if not breakdown else [],
                "breakdown": rows if breakdown else None, "mode": mode, "window_days": window_days}

    return snap.remember(key, build)


def examples(snap: Snapshot, *, path: str | None = None, stage: str | None = None, moment: str | None = None,
             persona: str | None = None, limit: int = 25) -> dict[str, Any]:
    """People whose journeys match a path (as in the top-paths table) or a stage × moment cell,
    optionally only those of one persona."""
    ep = snap.episodes
    if ep.empty:
        return {"people": [], "total": 0}
    if persona:
        pmap = persona_map(snap)
        ep = ep[ep.person_id.isin(pmap[pmap == persona].index)] if pmap is not None else ep.iloc[:0]
    if path:
        ids = paths_index(snap).get(path, pd.Index([]))
        if persona:
            ids = ids[ids.isin(ep.person_id)]
    else:
        sel = ep
        if stage:
            sel = sel[sel.stage == stage]
        if moment:
            sel = sel[sel.moment == moment]
        ids = sel.person_id.unique()
    summary = person_summary(snap)
    people = summary[summary.person_id.isin(ids)]  # already in display order
    return {"people": records(people.head(limit)), "total": int(len(people))}


def paths_index(snap: Snapshot) -> dict[str, pd.Index]:
    """path -> the people who took it (built once per snapshot)."""
    pp = snap.person_paths
    return snap.remember(("paths_index",), lambda: {k: pd.Index(v) for k, v in pp.groupby(pp).groups.items()})


def person_summary(snap: Snapshot) -> pd.DataFrame:
    """One row per person with moments: moments, sessions, bought, revenue, first/last, path; rich
    journeys first (buyers, then most moments), then by id for a stable order."""

    def build() -> pd.DataFrame:
        g = snap.episodes.groupby("person_id")
        people = pd.DataFrame({"moments": g.size(), "sessions": g.session_id.nunique(), "bought": g.converted.any(),
                               "revenue": g.revenue.sum(), "first": g.start.min(), "last": g.start.max()})
        people["path"] = snap.person_paths.reindex(people.index)
        return people.reset_index().sort_values(["bought", "moments", "person_id"], ascending=[False, False, True])

    return snap.remember(("person_summary",), build)


PERSON_EVENT_COLUMNS = ("ts", "session_no", "type", "event", "query", "page_path", "page_title", "channel",
                        "device_type", "revenue", "moment", "go_type", "confidence")


def _events_by_person(snap: Snapshot) -> tuple[Any, list[str]]:
    """The sessionized events, copied once per snapshot in person order: DuckDB's min/max index per
    row group then skips all but one group for a person, instead of scanning every event."""
    s = snap.journey.sessionized
    cols = [c for c in PERSON_EVENT_COLUMNS if c in s.columns]

    def build() -> Any:
        with snap.lock:
            return snap.db.ibis.create_table(f"_mm_events_by_person_{id(snap)}",
                                             s.select("person_id", *cols).order_by(["person_id", "ts"]),
                                             temp=True, overwrite=True)

    return snap.remember(("events_by_person",), build), cols


def _positions_by_person(snap: Snapshot, frame: str) -> dict[str, Any]:
    """person_id -> row positions in `snap.episodes` or `snap.sessions` (built once per snapshot)."""
    df = getattr(snap, frame)
    return snap.remember((f"{frame}_by_person",), lambda: df.groupby("person_id", sort=False).indices)


def _rows_of(snap: Snapshot, frame: str, person_id: str) -> pd.DataFrame:
    """One person's rows of `snap.episodes` or `snap.sessions`."""
    df = getattr(snap, frame)
    if df.empty:
        return df
    return df.iloc[_positions_by_person(snap, frame).get(person_id, [])]


def person(snap: Snapshot, person_id: str) -> dict[str, Any] | None:
    """One person's events, grouped by session, with the moment of each interaction."""
    if snap.journey is None:
        return None
    s, cols = _events_by_person(snap)
    ev = snap.execute(s.filter(s.person_id == person_id).select(*cols).order_by(["ts"]).limit(2000))
    if ev.empty:
        return None
    ep = _rows_of(snap, "episodes", person_id).sort_values("secs_start")
    sess = _rows_of(snap, "sessions", person_id).set_index("session_id") if not snap.sessions.empty else None
    sessions = []
    for no, grp in ev.groupby("session_no", sort=True):
        sid = f"{person_id}:{no}"
        info = sess.loc[sid] if sess is not None and sid in sess.index else None
        sessions.append({"no": int(no), "stage": None if info is None else info.stage,
                         "converted": bool(info.converted) if info is not None else False,
                         "events": records(grp)})
    return {"person_id": person_id, "sessions": sessions, "path": snap.person_paths.get(person_id),
            "episodes": records(ep), "n_events": len(ev), "persona": persona_of(snap, person_id)}


# --- questions & keywords ---------------------------------------------------------------------
def questions(snap: Snapshot, top: int = 60) -> dict[str, Any]:
    d = snap.report
    out: dict[str, Any] = {}
    if d.faq is not None and not d.faq.empty:
        out["faq"] = chart(snap, "faq", lambda: charts.faq_chart(d.faq))
        from micromoments.journey.faq import faq_rows

        out["themes"] = records(faq_rows(d.faq, 20))
        out["gaps"] = records(d.faq[d.faq.content_gap])
    kw = keywords(snap)
    if not kw.empty:
        out["keywords"] = records(kw.head(top))
        out["intent"] = chart(snap, "keyword-intent", lambda: _intent_chart(kw))
    return out


def keywords(snap: Snapshot) -> pd.DataFrame:
    """The searches people typed: volume, conversion, and the moment the intent engine gave each."""
    if snap.journey is None:
        return pd.DataFrame()

    def build() -> pd.DataFrame:
        from micromoments.journey.faq import query_stats
        from micromoments.journey.text import is_long_tail, is_question, is_voice_style

        stats = snap.execute(query_stats(snap.journey.sessionized).order_by(
            [lambda t: t.searches.desc(), "query"]).limit(500))
        if stats.empty:
            return stats
        if "moments_by_text" in snap.tables:
            texts = snap.query(
                "SELECT text, any_value(moment) AS moment, any_value(go_type) AS go_type, "
                "max(confidence) AS confidence FROM moments_by_text WHERE text IN (SELECT unnest(?)) GROUP BY text",
                [stats["query"].tolist()])
            stats = stats.merge(texts, how="left", left_on="query", right_on="text").drop(columns=["text"])
        else:
            stats = stats.assign(moment=None, go_type=None, confidence=None)
        for col in ("moment", "go_type"):  # a search the intent engine left untyped shows blank, not "nan"
            stats[col] = stats[col].astype(object).where(stats[col].notna(), None)
        stats["conversion_rate"] = stats.converted_sessions / stats.sessions.clip(lower=1)
        stats["question"] = stats["query"].map(is_question)
        stats["long_tail"] = stats["query"].map(is_long_tail)
        stats["voice"] = stats["query"].map(is_voice_style)
        return stats.sort_values(["searches", "query"], ascending=[False, True]).reset_index(drop=True)

    return snap.remember(("keywords",), build)


def _intent_chart(kw: pd.DataFrame) -> tuple[go.Figure, list[str]]:
    kw = kw.assign(moment=kw.moment.fillna("unclassified"),
                   kind=kw.question.map({True: "questions", False: "other searches"}))
    g = kw.groupby(["moment", "kind"]).searches.sum().unstack(fill_value=0)
    order = [m for m in MOMENTS if m in g.index] + sorted(set(g.index) - set(MOMENTS))
    g = g.reindex(order)
    fig = go.Figure()
    for kind, color in (("questions", "#4C78A8"), ("other searches", "#9DB4CC")):
        if kind in g.columns:
            fig.add_trace(go.Bar(x=[plot_text(charts.moment_name(m)) for m in g.index], y=g[kind], name=kind, marker_color=color))
    fig.update_layout(**charts.LAYOUT, barmode="stack", yaxis_title="searches", legend=dict(orientation="h", y=1.12))
    top = g.sum(axis=1).sort_values().index[-1]
    share = g.sum(axis=1)[top] / g.values.sum()
    return fig, [f"<b>{charts.moment_name(top)}</b> searches are the biggest share of the "
                 f"{len(kw):,} commonest queries ({pct(share)} of their volume)."]


# --- personas --------------------------------------------------------------------------------------
def persona_of(snap: Snapshot, person_id: str) -> str | None:
    m = persona_map(snap)
    return None if m is None else m.get(person_id)


def persona_map(snap: Snapshot) -> pd.Series | None:
    """person_id -> persona name, from the personas helper's tables when they exist."""
    if "person_features" not in snap.tables and "personas" not in snap.tables:
        return None

    def build() -> pd.Series | None:
        for table in ("personas", "person_features"):
            if table not in snap.tables:
                continue
            cols = set(snap.query(f"SELECT * FROM \"{table}\" LIMIT 0").columns)
            name = next((c for c in ("persona", "persona_name", "name") if c in cols), None)
            if "person_id" in cols and name:
                m = snap.query(f'SELECT person_id, "{name}" AS persona FROM "{table}"')
                return m.dropna().drop_duplicates("person_id").set_index("person_id").persona.astype(str)
        return None

    return snap.remember(("persona_map",), build)


@prerender_parts
def prerender_parts_of_views(snap: Snapshot) -> list[Any]:
    """The overview, journey, questions, live, people and funnel parts to build once per snapshot."""
    if not snap.has_events:
        return []
    steps: list[Any] = [lambda p=p: overview(snap, p) for p in PERIODS]
    steps += [lambda: journey(snap), lambda: questions(snap), lambda: channels(snap),
              lambda: store_moments(snap, None, None, 100)]
    if not snap.episodes.empty:
        steps += [lambda: person_summary(snap), lambda: paths_index(snap), lambda: _events_by_person(snap),
                  lambda: _positions_by_person(snap, "episodes"), lambda: _positions_by_person(snap, "sessions")]
    if len(snap.report.funnel_steps) >= 2:
        steps.append(lambda: funnel_result(snap, list(snap.report.funnel_steps), "ordered", 7.0))
    return steps

