"""Sequence features per person at a cutoff, defined ONCE for the batch and the live path.

Over 500 lines because the batch and the live path must share one definition of every
feature: that is the point of this module.

A person's history is folded event by event into a small state (counts, decayed counts, last
times, the current session...). The features at a cutoff are a function of the state after the
last event at or before the cutoff, so nothing after the cutoff can leak in.

The fold is written over numpy arrays whose first axis is "people":

* batch (`batch_features`): all people advance in lockstep, one event each per step (people are
  ordered by event count, so the active ones are always a prefix and every update is a slice);
* live (`PersonState`): the very same `SeqState.step` on arrays of one person.

Events are first *encoded* into numbers by the same Python functions on both paths (batch maps
each distinct value once, then takes), so a moment, a cart event or a channel means the same.

>>> import datetime as dt
>>> spec = FeatureSpec()
>>> s = PersonState(spec)
>>> s.add({"ts": dt.datetime(2026, 9, 1, 10), "event": "Products Searched", "query": "drill", "moment": "buy"})
>>> s.add({"ts": dt.datetime(2026, 9, 1, 10, 5), "event": "Product Added", "moment": "buy"})
>>> f = dict(zip(spec.feature_names, s.features()[0].tolist()))
>>> f["count_buy"], f["session_count_cart"], f["session_events"]
(2.0, 1.0, 2.0)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from micromoments.journey.vocab import EventVocabulary

# Bump when the meaning of any feature changes: a model trained on another version is refused.
FEATURES_VERSION = 1

BASE_MOMENTS = ("know", "go", "do", "buy")
KINDS = ("conversion", "cart", "product_view", "support", "search", "located")
CHANNELS = ("web", "app", "email", "social", "paid-search", "organic-search", "referral", "direct", "store")
DEVICES = ("mobile", "desktop", "tablet")
_EPOCH = dt.datetime(1970, 1, 1)


@dataclass(frozen=True)
class FeatureSpec:
    """What the features are made of: moment types, channels, decay half-lives, the session gap.

    Saved in the model artifact, so scoring rebuilds exactly the features the model saw.
    """

    moments: tuple[str, ...] = BASE_MOMENTS
    channels: tuple[str, ...] = CHANNELS
    devices: tuple[str, ...] = DEVICES
    session_gap_minutes: int = 30
    decay_hours: tuple[float, ...] = (1.0, 24.0, 168.0)
    conversion_events: tuple[str, ...] = EventVocabulary().conversion_events
    cart_events: tuple[str, ...] = EventVocabulary().cart_events
    product_view_events: tuple[str, ...] = EventVocabulary().product_view_events
    support_events: tuple[str, ...] = EventVocabulary().support_events
    support_paths: tuple[str, ...] = EventVocabulary().support_paths
    version: int = FEATURES_VERSION

    # ---- construction ---------------------------------------------------------------
    @classmethod
    def from_config(cls, config: Any | None) -> "FeatureSpec":
        """The spec for a `Config`: custom moment types and the journey's session gap and vocabulary.

        >>> FeatureSpec.from_config(None).moments
        ('know', 'go', 'do', 'buy')
        """
        from micromoments.journey.vocab import vocabulary_from_config

        intent = getattr(config, "intent", None)
        custom = tuple(m.name for m in getattr(intent, "custom_moments", []) or []
                       if m.name and m.name not in BASE_MOMENTS and m.name != "other")
        journey = getattr(config, "journey", None)
        v = vocabulary_from_config(config)
        return cls(moments=BASE_MOMENTS + custom,
                   session_gap_minutes=int(getattr(journey, "session_gap_minutes", 30)),
                   conversion_events=v.conversion_events, cart_events=v.cart_events,
                   product_view_events=v.product_view_events, support_events=v.support_events,
                   support_paths=v.support_paths)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "FeatureSpec":
        known = set(cls.__dataclass_fields__)
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in known})

    # ---- names ----------------------------------------------------------------------
    @property
    def categories(self) -> tuple[str, ...]:
        """Moment types then event kinds: the columns of the per-category state."""
        return tuple(self.moments) + KINDS

    @property
    def feature_names(self) -> list[str]:
        cats, m = self.categories, self.moments
        names = ["events", "sessions", "tenure_s", "gap_s", "prev_session_gap_s", "session_events",
                 "session_elapsed_s", "session_distinct_moments", "revenue_total", "hour_utc", "weekday",
                 "last_lat", "last_lon"]
        names += [f"count_{c}" for c in cats]
        names += [f"session_count_{c}" for c in cats]
        names += [f"since_{c}_s" for c in cats]
        names += [f"decayed_{c}_{h:g}h" for h in self.decay_hours for c in cats]
        names += [f"share_{x}" for x in m]
        names += [f"last_moment_{x}" for x in (*m, "none")]
        names += [f"prev_moment_{x}" for x in (*m, "none")]
        names += [f"session_channel_{x}" for x in (*self.channels, "other")]
        names += [f"channel_{x}" for x in (*self.channels, "other")]
        names += [f"device_{x}" for x in (*self.devices, "other")]
        return names

    @property
    def feature_groups(self) -> dict[str, list[int]]:
        """Feature indices by family (for grouped permutation importance)."""
        groups: dict[str, list[int]] = {}
        for i, name in enumerate(self.feature_names):
            if name.startswith(("count_", "share_")):
                g = "history counts"
            elif name.startswith("session_channel_") or name.startswith("channel_"):
                g = "channel"
            elif name.startswith("session_") or name in ("session_events", "session_elapsed_s"):
                g = "current session"
            elif name.startswith("since_"):
                g = "recency"
            elif name.startswith("decayed_"):
                g = "decayed frequency"
            elif name.startswith(("last_moment_", "prev_moment_")):
                g = "last moments"
            elif name.startswith("device_"):
                g = "device"
            elif name in ("hour_utc", "weekday"):
                g = "time of day/week"
            elif name in ("last_lat", "last_lon"):
                g = "location"
            else:
                g = "activity"
            groups.setdefault(g, []).append(i)
        return groups


# ---- encoding one field value: the same functions serve the batch and the live path ------------
def _norm(value: Any) -> str:
    return value.lower().strip() if isinstance(value, str) else ""


def event_flags(spec: FeatureSpec, event: Any) -> tuple[bool, bool, bool, bool]:
    """(conversion, cart, product_view, support) for an event name, compared lower-cased (as journey/vocab)."""
    name = _norm(event)
    return (name in spec.conversion_events, name in spec.cart_events, name in spec.product_view_events,
            name in spec.support_events)


def path_is_support(spec: FeatureSpec, page_path: Any) -> bool:
    """A help/support/returns page (as journey/vocab)."""
    path = page_path.lower() if isinstance(page_path, str) else ""
    return any(path.startswith(p) for p in spec.support_paths)


def kind_flags(spec: FeatureSpec, event: Any, page_path: Any) -> tuple[bool, bool, bool, bool]:
    """(conversion, cart, product_view, support) of one event."""
    conv, cart, view, support = event_flags(spec, event)
    return conv, cart, view, support or path_is_support(spec, page_path)


def moment_code(spec: FeatureSpec, moment: Any) -> int:
    """Index of the moment type, -1 for none/other/unknown."""
    try:
        return spec.moments.index(moment) if isinstance(moment, str) else -1
    except ValueError:
        return -1


def channel_code(spec: FeatureSpec, channel: Any) -> int:
    """Index of the channel; unknown or missing channels share the last slot ('other')."""
    c = _norm(channel)
    return spec.channels.index(c) if c in spec.channels else len(spec.channels)


def device_code(spec: FeatureSpec, device: Any) -> int:
    d = _norm(device)
    return spec.devices.index(d) if d in spec.devices else len(spec.devices)


def has_query(query: Any) -> bool:
    return isinstance(query, str) and bool(query.strip())


def to_secs(ts: Any) -> float:
    """Epoch seconds of a naive-UTC datetime (aware ones are converted), ISO text or a number.

    Integer microseconds over 1e6, exactly as the batch path turns Arrow timestamps into seconds.
    """
    if isinstance(ts, (int, float, np.integer, np.floating)):
        return float(ts)
    if isinstance(ts, str):
        ts = dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))
    if hasattr(ts, "to_pydatetime"):
        ts = ts.to_pydatetime()
    if ts.tzinfo is not None:
        ts = ts.astimezone(dt.timezone.utc).replace(tzinfo=None)
    delta = ts - _EPOCH
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return float(np.float64(micros) / 1e6)


@dataclass
class EventBatch:
    """Encoded events: one entry per event (batch) or one event (live)."""

    secs: np.ndarray       # float64 epoch seconds
    onehot: np.ndarray     # (n, categories) float64: moment one-hot, then kind flags
    moment: np.ndarray     # int64, -1 none
    channel: np.ndarray    # int64
    device: np.ndarray     # int64
    lat: np.ndarray        # float64, NaN when unknown
    lon: np.ndarray
    revenue: np.ndarray    # float64, revenue of conversion events, else 0

    def take(self, idx: np.ndarray) -> "EventBatch":
        return EventBatch(*(getattr(self, f)[idx] for f in self.__dataclass_fields__))


def encode_event(spec: FeatureSpec, event: Mapping[str, Any], moment: Any = None) -> EventBatch:
    """Encode one canonical event dict (live path). `moment` overrides `event['moment']`.

    >>> b = encode_event(FeatureSpec(), {"ts": "2026-09-01T10:00:00", "event": "Order Completed",
    ...                                 "revenue": 20.0, "moment": "buy", "channel": "email"})
    >>> int(b.moment[0]), float(b.revenue[0]), int(b.channel[0])
    (3, 20.0, 2)
    """
    m = moment_code(spec, event.get("moment") if moment is None else moment)
    conv, cart, view, support = kind_flags(spec, event.get("event"), event.get("page_path"))
    lat, lon = event.get("lat"), event.get("lon")
    lat = float(lat) if lat is not None else np.nan
    lon = float(lon) if lon is not None else np.nan
    k = len(spec.moments)
    onehot = np.zeros((1, k + len(KINDS)))
    if m >= 0:
        onehot[0, m] = 1.0
    onehot[0, k:] = (conv, cart, view, support, has_query(event.get("query")), not np.isnan(lat))
    rev = event.get("revenue")
    revenue = float(rev) if conv and rev is not None and not (isinstance(rev, float) and np.isnan(rev)) else 0.0
    return EventBatch(
        secs=np.array([to_secs(event["ts"])]), onehot=onehot, moment=np.array([m]),
        channel=np.array([channel_code(spec, event.get("channel"))]),
        device=np.array([device_code(spec, event.get("device_type"))]),
        lat=np.array([lat]), lon=np.array([lon]), revenue=np.array([revenue]),
    )


def _map_distinct(values: Any, fn: Any) -> np.ndarray:
    """Apply `fn` to each distinct value of a column once, then take per row.

    Arrow columns are dictionary-encoded without turning every row into a Python object.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        enc = pc.dictionary_encode(values)
        enc = enc.combine_chunks() if isinstance(enc, pa.ChunkedArray) else enc
        codes = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        uniques = enc.dictionary.to_pylist()
    else:
        import pandas as pd

        codes, uniques = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
    mapped = [fn(u) for u in uniques] + [fn(None)]  # the last slot serves missing values (code -1)
    return np.asarray(mapped)[codes]


