"""The intent engine: which micro-moment (know / go / do / buy, custom, or `other`) each interaction is.

>>> from micromoments.intent import classify
>>> r = classify("hardware store near me")
>>> r.moment, r.go_type, r.confidence > 0.5
('go', 'local', True)

- `classify(texts, url=..., title=..., config=..., custom_moments=...)`: one text or a list.
- `Classifier`: the reusable engine (live path), `IntentResult`: what it returns.
- `classify_store(store, config)`: the batch step over `events` -> `moments_by_text`, `event_moments`.
- `moment_for_event(event, config=...)`: the same precedence for one event dict (live path).
- `load_rules`, `match_rule`: event rules for events without text.
- `evaluate_labels`: accuracy, per-class P/R/F1, macro-F1 with a bootstrap CI.
"""

from __future__ import annotations

from micromoments.intent.classifier import Classifier, IntentResult, classify, get_classifier
from micromoments.intent.evaluate import Evaluation, evaluate_labels
from micromoments.intent.live import EventMoment, moment_for_event
from micromoments.intent.rules import DEFAULT_RULES, EventRule, load_rules, match_rule
from micromoments.intent.store_step import classify_store

__all__ = [
    "DEFAULT_RULES", "Classifier", "Evaluation", "EventMoment", "EventRule", "IntentResult", "classify",
    "classify_store", "evaluate_labels", "get_classifier", "load_rules", "match_rule", "moment_for_event",
]
