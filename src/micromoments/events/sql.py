"""SQL that turns a reader's mapped rows into canonical events, or into quarantine rows.

Every reader produces a relation with the *mapped* columns below (one row per raw event,
values as found). `finish_sql` adds what every source shares: clock-skew correction,
channel, search query, device, a message id when none was sent, and the first reason a
row is rejected. The rules are the data in `events/model.py`.
"""

from __future__ import annotations

from micromoments.events.model import MEDIUM_CHANNELS, QUERY_URL_PARAMETERS, REFERRER_CHANNELS, CHANNELS, EVENT_TYPES

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


def finish_sql(mapped: str, *, now_sql: str, max_future_hours: float, source: str) -> str:
    """SELECT producing canonical event columns plus `_reason`/`_field` for rejects.

    `mapped` names a relation with MAPPED_COLUMNS. `now_sql` is a SQL timestamp literal.
    """
    src = sql_literal(source)
    ts = ("CASE WHEN sent_at IS NOT NULL AND received_at IS NOT NULL AND ts_original IS NOT NULL "
          "THEN received_at - (sent_at - ts_original) ELSE ts_original END")
    types = tuple(EVENT_TYPES)
    return f"""
    SELECT *,
      CASE
        WHEN doc_error IS NOT NULL THEN NULL
        WHEN type_error IS NOT NULL THEN split_part(type_error, ':', 1)
        WHEN type IS NULL OR type NOT IN {types!r} THEN 'type'
        WHEN ts_missing THEN 'timestamp'
        WHEN ts IS NULL THEN 'timestamp'
        WHEN ts > {now_sql} + INTERVAL {int(max_future_hours * 3600)} SECOND THEN 'timestamp'
        WHEN anonymous_id IS NULL AND user_id IS NULL THEN 'userId'
        WHEN type = 'alias' AND (previous_id IS NULL OR user_id IS NULL) THEN 'previousId'
      END AS _field,
      CASE
        WHEN doc_error IS NOT NULL THEN doc_error
        WHEN type_error IS NOT NULL THEN 'wrong type: ' || type_error
        WHEN type IS NULL THEN 'missing event type'
        WHEN type NOT IN {types!r} THEN 'unknown type ' || type || ' (expected one of {", ".join(types)})'
        WHEN ts_missing THEN 'missing timestamp'
        WHEN ts IS NULL THEN 'timestamp is not ISO-8601 or epoch: ' || coalesce(ts_text, 'null')
        WHEN ts > {now_sql} + INTERVAL {int(max_future_hours * 3600)} SECOND
          THEN 'timestamp ' || strftime(ts, '%Y-%m-%dT%H:%M:%SZ') || ' is in the future'
        WHEN anonymous_id IS NULL AND user_id IS NULL THEN 'neither anonymousId nor userId is set'
        WHEN type = 'alias' AND (previous_id IS NULL OR user_id IS NULL) THEN 'alias needs previousId and userId'
      END AS _reason
    FROM (
      SELECT
        line_no, raw, doc_error, type_error,
        coalesce(message_id, 'h:' || md5(raw)) AS message_id,
        coalesce(user_id, anonymous_id) AS person_id,
        anonymous_id, user_id, previous_id, type, event, name,
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