def encode_frame(spec: FeatureSpec, frame: Any) -> EventBatch:
    """Encode a table of events (pandas DataFrame or pyarrow Table with the canonical columns).

    Needs `ts`; uses `moment`, `event`, `page_path`, `query`, `channel`, `device_type`, `lat`,
    `lon`, `revenue` when present. Each distinct value goes through the live path's encoder once.
    """
    import pandas as pd
    import pyarrow as pa

    table = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
    n = table.num_rows

    def col(name: str) -> Any:
        return table.column(name) if name in table.column_names else pa.nulls(n, pa.string())

    def num(name: str) -> np.ndarray:
        if name not in table.column_names:
            return np.full(n, np.nan)
        c = table.column(name)
        if not (pa.types.is_floating(c.type) or pa.types.is_integer(c.type)):
            return pd.to_numeric(c.to_pandas(), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        return c.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)

    ts = table.column("ts")
    if pa.types.is_timestamp(ts.type):
        micros = ts.cast(pa.timestamp("us"), safe=False).cast(pa.int64()).to_numpy(zero_copy_only=False)
        secs = micros.astype(np.float64) / 1e6
    else:
        secs = np.array([to_secs(v) for v in ts.to_pylist()], dtype=np.float64)
    moment = _map_distinct(col("moment"), lambda v: moment_code(spec, v)).astype(np.int64)
    flags = np.array(_map_distinct(col("event"), lambda v: event_flags(spec, v)).tolist(), dtype=bool).reshape(n, 4)
    flags[:, 3] |= _map_distinct(col("page_path"), lambda v: path_is_support(spec, v)).astype(bool)
    lat, lon = num("lat"), num("lon")
    search = _map_distinct(col("query"), has_query).astype(bool)
    k = len(spec.moments)
    onehot = np.zeros((n, k + len(KINDS)))
    hit = moment >= 0
    onehot[np.flatnonzero(hit), moment[hit]] = 1.0
    onehot[:, k:k + 4] = flags
    onehot[:, k + 4] = search
    onehot[:, k + 5] = ~np.isnan(lat)
    rev = num("revenue")
    revenue = np.where(flags[:, 0] & ~np.isnan(rev), rev, 0.0)
    return EventBatch(
        secs=secs, onehot=onehot, moment=moment,
        channel=_map_distinct(col("channel"), lambda v: channel_code(spec, v)).astype(np.int64),
        device=_map_distinct(col("device_type"), lambda v: device_code(spec, v)).astype(np.int64),
        lat=lat, lon=lon, revenue=revenue,
    )


