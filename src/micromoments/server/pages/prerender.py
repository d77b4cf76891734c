"""The pages' extension point for pre-rendering: each page module registers a function that lists
the parts of its pages worth building right after a snapshot is computed.

`views` and `panels` register here; `mount_pages` hands `prerender` to the analytics cache. This
module imports neither of them, so they need not import each other.

>>> calls = []
>>> @prerender_parts
... def parts(snap):
...     return [lambda: calls.append(snap)]
>>> prerender("snap-1"); calls
['snap-1']
>>> unregister(parts)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

log = logging.getLogger(__name__)
PartsOf = Callable[[Any], Iterable[Callable[[], Any]]]
_PROVIDERS: list[PartsOf] = []


def prerender_parts(fn: PartsOf) -> PartsOf:
    """Register `fn(snapshot) -> [build, ...]`: the zero-argument builds that fill the snapshot's memo."""
    if fn not in _PROVIDERS:
        _PROVIDERS.append(fn)
    return fn


def unregister(fn: PartsOf) -> None:
    """Remove a registered provider (tests and plugins)."""
    if fn in _PROVIDERS:
        _PROVIDERS.remove(fn)


def prerender(snap: Any) -> None:
    """Build every registered part once, so the first visit to each page is as quick as the later
    ones. A failing part is logged and left to its page (which shows the error) instead of failing
    the whole snapshot."""
    for provider in list(_PROVIDERS):
        try:
            parts = list(provider(snap))
        except Exception:
            log.exception("micromoments pages: listing the parts to pre-render failed")
            continue
        for build in parts:
            try:
                build()
            except Exception:
                log.exception("micromoments pages: pre-rendering a page failed")
