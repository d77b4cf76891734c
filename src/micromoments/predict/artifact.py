"""A trained model on disk: a folder with `manifest.json`, `model.joblib` and `trees.npz`.

* `manifest.json`: versions (artifact format, feature definitions, micromoments, scikit-learn),
  the feature spec and names, the training settings, the split and the test metrics;
* `model.joblib`: the `Predictor` (scikit-learn estimators), for batch scoring;
* `trees.npz`: the same trees and calibrators as plain arrays, for the live path. It needs
  neither pickle nor scikit-learn, so the live scorer survives a scikit-learn upgrade.

Loading checks the versions: format 1 (no `trees.npz`) is migrated on load; a newer format or
other feature definitions fail with a `ModelVersionError` naming both versions and the fix.

>>> # see tests/test_predict_artifact.py
"""

from __future__ import annotations

import datetime as dt
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from micromoments.errors import InputError
from micromoments.predict.features import FEATURES_VERSION, FeatureSpec
from micromoments.predict.trees import CompiledTrees

FORMAT = 2              # 2: trees.npz added; 1: manifest + model.joblib only
OLDEST_FORMAT = 1
MANIFEST, MODEL, TREES = "manifest.json", "model.joblib", "trees.npz"


class ModelVersionError(InputError):
    """A saved model this version of micromoments cannot use."""


@dataclass
class LoadedModel:
    path: Path
    manifest: dict[str, Any]
    spec: FeatureSpec
    trees: CompiledTrees
    predictor: Any = None          # models.Predictor, when loaded with sklearn


def _versions() -> dict[str, Any]:
    import sklearn

    from micromoments import __version__

    return {"format": FORMAT, "features_version": FEATURES_VERSION, "micromoments": __version__,
            "scikit_learn": sklearn.__version__}


def compile_predictor(predictor: Any) -> CompiledTrees:
    return CompiledTrees.from_models({n: (t.hgb, t.calibrator) for n, t in predictor.targets.items()},
                                     priors={n: t.prior for n, t in predictor.targets.items()})


def save_model(predictor: Any, path: str | Path, *, metrics: dict[str, Any] | None = None) -> Path:
    """Write the model folder (created if needed) and return its path."""
    import joblib

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    spec = predictor.spec
    manifest = {
        **_versions(),
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "spec": spec.to_dict(),
        "feature_names": spec.feature_names,
        "targets": {n: {"horizon_s": t.horizon_s, "prior": t.prior, "n_train": t.n_train, "n_iter": t.n_iter}
                    for n, t in predictor.targets.items()},
        "settings": predictor.settings.to_dict(),
        "split": predictor.split.to_dict(),
        "metrics": metrics or predictor.metrics or {},
    }
    joblib.dump(predictor, path / MODEL, compress=3)
    compile_predictor(predictor).to_npz(path / TREES)
    (path / MANIFEST).write_text(json.dumps(manifest, indent=2, default=float), encoding="utf-8")
    return path


def read_manifest(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if path.is_file() and path.name == MANIFEST:
        path = path.parent
    file = path / MANIFEST
    if not file.exists():
        raise InputError("not a micromoments model (no manifest.json)", where=str(path),
                         hint="train one with `micromoments predict train --model DIR`")
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"manifest.json is not valid JSON: {exc}", where=str(file)) from exc


def check_versions(manifest: dict[str, Any], where: str) -> FeatureSpec:
    """The model's feature spec, or a `ModelVersionError` naming the versions and the fix."""
    saved_by = manifest.get("micromoments", "unknown")
    fmt = manifest.get("format")
    if not isinstance(fmt, int) or fmt > FORMAT:
        raise ModelVersionError(
            f"model format {fmt} (saved by micromoments {saved_by}) is newer than this micromoments "
            f"{_versions()['micromoments']} reads (format {FORMAT})", where=where,
            hint="upgrade micromoments, or retrain with `micromoments predict train`")
    if fmt < OLDEST_FORMAT:
        raise ModelVersionError(
            f"model format {fmt} (saved by micromoments {saved_by}) is older than the oldest this micromoments "
            f"{_versions()['micromoments']} reads (format {OLDEST_FORMAT})", where=where,
            hint="retrain with `micromoments predict train`")
    fv = manifest.get("features_version")
    if fv != FEATURES_VERSION:
        raise ModelVersionError(
            f"model uses feature definitions v{fv} (saved by micromoments {saved_by}); this micromoments "
            f"{_versions()['micromoments']} computes v{FEATURES_VERSION}", where=where,
            hint="retrain with `micromoments predict train` so the features mean the same thing")
    spec = FeatureSpec.from_dict(manifest.get("spec", {}))
    if spec.feature_names != manifest.get("feature_names"):
        raise ModelVersionError(
            f"the model's {len(manifest.get('feature_names') or [])} feature names do not match the "
            f"{len(spec.feature_names)} this micromoments {_versions()['micromoments']} builds from its spec "
            f"(saved by micromoments {saved_by})", where=where,
            hint="retrain with `micromoments predict train`")
    return spec


def load_model(path: str | Path, *, need_predictor: bool = True) -> LoadedModel:
    """Load a model folder. `need_predictor=False` (the live path) skips the scikit-learn pickle."""
    path = Path(path)
    if path.is_file() and path.name == MANIFEST:
        path = path.parent
    manifest = read_manifest(path)
    spec = check_versions(manifest, str(path))
    predictor = None
    if need_predictor or not (path / TREES).exists():
        predictor = _load_predictor(path, manifest)
    if (path / TREES).exists():
        trees = CompiledTrees.from_npz(path / TREES)
    else:  # format 1: compile the trees now (and keep them for next time when we may write)
        trees = compile_predictor(predictor)
        try:
            trees.to_npz(path / TREES)
        except OSError:
            pass
    if predictor is not None:
        from micromoments.predict.models import Predictor

        if not isinstance(predictor, Predictor):
            raise ModelVersionError("model.joblib does not hold a micromoments Predictor", where=str(path / MODEL),
                                    hint="retrain with `micromoments predict train`")
    return LoadedModel(path, manifest, spec, trees, predictor)


def _load_predictor(path: Path, manifest: dict[str, Any]) -> Any:
    import joblib

    file = path / MODEL
    if not file.exists():
        raise InputError("model.joblib is missing", where=str(path), hint="retrain with `micromoments predict train`")
    saved_sk, here_sk = manifest.get("scikit_learn", "unknown"), _versions()["scikit_learn"]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # sklearn's InconsistentVersionWarning: we say it better below
            return joblib.load(file)
    except Exception as exc:  # unpickling across library versions fails in many ways
        raise ModelVersionError(
            f"cannot load model.joblib saved with scikit-learn {saved_sk} (this is {here_sk}): {exc}",
            where=str(file),
            hint=f"install scikit-learn=={saved_sk}, or retrain with `micromoments predict train`; the live "
                 "scorer (trees.npz) does not need scikit-learn") from exc
