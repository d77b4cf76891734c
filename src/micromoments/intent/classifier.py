"""Text -> micro-moment: the learned head, lexical cues, landing-page context and custom moments.

>>> r = classify("gmail login")
>>> r.moment, r.go_type
('go', 'site')
>>> [x.moment for x in classify(["how to fix a leaky faucet", "cordless drill for sale"])]
['do', 'buy']
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from micromoments.config import Config, CustomMoment
from micromoments.errors import ConfigError, InputError
from micromoments.intent.cues import find_cues
from micromoments.intent.embed import StaticMiniLM
from micromoments.intent.model import IntentHead, center_norm, features, softmax
from micromoments.intent.text import normalize_text, url_to_text
from micromoments.intent.weak import URL_LFS, Example

BASE_MOMENTS = ("know", "go", "do", "buy")
# The guideline's rule 2, for short queries the head reads as know: a named business venue is a place
# to go to, a named public body or school is a site to go to.
_VENUE = re.compile(r"^(?!(?:what|who|how|why|when|where|is|are|does|do|can)\b)[\w'&. -]{2,40} "
                    r"(?:hospital|medical center|casino|resort|hotel|suites|inn|mall|outlets|stadium|arena|airport)"
                    r"(?: [\w. ]{2,25})?$")
_BODY = re.compile(r"^(?!(?:what|who|how|why|when|where|is|are|does|do|can)\b)(?:city of [\w .]+|[\w .]+ county "
                   r"(?:dss|schools|clerk|court|sheriff|jail|government)|[\w .]+ (?:middle|high|elementary) school|"
                   r"[\w .]+ (?:unemployment|dmv|bmv|dss|isd))$")
# The guideline's rule 6: an instruction that opens with a task verb ('open eps file', 'run as
# administrator', 'reheat pizza in oven') is a task to carry out.
_IMPERATIVE = re.compile(
    r"^(?:open|run|make|manage|update|create|find|shut down|turn (?:on|off)|round|reheat|install|uninstall|fix|"
    r"repair|replace|remove|delete|add|change|reset|set up|setup|convert|print|clean|cook|bake|build|draw|write|"
    r"calculate|connect|enable|disable|block|unblock|restore|recover|transfer|sync|save|share|cancel|measure|"
    r"grow|plant|paint|cut|tie|knit|sew|apply|claim|register|renew|report|pay|submit|request|send|import|"
    r"get (?:a|an|my|your)|check (?:my|your|a|an|if|whether))\s+\S")
_HAS_WORD = re.compile(r"\w")
CONTEXT_WEIGHT = 0.5        # landing-page title/URL logits count half as much as the query's own
URL_RULE_BOOST = 6.0        # logit added to the class a landing-page rule points to (weak.URL_LFS); chosen on the GOV.UK pilot dev half
FAR_SIMILARITY = 0.20       # under this nearest-example similarity a cue-less text is `other` (<0.5% of real dev queries)
CUSTOM_MIN_SIMILARITY = 0.35  # a custom moment needs at least this similarity to its examples
OTHER_MIN_PROB = 0.6         # 'other' (chit-chat) needs this probability to win over a real moment...
OTHER_MIN_PROB_QUESTION = 0.85  # ...and this much when the text is phrased as a question
CUSTOM_MARGIN = 0.03        # ...and to beat the nearest base-moment examples by this much
OTHER_MAX_CONFIDENCE = 0.3
MAX_CUES = 4


@dataclass
class IntentResult:
    """One classified text. `scores` holds every moment's probability (they sum to 1)."""

    text: str
    moment: str
    go_type: str | None
    confidence: float
    scores: dict[str, float] = field(default_factory=dict)
    cues: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _CustomIndex:
    names: tuple[str, ...]
    vectors: np.ndarray      # (n_examples, dim), centred and normalised
    owner: np.ndarray        # moment index per example


