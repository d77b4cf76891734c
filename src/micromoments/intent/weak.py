"""Weak supervision: labelling functions over a query (and its landing URL or title) and a label model.

Each labelling function (LF) votes for one class or abstains. `LabelModel` combines the votes of
many LFs over an unlabelled corpus the way Snorkel's does, without gold labels: a one-coin
Dawid-Skene model (each LF has one accuracy; LFs are independent given the true class), fitted
by EM from a uniform class prior (the real-traffic balance is applied later, when the head is
trained). It is ~60 lines of numpy instead of a dependency.

>>> votes = apply_lfs(["how to tile a floor", "gmail login", "cheap flights to rome", "tamarind"])
>>> [CLASSES[i] if i >= 0 else None for i in LabelModel().predict(votes)]  # unfitted: every LF 0.9
['do', 'go_site', 'buy', None]
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import numpy as np

from micromoments.intent.cues import FAMILIES, site_name
from micromoments.intent.text import normalize_text

CLASSES = ("know", "go_local", "go_site", "do", "buy")
K = {c: i for i, c in enumerate(CLASSES)}
# Share of each class in real web-search traffic (Jansen et al. 2008 report ~80% informational,
# ~10% navigational, ~10% transactional; our real dev split agrees within a few points).
TRAFFIC_PRIOR = np.array([0.72, 0.03, 0.10, 0.11, 0.04])

_FAM = {f.name: f.pattern for f in FAMILIES}
_QUESTION_START = re.compile(
    r"^¿?(?:what|who|whom|whose|why|when|where|which|is|are|was|were|do|does|did|can|could|should|"
    r"how (?:many|much|long|old|tall|far|big|is|are|does|did)|wie|was|wann|wo|warum|wer|welche\w*|"
    r"qui|que|qu'|quoi|quand|où|pourquoi|combien|quel\w*|qué|quién\w*|cuándo|dónde|por qué|cuánt\w*|cuál\w*)\b"
)
# Imperative verbs that start instructions ('install printer hp', 'reheat pizza in oven').
TASK_VERBS = frozenset("""
install uninstall reinstall update upgrade reset restart reboot format reformat defrag clean fix repair replace
remove delete add create make build bake cook grill roast boil fry reheat draw design write cite convert
transfer sync enable disable turn connect pair disconnect set setup change open close block unblock unlock
cancel recall print scan copy paste save export import download upload share join merge split crop resize
rotate compress extract zip unzip paint plant prune grow mow trim cut sew knit crochet fold tie wrap lose
gain stop prevent reduce increase improve treat cure relieve get find calculate convert measure apply file
register renew check track return start plan organize organise host prepare clear erase recover restore
""".split())
_SERVICES = re.compile(
    r"\b(?:hotels?|motels?|restaurants?|cabins?|resorts?|dentists?|doctors?|plumbers?|lawyers?|attorneys?|"
    r"salons?|barbers?|gyms?|pharmac(?:y|ies)|hospitals?|clinics?|vets?|veterinarians?|mechanics?|"
    r"electricians?|roofers?|realtors?|apartments?|storage units?|car wash|daycares?|churches|schools)\b"
)
_REFERENCE_HOSTS = re.compile(
    r"(?:wikipedia|britannica|merriam-webster|dictionary|thefreedictionary|vocabulary|webmd|mayoclinic|"
    r"healthline|medlineplus|nih\.gov|cdc\.gov|imdb|goodreads|weather|accuweather|biography|history\.com|"
    r"investopedia|quora|answers|reference|worldatlas|timeanddate|genius|azlyrics)\."
)
_HOWTO_HOSTS = re.compile(r"(?:wikihow|instructables|allrecipes|foodnetwork|food\.com|tasteofhome|thespruce|bhg|"
                          r"familyhandyman|ehow|support\.(?:microsoft|apple|google))\.")
_HOWTO_PATH = re.compile(r"/(?:how-?to|howto|tutorials?|guides?|diy|recipes?|instructions?|steps)(?:/|-|$)")
_SHOP_PATH = re.compile(r"/(?:dp|gp/product|product|products|p|ip|itm|shop|store|cart|basket|checkout|buy|"
                        r"deals?|offers?|sale|coupons?|tickets?|booking|order)(?:/|$|\?)")
_SHOP_HOSTS = re.compile(r"(?:^|\.)(?:amazon|ebay|etsy|walmart|target|bestbuy|newegg|aliexpress|wayfair|"
                         r"homedepot|lowes|costco|ticketmaster|stubhub|booking|expedia|hotels)\.")
_LOCAL_PATH = re.compile(r"/(?:locations?|store-?locator|stores|find-a-store|branches|directions|maps?)(?:/|$)|"
                         r"(?:^|\.)(?:yelp|maps\.google|google\.\w+/maps|tripadvisor)\.")
# A service page: its last path part opens with a task verb or names a form or calculator
# ('/apply-blue-badge', '/calculate-statutory-sick-pay', '/…-claim-form').
_TASK_PAGE = re.compile(r"/(?:apply|claim|register|renew|pay|report|calculate|check|change|cancel|update|"
                        r"get|find|track|replace|request)(?:-[\w-]+)?/?$|"
                        r"/[\w-]*(?:-form|-calculator|application-form|claim-form)/?$")
_MEDIA_HOSTS = re.compile(r"(?:^|\.)(?:youtube|netflix|hulu|spotify|soundcloud|twitch|vimeo)\.")
_GENERIC_LABELS = frozenset("www m en mobile home index shop store online official the and of".split())


def url_host_label(url: str) -> tuple[str, str, str]:
    """(host, the registered name without TLD, path) of a URL, lowercased; empty strings when unreadable.

    >>> url_host_label("https://www.dsw.com/en/us/")
    ('www.dsw.com', 'dsw', '/en/us/')
    """
    try:
        parts = urlsplit(url.strip() if "//" in url else "//" + url.strip())
    except ValueError:
        return "", "", ""
    host = (parts.hostname or "").lower()
    labels = [x for x in host.split(".") if x]
    if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in {"co", "com", "org", "ac", "gov", "net"}:
        labels = labels[:-1]  # example.co.uk -> example
    name = labels[-2] if len(labels) >= 2 else (labels[0] if labels else "")
    return host, name, parts.path.lower()


def domain_matches(query: str, url: str) -> bool:
    """True when the landing page's registered name spells the query's site or brand.

    >>> domain_matches("dsw shoes", "https://www.dsw.com/"), domain_matches("diabetes diet", "https://www.webmd.com/x")
    (True, False)
    """
    _, name, _ = url_host_label(url)
    if len(name) < 3 or name in _GENERIC_LABELS:
        return False
    words = [w for w in re.findall(r"[a-z0-9]+", query.lower()) if w not in _GENERIC_LABELS]
    if not words:
        return False
    joined = "".join(words)
    if name == joined or (len(joined) >= 4 and (joined in name or name in joined)):
        return True
    # A brand word in the registered name ('walden university' -> waldenu.edu, 'chase login' -> chase.com).
    return any(len(w) >= 4 and (name.startswith(w) or w == name) for w in words)


@dataclass(frozen=True)
class Example:
    """One unlabelled item: normalised query, optional landing URL and title."""

    text: str
    url: str = ""
    title: str = ""


LF = Callable[[Example], "str | None"]


def _has(fam: str, text: str) -> bool:
    return bool(_FAM[fam].search(text))


def lf_question(x: Example) -> str | None:
    if _QUESTION_START.search(x.text) and not re.match(r"^(?:how (?:to|do i|can i)|where (?:to|can i) buy)\b", x.text):
        return "know"
    return None


def lf_howto(x: Example) -> str | None:
    return "do" if _has("howto", x.text) else None


def lf_verb_start(x: Example) -> str | None:
    first = x.text.split(" ", 1)[0] if x.text else ""
    return "do" if first in TASK_VERBS and len(x.text.split()) >= 2 else None


def lf_activity(x: Example) -> str | None:
    return "do" if _has("activity", x.text) else None


def lf_local(x: Example) -> str | None:
    return "go_local" if _has("local", x.text) else None


def lf_service_in_place(x: Example) -> str | None:
    return "go_local" if _SERVICES.search(x.text) and (_has("place", x.text) or " in " in f" {x.text} ") else None


def lf_buy(x: Example) -> str | None:
    return "buy" if _has("buy", x.text) and not _QUESTION_START.search(x.text) else None


def lf_price_research(x: Example) -> str | None:
    return "know" if _has("price", x.text) and not _has("buy", x.text) else None


def lf_fact(x: Example) -> str | None:
    return "know" if _has("fact", x.text) else None


def lf_site_name(x: Example) -> str | None:
    return "go_site" if site_name(x.text) else None


def lf_site(x: Example) -> str | None:
    return "go_site" if _has("site", x.text) and not _QUESTION_START.search(x.text) else None


def lf_digits(x: Example) -> str | None:
    return "know" if re.search(r"\d", x.text) and not (_has("buy", x.text) or _has("local", x.text)) else None


def lf_long(x: Example) -> str | None:
    return "know" if len(x.text.split()) >= 6 and not _has("howto", x.text) else None


def lf_url_domain_match(x: Example) -> str | None:
    # The query is the brand ('dsw' -> dsw.com), not a question or a fact about it ('diabetes symptoms' -> diabetes.org).
    if not x.url or len(x.text.split()) > 4 or _QUESTION_START.search(x.text) or any(
            _has(f, x.text) for f in ("howto", "fact", "price", "question")):
        return None
    return "go_site" if domain_matches(x.text, x.url) else None


def lf_url_reference(x: Example) -> str | None:
    return "know" if x.url and _REFERENCE_HOSTS.search(url_host_label(x.url)[0] + ".") else None


def lf_url_howto(x: Example) -> str | None:
    if not x.url:
        return None
    host, _, path = url_host_label(x.url)
    return "do" if _HOWTO_HOSTS.search(host + ".") or _HOWTO_PATH.search(path) else None


def lf_url_shop(x: Example) -> str | None:
    if not x.url:
        return None
    host, _, path = url_host_label(x.url)
    return "buy" if _SHOP_PATH.search(path) and (_SHOP_HOSTS.search("." + host) or "/cart" in path
                                                   or "/checkout" in path) else None


_PRODUCT_PAGE = re.compile(r"/(?:p|product|products|item|items|dp|sku)/")


def lf_url_product_page(x: Example) -> str | None:
    """A product page on any site is evidence for buy, unless the query asks how, what or what it costs
    (then the page is the wrong answer, which Search research reports as a content gap)."""
    if not x.url or _QUESTION_START.search(x.text) or any(
            _has(f, x.text) for f in ("howto", "fact", "price", "question")):
        return None
    return "buy" if _PRODUCT_PAGE.search(url_host_label(x.url)[2]) else None


def lf_url_local(x: Example) -> str | None:
    if not x.url:
        return None
    host, _, path = url_host_label(x.url)
    return "go_local" if _LOCAL_PATH.search(host + path) else None


def lf_url_task_page(x: Example) -> str | None:
    """A page to carry out a task (apply, claim, pay, a form, a calculator) is evidence for do, unless
    the query asks a question or names a fact or price."""
    if not x.url or _QUESTION_START.search(x.text) or any(_has(f, x.text) for f in ("fact", "price", "question")):
        return None
    return "do" if _TASK_PAGE.search(url_host_label(x.url)[2].split("?", 1)[0]) else None


def lf_url_media(x: Example) -> str | None:
    # Watching a title is obtaining a resource; a video that shows how to do something is a how-to.
    if not x.url or _QUESTION_START.search(x.text) or lf_verb_start(x) or any(
            _has(f, x.text) for f in ("howto", "task", "fact", "question")):
        return None
    host, _, path = url_host_label(x.url)
    return "buy" if _MEDIA_HOSTS.search("." + host) and ("/watch" in path or "/title" in path) else None


def lf_title(x: Example) -> str | None:
    """A landing-page title that sells ('buy online', 'free delivery') or teaches ('how to', 'step by step')."""
    if not x.title:
        return None
    t = normalize_text(x.title)
    if _has("buy", t) and not _QUESTION_START.search(t):
        return "buy"
    return "do" if _has("howto", t) else None


QUERY_LFS: tuple[LF, ...] = (
    lf_question, lf_howto, lf_verb_start, lf_activity, lf_local, lf_service_in_place, lf_buy,
    lf_price_research, lf_fact, lf_site_name, lf_site, lf_digits, lf_long,
)
URL_LFS: tuple[LF, ...] = (
    lf_url_domain_match, lf_url_reference, lf_url_howto, lf_url_shop, lf_url_product_page, lf_url_task_page,
    lf_url_local, lf_url_media, lf_title,
)
LFS: tuple[LF, ...] = QUERY_LFS + URL_LFS


def apply_lfs(
    texts: Sequence[str], urls: Sequence[str] | None = None, titles: Sequence[str] | None = None,
    lfs: Sequence[LF] = LFS,
) -> np.ndarray:
    """(n, len(lfs)) votes: a class index, or -1 where the LF abstains."""
    out = np.full((len(texts), len(lfs)), -1, dtype=np.int8)
    for i, t in enumerate(texts):
        ex = Example(normalize_text(t), (urls[i] or "") if urls else "", (titles[i] or "") if titles else "")
        for j, lf in enumerate(lfs):
            lab = lf(ex)
            if lab is not None:
                out[i, j] = K[lab]
    return out


@dataclass
class LabelModel:
    """One-coin Dawid-Skene over LF votes, fitted by EM without labels."""

    prior: np.ndarray = field(default_factory=lambda: np.full(len(CLASSES), 1 / len(CLASSES)))
    accuracy: np.ndarray = field(default_factory=lambda: np.zeros(0))
    n_iter: int = 30

    def _log_post(self, votes: np.ndarray) -> np.ndarray:
        k = len(self.prior)
        if len(self.accuracy) != votes.shape[1]:
            self.accuracy = np.full(votes.shape[1], 0.9)
        logp = np.tile(np.log(self.prior), (len(votes), 1))
        for j in range(votes.shape[1]):
            a = float(np.clip(self.accuracy[j], 0.05, 0.99))
            v = votes[:, j]
            fired = v >= 0
            # A vote for class c: accuracy a if the truth is c, else (1 - a) spread over the other classes.
            logp[fired] += np.log((1 - a) / (k - 1))
            logp[fired, v[fired]] += np.log(a) - np.log((1 - a) / (k - 1))
        return logp

    def fit(self, votes: np.ndarray) -> "LabelModel":
        """EM. An LF's accuracy is learnt only where another LF also voted (a lone vote only echoes
        the prior), with a Beta(9, 1) prior. The class prior is re-estimated around its start
        (uniform: the votes decide, not the majority class)."""
        self.accuracy = np.full(votes.shape[1], 0.9)
        base = self.prior.copy()
        fired_all = votes >= 0
        overlap = fired_all.sum(axis=1) >= 2
        for _ in range(self.n_iter):
            post = self.predict_proba(votes)
            for j in range(votes.shape[1]):
                rows = fired_all[:, j] & overlap
                hit = post[rows, votes[rows, j]].sum() if rows.any() else 0.0
                self.accuracy[j] = (hit + 9.0) / (rows.sum() + 10.0)
            covered = fired_all.any(axis=1)
            if covered.any():
                self.prior = 0.5 * base + 0.5 * post[covered].mean(axis=0)
        return self

    def predict_proba(self, votes: np.ndarray) -> np.ndarray:
        logp = self._log_post(votes)
        logp -= logp.max(axis=1, keepdims=True)
        p = np.exp(logp)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, votes: np.ndarray) -> np.ndarray:
        """The most likely class per row, or -1 where no LF voted."""
        out = self.predict_proba(votes).argmax(axis=1)
        out[~(votes >= 0).any(axis=1)] = -1
        return out
