"""Journey stages: awareness, consideration, decision, post-purchase.

A stage is given to each episode (and each session) by an ordered list of rules; the first
rule that matches wins. A rule is `{"stage": name, "when": [alternative, ...]}`; it matches
when any alternative matches, and an alternative matches when all its conditions hold.
An empty alternative `{}` always matches (use it for the fallback).

Conditions (all optional) read the features every episode/session carries:

| condition             | true when                                                        |
|-----------------------|------------------------------------------------------------------|
| `moment_in: [..]`     | the dominant moment type is one of these                         |
| `moment_not_in: [..]` | it is none of these (NULL counts as none)                        |
| `has_moment: bool`    | the row has a moment type at all                                 |
| `purchased_before`    | the person bought something before this episode/session started |
| `first_session`       | this is the person's first session in the data                   |
| `converted`           | a purchase followed (before the next episode)                    |
| `has_cart`            | a cart or checkout event followed                                |
| `has_support`         | a support/help page or event followed                            |
| `min_product_views: n`| at least n product views followed (comparison shopping)          |

The default rules (`DEFAULT_STAGE_RULES`):
  1. post-purchase: bought before, and now a how-to/know moment or a support visit
  2. decision: a cart/checkout or purchase followed
  3. consideration: comparing products (>= 2 product views), a buy moment, or a returning visitor
  4. awareness: everything else (a first visit with know/do/go moments or browsing)

Configure them in `micromoments.toml` under `[[journey.stage_rules]]`.
"""

from __future__ import annotations

from typing import Any

import ibis
import ibis.expr.types as ir

from micromoments.errors import ConfigError

STAGES = ("awareness", "consideration", "decision", "post-purchase")

DEFAULT_STAGE_RULES: list[dict[str, Any]] = [
    {"stage": "post-purchase", "when": [
        {"purchased_before": True, "moment_in": ["do", "know"]},
        {"purchased_before": True, "has_support": True},
    ]},
    {"stage": "decision", "when": [{"has_cart": True}, {"converted": True}]},
    {"stage": "consideration", "when": [
        {"min_product_views": 2}, {"moment_in": ["buy"]}, {"first_session": False},
    ]},
    {"stage": "awareness", "when": [{}]},
]

_BOOL_CONDITIONS = {
    "purchased_before": "purchased_before",
    "first_session": "first_session",
    "converted": "converted",
    "has_cart": "cart_events",
    "has_support": "support_events",
}


def _condition(t: ir.Table, key: str, value: Any, where: str) -> ir.BooleanValue:
    if key == "moment_in":
        return t.moment.isin([str(v) for v in value]).fill_null(False)
    if key == "moment_not_in":
        return ~t.moment.isin([str(v) for v in value]).fill_null(False)
    if key == "has_moment":
        return t.moment.notnull() if value else t.moment.isnull()
    if key == "min_product_views":
        return t.product_views >= int(value)
    if key in _BOOL_CONDITIONS:
        if not isinstance(value, bool):
            raise ConfigError(f"'{key}' must be true or false, got {value!r}", where=where)
        col = t[_BOOL_CONDITIONS[key]]
        flag = (col > 0) if key in ("has_cart", "has_support") else col.fill_null(False)
        return flag if value else ~flag
    raise ConfigError(
        f"unknown stage condition '{key}'", where=where,
        hint="use moment_in, moment_not_in, has_moment, purchased_before, first_session, "
             "converted, has_cart, has_support or min_product_views",
    )


def validate_rules(rules: list[dict[str, Any]], where: str = "journey.stage_rules") -> None:
    """Raise `ConfigError` naming the rule and field when a rule is malformed."""
    if not rules:
        raise ConfigError("no stage rules", where=where, hint="drop the key to use the defaults")
    for i, rule in enumerate(rules):
        here = f"{where}[{i}]"
        if not isinstance(rule, dict) or "stage" not in rule:
            raise ConfigError("each rule needs a 'stage'", where=here,
                              hint='e.g. {stage = "decision", when = [{has_cart = true}]}')
        unknown = set(rule) - {"stage", "when"}
        if unknown:
            raise ConfigError(f"unknown key(s) {sorted(unknown)}", where=here, hint="keys: stage, when")
        when = rule.get("when", [{}])
        if not isinstance(when, list) or not all(isinstance(a, dict) for a in when):
            raise ConfigError("'when' must be a list of tables", where=here)


