"""Live profile state: what the live path knows about each person, and how one event updates it.

`ProfileState` is one person's state; `LiveProfiles` keeps them for an `Activator` (merging an
anonymous visitor into the person who logs in, and sharing snapshots with other processes through
`activation.shared_state`). The functions here are the updates an event makes, so they can be read
and tested without the rest of the live path.

>>> import datetime as dt
>>> st = ProfileState("p1")
>>> start_event(st, dt.datetime(2026, 9, 1, 10), dt.timedelta(minutes=30))
>>> update_profile(st, {"traits": {"first_name": "Ada", "persona": "planner"}}, "identify", "", {}, {})
>>> st.session_no, st.first_name, st.persona
(1, 'Ada', 'planner')
"""

from __future__ import annotations

import json
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from micromoments.activation.shared_state import take_snapshot

RECENT_EVENTS = 50
OPT_OUT_EVENTS = {"unsubscribed": "all", "opted out": "all", "email unsubscribed": "email",
                  "push disabled": "push", "push notifications disabled": "push", "sms opted out": "sms"}
OPT_IN_EVENTS = {"subscribed": "all", "opted in": "all", "push enabled": "push",
                 "push notifications enabled": "push", "email subscribed": "email"}


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


def as_dict(value: Any) -> dict[str, Any]:
    """A dict from a dict or its JSON text; {} for anything else.

    >>> as_dict('{"a": 1}'), as_dict("nope"), as_dict(None)
    ({'a': 1}, {}, {})
    """
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value.startswith("{"):
        try:
            parsed = json.loads(value)
            return parsed if isinstance(parsed, dict) else {}
        except ValueError:
            return {}
    return {}


def start_event(st: ProfileState, ts: datetime, session_gap: timedelta) -> None:
    """Count the event; a silence longer than the journey's session gap starts a new session."""
    if st.last_ts is None or ts - st.last_ts > session_gap:
        st.session_no += 1
        st.session_start = ts
        st.session_moments = Counter()
        st.session_cart_events = st.session_conversions = 0
        st.session_product_views = st.session_support_events = 0
        st.purchased_before_session = st.purchases > 0
    st.first_ts = st.first_ts or ts
    st.last_ts = max(ts, st.last_ts) if st.last_ts else ts
    st.events += 1


def update_profile(st: ProfileState, event: Mapping[str, Any], etype: str, name: str,
                   props: dict[str, Any], ctx: dict[str, Any]) -> None:
    """Traits, persona, segments, location, device, push token and consent from one event."""
    traits = as_dict(event.get("traits"))
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


def merge_profiles(into: ProfileState, old: ProfileState) -> None:
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


class LiveProfiles:
    """The live profiles of one process, keyed by person id, with the aliases of merged anonymous ids.

    Mixed into `Activator`, whose `_lock` guards them. With `shared` set (scale-out,
    activation/shared_state.py), the snapshots of changed profiles go there after each bus batch,
    and a person this process does not hold is read from there.
    """

    _lock: Any

    def _init_profiles(self) -> None:
        self._states: dict[str, ProfileState] = {}
        self._alias: dict[str, str] = {}
        self.shared: Any = None
        self._dirty: set[str] = set()

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
                    merge_profiles(st, self._states.pop(old_pid))
                self._alias[other] = st.person_id
                st.anonymous_ids.add(other)
        if user:
            st.user_id = user
        elif anon:
            st.anonymous_ids.add(anon)
        if self.shared is not None:
            self._dirty.add(st.person_id)
        return st
