"""`micromoments demo`: the whole main job on generated data, ending with a report."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from micromoments.cli._app import CONFIG_OPTION, app, console, friendly_errors


@app.command()
@friendly_errors
def demo(
    users: int = typer.Option(2000, help="People to simulate."),
    days: int = typer.Option(30, help="Days of activity."),
    out: Path = typer.Option(Path("out"), help="Folder for the data, the store and the report."),
    seed: int = typer.Option(42, help="Random seed (same seed, same data)."),
    config_path: Optional[Path] = CONFIG_OPTION,
) -> None:
    """Generate demo data, ingest it, classify every interaction, and write the HTML report."""
    from micromoments.cli.ingest import byte_progress
    from micromoments.config import load_config
    from micromoments.demo import generate
    from micromoments.intent import classify_store
    from micromoments.report import build_report
    from micromoments.store import Store
    from micromoments.store.ingest import ingest_file

    cfg = load_config(config_path)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    with console.status("[bold]1/6 generating demo data…"):
        paths = generate(out / "data", users=users, days=days, seed=seed)
    console.print(f"1/6 generated {paths.n_events:,} events for {users:,} people over {days} days → {paths.events}")

    db = out / "micromoments.duckdb"
    for suffix in ("", ".wal"):  # a demo starts from a clean store
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    store = Store(db)
    with byte_progress() as bar:
        task = bar.add_task("2/6 ingesting", total=None)
        result = ingest_file(store, paths.events, config=cfg,
                             on_progress=lambda done, total: bar.update(task, completed=done, total=total))
    console.print(f"2/6 ingested: {result.summary()}; {store.count('identities'):,} ids stitched into people")

    with console.status("[bold]3/6 classifying interactions into micro-moments…"):
        stats = classify_store(store, cfg)
    console.print(f"3/6 classified: {stats}")

    with console.status("[bold]4/6 personas: features, CLV and clusters…"):
        from micromoments.personas.build import build_personas

        personas = build_personas(store, cfg, stores_path=paths.stores)
    console.print(f"4/6 personas: {personas.summary()}: " + "; ".join(personas.descriptions.persona))

    with console.status("[bold]5/6 predict: next-moment and propensity models (quick settings)…"):
        from micromoments.errors import MicromomentsError
        from micromoments.predict.pipeline import train_from_store

        t_pred = time.perf_counter()
        try:
            _, pm = train_from_store(store, cfg, out / "predict_model", max_iter=40, max_train_rows=20_000)
            f3 = lambda v: "—" if v is None else f"{v:.3f}"  # noqa: E731
            console.print(f"5/6 predict: next-moment macro AUC {f3(pm['next_moment'].get('model'))} (repeat-last "
                          f"{f3(pm['next_moment'].get('repeat_last'))}), buy-this-session AUC "
                          f"{f3(pm['targets']['buy_session']['auc'])} in {time.perf_counter() - t_pred:.0f} s "
                          f"→ {out / 'predict_model'}")
        except MicromomentsError as exc:  # too little demo data to train on: the rest still runs
            console.print(f"5/6 predict: skipped ({exc})")

    from micromoments.demo.experiment import NAME, simulate_experiment

    ex = simulate_experiment(store, seed=seed)  # so the experiments page and the report show a verdict
    console.print(f"   experiment '{NAME}': {ex['people']:,} people assigned, {ex['exposures']:,} shown the how-to "
                  f"article, {ex['clicks']:,} clicks (simulated effect: {ex['credited']:,} purchases credited)")

    with console.status("[bold]   search console: a Search Console export for the demo site…"):
        from micromoments.demo.search_console import write_search_console
        from micromoments.seo import classify_search
        from micromoments.store.search_load import load_search_files

        sc = write_search_console(out / "data" / "search-console", days=days, seed=seed, draws=20_000,
                                  daily_impressions=15 * users)
        loaded = load_search_files(store.duck, [sc.bulk])
        classified = classify_search(store.duck, cfg)
    console.print(f"   search console: {sc.rows:,} rows of searchdata_url_impression ({sc.impressions:,} impressions, "
                  f"{classified['queries']:,} queries classified with their landing page) loaded: {loaded.summary()}; "
                  f"`micromoments seo --db {db}` or the UI export {sc.ui_zip}")

    with console.status("[bold]6/6 building the journey analytics and the report…"):
        report = build_report(store, out / "report.html", cfg)
    store.close()
    console.print(f"6/6 report written in {time.perf_counter() - started:.0f} s in all")
    console.print(f"[bold green]store:[/]  {db}")
    console.print(f"[bold green]report:[/] {report.resolve()}")
