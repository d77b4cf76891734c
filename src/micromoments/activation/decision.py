"""The decision: which content a person gets now, with its propensity, holdout and log.

`Decision` is one row of the `decisions` table plus the rendered content. `Decisions` (a base of
`Activator`) holds what every decision shares, pushed (`routing.PushRouting`) or pulled
(`decide`, for web and app placements): the experiment holdout, the content choice (uniform or
Thompson sampling) with its propensity, the templates' render context, and the decision log.

>>> import datetime as dt
>>> d = Decision("d1", dt.datetime(2026, 9, 1, 10), "p1", channel="web", status="chosen")
>>> d.to_dict()["ts"], d.to_row()["context"]
('2026-09-01T10:00:00Z', '{}')
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

import orjson

from micromoments.activation.bandit import ThompsonBandit
from micromoments.activation.catalog import Catalog, ContentItem
from micromoments.activation.geo import StoreIndex
from micromoments.activation.ids import new_id
from micromoments.activation.limits import local_time
from micromoments.activation.playbooks import MatchContext, Playbook
from micromoments.activation.profile import LiveProfiles, ProfileState, as_dict
from micromoments.config import Config
from micromoments.intent.live import moment_for_event
from micromoments.store.schema import DECISIONS_COLUMNS

log = logging.getLogger(__name__)
HOLDOUT_VARIANTS = frozenset({"control", "holdout"})


@dataclass
class Decision:
    """One decision, with the `decisions` table's columns plus the rendered `content`."""

    decision_id: str
    ts: datetime
    person_id: str
    playbook: str | None = None
    content_id: str | None = None
    channel: str | None = None
    moment: str | None = None
    stage: str | None = None
    persona: str | None = None
    experiment: str | None = None
    variant: str | None = None
    propensity: float | None = None
    status: str = "no_match"
    context: dict[str, Any] = field(default_factory=dict)
    content: dict[str, Any] | None = None

    def to_row(self) -> dict[str, Any]:
        """The `decisions` table row (context as JSON text)."""
        row = {k: getattr(self, k) for k in DECISIONS_COLUMNS}
        # orjson (json.dumps was a fifth of the live path), keeping json.dumps(default=str)'s values
        row["context"] = orjson.dumps(self.context, default=str,
                                      option=orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS).decode()
        return row

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (the /v1/decide body)."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["ts"] = self.ts.isoformat() + "Z"
        return d


