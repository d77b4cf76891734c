"""Search exports into the lake: `micromoments --engine spark seo --input FILES --db LAKE`.
(In seo/, not store/: it runs the seo classifier, a tier above the store.)

The exports are parsed, checked and classified in a scratch DuckDB by the very functions the DuckDB
store uses (`load_search_files`, `classify_search`). The scratch is seeded with the lake's
`search_rows` and its `search_moments` cache, so a file loaded again replaces its rows (keyed by the
file's hash) and a query is classified once per model version, as on DuckDB. Then `search_rows`,
`search_moments` and `search_query_moments` are written back whole (search tables are small next to
events; Parquet has no DELETE) and the files' quarantine rows replace their earlier ones.

>>> # loaded, stats = load_search_to_lake(store, ["Performance-on-Search.zip"], config=cfg)
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from micromoments.config import Config
from micromoments.store.lake_ingest import _to_arrow, _upload
from micromoments.store.rows import replace_rows
from micromoments.store.search_load import SearchLoad

SEARCH_TABLES = ("search_rows", "search_moments", "search_query_moments")


def load_search_to_lake(store: Any, paths: Sequence[str | Path], *, fmt: str = "auto",
                        config: Config | None = None) -> tuple[SearchLoad, dict[str, Any]]:
    """Load `paths` into the lake of `store` (a `LakeStore`) and classify its queries; returns what
    `load_search_files` and `classify_search` return (see the module docstring)."""
    import duckdb

    from micromoments.seo.classify import classify_search
    from micromoments.store.search_load import ensure_search_tables, load_search_files

    with tempfile.TemporaryDirectory(prefix="mm-lake-search-") as tmp:
        scratch = duckdb.connect(os.path.join(tmp, "scratch.duckdb"))
        try:
            ensure_search_tables(scratch)
            for name in ("search_rows", "search_moments"):
                if name in store._present:
                    scratch.register("_lake_rows", _to_arrow(store.view(name)))
                    if name == "search_moments":
                        scratch.execute("CREATE TABLE search_moments AS SELECT * FROM _lake_rows")
                    else:
                        scratch.execute("INSERT INTO search_rows SELECT * FROM _lake_rows")
                    scratch.unregister("_lake_rows")
            loaded = load_search_files(scratch, paths, fmt=fmt)
            stats = classify_search(scratch, config)
            staged = {}
            for name in SEARCH_TABLES:
                staged[name] = os.path.join(tmp, f"{name}.parquet")
                scratch.execute(f"COPY {name} TO '{staged[name]}' (FORMAT PARQUET)")
            bad = scratch.execute("SELECT * FROM quarantine").fetch_df()
        finally:
            scratch.close()
        for name in SEARCH_TABLES:
            # From the scratch file, never from the lake folder it overwrites.
            frame = _upload(store, staged[name])
            frame.write.mode("overwrite").parquet(store.url(name))
            store._present.add(name)
            store.refresh(name)
        sources = [t.source for t in loaded.tables]
        if sources and (len(bad) or "quarantine" in store._present):
            replace_rows(store, "quarantine", bad, "source", keys=sources)
    return loaded, stats


def has_lake_search_data(store: Any) -> bool:
    """Whether the lake holds search rows."""
    return "search_rows" in store._present and store.count("search_rows") > 0

