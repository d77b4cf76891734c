"""The `micromoments` command line. One module per capability registers its commands on `app`.

Heavy imports happen inside the commands, so `micromoments --help` stays instant.
"""

from __future__ import annotations

from micromoments.cli._app import app

# Importing a module registers its commands on `app`.
from micromoments.cli import ingest as _ingest  # noqa: E402,F401

for _name in ("demo", "demo_data", "intent", "journey", "playbooks", "serve", "personas", "predict", "measure", "users",
              "seo", "lake"):
    try:
        __import__(f"micromoments.cli.{_name}")
    except ModuleNotFoundError as _exc:  # a capability not built yet
        if _exc.name != f"micromoments.cli.{_name}":
            raise

__all__ = ["app"]
