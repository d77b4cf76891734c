"""PostHog event export: `{event, distinct_id, properties, timestamp, uuid}` per document.

`$pageview`/`$screen`/`$identify`/`$create_alias` become page/screen/identify/alias.
On `$identify`, `distinct_id` is the user and `$anon_distinct_id` the device it was before; on
`$create_alias`, `distinct_id` is the id used so far (previousId) and `alias` the new one (userId).
"""

from __future__ import annotations

from micromoments.sources.jsonmap import Pick

# PostHog's special events and the Segment call each one is; every other event is a track.
# The collector's PostHog capture API (server/wire_posthog.py) maps with the same tables.
EVENT_TYPES: dict[str, str] = {"$pageview": "page", "$screen": "screen", "$identify": "identify",
                               "$create_alias": "alias", "$groupidentify": "group"}
APP_LIBS: tuple[str, ...] = ("posthog-ios", "posthog-android", "posthog-react-native", "posthog-flutter")
QUERY_PROPERTIES: tuple[str, ...] = ("$search", "q", "query", "search")

_EVENT = "({$.event})"
_TYPE_CASES = " ".join(f"WHEN {_EVENT} = '{name}' THEN '{type_}'" for name, type_ in EVENT_TYPES.items())
_APP_LIBS = ", ".join(f"'{lib}'" for lib in APP_LIBS)

POSTHOG: dict[str, Pick] = {
    "message_id": Pick("id", "$.uuid", "$.id"),
    "anonymous_id": Pick(
        "sql",
        f"""CASE WHEN {_EVENT} = '$identify' THEN {{$.properties."$anon_distinct_id"}}
             ELSE coalesce({{$.properties."$device_id"}}, {{$.distinct_id}}) END""",
    ),
    "user_id": Pick(
        "sql",
        f"""CASE WHEN {_EVENT} = '$identify' THEN {{$.distinct_id}}
             WHEN {_EVENT} = '$create_alias' THEN coalesce({{$.properties.alias}}, {{$.distinct_id}})
             ELSE coalesce({{$.properties."$user_id"}},
                  CASE WHEN {{$.properties."$device_id"}} IS NOT NULL
                        AND {{$.properties."$device_id"}} <> {{$.distinct_id}}
                       THEN {{$.distinct_id}} END) END""",
    ),
    # `alias(alias, original)`: the event's distinct_id is the id used so far, `alias` the new one.
    "previous_id": Pick("sql", f"CASE WHEN {_EVENT} = '$create_alias' THEN {{$.distinct_id}} END"),
    "type": Pick(
        "sql",
        f"""CASE WHEN {_EVENT} IS NULL THEN NULL {_TYPE_CASES} ELSE 'track' END""",
    ),
    "event": Pick("string", "$.event"),
    "name": Pick("string", '$.properties."$screen_name"', '$.properties."$title"', "$.properties.title"),
    "ts_original": Pick("time", "$.timestamp", "$.created_at"),
    "ts_missing": Pick("sql", "({$.timestamp} IS NULL AND {$.created_at} IS NULL)"),
    "ts_text": Pick("string", "$.timestamp", "$.created_at"),
    "sent_at": Pick("time", '$.properties."$sent_at"'),
    "received_at": Pick("time", "$.received_at"),
    "channel_raw": Pick("string", "$.properties.channel"),
    "is_app": Pick("sql", f"""coalesce({{$.properties."$lib"}} IN ({_APP_LIBS}), false)"""),
    "query_raw": Pick("string", *(f'$.properties."{p}"' for p in QUERY_PROPERTIES)),
    "page_url": Pick("string", '$.properties."$current_url"', "$.properties.url"),
    "page_path": Pick("string", '$.properties."$pathname"'),
    "page_title": Pick("string", '$.properties."$title"', "$.properties.title"),
    "referrer": Pick("string", '$.properties."$referrer"'),
    "utm_source": Pick("string", "$.properties.utm_source"),
    "utm_medium": Pick("string", "$.properties.utm_medium"),
    "utm_campaign": Pick("string", "$.properties.utm_campaign"),
    "lat": Pick("number", '$.properties."$geoip_latitude"', "$.properties.latitude"),
    "lon": Pick("number", '$.properties."$geoip_longitude"', "$.properties.longitude"),
    "city": Pick("string", '$.properties."$geoip_city_name"'),
    "country": Pick("string", '$.properties."$geoip_country_code"'),
    "device_raw": Pick("string", '$.properties."$device_type"'),
    "locale": Pick("string", '$.properties."$locale"'),
    "timezone": Pick("string", '$.properties."$timezone"'),
    "ip": Pick("string", '$.properties."$ip"'),
    "user_agent": Pick("string", '$.properties."$raw_user_agent"'),
    "revenue": Pick("number", "$.properties.revenue", "$.properties.price", "$.properties.value"),
    "properties": Pick("object", "$.properties"),
    "traits": Pick("object", '$.properties."$set"', "$.person.properties"),
    "context": Pick("sql", "NULL"),
}
