"""The report's extension point: the `Section` every part of the report is made of, and the registry
of section providers.

A provider is `fn(store, config) -> list[Section]`, registered with `@section_provider(order)`; the
report (`report.build`) asks every provider for its sections in `order` and renders them after its own
core sections. This module imports neither `report.build` nor the providers, so neither side imports
the other.

>>> @section_provider(order=99)
... def hello(store, config=None):
...     return [Section("hello", "Hello", intro="One more section.")]
>>> [p.__name__ for p in providers()][-1]
'hello'
>>> unregister(hello)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Section:
    """One section of the report: a title, an intro, a figure (HTML), notes, a table and KPIs.

    `intro`, `note` and `notes` are text with a few fixed tags (`markup.rich` escapes the data in
    them); `figure` and `table` are HTML that their builders assemble from Plotly's output and
    `html.escape`d cells only (the report marks them as HTML as they are).
    """

    id: str
    title: str
    intro: str = ""
    figure: str = ""
    notes: list[str] = field(default_factory=list)
    note: str = ""
    table: str = ""
    kpis: list[tuple[str, str]] = field(default_factory=list)


SectionProvider = Callable[..., list[Section]]
_PROVIDERS: list[tuple[int, SectionProvider]] = []


def figure_html(fig: Any, div_id: str) -> str:
    """A Plotly figure as a `<div>` drawn by the report's single inlined plotly.js."""
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                       config={"displaylogo": False, "responsive": True})


def section_provider(order: int) -> Callable[[SectionProvider], SectionProvider]:
    """Register `fn(store, config) -> list[Section]`; lower `order` comes first in the report."""

    def register(fn: SectionProvider) -> SectionProvider:
        if all(p is not fn for _, p in _PROVIDERS):
            _PROVIDERS.append((order, fn))
            _PROVIDERS.sort(key=lambda item: item[0])
        return fn

    return register


def unregister(fn: SectionProvider) -> None:
    """Remove a provider (tests and plugins that replace a built-in)."""
    _PROVIDERS[:] = [(o, p) for o, p in _PROVIDERS if p is not fn]


def providers() -> list[SectionProvider]:
    """The registered providers in report order."""
    return [p for _, p in _PROVIDERS]
