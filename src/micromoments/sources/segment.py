"""Segment: the Track/Page/Screen/Identify/Alias/Group spec, one event per JSON document.

Batch envelopes (`{"batch": [...], "sentAt": ..., "context": ...}`) are unwrapped by the
reader before mapping; the envelope's `sentAt` applies to its events, as in Segment's HTTP API.
"""

from __future__ import annotations

from micromoments.sources.jsonmap import Pick

SEGMENT: dict[str, Pick] = {
    "message_id": Pick("id", "$.messageId"),
    "anonymous_id": Pick("id", "$.anonymousId"),
    "user_id": Pick("id", "$.userId"),
    "previous_id": Pick("id", "$.previousId"),
    "type": Pick("sql", "lower({$.type})"),
    "event": Pick("string", "$.event"),
    "name": Pick("string", "$.name", "$.properties.name"),
    # Segment's `timestamp` is the corrected time when `originalTimestamp` is present.
    "ts_original": Pick("time", "$.originalTimestamp", "$.timestamp"),
    "ts_missing": Pick("sql", "({$.originalTimestamp} IS NULL AND {$.timestamp} IS NULL)"),
    "ts_text": Pick("string", "$.originalTimestamp", "$.timestamp"),
    "sent_at": Pick("time", "$.sentAt"),
    "received_at": Pick("time", "$.receivedAt"),
    "channel_raw": Pick("string", "$.channel"),
    "is_app": Pick("sql", "({$.context.app} IS NOT NULL)"),
    "query_raw": Pick(
        "string", "$.properties.query", "$.properties.search_query", "$.properties.search",
        "$.properties.search_term", "$.properties.keyword", "$.context.page.search",
    ),
    "page_url": Pick("string", "$.properties.url", "$.context.page.url"),
    "page_path": Pick("string", "$.properties.path", "$.context.page.path"),
    "page_title": Pick("string", "$.properties.title", "$.context.page.title"),
    "referrer": Pick("string", "$.properties.referrer", "$.context.page.referrer"),
    "utm_source": Pick("string", "$.context.campaign.source"),
    "utm_medium": Pick("string", "$.context.campaign.medium"),
    "utm_campaign": Pick("string", "$.context.campaign.name"),
    "lat": Pick("number", "$.context.location.latitude", "$.properties.latitude"),
    "lon": Pick("number", "$.context.location.longitude", "$.properties.longitude"),
    "city": Pick("string", "$.context.location.city"),
    "country": Pick("string", "$.context.location.country"),
    "device_raw": Pick("string", "$.context.device.type"),
    "locale": Pick("string", "$.context.locale"),
    "timezone": Pick("string", "$.context.timezone"),
    "ip": Pick("string", "$.context.ip"),
    "user_agent": Pick("string", "$.context.userAgent"),
    "revenue": Pick("number", "$.properties.revenue", "$.properties.total", "$.properties.value"),
    "properties": Pick("object", "$.properties"),
    "traits": Pick("object", "$.traits", "$.context.traits"),
    "context": Pick("object", "$.context"),
}
