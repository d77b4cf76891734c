"""The canonical event model: a superset of the Segment spec.

A canonical event is one row of the store's `events` table (see `store/schema.py`).
This package holds the definitions every reader and the live path share: the event
types, the marketing channels, how a search query is found, how a device is named.
"""

from micromoments.events.model import (
    CHANNELS,
    EVENT_TYPES,
    QUERY_URL_PARAMETERS,
    channel_from_medium,
)

__all__ = ["CHANNELS", "EVENT_TYPES", "QUERY_URL_PARAMETERS", "channel_from_medium"]
