"""Simulate one person's journey over the days: sessions, moment episodes, Segment events.

Over 500 lines because `Journey` is one simulation whose steps all read and move the same
person's state; split up, the story of a session would be spread over several files.

A person belongs to a hidden persona, lives near one store, owns one or two web devices
and maybe the app (each with its own anonymousId), and works on one home or garden
*project* at a time. Each session moves the project along awareness -> consideration ->
decision -> post-purchase; the stage and the persona set which moments the person has.

Every session is a run of *episodes*: short runs of intent-bearing events with one
moment (a `go` query, the store locator and directions is one `go` episode). Every
episode after the first in a session opens with a search of a different moment, and
episodes stay under 10 minutes between events, so an episode detector that splits on
query moment changes and 10-minute gaps can recover them. Events outside episodes (home
page, app open, email click, identify, alias) carry no episode.

The simulator writes through a `sink`, so it holds nothing but the current person in memory:
  sink.event(event_dict, truth_row_tuple)
  sink.query(text, family)
  sink.person(person)          # once, after the person's last event

>>> from micromoments.demo.journey import simulate_person
>>> import datetime as dt
>>> class Sink:
...     def __init__(self): self.events, self.queries = [], []
...     def event(self, ev, truth): self.events.append(ev)
...     def query(self, text, fam): self.queries.append(text)
...     def person(self, person): self.who = person
>>> s = Sink(); simulate_person(s, seed=1, index=3, start=dt.date(2026, 9, 1), days=14) == len(s.events)
True
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import random
from bisect import bisect
import re
import uuid
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import accumulate
from typing import Any, Protocol
from urllib.parse import quote_plus

from micromoments.demo.personas import (
    CHANNEL_CONVERSION, PERSONA_KEYS, PERSONA_SHARES, PERSONAS, STAGE_CONVERSION, STAGE_MOMENTS,
    Persona,
)
from micromoments.demo.queries import FAMILIES_BY_MOMENT, MOMENTS, Family, QueryContext, render_query
from micromoments.demo.stores import STORES_BY_COUNTRY, Store, distance_km
from micromoments.demo.timeutil import day_epoch_s, iso_ms, utc_offset_s
from micromoments.demo.vocab import (
    APP_NAME, BRANDS, EMAIL_DOMAINS, FIRST_NAMES, PRODUCTS, PROJECTS, SITE, VOICE_PREFIXES, Product, Project,
)


class Sink(Protocol):
    def event(self, event: dict[str, Any], truth: tuple[Any, ...]) -> None: ...
    def query(self, text: str, family: Family) -> None: ...
    def person(self, person: "Person") -> None: ...


SKEW_SESSION_RATE = 0.06     # share of mobile sessions whose device clock is off
COUNTRY_SHARES = (("GB", 0.62), ("IE", 0.12), ("US", 0.26))
PROJECT_TASTE: dict[str, dict[str, float]] = {
    "weekend_diy": {"patio": 2, "painting": 2, "fencing": 2, "bathroom": 1.5, "outdoor-living": 1.5, "home-fix": 1.5},
    "local_shopper": {"planting": 2, "lawn": 1.5, "outdoor-living": 1.5, "painting": 1},
    "deal_hunter": {"tools": 2, "outdoor-living": 2, "home-fix": 1.5, "lawn": 1.5},
    "garden_researcher": {"planting": 4, "lawn": 2.5, "outdoor-living": 1.2, "fencing": 1},
    "trade_pro": {"tools": 3, "bathroom": 2, "home-fix": 2, "patio": 2, "fencing": 1.5, "painting": 1.5},
}
CAMPAIGNS = {
    "email": (("newsletter", "email", ("weekly-deals", "autumn-garden-sale", "new-in-tools", "lawn-care-tips",
                                         "trade-offers", "bulb-season"))),
    "paid-search": (("google", "cpc", ("generic-tools", "garden-power-sale", "compost-offers", "brand-search",
                                         "local-stores"))),
    "social": (("pinterest", "social", ("patio-ideas", "planting-guide", "youtube-howto", "autumn-inspiration"))),
}
SOCIAL_SOURCES = (("pinterest", "https://www.pinterest.com/"), ("facebook", "https://www.facebook.com/"),
                  ("youtube", "https://www.youtube.com/"), ("instagram", "https://www.instagram.com/"))
SEARCH_ENGINES = ("https://www.google.com/", "https://www.google.com/", "https://www.google.com/",
                  "https://www.bing.com/", "https://duckduckgo.com/")

_UA = {
    ("desktop", "Windows"): "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                            "Chrome/128.0.0.0 Safari/537.36",
    ("desktop", "Mac OS X"): "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
                             "Gecko) Version/17.5 Safari/605.1.15",
    ("mobile", "iOS"): "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
                       "Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    ("mobile", "Android"): "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
                           "Chrome/128.0.0.0 Mobile Safari/537.36",
    ("tablet", "iPadOS"): "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                          "Version/17.5 Mobile/15E148 Safari/604.1",
    ("tablet", "Android"): "Mozilla/5.0 (Linux; Android 13; SM-X200 Tablet) AppleWebKit/537.36 (KHTML, like "
                           "Gecko) Chrome/128.0.0.0 Safari/537.36",
}
_OS_BY_KIND = {"desktop": ("Windows", "Windows", "Mac OS X"), "mobile": ("iOS", "Android"),
               "tablet": ("iPadOS", "Android")}


_NON_ALNUM = re.compile(r"[^a-z0-9]+")


@lru_cache(maxsize=65_536)
def _slug(text: str) -> str:
    return _NON_ALNUM.sub("-", text.lower()).strip("-")


_SKU: dict[str, str] = {
    name: f"GH{int(hashlib.md5(name.encode()).hexdigest()[:8], 16) % 900000 + 100000}" for name in PRODUCTS
}


_BRAND_OF: dict[str, str] = {
    name: BRANDS[p.category][int(hashlib.md5(name.encode()).hexdigest()[:6], 16) % len(BRANDS[p.category])]
    for name, p in PRODUCTS.items()
}


def _title(text: str) -> str:
    for v in VOICE_PREFIXES:
        if text.startswith(v + " "):
            text = text[len(v) + 1:]
            break
    return text[:1].upper() + text[1:]


@dataclass
class Device:
    anon_id: str
    kind: str              # desktop / mobile / tablet
    app: bool
    os: str
    context: dict[str, Any]   # the static part of Segment's context
    identified: bool = False


@dataclass
class Person:
    index: int
    key: str
    persona: Persona
    store: Store
    lat: float
    lon: float
    user_id: str | None
    email: str
    first_name: str
    moments: list[float]          # cumulative weights per MOMENTS, person-specific
    hours: list[float]            # cumulative
    weekdays: list[float]         # Mon..Sun raw weights
    activity: float
    conversion: float
    web_devices: list[Device]
    app_device: Device | None
    projects: list[str]
    project_weights: list[float]
    orders: list[str] = field(default_factory=list)


def _dirichlet(rng: random.Random, means: list[float], concentration: float) -> list[float]:
    draws = [rng.gammavariate(max(m * concentration, 1e-3), 1.0) for m in means]
    total = sum(draws)
    return [d / total for d in draws]


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _pick(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(tuple(weights), tuple(weights.values()))[0]


def _make_device(rng: random.Random, person_key: str, kind: str, app: bool, store: Store, lat: float,
                 lon: float) -> Device:
    os_name = rng.choice(_OS_BY_KIND[kind])
    ctx: dict[str, Any] = {
        "locale": store.locale,
        "timezone": store.timezone,
        "ip": f"{rng.choice(('203.0.113', '198.51.100', '192.0.2'))}.{rng.randrange(1, 255)}",
        "os": {"name": os_name},
    }
    if app:
        version = rng.choice(("5.12.0", "5.11.2", "5.10.1"))
        ctx["app"] = {"name": APP_NAME, "version": version, "build": version.replace(".", ""),
                      "namespace": "example.greenhaven.app"}
        plat = "iPhone; iOS 17.5" if os_name == "iOS" else "Linux; Android 14"
        ctx["userAgent"] = f"Greenhaven/{version} ({plat}; Scale/3.00)"
        ctx["device"] = {"type": "mobile", "manufacturer": "Apple" if os_name == "iOS" else "Google",
                         "model": "iPhone15,2" if os_name == "iOS" else "Pixel 8"}
        ctx["location"] = {"latitude": round(lat, 5), "longitude": round(lon, 5), "city": store.city,
                           "country": store.country}
    else:
        ctx["userAgent"] = _UA[(kind, os_name)]
        ctx["device"] = {"type": kind}
        # Web knows the place from geo-IP only: city level, so round the coordinates.
        ctx["location"] = {"latitude": round(lat, 1), "longitude": round(lon, 1), "city": store.city,
                           "country": store.country}
    return Device(_uuid(rng), kind, app, os_name, ctx)


def make_person(seed: int, index: int) -> tuple[Person, random.Random]:
    """Draw one person (persona, place, devices, tastes) and the rng that drives their journey.

    Seeding by (seed, index) makes each person independent of how many came before.
    """
    rng = random.Random(f"greenhaven:{seed}:{index}")
    persona = PERSONAS[rng.choices(PERSONA_KEYS, PERSONA_SHARES)[0]]
    key = f"P{index:07d}"
    country = rng.choices([c for c, _ in COUNTRY_SHARES], [w for _, w in COUNTRY_SHARES])[0]
    store = rng.choice(STORES_BY_COUNTRY[country])
    # Live within a persona-typical distance of the store (1 deg lat ~ 111 km).
    r_km = persona.near_store_km * math.sqrt(-math.log(1.0 - rng.random() * 0.95)) * 0.6
    theta = rng.random() * 2 * math.pi
    lat = store.lat + (r_km / 111.0) * math.cos(theta)
    lon = store.lon + (r_km / (111.0 * math.cos(math.radians(store.lat)))) * math.sin(theta)

    has_account = rng.random() < persona.login_rate
    user_id = f"u_{hashlib.sha1(f'{seed}:{index}'.encode()).hexdigest()[:12]}" if has_account else None
    first = rng.choice(FIRST_NAMES)
    email = f"{first}.{index}@{rng.choice(EMAIL_DOMAINS)}"

    moments = _dirichlet(rng, [persona.moments[m] for m in MOMENTS], 40.0)
    shift = rng.choice((-1, 0, 0, 1))
    hours = [persona.hours[(h - shift) % 24] * math.exp(rng.gauss(0, 0.15)) for h in range(24)]
    weekdays = [w * math.exp(rng.gauss(0, 0.2)) for w in persona.weekdays]

    web: list[Device] = []
    kind = _pick(rng, persona.devices)
    web.append(_make_device(rng, key, kind, False, store, lat, lon))
    if rng.random() < 0.35:  # a second browser: work laptop, partner's tablet, phone
        other = _pick(rng, persona.devices)
        web.append(_make_device(rng, key, other, False, store, lat, lon))
    app = _make_device(rng, key, "mobile", True, store, lat, lon) if rng.random() < persona.app_adoption else None

    taste = PROJECT_TASTE[persona.key]
    projects = list(PROJECTS)
    person = Person(
        index=index, key=key, persona=persona, store=store, lat=lat, lon=lon, user_id=user_id, email=email,
        first_name=first, moments=list(accumulate(moments)), hours=list(accumulate(hours)), weekdays=weekdays,
        activity=math.exp(rng.gauss(0, 0.35)), conversion=persona.conversion * math.exp(rng.gauss(0, 0.25)),
        web_devices=web, app_device=app, projects=projects,
        project_weights=list(accumulate(taste.get(p, 0.4) for p in projects)),
    )
    return person, rng


def _poisson(rng: random.Random, lam: float) -> int:
    threshold, k, p = math.exp(-lam), 0, rng.random()
    while p > threshold:
        k += 1
        p *= rng.random()
    return k


class Journey:
    """One person's simulation; `run()` drives it and writes to the sink."""

    def __init__(self, sink: Sink, person: Person, rng: random.Random, start: dt.date, days: int, seed: int):
        self.sink, self.p, self.rng, self.start, self.days = sink, person, rng, start, days
        self.persona = person.persona
        self.n_events = 0
        self.n_sessions = 0
        self.n_episodes = 0
        self.msg_prefix = f"gh{seed}-{person.index:x}-"
        self.stage = "awareness" if self.persona.key != "trade_pro" else "consideration"
        self.project: Project = PROJECTS[self._project()]
        self.post_sessions = 0
        self.purchased: Product | None = None
        self.style = dict(self.persona.styles)
        self.moment_cum: dict[str, list[float]] = {}
        cum = {}
        for m in MOMENTS:
            for gt in (("local", "site") if m == "go" else (None,)):
                fams = [f for f in FAMILIES_BY_MOMENT[m] if gt is None or f.go_type == gt]
                cum[(m, gt)] = (fams, list(accumulate(self.style.get(f.style, 1.0) for f in fams)))
        self.family_cum = cum
        # session state
        self.t = 0
        self.device: Device = person.web_devices[0]
        self.channel = "direct"
        self.skew_ms = 0
        self.session_key = ""
        self.base_ctx: dict[str, Any] = {}
        self.page_ctx: dict[str, Any] = {}
        self.referrer = ""
        self.ep_id = ""
        self.ep_moment = ""
        self.ep_go = ""
        self.ctx = QueryContext(self.project, PRODUCTS[self.project.products[0]], self.project.tasks[0],
                                person.store.city, us=person.store.country == "US")

    # ---- choices --------------------------------------------------------------------
    def _project(self) -> str:
        return self.rng.choices(self.p.projects, cum_weights=self.p.project_weights)[0]

    def _moment(self, avoid: str) -> str:
        """A moment from the person's mix shifted by the stage; "" when only `avoid` comes up."""
        cum = self.moment_cum.get(self.stage)
        if cum is None:
            stage, base = STAGE_MOMENTS[self.stage], self.p.moments
            cum = self.moment_cum[self.stage] = list(accumulate(
                (base[i] - (base[i - 1] if i else 0.0)) * stage[m] for i, m in enumerate(MOMENTS)))
        rng, total = self.rng, cum[-1]
        for _ in range(4):
            m = MOMENTS[bisect(cum, rng.random() * total)]
            if m != avoid:
                return m
        return ""

    def _refresh_ctx(self) -> None:
        rng, ctx = self.rng, self.ctx
        ctx.project = self.project
        if self.stage == "post_purchase" and self.purchased is not None and rng.random() < 0.6:
            ctx.product = self.purchased
        else:
            ctx.product = PRODUCTS[rng.choice(self.project.products)]
        ctx.task = rng.choice(self.project.tasks)
        ctx.subject = None

    # ---- emitting -------------------------------------------------------------------
    def _emit(self, etype: str, *, event: str | None = None, name: str | None = None,
              properties: dict[str, Any] | None = None,
              extra: dict[str, Any] | None = None, context: dict[str, Any] | None = None) -> None:
        """Stamp, identify and hand one event to the sink. `context` overrides the current one."""
        rng = self.rng
        self.t += 4_000 + int(rng.random() * 70_000)
        true_ms = self.t
        device_ms = true_ms + self.skew_ms
        self.n_events += 1
        mid = self.msg_prefix + format(self.n_events, "x")
        ev: dict[str, Any] = {"type": etype, "messageId": mid, "anonymousId": self.device.anon_id}
        if self.device.identified:
            ev["userId"] = self.p.user_id
        if event is not None:
            ev["event"] = event
        if name is not None:
            ev["name"] = name
        ev["timestamp"] = ts = iso_ms(device_ms)
        true_ts = ts if not self.skew_ms else iso_ms(true_ms)
        if self.device.kind == "mobile":
            # Mobile libraries batch: sent a few seconds later by the device clock, received
            # by the server clock. receivedAt - (sentAt - timestamp) is the true time.
            delay = 500 + int(rng.random() * 20_000)
            ev["sentAt"] = sent = iso_ms(device_ms + delay)
            ev["receivedAt"] = sent if not self.skew_ms else iso_ms(true_ms + delay)
        ev["channel"] = self.channel
        if properties is not None:
            ev["properties"] = properties
        if extra:
            ev.update(extra)
        # Web events carry the current page (analytics.js does); app events the static context.
        ev["context"] = context if context is not None else self.page_ctx
        self.sink.event(ev, (mid, self.p.key, self.persona.key, self.session_key, self.ep_id, self.ep_moment,
                             self.ep_go, true_ts))

    def _page(self, path: str, title: str, name: str, *, search: str = "",
              properties: dict[str, Any] | None = None) -> None:
        url = SITE + path
        page = {"path": path.split("?")[0], "referrer": self.referrer, "search": search, "title": title, "url": url}
        self.referrer = url
        self.page_ctx = {**self.base_ctx, "page": page}
        self._emit("page", name=name, properties=properties if properties is not None else {})

    def _screen(self, name: str, properties: dict[str, Any] | None = None) -> None:
        self._emit("screen", name=name, properties=properties or {})

    def _track(self, event: str, properties: dict[str, Any]) -> None:
        self._emit("track", event=event, properties=properties)

    def _product_props(self, prod: Product, qty: int = 1) -> dict[str, Any]:
        return {"product_id": _SKU[prod.name], "sku": _SKU[prod.name], "name": prod.name, "brand": _BRAND_OF[prod.name],
                "category": prod.category, "price": prod.price, "quantity": qty}

    # ---- identity -------------------------------------------------------------------
    def _login(self) -> None:
        dev, p = self.device, self.p
        if p.user_id is None or dev.identified:
            return
        # Identity calls carry no intent: they sit outside any episode, even mid-checkout.
        episode = self.ep_id, self.ep_moment, self.ep_go
        self.ep_id = self.ep_moment = self.ep_go = ""
        if self.rng.random() < 0.25:
            self._emit("alias", extra={"previousId": dev.anon_id, "userId": p.user_id})
        dev.identified = True
        self._emit("identify", extra={"traits": {"email": p.email, "first_name": p.first_name.capitalize(),
                                                 "country": p.store.country}})
        self.ep_id, self.ep_moment, self.ep_go = episode

    # ---- searches -------------------------------------------------------------------
    def _search(self, moment: str, go_type: str | None = None) -> tuple[str, Family]:
        rng = self.rng
        fams, cum = self.family_cum[(moment, go_type)]
        fam = rng.choices(fams, cum_weights=cum)[0]
        self.ctx.subject = None
        cap = 0.12 if self.device.kind == "mobile" else 0.02
        text = render_query(rng, self.ctx, fam, typo_rate=self.persona.typo_rate, capitalise_rate=cap)
        self.sink.query(text, fam)
        voice = fam.style == "voice"
        if self.device.app:
            self._track("Products Searched", {"query": text, "input": "voice" if voice else "text"})
            if rng.random() < 0.4:
                self._screen("Search Results", {"query": text, "results": 5 + int(rng.random() * 60)})
        else:
            path = f"/search?q={quote_plus(text)}"
            title = f"Search results for \u201c{text}\u201d | Greenhaven"
            # 70%: a Products Searched track and the results page; 30%: the results page only.
            # The team's convention: context.page.search, when set, carries the query text;
            # otherwise the query is only in the URL's ?q=.
            if rng.random() < 0.7:
                self._track("Products Searched", {"query": text})
            self._page(path, title, "Search Results", search=text if rng.random() < 0.5 else "")
        return text, fam

    # ---- episodes -------------------------------------------------------------------
    def _episode(self, moment: str, with_query: bool) -> None:
        self.n_episodes += 1
        self.ep_id = f"{self.p.key}-E{self.n_episodes:03d}"
        self.ep_moment = moment
        self._refresh_ctx()
        go_type = ""
        if moment == "go":
            go_type = "local" if self.rng.random() < self.persona.go_local else "site"
        self.ep_go = go_type
        fam = None
        text = ""
        if with_query:
            text, fam = self._search(moment, go_type or None)
        if moment == "buy":
            self._buy(with_query)
        elif moment == "do":
            self._do(fam)
        elif moment == "know":
            self._know(text, fam)
        elif go_type == "local":
            self._go_local()
        else:
            self._go_site(fam)
        self.ep_id = self.ep_moment = self.ep_go = ""

    def _know(self, text: str, fam: Family | None) -> None:
        rng = self.rng
        topic = _title(text) if fam is not None and fam.id != "know.reviews" else \
            _title(rng.choice(self.project.questions))
        for i in range(1 + (rng.random() < 0.35)):
            if i:
                topic = _title(rng.choice(self.project.questions))
                if rng.random() < 0.2:  # a refinement search before the second article
                    self._search("know")
            path = f"/advice/{_slug(topic)}"
            title = f"{topic} | Greenhaven Advice"
            if self.device.app:
                self._screen("Advice Article", {"title": topic, "path": path})
            else:
                self._page(path, title, "Advice", properties={"category": self.project.name})
        if rng.random() < 0.12:
            self._track("Product Viewed", self._product_props(self.ctx.product))

    def _do(self, fam: Family | None) -> None:
        rng = self.rng
        subject = self.ctx.subject or self.ctx.task.base
        title = f"How to {subject}"
        path = f"/how-to/{_slug(subject)}"
        if self.device.app:
            self._screen("How-To Guide", {"title": title, "path": path})
        else:
            self._page(path, f"{title} | Greenhaven", "How-To", properties={"category": self.project.name})
        if rng.random() < self.persona.video_rate:
            self._track("Video Played", {"video_id": f"v-{_slug(subject)}"[:48], "title": title,
                                         "platform": "youtube", "position": 0,
                                         "total_length": 120 + int(rng.random() * 600)})
            if rng.random() < 0.5:
                self._track("Video Completed", {"video_id": f"v-{_slug(subject)}"[:48], "title": title})
        if rng.random() < 0.3:
            prods = [self._product_props(PRODUCTS[n]) for n in rng.sample(self.project.products, 2)]
            self._track("Product List Viewed", {"list_id": f"howto-{_slug(subject)}", "category": "tools-needed",
                                                "products": prods})
            if rng.random() < 0.2:
                self._track("Product Added", {**prods[0], "cart_id": f"c-{self.p.key}"})

    def _go_local(self) -> None:
        rng, st = self.rng, self.p.store
        locator = {"nearest_store_id": st.store_id, "results": 3 + int(rng.random() * 5)}
        if self.device.app:
            self._screen("Store Finder")
        else:
            self._page("/stores", "Find a store | Greenhaven", "Store Locator")
        self._track("Store Locator Viewed", locator)
        store_title = f"{st.name} | Opening hours & directions"
        if self.device.app:
            self._screen("Store Detail", {"store_id": st.store_id})
        else:
            self._page(f"/stores/{st.slug}", store_title, "Store", properties={"store_id": st.store_id})
        if rng.random() < self.persona.store_visit_rate:
            # The person's phone knows where they are: close to home, near the store.
            lat = self.p.lat + rng.gauss(0, 0.01)
            lon = self.p.lon + rng.gauss(0, 0.01)
            loc = {"latitude": round(lat, 5), "longitude": round(lon, 5), "city": st.city, "country": st.country}
            props = {"store_id": st.store_id, "store_name": st.name, "store_latitude": st.lat,
                     "store_longitude": st.lon, "distance_km": round(distance_km(lat, lon, st.lat, st.lon), 2),
                     "travel_mode": rng.choice(("driving", "driving", "walking", "transit"))}
            ctx = {**self.base_ctx, "location": loc}
            if not self.device.app:
                ctx["page"] = {"path": f"/stores/{st.slug}", "referrer": "", "search": "", "title": store_title,
                               "url": f"{SITE}/stores/{st.slug}"}
            if rng.random() < 0.3:
                self._emit("track", event="Store Map Clicked", properties={"store_id": st.store_id}, context=ctx)
            self._emit("track", event="Directions Requested", properties=props, context=ctx)

    _SITE_PAGES = {
        "site.login": ("/account/login", "Sign in | Greenhaven", "Sign In"),
        "site.trade": ("/trade/login", "Trade account sign in | Greenhaven", "Trade Sign In"),
        "site.orders": ("/track-order", "Track your order | Greenhaven", "Track Order"),
        "site.service": ("/help/contact", "Contact us | Greenhaven", "Help"),
        "site.app": ("/app", "Get the Greenhaven app | Greenhaven", "App"),
        "site.url": ("/", "Greenhaven | Home, Garden & DIY", "Home"),
        "site.misc": ("/gift-cards", "Gift cards | Greenhaven", "Gift Cards"),
        "site.voice": ("/track-order", "Track your order | Greenhaven", "Track Order"),
    }

    def _go_site(self, fam: Family | None) -> None:
        rng = self.rng
        fid = fam.id if fam is not None else rng.choice(("site.login", "site.orders", "site.service"))
        path, title, name = self._SITE_PAGES.get(fid, self._SITE_PAGES["site.login"])
        if self.device.app:
            self._screen({"/track-order": "Order Tracking", "/account/login": "Sign In"}.get(path, "Account"))
        else:
            self._page(path, title, name)
        if path.endswith("login"):
            self._login()
        elif path == "/track-order":
            props = {"order_id": self.p.orders[-1]} if self.p.orders else {}
            self._track("Order Tracked", props)
        elif path == "/help/contact" and rng.random() < 0.3:
            self._track("Support Chat Started", {"topic": rng.choice(("returns", "delivery", "refund"))})

    def _buy(self, searched: bool) -> None:
        rng, p, persona = self.rng, self.p, self.persona
        cat = self.ctx.product.category
        candidates = [n for n in self.project.products if PRODUCTS[n].category == cat] or [self.ctx.product.name]
        listed = [self._product_props(PRODUCTS[n]) for n in candidates[:4]]
        if not self.device.app and not searched:
            self._page(f"/c/{cat}", f"{cat.replace('-', ' ').title()} | Greenhaven", "Category",
                       properties={"category": cat})
        elif self.device.app and not searched:
            self._screen("Product List", {"category": cat})
        self._track("Product List Viewed", {"list_id": f"{'search' if searched else 'cat'}-{cat}",
                                            "category": cat, "products": listed})
        if searched and rng.random() < 0.25:  # refine the search
            self._search("buy")
        prob = p.conversion * CHANNEL_CONVERSION.get(self.channel, 1.0) * STAGE_CONVERSION[self.stage]
        order = rng.random() < min(prob, 0.9)
        views = 1 + (rng.random() < 0.5) + (rng.random() < 0.25)
        prod = self.ctx.product
        for _ in range(views):
            props = self._product_props(prod)
            if self.device.app:
                self._track("Product Viewed", props)
            else:
                self._page(f"/p/{_slug(prod.name)}-{props['sku']}",
                           f"{props['brand'].title()} {prod.name.title()} | Greenhaven", "Product",
                           properties={"product_id": props["sku"], "category": prod.category})
                self._track("Product Viewed", props)
            if rng.random() < 0.4:
                prod = PRODUCTS[rng.choice(candidates)]
        adds = order or rng.random() < 0.35
        if not adds:
            return
        # Basket size and value follow the persona: trade buys many units of few lines.
        target = persona.basket * math.exp(rng.gauss(0, 0.45))
        n_lines = max(1, min(len(self.project.products), int(rng.expovariate(1 / persona.items)) + 1))
        if not order:
            n_lines = 1  # an abandoned cart is usually one item
        names = [prod.name] + [n for n in rng.sample(self.project.products, n_lines) if n != prod.name]
        names = names[:n_lines]
        lines = []
        for n in names:
            pr = PRODUCTS[n]
            qty = max(1, round(target / n_lines / pr.price))
            line = self._product_props(pr, qty)
            lines.append(line)
        cart_id = f"c-{p.key}-{self.n_episodes}"
        for line in lines:
            self._track("Product Added", {**line, "cart_id": cart_id})
        if self.device.app:
            self._screen("Basket")
        else:
            self._page("/basket", "Your basket | Greenhaven", "Basket")
        self._track("Cart Viewed", {"cart_id": cart_id, "products": lines})
        if not order and rng.random() < 0.6:
            return  # cart abandonment
        if p.user_id and not self.device.identified and rng.random() < 0.85:
            self._login()
        revenue = round(sum(line["price"] * line["quantity"] for line in lines), 2)
        checkout = {"checkout_id": f"co-{p.key}-{self.n_episodes}", "value": revenue,
                    "currency": p.store.currency, "products": lines}
        if not self.device.app:
            self._page("/checkout", "Checkout | Greenhaven", "Checkout")
        self._track("Checkout Started", checkout)
        if not order:
            return  # checkout abandonment
        collect = rng.random() < persona.click_collect
        order_id = f"GH-{p.index:07d}-{len(p.orders) + 1:03d}"
        p.orders.append(order_id)
        props: dict[str, Any] = {"order_id": order_id, "checkout_id": checkout["checkout_id"], "revenue": revenue,
                                 "shipping": 0.0 if collect or revenue > 50 else 4.95, "tax": round(revenue / 6, 2),
                                 "currency": p.store.currency, "products": lines,
                                 "fulfillment": "click_and_collect" if collect else "delivery"}
        if collect:
            props["store_id"] = p.store.store_id
        if self.channel in ("email", "paid-search") or persona.key == "deal_hunter" and rng.random() < 0.6:
            props["coupon"] = rng.choice(("SAVE10", "AUTUMN15", "FREEDEL", "TRADE5"))
        if not self.device.app:
            self._page("/checkout/confirmation", "Order confirmed | Greenhaven", "Order Confirmation")
        self._track("Order Completed", props)
        self.purchased = prod
        self.stage = "post_purchase"
        self.post_sessions = 0

    # ---- sessions -------------------------------------------------------------------
    def _session(self, start_ms: int) -> int:
        rng, p, persona = self.rng, self.p, self.persona
        self.n_sessions += 1
        self.session_key = f"{p.key}-S{self.n_sessions:03d}"
        if p.app_device is not None and rng.random() < persona.app_session_share:
            self.device = p.app_device
            self.channel = "app"
        else:
            devs = p.web_devices
            self.device = devs[0] if len(devs) == 1 or rng.random() < 0.72 else devs[1]
            self.channel = _pick(rng, persona.channels)
        dev = self.device
        self.skew_ms = 0
        if dev.kind == "mobile" and rng.random() < SKEW_SESSION_RATE:
            self.skew_ms = rng.choice((-1, 1)) * (60_000 + int(rng.random() * 1_140_000))
        self.base_ctx = dict(dev.context)
        self.page_ctx = self.base_ctx
        self.referrer = ""
        campaign = None
        if self.channel in CAMPAIGNS:
            source, medium, names = CAMPAIGNS[self.channel]
            if self.channel == "social":
                source, self.referrer = rng.choice(SOCIAL_SOURCES)
            elif self.channel == "paid-search":
                self.referrer = "https://www.google.com/"
            campaign = {"source": source, "medium": medium, "name": rng.choice(names)}
            self.base_ctx["campaign"] = campaign
        elif self.channel == "organic-search":
            self.referrer = rng.choice(SEARCH_ENGINES)
        self.t = start_ms - 30_000

        # Stage moves along with each session; after post-purchase a new project starts.
        if self.stage == "post_purchase":
            self.post_sessions += 1
            if self.post_sessions > 1 + int(rng.random() * 3):
                self.stage = "awareness" if persona.key != "trade_pro" else "consideration"
                self.project = PROJECTS[self._project()]
        elif rng.random() < 0.3:
            self.stage = {"awareness": "consideration", "consideration": "decision"}.get(self.stage, self.stage)

        # How the session starts: a landing page (campaigns, search engines) or home + search.
        first = self._moment("")
        landing = False
        if self.channel == "email":
            first = "do" if self.stage == "post_purchase" and rng.random() < 0.6 else "buy"
            # Sent by the email platform, so it carries no page.
            self._emit("track", event="Email Link Clicked", context=self.base_ctx, properties={
                "email_id": f"em-{rng.randrange(1, 60):03d}", "campaign_name": campaign["name"] if campaign else "",
                "link_url": f"{SITE}/c/offers"})
            landing = True
        elif self.channel == "paid-search":
            first = "buy" if rng.random() < 0.8 else "go"
            landing = True
        elif self.channel == "social":
            first = "do" if rng.random() < 0.6 else "know"
            landing = True
        elif self.channel == "organic-search":
            landing = rng.random() < 0.5
        if self.channel == "app":
            self._track("Application Opened", {"from_background": rng.random() < 0.5, "version":
                                               dev.context["app"]["version"]})
            if p.user_id and not dev.identified and rng.random() < 0.9:
                self._login()
            self._screen("Home")
        elif not landing:
            self._page("/", "Greenhaven | Home, Garden & DIY", "Home")
            if p.user_id and not dev.identified and rng.random() < 0.15:
                self._login()

        moment = first
        n_eps = 1 + int(rng.expovariate(1.1))
        for i in range(n_eps):
            if not moment:
                break
            self._episode(moment, with_query=not (i == 0 and landing))
            self.t += 20_000 + int(rng.random() * 200_000)  # under 10 minutes: the query change splits
            moment = self._moment(moment)
        return self.t

    def run(self) -> int:
        rng, p = self.rng, self.p
        rate = self.persona.sessions_per_week / 7.0 * p.activity
        mean_wd = sum(p.weekdays) / 7.0
        tz = p.store.timezone
        start_weekday = self.start.weekday()
        busy_until = 0
        for d in range(self.days):
            day = self.start + dt.timedelta(days=d)
            lam = rate * p.weekdays[(start_weekday + d) % 7] / mean_wd
            n = _poisson(rng, lam)
            if not n:
                continue
            local_midnight_utc_s = day_epoch_s(day) - utc_offset_s(tz, day)
            starts = sorted(h * 3600 + int(rng.random() * 3600)
                            for h in rng.choices(range(24), cum_weights=p.hours, k=n))
            for s in starts:
                start_ms = (local_midnight_utc_s + s) * 1000
                if start_ms < busy_until + 35 * 60_000:  # keep sessions 30+ minutes apart
                    start_ms = busy_until + (35 + int(rng.random() * 90)) * 60_000
                busy_until = self._session(start_ms)
        return self.n_events


def simulate_person(sink: Sink, *, seed: int, index: int, start: dt.date, days: int) -> int:
    """Simulate person `index` and write their events and queries to `sink`; returns the event count."""
    person, rng = make_person(seed, index)
    journey = Journey(sink, person, rng, start, days, seed)
    n = journey.run()
    sink.person(person)
    return n
