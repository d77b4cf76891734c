"""Table definitions of the store. One place, so every module agrees on names and types.

Timestamps are naive `TIMESTAMP` values in UTC (Spark and DuckDB agree on those).
JSON blobs are stored as text, so any engine can read them.
"""

from __future__ import annotations

EVENTS_COLUMNS: dict[str, str] = {
    "message_id": "VARCHAR",      # unique; derived from a hash of the raw event when absent
    "person_id": "VARCHAR",       # after identity stitching
    "anonymous_id": "VARCHAR",
    "user_id": "VARCHAR",
    "type": "VARCHAR",            # track / page / screen / identify / alias / group
    "event": "VARCHAR",           # track event name, e.g. 'Products Searched'
    "name": "VARCHAR",            # page or screen name
    "ts": "TIMESTAMP",            # clock-skew corrected, UTC
    "sent_at": "TIMESTAMP",
    "received_at": "TIMESTAMP",
    "channel": "VARCHAR",         # web / app / email / social / paid-search / organic-search / referral / direct / store
    "query": "VARCHAR",           # the search query, whichever field it came from
    "page_url": "VARCHAR",
    "page_path": "VARCHAR",
    "page_title": "VARCHAR",
    "referrer": "VARCHAR",
    "utm_source": "VARCHAR",
    "utm_medium": "VARCHAR",
    "utm_campaign": "VARCHAR",
    "lat": "DOUBLE",
    "lon": "DOUBLE",
    "city": "VARCHAR",
    "country": "VARCHAR",
    "device_type": "VARCHAR",     # mobile / desktop / tablet / ...
    "locale": "VARCHAR",
    "timezone": "VARCHAR",        # IANA name, e.g. 'Europe/Paris'
    "ip": "VARCHAR",
    "user_agent": "VARCHAR",
    "revenue": "DOUBLE",
    "properties": "VARCHAR",      # JSON text
    "traits": "VARCHAR",          # JSON text
    "context": "VARCHAR",         # JSON text
    "source": "VARCHAR",          # file (or 'api') it came from
    "source_line": "BIGINT",      # 1-based line or row in that file
}
# Columns the intent engine adds to `events` (`intent.store_step.stamp_moments`) and the journey
# reads (`journey.pipeline.load_events`): each event's moment, NULL until it is classified.
STAMPED_MOMENT_COLUMNS: dict[str, str] = {"moment": "VARCHAR", "go_type": "VARCHAR", "confidence": "DOUBLE"}

QUARANTINE_COLUMNS: dict[str, str] = {
    "source": "VARCHAR",
    "line": "BIGINT",
    "field": "VARCHAR",
    "reason": "VARCHAR",
    "raw": "VARCHAR",
    "quarantined_at": "TIMESTAMP",
}

# Every id ever seen, mapped to the person it belongs to.
IDENTITIES_COLUMNS: dict[str, str] = {
    "id": "VARCHAR",
    "id_type": "VARCHAR",         # anonymous / user
    "person_id": "VARCHAR",
}

# Raw links observed between ids (identify, alias, or an event carrying both).
IDENTITY_LINKS_COLUMNS: dict[str, str] = {
    "a": "VARCHAR",
    "b": "VARCHAR",
    "via": "VARCHAR",
}

PROFILES_COLUMNS: dict[str, str] = {
    "person_id": "VARCHAR",
    "user_id": "VARCHAR",
    "traits": "VARCHAR",          # latest merged traits, JSON text
    "first_seen": "TIMESTAMP",
    "last_seen": "TIMESTAMP",
    "events": "BIGINT",
}

# --- Activation logs (written by the live path, read by measure/). One row per decision made
# by /v1/decide or a playbook; an exposure when content was actually shown or delivered;
# an outcome for a click or conversion attributed back to a decision.
DECISIONS_COLUMNS: dict[str, str] = {
    "decision_id": "VARCHAR",     # unique
    "ts": "TIMESTAMP",
    "person_id": "VARCHAR",
    "playbook": "VARCHAR",        # NULL when no playbook matched
    "content_id": "VARCHAR",      # NULL when nothing was chosen
    "channel": "VARCHAR",         # web / app / email / push / webhook
    "moment": "VARCHAR",
    "stage": "VARCHAR",
    "persona": "VARCHAR",
    "experiment": "VARCHAR",
    "variant": "VARCHAR",
    "propensity": "DOUBLE",       # probability the policy chose this content (for OPE)
    "status": "VARCHAR",          # chosen / capped / quiet_hours / no_consent / no_match / ...
    "context": "VARCHAR",         # JSON text
}

EXPOSURES_COLUMNS: dict[str, str] = {
    "exposure_id": "VARCHAR",
    "decision_id": "VARCHAR",
    "ts": "TIMESTAMP",
    "person_id": "VARCHAR",
    "content_id": "VARCHAR",
    "channel": "VARCHAR",
    "delivery_status": "VARCHAR",  # delivered / failed / dead_letter
}

OUTCOMES_COLUMNS: dict[str, str] = {
    "outcome_id": "VARCHAR",
    "decision_id": "VARCHAR",      # NULL when not attributable to a decision
    "ts": "TIMESTAMP",
    "person_id": "VARCHAR",
    "kind": "VARCHAR",             # click / conversion
    "revenue": "DOUBLE",
}

ASSIGNMENTS_COLUMNS: dict[str, str] = {
    "experiment": "VARCHAR",
    "person_id": "VARCHAR",
    "variant": "VARCHAR",
    "ts": "TIMESTAMP",             # first exposure to the experiment
}

