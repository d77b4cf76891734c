"""Shared definitions of the canonical event: types, channels, query parameters.

They are plain data, so the batch path (SQL in `events/sql.py`) and the live path
(Python) read the same rules.

>>> channel_from_medium("cpc")
'paid-search'
>>> channel_from_medium("Newsletter")
'email'
"""

from __future__ import annotations

import datetime as dt

EVENT_TYPES: tuple[str, ...] = ("track", "page", "screen", "identify", "alias", "group")

CHANNELS: tuple[str, ...] = (
    "web", "app", "email", "social", "paid-search", "organic-search", "display",
    "affiliate", "referral", "direct", "sms", "push", "store",
)

# utm_medium (lower-cased) -> channel. Matches the common GA channel grouping.
MEDIUM_CHANNELS: dict[str, str] = {
    "cpc": "paid-search", "ppc": "paid-search", "paid": "paid-search", "paidsearch": "paid-search",
    "paid-search": "paid-search", "sem": "paid-search", "search-ads": "paid-search",
    "organic": "organic-search", "organic-search": "organic-search", "seo": "organic-search",
    "email": "email", "e-mail": "email", "newsletter": "email", "crm": "email",
    "social": "social", "social-paid": "social", "paid-social": "social", "social-network": "social",
    "display": "display", "banner": "display", "cpm": "display",
    "affiliate": "affiliate", "referral": "referral", "sms": "sms", "push": "push",
}

# Referrer host fragments -> channel, for visits that carry no campaign.
REFERRER_CHANNELS: tuple[tuple[str, str], ...] = (
    ("google.", "organic-search"), ("bing.", "organic-search"), ("duckduckgo.", "organic-search"),
    ("yahoo.", "organic-search"), ("ecosia.", "organic-search"), ("baidu.", "organic-search"),
    ("facebook.", "social"), ("instagram.", "social"), ("t.co", "social"), ("twitter.", "social"),
    ("x.com", "social"), ("linkedin.", "social"), ("pinterest.", "social"), ("tiktok.", "social"),
    ("reddit.", "social"), ("youtube.", "social"),
)

# URL query parameters that carry a site-search query, in order of preference.
QUERY_URL_PARAMETERS: tuple[str, ...] = ("q", "query", "search", "search_query", "s", "keyword", "k", "term")

# The accepted range of an event's time, after clock-skew correction, and of `sentAt`: from
# `[ingest] min_timestamp` (this default) to now + `[ingest] max_future_skew_hours`. Rows outside
# are quarantined; a year-1 or year-9999 time must never reach the analytics.
MIN_TIMESTAMP = dt.datetime(2000, 1, 1)
# Coordinates outside these ranges are quarantined (a latitude of 999 is a bug, not a place).
LATITUDE_RANGE = (-90.0, 90.0)
LONGITUDE_RANGE = (-180.0, 180.0)


# Property names that carry a search query in track events (Segment, PostHog, GA4).
QUERY_PROPERTIES: tuple[str, ...] = ("query", "search", "$search", "q", "search_term", "keyword")


def channel_from_medium(medium: str | None) -> str | None:
    """Map a utm_medium to a channel, or None when it says nothing we know."""
    if not medium:
        return None
    return MEDIUM_CHANNELS.get(medium.strip().lower())