# ---- the fold ------------------------------------------------------------------------------------
@dataclass
class SeqState:
    """The state of `n` people after their events so far (arrays; the first axis is people)."""

    spec: FeatureSpec
    n: int
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n, k, d = self.n, len(self.spec.categories), len(self.spec.decay_hours)
        nan = np.full(n, np.nan)
        self.arrays = {
            "events": np.zeros(n), "sessions": np.zeros(n), "first_t": nan.copy(), "last_t": nan.copy(),
            "gap": nan.copy(), "prev_session_gap": nan.copy(), "session_start": nan.copy(),
            "session_events": np.zeros(n), "revenue": np.zeros(n),
            "lat": nan.copy(), "lon": nan.copy(),
            "last_moment": np.full(n, -1, dtype=np.int64), "prev_moment": np.full(n, -1, dtype=np.int64),
            "session_channel": np.full(n, len(self.spec.channels), dtype=np.int64),
            "channel": np.full(n, len(self.spec.channels), dtype=np.int64),
            "device": np.full(n, len(self.spec.devices), dtype=np.int64),
            "count": np.zeros((n, k)), "session_count": np.zeros((n, k)),
            "last_cat_t": np.full((n, k), np.nan), "decayed": np.zeros((n, k, d)),
        }
        self._tau = np.array(self.spec.decay_hours, dtype=np.float64) * 3600.0

    def step(self, sl: slice, ev: EventBatch) -> None:
        """Fold one event per person into the people at `sl` (ev holds one event for each)."""
        a = {k: v[sl] for k, v in self.arrays.items()}  # views: updates write through
        t = ev.secs
        gap = t - a["last_t"]                     # NaN for a person's first event
        first = np.isnan(gap)
        new_session = first | (gap > self.spec.session_gap_minutes * 60)
        # Decay the old counts to this event's time, then add it.
        decay = np.exp(-np.where(first, 0.0, gap)[:, None] / self._tau[None, :])
        a["decayed"] *= decay[:, None, :]
        a["decayed"] += ev.onehot[:, :, None]
        a["count"] += ev.onehot
        a["session_count"] *= ~new_session[:, None]
        a["session_count"] += ev.onehot
        a["last_cat_t"][...] = np.where(ev.onehot > 0, t[:, None], a["last_cat_t"])
        a["prev_session_gap"][...] = np.where(new_session & ~first, gap, a["prev_session_gap"])
        a["session_start"][...] = np.where(new_session, t, a["session_start"])
        a["session_events"][...] = np.where(new_session, 1.0, a["session_events"] + 1.0)
        a["sessions"] += new_session
        a["session_channel"][...] = np.where(new_session, ev.channel, a["session_channel"])
        a["channel"][...] = ev.channel
        a["device"][...] = np.where(ev.device < len(self.spec.devices), ev.device, a["device"])
        located = ~np.isnan(ev.lat)
        a["lat"][...] = np.where(located, ev.lat, a["lat"])
        a["lon"][...] = np.where(located, ev.lon, a["lon"])
        a["revenue"] += ev.revenue
        moved = (ev.moment >= 0) & (ev.moment != a["last_moment"])
        a["prev_moment"][...] = np.where(moved, a["last_moment"], a["prev_moment"])
        a["last_moment"][...] = np.where(ev.moment >= 0, ev.moment, a["last_moment"])
        a["gap"][...] = gap
        a["first_t"][...] = np.where(first, t, a["first_t"])
        a["last_t"][...] = t
        a["events"] += 1.0

    def features(self, sl: slice = slice(None)) -> np.ndarray:
        """The feature matrix (people at `sl` × `spec.feature_names`) as of each one's last event."""
        a = {k: v[sl] for k, v in self.arrays.items()}
        spec, m = self.spec, len(self.spec.moments)
        n = a["events"].shape[0]
        t = a["last_t"]
        day = np.floor(t / 86_400.0)
        cols = [
            a["events"], a["sessions"], t - a["first_t"], a["gap"], a["prev_session_gap"],
            a["session_events"], t - a["session_start"],
            (a["session_count"][:, :m] > 0).sum(axis=1).astype(np.float64), a["revenue"],
            np.floor((t - day * 86_400.0) / 3600.0), np.mod(day + 3.0, 7.0), a["lat"], a["lon"],
        ]
        blocks = [np.column_stack(cols), a["count"], a["session_count"], t[:, None] - a["last_cat_t"],
                  a["decayed"].transpose(0, 2, 1).reshape(n, -1),
                  a["count"][:, :m] / np.maximum(a["events"], 1.0)[:, None],
                  _onehot(a["last_moment"], m), _onehot(a["prev_moment"], m),
                  _onehot(a["session_channel"], len(spec.channels)), _onehot(a["channel"], len(spec.channels)),
                  _onehot(a["device"], len(spec.devices))]
        return np.concatenate(blocks, axis=1)


