"""Every playbook shipped with the package says what it does (the playbooks page shows it)."""

from __future__ import annotations

from micromoments.activation.engine import examples_dir
from micromoments.activation.playbooks import load_playbooks


def test_every_shipped_playbook_has_a_description() -> None:
    playbooks = load_playbooks(examples_dir() / "playbooks")
    assert len(playbooks) >= 4
    missing = [p.name for p in playbooks if len(str(p.description or "").strip()) < 20]
    assert missing == [], f"shipped playbooks without a description: {missing}"