class Classifier:
    """The intent engine for live and batch use. Build once, call `predict` many times.

    >>> clf = Classifier(custom_moments=[CustomMoment("get-away", "short trips", [
    ...     "weekend getaway ideas", "romantic cabin weekend", "last minute beach weekend",
    ...     "quick escape from the city", "cheap weekend trips", "glamping weekend near the lake",
    ...     "road trip for the long weekend", "spa weekend break", "mini vacation ideas",
    ...     "two night escape for couples"])])
    >>> clf.predict(["weekend getaway for couples"])[0].moment
    'get-away'
    """

    def __init__(self, head: IntentHead | None = None, custom_moments: Sequence[CustomMoment] = ()):
        self.head = head or IntentHead.load()
        self.embedder = self.head.embedder
        self.class_index = {c: i for i, c in enumerate(self.head.classes)}
        # The nearest-neighbour bank, split by class once (not per call: it sits on the live path).
        bank = self.head.bank.astype(np.float32)
        self._banks = [bank[self.head.bank_labels == c] for c in range(len(self.head.classes))]
        self.custom = self._build_custom(custom_moments)
        names = ",".join(sorted(f"{m.name}:{len(m.examples)}" for m in custom_moments))
        self.version = self.head.version + (f"+custom[{names}]" if custom_moments else "")

    # -- custom moments -----------------------------------------------------------------------
    def _build_custom(self, moments: Sequence[CustomMoment]) -> _CustomIndex | None:
        if not moments:
            return None
        texts: list[str] = []
        owner: list[int] = []
        names: list[str] = []
        for k, m in enumerate(moments):
            where = f"[intent.custom_moments] '{m.name}'"
            if not m.name or m.name in BASE_MOMENTS or m.name == "other":
                raise ConfigError(f"custom moment name '{m.name}' is empty or reserved", where=where,
                                  hint="pick a new name such as 'get-away'")
            examples = [normalize_text(e) for e in m.examples if normalize_text(e)]
            if len(examples) < 3:
                raise ConfigError(f"custom moment '{m.name}' has {len(examples)} examples", where=where,
                                  hint="give 10-50 example phrases in `examples`")
            if m.description:
                examples.append(normalize_text(m.description))
            names.append(m.name)
            texts += examples
            owner += [k] * len(examples)
        vectors = center_norm(self.embedder.embed(texts), self.head.center)
        return _CustomIndex(tuple(names), vectors, np.array(owner))

    # -- prediction ---------------------------------------------------------------------------
    def predict(
        self,
        texts: Sequence[object],
        urls: Sequence[object] | None = None,
        titles: Sequence[object] | None = None,
        *,
        explain: bool = True,
    ) -> list[IntentResult]:
        """Classify texts, with optional landing-page URLs/titles aligned to them."""
        n = len(texts)
        for name, ctx in (("urls", urls), ("titles", titles)):
            if ctx is not None and len(ctx) != n:
                raise InputError(f"{name} has {len(ctx)} items but there are {n} texts",
                                 hint=f"pass one {name[:-1]} (or None) per text")
        norm = [normalize_text(t) for t in texts]
        contexts = [
            " ".join(x for x in (normalize_text(titles[i]) if titles is not None else "",
                                 url_to_text(urls[i]) if urls is not None else "") if x)
            for i in range(n)
        ]
        # Distinct texts only: query logs repeat a lot.
        uniq = sorted(set(norm) | {c for c in contexts if c})
        pos = {t: i for i, t in enumerate(uniq)}
        if uniq:
            emb, dense, hashed = features(self.embedder, uniq)
            raw_logits = self.head.raw_logits(dense, hashed)
        else:
            emb, raw_logits = np.zeros((0, self.embedder.dim)), np.zeros((0, len(self.head.classes)))
        # Nearest-example similarity only decides for cue-less texts (the "far from everything" check)
        # and for custom moments: computing it for the rest cost ~20% of a batch.
        sims = np.ones((len(uniq), len(self.head.classes)), dtype=np.float32)
        need = [j for j, t in enumerate(uniq) if self.custom or not find_cues(t)]
        if need:
            sims[need] = self._class_similarity(emb[need])
        custom_sims = self._custom_similarity(emb) if (uniq and self.custom) else None

        results = []
        for i in range(n):
            text, ctx = norm[i], contexts[i]
            if not _HAS_WORD.search(text) and not _HAS_WORD.search(ctx):
                # Empty, or only emoji/punctuation: nothing to read an intent from.
                results.append(self._empty(texts[i]))
                continue
            main = pos[text] if text else pos[ctx]
            logits = raw_logits[main].copy()
            if text and ctx:
                logits += CONTEXT_WEIGHT * raw_logits[pos[ctx]]
            url_i = urls[i] if urls is not None and isinstance(urls[i], str) else ""
            title_i = titles[i] if titles is not None and isinstance(titles[i], str) else ""
            if url_i or title_i:
                logits += self._url_boost(text, url_i, title_i)
            probs = softmax((logits / self.head.temperature)[None, :])[0]
            results.append(self._decide(
                texts[i], text or ctx, probs, sims[main],
                custom_sims[main] if custom_sims is not None else None, explain,
            ))
        return results

    def _url_boost(self, text: str, url: str, title: str) -> np.ndarray:
        """Logit boosts from the landing page: its domain names the query's brand (go/site), it is a
        how-to page (do), a shop/checkout page (buy), a store locator or map (go/local), a reference
        page (know); its title sells (buy) or teaches (do)."""
        boost = np.zeros(len(self.head.classes), dtype=np.float32)
        ex = Example(text, url, title)
        for lf in URL_LFS:
            label = lf(ex)
            if label is not None and label in self.class_index:
                boost[self.class_index[label]] += URL_RULE_BOOST
        return boost

    def _class_similarity(self, emb: np.ndarray, k: int = 3) -> np.ndarray:
        """Per text and class: mean similarity to the class's `k` nearest bank examples."""
        x = center_norm(emb, self.head.center)
        out = np.zeros((len(emb), len(self.head.classes)), dtype=np.float32)
        for c, bank in enumerate(self._banks):
            s = x @ bank.T
            kk = min(k, s.shape[1])
            out[:, c] = np.partition(s, -kk, axis=1)[:, -kk:].mean(axis=1)
        return out

    def _custom_similarity(self, emb: np.ndarray, k: int = 3) -> np.ndarray:
        assert self.custom is not None
        sims = center_norm(emb, self.head.center) @ self.custom.vectors.T
        out = np.zeros((len(emb), len(self.custom.names)), dtype=np.float32)
        for c in range(len(self.custom.names)):
            s = sims[:, self.custom.owner == c]
            kk = min(k, s.shape[1])
            out[:, c] = np.partition(s, -kk, axis=1)[:, -kk:].mean(axis=1)
        return out

    def _empty(self, original: object) -> IntentResult:
        return IntentResult(text="" if original is None else str(original), moment="other", go_type=None,
                            confidence=0.0, scores={"other": 1.0}, cues=[])

    def _decide(
        self,
        original: object,
        text: str,
        probs: np.ndarray,
        class_sims: np.ndarray,
        custom_sims: np.ndarray | None,
        explain: bool,
    ) -> IntentResult:
        ci = self.class_index
        p = {c: float(probs[i]) for c, i in ci.items()}
        scores = {
            "know": p.get("know", 0.0), "go": p.get("go_local", 0.0) + p.get("go_site", 0.0),
            "do": p.get("do", 0.0), "buy": p.get("buy", 0.0), "other": p.get("other", 0.0),
        }
        cues = find_cues(text)
        base_sim = float(max(class_sims[i] for c, i in ci.items() if c != "other"))

        if custom_sims is not None and self.custom is not None:
            best = int(np.argmax(custom_sims))
            c_sim = float(custom_sims[best])
            if c_sim >= CUSTOM_MIN_SIMILARITY and c_sim > base_sim + CUSTOM_MARGIN:
                # The custom moment takes the share its similarity margin earns; base moments keep the rest.
                share = float(np.clip(0.5 + 2.0 * (c_sim - base_sim), 0.5, 0.97))
                scores = {m: s * (1 - share) for m, s in scores.items()}
                for k, name in enumerate(self.custom.names):
                    scores[name] = share if k == best else 0.0
                return IntentResult(str(original), self.custom.names[best], None, round(share, 4),
                                    _rounded(scores), self._custom_cues(text, best) if explain else [])

        moment = max(scores, key=scores.__getitem__)
        families = {c.family for c in cues}
        if (moment == "know" or (moment == "buy" and "buy" not in families)) and len(text.split()) <= 6 \
                and (_VENUE.search(text) or _BODY.search(text)):
            # Swap the chosen moment's share with go's: the probabilities still sum to 1.
            scores = {**scores, "go": scores[moment], moment: scores["go"]}
            kind = "go_local" if _VENUE.search(text) else "go_site"
            p = {**p, "go_local": 0.0, "go_site": 0.0, kind: scores["go"]}
            moment = "go"
        if moment == "know" and (families & {"howto", "dish"} or _IMPERATIVE.search(text)) \
                and not families & {"question", "fact", "price"}:
            # The guideline's rule 6: an instruction cue ('how to', 'recipe', 'windows 10 setup'), a task
            # verb first or a dish name, with no question or fact word, asks for instructions.
            scores = {**scores, "do": scores["know"], "know": scores["do"]}
            moment = "do"
        if moment in ("buy", "do") and "price" in families and not families & {"buy", "howto"}:
            # The guideline: a cost or price without a purchase or how-to cue is research ("bathroom remodel cost").
            moment = max(("know", "go"), key=scores.__getitem__)
        if moment == "other":
            # Chit-chat must be clear-cut to win: a real query with any cue keeps its best moment.
            strong = {c.family for c in cues} - {"question"}
            need = OTHER_MIN_PROB if not cues else (OTHER_MIN_PROB_QUESTION if not strong else 2.0)
            if scores["other"] < need:
                moment = max(BASE_MOMENTS, key=scores.__getitem__)
        confidence = scores[moment]
        if moment != "other" and base_sim < FAR_SIMILARITY and not cues:
            # Far from everything we know and no cue at all: do not force a class.
            moment = "other"
        if moment == "other":
            # `confidence` is how sure we are of a micro-moment; for `other` that is low by definition.
            confidence = min(OTHER_MAX_CONFIDENCE, max(scores[m] for m in BASE_MOMENTS))
        go_type = None
        if moment == "go":
            go_type = "local" if p.get("go_local", 0.0) >= p.get("go_site", 0.0) else "site"
        label = {"go": f"go_{go_type}"}.get(moment, moment)
        return IntentResult(str(original), moment, go_type, round(float(confidence), 4), _rounded(scores),
                            self._cues(text, label, cues) if explain and moment != "other" else [])

    # -- explanations -------------------------------------------------------------------------
    def _cues(self, text: str, label: str, lexical: list) -> list[str]:  # type: ignore[type-arg]
        moment = label.split("_")[0]
        out = [c.text for c in lexical if c.moment.split("_")[0] == moment]
        if isinstance(self.embedder, StaticMiniLM) and label in self.class_index:
            words, vecs = self.embedder.word_vectors(text)
            if len(words) > 1:
                w = self.head.coef[self.class_index[label], : vecs.shape[1]]
                others = [i for c, i in self.class_index.items() if c != label]
                # Contribution of each word to this class's logit minus the mean of the others.
                contrib = vecs @ w - (vecs @ self.head.coef[others, : vecs.shape[1]].T).mean(axis=1)
                for j in np.argsort(-contrib):
                    if contrib[j] > 0 and 1 < len(words[j]) <= 30 and not any(words[j] in c for c in out):
                        out.append(words[j])
                    if len(out) >= MAX_CUES:
                        break
            elif words and not out and len(words[0]) <= 30:
                out.append(words[0])
        return list(dict.fromkeys(out))[:MAX_CUES]

    def _custom_cues(self, text: str, k: int) -> list[str]:
        assert self.custom is not None
        if not isinstance(self.embedder, StaticMiniLM):
            return []
        words, vecs = self.embedder.word_vectors(text)
        if not words:
            return []
        proto = self.custom.vectors[self.custom.owner == k].mean(axis=0)
        contrib = vecs @ proto
        return [words[j] for j in np.argsort(-contrib)[:MAX_CUES] if contrib[j] > 0 and len(words[j]) > 1][:3]


