"""Moment detection on the live path: which micro-moment an event shows, and whether it starts a new one.

The intent engine reads the event (`intent.live.moment_for_event`, the batch path's precedence)
behind an LRU cache of classified texts; a moment *starts* when its type changes, when the last
one went quiet for longer than the journey's episode gap, or with a new session.

>>> import datetime as dt
>>> from micromoments.activation.profile import ProfileState
>>> from micromoments.config import Config
>>> from micromoments.intent.classifier import get_classifier
>>> from micromoments.intent.rules import load_rules
>>> st, ts = ProfileState("p1"), dt.datetime(2026, 9, 1, 10)
>>> st.session_start = ts
>>> ev = {"type": "track", "event": "Products Searched", "query": "how to lay patio slabs", "properties": {}}
>>> em, started = detect_moment(st, ev, "track", "products searched", ts, CachedClassifier(get_classifier(Config())),
...                             load_rules(Config()), dt.timedelta(minutes=30))
>>> em.moment, started, st.moment
('do', True, 'do')
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from micromoments.activation.profile import ProfileState
from micromoments.intent.classifier import Classifier, IntentResult
from micromoments.intent.live import EventMoment, moment_for_event

LIVE_TYPES = ("track", "page", "screen")


class CachedClassifier:
    """An LRU cache of classified texts in front of the intent `Classifier` (queries repeat a lot)."""

    def __init__(self, classifier: Classifier, size: int = 50_000):
        self.classifier = classifier
        self.size = size
        self._cache: OrderedDict[str, IntentResult] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def predict(self, texts: list[Any], *args: Any, **kwargs: Any) -> list[IntentResult]:
        """`Classifier.predict(texts, explain=True)`, each distinct text classified once while cached."""
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


def detect_moment(st: ProfileState, event: Mapping[str, Any], etype: str, name: str, ts: datetime,
                  classifier: CachedClassifier, rules: Any, episode_gap: timedelta) -> tuple[EventMoment | None, bool]:
    """The event's moment (None when it shows none) and whether it starts a new one; updates `st`."""
    if etype not in LIVE_TYPES or name.startswith("moment."):
        return None, False
    em = moment_for_event(event, classifier=classifier, rules=rules)  # type: ignore[arg-type]
    if em is None or em.moment == "other":
        return em, False
    st.session_moments[em.moment] += 1
    started = (em.moment != st.moment or st.moment_last_at is None
               or ts - st.moment_last_at > episode_gap or st.session_start == ts)
    if started:
        st.moment, st.go_type, st.moment_started_at = em.moment, em.go_type, ts
        st.moment_confidence = em.confidence
        st.moment_text = event.get("query") or event.get("page_title") or event.get("event")
    elif em.go_type and st.go_type is None:
        st.go_type = em.go_type
    st.moment_last_at = ts
    return em, started


def moment_started_event(st: ProfileState, em: EventMoment, ts: datetime, event: Mapping[str, Any],
                         store: dict[str, Any] | None, km: float | None) -> dict[str, Any]:
    """The `moment.started` event the live path publishes (listeners, the bus, the live page)."""
    return {"type": "track", "event": "moment.started", "person_id": st.person_id, "ts": ts,
            "moment": em.moment, "go_type": em.go_type, "confidence": round(em.confidence, 3),
            "basis": em.basis, "text": st.moment_text, "stage": st.stage, "persona": st.persona,
            "session_no": st.session_no, "channel": event.get("channel"), "city": event.get("city"),
            "nearest_store": store.get("name") if store else None,
            "store_km": round(km, 2) if km is not None else None,
            "message_id": event.get("message_id")}
