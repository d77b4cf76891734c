"""Journey commands: sessions, journey-map, funnel, heatmap, faq, touchpoints, keywords, report."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from micromoments.cli._app import CONFIG_OPTION, DB_OPTION, app, console, friendly_errors

OUTPUT_OPTION = typer.Option(None, "--output", "-o", help="Also write the full result to this CSV file.")
LIMIT_OPTION = typer.Option(20, help="Rows to print.")


def _journey(db: Optional[Path], config_path: Optional[Path]) -> tuple[Any, Any, Any]:
    from micromoments.config import load_config
    from micromoments.journey.pipeline import JourneySettings, build_journey, load_events
    from micromoments.store import open_configured

    cfg = load_config(config_path)
    store = open_configured(cfg, db)
    events, has_moments = load_events(store)
    if not has_moments:
        console.print("[yellow]note:[/] no event_moments table yet; moment columns are empty (run classification first).")
    return store, build_journey(events, JourneySettings.from_config(cfg), con=store.ibis), cfg


def _show(frame: Any, title: str, limit: int, output: Optional[Path]) -> None:
    from micromoments.cli.tables import frame_table

    console.print(frame_table(frame, title, limit, width=console.width))
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(output, index=False)
        console.print(f"wrote {output}")


@app.command("sessions")
@friendly_errors
def sessions_cmd(limit: int = LIMIT_OPTION, output: Optional[Path] = OUTPUT_OPTION,
                 db: Optional[Path] = DB_OPTION, config_path: Optional[Path] = CONFIG_OPTION) -> None:
    """Sessions per person (inactivity gap from micromoments.toml, default 30 min), with their stage."""
    store, j, _ = _journey(db, config_path)
    frame = store.ibis.execute(j.sessions.order_by(["person_id", "session_no"]))
    _show(frame, "sessions", limit, output)


@app.command("journey-map")
@friendly_errors
def journey_map_cmd(paths: bool = typer.Option(False, help="Show the most common paths instead."),
                    limit: int = LIMIT_OPTION, output: Optional[Path] = OUTPUT_OPTION,
                    db: Optional[Path] = DB_OPTION, config_path: Optional[Path] = CONFIG_OPTION) -> None:
    """Stage × moment: volumes, both conversion rates and median time to the next stage (or --paths).

    `same_session_rate`: share of the moments followed by a purchase in the same visit;
    `window_rate`: followed by one within `[journey] conversion_window_days` (default 7).
    """
    from micromoments.journey.conversion import purchases, window_days_of, with_conversions
    from micromoments.journey.maps import journey_map, top_paths
    from micromoments.journey.vocab import vocabulary_from_config

    store, j, cfg = _journey(db, config_path)
    ep = with_conversions(j.episodes, purchases(j.sessionized, vocabulary_from_config(cfg)), window_days_of(cfg))
    expr = top_paths(j.episodes) if paths else journey_map(ep).order_by(["stage", "moment"])
    _show(store.ibis.execute(expr), "paths" if paths else "journey map", limit, output)


@app.command("funnel")
@friendly_errors
def funnel_cmd(
    steps: str = typer.Option(..., help="Comma-separated steps: event names, or moment types with --by moment "
                                        "(mix with moment:buy / event:Order Completed)."),
    mode: str = typer.Option("ordered", help="ordered, strict or unordered."),
    window: Optional[float] = typer.Option(None, help="Conversion window in days, counted from the first step "
                                                      "(default: [journey] conversion_window_days, 7)."),
    by: str = typer.Option("event", help="event or moment."),
    breakdown: Optional[str] = typer.Option(None, help="Column to break down by: channel, moment, device_type, ..."),
    limit: int = LIMIT_OPTION, output: Optional[Path] = OUTPUT_OPTION,
    db: Optional[Path] = DB_OPTION, config_path: Optional[Path] = CONFIG_OPTION,
) -> None:
    """People per funnel step, conversion, drop-off and time to convert (PostHog semantics)."""
    from micromoments.journey.conversion import window_days_of
    from micromoments.journey.funnels import funnel

    store, j, cfg = _journey(db, config_path)
    chosen = [s.strip() for s in steps.split(",") if s.strip()]
    _warn_unknown_steps(store, j, chosen, by)
    days = window if window is not None else window_days_of(cfg)  # one configured window: CLI, report, app
    expr = funnel(j.sessionized, chosen, mode=mode,  # type: ignore[arg-type]
                  window=dt.timedelta(days=days), by=by, breakdown=breakdown)  # type: ignore[arg-type]
    frame = store.ibis.execute(expr.order_by(["breakdown", "step"]))
    if breakdown is None and "breakdown" in frame:
        frame = frame.drop(columns=["breakdown"])
    _show(frame, f"funnel within {days:g} days of the first step", limit, output)


def _warn_unknown_steps(store: Any, j: Any, steps: list[str], by: str) -> None:
    """A step no event (or moment) in the store has would silently give 0 people: warn, with the
    closest names the store holds."""
    import difflib

    t = j.sessionized
    known = {
        "event": {str(v) for v in store.ibis.execute(t.select("event").distinct()).event.dropna()},
        "moment": {str(v) for v in store.ibis.execute(t.select("moment").distinct()).moment.dropna()}
        if "moment" in t.columns else set(),
    }
    for step in steps:
        kind, _, name = step.partition(":") if step.split(":", 1)[0] in ("event", "moment") else (by, "", step)
        names = known.get(kind, set())
        if name in names:
            continue
        close = difflib.get_close_matches(name, sorted(names), n=3, cutoff=0.5) or difflib.get_close_matches(
            name.lower(), sorted(n.lower() for n in names), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else \
            f"; the store has {len(names):,} {kind} names (micromoments sessions shows them)"
        console.print(f"[bold yellow]warning:[/] no {kind} named {name!r} in the store: "
                      f"that step will have 0 people{hint}", highlight=False)


@app.command("heatmap")
@friendly_errors
def heatmap_cmd(limit: int = LIMIT_OPTION, output: Optional[Path] = OUTPUT_OPTION,
                db: Optional[Path] = DB_OPTION, config_path: Optional[Path] = CONFIG_OPTION) -> None:
    """Peak engagement: events per moment type × weekday (0 = Monday) × hour, in local time."""
    from micromoments.journey.heatmap import heatmap_for

    store, j, _ = _journey(db, config_path)
    frame = store.ibis.execute(heatmap_for(j.sessionized)).sort_values("events", ascending=False)
    _show(frame, "busiest hours", limit, output)


@app.command("faq")
@friendly_errors
def faq_cmd(limit: int = LIMIT_OPTION, output: Optional[Path] = OUTPUT_OPTION,
            db: Optional[Path] = DB_OPTION, config_path: Optional[Path] = CONFIG_OPTION) -> None:
    """Question and long-tail search themes, with content gaps (asked often, rarely converting)."""
    from micromoments.journey.faq import faq_for
    from micromoments.journey.vocab import vocabulary_from_config

    store, j, cfg = _journey(db, config_path)
    _show(faq_for(j.sessionized, store.ibis, vocabulary_from_config(cfg)), "FAQ themes", limit, output)


@app.command("touchpoints")
@friendly_errors
def touchpoints_cmd(kind: str = typer.Option("page", help="page, content or channel."),
                    min_sessions: int = typer.Option(20, help="Only test touchpoints with this many sessions."),
                    limit: int = LIMIT_OPTION, output: Optional[Path] = OUTPUT_OPTION,
                    db: Optional[Path] = DB_OPTION, config_path: Optional[Path] = CONFIG_OPTION) -> None:
    """Engagement, exit rate and conversion per touchpoint; flags those that peak or falter."""
    from micromoments.errors import InputError
    from micromoments.journey.touchpoints import flag_touchpoints, touchpoints

    if kind not in ("page", "content", "channel"):
        raise InputError(f"unknown touchpoint kind '{kind}'", where="--kind", hint="use page, content or channel")
    store, j, _ = _journey(db, config_path)
    frame = flag_touchpoints(store.ibis.execute(touchpoints(j.sessionized, kind)), min_sessions=min_sessions)  # type: ignore[arg-type]
    cols = ["touchpoint", "flag", "why", "sessions", "views", "exit_rate", "conversion_rate", "views_per_session",
            "p_conversion", "p_exit"]
    _show(frame[cols], "touchpoints", limit, output)


@app.command("episode-agreement")
@friendly_errors
def episode_agreement_cmd(
    truth: Path = typer.Option(..., "--truth", help="Ground truth per event: messageId, episode_id, episode_moment "
                                                    "(the demo's data/truth_events.csv)."),
    db: Optional[Path] = DB_OPTION, config_path: Optional[Path] = CONFIG_OPTION,
) -> None:
    """Score the detected moment episodes against labelled episodes (type agreement, boundary ARI)."""
    import pandas as pd

    from micromoments.errors import InputError
    from micromoments.journey.agreement import detected_membership, score_episodes

    if not truth.exists():
        raise InputError("file not found", where=str(truth), hint="pass the truth_events.csv the demo wrote")
    store, j, cfg = _journey(db, config_path)
    detected = store.ibis.execute(detected_membership(j.sessionized, j.episodes, cfg.journey.episode_gap_minutes))
    result = score_episodes(detected, pd.read_csv(truth, dtype=str))
    console.print(f"events compared: {result.events_compared:,} in {result.true_episodes:,} true episodes")
    console.print(f"episode type agreement (majority per true episode): {result.episode_type_agreement:.1%}")
    console.print(f"event type agreement: {result.event_type_agreement:.1%}  "
                  + "  ".join(f"{k} {v:.1%}" for k, v in result.by_moment.items()))
    console.print(f"boundary agreement (adjusted Rand index): {result.boundary_ari:.3f}")


@app.command("keywords")
@friendly_errors
def keywords_cmd(
    input: Path = typer.Option(..., "--input", "-i", help="CSV with one keyword per row (header required)."),
    keyword_column: str = typer.Option("keyword", help="Column holding the keywords."),
    volume_column: Optional[str] = typer.Option(None, help="Column holding monthly search volume, if any."),
    limit: int = LIMIT_OPTION, output: Optional[Path] = OUTPUT_OPTION,
) -> None:
    """Keyword research: intent per keyword, long-tail / question / voice flags, topic clusters."""
    from micromoments.journey.keywords import keyword_research, read_keywords

    frame = keyword_research(read_keywords(input), keyword_column=keyword_column,
                             volume_column=volume_column, where=str(input))
    _show(frame, "keywords", limit, output)


@app.command("report")
@friendly_errors
def report_cmd(output: Path = typer.Option(Path("report.html"), "--output", "-o", help="HTML file to write."),
               db: Optional[Path] = DB_OPTION, config_path: Optional[Path] = CONFIG_OPTION) -> None:
    """Write the self-contained HTML report (overview, moments, journey map, paths, funnel, peaks, FAQ, touchpoints)."""
    from micromoments.config import load_config
    from micromoments.report import build_report
    from micromoments.store import open_configured

    cfg = load_config(config_path)
    path = build_report(open_configured(cfg, db), output, cfg)
    console.print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
