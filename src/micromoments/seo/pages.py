"""What kind of page a landing URL is (store, answer, product, ...), from patterns in its path.

The content-gap checks ask whether a moment's queries land on the page that serves it: a store
page for "go/local", an answer page for "know" questions, a guide rather than a product page for
"do". Sites name their pages differently: pass your own `PageKinds` (the CLI's `--page-kind`).

>>> kinds = PageKinds.default()
>>> [kinds.kind_of(u) for u in ("https://a.example/stores/leeds", "https://a.example/how-to/lay-turf",
...                              "https://a.example/p/drill-1234", "https://a.example/")]
['store', 'answer', 'product', 'home']
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from micromoments.errors import InputError

# Checked in order; the first match wins. Patterns are matched against the lowercased URL.
DEFAULT_KINDS: tuple[tuple[str, str], ...] = (
    ("store", r"/(stores?|store-locator|store-finder|find-a-store|locations?|branches|near-me|directions)(/|$|\?|#)"),
    ("answer", r"/(how-to|howto|guides?|advice|blog|faq|faqs|help|learn|answers?|questions?|tips|ideas|"
               r"articles?|knowledge|support|inspiration)(/|$|\?|#|-)"),
    ("product", r"/(p|product|products|item|items|dp|sku)/|/p-\d|[-_]sku[-_]?\d"),
    ("category", r"/(c|category|categories|collections?|departments?|shop)(/|$|\?|#)"),
    ("search", r"/search(/|$|\?|#)|[?&](q|query|search)="),
    ("account", r"/(account|login|signin|sign-in|register|cart|basket|checkout|track-order|orders?)(/|$|\?|#)"),
    ("home", r"^(https?://[^/]+)?/?(\?.*)?$"),
)
KINDS = ("store", "answer", "product", "category", "search", "account", "home", "other")


@dataclass
class PageKinds:
    """Ordered (kind, regex) pairs; URLs matching none are `other`."""

    patterns: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def default(cls) -> "PageKinds":
        return cls(list(DEFAULT_KINDS))

    @classmethod
    def with_overrides(cls, specs: list[str]) -> "PageKinds":
        """Defaults, with `KIND=REGEX` entries checked first (e.g. `store=/shops/`)."""
        extra = []
        for spec in specs:
            kind, sep, pattern = spec.partition("=")
            kind = kind.strip()
            if not sep or kind not in KINDS or not pattern.strip():
                raise InputError(f"page kind '{spec}' is not KIND=REGEX", where="--page-kind",
                                 hint=f"KIND is one of {', '.join(KINDS[:-1])}; e.g. store=/shops/")
            try:
                re.compile(pattern)
            except re.error as exc:
                raise InputError(f"'{pattern}' is not a regular expression: {exc}", where="--page-kind") from exc
            extra.append((kind, pattern.strip()))
        return cls(extra + list(DEFAULT_KINDS))

    def kind_of(self, url: str | None) -> str:
        """The kind of one URL (Python; `sql` is the same in DuckDB)."""
        if not url:
            return "other"
        low = url.lower()
        for kind, pattern in self.patterns:
            if re.search(pattern, low):
                return kind
        return "other"

    def sql(self, column: str) -> str:
        """A DuckDB CASE giving the kind of the URL in `column`."""
        whens = " ".join(f"WHEN regexp_matches(lower({column}), '{p.replace(chr(39), chr(39) * 2)}') THEN '{k}'"
                         for k, p in self.patterns)
        return f"CASE WHEN {column} IS NULL THEN NULL {whens} ELSE 'other' END"
