"""SQL that turns a reader's mapped rows into canonical events, or into quarantine rows.

Every reader produces a relation with the *mapped* columns below (one row per raw event,
values as found). `finish_sql` adds what every source shares: clock-skew correction,
channel, search query, device, a message id when none was sent, and the first reason a
row is rejected. The rules are the data in `events/model.py`.
"""

from __future__ import annotations

import datetime as dt

from micromoments.events.model import (
    CHANNELS,
    EVENT_TYPES,
    LATITUDE_RANGE,
    LONGITUDE_RANGE,
    MEDIUM_CHANNELS,
    MIN_TIMESTAMP,
    QUERY_URL_PARAMETERS,
    REFERRER_CHANNELS,
)

# Columns every reader's mapping produces (all VARCHAR unless noted).
MAPPED_COLUMNS: tuple[str, ...] = (
    "line_no",          # BIGINT: 1-based line/row in the source
    "raw",              # the raw text, kept for the quarantine
    "doc_error",        # the document as a whole is unusable (not JSON, not an object)
    "type_error",       # first wrong-typed field as 'field: message', else NULL
    "message_id", "anonymous_id", "user_id", "previous_id", "type", "event", "name",
    "ts_original",      # TIMESTAMP as the device stamped it
    "ts_missing",       # BOOLEAN: no timestamp field at all
    "ts_text",          # the timestamp as given, for the error message
    "sent_at", "received_at",  # TIMESTAMP
    "channel_raw", "is_app",   # is_app: BOOLEAN, the event came from a mobile app
    "query_raw", "page_url", "page_path", "page_title", "referrer",
    "utm_source", "utm_medium", "utm_campaign",
    "lat", "lon",       # DOUBLE
    "city", "country", "device_raw", "locale", "timezone", "ip", "user_agent",
    "revenue",          # DOUBLE
    "properties", "traits", "context",
)


_TYPED = {
    "line_no": "BIGINT", "ts_original": "TIMESTAMP", "ts_missing": "BOOLEAN", "sent_at": "TIMESTAMP",
    "received_at": "TIMESTAMP", "is_app": "BOOLEAN", "lat": "DOUBLE", "lon": "DOUBLE", "revenue": "DOUBLE",
}


def typed_null(column: str) -> str:
    """A NULL of the mapped column's type, for columns a format does not have."""
    return f"CAST(NULL AS {_TYPED.get(column, 'VARCHAR')})"


def epoch_or_iso_sql(text: str) -> str:
    """Parse a timestamp given as text: ISO-8601 (any offset, to UTC) or an epoch number.

    Epoch numbers are read as seconds, milliseconds or microseconds by their size
    (GA4 sends microseconds, JavaScript milliseconds). Numbers below 1e9 are not epochs.
    """
    n = f"TRY_CAST({text} AS DOUBLE)"
    return (
        f"CASE WHEN {n} > 1e9 THEN make_timestamp(CAST(CASE WHEN {n} > 1e14 THEN {n} "
        f"WHEN {n} > 1e11 THEN {n} * 1e3 ELSE {n} * 1e6 END AS BIGINT)) "
        f"ELSE TRY_CAST({text} AS TIMESTAMPTZ)::TIMESTAMP END"
    )


def sql_literal(text: str) -> str:
    """A SQL string literal.

    >>> sql_literal("it's")
    "'it''s'"
    """
    return "'" + text.replace("'", "''") + "'"


def _sql_list(items: list[str] | tuple[str, ...]) -> str:
    return "[" + ", ".join(sql_literal(i) for i in items) + "]"


def channel_sql() -> str:
    """CASE expression deriving the marketing channel from the mapped columns."""
    medium_cases = " ".join(
        f"WHEN {sql_literal(k)} THEN {sql_literal(v)}" for k, v in MEDIUM_CHANNELS.items()
    )
    referrer_cases = " ".join(
        f"WHEN contains(lower(referrer), {sql_literal(k)}) THEN {sql_literal(v)}" for k, v in REFERRER_CHANNELS
    )
    return f"""CASE
        WHEN lower(channel_raw) IN {tuple(CHANNELS)!r} THEN lower(channel_raw)
        WHEN utm_medium IS NOT NULL AND (CASE lower(utm_medium) {medium_cases} END) IS NOT NULL
            THEN (CASE lower(utm_medium) {medium_cases} END)
        WHEN is_app OR lower(channel_raw) = 'mobile' OR type = 'screen' THEN 'app'
        {referrer_cases}
        ELSE 'web' END"""


def query_from_url_sql(url: str = "page_url") -> str:
    """Expression extracting a site-search query from a URL's query string."""
    params = "|".join(QUERY_URL_PARAMETERS)
    return (
        f"nullif(trim(url_decode(replace(regexp_extract({url}, "
        f"'[?&](?:{params})=([^&#]*)', 1), '+', ' '))), '')"
    )