def _onehot(codes: np.ndarray, n_known: int) -> np.ndarray:
    """One-hot over n_known values plus a last slot for -1/unknown."""
    idx = np.where((codes >= 0) & (codes < n_known), codes, n_known)
    out = np.zeros((codes.shape[0], n_known + 1))
    out[np.arange(codes.shape[0]), idx] = 1.0
    return out


class PersonState:
    """One person's live state: `add(event)` is O(1); `features()` gives the model's input row.

    The twin of `batch_features` (same `SeqState.step`, on arrays of one person).
    """

    def __init__(self, spec: FeatureSpec, moment_fn: Any = None):
        self.spec = spec
        self.state = SeqState(spec, 1)
        self._moment_fn = moment_fn
        self._one = slice(0, 1)

    def add(self, event: Mapping[str, Any]) -> None:
        moment = None
        if "moment" not in event and self._moment_fn is not None:
            moment = self._moment_fn(event)
        self.state.step(self._one, encode_event(self.spec, event, moment))

    def extend(self, events: Iterable[Mapping[str, Any]]) -> "PersonState":
        for e in events:
            self.add(e)
        return self

    @property
    def n_events(self) -> int:
        return int(self.state.arrays["events"][0])

    def features(self) -> np.ndarray:
        return self.state.features(self._one)


