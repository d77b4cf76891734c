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
REAL_QUERIES_PATH = DATA_DIR / "real_queries.tsv.gz"
CLASSES = ("know", "go_local", "go_site", "do", "buy", "other")
# The class balance of real search traffic the head is weighted towards (informational dominates):
# Jansen et al. (2008) ~80% informational, ~10% navigational, ~10% transactional; the real dev
# split here has know 74%, go 10%, do 13%, buy 2.4%.
TRAFFIC_SHARE = {"know": 0.70, "go_local": 0.03, "go_site": 0.10, "do": 0.11, "buy": 0.04, "other": 0.02}


def class_weights(labels: list[str], power: float = 1.0, share: dict[str, float] | None = None) -> dict[str, float]:
    """Per-class weights that turn the training balance into `share` (real traffic by default).

    >>> class_weights(["know", "know", "buy", "buy"], share={"know": 0.75, "buy": 0.25})
    {'buy': 0.5, 'know': 1.5}
    """
    share = share or TRAFFIC_SHARE
    counts = {c: labels.count(c) / len(labels) for c in sorted(set(labels))}
    total = sum(share.get(c, 0.02) for c in counts)
    return {c: round((share.get(c, 0.02) / total / counts[c]) ** power, 6) for c in counts}

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
_MEDIA = "minecraft|zoom|spotify|vlc player|the lion king|frozen 2|sims 4 mods|coloring pages|wallpapers|printable calendar|pdf reader|movies".split("|")
_GERUNDS = "planning|starting|cleaning|organizing|hosting|preparing|writing|designing|building|moving|painting".split("|")
_OBJECTS = "a resume|a party|a budget|a room|a kitchen|the garage|a vegetable garden|a bathroom|a nursery|a website|a podcast|a blog".split("|")
_EVENTS = "retirement party|family reunion|halloween costume|housewarming party|dinner party|book club|garage sale|science fair project|team building event|kids party|surprise party|pool party|sleepover|engagement party|hen party".split("|")
_SERVICES = "plumber|dentist|restaurants|urgent care|hair salon|auto repair|vet|nail salon|tire shop|locksmith|motels|divorce attorney|chiropractor|daycare|storage units|car wash|pharmacy|massage|optician|florist".split("|")
_ORGS = """dsw|argos|servicenow|chase|optum|geico|fidelity|kohls|sephora|ulta|staples|hsbc|barclays|natwest|aviva|vodafone|ee|o2|sky|bt|lidl|aldi|asos|boohoo|primark|jd sports|halfords|currys|virgin media|hermes|evri|royal mail|dpd|ancestry|myfitnesspal|fitbit|garmin connect|peloton|nordvpn|expressvpn|mailchimp|hubspot|zendesk|docusign|adp|gusto|quickbooks online|xero|sage|freshdesk|jira|confluence|bitbucket|okta|blackboard|moodle|schoology|infinite campus|powerschool|edmodo|quizlet|kahoot|turnitin|chegg|brainly|grammarly""".replace("\n", "").split("|")
_TOWNS = "fairfax|orange county|tarrant|pima|maricopa|tulsa|fresno|akron|boise|reno|toledo|laredo|mesa|tempe|ogden|provo|spokane|macon|savannah|durham|gwinnett|cobb|fulton|wake|dekalb".split("|")
_DE_SHOPS = "aldi|rewe|edeka|dm|apotheke|post|sparkasse|obi|hornbach|bauhaus|toom|lidl|kaufland|tankstelle".split("|")
_FR_SHOPS = "carrefour|leclerc|auchan|intermarché|pharmacie|la poste|decathlon|boulangerie|castorama|leroy merlin".split("|")
_ES_SHOPS = "mercadona|el corte inglés|farmacia|correos|carrefour|dia|lidl|leroy merlin|banco santander".split("|")
_DE_FOOD = "brot|kuchen|brötchen|käsekuchen|apfelstrudel|plätzchen|zopf".split("|")
_FR_FOOD = "crêpes|ratatouille|pain perdu|mousse au chocolat|gratin dauphinois|tarte aux pommes".split("|")
_ES_FOOD = "tortilla de patatas|paella|churros|gazpacho|flan|pan casero|croquetas".split("|")
_SERVICE_TASKS = ["make a complaint", "complaint form", "complaints procedure", "track my order", "track my parcel",
                  "return an item", "returns", "cancel my subscription", "cancel my order", "change my address",
                  "reset my password", "update payment details", "close my account", "refund request"]
_USES = "beginners|small spaces|seniors|camping|students|small dogs|home office|long distance|hiking".split("|")
_TASKS_N = "kitchen remodel|roof replacement|gym membership|car service|boiler service|driving lessons".split("|")
_ATTRS = "age|height|net worth|wife|history|facts|meaning|size|weight|lifespan|specs|population|symptoms|types".split("|")