def stage_expr(t: ir.Table, rules: list[dict[str, Any]] | None = None) -> ir.StringValue:
    """The stage of each row of `t` (episodes or session features) as one CASE expression."""
    rules = rules or DEFAULT_STAGE_RULES
    validate_rules(rules)
    branches = []
    for i, rule in enumerate(rules):
        alternatives = rule.get("when", [{}])
        matched = ibis.literal(False)
        for j, alt in enumerate(alternatives):
            cond = ibis.literal(True)
            for key, value in alt.items():
                cond = cond & _condition(t, key, value, f"journey.stage_rules[{i}].when[{j}]")
            matched = matched | cond
        branches.append((matched, str(rule["stage"])))
    return ibis.cases(*branches, else_=ibis.null("string"))


def assign_stages(table: ir.Table, rules: list[dict[str, Any]] | None = None) -> ir.Table:
    """Add a `stage` column to episodes (from `episodes`) or sessions (from `session_features`)."""
    return table.mutate(stage=stage_expr(table, rules))


def stage_order(stage: ir.StringValue, stages: tuple[str, ...] = STAGES) -> ir.IntegerValue:
    """0..3 for the default stages (unknown custom stages sort last)."""
    return ibis.cases(*[(stage == s, i) for i, s in enumerate(stages)], else_=len(stages))


def session_features(sessionized: ir.Table, episodes_table: ir.Table, vocab: Any = None) -> ir.Table:
    """Per session: the features the stage rules read, so sessions get a stage too.

    The session's moment is the moment of its episode with the most interactions (NULL when the
    session had no intent, e.g. a REES46 clickstream without queries): stages then rest on
    cart, purchase, product views and visit number alone.
    """
    from micromoments.journey.sessions import event_facts

    return session_features_from_facts(event_facts(sessionized, vocab), episodes_table)


SESSION_FEATURE_COLUMNS = (
    "person_id", "session_id", "session_no", "start", "secs_start", "events", "conversions", "cart_events",
    "product_views", "support_events", "revenue", "moment", "episodes", "converted", "first_session",
    "purchased_before",
)


def session_features_from_facts(facts: ir.Table, episodes_table: ir.Table) -> ir.Table:
    """`session_features` from `sessions.event_facts` (vocabulary flags already evaluated)."""
    s = facts.mutate(
        _conv=facts.is_conv.cast("int64"), _cart=facts.is_cart.cast("int64"),
        _view=facts.is_view.cast("int64"), _support=facts.is_support.cast("int64"),
    )
    feats = s.group_by(["person_id", "session_no"]).aggregate(
        start=s.ts.min(), secs_start=s.secs.min(), events=s.count(),
        conversions=s._conv.sum(), cart_events=s._cart.sum(),
        product_views=s._view.sum(), support_events=s._support.sum(),
        revenue=s.revenue.sum(where=s._conv == 1).fill_null(0.0),
        # The first purchase of the person up to this session: the person's first purchase
        # precedes this session's start exactly when it is in an earlier session.
        _session_buy=s.secs.min(where=s._conv == 1),
    )
    ep = episodes_table
    w = ibis.window(group_by=["person_id", "session_no"], order_by=[ibis.desc("interactions"), "episode_no"])
    top = ep.mutate(_rk=ibis.row_number().over(w)).filter(lambda t: t._rk == 0)
    n_eps = ep.group_by(["person_id", "session_no"]).aggregate(_n=ep.count())
    top = top.select(_t_person=top.person_id, _t_session=top.session_no, moment=top.moment)
    feats = feats.left_join(top, (feats.person_id == top._t_person) & (feats.session_no == top._t_session))
    feats = feats.drop("_t_person", "_t_session")
    n_eps = n_eps.rename(_n_person="person_id", _n_session="session_no")
    feats = feats.left_join(n_eps, (feats.person_id == n_eps._n_person) & (feats.session_no == n_eps._n_session))
    feats = feats.drop("_n_person", "_n_session")
    first_buy = feats.group_by("person_id").aggregate(_first_buy=feats._session_buy.min()).rename(_fb="person_id")
    feats = feats.left_join(first_buy, feats.person_id == first_buy._fb).drop("_fb")
    return finish_session_features(feats)


def finish_session_features(feats: ir.Table) -> ir.Table:
    """`SESSION_FEATURE_COLUMNS` from per-session numbers, `_n` (episodes) and `_first_buy` (the
    person's first purchase or NULL); shared by the Ibis path and the numpy kernel."""
    return feats.mutate(
        session_id=feats.person_id.concat(":", feats.session_no.cast("string")),
        episodes=feats._n.fill_null(0),
        converted=feats.conversions > 0,
        first_session=feats.session_no == 1,
        purchased_before=(feats._first_buy < feats.secs_start).fill_null(False),
    ).select(*SESSION_FEATURE_COLUMNS)