# ---- batch -----------------------------------------------------------------------------------------
@dataclass
class BatchFeatures:
    """Features of many people: after every event (`X_events`) and/or at each one's last event."""

    person_ids: np.ndarray           # the people, in `X_last` order
    X_last: np.ndarray | None        # one row per person
    X_events: np.ndarray | None      # one row per event (input order), as of right after it
    last_secs: np.ndarray            # each person's last event time


def person_offsets(person_codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(starts, counts) of each run of equal codes in events sorted by person."""
    if person_codes.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    change = np.flatnonzero(np.diff(person_codes) != 0) + 1
    starts = np.concatenate([[0], change]).astype(np.int64)
    counts = np.diff(np.concatenate([starts, [person_codes.size]])).astype(np.int64)
    return starts, counts


def batch_features(spec: FeatureSpec, events: EventBatch, person_codes: np.ndarray,
                   *, per_event: bool = False, last: bool = True) -> BatchFeatures:
    """Fold the events of everyone (sorted by person, then time) with the live path's step.

    `per_event=True` also returns the features right after every event (training cutoffs).

    >>> import pandas as pd, datetime as dt
    >>> df = pd.DataFrame({"ts": [dt.datetime(2026, 9, 1, 10), dt.datetime(2026, 9, 1, 11),
    ...                           dt.datetime(2026, 9, 2, 9)], "moment": ["know", "buy", "go"]})
    >>> spec = FeatureSpec()
    >>> bf = batch_features(spec, encode_frame(spec, df), np.array([0, 0, 1]))
    >>> bf.X_last[:, spec.feature_names.index("count_know")].tolist()
    [1.0, 0.0]
    """
    starts, counts = person_offsets(person_codes)
    order = np.argsort(-counts, kind="stable")        # most events first: the active set is a prefix
    ordered_starts, ordered_counts = starts[order], counts[order]
    state = SeqState(spec, len(starts))
    n_feat = len(spec.feature_names)
    X_events = np.empty((person_codes.size, n_feat)) if per_event else None
    n_active = len(order)
    max_len = int(ordered_counts[0]) if len(order) else 0
    for k in range(max_len):
        while n_active and ordered_counts[n_active - 1] <= k:
            n_active -= 1
        idx = ordered_starts[:n_active] + k
        sl = slice(0, n_active)
        state.step(sl, events.take(idx))
        if X_events is not None:
            X_events[idx] = state.features(sl)
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    X_last = state.features()[inverse] if last else None
    return BatchFeatures(person_ids=np.arange(len(starts)), X_last=X_last, X_events=X_events,
                         last_secs=state.arrays["last_t"][inverse])


def history_features(spec: FeatureSpec, history: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """The live features of one history (a list of canonical events, oldest first): shape (1, F)."""
    state = PersonState(spec)
    state.extend(history)
    return state.features()
