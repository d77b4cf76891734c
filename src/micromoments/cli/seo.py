"""`micromoments seo`: the micro-moments in your Search Console and Bing Webmaster exports."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from micromoments.cli._app import CONFIG_OPTION, app, console, friendly_errors


def _pct(x: Any) -> str:
    try:
        return "—" if x is None or x != x else f"{100 * float(x):.1f}%"
    except (TypeError, ValueError):
        return "—"


def _num(x: Any, digits: int = 0) -> str:
    try:
        return "—" if x is None or x != x else f"{float(x):,.{digits}f}"
    except (TypeError, ValueError):
        return "—"


def _say(*objects: Any) -> None:
    # Wrapped at the terminal's width (80 columns when piped), unlike the shared console's default.
    console.print(*objects, soft_wrap=False)


def _table(title: str, columns: list[tuple[str, str]]) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold", pad_edge=False, box=None, padding=(0, 1))
    for name, justify in columns:
        table.add_column(name, justify=justify, no_wrap=True, overflow="ellipsis",  # type: ignore[arg-type]
                         max_width=34 if justify == "left" else None)
    return table


def print_summary(result: Any, limit: int = 10) -> None:
    """The result as a few narrow tables (readable at 80 columns)."""
    t = result.totals
    if not t or not t.get("impressions"):
        _say("[yellow]no search rows to analyse[/] (were they all quarantined, or filtered by --search-type?)")
        return
    period = f"{t['first_day']:%d %b %Y} – {t['last_day']:%d %b %Y}" if t.get("first_day") == t.get("first_day") \
        and t.get("first_day") is not None else "the export's period"
    _say(f"[bold]{_num(t['impressions'])}[/] impressions, [bold]{_num(t['clicks'])}[/] clicks, CTR "
                  f"{_pct(t['ctr'])}, average position {_num(t['position'], 1)}")
    _say(f"{_num(t['queries'])} queries, {period}")
    _say(f"anonymized queries: {_pct(t['anonymized_share'])} of impressions (counted, never classified)")
    m = _table("By moment", [("moment", "left"), ("impr.", "right"), ("share", "right"), ("clicks", "right"),
                             ("CTR", "right"), ("position", "right"), ("queries", "right")])
    for r in result.by_moment.itertuples():
        m.add_row(escape(str(r.moment)), _num(r.impressions), _pct(r.impression_share), _num(r.clicks), _pct(r.ctr),
                  _num(r.position, 1), _num(r.queries))
    _say(m)
    s = _table("Questions, long tail, voice (share of named queries' impressions)",
               [("style", "left"), ("queries", "right"), ("impr. share", "right"), ("CTR", "right"),
                ("trend / week", "right")])
    for r in result.styles.itertuples():
        slope = result.style_slopes.get(r.style)
        s.add_row(r.style.replace("_", "-"), _num(r.queries), _pct(r.impression_share), _pct(r.ctr),
                  "—" if slope is None else f"{100 * slope:+.2f} pp")
    _say(s)
    if not result.curve.empty:
        pts = [f"{p:.1f}: {_pct(c)}" for p, c in zip(result.curve.position.head(10), result.curve.expected_ctr.head(10))]
        _say("[bold]Expected CTR by position[/] (fitted on this site's own clicks)")
        for k in range(0, len(pts), 5):
            _say("  " + " · ".join(pts[k:k + 5]))
    if not result.below_curve.empty:
        b = _table(f"Below the curve ({len(result.below_curve)} queries; most missed clicks first)",
                   [("query", "left"), ("moment", "left"), ("impr.", "right"), ("CTR", "right"),
                    ("expected", "right"), ("missed", "right")])
        for r in result.below_curve.head(limit).itertuples():
            b.add_row(escape(str(r.query)), escape(str(r.moment)), _num(r.impressions), _pct(r.ctr),
                      _pct(r.expected_ctr), _num(r.missed_clicks))
        _say(b)
    if not result.themes.empty and result.themes.below_curve.any():
        th = _table("Themes below the curve", [("theme", "left"), ("queries", "right"), ("impr.", "right"),
                                               ("CTR", "right"), ("expected", "right"), ("missed", "right")])
        for r in result.themes[result.themes.below_curve].head(5).itertuples():
            th.add_row(escape(str(r.theme)), _num(r.queries), _num(r.impressions), _pct(r.ctr), _pct(r.expected_ctr),
                       _num(r.missed_clicks))
        _say(th)
    if not result.content_gaps.empty:
        g = _table("Content gaps", [("gap", "left"), ("queries", "right"), ("impr.", "right"), ("of moment", "right")])
        for r in result.gap_summary.itertuples():
            g.add_row(r.gap.replace("_", " "), _num(r.queries), _num(r.impressions), _pct(r.share_of_moment))
        _say(g)
    if not result.cannibalisation.empty:
        c = _table(f"Cannibalisation ({len(result.cannibalisation)} queries split across pages)",
                   [("query", "left"), ("pages", "right"), ("impr.", "right"), ("top page clicks", "right")])
        for r in result.cannibalisation.head(5).itertuples():
            c.add_row(escape(str(r.query)), _num(r.pages), _num(r.impressions), _pct(r.top_click_share))
        _say(c)
    for note in result.notes:
        _say(f"[yellow]note:[/] {escape(note)}")


def _cached_stats(store: Any) -> dict[str, int]:
    n = store.count("search_query_moments")
    return {"queries": n, "classified": 0, "cached": n}


@app.command("seo")
@friendly_errors
def seo_command(
    files: Optional[list[Path]] = typer.Argument(None, help="More export files (same as --input).", show_default=False),
    input: Optional[list[Path]] = typer.Option(
        None, "--input", "-i", help="Search Console UI export (zip or its CSVs), bulk export table (Parquet/CSV) or "
                                    "Bing keywords CSV; repeat, or list files after it."),
    db: Optional[Path] = typer.Option(None, "--db", help="Load into this store and analyse all its search data "
                                                         "(without it, the files are analysed in memory)."),
    out: Path = typer.Option(Path("seo-out"), "--out", "-o", help="Folder for the CSV tables."),
    fmt: str = typer.Option("auto", "--format", help="auto, gsc-ui, gsc-bulk or bing."),
    search_type: list[str] = typer.Option(["web"], "--search-type",
                                          help="Search Console search types to keep (web, image, video, news); 'all'."),
    min_impressions: int = typer.Option(100, help="Impressions a query needs to be listed as an opportunity."),
    page_kind: Optional[list[str]] = typer.Option(
        None, "--page-kind", help="KIND=REGEX naming your pages (store, answer, product, category), e.g. store=/shops/."),
    limit: int = typer.Option(10, help="Rows to print per table."),
    config_path: Optional[Path] = CONFIG_OPTION,
) -> None:
    """Classify the queries people already send you into micro-moments and find the opportunities.

    Example: micromoments seo --input Performance-on-Search.zip searchdata_url_impression.parquet --out seo-out
    """
    import ibis

    from micromoments.config import load_config
    from micromoments.errors import InputError
    from micromoments.seo import PageKinds, Thresholds, analyse_search, has_search_data, store_has_search_data
    from micromoments.store.search_load import load_search_files

    cfg = load_config(config_path)
    paths = list(input or []) + list(files or [])
    store = None
    lake = False
    if db is not None:
        from micromoments.store import Store, open_configured

        lake = cfg.store.engine == "spark"  # --db names the lake: load and analyse it on Spark
        store = open_configured(cfg, db, create=bool(paths)) if lake else Store(db)
        ib = store.ibis
    else:
        if not paths:
            raise InputError("no input", where="seo", hint="pass --input FILE (or --db STORE with search data in it)")
        ib = ibis.duckdb.connect()
    try:
        if paths:
            with console.status("[bold]reading the exports…"):
                if lake:
                    from micromoments.seo.lake import load_search_to_lake

                    loaded, stats = load_search_to_lake(store, paths, fmt=fmt, config=cfg)
                else:
                    loaded = load_search_files(ib.con, paths, fmt=fmt)
            _say(f"read {len(paths)} file{'s' if len(paths) != 1 else ''}: {loaded.summary()}")
            for reason, n in sorted(loaded.reasons.items(), key=lambda kv: -kv[1])[:5]:
                _say(f"  [yellow]quarantined[/] {n} × {escape(reason)}")
            if loaded.quarantined:
                _say("  (each with file, line and reason: `micromoments quarantine`"
                              + (f" --db {db})" if db else " after loading with --db)"))
        if not (store_has_search_data(store) if lake else has_search_data(ib.con)):
            raise InputError("no search data", where=str(db or "seo"), hint="pass --input with your exports")
        types = None if [s.lower() for s in search_type] == ["all"] else search_type
        with console.status("[bold]classifying queries and measuring each moment…"):
            result = analyse_search(ib, cfg, thresholds=Thresholds(min_impressions=min_impressions),
                                    page_kinds=PageKinds.with_overrides(page_kind or []), search_types=types,
                                    classify=not lake)
        # On a lake the queries were classified when loaded; without --input, every one is from the cache.
        c = result.classification if not lake else stats if paths else _cached_stats(store)
        _say(f"{c.get('queries', 0):,} distinct queries: {c.get('classified', 0):,} classified, "
                      f"{c.get('cached', 0):,} from the cache")
        print_summary(result, limit)
        written = result.write_csvs(out)
        _say(f"wrote {len(written)} CSV tables to [bold]{escape(str(out))}[/]")
    finally:
        if store is not None:
            store.close()
