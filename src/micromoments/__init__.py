"""micromoments: find, map, act on and measure the micro-moments in customer journeys."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "classify"]


def classify(texts: Any, **kwargs: Any) -> Any:
    """Classify one text or a list of texts into micro-moments (see `micromoments.intent`)."""
    from micromoments.intent import classify as _classify

    return _classify(texts, **kwargs)
