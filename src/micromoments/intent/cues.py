"""Strong lexical cues: the words and patterns that signal a moment on their own.

They do two jobs: they are extra features for the learned head (so "near me" or
"how to" are never drowned out by the embedding), and the matched words are shown
to the user as the `cues` that drove a decision.

>>> [c.family for c in find_cues("home depot login")]
['site_name', 'site']
>>> [c.text for c in find_cues("how to build a deck")]
['how to', 'build']
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Popular destinations people type into a search box to *navigate* there. Bare or
# with "login"/".com", such a query is go/site.
SITE_NAMES: frozenset[str] = frozenset("""
facebook fb youtube gmail google amazon netflix hulu spotify instagram insta twitter tiktok reddit
pinterest linkedin yahoo hotmail outlook zoom dropbox icloud ebay craigslist etsy walmart target
wayfair costco chase paypal venmo zillow redfin indeed glassdoor usps ups fedex irs dmv espn cnn
bbc nytimes imdb quora github gitlab chatgpt openai canvas blackboard schoology powerschool
duolingo coursera udemy roblox steam twitch discord whatsapp telegram snapchat tumblr aol verizon
xfinity spectrum comcast geico progressive turbotax quickbooks experian equifax transunion adp
workday paychex mychart webmd expedia airbnb vrbo kayak priceline tripadvisor amtrak uber lyft
doordash grubhub instacart chewy macys nordstrom kohls jcpenney shein temu aliexpress alibaba
newegg adobe canva figma slack trello asana notion salesforce shopify squarespace wix wordpress
godaddy bing duckduckgo robinhood fidelity vanguard schwab etrade coinbase binance pandora
soundcloud audible kindle goodreads nextdoor yelp groupon ticketmaster stubhub eventbrite
fandango ign draftkings fanduel homedepot lowes ikea menards hbo disney wikipedia mapquest
capitalone citi wellsfargo bankofamerica usaa navyfederal ally sofi mint creditkarma att
tmobile nfl mlb nba nhl fox msn msnbc cvs walgreens kroger safeway publix aldi
carmax carvana autotrader kbb edmunds truecar cargurus dominos gamestop sears kmart bestbuy petsmart petco
officedepot samsclub bjs menards acehardware overstock zappos sephora ulta lululemon asos
wirecutter rtings speedtest trivago skyscanner southwest jetblue marriott hyatt ihg ryanair easyjet
argos tesco sainsburys asda currys screwfix wickes homebase bandq johnlewis rightmove zoopla gumtree
bbc itv hmrc dvla nhs
""".split()) | frozenset({
    "home depot", "bank of america", "wells fargo", "capital one", "american express", "credit karma",
    "google maps", "google drive", "google docs", "google classroom", "google translate", "yahoo mail",
    "amazon prime", "prime video", "disney plus", "hbo max", "youtube tv", "youtube music", "apple music",
    "whatsapp web", "office 365", "microsoft teams", "weather channel", "fox news", "best buy", "old navy",
    "home depot credit card", "lowes credit card", "navy federal", "t mobile", "at&t", "h&r block",
    "stack overflow", "khan academy", "state farm", "social security", "my verizon", "uber eats",
    "kelley blue book", "cars com", "pizza hut", "papa johns", "game stop", "toys r us", "consumer reports",
    "sams club", "office depot", "ace hardware", "b&q", "john lewis", "bbc news", "sky news", "weather com",
    "gov uk", "nhs uk", "speed test", "google flights", "google news", "google scholar", "google photos",
})

# ~3,300 more brand and site names (simple-icons, CC0; top-sites, MIT): matched exactly, without
# typo tolerance, since many are short.
BRANDS_PATH = Path(__file__).parent / "data" / "brands.txt"
# ~22,700 organisations (OpenStreetMap brands, universities, federal agencies, listed companies, teams),
# without places or dictionary words: scripts/build_intent_names.py.
ORGANISATIONS_PATH = Path(__file__).parent / "data" / "organisations.txt"
BRAND_NAMES: frozenset[str] = frozenset(
    line.strip() for path in (BRANDS_PATH, ORGANISATIONS_PATH)
    for line in path.read_text(encoding="utf-8").splitlines() if line.strip() and not line.startswith("#")
)

# Big towns of the English-speaking markets: "walmart austin" or "leeds greenhaven" is a store visit.
CITIES: tuple[str, ...] = tuple("""
new york|los angeles|chicago|houston|phoenix|philadelphia|san antonio|san diego|dallas|san jose|austin|
jacksonville|fort worth|columbus|charlotte|indianapolis|san francisco|seattle|denver|washington|nashville|
oklahoma city|el paso|boston|portland|las vegas|detroit|memphis|louisville|baltimore|milwaukee|albuquerque|
tucson|fresno|sacramento|kansas city|mesa|atlanta|omaha|colorado springs|raleigh|miami|long beach|
virginia beach|oakland|minneapolis|tulsa|tampa|arlington|new orleans|wichita|cleveland|bakersfield|aurora|
anaheim|honolulu|santa ana|riverside|corpus christi|lexington|st louis|pittsburgh|anchorage|stockton|
cincinnati|st paul|toledo|greensboro|newark|plano|henderson|lincoln|buffalo|orlando|madison|boise|
richmond|spokane|des moines|salt lake city|birmingham|rochester|london|manchester|liverpool|leeds|
sheffield|bristol|newcastle|nottingham|leicester|coventry|bradford|glasgow|edinburgh|aberdeen|dundee|
cardiff|swansea|belfast|derry|southampton|portsmouth|brighton|plymouth|reading|oxford|cambridge|york|
exeter|norwich|bath|hull|stoke|wolverhampton|milton keynes|dublin|cork|galway|limerick|waterford|
kilkenny|toronto|montreal|vancouver|calgary|ottawa|edmonton|winnipeg|sydney|melbourne|brisbane|perth|
adelaide|auckland|wellington|downtown|uptown|midtown
""".replace("\n", "").split("|"))

_SITE_SUFFIX = re.compile(
    r"\b(?:log ?in|sign ?in|sign ?on|sign ?up|account|my account|online|online banking|website|web site|"
    r"official site|site|app|homepage|home page|portal|email|mail|web|customer service|\.com|com)\b"
)
_SITE_MAX_WORDS = 4


@dataclass(frozen=True)
class CueFamily:
    name: str
    moment: str  # the moment this family points to (know/go/do/buy); go families name the go type
    pattern: re.Pattern[str]


def _family(name: str, moment: str, *alternatives: str) -> CueFamily:
    return CueFamily(name, moment, re.compile(r"(?:^|(?<=[\s\W]))(?:" + "|".join(alternatives) + r")(?=$|[\s\W])"))


FAMILIES: tuple[CueFamily, ...] = (
    _family("local", "go_local",
            r"near me", r"nearme", r"near mee?", r"near by", r"nearby", r"close to me", r"around me", r"closest", r"nearest",
            r"open now", r"open today", r"open late", r"open on \w+", r"open (?:sun|mon|tues|wednes|thurs|fri|satur)day",
            r"near (?!me)\w+", r"opening hours", r"store hours", r"hours",
            r"what time does .{1,30} (?:open|close)", r"is .{1,30} open", r"directions?(?: to)?", r"(?<!ip )(?<!email )(?<!e-mail )(?<!mail )address",
            r"locations?", r"store locator", r"locator", r"find a store", r"phone number", r"how (?:do i|to) get to",
            r"route to", r"map of", r"where is the (?:closest|nearest)",
            # German, French, Spanish: nearby, opening hours, when does it close, how to get there.
            r"in der nähe", r"in meiner nähe", r"öffnungszeiten", r"wann (?:schließt|schliesst|öffnet|oeffnet|hat|macht)",
            r"geöffnet", r"wegbeschreibung", r"près de (?:moi|chez moi)", r"à proximité", r"horaires?(?: d'ouverture)?",
            r"itinéraire", r"cerca de (?:mí|mi)", r"horarios?", r"abierto", r"cómo llegar"),
    CueFamily("place", "go_local", re.compile(r"(?:^|(?<=\s))(?:" + "|".join(CITIES) + r")(?=$|\s)")),
    _family("site", "go_site",
            r"log ?in", r"sign ?in", r"sign ?on", r"login page", r"my account", r"online banking", r"website",
            r"official site", r"homepage", r"portal", r"www", r"\w+\.(?:com|org|net|gov|edu|io|co)", r"https?",
            r"go to", r"take me to",
            # Institutions people navigate to: schools, colleges, agencies, credit unions.
            r"(?:community |state |technical )?college", r"university(?: of)?", r"\w+ (?:isd|usd)", r"credit union",
            r"department of \w+", r"\w+ email", r"customer service", r"anmelden", r"connexion", r"iniciar sesión"),
    _family("howto", "do",
            r"how (?:to|do i|do you|can i|should i|do we)", r"how-to", r"howto", r"ways to", r"steps? to",
            r"step by step", r"tutorial", r"guide to", r"instructions", r"tips (?:for|to|on)", r"diy",
            r"homemade", r"recipes?", r"plans", r"patterns?", r"for beginners", r"beginner", r"workout",
            r"tutorials?", r"ideas?", r"templates?", r"printables?", r"stencils?", r"invitations?", r"hairstyles?",
            r"settings?", r"setup", r"options", r"(?:windows|win) (?:7|8|10|11)", r"in (?:java|python|excel|word|c\+\+|javascript|sql)",
            r"wie (?:man|kann ich|mache ich|macht man|backe|koche|baue)", r"anleitung", r"rezepte?",
            r"comment (?:faire|préparer|installer|cuisiner|fabriquer)", r"recettes?", r"tutoriel",
            r"cómo (?:hacer|preparar|instalar|cocinar|forjar|reciclar|hago)", r"recetas?", r"paso a paso"),
    _family("task", "do",
            r"fix", r"fixing", r"repair", r"replace", r"install", r"installing", r"uninstall", r"build", r"make", r"cook",
            r"bake", r"grow", r"plant", r"prune", r"paint", r"clean", r"remove", r"unclog", r"reset", r"assemble", r"lay",
            r"hang", r"mount", r"get rid of", r"winterize", r"refinish", r"sharpen", r"wire", r"setup", r"set up",
            r"update", r"enable", r"disable", r"reformat", r"defrag", r"convert", r"transfer", r"sync(?:ing)?",
            r"complain(?:ts?)?", r"track (?:my )?(?:order|parcel|package)", r"cancel (?:my )?\w+", r"return (?:an? )?\w+"),
    # An activity the searcher is carrying out or organising ('planning a trip', 'starting a business',
    # 'girls birthday party'): instructions and ideas, i.e. do.
    CueFamily("activity", "do", re.compile(
        r"^(?:planning|starting|cleaning|buying|selling|replacing|installing|winterizing|citing|losing|quitting|"
        r"hosting|creating|making|building|fixing|using|growing|planting|moving|reheating|preparing|writing|"
        r"designing|painting|training|cooking|baking|setting up|getting rid|applying|filing|organizing|"
        r"celebrating|printing|removing|changing|adding|opening|reducing|stopping|potty training)\b"
        r"|(?:birthday|bridal|baby|graduation|retirement|anniversary|dinner|adult) (?:party|parties|showers?)"
        r"|\d+(?:st|nd|rd|th) birthday|(?:event|wedding|funeral|retirement|financial|estate|business|college|trip|"
        r"reunion|baby shower) planning|remodel(?:ing)?|stocking stuffer")),
    # A dish ends with its kind ('horseradish sauce', 'mini tacos', 'chicken pot pie'): searchers want the
    # recipe (the guideline's rule 6), unless a fact, price or place word says otherwise.
    CueFamily("dish", "do", re.compile(
        r"(?:^|(?<=\s))(?:\w+ )*(?:sauces?|soups?|stews?|salads?|breads?|cakes?|cupcakes?|cheesecakes?|cookies|"
        r"pies?|muffins?|scones?|biscuits|tacos?|burritos?|enchiladas?|quesadillas?|fajitas?|nachos|casseroles?|"
        r"chili|curry|curries|pasta|lasagna|risotto|paella|jambalaya|gumbo|chowder|bisque|pancakes?|waffles?|"
        r"brownies?|blondies|fudge|pudding|custard|mousse|tarts?|cobbler|crumble|meatballs|meatloaf|burgers?|"
        r"dumplings|dressing|marinade|glaze|frosting|icing|smoothies?|cocktails?|punch|lemonade|salsa|guacamole|"
        r"hummus|pesto|gravy|fried rice|stir fry|omelet(?:te)?s?|quiche|frittata|granola|jerky|pickles|jam|"
        r"brisket|pulled pork|ribs|wings|kebabs?|sliders|sandwich(?:es)?|wraps|rolls|buns|dip|scampi|"
        r"alfredo|carbonara|parmesan|stroganoff|pot roast|roast chicken|baked ziti|mac and cheese)$")),
    _family("buy", "buy",
            r"buy", r"buying", r"purchase", r"order", r"shop", r"shopping", r"for sale", r"on sale", r"sale", r"sales",
            r"deals?", r"discounts?", r"coupons?", r"promo(?: code)?", r"voucher(?: codes?)?", r"money off(?: codes?)?",
            r"clearance", r"cheap", r"cheapest", r"quotes?", r"gift cards?", r"tickets?",
            r"book (?:a|an|my|flights?|hotels?|tickets?|now|online|cheap)", r"booking", r"reserve", r"reservation",
            r"for rent", r"rent (?:a|an)", r"rentals?", r"hire (?:a|an)", r"lease", r"financing", r"in stock",
            r"add to cart", r"checkout", r"free shipping", r"under \$?\d+", r"\$\d+", r"download(?:s|er)?",
            r"add .{1,40} to (?:my )?(?:basket|cart|bag|trolley|order)", r"click and collect", r"click & collect",
            r"next day delivery", r"same day delivery",
            # Getting a resource online is transactional too (Broder): watch, stream, download, play.
            r"watch .{1,40} online", r"where to watch", r"free (?!time|will|speech|radical|fall)\w+",
            r"stream(?:ing)?", r"mp3", r"apk", r"torrent", r"play .{1,30} online", r"free trial", r"sign up for",
            r"full movie", r"wallpapers?", r"mods", r"drivers?(?= download| for)?",
            r"cheap flights?", r"flights? to", r"bulk", r"wholesale",
            r"kaufen", r"bestellen", r"günstig", r"gutschein", r"angebote?", r"acheter", r"commander", r"pas cher",
            r"soldes", r"code promo", r"comprar", r"barat[oa]s?", r"ofertas?", r"descuentos?", r"cupón"),
    _family("question", "know",
            r"what(?:'s| is| are| was| were| does| do)?", r"who(?:'s| is| was)?", r"when(?: is| was| did| does)?",
            r"why", r"which", r"whose", r"is it", r"are there", r"does", r"can (?:you|i|dogs|cats)",
            r"how (?:many|much|long|old|tall|far|big|deep|hot|cold|does|do (?!i\b|you\b)|did|is|are)",
            # German, French, Spanish question words.
            r"^(?:wie|was|wann|wo|woher|warum|wer|welche[rsnm]?|wieviele?|seit wann|in welche[mr])",
            r"^(?:qui|que|qu'|quoi|quand|où|d'où|pourquoi|comment|combien|quel(?:le)?s?|par qui|est-ce)",
            r"^¿?(?:qué|quién(?:es)?|cuándo|dónde|por qué|cómo|cuánt[oa]s?|cuál(?:es)?|en qué|de qué)"),
    _family("fact", "know",
            r"meaning", r"define", r"definition", r"synonyms?", r"antonyms?", r"symptoms?", r"causes?", r"facts?",
            r"age", r"height", r"net worth", r"wiki", r"wikipedia", r"population", r"capital of", r"history",
            r"vs", r"versus", r"difference between", r"weather", r"forecast", r"score", r"scores", r"cast",
            r"lyrics", r"side effects", r"dosage", r"specs", r"mpg", r"range", r"wheelbase", r"capacity",
            r"release date", r"born", r"died", r"wife", r"husband", r"kids", r"children", r"stats?", r"news",
            r"explained", r"types? of", r"list of", r"examples? of", r"examples", r"summary", r"benefits",
            r"treatment", r"trailer", r"jobs", r"salary", r"calories", r"nutrition",
            # Questions *about* a task or product: informational, not how-to.
            r"can (?:you|i) \w+ .{0,40}in (?:winter|summer|spring|autumn|fall|the rain|frost|the dark)",
            r"(?:best|right|ideal|good) (?:time|month|season|day|weather) (?:to|for)", r"when (?:to|should (?:i|you))",
            r"safe (?:for|to|with)", r"toxic", r"poisonous", r"(?:which|what) is better", r"or .{1,40} which",
            r"is it (?:ok|okay|safe|legal|worth)", r"do i need (?:a )?permit", r"^(?:can|could|should) (?:you|i|we)",
            r"differen\w* betw\w*", r"(?:best|right|ideal) mo\w*h to", r"how long (?:does it take |to )"),
    # Prices, costs and comparisons are research: know, unless a purchase cue is present too.
    _family("price", "know",
            r"price", r"prices", r"pricing", r"cost", r"costs", r"how much (?:is|are|does|do)", r"rates?", r"fees?",
            r"worth", r"value", r"best", r"top rated", r"top \d+", r"reviews?", r"rating", r"ratings", r"compare",
            r"comparison", r"preis(?:e)?", r"kosten", r"prix", r"combien coûte", r"precios?", r"cuánto cuesta"),
)
FAMILY_NAMES = tuple(f.name for f in FAMILIES) + ("site_name", "brand_prefix")


@dataclass(frozen=True)
class Cue:
    """One matched cue: the words, the family and the moment it points to."""

    text: str
    family: str
    moment: str


def _deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1:] for i in range(len(word))}


def _build_fuzzy(names: frozenset[str]) -> dict[str, str]:
    # SymSpell-style index of one-deletion variants: finds 'facebok' or 'yotube' in O(len).
    index: dict[str, str] = {}
    for name in sorted(names):
        key = name.replace(" ", "")
        index.setdefault(key, name)
        if len(key) >= 5:
            for d in _deletes(key):
                index.setdefault(d, name)
    return index


_FUZZY_SITES = _build_fuzzy(SITE_NAMES)


def site_name(text: str) -> str | None:
    """The popular site a short query navigates to, tolerant of one typo, or None.

    >>> site_name("facebok login"), site_name("yahoo mail"), site_name("how to use facebook")
    ('facebook', 'yahoo', None)
    """
    words = text.split()
    if not words or len(words) > _SITE_MAX_WORDS:
        return None
    core = _SITE_SUFFIX.sub(" ", text).replace("www.", " ").strip(" ./")
    core = re.sub(r"\.(?:com|org|net|gov|co|io)\b", "", core).strip()
    if not core:
        return None
    key = core.replace(" ", "")
    if core in SITE_NAMES or key in SITE_NAMES or core in BRAND_NAMES:
        return core
    if key in _FUZZY_SITES:
        return _FUZZY_SITES[key]
    if len(key) >= 6:
        for d in _deletes(key):
            if d in _FUZZY_SITES:
                return _FUZZY_SITES[d]
    return None


def brand_prefix(text: str) -> str | None:
    """A known brand or site opening a short query ('adidas mexico', 'expedia rewards'), or None.

    >>> brand_prefix("expedia rewards"), brand_prefix("how to use expedia")
    ('expedia', None)
    """
    words = text.split()
    if not 2 <= len(words) <= 4:
        return None
    for k in (2, 1):
        head = " ".join(words[:k])
        if head in SITE_NAMES or head in BRAND_NAMES or head.replace(" ", "") in SITE_NAMES:
            return head
    return None


def find_cues(text: str) -> list[Cue]:
    """Every cue in a normalised text, in family order.

    >>> [(c.text, c.moment) for c in find_cues("cheap patio furniture")]
    [('cheap', 'buy')]
    """
    return list(_find_cues(text)) if text else []


@functools.lru_cache(maxsize=65536)
def _find_cues(text: str) -> tuple[Cue, ...]:
    # Cached: the features and the decision both read a text's cues, and query logs repeat.
    cues: list[Cue] = []
    name = site_name(text)
    if name:
        cues.append(Cue(name, "site_name", "go_site"))
    else:
        prefix = brand_prefix(text)
        if prefix:
            cues.append(Cue(prefix, "brand_prefix", "go_site"))
    for fam in FAMILIES:
        for m in fam.pattern.finditer(text):
            if fam.name == "place" and m.group(0).strip() == text:
                continue  # the guideline's rule 1: a bare town is a place to learn about, not to visit
            cues.append(Cue(m.group(0).strip(), fam.name, fam.moment))
    return tuple(cues)


def cue_features(texts: list[str]) -> np.ndarray:
    """One row per text: for each cue family, 1 if it fires (the first word counts double for questions).

    >>> cue_features(["how to paint a fence"]).shape
    (1, 14)
    """
    out = np.zeros((len(texts), len(FAMILY_NAMES) + 1), dtype=np.float32)
    col = {name: i for i, name in enumerate(FAMILY_NAMES)}
    for row, text in enumerate(texts):
        for cue in find_cues(text):
            out[row, col[cue.family]] = 1.0
        # Bare short queries ('tamerind', 'tacoma wheelbase') are mostly informational.
        n_words = len(text.split())
        out[row, -1] = 1.0 if 0 < n_words <= 2 else 0.0
    return out
