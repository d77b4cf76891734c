"""Normalising texts before they are classified or used as a cache key.

>>> normalize_text("  Gmail   LOGIN ")
'gmail login'
>>> url_to_text("https://shop.example.com/how-to/build-a-raised-bed?utm_source=x")
'how to build a raised bed'
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote, urlsplit

MAX_CHARS = 512  # longer texts are cut: the first words carry the intent, and memory stays bounded

_SPACE = re.compile(r"\s+")
_ID_LIKE = re.compile(r"^(?:\d+|[0-9a-f]{8,}|[a-z]*\d{3,}[a-z\d]*)$")
_URL_SPLIT = re.compile(r"[/_\-+.,;:=&?#%]+")
_DROP_PARTS = {"www", "html", "htm", "php", "aspx", "jsp", "index", "en", "us", "p", "c", "s", "id"}


def normalize_text(text: object) -> str:
    """Lowercase, NFKC-fold, collapse whitespace and cut to `MAX_CHARS`; None becomes ''.

    >>> normalize_text(None)
    ''
    """
    if text is None:
        return ""
    if not isinstance(text, str):
        text = str(text)
    text = unicodedata.normalize("NFKC", text[: MAX_CHARS * 4]).lower()
    return _SPACE.sub(" ", text).strip()[:MAX_CHARS].strip()


def url_to_text(url: object) -> str:
    """The words of a URL's path (ids, extensions and tracking parameters dropped).

    >>> url_to_text("/store-locator")
    'store locator'
    >>> url_to_text("https://example.com/p/12345")
    ''
    """
    if not url or not isinstance(url, str):
        return ""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return ""
    path = parts.path if (parts.scheme or parts.netloc) else url.split("?", 1)[0].split("#", 1)[0]
    words = [
        w for w in _URL_SPLIT.split(unquote(path).lower())
        if w and w not in _DROP_PARTS and not _ID_LIKE.match(w)
    ]
    query = parts.query.lower()
    # On-site search pages carry the searched words in the query string.
    for key in ("q", "query", "search", "searchterm", "keyword", "k"):
        m = re.search(rf"(?:^|&){key}=([^&]+)", query)
        if m:
            words.append(unquote(m.group(1)).replace("+", " "))
            break
    return normalize_text(" ".join(words))