def _templates(rng: random.Random, per_class: int) -> list[tuple[str, str]]:
    def pick(seq: list[str]) -> str:
        return rng.choice(seq).strip()

    makers = {
        "buy": [lambda: f"buy {pick(_PRODUCTS)}", lambda: f"{pick(_PRODUCTS)} for sale",
                lambda: f"cheap {pick(_PRODUCTS)}", lambda: f"{pick(_PRODUCTS)} deals",
                lambda: f"{pick(_PRODUCTS)} sale", lambda: f"{pick(_PRODUCTS)} coupon",
                lambda: f"order {pick(_PRODUCTS)} online", lambda: f"where to buy {pick(_PRODUCTS)}",
                lambda: f"{pick(_PRODUCTS)} under ${rng.choice([50, 100, 200, 500])}",
                lambda: f"{pick(_PRODUCTS)} for {rng.choice(['men', 'women', 'boys', 'girls', 'kids'])}",
                lambda: f"{pick(_PRODUCTS)} {rng.choice(['promo code', 'discount code', 'voucher', 'clearance'])}",
                lambda: f"{rng.choice(['free', 'download'])} {pick(_MEDIA)}",
                lambda: f"{pick(_MEDIA)} {rng.choice(['download', 'free download', 'full movie', 'watch online'])}"],
        "do": [lambda: f"how to {pick(_TASKS)}", lambda: f"how do i {pick(_TASKS)}",
               lambda: f"{pick(_DISHES)} recipe", lambda: f"easy {pick(_DISHES)}",
               lambda: f"diy {pick(_PRODUCTS)}", lambda: f"{pick(_TASKS)} step by step",
               lambda: f"{pick(_TASKS)} video", lambda: f"best way to {pick(_TASKS)}",
               lambda: f"{pick(_TASKS)}", lambda: f"{pick(_GERUNDS)} {pick(_OBJECTS)}",
               lambda: f"{pick(_EVENTS)} ideas", lambda: f"{pick(_EVENTS)}", lambda: f"planning a {pick(_EVENTS)}",
               lambda: f"{rng.choice(['30th', '40th', '50th', '60th', '1st', '2nd', 'kids', 'adult'])} birthday party"],
        "go_local": [lambda: f"{pick(_PLACES)} near me", lambda: f"{pick(_PLACES)} hours",
                     lambda: f"{pick(_PLACES)} open now", lambda: f"directions to {pick(_PLACES)}",
                     lambda: f"nearest {pick(_PLACES)}", lambda: f"{pick(_PLACES)} in {pick(_CITIES)}",
                     lambda: f"what time does {pick(_PLACES)} close",
                     lambda: f"{pick(_PLACES)} {pick(_CITIES)} address",
                     lambda: f"{pick(_CITIES)} {pick(_PLACES)}", lambda: f"{pick(_PLACES)} {pick(_CITIES)}",
                     lambda: f"{pick(_SERVICES)} in {pick(_CITIES)}", lambda: f"{pick(_SERVICES)} near me",
                     lambda: f"{pick(_CITIES)} {pick(_SERVICES)}"],
        "go_site": [lambda: f"{pick(_ORGS)}", lambda: f"{pick(_ORGS)} login", lambda: f"{pick(_ORGS)} account",
                    lambda: f"{pick(_ORGS)} customer service", lambda: f"university of {pick(_TOWNS)}",
                    lambda: f"{pick(_TOWNS)} {rng.choice(['community college', 'college', 'state university', 'university', 'isd', 'credit union', 'county schools'])}"],
        "know": [lambda: pick(_ENTITIES), lambda: f"{pick(_ENTITIES)} {pick(_ATTRS)}",
                 lambda: f"what is {pick(_ENTITIES)}", lambda: f"who is {pick(_ENTITIES)}",
                 lambda: f"{pick(_ENTITIES)} vs {pick(_ENTITIES)}", lambda: f"is {pick(_ENTITIES)} dangerous",
                 lambda: f"why is {pick(_ENTITIES)} {rng.choice(['famous', 'important', 'expensive'])}",
                 # Questions *about* a task are informational, not how-to: "can you paint in winter".
                 lambda: f"can you {pick(_TASKS)} in {rng.choice(['winter', 'the rain', 'summer', 'one day'])}",
                 lambda: f"best {rng.choice(['time', 'month', 'season'])} to {pick(_TASKS)}",
                 lambda: f"when to {pick(_TASKS)}", lambda: f"how long does it take to {pick(_TASKS)}",
                 lambda: f"{pick(_PRODUCTS)} vs {pick(_PRODUCTS)}", lambda: f"{pick(_PRODUCTS)} price",
                 lambda: f"{pick(_PRODUCTS)} cost", lambda: f"how much is a {pick(_PRODUCTS)}",
                 lambda: f"best {pick(_PRODUCTS)}", lambda: f"best {pick(_PRODUCTS)} for {pick(_USES)}",
                 lambda: f"{pick(_PRODUCTS)} reviews", lambda: f"{pick(_PRODUCTS)}",
                 lambda: f"{pick(_TASKS_N)} cost", lambda: f"how much does a {pick(_TASKS_N)} cost",
                 lambda: f"{pick(_PRODUCTS)} or {pick(_PRODUCTS)} which is better",
                 lambda: f"is {pick(_PRODUCTS)} safe for {rng.choice(['dogs', 'cats', 'kids', 'pets'])}",
                 lambda: f"do i need a permit to {pick(_TASKS)}",
                 lambda: f"how much does it cost to {pick(_TASKS)}" if rng.random() < 0.3 else f"is it hard to {pick(_TASKS)}"],
    }
    # German, French and Spanish shapes of the same moments (the embedder is English-only, so the
    # cue words and character n-grams carry these).
    makers["go_local"] += [lambda: f"{pick(_DE_SHOPS)} in der nähe", lambda: f"wann schließt {pick(_DE_SHOPS)}",
                           lambda: f"öffnungszeiten {pick(_DE_SHOPS)}", lambda: f"wann öffnet {pick(_DE_SHOPS)}",
                           lambda: f"horaires {pick(_FR_SHOPS)}", lambda: f"{pick(_FR_SHOPS)} près de moi",
                           lambda: f"{pick(_ES_SHOPS)} cerca de mí", lambda: f"horario {pick(_ES_SHOPS)}"]
    makers["do"] += [lambda: f"wie backe ich {pick(_DE_FOOD)}", lambda: f"{pick(_DE_FOOD)} rezept",
                     lambda: f"recette {pick(_FR_FOOD)}", lambda: f"comment faire {pick(_FR_FOOD)}",
                     lambda: f"cómo hacer {pick(_ES_FOOD)}", lambda: f"receta de {pick(_ES_FOOD)}",
                     lambda: rng.choice(_SERVICE_TASKS), lambda: f"{pick(_ORGS)} {rng.choice(['complaints', 'returns', 'complaint form'])}"]
    makers["buy"] += [lambda: f"{pick(_PRODUCTS)} kaufen", lambda: f"{pick(_PRODUCTS)} günstig kaufen",
                      lambda: f"acheter {pick(_PRODUCTS)}", lambda: f"{pick(_PRODUCTS)} pas cher",
                      lambda: f"comprar {pick(_PRODUCTS)}", lambda: f"{pick(_PRODUCTS)} barato",
                      lambda: f"{pick(_ORGS)} {rng.choice(['gift card', 'gift cards', 'e gift card', 'voucher code', 'money off code'])}",
                      lambda: rng.choice(["gift cards", "e-gift card", "buy a gift card", "discount codes", "voucher codes"])]
    makers["know"] += [lambda: f"{pick(_PRODUCTS)} preis", lambda: f"prix {pick(_PRODUCTS)}",
                       lambda: f"precio {pick(_PRODUCTS)}", lambda: f"{pick(_TASKS_N)} cost",
                       lambda: f"{pick(_TASKS_N)} cost {pick(_CITIES)}", lambda: f"average {pick(_TASKS_N)} cost"]
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


