"""A compositional grammar of search queries, labelled with their micro-moment.

Each *template family* (e.g. `buy.cheap`, `do.how_to`, `go.hours`) is a small function that
fills slots (product, brand, task, city, day, voice prefix...) from the person's current
project, so thousands of distinct texts come out of ~60 families. Noise (misspellings,
keyboard typos, auto-capitalisation, US spelling) is applied afterwards and never changes
the label.

The train/test split is decided per family, by a hash of its id, stratified by moment
and go type: about 30% of the families of each label are `test`. Near-duplicate texts
(same family, other slots or typos) therefore never straddle the split.

>>> import random
>>> ctx = QueryContext.for_project("patio", city="Leeds", us=False)
>>> text, fam = generate_query(random.Random(1), ctx, "do")
>>> fam.moment, fam.split in ("train", "test")
('do', True)
"""

from __future__ import annotations

import hashlib
import random
import string
from collections.abc import Callable
from dataclasses import dataclass, field

from micromoments.demo.vocab import (
    AMOUNTS, BRAND, BRANDS, BROKEN, CHEMICALS, DAYS, DRYING, GARDEN_SPOTS, MISSPELLINGS, MODELS, MONTHS,
    PETS, PRODUCTS, PROJECTS, STORE_TYPES, SYMPTOMS, TOOLS_TO_USE, USES, VOICE_PREFIXES, Product, Project, Task,
)

MOMENTS = ("know", "go", "do", "buy")
TEST_SHARE = 0.30
STYLES = ("head", "entity", "longtail", "question", "voice", "nav", "price", "trade", "local")


@dataclass
class QueryContext:
    """What the searcher has in mind: a project, a product and a task in it, the home city."""

    project: Project
    product: Product
    task: Task
    city: str
    us: bool = False
    subject: str | None = None   # set by families whose slot is not the task (a repair, a tool)
    pair: tuple[str, str] | None = None  # the last paired-slot draw

    @classmethod
    def for_project(cls, name: str, city: str, us: bool = False) -> "QueryContext":
        p = PROJECTS[name]
        return cls(p, PRODUCTS[p.products[0]], p.tasks[0], city, us)


@dataclass(frozen=True)
class Family:
    """One template family: a few templates sharing a cue ("cheap {product}", "cheapest {product}")."""

    id: str
    moment: str
    go_type: str      # local / site / "" for non-go moments
    style: str
    templates: tuple[str, ...]
    split: str = field(default="train", compare=False)


def _c(rng: random.Random, options: tuple[str, ...] | list[str]) -> str:
    return options[int(rng.random() * len(options))]


