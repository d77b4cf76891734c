"""Live scoring: the next micro-moment and the chance to buy, for a person's history, in memory.

The contract the activation service uses (see docs/predict.md):

    scorer = LiveScorer("predict_model")
    scorer.score(history)            # history: canonical events of one person, oldest first
    # -> {"next_moment": {"know": 0.31, "go": 0.12, "do": 0.40, "buy": 0.77},
    #     "p_buy_session": 0.08, "p_buy_7d": 0.35}
    scorer.update(person_id, event)  # the same, incrementally: O(1) per event (keeps the state)

Each event is a dict with the `events` table's columns (`activation.live_events.canonical_event`).
Its `moment` is read from `event["moment"]` when the key is present (the activator sets it from the
intent engine); otherwise the intent engine's `moment_for_event` is called. The features are the
batch path's (`features.SeqState`), and the trees are walked from `trees.npz`, so a score here equals
`micromoments predict score` for the same history.

>>> # see tests/test_predict_live.py
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from micromoments.predict.artifact import load_model
from micromoments.predict.features import PersonState


class LiveScorer:
    """Scores histories with a saved model; keeps per-person state for `update` (LRU-bounded)."""

    def __init__(self, model_path: str | Path, *, config: Any = None,
                 moment_fn: Callable[[Mapping[str, Any]], Any] | None = None, max_people: int = 100_000):
        model = load_model(model_path, need_predictor=False)
        self.path = model.path
        self.manifest = model.manifest
        self.spec = model.spec
        self.trees = model.trees
        self._config = config
        self._moment_fn = moment_fn
        self._people: OrderedDict[str, PersonState] = OrderedDict()
        self.max_people = max_people
        self._moments = [(m, f"next_{m}") for m in self.spec.moments]

    # ---- the intent engine, only for events that arrive without a moment ----------------------
    def _detect(self, event: Mapping[str, Any]) -> Any:
        if self._moment_fn is None:
            from micromoments.intent.live import moment_for_event

            cfg = self._config
            self._moment_fn = lambda e: getattr(moment_for_event(e, config=cfg), "moment", None)
        return self._moment_fn(event)

    def new_state(self) -> PersonState:
        return PersonState(self.spec, moment_fn=self._detect)

    # ---- scoring --------------------------------------------------------------------------------
    def score_features(self, x: np.ndarray) -> dict[str, Any]:
        """The contract's dict for one feature row."""
        p = self.trees.predict_row(x)
        return {"next_moment": {m: p[t] for m, t in self._moments},
                "p_buy_session": p["buy_session"], "p_buy_7d": p["buy_7d"]}

    def score(self, history: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Scores as of the last event of `history` (events of one person, oldest first).

        An empty history scores a person never seen (every count zero).
        """
        state = self.new_state()
        state.extend(history)
        return self.score_features(state.features()[0])

    def update(self, person_id: str, event: Mapping[str, Any]) -> dict[str, Any]:
        """Fold one new event into the person's state and score: the per-event live path."""
        state = self._people.pop(person_id, None) or self.new_state()
        state.add(event)
        self._people[person_id] = state
        if len(self._people) > self.max_people:
            self._people.popitem(last=False)  # least recently active
        return self.score_features(state.features()[0])

    def current(self, person_id: str) -> dict[str, Any] | None:
        """The last scores of a person seen through `update`, or None."""
        state = self._people.get(person_id)
        return None if state is None else self.score_features(state.features()[0])

    def forget(self, person_id: str) -> None:
        self._people.pop(person_id, None)

    def __len__(self) -> int:
        return len(self._people)