def _rounded(scores: dict[str, float]) -> dict[str, float]:
    return {k: round(float(v), 4) for k, v in scores.items()}


_DEFAULT: dict[tuple[object, ...], Classifier] = {}


def get_classifier(config: Config | None = None) -> Classifier:
    """A cached `Classifier` for the config's custom moments (the default one if None)."""
    moments = list(config.intent.custom_moments) if config is not None else []
    key = tuple((m.name, m.description, tuple(m.examples)) for m in moments)
    if key not in _DEFAULT:
        _DEFAULT[key] = Classifier(custom_moments=moments)
    return _DEFAULT[key]


def classify(
    texts: object,
    *,
    url: object = None,
    title: object = None,
    config: Config | None = None,
    custom_moments: Sequence[CustomMoment] | None = None,
    explain: bool = True,
) -> IntentResult | list[IntentResult]:
    """Classify one text (returns one `IntentResult`) or a list of texts (returns a list).

    `url`/`title` are the landing page's, one value or one per text. `custom_moments`
    (or `config.intent.custom_moments`) adds brand-defined moments without retraining.

    >>> classify("paint", url="https://shop.example.com/how-to/paint-a-fence").moment
    'do'
    >>> classify("").moment
    'other'
    """
    single = isinstance(texts, str) or texts is None
    items = [texts] if single else list(texts)  # type: ignore[call-overload]
    n = len(items)

    def aligned(value: object, name: str) -> list[object] | None:
        if value is None:
            return None
        if isinstance(value, str):
            return [value] * n
        values = list(value)  # type: ignore[call-overload]
        if single and len(values) != 1:
            raise InputError(f"{name} must be one string when classifying one text")
        return values

    clf = Classifier(custom_moments=custom_moments) if custom_moments else get_classifier(config)
    results = clf.predict(items, aligned(url, "url"), aligned(title, "title"), explain=explain)
    return results[0] if single else results
