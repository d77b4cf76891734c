"""Live journey stage: the batch stage rules (`journey.stages`) evaluated in plain Python.

The rule list and its conditions are the very ones `journey.stages.stage_expr` turns into SQL
(`DEFAULT_STAGE_RULES` or `[[journey.stage_rules]]`), so a stage means the same live and in the
report. Live, the features describe the current session *so far*; at the session's end they
equal the batch session features. `tests/test_activation_stages.py` checks both evaluators
agree on every combination of features.

>>> live_stage({"moment": "buy", "first_session": True})
'consideration'
>>> live_stage({"moment": "know", "purchased_before": True})
'post-purchase'
>>> live_stage({"moment": "go", "cart_events": 1, "first_session": True})
'decision'
"""

from __future__ import annotations

from typing import Any

from micromoments.journey.stages import _BOOL_CONDITIONS, DEFAULT_STAGE_RULES, STAGES, validate_rules

__all__ = ["STAGES", "live_stage", "rule_stages", "LiveStageRules"]


_MOMENT_LISTS = ("moment_in", "moment_not_in")


def _condition(f: dict[str, Any], key: str, value: Any) -> bool:
    """One condition of a rule; `value` as `_compiled` left it (moment lists as sets)."""
    moment = f.get("moment")
    if key == "moment_in":
        return moment is not None and moment in value
    if key == "moment_not_in":
        return not (moment is not None and moment in value)
    if key == "has_moment":
        return (moment is not None) == bool(value)
    if key == "min_product_views":
        return int(f.get("product_views") or 0) >= int(value)
    col = _BOOL_CONDITIONS[key]  # validate_rules + stage_expr reject unknown keys
    raw = f.get(col)
    flag = (int(raw or 0) > 0) if key in ("has_cart", "has_support") else bool(raw)
    return flag if value else not flag


class LiveStageRules:
    """Stage rules compiled once (validated like the batch path) for per-event use."""

    def __init__(self, rules: list[dict[str, Any]] | None = None):
        self.rules = rules or DEFAULT_STAGE_RULES
        validate_rules(self.rules)
        for i, rule in enumerate(self.rules):
            for j, alt in enumerate(rule.get("when", [{}])):
                for key in alt:
                    if key not in _BOOL_CONDITIONS and key not in (
                        "moment_in", "moment_not_in", "has_moment", "min_product_views"
                    ):
                        from micromoments.errors import ConfigError

                        raise ConfigError(f"unknown stage condition '{key}'",
                                          where=f"journey.stage_rules[{i}].when[{j}]")
        # Per event, only the comparisons are left: each moment list is a set once, here.
        self._compiled = [
            (str(rule["stage"]), [[(k, frozenset(str(x) for x in v) if k in _MOMENT_LISTS else v)
                                   for k, v in alt.items()] for alt in rule.get("when", [{}])])
            for rule in self.rules
        ]

    def stage(self, features: dict[str, Any]) -> str | None:
        """The first rule with an alternative whose conditions all hold (None if none does)."""
        for stage, alternatives in self._compiled:
            for conditions in alternatives:
                if all(_condition(features, k, v) for k, v in conditions):
                    return stage
        return None


def live_stage(features: dict[str, Any], rules: list[dict[str, Any]] | None = None) -> str | None:
    """The stage for one row of session features (keys as in `journey.stages.session_features`:
    moment, purchased_before, first_session, converted, cart_events, support_events, product_views)."""
    return LiveStageRules(rules).stage(features)


def rule_stages(rules: list[dict[str, Any]] | None = None) -> tuple[str, ...]:
    """The stage names the rules can give (for validating playbooks)."""
    names = [str(r["stage"]) for r in (rules or DEFAULT_STAGE_RULES)]
    return tuple(dict.fromkeys([*names, *STAGES])) if not rules else tuple(dict.fromkeys(names))