# Deliveries that failed every retry (webhook, push, email), kept for inspection and replay.
DEAD_LETTERS_COLUMNS: dict[str, str] = {
    "dead_letter_id": "VARCHAR",
    "ts": "TIMESTAMP",
    "decision_id": "VARCHAR",
    "person_id": "VARCHAR",
    "channel": "VARCHAR",
    "target": "VARCHAR",           # URL name, device token or email address
    "payload": "VARCHAR",          # JSON text of the message
    "attempts": "BIGINT",
    "last_error": "VARCHAR",
}

TABLES: dict[str, dict[str, str]] = {
    "events": EVENTS_COLUMNS,
    "quarantine": QUARANTINE_COLUMNS,
    "identities": IDENTITIES_COLUMNS,
    "identity_links": IDENTITY_LINKS_COLUMNS,
    "profiles": PROFILES_COLUMNS,
    "decisions": DECISIONS_COLUMNS,
    "exposures": EXPOSURES_COLUMNS,
    "outcomes": OUTCOMES_COLUMNS,
    "assignments": ASSIGNMENTS_COLUMNS,
    "dead_letters": DEAD_LETTERS_COLUMNS,
}

# --- Personas (personas/). `person_features` is rebuilt whole by `personas build` and also carries
# one column per feature (moment_*, channel_*, hour_*, query_* ...); these are the core columns.
PERSON_FEATURES_COLUMNS: dict[str, str] = {
    "person_id": "VARCHAR",
    "events": "BIGINT",
    "sessions": "BIGINT",
    "orders": "BIGINT",
    "revenue": "DOUBLE",
    "p_alive": "DOUBLE",
    "clv": "DOUBLE",
    "built_at": "TIMESTAMP",
}

# One row per person: the persona they belong to (nearest centroid) and how it was assigned.
PERSONAS_COLUMNS: dict[str, str] = {
    "person_id": "VARCHAR",
    "persona_id": "BIGINT",
    "persona": "VARCHAR",         # the plain-words name, used as the label
    "distance": "DOUBLE",         # to the centroid, in the model's scaled units
    "method": "VARCHAR",          # cluster (full re-cluster) / incremental (nearest centroid)
    "model_version": "VARCHAR",
    "assigned_at": "TIMESTAMP",
}

# One row per persona: its name, description, size, value and typical journey.
PERSONA_DESCRIPTIONS_COLUMNS: dict[str, str] = {
    "persona_id": "BIGINT",
    "persona": "VARCHAR",
    "description": "VARCHAR",
    "people": "BIGINT",
    "share": "DOUBLE",
    "mean_clv": "DOUBLE",
    "mean_revenue": "DOUBLE",
    "typical_path": "VARCHAR",
    "traits": "VARCHAR",          # JSON: the distinguishing features and their values
    "model_version": "VARCHAR",
}

# Declared data (surveys, interviews, CRM) in long form: one row per person and answer.
SURVEY_ANSWERS_COLUMNS: dict[str, str] = {
    "person_id": "VARCHAR",       # NULL when the key matched nobody yet
    "user_id": "VARCHAR",
    "email_hash": "VARCHAR",      # salted SHA-256 of the normalised email
    "email": "VARCHAR",           # only when [personas] store_raw_email = true
    "field": "VARCHAR",
    "value": "VARCHAR",
    "source": "VARCHAR",
    "line": "BIGINT",
    "imported_at": "TIMESTAMP",
}

TABLES.update({
    "person_features": PERSON_FEATURES_COLUMNS,
    "personas": PERSONAS_COLUMNS,
    "persona_descriptions": PERSONA_DESCRIPTIONS_COLUMNS,
    "survey_answers": SURVEY_ANSWERS_COLUMNS,
})


# --- Search data (seo/): one row per Search Console / Bing Webmaster export row, in one shape.
# `grain` says what a row aggregates: `url` (bulk searchdata_url_impression), `site` (bulk
# searchdata_site_impression), `query` (UI Queries / Bing keywords: no page), or one UI dimension
# file (`page`, `date`, `country`, `device`). Rows of different grains describe the same searches:
# never sum across grains. `sum_position` is zero-based, as Google's: avg position = sum / impressions + 1.
SEARCH_ROWS_COLUMNS: dict[str, str] = {
    "file_id": "VARCHAR",         # hash of the file's bytes: loading a file again replaces its rows
    "source": "VARCHAR",          # file (and zip member) it came from
    "source_line": "BIGINT",      # 1-based line (CSV, after the header) or row (Parquet)
    "engine": "VARCHAR",          # google / bing
    "grain": "VARCHAR",
    "data_date": "DATE",
    "site_url": "VARCHAR",
    "url": "VARCHAR",             # landing page; NULL when the export has none
    "query": "VARCHAR",           # NULL for anonymized queries
    "is_anonymized": "BOOLEAN",
    "country": "VARCHAR",
    "device": "VARCHAR",          # desktop / mobile / tablet
    "search_type": "VARCHAR",     # web / image / video / news / discover / googleNews
    "impressions": "BIGINT",
    "clicks": "BIGINT",
    "sum_position": "DOUBLE",
}


def create_table_sql(name: str, columns: dict[str, str]) -> str:
    """`CREATE TABLE IF NOT EXISTS` for one table.

    >>> create_table_sql("t", {"a": "VARCHAR"})
    'CREATE TABLE IF NOT EXISTS "t" ("a" VARCHAR)'
    """
    cols = ", ".join(f'"{c}" {t}' for c, t in columns.items())
    return f'CREATE TABLE IF NOT EXISTS "{name}" ({cols})'
