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

import re
from dataclasses import dataclass

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
            r"near me", r"nearme", r"near by", r"nearby", r"close to me", r"around me", r"closest", r"nearest",
            r"open now", r"open today", r"open late", r"open on \w+", r"open (?:sun|mon|tues|wednes|thurs|fri|satur)day",
            r"near (?!me)\w+", r"opening hours", r"store hours", r"hours",
            r"what time does .{1,30} (?:open|close)", r"is .{1,30} open", r"directions?(?: to)?", r"(?<!ip )(?<!email )(?<!e-mail )(?<!mail )address",
            r"locations?", r"store locator", r"locator", r"find a store", r"phone number", r"how (?:do i|to) get to",
            r"route to", r"map of", r"where is the (?:closest|nearest)"),
    CueFamily("place", "go_local", re.compile(r"(?:^|(?<=\s))(?:" + "|".join(CITIES) + r")(?=$|\s)")),
    _family("site", "go_site",
            r"log ?in", r"sign ?in", r"sign ?on", r"login page", r"my account", r"online banking", r"website",
            r"official site", r"homepage", r"portal", r"www", r"\w+\.(?:com|org|net|gov|edu|io|co)", r"https?",
            r"go to", r"take me to"),
    _family("howto", "do",
            r"how (?:to|do i|do you|can i|should i|do we)", r"how-to", r"howto", r"ways to", r"steps? to",
            r"step by step", r"tutorial", r"guide to", r"instructions", r"tips (?:for|to|on)", r"diy",
            r"homemade", r"recipes?", r"plans", r"patterns?", r"for beginners", r"beginner", r"workout",
            r"example", r"tutorials?", r"video"),
    _family("task", "do",
            r"fix", r"fixing", r"repair", r"replace", r"install", r"installing", r"build", r"make", r"cook", r"bake",
            r"grow", r"plant", r"prune", r"paint", r"clean", r"remove", r"unclog", r"reset", r"assemble", r"lay",
            r"hang", r"mount", r"get rid of", r"winterize", r"refinish", r"sharpen", r"wire"),
    _family("buy", "buy",
            r"buy", r"buying", r"purchase", r"order", r"shop", r"shopping", r"for sale", r"on sale", r"sale", r"sales",
            r"deals?", r"discounts?", r"coupons?", r"promo(?: code)?", r"voucher", r"clearance", r"cheap", r"cheapest",
            r"price", r"prices", r"pricing", r"cost", r"costs", r"how much (?:is|are|does|do)", r"quotes?",
            r"tickets?", r"book (?:a|an|my|flights?|hotels?|tickets?|now|online|cheap)", r"booking", r"reserve", r"reservation", r"rent", r"rental", r"for rent",
            r"lease", r"financing", r"delivery", r"in stock", r"add to cart", r"checkout", r"free shipping",
            r"best(?! (?:time|month|season|day|way|mo\w*h|moth|weather) (?:to|for))", r"top rated", r"reviews?", r"review", r"under \$?\d+", r"\$\d+", r"download", r"subscription",
            r"add .{1,40} to (?:my )?(?:basket|cart|bag|trolley|order)", r"click and collect", r"click & collect",
            r"(?<=\w )online$", r"gifts?", r"next day", r"same day",
            # Getting a resource online is transactional too (Broder): watch, stream, download, play.
            r"watch .{1,40} online", r"where to watch", r"free (?:online|download|movies?|games?|trial|pdf)",
            r"stream(?:ing)?", r"mp3", r"apk", r"play .{1,30} online", r"free trial", r"sign up for",
            r"flights?(?: to| from)?", r"hotels?(?: in)?", r"kit", r"set", r"bulk", r"wholesale"),
    _family("question", "know",
            r"what(?:'s| is| are| was| were| does| do)?", r"who(?:'s| is| was)?", r"when(?: is| was| did| does)?",
            r"why", r"which", r"whose", r"is it", r"are there", r"does", r"can (?:you|i|dogs|cats)",
            r"how (?:many|much|long|old|tall|far|big|deep|hot|cold|does|do (?!i\b|you\b)|did|is|are)"),
    _family("fact", "know",
            r"meaning", r"define", r"definition", r"synonyms?", r"antonyms?", r"symptoms?", r"causes?", r"facts?",
            r"age", r"height", r"net worth", r"wiki", r"wikipedia", r"population", r"capital of", r"history",
            r"vs", r"versus", r"difference between", r"weather", r"forecast", r"score", r"scores", r"cast",
            r"lyrics", r"side effects", r"dosage", r"specs", r"mpg", r"range", r"wheelbase", r"capacity",
            r"release date", r"born", r"died", r"wife", r"husband", r"kids", r"children", r"stats?", r"news",
            r"explained", r"types? of", r"list of", r"examples? of",
            # Questions *about* a task or product: informational, not how-to.
            r"can (?:you|i) \w+ .{0,40}in (?:winter|summer|spring|autumn|fall|the rain|frost|the dark)",
            r"(?:best|right|ideal|good) (?:time|month|season|day|weather) (?:to|for)", r"when (?:to|should (?:i|you))",
            r"safe (?:for|to|with)", r"toxic", r"poisonous", r"(?:which|what) is better", r"or .{1,40} which",
            r"is it (?:ok|okay|safe|legal|worth)", r"do i need (?:a )?permit", r"^(?:can|could|should) (?:you|i|we)",
            r"differen\w* betw\w*", r"(?:best|right|ideal) mo\w*h to"),
)
FAMILY_NAMES = tuple(f.name for f in FAMILIES) + ("site_name",)


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
    if core in SITE_NAMES or key in SITE_NAMES:
        return core
    if key in _FUZZY_SITES:
        return _FUZZY_SITES[key]
    if len(key) >= 6:
        for d in _deletes(key):
            if d in _FUZZY_SITES:
                return _FUZZY_SITES[d]
    return None


def find_cues(text: str) -> list[Cue]:
    """Every cue in a normalised text, in family order.

    >>> [(c.text, c.moment) for c in find_cues("cheap patio furniture")]
    [('cheap', 'buy')]
    """
    cues: list[Cue] = []
    if not text:
        return cues
    name = site_name(text)
    if name:
        cues.append(Cue(name, "site_name", "go_site"))
    for fam in FAMILIES:
        for m in fam.pattern.finditer(text):
            cues.append(Cue(m.group(0).strip(), fam.name, fam.moment))
    return cues


def cue_features(texts: list[str]) -> np.ndarray:
    """One row per text: for each cue family, 1 if it fires (the first word counts double for questions).

    >>> cue_features(["how to paint a fence"]).shape
    (1, 10)
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