def finish_sql(mapped: str, *, now_sql: str, max_future_hours: float, source: str,
               min_time: dt.datetime = MIN_TIMESTAMP) -> str:
    """SELECT producing canonical event columns plus `_reason`/`_field` for rejects.

    `mapped` names a relation with MAPPED_COLUMNS. `now_sql` is a SQL timestamp literal. Times
    (after clock-skew correction) and `sentAt` must lie from `min_time` to now + `max_future_hours`.
    """
    src = sql_literal(source)
    earliest = f"TIMESTAMP '{min_time.isoformat(sep=' ')}'"
    latest = f"{now_sql} + INTERVAL {int(max_future_hours * 3600)} SECOND"
    sent_ok = f"sent_at BETWEEN {earliest} AND {latest}"
    ts = (f"CASE WHEN sent_at IS NOT NULL AND received_at IS NOT NULL AND ts_original IS NOT NULL AND {sent_ok} "
          "THEN received_at - (sent_at - ts_original) ELSE ts_original END")
    in_range = (f"'is outside the accepted range {min_time:%Y-%m-%d} to now + {max_future_hours:g} h "
                "([ingest] min_timestamp, max_future_skew_hours)'")
    # A NUL character: text fields hold it decoded, the JSON columns as the escape \\u0000.
    nul = ("(contains(concat(event, name, message_id, anonymous_id, user_id, previous_id, page_url, page_path, "
           "page_title, query, referrer), chr(0)) OR contains(concat(properties, traits, context), '\\u0000'))")
    lat_lo, lat_hi = LATITUDE_RANGE
    lon_lo, lon_hi = LONGITUDE_RANGE
    types = tuple(EVENT_TYPES)
    return f"""
    SELECT *,
      CASE
        WHEN doc_error IS NOT NULL THEN NULL
        WHEN type_error IS NOT NULL THEN split_part(type_error, ':', 1)
        WHEN {nul} THEN 'text'
        WHEN lat IS NOT NULL AND NOT (lat BETWEEN {lat_lo} AND {lat_hi}) THEN 'latitude'
        WHEN lon IS NOT NULL AND NOT (lon BETWEEN {lon_lo} AND {lon_hi}) THEN 'longitude'
        WHEN revenue IS NOT NULL AND NOT isfinite(revenue) THEN 'revenue'
        WHEN type IS NULL OR type NOT IN {types!r} THEN 'type'
        WHEN ts_missing THEN 'timestamp'
        WHEN ts IS NULL THEN 'timestamp'
        WHEN sent_at IS NOT NULL AND NOT ({sent_ok}) THEN 'sentAt'
        WHEN ts > {latest} THEN 'timestamp'
        WHEN ts < {earliest} THEN 'timestamp'
        WHEN anonymous_id IS NULL AND user_id IS NULL THEN 'userId'
        WHEN type = 'alias' AND (previous_id IS NULL OR user_id IS NULL) THEN 'previousId'
      END AS _field,
      CASE
        WHEN doc_error IS NOT NULL THEN doc_error
        WHEN type_error IS NOT NULL THEN 'wrong type: ' || type_error
        WHEN {nul} THEN 'the event contains a NUL character (\\u0000)'
        WHEN lat IS NOT NULL AND NOT (lat BETWEEN {lat_lo} AND {lat_hi})
          THEN 'latitude ' || lat || ' is outside {lat_lo:g}..{lat_hi:g}'
        WHEN lon IS NOT NULL AND NOT (lon BETWEEN {lon_lo} AND {lon_hi})
          THEN 'longitude ' || lon || ' is outside {lon_lo:g}..{lon_hi:g}'
        WHEN revenue IS NOT NULL AND NOT isfinite(revenue) THEN 'revenue ' || revenue || ' is not a finite number'
        WHEN type IS NULL THEN 'missing event type'
        WHEN type NOT IN {types!r} THEN 'unknown type ' || type || ' (expected one of {", ".join(types)})'
        WHEN ts_missing THEN 'missing timestamp'
        WHEN ts IS NULL THEN 'timestamp is not ISO-8601 or epoch: ' || coalesce(ts_text, 'null')
        WHEN sent_at IS NOT NULL AND NOT ({sent_ok}) THEN 'sentAt ' || sent_at || ' ' || {in_range}
        WHEN ts > {latest}
          THEN 'timestamp ' || strftime(ts, '%Y-%m-%dT%H:%M:%SZ') || ' is in the future'
        WHEN ts < {earliest} THEN 'timestamp ' || ts || ' ' || {in_range}
        WHEN anonymous_id IS NULL AND user_id IS NULL THEN 'neither anonymousId nor userId is set'
        WHEN type = 'alias' AND (previous_id IS NULL OR user_id IS NULL) THEN 'alias needs previousId and userId'
      END AS _reason
    FROM (
      SELECT
        line_no, raw, doc_error, type_error,
        coalesce(message_id, 'h:' || md5(raw)) AS message_id,
        coalesce(nullif(user_id, ''), nullif(anonymous_id, '')) AS person_id,
        nullif(anonymous_id, '') AS anonymous_id, nullif(user_id, '') AS user_id, previous_id, type, event, name,
        {ts} AS ts, ts_missing, ts_text,
        sent_at, received_at,
        {channel_sql()} AS channel,
        coalesce(nullif(trim(query_raw), ''), {query_from_url_sql()}) AS query,
        page_url, page_path, page_title, referrer, utm_source, utm_medium, utm_campaign,
        lat, lon, city, country,
        coalesce(lower(device_raw), CASE
            WHEN user_agent IS NULL THEN NULL
            WHEN regexp_matches(user_agent, 'iPad|Tablet') THEN 'tablet'
            WHEN regexp_matches(user_agent, 'Mobi|iPhone|Android') THEN 'mobile'
            ELSE 'desktop' END) AS device_type,
        locale, timezone, ip, user_agent, revenue, properties, traits, context,
        {src} AS source, line_no AS source_line
      FROM {mapped}
    )
    """
