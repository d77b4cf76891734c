"""Anticipate: predict the next micro-moment and the chance to convert, live and in batch.

- `features`: sequence features per person at a cutoff, one definition for batch and live.
- `labels`, `split`: what happens after each cutoff, and a time-based train/validation/test split.
- `models`: calibrated gradient boosting per target (`Predictor`), baselines, metrics.
- `artifact`: save/load a model with its feature definitions and version.
- `live`: `LiveScorer(model_path).score(history)` and the incremental `update(person_id, event)`.
- `batch`: everyone's scores from the store.
- `rees46`: the REES46 e-commerce clickstream shape (reader preset and a generator for tests).
"""

from __future__ import annotations

__all__ = ["FeatureSpec", "LiveScorer"]


def __getattr__(name: str):  # lazy: `import micromoments.predict` stays cheap
    if name == "FeatureSpec":
        from micromoments.predict.features import FeatureSpec

        return FeatureSpec
    if name == "LiveScorer":
        from micromoments.predict.live import LiveScorer

        return LiveScorer
    raise AttributeError(name)