class Decisions(LiveProfiles):
    """The decisions of an `Activator` (its `__init__` sets every attribute declared here)."""

    config: Config
    bandit: ThompsonBandit | None
    catalog: Catalog
    stores: StoreIndex
    playbooks: list[Playbook]
    log_sink: Any
    counters: Counter[str]
    classifier: Any
    rules: Any
    clock: Any
    _rng: random.Random
    _assigned: set[tuple[str, str]]

    def _choose(self, items: list[ContentItem], d: Decision | None = None) -> tuple[ContentItem, float]:
        """One of the equally specific best items, with the probability it had of being chosen.

        With `[activation] bandit = "thompson"` (activation/bandit.py): Thompson sampling per
        context with an exploration floor; the decision counts as a trial, its click/conversion
        (`_outcome`) as a success, and the whole distribution goes to `context.propensities`.
        Else uniform (1/n). The propensity is logged for off-policy evaluation (measure/ope.py).
        """
        if self.bandit is None or d is None:
            if len(items) == 1:
                return items[0], 1.0
            return self._rng.choice(items), 1.0 / len(items)
        choice = self.bandit.choose(self.bandit.context_of(d), [i.id for i in items], decision_id=d.decision_id,
                                    reward=self.bandit.reward_for(d.playbook))
        if len(items) > 1:
            d.context["policy"] = "thompson"
            d.context["propensities"] = {k: round(v, 6) for k, v in choice.probabilities.items()}
        return items[choice.index], choice.propensity

    def _unchoose(self, d: Decision) -> None:
        """The chosen content was not shown (it failed to render): not a trial for the bandit."""
        if self.bandit is not None:
            self.bandit.discard(d.decision_id)

    def _new_decision(self, st: ProfileState, playbook: str | None, channel: str, ts: datetime,
                      mc: MatchContext | None, store: dict[str, Any] | None, km: float | None) -> Decision:
        ctx: dict[str, Any] = {}
        if mc is not None:
            ctx = {"event": mc.event, "channel": mc.channel, "device": mc.device,
                   "local_time": mc.local.strftime("%a %H:%M") if mc.local else None}
        if store is not None:
            ctx["store_id"], ctx["store_km"] = store.get("store_id"), round(km, 2) if km is not None else None
        return Decision(decision_id=new_id(), ts=ts, person_id=st.person_id, playbook=playbook,
                        channel=channel, moment=st.moment, stage=st.stage, persona=st.persona, context=ctx)

    def _render_context(self, st: ProfileState, playbook: str | None, store: dict[str, Any] | None,
                        km: float | None, event: Mapping[str, Any] | None) -> dict[str, Any]:
        code = hashlib.blake2b(f"{st.person_id}:{playbook}".encode(), digest_size=4).hexdigest().upper()
        cart = list(st.cart.values())
        value = sum(float(i.get("price") or 0) * float(i.get("quantity") or 1) for i in cart)
        return {
            "first_name": st.first_name or "there", "email": st.email, "person": st.traits,
            "person_id": st.person_id, "person_code": code, "moment": st.moment, "go_type": st.go_type,
            "stage": st.stage, "persona": st.persona, "query": st.moment_text,
            "nearest_store": {**store, "distance_km": round(km, 1) if km is not None else None} if store else {},
            "cart": {"items": cart, "count": len(cart), "value": round(value, 2),
                     "first": cart[0].get("name") if cart else None},
            "properties": as_dict(event.get("properties")) if event else {},
        }

    def _in_holdout(self, d: Decision, person_id: str, now: datetime) -> bool:
        """Assign the person to every `[[experiments]]` entry (the same hash as the batch analysis),
        log the first assignment per experiment, and tag the decision with the first experiment.

        A variant named `control` or `holdout` gets no content: that is how a test measures what
        the playbooks add ("does answering the moment lift conversion?").
        """
        experiments = getattr(self.config, "experiments", None) or []
        if not experiments:
            return False
        from micromoments.measure.experiments import live_assignments  # pure hashing, no I/O

        rows = live_assignments(person_id, experiments, now)
        for row in rows:
            key = (row["experiment"], person_id)
            if key not in self._assigned:
                self._assigned.add(key)
                if self.log_sink is not None:
                    self.log_sink("assignments", row)
        if not rows:
            return False
        d.experiment, d.variant = rows[0]["experiment"], rows[0]["variant"]
        return str(d.variant).lower() in HOLDOUT_VARIANTS

    def _log_decision(self, d: Decision) -> None:
        self.counters[f"decision_{d.status}"] += 1
        if self.log_sink is not None:
            self.log_sink("decisions", d.to_row())

    def decide(self, person_id: str, context: dict[str, Any] | None = None) -> Decision:
        """The best content for this person now on a web/app placement.

        `context` may carry `channel` (web/app, default web), `lat`/`lon`, `query` (read with the
        intent engine), `timezone`, and `placement`. A web/app playbook that matches wins; else
        the catalog's most specific item for the person's moment, stage and persona.
        """
        context = dict(context or {})
        shared = self._load_shared(person_id)
        with self._lock:
            now = self.clock()
            st = self._decide_state(person_id, shared)
            channel = str(context.get("channel") or ("app" if st.channel == "app" else "web"))
            moment, go_type = st.moment, st.go_type
            if context.get("query"):
                em = moment_for_event({"type": "track", "query": context["query"]}, classifier=self.classifier,
                                      rules=self.rules)  # type: ignore[arg-type]
                if em is not None and em.moment != "other":
                    moment, go_type = em.moment, em.go_type
            lat, lon = context.get("lat", st.lat), context.get("lon", st.lon)
            store, km = self.stores.nearest(lat, lon)
            personalise = not ("all" in st.opted_out or st.consent is False)
            mc = MatchContext(moment=moment, go_type=go_type, moment_started=True, stage=st.stage,
                              persona=st.persona, segments=st.segments, channel=channel,
                              device=context.get("device") or st.device, store_km=km,
                              local=local_time(now, context.get("timezone") or st.timezone,
                                               self.config.activation.default_timezone),
                              properties=as_dict(context.get("properties")),
                              open_cart=bool(st.cart), cart_idle_minutes=None, scores=st.scores)
            d = self._new_decision(st, None, channel, now, mc, store, km)
            d.moment = moment
            if st.scores is not None:
                d.context["scores"] = st.scores
            d.context["placement"] = context.get("placement")
            if self._in_holdout(d, person_id, now):
                d.status = "holdout"
                self._log_decision(d)
                return d
            items: list[ContentItem] = []
            if personalise:
                for pb in self.playbooks:
                    if pb.action.channel == channel and pb.when.matches(mc, any_time=True):
                        items = self.catalog.candidates(moment=moment, stage=st.stage, persona=st.persona,
                                                        channel=channel, ids=pb.action.content or None)
                        if items:
                            d.playbook = pb.name
                            break
                if not items:
                    items = self.catalog.candidates(moment=moment, stage=st.stage, persona=st.persona,
                                                    channel=channel)
            else:
                d.context["personalised"] = False
                items = self.catalog.candidates(channel=channel)
            if not items:
                d.status = "no_match"
                self._log_decision(d)
                return d
            item, d.propensity = self._choose(items, d)
            d.content_id, d.status = item.id, "chosen"
            try:
                d.content = self.catalog.render(item, self._render_context(st, d.playbook, store, km, None)
                                                if personalise else {"first_name": "there"})
            except Exception as exc:  # see _fire: never fail the request over one template
                log.warning("content %s did not render: %s", item.id, exc)
                self._unchoose(d)
                d.status, d.context["error"], d.content_id = "render_error", str(exc)[:200], None
                self._log_decision(d)
                return d
            self._log_decision(d)
            if self.log_sink is not None:
                self.log_sink("exposures", {"exposure_id": new_id(), "decision_id": d.decision_id,
                                            "ts": now, "person_id": st.person_id, "content_id": item.id,
                                            "channel": channel, "delivery_status": "delivered"})
            if person_id in self._states or person_id in self._alias:
                st.last_decision = (d.decision_id, now)
            return d
