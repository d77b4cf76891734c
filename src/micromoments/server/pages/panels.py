"""Pages over the other capabilities' data: personas, playbooks & content, experiments & attribution.

Each reads its module or tables when they exist (`personas`/`persona_descriptions` from
`micromoments personas build`; playbooks from `activation`; `decisions`/`exposures`/`outcomes`
written by the live path; `measure.experiments` and `measure.attribution`) and otherwise says what
to run to fill it.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from micromoments.errors import MicromomentsError
from micromoments.frames import records
from micromoments.journey.conversion import explanation, window_text
from micromoments.journey.people import anonymous_note, counts_as_person
from micromoments.report import charts
from micromoments.report.markup import plot_text
from micromoments.server.pages import views
from micromoments.server.pages.analytics import Snapshot
from micromoments.server.pages.prerender import prerender_parts

NO_PERSONAS = "No personas yet: run <code>micromoments personas build</code>."


# --- personas ---------------------------------------------------------------------------------------
@prerender_parts
def prerender_parts_of_panels(snap: Snapshot) -> list[Any]:
    """The personas and attribution parts to build once per snapshot."""
    return [lambda: personas(snap), lambda: attribution(snap)] if snap.has_events else []


def personas(snap: Snapshot) -> dict[str, Any]:
    """Persona cards (`persona_descriptions`) and, per persona, its moment mix and commonest paths."""
    pmap = views.persona_map(snap)
    if pmap is None or pmap.empty:
        return {"empty": NO_PERSONAS}

    def build() -> dict[str, Any]:
        cards: list[dict[str, Any]] = []
        if "persona_descriptions" in snap.tables:
            desc = snap.query("SELECT * FROM persona_descriptions")
            desc = desc.sort_values("people", ascending=False) if "people" in desc else desc
            cards = records(desc)
        else:
            counts = pmap.value_counts()
            cards = [{"persona": p, "people": int(n), "share": n / len(pmap)} for p, n in counts.items()]
        ep = snap.episodes
        paths = snap.person_paths
        # People as every headline counts them (journey.people), whatever the descriptions table says.
        flags = _is_person(snap)
        is_person = pd.Series(~pmap.index.isin(flags.index[~flags]), index=pmap.index)
        for c in cards:
            who = pmap[pmap == str(c["persona"])].index
            c["people"] = int(is_person[who].sum())
            c["anonymous"] = int(len(who)) - c["people"]
            c["share"] = c["people"] / max(int(is_person.sum()), 1)
            mine = ep[ep.person_id.isin(who)] if not ep.empty else ep
            c["moments"] = int(len(mine))
            c["same_session_rate"] = float(mine.converted_session.mean()) if len(mine) else None
            c["window_rate"] = float(mine.converted_window.mean()) if len(mine) else None
            top = paths[paths.index.isin(who)].value_counts().head(3)
            c["top_paths"] = [{"path": p, "people": int(n)} for p, n in top.items()]
            try:
                c["trait_list"] = list(json.loads(c.get("traits") or "{}").items())[:5]
            except (TypeError, ValueError):
                c["trait_list"] = []
        days = snap.report.conversion_window_days
        anonymous = int((~is_person).sum())
        out: dict[str, Any] = {"cards": cards, "people": int(is_person.sum()), "anonymous": anonymous,
                               "people_note": anonymous_note(anonymous), "window": window_text(days),
                               "explanation": explanation(days)}
        if not ep.empty:
            out["mix"] = views.chart(snap, "persona-mix", lambda: _persona_mix_chart(ep, pmap))
        return out

    return snap.remember(("personas",), build)


def _is_person(snap: Snapshot) -> pd.Series:
    """person_id -> counts as a person (`journey.people.counts_as_person`), once per snapshot."""
    return snap.remember(("is_person",), lambda: counts_as_person(snap.db.table("events"), snap))


def _persona_mix_chart(ep: pd.DataFrame, pmap: pd.Series) -> tuple[go.Figure, list[str]]:
    t = ep.assign(persona=ep.person_id.map(pmap)).dropna(subset=["persona"])
    share = t.groupby(["persona", "moment"]).size().unstack(fill_value=0)
    share = share.div(share.sum(axis=1), axis=0)
    fig = go.Figure()
    for m in [m for m in views.MOMENTS if m in share.columns] + sorted(set(share.columns) - set(views.MOMENTS)):
        fig.add_trace(go.Bar(y=[plot_text(p) for p in share.index], x=share[m], name=plot_text(charts.moment_name(m)), orientation="h",
                             marker_color=charts.COLORS.get(m, "#9D755D")))
    fig.update_layout(**{**charts.LAYOUT, "height": max(260, 46 * len(share) + 100),
                         "margin": dict(l=200, r=20, t=30, b=40)}, barmode="stack",
                      xaxis=dict(tickformat=".0%", title="share of the persona's micro-moments"),
                      legend=dict(orientation="h", y=1.12))
    conv = t.groupby("persona").converted_window.mean().sort_values()
    notes = [f"<b>{conv.index[-1]}</b> buys most often after a micro-moment "
             f"({views.pct(conv.iloc[-1])} of its moments are followed by a purchase within the conversion window); "
             f"<b>{conv.index[0]}</b> least ({views.pct(conv.iloc[0])})."]
    return fig, notes


# --- playbooks & content ----------------------------------------------------------------------------
def _all_playbooks(activator: Any | None, config: Any | None) -> list[Any]:
    """Every playbook in the playbooks directory, disabled ones included."""
    try:
        from micromoments.activation.playbooks import load_playbooks
    except ModuleNotFoundError:
        return list(getattr(activator, "playbooks", []) or [])
    from micromoments.activation.engine import examples_dir

    act = getattr(config, "activation", None)
    directory = getattr(act, "playbooks_dir", "") or examples_dir() / "playbooks"
    from micromoments.activation.playbooks import playbook_files

    try:
        key = (str(directory), tuple((str(f), f.stat().st_mtime_ns) for f in playbook_files(directory)))
        if key not in _PLAYBOOKS:  # parsing YAML costs ~100 ms: once per version of the files
            _PLAYBOOKS.clear()
            _PLAYBOOKS[key] = load_playbooks(directory)
        return _PLAYBOOKS[key]
    except (MicromomentsError, OSError):
        return list(getattr(activator, "playbooks", []) or [])


_PLAYBOOKS: dict[tuple, list[Any]] = {}


def performance(snap: Snapshot, by: str) -> pd.DataFrame:
    """Per playbook (or content item): decisions, exposures, clicks, conversions, revenue, CTR, from
    the live activation logs (read per request: they are small and change all the time)."""
    if not {"decisions", "exposures", "outcomes"} <= snap.tables:
        return pd.DataFrame()
    col = "playbook" if by == "playbook" else "content_id"
    return snap.query(f"""
        WITH d AS (SELECT decision_id, {col} AS key, status FROM decisions WHERE {col} IS NOT NULL),
        x AS (SELECT decision_id, count(*) AS n FROM exposures
              WHERE delivery_status IS NULL OR delivery_status = 'delivered' GROUP BY 1),
        o AS (SELECT decision_id, count(*) FILTER (WHERE kind = 'click') AS clicks,
                     count(*) FILTER (WHERE kind = 'conversion') AS conversions, sum(revenue) AS revenue
              FROM outcomes WHERE decision_id IS NOT NULL GROUP BY 1)
        SELECT d.key, count(*) AS decisions, count(*) FILTER (WHERE d.status = 'chosen') AS chosen,
               coalesce(sum(x.n), 0)::BIGINT AS exposures, coalesce(sum(o.clicks), 0)::BIGINT AS clicks,
               coalesce(sum(o.conversions), 0)::BIGINT AS conversions, coalesce(sum(o.revenue), 0)::DOUBLE AS revenue
        FROM d LEFT JOIN x USING (decision_id) LEFT JOIN o USING (decision_id)
        GROUP BY 1 ORDER BY decisions DESC""").assign(
        ctr=lambda f: f.clicks / f.exposures.where(f.exposures > 0),
        conversion_rate=lambda f: f.conversions / f.exposures.where(f.exposures > 0))


def playbooks(snap: Snapshot, activator: Any | None, config: Any | None) -> dict[str, Any]:
    pbs = _all_playbooks(activator, config)
    live = {p.name for p in getattr(activator, "playbooks", [])} if activator is not None else None
    perf = performance(snap, "playbook")
    by_pb = perf.set_index("key").to_dict("index") if not perf.empty else {}
    rows = []
    for p in pbs:
        enabled = (p.name in live) if live is not None else bool(getattr(p, "enabled", True))
        action = getattr(p, "action", None)
        rows.append({"name": p.name, "description": getattr(p, "description", ""), "enabled": enabled,
                     "channel": getattr(action, "channel", ""), "content": list(getattr(action, "content", []) or []),
                     "moments": list(getattr(getattr(p, "when", None), "moments", []) or []),
                     "source": getattr(p, "source", ""), **by_pb.get(p.name, {})})
    items = performance(snap, "content")
    out: dict[str, Any] = {"playbooks": rows, "items": records(items),
                           "live": activator is not None}
    if not rows:
        out["empty"] = "No playbooks found: add YAML files to <code>[activation] playbooks_dir</code>."
    if not perf.empty:
        out["chart"] = views.figure_html(_perf_chart(perf), "chart-playbooks")
    return out


def _perf_chart(perf: pd.DataFrame) -> go.Figure:
    f = perf.head(15).iloc[::-1]
    fig = go.Figure()
    f = f.assign(key=[plot_text(k) for k in f.key])
    fig.add_trace(go.Bar(y=f.key, x=f.exposures, name="exposures", orientation="h", marker_color="#9DB4CC"))
    fig.add_trace(go.Bar(y=f.key, x=f.clicks, name="clicks", orientation="h", marker_color="#4C78A8"))
    fig.add_trace(go.Bar(y=f.key, x=f.conversions, name="conversions", orientation="h", marker_color="#2CA02C"))
    fig.update_layout(**{**charts.LAYOUT, "height": max(260, 40 * len(f) + 100),
                         "margin": dict(l=200, r=20, t=30, b=40)}, barmode="group", legend=dict(orientation="h", y=1.12))
    return fig


def set_playbook_enabled(name: str, enabled: bool, activator: Any | None, config: Any | None) -> str:
    """Turn a playbook on or off in the running activator (until the server restarts; set
    `enabled:` in its YAML file to make it permanent)."""
    if activator is None:
        return "no live activator runs in this server: set `enabled:` in the playbook's YAML file instead"
    if hasattr(activator, "set_playbook_enabled"):
        activator.set_playbook_enabled(name, enabled)
        return f"playbook '{name}' {'enabled' if enabled else 'disabled'}"
    found = {p.name: p for p in _all_playbooks(activator, config)}
    if name not in found:
        return f"no playbook named '{name}'"
    # The activator keeps its active playbooks in `playbooks` (and their quiet hours in `_quiet`).
    with activator._lock:
        current = [p for p in activator.playbooks if p.name != name]
        if enabled:
            pb = found[name]
            current.append(pb)
            quiet = getattr(activator, "_quiet", None)
            if isinstance(quiet, dict) and name not in quiet:
                from micromoments.activation.limits import QuietHours

                quiet[name] = (QuietHours.parse(pb.limits.quiet_hours) if pb.limits.quiet_hours is not None
                               else activator.default_quiet)
        activator.playbooks = current
    return f"playbook '{name}' {'enabled' if enabled else 'disabled'} (until the server restarts)"


# --- experiments & attribution ---------------------------------------------------------------------
def verdict(results: pd.DataFrame, experiment: Any) -> tuple[str, str]:
    """A plain-words verdict and its tone: ("B wins on conversion; the guardrail is fine", "win")."""
    if results.empty:
        return "Not enough data yet.", "wait"
    primary = getattr(experiment, "primary_metric", results.metric.iloc[0])
    guards = [g for g in getattr(experiment, "guardrails", []) or []]
    prim = results[results.metric == primary]
    winners = prim[(prim.significant) & (prim.lift > 0)]
    losers = prim[(prim.significant) & (prim.lift < 0)]
    if not winners.empty:
        best = winners.sort_values("lift").iloc[-1]
        text, tone = f"{best.variant} wins on {primary} ({best.lift:+.1%})", "win"
    elif not losers.empty:
        worst = losers.sort_values("lift").iloc[0]
        text, tone = f"{worst.variant} is worse on {primary} ({worst.lift:+.1%}): keep the control", "bad"
    else:
        ctw = prim.chance_to_win.max() if "chance_to_win" in prim and len(prim) else float("nan")
        text, tone = (f"no clear winner on {primary} yet" + (f" (best chance to win {ctw:.0%})" if pd.notna(ctw) else "")
                      + "; keep it running"), "wait"
    if guards:
        g = results[results.metric.isin(guards)]
        hurt = g[(g.significant) & (g.lift < 0)]
        if hurt.empty:
            text += "; the guardrail is fine" if len(guards) == 1 else "; the guardrails are fine"
        else:
            text += "; but the guardrail " + ", ".join(sorted(set(hurt.metric))) + " got worse"
            tone = "bad"
    return text[0].upper() + text[1:] + ".", tone


def _lift_chart(results: pd.DataFrame) -> go.Figure:
    r = results.assign(label=results.metric + " · " + results.variant.astype(str)).iloc[::-1]
    fig = go.Figure(go.Scatter(
        x=r.lift, y=[plot_text(v) for v in r.label], mode="markers", marker=dict(size=11, color=["#2CA02C" if s and l > 0 else "#E45756"
                                                                          if s else "#4C78A8" for s, l in zip(r.significant, r.lift)]),
        error_x=dict(type="data", symmetric=False, array=r.lift_ci_high - r.lift, arrayminus=r.lift - r.lift_ci_low),
        hovertemplate="%{y}: %{x:+.1%}<extra></extra>"))
    fig.add_vline(x=0, line_color="#888")
    fig.update_layout(**{**charts.LAYOUT, "height": max(200, 50 * len(r) + 90), "margin": dict(l=200, r=20, t=20, b=50)},
                      xaxis=dict(tickformat="+.0%", title="relative lift vs control (95% interval)"))
    return fig


def experiments(snap: Snapshot, config: Any | None) -> dict[str, Any]:
    out: dict[str, Any] = {"experiments": []}
    exps = list(getattr(config, "experiments", []) or [])
    if not exps and "assignments" in snap.tables:  # e.g. the demo's test: read back from the store
        from micromoments.demo.experiment import stored_experiments

        exps = stored_experiments(snap.query)
    has_assign = "assignments" in snap.tables and int(snap.query("SELECT count(*) AS n FROM assignments").n[0]) > 0
    if not exps:
        out["exp_empty"] = ("No experiments configured: add an <code>[[experiments]]</code> table to micromoments.toml "
                            "(name, variants, primary_metric, guardrails).")
    elif not has_assign:
        out["exp_empty"] = "No assignments yet: the live path records them when <code>/v1/decide</code> assigns people."
    else:
        from micromoments.measure.experiments import analyze_store

        for e in exps:
            entry: dict[str, Any] = {"name": e.name, "hypothesis": e.hypothesis}
            try:
                with snap.lock:
                    a = analyze_store(snap.db, e)
            except MicromomentsError as exc:
                entry["error"] = str(exc)
                out["experiments"].append(entry)
                continue
            res = a.results
            entry.update(verdict=verdict(res, e), srm=a.srm, counts=a.srm_counts, notes=a.notes,
                         rows=records(res),
                         chart=views.figure_html(_lift_chart(res), f"chart-exp-{len(out['experiments'])}")
                         if not res.empty else "")
            out["experiments"].append(entry)
    out.update(attribution(snap))
    return out


def attribution(snap: Snapshot) -> dict[str, Any]:
    """Conversions credited to channels by every model of `measure.attribution` (once per snapshot)."""
    if snap.journey is None:
        return {"att_empty": "Attribution appears here once the analytics are computed (a few seconds after "
                             "start-up): reload then." if snap.partial else "The store holds no events yet."}
    try:
        from micromoments.measure import attribution as at
    except ModuleNotFoundError:
        return {"att_empty": "Attribution is not installed."}

    def build() -> dict[str, Any]:
        from micromoments.journey.sessions import sessions
        from micromoments.report.measure import MODEL_NAMES, attribution_chart

        s = snap.execute(sessions(snap.journey.sessionized).select(
            "person_id", "session_no", "channel", "conversions", "revenue"))
        paths = at.store_paths(s)
        if paths.conversions.sum() == 0:
            return {"att_empty": "No conversions yet."}
        table = at.attribute(paths)
        wide = table.pivot_table(index="channel", columns="model", values="conversions").reset_index()
        models = [m for m in MODEL_NAMES if m in wide.columns]
        mk = table[table.model == "markov"].set_index("channel").conversions
        lt = table[table.model == "last_touch"].set_index("channel").conversions
        gain = (mk - lt).sort_values()
        note = (f"Last touch under-credits <b>{gain.index[-1]}</b> by {gain.iloc[-1]:,.0f} conversions "
                f"compared with the data-driven Markov model, and over-credits <b>{gain.index[0]}</b> "
                f"by {-gain.iloc[0]:,.0f}.")
        return {"att_chart": views.figure_html(attribution_chart(table), "chart-attribution"),
                "att_models": [(m, MODEL_NAMES[m]) for m in models], "att_rows": records(wide),
                "att_note": note}

    try:
        return snap.remember(("attribution",), build)
    except MicromomentsError as exc:
        return {"att_empty": str(exc)}
