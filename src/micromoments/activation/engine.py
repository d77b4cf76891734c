"""The activator: the live path that ties profile state, moments, playbooks, decisions and delivery.

It is split by idea: `profile` (live profile state), `moments` (moment detection), `decision`
(content, holdout, the decision log, `decide`) and `routing` (which playbook pushes to which
deliverer). This module runs them in order for each event and re-exports their public names.

`on_event(event)` takes a canonical event (`activation.live_events.canonical_event`), updates the
person's live state, reads the event's moment with the intent engine (behind an LRU cache of
classified texts), emits `moment.started` when a new moment begins, fires the best matching
playbook within its limits, and hands the message to the delivery worker. Nothing on this path
touches the store: decisions and exposures go to `log_sink(table, row)`, which the server batches.

Times are the event's own `ts` (naive UTC), so a replay of old events behaves as it would have
live; `decide` uses `clock()`.

>>> import datetime as dt
>>> from micromoments.config import Config
>>> act = Activator(Config(), deliverers={})
>>> ev = {"type": "track", "event": "Products Searched", "person_id": "p1", "ts": dt.datetime(2026, 9, 1, 10),
...       "query": "how to lay patio slabs", "channel": "web", "properties": {}, "context": {}, "traits": {}}
>>> _ = act.on_event(ev)
>>> act.state("p1").moment, act.state("p1").stage
('do', 'awareness')
>>> act.decide("p1", {"channel": "web"}).content["id"]
'howto-article'
>>> act.close()
"""

from __future__ import annotations

import logging
import random
import threading
from collections import Counter, deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from micromoments.activation.bandit import ThompsonBandit
from micromoments.activation.catalog import Catalog
from micromoments.activation.decision import HOLDOUT_VARIANTS, Decision, Decisions
from micromoments.activation.delivery import Deliverer, DeliveryWorker
from micromoments.activation.geo import StoreIndex
from micromoments.activation.ids import new_id
from micromoments.activation.limits import FrequencyLedger, QuietHours, local_time
from micromoments.activation.moments import CachedClassifier, detect_moment, moment_started_event
from micromoments.activation.playbooks import MatchContext, Playbook, load_playbooks
from micromoments.activation.profile import (
    OPT_IN_EVENTS,
    OPT_OUT_EVENTS,
    RECENT_EVENTS,
    LiveProfiles,
    ProfileState,
    as_dict,
    start_event,
    update_profile,
)
from micromoments.activation.routing import INTERRUPTING, PushRouting, default_deliverers
from micromoments.activation.stages import LiveStageRules, rule_stages
from micromoments.config import Config
from micromoments.errors import ConfigError
from micromoments.intent.classifier import Classifier, get_classifier
from micromoments.intent.live import EventMoment
from micromoments.intent.rules import load_rules
from micromoments.journey.vocab import vocabulary_from_config

__all__ = ["HOLDOUT_VARIANTS", "INTERRUPTING", "OPT_IN_EVENTS", "OPT_OUT_EVENTS", "RECENT_EVENTS", "Activator",
           "CachedClassifier", "Decision", "Decisions", "LiveProfiles", "LogSink", "ProfileState", "examples_dir"]

log = logging.getLogger(__name__)
LogSink = Callable[[str, dict[str, Any]], None]
CLICK_EVENTS = {"notification opened", "push notification opened", "email link clicked", "content clicked",
                "promotion clicked", "email opened"}
DECISION_KEYS = ("mm_decision", "decision_id", "mm_decision_id")
# Exposures a page reports (micromoments.js): they name the decision but are not clicks.
VIEW_EVENTS = frozenset({"content viewed", "promotion viewed"})


