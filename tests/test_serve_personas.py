"""`micromoments serve` hands the batch personas to the live profiles at start-up."""

from __future__ import annotations

from pathlib import Path

import duckdb

from micromoments.activation.engine import Activator
from micromoments.cli.serve import preload_personas
from micromoments.config import Config


def test_personas_from_the_store_reach_live_profiles(tmp_path: Path) -> None:
    db = tmp_path / "m.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE personas (person_id VARCHAR, persona VARCHAR)")
    con.execute("INSERT INTO personas VALUES ('u1', 'Weekend DIY doers'), ('u2', 'Trade buyers'), ('u3', NULL)")
    con.close()
    activator = Activator(Config())
    try:
        assert preload_personas(activator, db) == 2
        assert activator.state("u1").persona == "Weekend DIY doers"
        assert activator.state("u2").persona == "Trade buyers"
        assert activator.state("u3").persona is None
    finally:
        activator.close()


def test_no_store_or_no_personas_table_is_not_an_error(tmp_path: Path) -> None:
    activator = Activator(Config())
    try:
        assert preload_personas(activator, tmp_path / "absent.duckdb") == 0
        duckdb.connect(str(tmp_path / "empty.duckdb")).close()
        assert preload_personas(activator, tmp_path / "empty.duckdb") == 0
        assert preload_personas(None, tmp_path / "empty.duckdb") == 0
    finally:
        activator.close()
