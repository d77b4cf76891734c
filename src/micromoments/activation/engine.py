"""The activator: live profile state, online moment detection, playbooks, decisions and delivery.

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

import hashlib
import json
import logging
import random
import threading
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from micromoments.activation.bandit import ThompsonBandit
from micromoments.activation.catalog import Catalog, ContentItem
from micromoments.activation.delivery import (
    Deliverer,
    DeliveryWorker,
    Message,
    PushDeliverer,
    SmtpDeliverer,
    WebhookDeliverer,
)
from micromoments.activation.geo import StoreIndex
from micromoments.activation.ids import new_id
from micromoments.activation.limits import FrequencyLedger, QuietHours, local_time
from micromoments.activation.playbooks import MatchContext, Playbook, load_playbooks
from micromoments.activation.shared_state import take_snapshot
from micromoments.activation.stages import LiveStageRules, rule_stages
from micromoments.config import Config
from micromoments.errors import ConfigError
from micromoments.intent.classifier import Classifier, IntentResult, get_classifier
from micromoments.intent.live import EventMoment, moment_for_event
from micromoments.intent.rules import load_rules
from micromoments.journey.vocab import vocabulary_from_config
from micromoments.store.schema import DECISIONS_COLUMNS

log = logging.getLogger(__name__)
LogSink = Callable[[str, dict[str, Any]], None]
INTERRUPTING = ("push", "email", "sms", "webhook")
RECENT_EVENTS = 50
OPT_OUT_EVENTS = {"unsubscribed": "all", "opted out": "all", "email unsubscribed": "email",
                  "push disabled": "push", "push notifications disabled": "push", "sms opted out": "sms"}
HOLDOUT_VARIANTS = frozenset({"control", "holdout"})
OPT_IN_EVENTS = {"subscribed": "all", "opted in": "all", "push enabled": "push",
                 "push notifications enabled": "push", "email subscribed": "email"}
CLICK_EVENTS = {"notification opened", "push notification opened", "email link clicked", "content clicked",
                "promotion clicked", "email opened"}
DECISION_KEYS = ("mm_decision", "decision_id", "mm_decision_id")


def examples_dir() -> Path:
    """The shipped demo playbooks and catalog (package data)."""
    return Path(str(resources.files("micromoments.activation") / "examples"))


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


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
        # orjson, with the values json.dumps(default=str) gave (datetimes as str(), any key type):
        # json.dumps was ~30 µs of the live path's 169 µs per event (cProfile)
        row["context"] = orjson.dumps(self.context, default=str,
                                      option=orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS).decode()
        return row

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (the /v1/decide body)."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["ts"] = self.ts.isoformat() + "Z"
        return d


@dataclass
class ProfileState:
    """What the live path knows about one person."""

    person_id: str
    user_id: str | None = None
    anonymous_ids: set[str] = field(default_factory=set)
    traits: dict[str, Any] = field(default_factory=dict)
    recent: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=RECENT_EVENTS))
    events: int = 0
    first_ts: datetime | None = None
    last_ts: datetime | None = None
    # session
    session_no: int = 0
    session_start: datetime | None = None
    session_moments: Counter[str] = field(default_factory=Counter)
    session_cart_events: int = 0
    session_conversions: int = 0
    session_product_views: int = 0
    session_support_events: int = 0
    purchased_before_session: bool = False
    # moment and stage
    moment: str | None = None
    go_type: str | None = None
    moment_confidence: float = 0.0
    moment_text: str | None = None
    moment_started_at: datetime | None = None
    moment_last_at: datetime | None = None
    stage: str | None = None
    persona: str | None = None
    segments: tuple[str, ...] = ()
    # predictions (when a scorer is set): next_moment {type: p}, p_buy_session, p_buy_7d
    scores: dict[str, Any] | None = None
    # consent
    consent: bool | None = None                  # explicit marketing consent, when given
    opted_out: set[str] = field(default_factory=set)  # "all" or channels
    last_contact: dict[str, datetime] = field(default_factory=dict)
    # commerce
    cart: dict[str, dict[str, Any]] = field(default_factory=dict)
    cart_updated_at: datetime | None = None
    purchases: int = 0
    last_purchase_at: datetime | None = None
    # context
    timezone: str | None = None
    lat: float | None = None
    lon: float | None = None
    device: str | None = None
    channel: str | None = None
    push_token: str | None = None
    last_decision: tuple[str, datetime] | None = None

    @property
    def first_name(self) -> str | None:
        t = self.traits
        name = t.get("first_name") or t.get("firstName")
        if not name and isinstance(t.get("name"), str) and t["name"].strip():
            name = t["name"].split()[0]
        return name or None

    @property
    def email(self) -> str | None:
        e = self.traits.get("email")
        return e if isinstance(e, str) and "@" in e else None

    def features(self) -> dict[str, Any]:
        """The session features the stage rules read (see `journey.stages.session_features`)."""
        moment = None
        if self.session_moments:
            # Dominant moment so far; ties go to the moment seen first (Counter keeps insertion order).
            moment = max(self.session_moments.items(), key=lambda kv: kv[1])[0]
        return {
            "moment": moment, "purchased_before": self.purchased_before_session,
            "first_session": self.session_no == 1, "converted": self.session_conversions > 0,
            "cart_events": self.session_cart_events, "support_events": self.session_support_events,
            "product_views": self.session_product_views,
        }

    def summary(self) -> dict[str, Any]:
        """A JSON-ready view (for admin endpoints and pages)."""
        d = asdict(self)
        d["recent"] = list(self.recent)
        d["anonymous_ids"] = sorted(self.anonymous_ids)
        d["opted_out"] = sorted(self.opted_out)
        d["session_moments"] = dict(self.session_moments)
        d["first_name"], d["email"] = self.first_name, self.email
        return json.loads(json.dumps(d, default=str))


class CachedClassifier:
    """An LRU cache of classified texts in front of the intent `Classifier` (queries repeat a lot)."""

    def __init__(self, classifier: Classifier, size: int = 50_000):
        self.classifier = classifier
        self.size = size
        self._cache: OrderedDict[str, IntentResult] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def predict(self, texts: list[Any], *args: Any, **kwargs: Any) -> list[IntentResult]:
        out: list[IntentResult | None] = []
        missing: list[int] = []
        with self._lock:
            for i, t in enumerate(texts):
                r = self._cache.get(str(t))
                if r is not None:
                    self._cache.move_to_end(str(t))
                    self.hits += 1
                else:
                    missing.append(i)
                out.append(r)
        if missing:
            self.misses += len(missing)
            fresh = self.classifier.predict([texts[i] for i in missing], explain=True)
            with self._lock:
                for i, r in zip(missing, fresh):
                    out[i] = r
                    self._cache[str(texts[i])] = r
                while len(self._cache) > self.size:
                    self._cache.popitem(last=False)
        return out  # type: ignore[return-value]


def _as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value.startswith("{"):
        try:
            parsed = json.loads(value)
            return parsed if isinstance(parsed, dict) else {}
        except ValueError:
            return {}
    return {}


class Activator:
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
        # Content choice among equally specific items: Thompson sampling (None = uniform, as before).
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
        self._states: dict[str, ProfileState] = {}
        self._alias: dict[str, str] = {}
        self._recent_moments: deque[dict[str, Any]] = deque(maxlen=1000)
        self._listeners: list[Callable[[dict[str, Any]], None]] = [on_moment] if on_moment else []
        self.deliverers = dict(deliverers) if deliverers is not None else self._default_deliverers()
        self.worker = DeliveryWorker(self.deliverers, log_sink=log_sink, attempts=act.delivery_attempts,
                                     backoff=act.backoff_seconds, backoff_max=act.backoff_max_seconds,
                                     threads=delivery_threads)
        self.counters: Counter[str] = Counter()
        # Scale-out (activation/shared_state.py): snapshots of changed profiles go to `shared`
        # after each bus batch; decide() reads a person this process does not hold from it.
        self.shared: Any = None
        self._dirty: set[str] = set()

    def _default_deliverers(self) -> dict[str, Deliverer]:
        act = self.config.activation
        out: dict[str, Deliverer] = {}
        if act.smtp_host:
            out["email"] = SmtpDeliverer(act.smtp_host, act.smtp_port, act.smtp_from, starttls=act.smtp_starttls,
                                         user=act.smtp_user, password=act.smtp_password)
        if act.push_url:
            out["push"] = PushDeliverer(act.push_url, act.webhook_secret)
        for name, url in act.webhook_urls.items():
            out[f"webhook:{name}"] = WebhookDeliverer(url, act.webhook_secret)
        return out

    # -- public API ----------------------------------------------------------------------------
    def add_listener(self, handler: Callable[[dict[str, Any]], None]) -> None:
        """Call `handler(moment_started_event)` for every `moment.started` (e.g. publish to the bus)."""
        self._listeners.append(handler)

    def state(self, person_id: str) -> ProfileState:
        """The live state of a person (an empty one if never seen)."""
        with self._lock:
            pid = self._alias.get(person_id, person_id)
            return self._states.get(pid) or ProfileState(pid)

    def set_persona(self, person_id: str, persona: str | None, segments: tuple[str, ...] = ()) -> None:
        """Set a person's persona (e.g. from the batch `personas` table at start-up)."""
        with self._lock:
            st = self._get(person_id)
            st.persona = persona
            if segments:
                st.segments = tuple(segments)

    def recent_moments(self, limit: int = 50) -> list[dict[str, Any]]:
        """The latest `moment.started` events, newest first."""
        with self._lock:
            return list(self._recent_moments)[-limit:][::-1]

    def flush_shared(self) -> int:
        """Write the snapshots of the profiles changed since the last call to `shared`; returns how many."""
        if self.shared is None:
            self._dirty.clear()
            return 0
        with self._lock:  # serialise under the lock (the bytes are the copy), write to Redis outside it
            dirty, self._dirty = self._dirty, set()
            snaps = [take_snapshot(self._states[p]) for p in dirty if p in self._states]
        self.shared.save_many(snaps)
        return len(snaps)

    def _decide_state(self, person_id: str, shared: ProfileState | None) -> ProfileState:
        """This process's state of the person, else the shared snapshot, else an empty profile."""
        if person_id in self._states or person_id in self._alias:
            return self._get(person_id)
        return shared if shared is not None else ProfileState(person_id)

    def _load_shared(self, person_id: str) -> ProfileState | None:
        """The shared snapshot of a person this process does not hold (Redis I/O: call it
        outside the lock, so a slow Redis does not hold up the event path)."""
        if self.shared is None or person_id in self._states or person_id in self._alias:
            return None
        return self.shared.load(person_id, ProfileState)

    def close(self, timeout: float = 5.0) -> None:
        """Drain the delivery queue (up to `timeout`) and stop the worker threads."""
        self.worker.close(timeout)

    # -- the live path ---------------------------------------------------------------------------
    def _get(self, pid: str) -> ProfileState:
        pid = self._alias.get(pid, pid)
        st = self._states.get(pid)
        if st is None:
            # A worker that restarted resumes from the shared snapshot (moment, stage, consent, contacts).
            seeded = self.shared.load(pid, ProfileState) if self.shared is not None else None
            if seeded is not None and seeded.person_id != pid:  # an anonymous id merged into a person
                self._alias[pid] = pid = seeded.person_id
                st = self._states.get(pid)
            if st is None:
                st = self._states[pid] = seeded or ProfileState(pid)
        return st

    def _resolve(self, event: Mapping[str, Any]) -> ProfileState:
        """Find the person: a user id wins; an anonymous id seen before a login is merged into it."""
        user, anon = event.get("user_id"), event.get("anonymous_id")
        prev = event.get("previous_id")
        pid = user or self._alias.get(anon or "", anon) or event.get("person_id")
        if not pid:
            raise ValueError("event has no user_id, anonymous_id or person_id")
        st = self._get(pid)
        for other in (anon, prev):
            if user and other and other != user:
                old_pid = self._alias.get(other, other)
                if old_pid != st.person_id and old_pid in self._states:
                    self._merge(st, self._states.pop(old_pid))
                self._alias[other] = st.person_id
                st.anonymous_ids.add(other)
        if user:
            st.user_id = user
        elif anon:
            st.anonymous_ids.add(anon)
        if self.shared is not None:
            self._dirty.add(st.person_id)
        return st

    @staticmethod
    def _merge(into: ProfileState, old: ProfileState) -> None:
        """Fold a pre-login anonymous profile into the known one (the newer values win)."""
        into.anonymous_ids |= old.anonymous_ids
        into.traits = {**old.traits, **into.traits}
        into.recent = deque(sorted([*old.recent, *into.recent], key=lambda r: r["ts"]), maxlen=RECENT_EVENTS)
        into.opted_out |= old.opted_out
        into.cart = {**old.cart, **into.cart}
        into.purchases += old.purchases
        for k, v in old.last_contact.items():
            into.last_contact[k] = max(v, into.last_contact.get(k, v))
        if into.last_ts is None or (old.last_ts is not None and old.last_ts > into.last_ts):
            for name in ("session_no", "session_start", "session_moments", "session_cart_events",
                         "session_conversions", "session_product_views", "session_support_events",
                         "purchased_before_session", "moment", "go_type", "moment_confidence", "moment_text",
                         "moment_started_at", "moment_last_at", "stage", "last_ts", "timezone", "lat", "lon",
                         "device", "channel", "cart_updated_at"):
                setattr(into, name, getattr(old, name))
        into.events += old.events
        into.persona = into.persona or old.persona

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
        props = _as_dict(event.get("properties"))
        ctx = _as_dict(event.get("context"))
        decisions: list[Decision] = []

        # Session: a silence longer than the journey's session gap starts a new one.
        if st.last_ts is None or ts - st.last_ts > self.session_gap:
            st.session_no += 1
            st.session_start = ts
            st.session_moments = Counter()
            st.session_cart_events = st.session_conversions = 0
            st.session_product_views = st.session_support_events = 0
            st.purchased_before_session = st.purchases > 0
        st.first_ts = st.first_ts or ts
        st.last_ts = max(ts, st.last_ts) if st.last_ts else ts
        st.events += 1

        self._update_profile(st, event, etype, name, props, ctx)
        self._update_commerce(st, event, name, props, ts, decisions)

        # Moment, online: the intent engine (cached) with the batch path's precedence.
        em: EventMoment | None = None
        started = False
        if etype in ("track", "page", "screen") and not name.startswith("moment."):
            em = moment_for_event(event, classifier=self.classifier, rules=self.rules)  # type: ignore[arg-type]
            if em is not None and em.moment != "other":
                st.session_moments[em.moment] += 1
                started = (em.moment != st.moment or st.moment_last_at is None
                           or ts - st.moment_last_at > self.episode_gap or st.session_start == ts)
                if started:
                    st.moment, st.go_type, st.moment_started_at = em.moment, em.go_type, ts
                    st.moment_confidence = em.confidence
                    st.moment_text = event.get("query") or event.get("page_title") or event.get("event")
                elif em.go_type and st.go_type is None:
                    st.go_type = em.go_type
                st.moment_last_at = ts
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
            decisions += self._fire(st, mc, event, store, km, ts)
        return decisions

    def _update_profile(self, st: ProfileState, event: Mapping[str, Any], etype: str, name: str,
                        props: dict[str, Any], ctx: dict[str, Any]) -> None:
        traits = _as_dict(event.get("traits"))
        if traits:
            st.traits.update(traits)
            if traits.get("persona"):
                st.persona = str(traits["persona"])
            seg = traits.get("segments")
            if isinstance(seg, list):
                st.segments = tuple(str(s) for s in seg)
        for key in ("timezone", "device"):
            value = event.get("timezone") if key == "timezone" else event.get("device_type")
            if value:
                setattr(st, key, value)
        if event.get("lat") is not None and event.get("lon") is not None:
            st.lat, st.lon = float(event["lat"]), float(event["lon"])
        if event.get("channel"):
            st.channel = event["channel"]
        device = ctx.get("device")
        if isinstance(device, dict) and device.get("token"):
            st.push_token = str(device["token"])
        # Consent: Segment's consent object, opt-out traits, and (un)subscribe events.
        consent = ctx.get("consent")
        prefs = consent.get("categoryPreferences") if isinstance(consent, dict) else None
        if isinstance(prefs, dict):
            for k in ("marketing", "advertising", "personalization"):
                if k in prefs:
                    st.consent = bool(prefs[k])
                    break
        for src in (traits, props):
            for key, channel in (("unsubscribed", "all"), ("opt_out", "all"), ("email_opt_out", "email"),
                                 ("push_opt_out", "push"), ("sms_opt_out", "sms")):
                if key in src:
                    (st.opted_out.add if src[key] else st.opted_out.discard)(channel)
            if "marketing_consent" in src:
                st.consent = bool(src["marketing_consent"])
        if etype == "track":
            if name in OPT_OUT_EVENTS:
                st.opted_out.add(props.get("channel") or OPT_OUT_EVENTS[name])
            elif name in OPT_IN_EVENTS:
                ch = props.get("channel") or OPT_IN_EVENTS[name]
                st.opted_out.discard(ch)
                if ch == "all":
                    st.opted_out.clear()
                    st.consent = True

    def _update_commerce(self, st: ProfileState, event: Mapping[str, Any], name: str, props: dict[str, Any],
                         ts: datetime, decisions: list[Decision]) -> None:
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
        elif name in CLICK_EVENTS or self._decision_ref(props, event, explicit=True):
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
        ev = {"type": "track", "event": "moment.started", "person_id": st.person_id, "ts": ts,
              "moment": em.moment, "go_type": em.go_type, "confidence": round(em.confidence, 3),
              "basis": em.basis, "text": st.moment_text, "stage": st.stage, "persona": st.persona,
              "session_no": st.session_no, "channel": event.get("channel"), "city": event.get("city"),
              "nearest_store": store.get("name") if store else None,
              "store_km": round(km, 2) if km is not None else None,
              "message_id": event.get("message_id")}
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

    def _fire(self, st: ProfileState, mc: MatchContext, event: Mapping[str, Any],
              store: dict[str, Any] | None, km: float | None, ts: datetime) -> list[Decision]:
        """Evaluate playbooks by priority; the first one within its limits sends (one contact per event)."""
        out: list[Decision] = []
        for pb in self.playbooks:
            ch = pb.action.channel
            if ch not in INTERRUPTING or not pb.when.matches(mc):
                continue
            status = self._blocked(st, pb, mc, ts)
            if status is None:
                items = self.catalog.candidates(moment=st.moment, stage=st.stage, persona=st.persona,
                                                channel=ch, ids=pb.action.content or None)
                if not items:
                    status = "no_content"
            d = self._new_decision(st, pb.name, ch, ts, mc, store, km)
            if status is not None:
                d.status = status
                self._log_decision(d)
                out.append(d)
                continue
            item, propensity = self._choose(items, d)
            d.content_id, d.propensity, d.status = item.id, propensity, "chosen"
            try:
                d.content = self.catalog.render(item, self._render_context(st, pb.name, store, km, event))
            except Exception as exc:  # a bad template (or a sandbox refusal) must not break the live path
                log.warning("content %s did not render: %s", item.id, exc)
                self._unchoose(d)
                d.status, d.context["error"] = "render_error", str(exc)[:200]
                self._log_decision(d)
                out.append(d)
                continue
            self._log_decision(d)
            self.ledger.record(st.person_id, ch, pb.name, ts)
            st.last_contact[ch] = ts
            st.last_decision = (d.decision_id, ts)
            self.worker.submit(Message(
                decision_id=d.decision_id, person_id=st.person_id, channel=ch, content=d.content,
                to=st.email if ch == "email" else st.push_token if ch == "push" else None,
                playbook=pb.name, target=pb.action.webhook,
                context={"moment": st.moment, "stage": st.stage, **d.context}))
            out.append(d)
            break
        return out

    def _blocked(self, st: ProfileState, pb: Playbook, mc: MatchContext, ts: datetime) -> str | None:
        """Why this playbook may not contact this person now (None: it may)."""
        ch = pb.action.channel
        if "all" in st.opted_out or ch in st.opted_out:
            return "opted_out"
        if st.consent is False or (self.config.activation.require_consent and st.consent is not True):
            return "no_consent"
        if ch == "email" and not st.email:
            return "no_address"
        if (f"webhook:{pb.action.webhook}" if ch == "webhook" else ch) not in self.deliverers and not (
            ch == "webhook" and "webhook" in self.deliverers
        ):
            return "no_channel"
        quiet = self._quiet.get(pb.name)
        if quiet is not None and mc.local is not None and quiet.contains(mc.local.time()):
            return "quiet_hours"
        if not self.ledger.allows(pb.limits.caps, st.person_id, ch, pb.name, ts):
            return "capped"
        return None

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
            "properties": _as_dict(event.get("properties")) if event else {},
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

    # -- decide (pull: web and in-app) -------------------------------------------------------------
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
                              properties=_as_dict(context.get("properties")),
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
