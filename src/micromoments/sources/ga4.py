"""GA4 BigQuery export rows as JSON: `event_name`, `event_timestamp` (µs), `user_pseudo_id`,
`user_id`, and `event_params` as a list of `{key, value: {string_value|int_value|double_value}}`.

Params are turned into a map once per row; the mapping reads keys from it.
"""

from __future__ import annotations

from micromoments.sources.jsonmap import Pick

_PARAMS = """map_from_entries(list_transform(
    from_json(coalesce({$.event_params}, '[]'),
      '[{"key": "VARCHAR", "value": {"string_value": "VARCHAR", "int_value": "VARCHAR", "float_value": "DOUBLE", "double_value": "DOUBLE"}}]'),
    p -> {'k': p.key, 'v': coalesce(p.value.string_value, p.value.int_value,
                                    CAST(coalesce(p.value.double_value, p.value.float_value) AS VARCHAR))}))"""


def _param(key: str) -> str:
    return f"({_PARAMS})['{key}']"


# The GA4 events that are Segment page/screen calls (every other event is a track, under its
# GA4 name), the params that say where and what was searched, and the events whose `value`
# is revenue. The collector's Measurement Protocol route (server/wire_ga4.py) maps with these.
EVENT_TYPES: dict[str, str] = {"page_view": "page", "screen_view": "screen"}
PAGE_PARAMS: dict[str, str] = {"page_location": "url", "page_title": "title", "page_referrer": "referrer"}
QUERY_PARAMS: tuple[str, ...] = ("search_term", "q")
CAMPAIGN_PARAMS: dict[str, str] = {"source": "source", "medium": "medium", "campaign": "name"}
REVENUE_EVENTS: tuple[str, ...] = ("purchase",)

_EVENT = "({$.event_name})"
_TYPE_CASES = " ".join(f"WHEN {_EVENT} = '{name}' THEN '{type_}'" for name, type_ in EVENT_TYPES.items())
_REVENUE_EVENTS = ", ".join(f"'{name}'" for name in REVENUE_EVENTS)

GA4: dict[str, Pick] = {
    "message_id": Pick("sql", "NULL"),  # GA4 has no event id: a hash of the row is used
    "anonymous_id": Pick("id", "$.user_pseudo_id"),
    "user_id": Pick("id", "$.user_id"),
    "type": Pick(
        "sql",
        f"""CASE WHEN {_EVENT} IS NULL THEN NULL {_TYPE_CASES} ELSE 'track' END""",
    ),
    "event": Pick("string", "$.event_name"),
    "name": Pick("sql", f"coalesce({_param('firebase_screen')}, {_param('page_title')})"),
    "ts_original": Pick("time", "$.event_timestamp"),
    "ts_missing": Pick("sql", "({$.event_timestamp} IS NULL)"),
    "ts_text": Pick("string", "$.event_timestamp"),
    "channel_raw": Pick("sql", "NULL"),
    "is_app": Pick("sql", "coalesce(upper({$.platform}) IN ('ANDROID', 'IOS'), false)"),
    "query_raw": Pick("sql", "coalesce(" + ", ".join(_param(p) for p in QUERY_PARAMS) + ")"),
    "page_url": Pick("sql", _param("page_location")),
    "page_title": Pick("sql", _param("page_title")),
    "referrer": Pick("sql", _param("page_referrer")),
    "utm_source": Pick("sql", f"coalesce({_param('source')}, {{$.traffic_source.source}})"),
    "utm_medium": Pick("sql", f"coalesce({_param('medium')}, {{$.traffic_source.medium}})"),
    "utm_campaign": Pick("sql", f"coalesce({_param('campaign')}, {{$.traffic_source.name}})"),
    "city": Pick("string", "$.geo.city"),
    "country": Pick("string", "$.geo.country"),
    "device_raw": Pick("string", "$.device.category"),
    "locale": Pick("string", "$.device.language"),
    "revenue": Pick(
        "sql",
        f"coalesce(TRY_CAST({{$.ecommerce.purchase_revenue}} AS DOUBLE), "
        f"CASE WHEN {_EVENT} IN ({_REVENUE_EVENTS}) THEN TRY_CAST({_param('value')} AS DOUBLE) END)",
    ),
    "properties": Pick("sql", f"to_json({_PARAMS})::VARCHAR"),
    "traits": Pick("object", "$.user_properties_map"),
    "context": Pick("sql", "json_object('device', json({$.device}), 'geo', json({$.geo}), 'traffic_source', json({$.traffic_source}))::VARCHAR"),
}
