"""`micromoments.toml`: one readable file, every key with a working default.

>>> cfg = load_config(None)
>>> cfg.store.path
'micromoments.duckdb'
>>> cfg.journey.session_gap_minutes
30
"""

from __future__ import annotations

import tomllib
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from micromoments.errors import ConfigError

DEFAULT_CONFIG_NAME = "micromoments.toml"


@dataclass
class StoreConfig:
    path: str = "micromoments.duckdb"
    backend: str = "duckdb"  # or "pyspark"


@dataclass
class IngestConfig:
    chunk_lines: int = 250_000
    # Events stamped further than this into the future are quarantined.
    max_future_skew_hours: float = 24.0
    max_event_bytes: int = 32 * 1024
    # DuckDB's memory cap while ingesting: it spills instead of growing, so memory stays
    # flat on files far bigger than RAM (and the cap made ingest no slower in our runs).
    memory_limit: str = "1GB"


@dataclass
class JourneyConfig:
    session_gap_minutes: int = 30
    episode_gap_minutes: int = 10
    stage_rules: list[dict[str, Any]] = field(default_factory=list)  # [] = journey.stages.DEFAULT_STAGE_RULES


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
class Config:
    store: StoreConfig = field(default_factory=StoreConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    journey: JourneyConfig = field(default_factory=JourneyConfig)
    intent: IntentConfig = field(default_factory=IntentConfig)
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
            return Config()
        path = candidate
    path = Path(path)
    if not path.exists():
        raise ConfigError("config file not found", where=str(path), hint="create it or drop --config")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", where=str(path)) from exc
    cfg = _build(Config, data, str(path))
    cfg.source_path = str(path)
    return cfg