def _money(rng: random.Random, ctx: QueryContext) -> str:
    amount = max(10, int(ctx.product.price * (0.6 + rng.random())) // 10 * 10)
    sign = "$" if ctx.us else "£"
    return _c(rng, (f"{sign}{amount}", f"{amount} pounds", f"{amount}"))


def _model(rng: random.Random, ctx: QueryContext) -> str:
    brand = _c(rng, BRANDS[ctx.product.category])
    if brand not in MODELS:
        brand = _c(rng, tuple(MODELS))
    return f"{brand} {_c(rng, MODELS[brand])}"


def _other_product(rng: random.Random, ctx: QueryContext) -> str:
    for _ in range(4):
        name = _c(rng, ctx.project.products)
        if name != ctx.product.name:
            return name
    return _c(rng, tuple(PRODUCTS))


def _broken(rng: random.Random, ctx: QueryContext) -> str:
    b = _c(rng, BROKEN)
    ctx.subject = f"fix a {b}"
    return b


def _tool(rng: random.Random, ctx: QueryContext) -> str:
    tool = _c(rng, TOOLS_TO_USE)
    ctx.subject = f"use a {tool}"
    return tool


def _paired(pairs: tuple[tuple[str, str], ...], side: int) -> Callable[[random.Random, QueryContext], str]:
    """Slots that come in pairs ("paint" + "a 4x4 room"): the second side reuses the first's draw."""

    def fill(rng: random.Random, ctx: QueryContext) -> str:
        if side == 0 or ctx.pair is None or ctx.pair not in pairs:
            ctx.pair = _c(rng, pairs)  # type: ignore[arg-type]
        return ctx.pair[side]

    return fill

# Slot name -> how to fill it from the rng and the searcher's context.
SLOTS: dict[str, Callable[[random.Random, QueryContext], str]] = {
    "product": lambda rng, ctx: ctx.product.name,
    "product2": _other_product,
    "spec": lambda rng, ctx: _c(rng, ctx.product.specs),
    "spec2": lambda rng, ctx: _c(rng, ctx.product.specs),
    "brand": lambda rng, ctx: _c(rng, BRANDS[ctx.product.category]),
    "model": _model,
    "money": _money,
    "qty": lambda rng, ctx: _c(rng, ("10", "20", "25", "50", "100", "200")),
    "who": lambda rng, ctx: _c(rng, ("dad", "mum", "a gardener", "diy lovers", "him", "her", "a new homeowner")),
    "task": lambda rng, ctx: ctx.task.base,
    "gerund": lambda rng, ctx: ctx.task.gerund,
    "noun": lambda rng, ctx: ctx.task.noun,
    "question": lambda rng, ctx: _c(rng, ctx.project.questions),
    "voice": lambda rng, ctx: _c(rng, VOICE_PREFIXES),
    "drying": lambda rng, ctx: _c(rng, DRYING),
    "material": _paired(AMOUNTS, 0),
    "area": _paired(AMOUNTS, 1),
    "chem": lambda rng, ctx: _c(rng, CHEMICALS),
    "pet": lambda rng, ctx: _c(rng, PETS),
    "use_item": _paired(USES, 0),
    "use": _paired(USES, 1),
    "symptom": lambda rng, ctx: _c(rng, SYMPTOMS),
    "issue": lambda rng, ctx: _c(rng, SYMPTOMS).removeprefix("my "),
    "month": lambda rng, ctx: _c(rng, MONTHS),
    "spot": lambda rng, ctx: _c(rng, GARDEN_SPOTS),
    "when": lambda rng, ctx: _c(rng, ("in winter", "in the rain", "in summer", "in november", "on your own",
                                      "at night", "without planning permission", "in frost")),
    "broken": _broken,
    "tool": _tool,
    "store_type": lambda rng, ctx: _c(rng, STORE_TYPES),
    "city": lambda rng, ctx: ctx.city.lower(),
    "day": lambda rng, ctx: _c(rng, DAYS),
    "brand_name": lambda rng, ctx: BRAND,
}

B = "{brand_name}"

# id: (style, go_type, templates). The moment is the id's prefix (`site.` = go/site).
_GRAMMAR: dict[str, tuple[str, str, tuple[str, ...]]] = {
    # ---- buy: transactional, price, entity and availability queries
    "buy.head": ("head", "", ("{product}", "{product}s")),
    "buy.spec": ("head", "", ("{product} {spec}", "{spec} {product}", "{product} {spec} {spec2}")),
    "buy.brand_product": ("entity", "", ("{brand} {product}", "{brand} {product} {spec}", "{product} {brand}")),
    "buy.brand_model": ("entity", "", ("{model}", "{model} {spec}", "{model} kit")),
    "buy.verb": ("head", "", ("buy {product}", "buy {brand} {product}", "buy {product} online",
                              "where to buy {product} online", "buy {product} {spec}")),
    "buy.cheap": ("price", "", ("cheap {product}", "cheap {product} {spec}", "cheapest {product}",
                                "cheapest {brand} {product}", "{product} cheap", "cheap {spec} {product} uk")),
    "buy.deal": ("price", "", ("{product} deals", "{brand} {product} deal", "{product} offers", "{product} sale",
                               "{product} black friday", "{brand} {product} offer", "{product} clearance")),
    "buy.price": ("price", "", ("{product} price", "{brand} {product} price", "{product} best price",
                                "{product} {spec} price", "price of {product}", "{product} prices uk",
                                "how much is a {product}")),
    "buy.order_online": ("longtail", "", ("order {product} online", "{product} online", "order {product}",
                                          "order {brand} {product} for delivery")),
    "buy.delivery": ("longtail", "", ("{product} next day delivery", "{product} delivery",
                                      "{product} click and collect", "{product} {spec} free delivery",
                                      "{product} same day delivery")),
    "buy.under_price": ("price", "", ("{product} under {money}", "{product} for under {money}",
                                      "best {product} under {money}", "{spec} {product} under {money}")),
    "buy.discount": ("price", "", (B + " discount code", B + " voucher code", "{product} discount code",
                                   B + " promo code", B + " {product} voucher", B + " student discount",
                                   B + " money off code")),
    "buy.trade": ("trade", "", ("{product} bulk buy", "{qty} {product} trade price", "{product} pallet deal",
                                "{product} trade pack", "{product} bulk {spec}", "{qty} x {product} {spec}",
                                "trade price {brand} {product}")),
    "buy.for_sale": ("head", "", ("{product} for sale", "{spec} {product} for sale", "{product} shop",
                                  "{product} to buy")),
    "buy.in_stock": ("longtail", "", ("{product} in stock", "{brand} {product} in stock", "{product} available now",
                                      "{product} back in stock", "is {brand} {product} in stock online")),
    "buy.voice": ("voice", "", ("{voice} order {product}", "{voice} add {product} to my basket",
                                "{voice} can you find cheap {product}", "{voice} where can i buy {product} online",
                                "{voice} buy {brand} {product}", "{voice} i want to buy a {product} for delivery")),
    "buy.longtail": ("longtail", "", ("{brand} {product} {spec} {spec2} with free delivery",
                                      "{spec} {product} {brand} best deal uk",
                                      "{product} {spec} pack buy online collect today")),
    "buy.gift": ("longtail", "", ("{product} gift", B + " gift card", "gifts for {who}", "{product} gift for {who}",
                                  "buy " + B + " gift voucher")),
    # ---- know: research, facts, comparisons, advice
    "know.project_question": ("question", "", ("{question}", "{question}?")),
    "know.what_is": ("question", "", ("what is {product}", "what is a {product}", "what's {product} used for",
                                      "what is {spec} {product}", "{product} meaning", "what does a {product} do")),
    "know.best_time": ("question", "", ("best time to {task}", "best month to {task}", "what time of year to {task}",
                                        "best season to {task}")),
    "know.when": ("question", "", ("when to {task}", "when should i {task}", "is it too late to {task}",
                                   "when is it safe to {task}")),
    "know.drying": ("question", "", ("how long does {drying} take to dry", "{drying} drying time",
                                     "how long for {drying} to dry", "{drying} dry time before rain",
                                     "how long does {drying} last")),
    "know.amount": ("question", "", ("how much {material} do i need for {area}", "{material} calculator",
                                     "how many bags of {material} for {area}", "{material} coverage per m2")),
    "know.compare": ("head", "", ("{product} vs {product2}", "difference between {product} and {product2}",
                                  "{product} or {product2} which is better", "{product} versus {product2}")),
    "know.safety": ("question", "", ("is {chem} safe for {pet}", "{chem} safe for {pet}",
                                     "is {chem} harmful to {pet}", "how long to keep {pet} off {chem}",
                                     "{chem} toxic to {pet}")),
    "know.which_for": ("question", "", ("what {use_item} for {use}", "which {use_item} is best for {use}",
                                        "what kind of {use_item} for {use}", "recommended {use_item} for {use}")),
    "know.reviews": ("head", "", ("{brand} {product} review", "{product} reviews", "best {product} 2026",
                                  "{product} which best buy", "top rated {product}", "is {brand} a good brand")),
    "know.why": ("question", "", ("why is {symptom}", "what causes {issue}", "reasons for {issue}",
                                  "{issue} causes")),
    "know.calendar": ("question", "", ("what to plant in {month}", "what to sow in {month}",
                                       "jobs in the garden in {month}", "best plants for {spot}",
                                       "what grows well in {spot}")),
    "know.can_you": ("question", "", ("can you {task} {when}", "is it ok to {task} {when}",
                                      "should i {task} {when}")),
    "know.ideas": ("head", "", ("{noun} ideas", "{noun} ideas for small gardens", "{noun} inspiration",
                                "modern {noun} ideas", "{noun} ideas on a budget")),
    "know.voice": ("voice", "", ("{voice} {question}", "{voice} what is the best time to {task}",
                                 "{voice} how long does {drying} take to dry", "{voice} tell me about {product}",
                                 "{voice} what's the difference between {product2} and {product}")),
    "know.spec": ("head", "", ("{product} dimensions", "{product} weight", "{product} size guide",
                               "{product} {spec} specifications", "how big is a {spec} {product}")),
    # ---- do: how-to, repair, tutorials
    "do.how_to": ("question", "", ("how to {task}", "how to {task} properly", "how to {task} uk")),
    "do.how_do_i": ("question", "", ("how do i {task}", "how do you {task}", "how can i {task}",
                                     "how would i {task}")),
    "do.step": ("longtail", "", ("{task} step by step", "step by step guide to {gerund}",
                                 "{gerund} step by step uk", "{gerund} instructions")),
    "do.video": ("head", "", ("{task} video", "{gerund} video", "how to {task} video", "{gerund} youtube")),
    "do.diy": ("head", "", ("diy {noun}", "{noun} diy", "{gerund} diy guide", "diy {gerund}")),
    "do.tutorial": ("head", "", ("{gerund} tutorial", "{gerund} guide", "{gerund} tips", "{noun} tutorial")),
    "do.fix": ("head", "", ("fix {broken}", "how to fix a {broken}", "{broken} fix", "repair {broken}",
                            "fix {broken} video", "{broken} repair diy")),
    "do.use_tool": ("question", "", ("how to use a {tool}", "using a {tool} for the first time",
                                     "{tool} how to use", "how to use {tool} safely")),
    "do.beginner": ("longtail", "", ("{gerund} for beginners", "easy way to {task}", "best way to {task}",
                                     "quickest way to {task}", "{gerund} made easy")),
    "do.voice": ("voice", "", ("{voice} how do i {task}", "{voice} show me how to {task}",
                               "{voice} what's the easiest way to {task}",
                               "{voice} can you show me a video on {gerund}")),
    "do.long": ("longtail", "", ("how to {task} on a budget", "how to {task} yourself without a professional",
                                 "how to {task} in a weekend", "how to {task} like a pro",
                                 "what tools do i need to {task}")),
    # ---- go/local: places, opening hours, directions
    "go.near_me": ("local", "local", ("{store_type} near me", "{store_type}s near me", "nearest {store_type}",
                                      "{store_type} nearby", "{store_type} close to me")),
    "go.brand_near": ("local", "local", (B + " near me", "nearest " + B, B + " store near me", B + " stores",
                                         B + " store locator", "closest " + B + " to me")),
    "go.brand_city": ("entity", "local", (B + " {city}", B + " {city} store", B + " store {city}", "{city} " + B)),
    "go.hours": ("local", "local", (B + " opening hours", B + " {city} opening hours", B + " opening hours {day}",
                                    "what time does " + B + " close", "what time does " + B + " {city} open {day}",
                                    "is " + B + " open {day}", B + " {city} opening times")),
    "go.directions": ("local", "local", ("directions to " + B + " {city}", B + " {city} directions",
                                         "how to get to " + B + " {city}", B + " {city} address",
                                         B + " {city} parking", "route to " + B + " {city}")),
    "go.type_city": ("local", "local", ("{store_type} in {city}", "{store_type} {city}", "best {store_type} in {city}",
                                        "{store_type}s {city} area")),
    "go.open_now": ("local", "local", ("{store_type} open now", "{store_type} open {day} near me",
                                       "{store_type} open late near me", "{store_type} open now near me",
                                       "is there a {store_type} open now")),
    "go.product_near": ("local", "local", ("{product} near me", "where to buy {product} near me",
                                           "{product} in stock near me", "{product} shop near me",
                                           "pick up {product} near me today")),
    "go.store_contact": ("local", "local", (B + " {city} phone number", B + " {city} click and collect",
                                            B + " {city} contact", B + " {city} cafe", B + " {city} postcode")),
    "go.voice_local": ("voice", "local", ("{voice} where is the nearest {store_type} open now",
                                          "{voice} directions to the closest {store_type}",
                                          "{voice} navigate to " + B + " {city}",
                                          "{voice} what time does " + B + " close today",
                                          "{voice} find a {store_type} near me",
                                          "{voice} take me to the nearest " + B)),
    # ---- go/site: brand and site navigation
    "site.login": ("nav", "site", (B + " login", B + " sign in", B + " account", B + " my account", B + " log in",
                                   B + " password reset")),
    "site.orders": ("nav", "site", (B + " order status", B + " track my order", B + " track order",
                                    "where is my " + B + " order", B + " delivery tracking", B + " order number")),
    "site.service": ("nav", "site", (B + " returns", B + " customer service", B + " contact number",
                                     B + " live chat", B + " refund", B + " complaints")),
    "site.app": ("nav", "site", (B + " app", B + " app download", "download " + B + " app",
                                 B + " app not working")),
    "site.url": ("nav", "site", (B + ".co.uk", "www." + B + ".com", B + " website", B + ".ie", B + " com",
                                 B + " official site")),
    "site.trade": ("trade", "site", (B + " trade account", B + " trade login", B + " pro card",
                                     B + " trade account login", B + " trade portal")),
    "site.misc": ("nav", "site", (B + " gift card balance", B + " careers", B + " wish list", B + " newsletter",
                                  B + " store card", B + " price match")),
    "site.voice": ("voice", "site", ("{voice} open the " + B + " app", "{voice} track my " + B + " order",
                                     "{voice} go to " + B + " website", "{voice} log in to my " + B + " account")),
}

_FORMATTER = string.Formatter()


def _slots(template: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(name for _, name, _, _ in _FORMATTER.parse(template) if name))


_SLOTS_OF: dict[str, tuple[str, ...]] = {t: _slots(t) for _, _, ts in _GRAMMAR.values() for t in ts}
for _t, _names in _SLOTS_OF.items():
    for _n in _names:
        if _n not in SLOTS:
            raise ValueError(f"template {_t!r} uses unknown slot {{{_n}}}")

_FAMILIES: list[Family] = []
for _fid, (_style, _go, _templates) in _GRAMMAR.items():
    _moment = "go" if _fid.startswith(("go.", "site.")) else _fid.split(".")[0]
    _FAMILIES.append(Family(_fid, _moment, _go, _style, _templates))


def _label(f: Family) -> str:
    return f"{f.moment}/{f.go_type}"


def _assign_splits(families: list[Family], share: float) -> tuple[Family, ...]:
    """Per label, the `share` of families with the smallest hash of their id go to `test`."""
    out: dict[str, Family] = {}
    for label in sorted({_label(f) for f in families}):
        group = sorted((f for f in families if _label(f) == label),
                       key=lambda f: hashlib.sha1(f.id.encode()).hexdigest())
        n_test = max(1, round(len(group) * share))
        for i, f in enumerate(group):
            out[f.id] = Family(f.id, f.moment, f.go_type, f.style, f.templates, "test" if i < n_test else "train")
    return tuple(out[f.id] for f in families)


FAMILIES: tuple[Family, ...] = _assign_splits(_FAMILIES, TEST_SHARE)
FAMILIES_BY_MOMENT: dict[str, tuple[Family, ...]] = {m: tuple(f for f in FAMILIES if f.moment == m) for m in MOMENTS}
FAMILY_BY_ID: dict[str, Family] = {f.id: f for f in FAMILIES}


def family_weights(moment: str, style_weights: dict[str, float], go_type: str | None = None) -> list[float]:
    """Weights over `FAMILIES_BY_MOMENT[moment]` for a persona's taste in query styles."""
    return [
        style_weights.get(f.style, 1.0) if go_type is None or f.go_type == go_type else 0.0
        for f in FAMILIES_BY_MOMENT[moment]
    ]


# ---- noise -----------------------------------------------------------------------------
_KEYS = "qwertyuiopasdfghjklzxcvbnm"


def misspell(rng: random.Random, text: str) -> str:
    """One realistic slip: a common misspelling if a word has one, else a keyboard typo.

    >>> misspell(random.Random(0), "ericaceous compost") != "ericaceous compost"
    True
    """
    words = text.split(" ")
    known = [i for i, w in enumerate(words) if w in MISSPELLINGS]
    if known and rng.random() < 0.7:
        i = _c(rng, known)
        words[i] = _c(rng, MISSPELLINGS[words[i]])
        return " ".join(words)
    long_words = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
    if not long_words:
        return text
    i = _c(rng, long_words)
    w = words[i]
    j = 1 + int(rng.random() * (len(w) - 2))
    kind = rng.random()
    if kind < 0.35:  # swap two letters
        w = w[:j - 1] + w[j] + w[j - 1] + w[j + 1:]
    elif kind < 0.6:  # drop one
        w = w[:j] + w[j + 1:]
    elif kind < 0.8:  # double one
        w = w[:j] + w[j] + w[j:]
    else:  # hit a neighbour key
        w = w[:j] + _c(rng, _KEYS) + w[j + 1:]
    words[i] = w
    return " ".join(words)


_US_SPELLING = (("centre", "center"), ("colour", "color"), ("basket", "cart"), ("mum", "mom"))


def americanise(text: str) -> str:
    for uk, us in _US_SPELLING:
        if uk in text:
            text = text.replace(uk, us)
    return text.replace("£", "$").replace("pounds", "dollars").replace(" uk", " usa")


def generate_query(
    rng: random.Random,
    ctx: QueryContext,
    moment: str,
    *,
    style_weights: dict[str, float] | None = None,
    go_type: str | None = None,
    typo_rate: float = 0.0,
    capitalise_rate: float = 0.0,
) -> tuple[str, Family]:
    """One query text for `moment` (and `go_type` when given) with its template family.

    >>> rng = random.Random(7)
    >>> ctx = QueryContext.for_project("lawn", city="Leeds")
    >>> text, fam = generate_query(rng, ctx, "go", go_type="site")
    >>> fam.go_type, "greenhaven" in text
    ('site', True)
    """
    weights = family_weights(moment, style_weights or {}, go_type)
    fam = rng.choices(FAMILIES_BY_MOMENT[moment], weights)[0]
    return render_query(rng, ctx, fam, typo_rate=typo_rate, capitalise_rate=capitalise_rate), fam


def render_query(
    rng: random.Random, ctx: QueryContext, fam: Family, *, typo_rate: float = 0.0, capitalise_rate: float = 0.0,
) -> str:
    """Fill one of the family's templates from `ctx`, then add the searcher's noise."""
    template = _c(rng, fam.templates)
    ctx.pair = None
    names = _SLOTS_OF[template]
    text = template.format_map({n: SLOTS[n](rng, ctx) for n in names}) if names else template
    if ctx.us:
        text = americanise(text)
    if typo_rate and rng.random() < typo_rate:
        text = misspell(rng, text)
    if capitalise_rate and rng.random() < capitalise_rate:
        text = text[:1].upper() + text[1:]
    return text
