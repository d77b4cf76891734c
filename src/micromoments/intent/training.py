"""The training set of the shipped head: CLINC150 (mapped), hand-written web queries, templates.

Everything is seeded, so `scripts/train_intent.py` rebuilds the same head.

Labels are internal classes: `know`, `go_local`, `go_site`, `do`, `buy` and `other`
(assistant chit-chat, which is no micro-moment).

>>> CLINC_MAP["directions"], CLINC_MAP["recipe"], CLINC_MAP["greeting"]
('go_local', 'do', 'other')
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from pathlib import Path

from micromoments.intent.text import normalize_text

DATA_DIR = Path(__file__).parent / "data"
WEB_QUERIES_PATH = DATA_DIR / "web_queries.txt"
CLASSES = ("know", "go_local", "go_site", "do", "buy", "other")

# CLINC150 intent -> class. Intents missing here (bank-account actions, smart-home and
# phone commands such as 'transfer', 'alarm', 'play_music') have no web-search analogue and are left out.
CLINC_MAP: dict[str, str] = {
    **dict.fromkeys([
        "definition", "fun_fact", "weather", "nutrition_info", "calories", "exchange_rate",
        "measurement_conversion", "timezone", "time", "date", "next_holiday", "travel_alert",
        "international_visa", "vaccines", "plug_type", "carry_on", "spelling", "translate", "mpg",
        "gas_type", "food_last", "cook_time", "oil_change_when", "flight_status", "distance",
        "calculator", "ingredients_list", "restaurant_reviews", "meaning_of_life", "travel_suggestion",
        "how_busy", "tire_pressure", "credit_score", "interest_rate", "apr", "taxes",
    ], "know"),
    **dict.fromkeys(["directions", "traffic", "current_location", "restaurant_suggestion"], "go_local"),
    **dict.fromkeys([
        "recipe", "jump_start", "tire_change", "oil_change_how", "ingredient_substitution",
        "improve_credit_score", "rollover_401k", "pin_change", "new_card", "direct_deposit",
        "order_checks", "insurance_change", "schedule_maintenance", "meal_suggestion",
    ], "do"),
    **dict.fromkeys([
        "order", "book_flight", "book_hotel", "car_rental", "restaurant_reservation",
        "accept_reservations", "uber",
    ], "buy"),
    **dict.fromkeys([
        "greeting", "goodbye", "thank_you", "yes", "no", "maybe", "tell_joke", "are_you_a_bot",
        "what_is_your_name", "how_old_are_you", "who_made_you", "what_are_your_hobbies",
        "do_you_have_pets", "where_are_you_from", "who_do_you_work_for", "what_can_i_ask_you",
        "repeat", "cancel", "change_speed", "whisper_mode", "change_accent", "change_ai_name",
        "user_name", "change_user_name", "flip_coin", "roll_dice", "change_volume", "reset_settings",
        "sync_device", "change_language",
    ], "other"),
}

# Template fillers for web-search shapes the hand-written list cannot cover exhaustively.
_PRODUCTS = """lawn mower|cordless drill|patio set|grill|paint|deck stain|garden hose|fertilizer|ceiling fan|
vanity|faucet|tile|laminate flooring|refrigerator|dishwasher|washer|dryer|water heater|ladder|chainsaw|
leaf blower|snow blower|generator|shed|fence panels|pavers|mulch|potting soil|raised bed|tv|laptop|
iphone|headphones|sofa|mattress|rug|desk chair|running shoes|jacket|stroller|car seat|tires|bike|
kayak|tent|smart thermostat|doorbell camera|air fryer|coffee maker|vacuum|blender|toolbox|wheelbarrow""".replace("\n", "").split("|")
_TASKS = """fix a leaky faucet|paint a fence|build a deck|install a dishwasher|replace a light switch|
grow tomatoes|prune hydrangeas|kill weeds|lay sod|clean gutters|unclog a toilet|tile a floor|
hang a door|stain a deck|build a shed|make a compost bin|install a ceiling fan|patch drywall|
change a tire|bake bread|make pasta|knit a scarf|tie a tie|lose weight|save money|fix a zipper|
reset a router|remove a tree stump|caulk a shower|insulate a garage|wire a light|build a fire pit|
plant a hedge|grow herbs indoors|cook steak|make soup|change a diaper|train a puppy""".replace("\n", "").split("|")
_DISHES = """chicken parmesan|beef stroganoff|banana bread|apple pie|chili|tacos|carbonara|ramen|
pancakes|waffles|brownies|meatballs|pot roast|gumbo|curry|enchiladas|stir fry|risotto|cheesecake""".replace("\n", "").split("|")
_PLACES = """home depot|lowes|walmart|target|costco|starbucks|mcdonalds|cvs|walgreens|kroger|
garden center|hardware store|urgent care|pharmacy|gas station|post office|bank|dentist|vet|
pizza place|sushi restaurant|coffee shop|library|gym|car wash|nursery|tire shop|ups store""".replace("\n", "").split("|")
_CITIES = "chicago|austin|denver|seattle|boston|miami|atlanta|phoenix|portland|dallas|brooklyn|san jose|tampa|omaha|raleigh|sacramento|toronto|dublin|nottingham|sheffield|cardiff|edinburgh|perth".split("|")
_ENTITIES = """tamarind|jacaranda|kombucha|okra|persimmon|lilac|hydrangea|zinnia|armadillo|
ocelot|narwhal|quokka|chihuahua|ford ranger|toyota tundra|honda pilot|ram 1500|chevy tahoe|
mazda cx5|dolly parton|serena williams|barack obama|frida kahlo|nikola tesla|marie curie|
tom brady|meryl streep|pedro pascal|bad bunny|stephen king|cleopatra|napoleon|the alps|lake como|
sicily|patagonia|bali|reykjavik|cappadocia|fibromyalgia|sciatica|vertigo|psoriasis|anemia|
rosacea|bronchitis|plantar fasciitis|roth 401k|annuity|stagflation|index fund|
sourdough starter|pergola|gazebo|joist hanger|sump pump|french drain|septic tank|radon""".replace("\n", "").split("|")
_ATTRS = "age|height|net worth|wife|history|facts|meaning|size|weight|lifespan|specs|population|symptoms|types".split("|")


def _templates(rng: random.Random, per_class: int) -> list[tuple[str, str]]:
    def pick(seq: list[str]) -> str:
        return rng.choice(seq).strip()

    makers = {
        "buy": [lambda: f"buy {pick(_PRODUCTS)}", lambda: f"{pick(_PRODUCTS)} for sale",
                lambda: f"cheap {pick(_PRODUCTS)}", lambda: f"{pick(_PRODUCTS)} price",
                lambda: f"best {pick(_PRODUCTS)} 2024", lambda: f"{pick(_PRODUCTS)} deals",
                lambda: f"{pick(_PRODUCTS)} sale", lambda: f"{pick(_PRODUCTS)} coupon",
                lambda: f"{pick(_PRODUCTS)} reviews", lambda: f"order {pick(_PRODUCTS)} online",
                lambda: f"{pick(_PRODUCTS)} under ${rng.choice([50, 100, 200, 500])}"],
        "do": [lambda: f"how to {pick(_TASKS)}", lambda: f"how do i {pick(_TASKS)}",
               lambda: f"{pick(_DISHES)} recipe", lambda: f"easy {pick(_DISHES)}",
               lambda: f"diy {pick(_PRODUCTS)}", lambda: f"{pick(_TASKS)} step by step",
               lambda: f"{pick(_TASKS)} video", lambda: f"best way to {pick(_TASKS)}",
               lambda: f"{pick(_TASKS)}"],
        "go_local": [lambda: f"{pick(_PLACES)} near me", lambda: f"{pick(_PLACES)} hours",
                     lambda: f"{pick(_PLACES)} open now", lambda: f"directions to {pick(_PLACES)}",
                     lambda: f"nearest {pick(_PLACES)}", lambda: f"{pick(_PLACES)} in {pick(_CITIES)}",
                     lambda: f"what time does {pick(_PLACES)} close",
                     lambda: f"{pick(_PLACES)} {pick(_CITIES)} address",
                     lambda: f"{pick(_CITIES)} {pick(_PLACES)}", lambda: f"{pick(_PLACES)} {pick(_CITIES)}"],
        "know": [lambda: pick(_ENTITIES), lambda: f"{pick(_ENTITIES)} {pick(_ATTRS)}",
                 lambda: f"what is {pick(_ENTITIES)}", lambda: f"who is {pick(_ENTITIES)}",
                 lambda: f"{pick(_ENTITIES)} vs {pick(_ENTITIES)}", lambda: f"is {pick(_ENTITIES)} dangerous",
                 lambda: f"why is {pick(_ENTITIES)} {rng.choice(['famous', 'important', 'expensive'])}",
                 # Questions *about* a task are informational, not how-to: "can you paint in winter".
                 lambda: f"can you {pick(_TASKS)} in {rng.choice(['winter', 'the rain', 'summer', 'one day'])}",
                 lambda: f"best {rng.choice(['time', 'month', 'season'])} to {pick(_TASKS)}",
                 lambda: f"when to {pick(_TASKS)}", lambda: f"how long does it take to {pick(_TASKS)}",
                 lambda: f"{pick(_PRODUCTS)} vs {pick(_PRODUCTS)}",
                 lambda: f"{pick(_PRODUCTS)} or {pick(_PRODUCTS)} which is better",
                 lambda: f"is {pick(_PRODUCTS)} safe for {rng.choice(['dogs', 'cats', 'kids', 'pets'])}",
                 lambda: f"do i need a permit to {pick(_TASKS)}",
                 lambda: f"how much does it cost to {pick(_TASKS)}" if rng.random() < 0.3 else f"is it hard to {pick(_TASKS)}"],
    }
    out: list[tuple[str, str]] = []
    for label, fns in makers.items():
        for _ in range(per_class):
            out.append((rng.choice(fns)(), label))
    return out


def _typo(rng: random.Random, text: str) -> str:
    # One deletion, transposition or doubled letter in a word of 4+ letters: real searchers' typos.
    words = text.split()
    long_words = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
    if not long_words:
        return text
    i = rng.choice(long_words)
    w = words[i]
    j = rng.randrange(1, len(w) - 1)
    kind = rng.randrange(3)
    if kind == 0:
        w = w[:j] + w[j + 1:]
    elif kind == 1:
        w = w[:j] + w[j + 1] + w[j] + w[j + 2:]
    else:
        w = w[:j] + w[j] + w[j:]
    words[i] = w
    return " ".join(words)


def _vocab_words(rng: random.Random, n: int) -> list[tuple[str, str]]:
    """Bare single words from the tokenizer's vocabulary, labelled `know`.

    A lone word ('tamerind', 'axolotl') is an informational query in the Broder/Jansen
    taxonomy unless it names a site; without these the head learns "one rare word = a brand".
    """
    from micromoments.intent.cues import FAMILIES, SITE_NAMES
    from micromoments.intent.embed import TOKENIZER_PATH

    vocab = json.loads(TOKENIZER_PATH.read_text(encoding="utf-8"))["model"]["vocab"]
    words = sorted(
        w for w, i in vocab.items()
        if i > 2500 and w.isalpha() and w.isascii() and len(w) >= 5 and w not in SITE_NAMES
        and not any(f.pattern.search(w) for f in FAMILIES)
    )
    rows = [(w, "know") for w in rng.sample(words, n)]
    # Rare names split into several word pieces ('tamerind' = tame ##rin ##d) must not look like
    # brands either: add pseudo-words built from pieces, and misspelt vocabulary words.
    heads = sorted(w for w, i in vocab.items() if i > 2500 and w.isalpha() and w.isascii() and 2 <= len(w) <= 5)
    tails = sorted(w[2:] for w in vocab if w.startswith("##") and w[2:].isalpha() and w[2:].isascii())
    for _ in range(n):
        rows.append((rng.choice(heads) + "".join(rng.choice(tails) for _ in range(rng.randint(1, 2))), "know"))
    rows += [(_typo(rng, w), "know") for w in rng.sample(words, n // 2)]
    return [(w, lab) for w, lab in rows if w not in SITE_NAMES]


def read_web_queries(path: Path = WEB_QUERIES_PATH) -> list[tuple[str, str]]:
    """(text, label) pairs from the hand-written list (`## label` headers, `#` comments)."""
    rows: list[tuple[str, str]] = []
    label = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            label = line[3:].strip()
        elif line.strip() and not line.startswith("#") and label:
            rows.append((normalize_text(line), label))
    return rows


def read_clinc(path: Path, per_intent: int, rng: random.Random) -> list[tuple[str, str]]:
    """A seeded sample of `per_intent` CLINC150 train utterances per mapped intent."""
    data = json.loads(path.read_text(encoding="utf-8"))
    by_intent: dict[str, list[str]] = {}
    for text, intent in data["train"]:
        if intent in CLINC_MAP:
            by_intent.setdefault(intent, []).append(text)
    rows: list[tuple[str, str]] = []
    for intent in sorted(by_intent):
        texts = sorted(by_intent[intent])
        rng.shuffle(texts)
        # Chit-chat ('other') is kept small: it must not swallow short real queries.
        take = per_intent if CLINC_MAP[intent] != "other" else max(1, per_intent // 3)
        rows += [(normalize_text(t), CLINC_MAP[intent]) for t in texts[:take]]
    return rows


def build_training_set(
    clinc_path: Path | None,
    *,
    seed: int = 13,
    clinc_per_intent: int = 30,
    template_per_class: int = 400,
    typo_share: float = 0.3,
    vocab_know: int = 500,
    extra: Iterable[tuple[str, str]] = (),
    exclude: Iterable[str] = (),
) -> list[tuple[str, str]]:
    """All (text, class) training pairs, de-duplicated, with texts in `exclude` (the dev set) removed."""
    rng = random.Random(seed)
    web = read_web_queries()
    rows = list(web)
    rows += [(_typo(rng, t), lab) for t, lab in web if rng.random() < typo_share]
    rows += _templates(rng, template_per_class)
    rows += _vocab_words(rng, vocab_know)
    if clinc_path is not None:
        rows += read_clinc(clinc_path, clinc_per_intent, rng)
    rows += [(normalize_text(t), lab) for t, lab in extra]
    banned = {normalize_text(t) for t in exclude}
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    for text, label in rows:
        if text and text not in banned and text not in seen:
            seen.add(text)
            out.append((text, label))
    return out