def examples_dir() -> Path:
    """The shipped demo playbooks and catalog (package data)."""
    return Path(str(resources.files("micromoments.activation") / "examples"))


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Activator(PushRouting):
    """Live profile state + moments + playbooks + delivery. Thread-safe; one per server process.

    `deliverers` maps a channel (`push`, `email`, `sms`, `webhook:<name>`) to a Deliverer; by
    default they are built from `[activation]` (a channel with no URL/host has no deliverer,
    and its playbooks log `no_channel` instead of sending).
    """

    def __init__(self, config: Config, *, playbooks_dir: str | Path | None = None,
                 catalog_path: str | Path | None = None, stores: StoreIndex | str | Path | None = None,
                 deliverers: Mapping[str, Deliverer] | None = None,
                 clock: Callable[[], datetime] | None = None, log_sink: LogSink | None = None,
                 classifier: Classifier | None = None, on_moment: Callable[[dict[str, Any]], None] | None = None,
                 delivery_threads: int = 2, seed: int | None = None, scorer: Any | None = None):
        self.config = config
        # A `predict.live.LiveScorer`: predicted moments and propensities for triggers and decide().
        self.scorer = scorer
        act = config.activation
        self.clock = clock or _utcnow
        self.log_sink = log_sink
        self._rng = random.Random(seed)
        # Content choice among equally specific items: Thompson sampling (None = uniform).
        self.bandit = ThompsonBandit.from_config(config, seed=seed)
        self._lock = threading.RLock()
        self._assigned: set[tuple[str, str]] = set()  # (experiment, person) already logged
        ex = examples_dir()
        self.catalog = Catalog.load(catalog_path or act.catalog or ex / "catalog.yaml")
        if isinstance(stores, StoreIndex):
            self.stores = stores
        elif stores or act.stores_csv:
            self.stores = StoreIndex.from_csv(stores or act.stores_csv)  # type: ignore[arg-type]
        else:
            self.stores = StoreIndex.demo()
        self.stage_rules = LiveStageRules(config.journey.stage_rules or None)
        names = [m.name for m in config.intent.custom_moments]
        self.playbooks: list[Playbook] = load_playbooks(
            playbooks_dir or act.playbooks_dir or ex / "playbooks",
            moments=("know", "go", "do", "buy", "other", *names),
            stages=rule_stages(config.journey.stage_rules or None), catalog=self.catalog,
            webhooks=list(act.webhook_urls) if deliverers is None else None,
        )
        self.playbooks = [p for p in self.playbooks if p.enabled]
        try:
            self.default_quiet = QuietHours.parse(act.quiet_hours)
        except ValueError as exc:
            raise ConfigError(str(exc), where="[activation] quiet_hours") from None
        self._quiet = {p.name: (QuietHours.parse(p.limits.quiet_hours) if p.limits.quiet_hours is not None
                                else self.default_quiet) for p in self.playbooks}
        self.classifier = CachedClassifier(classifier or get_classifier(config))
        self.rules = load_rules(config)
        vocab = vocabulary_from_config(config)
        self._conv, self._cart = set(vocab.conversion_events), set(vocab.cart_events)
        self._views, self._support = set(vocab.product_view_events), set(vocab.support_events)
        self._support_paths = tuple(vocab.support_paths)
        self.session_gap = timedelta(minutes=config.journey.session_gap_minutes)
        self.episode_gap = timedelta(minutes=config.journey.episode_gap_minutes)
        self.attribution = timedelta(hours=act.attribution_hours)
        self.ledger = FrequencyLedger()
        self._init_profiles()
        self._recent_moments: deque[dict[str, Any]] = deque(maxlen=1000)
        self._listeners: list[Callable[[dict[str, Any]], None]] = [on_moment] if on_moment else []
        self.deliverers = dict(deliverers) if deliverers is not None else default_deliverers(config)
        self.worker = DeliveryWorker(self.deliverers, log_sink=log_sink, attempts=act.delivery_attempts,
                                     backoff=act.backoff_seconds, backoff_max=act.backoff_max_seconds,
                                     threads=delivery_threads)
        self.counters: Counter[str] = Counter()

    # -- public API ----------------------------------------------------------------------------
    def add_listener(self, handler: Callable[[dict[str, Any]], None]) -> None:
        """Call `handler(moment_started_event)` for every `moment.started` (e.g. publish to the bus)."""
        self._listeners.append(handler)

    def recent_moments(self, limit: int = 50) -> list[dict[str, Any]]:
        """The latest `moment.started` events, newest first."""
        with self._lock:
            return list(self._recent_moments)[-limit:][::-1]

    def close(self, timeout: float = 5.0) -> None:
        """Drain the delivery queue (up to `timeout`) and stop the worker threads."""
        self.worker.close(timeout)

    # -- the live path ---------------------------------------------------------------------------
    def on_event(self, event: Mapping[str, Any]) -> list[Decision]:
        """Update the person's live state from one canonical event and act on it.

        Returns the decisions made (fired, or blocked by a limit); deliveries happen in the background.
        """
        with self._lock:
            return self._on_event(event)

    def _on_event(self, event: Mapping[str, Any]) -> list[Decision]:
        self.counters["events"] += 1
        ts = event.get("ts") or self.clock()
        if isinstance(ts, str):
            ts = datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone(UTC).replace(tzinfo=None)
        st = self._resolve(event)
        etype = (event.get("type") or "").lower()
        name = (event.get("event") or "").strip().lower()
        props = as_dict(event.get("properties"))
        ctx = as_dict(event.get("context"))

        start_event(st, ts, self.session_gap)
        update_profile(st, event, etype, name, props, ctx)
        self._update_commerce(st, event, name, props, ts)
        em, started = detect_moment(st, event, etype, name, ts, self.classifier, self.rules, self.episode_gap)
        st.stage = self.stage_rules.stage(st.features())
        st.recent.append({"ts": ts, "type": etype, "event": event.get("event"), "query": event.get("query"),
                          "moment": em.moment if em else None})
        if self.scorer is not None:
            # The scorer folds the event into its own per-person features (the batch definitions).
            scored = dict(event)
            scored["moment"] = em.moment if em is not None and em.moment != "other" else None
            st.scores = self.scorer.update(st.person_id, scored)

        store, km = self.stores.nearest(event.get("lat"), event.get("lon")) if event.get("lat") is not None \
            else self.stores.nearest(st.lat, st.lon)
        if started:
            self._emit_moment(st, em, ts, event, store, km)  # type: ignore[arg-type]

        # Playbooks: only those that reach people outside the site fire here; web/app ones serve decide().
        if self.playbooks and (started or any(p.when.fire_on == "event" for p in self.playbooks)):
            mc = self._match_context(st, event, props, ts, store, km, started, em)
            return self._fire(st, mc, event, store, km, ts)
        return []

    def _update_commerce(self, st: ProfileState, event: Mapping[str, Any], name: str, props: dict[str, Any],
                         ts: datetime) -> None:
        path = (event.get("page_path") or "").lower()
        if name in self._views:
            st.session_product_views += 1
        if name in self._support or (path and path.startswith(self._support_paths)):
            st.session_support_events += 1
        if name in self._cart:
            st.session_cart_events += 1
            st.cart_updated_at = ts
            if name in ("product added", "add_to_cart", "add to cart", "added to cart"):
                key = str(props.get("product_id") or props.get("sku") or props.get("name") or len(st.cart))
                st.cart[key] = {k: props.get(k) for k in ("product_id", "sku", "name", "price", "quantity")
                                if props.get(k) is not None}
        elif name == "product removed":
            st.cart.pop(str(props.get("product_id") or props.get("sku") or ""), None)
            st.cart_updated_at = ts
        if name in self._conv:
            st.session_conversions += 1
            st.purchases += 1
            st.last_purchase_at = ts
            st.cart.clear()
            st.cart_updated_at = None
            self._outcome(st, "conversion", ts, event.get("revenue"), self._decision_ref(props, event))
        elif name in CLICK_EVENTS or (name not in VIEW_EVENTS and self._decision_ref(props, event, explicit=True)):
            ref = self._decision_ref(props, event)
            if ref:
                self._outcome(st, "click", ts, None, ref)

    def _decision_ref(self, props: dict[str, Any], event: Mapping[str, Any], explicit: bool = False) -> str | None:
        for k in DECISION_KEYS:
            if props.get(k):
                return str(props[k])
        url = event.get("page_url") or ""
        if "mm_decision=" in url:
            return url.split("mm_decision=", 1)[1].split("&", 1)[0]
        return None

    def _outcome(self, st: ProfileState, kind: str, ts: datetime, revenue: Any, decision_id: str | None) -> None:
        """Log a click or conversion, credited to the decision it names, else the last one in the window."""
        if decision_id is None and st.last_decision and ts - st.last_decision[1] <= self.attribution:
            decision_id = st.last_decision[0]
        if decision_id is None and kind == "click":
            return
        self.counters[f"outcome_{kind}"] += 1
        if self.bandit is not None and decision_id is not None:
            self.bandit.observe(decision_id, kind)  # the content choice learns from it
        if self.log_sink is not None:
            self.log_sink("outcomes", {"outcome_id": new_id(), "decision_id": decision_id, "ts": ts,
                                       "person_id": st.person_id, "kind": kind,
                                       "revenue": float(revenue) if revenue is not None else None})

    def _emit_moment(self, st: ProfileState, em: EventMoment, ts: datetime, event: Mapping[str, Any],
                     store: dict[str, Any] | None, km: float | None) -> None:
        ev = moment_started_event(st, em, ts, event, store, km)
        self._recent_moments.append(ev)
        self.counters["moments_started"] += 1
        for handler in self._listeners:
            try:
                handler(ev)
            except Exception:  # a listener must not break the live path
                log.exception("moment listener failed")

    def _match_context(self, st: ProfileState, event: Mapping[str, Any], props: dict[str, Any], ts: datetime,
                       store: dict[str, Any] | None, km: float | None, started: bool,
                       em: EventMoment | None) -> MatchContext:
        tz_default = self.config.activation.default_timezone
        idle = (ts - st.cart_updated_at).total_seconds() / 60 if st.cart_updated_at else None
        return MatchContext(
            moment=st.moment, go_type=st.go_type, moment_started=started, event=event.get("event"),
            stage=st.stage, persona=st.persona, segments=st.segments,
            channel=event.get("channel") or st.channel, device=event.get("device_type") or st.device,
            store_km=km, local=local_time(ts, event.get("timezone") or st.timezone, tz_default),
            properties=props, open_cart=bool(st.cart) or (st.session_cart_events > 0 and st.session_conversions == 0),
            cart_idle_minutes=idle, scores=st.scores,
        )
