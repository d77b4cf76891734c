"""`micromoments.toml`: one readable file, every key with a working default.

>>> cfg = load_config(None)
>>> cfg.store.path
'micromoments.duckdb'
>>> cfg.journey.session_gap_minutes
30
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from micromoments.errors import ConfigError

DEFAULT_CONFIG_NAME = "micromoments.toml"


ENGINES = ("duckdb", "spark")
# Set by the CLI's global `--engine` (None: the config decides); see `load_config`.
_ENGINE_OVERRIDE: list[str | None] = [None]


@dataclass
class StoreConfig:
    """`[store]`: which engine runs the batch commands and where their data lives.

    >>> StoreConfig(backend="pyspark").engine
    'spark'
    """

    path: str = "micromoments.duckdb"  # the DuckDB file (engine = "duckdb")
    engine: str = "duckdb"             # "duckdb" (one machine) or "spark" (local mode or a cluster: [spark])
    # engine = "spark": the events lake, a folder or URL (s3a://bucket/prefix) of Parquet partitioned by date
    lake: str = "micromoments-lake"
    # engine = "spark": the live worker appends to the lake at most this often (fewer, bigger files;
    # the events wait durably in the WAL meanwhile)
    lake_round_seconds: float = 60.0
    backend: str = ""                  # the old name of `engine` ("duckdb" / "pyspark"), still read

    def __post_init__(self) -> None:
        if self.backend:
            alias = {"duckdb": "duckdb", "pyspark": "spark", "spark": "spark"}.get(self.backend.lower())
            if alias is None:
                raise ConfigError(f"unknown backend {self.backend!r}", where="[store] backend",
                                  hint='write engine = "duckdb" or engine = "spark" instead (backend is its old name)')
            if self.engine != "duckdb" and self.engine != alias:
                raise ConfigError(f"backend = {self.backend!r} contradicts engine = {self.engine!r}",
                                  where="[store]", hint="drop `backend` (the old name of `engine`)")
            self.engine, self.backend = alias, ""
        if self.engine not in ENGINES:
            raise ConfigError(f"unknown engine {self.engine!r}", where="[store] engine",
                              hint='use "duckdb" or "spark"')
        if not self.lake_round_seconds >= 0:
            raise ConfigError(f"lake_round_seconds must be 0 or more, not {self.lake_round_seconds!r}",
                              where="[store] lake_round_seconds", hint="e.g. 60 (seconds)")


@dataclass
class SparkConfig:
    """`[spark]`: how engine = "spark" reaches Spark; a cluster is a change here, not in code.

    `remote` (Spark Connect, "sc://host:15002") wins over `master` ("local[2]", "spark://host:7077",
    "yarn", "k8s://..."); `conf` is passed to the session as it is (e.g. the s3a credentials provider).
    """

    master: str = "local[*]"          # local mode on every core; or "spark://host:7077", "yarn", "k8s://..."
    remote: str = ""                  # Spark Connect, e.g. "sc://spark-master:15002" (wins over master)
    app_name: str = "micromoments"    # the application name the cluster shows
    conf: dict[str, Any] = field(default_factory=dict)  # any Spark conf: [spark.conf] "spark.executor.memory" = "8g"


@dataclass
class IngestConfig:
    # Rows per chunk of a Parquet file DuckDB cannot read by name (a glob character in its
    # path, a column named `line_no`); the others are loaded whole (store/whole_parquet.py).
    chunk_lines: int = 250_000
    # Events stamped further than this into the future are quarantined.
    max_future_skew_hours: float = 24.0
    # Events timed before this (after clock-skew correction), or with a sentAt before it, are
    # quarantined; the end of the accepted range is now + max_future_skew_hours. ISO date or time, UTC.
    min_timestamp: str = "2000-01-01"

    def min_time(self) -> dt.datetime:
        """`min_timestamp` as a naive UTC datetime; `ConfigError` when it is not an ISO date or time.

        >>> IngestConfig(min_timestamp="2015-06-01T00:00:00Z").min_time()
        datetime.datetime(2015, 6, 1, 0, 0)
        """
        try:
            parsed = dt.datetime.fromisoformat(self.min_timestamp.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(f"min_timestamp {self.min_timestamp!r} is not an ISO date or time",
                              where="[ingest] min_timestamp", hint='e.g. min_timestamp = "2000-01-01"') from None
        return parsed.astimezone(dt.timezone.utc).replace(tzinfo=None) if parsed.tzinfo else parsed
    max_event_bytes: int = 32 * 1024
    # DuckDB's memory cap while ingesting: it spills instead of growing, so memory stays
    # flat on files far bigger than RAM.
    memory_limit: str = "1GB"
    # Rows a Parquet file loaded whole reads per range (whole row groups; one transaction each).
    # Larger ranges keep both cores busier; smaller ones bound DuckDB's temp files (~100 bytes a
    # row spill beyond `memory_limit`) and what a failure rolls back.
    parquet_statement_rows: int = 20_000_000
    # DuckDB threads per chunk's statements (0 = the connection's own setting): a chunk's statements
    # are short, and one thread does them with less CPU than two. A Parquet file loaded whole uses
    # the connection's own threads: its statements are long.
    threads: int = 1


@dataclass
class JourneyConfig:
    session_gap_minutes: int = 30
    episode_gap_minutes: int = 10
    # A moment counts as "bought within the window" when a purchase follows it within this many days.
    conversion_window_days: float = 7.0
    stage_rules: list[dict[str, Any]] = field(default_factory=list)  # [] = journey.stages.DEFAULT_STAGE_RULES
    # DuckDB's memory cap while the journey tables are built (it spills to disk beyond it);
    # "" leaves the connection's own setting.
    memory_limit: str = "2GB"


@dataclass
class CustomMoment:
    name: str
    description: str = ""
    examples: list[str] = field(default_factory=list)


@dataclass
class IntentConfig:
    # Extra event rules: [{event = "Store Located", moment = "go", go_type = "local"}, {url = "/how-to/", moment = "do"}]
    event_rules: list[dict[str, Any]] = field(default_factory=list)
    custom_moments: list[CustomMoment] = field(default_factory=list)


@dataclass
class ActivationConfig:
    """`[activation]`: playbooks, content catalog, stores and delivery (empty path = the shipped examples)."""

    playbooks_dir: str = ""           # directory of *.yaml playbooks; "" = activation/examples/playbooks
    catalog: str = ""                 # content catalog (.yaml/.yml/.csv); "" = activation/examples/catalog.yaml
    stores_csv: str = ""              # stores (store_id,name,lat,lon,...); "" = the demo's 25 stores
    default_timezone: str = "UTC"     # when an event carries no IANA timezone
    quiet_hours: str = "21:00-08:00"  # local time; no push/email/webhook inside; "" = none
    require_consent: bool = False     # True: contact only people who gave marketing consent
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_from: str = "micromoments@localhost"
    smtp_starttls: bool = False
    smtp_user: str = ""
    smtp_password: str = ""
    webhook_urls: dict[str, str] = field(default_factory=dict)  # name -> URL for `channel: webhook`
    push_url: str = ""                # push gateway taking FCM/APNs-shaped JSON
    webhook_secret: str = ""          # HMAC-SHA256 key for webhook and push bodies
    delivery_attempts: int = 5
    backoff_seconds: float = 0.5      # first retry delay; doubles each attempt
    backoff_max_seconds: float = 30.0
    attribution_hours: float = 168.0  # a conversion within this time is credited to the last decision
    # Content choice among equally specific items (activation/bandit.py): "thompson" or "uniform".
    bandit: str = "thompson"
    exploration_floor: float = 0.05   # every eligible item keeps probability >= floor / n
    bandit_reward: str = "click"      # click / conversion; per playbook: bandit_rewards
    bandit_rewards: dict[str, str] = field(default_factory=dict)  # playbook name -> click / conversion
    bandit_context: list[str] = field(default_factory=lambda: ["moment", "stage", "channel"])  # + persona, playbook
    bandit_method: str = "quad"       # P(best) by quadrature ("quad") or Monte Carlo ("mc", 1,000 draws)


@dataclass
class ServerConfig:
    """`[server]`: the collector and API of `micromoments serve`."""

    host: str = "127.0.0.1"
    port: int = 8787
    write_keys: dict[str, str] = field(default_factory=dict)  # write key -> source name (Segment Basic auth)
    admin_tokens: list[str] = field(default_factory=list)     # Bearer tokens for /admin
    admin_users: dict[str, str] = field(default_factory=dict)  # web pages: name -> scrypt hash (`micromoments users add NAME`)
    # Reverse proxies (addresses or networks, e.g. "10.0.0.0/8") whose X-Forwarded-For/-Proto/-Host
    # the web pages believe; from any other peer those headers are ignored.
    trusted_proxies: list[str] = field(default_factory=list)
    rate_limit_per_second: float = 2000.0  # requests per write key; bursts up to 2 s worth
    max_batch_bytes: int = 500 * 1024      # per /v1/batch request (events: ingest.max_event_bytes)
    wal_dir: str = "micromoments-wal"      # write-ahead log segments not yet in the store
    fsync: bool = True                     # False only for throwaway dev servers
    # N: a 200 once the OS has the event (survives kill -9 of the process), fsync every N ms (a
    # power loss can lose ~N ms); 0: fsync before each 200 (survives power loss; tail latency = the disk's)
    fsync_interval_ms: float = 100.0
    group_commit_ms: float = 0.0           # extra wait to gather more events per fsync
    wal_preallocate: bool = False          # zero-fill the next WAL segments ahead (docs/deploy.md: when it pays)
    flush_interval_ms: int = 1000          # how often WAL segments move into the store
    dedupe_window: int = 1_000_000         # messageIds remembered in memory for idempotency
    bus: str = "inprocess"                 # or "redis://host:6379/0" (Redis Streams)
    # Scale-out (docs/deploy.md): "all" = one process; "collector" = validate, WAL, ship to the bus;
    # "worker" = also consume the bus: playbooks, live state in Redis, and (load_store) the store.
    role: str = "all"
    bus_stream: str = "micromoments:events"  # the Redis stream (logs go to "<bus_stream>:logs")
    worker_index: int = 0                  # this worker's person partition, 0 .. worker_count-1
    worker_count: int = 1                  # workers splitting people by a hash of anonymousId/userId
    load_store: bool = True                # worker: own the DuckDB store (exactly one worker may)
    state_ttl_hours: float = 720.0         # shared profile snapshots expire after this long unused
    # Other wire formats (docs/collect.md): PostHog project api_key -> source; GA4 Measurement
    # Protocol api_secret -> source.
    posthog_keys: dict[str, str] = field(default_factory=dict)
    ga4_api_secrets: dict[str, str] = field(default_factory=dict)
    # Browsers (docs/web.md): origins that may call the collector and /v1/decide ("*", exact
    # "https://shop.example", or "http://127.0.0.1:*" for any port); [] = no cross-origin calls.
    allowed_origins: list[str] = field(default_factory=list)
    decide_rate_limit_per_second: float = 10.0  # /v1/decide with a write key, per key and client address
    analytics_next_dir: str = ""           # a local copy of @segment/analytics-next's dist/umd, served at /js/analytics-next/
    demo_page: bool = False                # serve the demo shop page at /demo (`serve --dev` turns it on)


@dataclass
class ExperimentConfig:
    """One `[[experiments]]` entry: an A/B test (see measure/experiments.py)."""

    name: str = ""
    hypothesis: str = ""
    variants: list[str] = field(default_factory=lambda: ["control", "treatment"])
    weights: list[float] = field(default_factory=list)   # [] = equal split
    primary_metric: str = "conversion"                  # conversion / revenue / ctr / revenue_per_exposure ...
    guardrails: list[str] = field(default_factory=list)
    salt: str = ""                                      # "" = the name; change it to re-randomise
    mde: float = 0.05                                   # relative effect worth detecting (power, mSPRT prior)


@dataclass
class MonitoringConfig:
    """`[monitoring]`: the daily job of measure/monitoring.py."""

    baseline_days: int = 28          # trailing window for the seasonal (day-of-week) baseline
    alpha: float = 0.01              # per-day family-wise false-alert rate (Bonferroni over series)
    min_relative_change: float = 0.2  # ignore shifts smaller than this, however significant
    webhook_url: str = ""
    email_to: str = ""               # alerts by email through [activation] smtp_*


@dataclass
class PersonasConfig:
    n_clusters: int = 0              # 0 = choose automatically (silhouette x stability)
    min_sessions: int = 3            # centroids are fitted on people with this many sessions
    email_salt: str = ""             # required to import emails; they are stored as salted SHA-256
    store_raw_email: bool = False    # keep the raw email next to its hash (off: never stored)
    stores_path: str = ""            # CSV of stores (store_id, lat, lon) for distance-to-store
    urban_km: float = 8.0
    suburban_km: float = 25.0
    model_path: str = ""             # default: <store file>.personas.joblib
    recluster_days: int = 7          # `personas update` re-clusters when the model is older
    clv_horizon_days: float = 365.0
    clv_discount_rate: float = 0.01  # per 30 days



@dataclass
class PredictConfig:
    """`[predict]`: next-moment and propensity models (predict/)."""

    model_path: str = "predict_model"  # folder with manifest.json, model.joblib, trees.npz
    next_hours: float = 24.0          # next-moment horizon
    buy_days: float = 7.0             # the "buy within N days" propensity
    test_fraction: float = 0.25       # time-based split: the last quarter of time is the test
    val_fraction: float = 0.2         # the end of the rest calibrates
    max_iter: int = 300
    max_train_rows: int = 1_000_000
    threads: int = 1

@dataclass
class Config:
    store: StoreConfig = field(default_factory=StoreConfig)
    spark: SparkConfig = field(default_factory=SparkConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    journey: JourneyConfig = field(default_factory=JourneyConfig)
    intent: IntentConfig = field(default_factory=IntentConfig)
    activation: ActivationConfig = field(default_factory=ActivationConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    experiments: list[ExperimentConfig] = field(default_factory=list)
    monitoring: MonitoringConfig = field(default_factory=MonitoringConfig)
    personas: PersonasConfig = field(default_factory=PersonasConfig)
    predict: PredictConfig = field(default_factory=PredictConfig)
    source_path: str | None = None


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    known = {f.name: f for f in fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known:
            raise ConfigError(
                f"unknown key '{key}'",
                where=where,
                hint=f"known keys: {', '.join(sorted(known))}",
            )
        f = known[key]
        default = f.default_factory() if callable(f.default_factory) else f.default  # type: ignore[misc]
        if is_dataclass(default) and isinstance(value, dict):
            kwargs[key] = _build(type(default), value, f"{where}.{key}")
        elif key == "experiments" and cls is Config:
            if not isinstance(value, list):
                raise ConfigError("'experiments' must be an array of tables", where=where,
                                  hint="write each one as [[experiments]] with a name")
            kwargs[key] = [_build(ExperimentConfig, item, f"{where}.experiments[{i}]") for i, item in enumerate(value)]
        elif key == "custom_moments":
            kwargs[key] = [
                _build(CustomMoment, item, f"{where}.custom_moments[{i}]") for i, item in enumerate(value)
            ]
        else:
            if default is not None and default is not MISSING and not isinstance(value, type(default)) and not (
                isinstance(default, float) and isinstance(value, int)
            ):
                raise ConfigError(
                    f"'{key}' must be {type(default).__name__}, got {type(value).__name__} {value!r}",
                    where=where,
                )
            kwargs[key] = value
    return cls(**kwargs)


def load_config(path: str | Path | None = None) -> Config:
    """Read `micromoments.toml` (or `path`); a missing default file means all defaults.

    >>> load_config(None).ingest.chunk_lines
    250000
    """
    if path is None:
        candidate = Path(DEFAULT_CONFIG_NAME)
        if not candidate.exists():
            return _with_override(Config())
        path = candidate
    path = Path(path)
    if not path.exists():
        raise ConfigError("config file not found", where=str(path), hint="create it or drop --config")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", where=str(path)) from exc
    cfg = _build(Config, data, str(path))
    cfg.ingest.min_time()  # a bad date fails here, naming the key, not at the first event
    cfg.source_path = str(path)
    return _with_override(cfg)


def set_engine_override(engine: str | None) -> None:
    """The CLI's `--engine`: every `load_config` after this uses `engine` (None: the config's own)."""
    if engine is not None and engine not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r}", where="--engine", hint='use "duckdb" or "spark"')
    _ENGINE_OVERRIDE[0] = engine


def _with_override(cfg: Config) -> Config:
    if _ENGINE_OVERRIDE[0] is not None:
        cfg.store.engine = _ENGINE_OVERRIDE[0]
    return cfg