def brand_rows(rng: random.Random, n: int = 900) -> list[tuple[str, str]]:
    """Bare brand and site names (`data/brands.txt`), alone or with a site word: go/site."""
    from micromoments.intent.cues import BRAND_NAMES

    names = rng.sample(sorted(BRAND_NAMES), min(n, len(BRAND_NAMES)))
    suffix = ["", "", "", " login", " app", " website", " account", " customer service", " sign in"]
    return [(f"{b}{rng.choice(suffix)}", "go_site") for b in names]


def weak_rows(path: Path = REAL_QUERIES_PATH, *, max_know: int = 6000, seed: int = 13) -> list[tuple[str, str]]:
    """The real unlabelled corpus labelled by the labelling functions and the label model (`weak.py`).

    Texts no LF votes on are left out: most are bare names, and guessing `know` for them would teach
    the head that every brand name is informational.
    """
    import gzip

    from micromoments.intent.weak import CLASSES as WEAK_CLASSES
    from micromoments.intent.weak import LabelModel, apply_lfs

    with gzip.open(path, "rt", encoding="utf-8") as fh:
        texts = [line.split("\t", 1)[0] for line in fh.read().splitlines()[1:]]
    votes = apply_lfs(texts)
    pred = LabelModel().fit(votes).predict(votes)
    rows = [(t, WEAK_CLASSES[k]) for t, k in zip(texts, pred) if k >= 0]
    # Keep every row the LFs put in a minority class; cap the informational majority (a seeded sample).
    know = [r for r in rows if r[1] == "know"]
    random.Random(seed).shuffle(know)
    return [r for r in rows if r[1] != "know"] + know[:max_know]


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
    vocab_know: int = 250,
    extra: Iterable[tuple[str, str]] = (),
    exclude: Iterable[str] = (),
    weak: bool = True,
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
    rows += brand_rows(rng)
    if weak:
        rows += weak_rows(seed=seed)
    banned = {normalize_text(t) for t in exclude}
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    for text, label in rows:
        if text and text not in banned and text not in seen:
            seen.add(text)
            out.append((text, label))
    return out
