"""The Typer app and the helpers every command shares."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from micromoments.errors import MicromomentsError

app = typer.Typer(
    name="micromoments",
    help="Find, map, act on and measure the micro-moments in customer journeys.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(stderr=False, soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def _print_version(value: bool) -> None:
    if value:
        from micromoments import __version__

        console.print(f"micromoments {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                 help="Print the version and exit."),
    engine: str | None = typer.Option(None, "--engine", help="duckdb or spark: the engine every command runs on "
                                                            "(default: \\[store] engine in micromoments.toml)."),
) -> None:
    """Find, map, act on and measure the micro-moments in customer journeys."""
    from micromoments.config import set_engine_override

    try:
        set_engine_override(engine)
    except MicromomentsError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)


F = TypeVar("F", bound=Callable[..., Any])


def friendly_errors(func: F) -> F:
    """Print a `MicromomentsError` in one line and exit 2, instead of a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except MicromomentsError as exc:
            # Escaped: messages name config sections like "[server]", which Rich would eat as markup.
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            sys.exit(exc.exit_code)

    return wrapper  # type: ignore[return-value]


DB_OPTION = typer.Option(None, "--db", help="DuckDB store file (default: micromoments.duckdb or the one in "
                         "micromoments.toml); with --engine spark, the lake folder or URL.")

CONFIG_OPTION = typer.Option(None, "--config", help="Path to micromoments.toml.")
