"""Scoring predicted moments against labels: accuracy, per-class P/R/F1, macro-F1 with a bootstrap CI.

>>> r = evaluate_labels(["know", "go", "do", "buy"], ["know", "go", "do", "know"])
>>> round(r.accuracy, 2), r.labels
(0.75, ('know', 'go', 'do', 'buy'))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

BASE_MOMENTS = ("know", "go", "do", "buy")


@dataclass
class Evaluation:
    labels: tuple[str, ...]
    n: int
    accuracy: float
    precision: dict[str, float]
    recall: dict[str, float]
    f1: dict[str, float]
    support: dict[str, int]
    macro_f1: float
    macro_f1_ci: tuple[float, float]
    confusion: np.ndarray  # rows: true label, columns: predicted label (labels + any extra predictions)
    confusion_columns: tuple[str, ...]

    def as_dict(self) -> dict[str, object]:
        return {
            "n": self.n, "accuracy": self.accuracy, "macro_f1": self.macro_f1,
            "macro_f1_ci": list(self.macro_f1_ci), "precision": self.precision,
            "recall": self.recall, "f1": self.f1, "support": self.support,
            "confusion": {"rows": list(self.labels), "columns": list(self.confusion_columns),
                          "counts": self.confusion.tolist()},
        }


def _macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_labels: int) -> float:
    f1s = []
    for k in range(n_labels):
        tp = np.sum((y_true == k) & (y_pred == k))
        fp = np.sum((y_true != k) & (y_pred == k))
        fn = np.sum((y_true == k) & (y_pred != k))
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return float(np.mean(f1s))


def evaluate_labels(
    y_true: Sequence[str],
    y_pred: Sequence[str],
    *,
    labels: Sequence[str] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> Evaluation:
    """Compare label sequences. Macro-F1 is over `labels` (default: know/go/do/buy plus any
    other true label); a prediction outside them (e.g. `other`) counts as a miss."""
    if len(y_true) != len(y_pred):
        raise ValueError("y_true and y_pred differ in length")
    true = [str(t) for t in y_true]
    pred = [str(p) for p in y_pred]
    if labels is None:
        extra = sorted(set(true) - set(BASE_MOMENTS))
        labels = [m for m in BASE_MOMENTS if m in set(true) | set(pred)] + extra
    labels = tuple(labels)
    columns = labels + tuple(sorted(set(pred) - set(labels)))
    index = {lab: i for i, lab in enumerate(columns)}
    # A true label outside `labels` (e.g. one `other` in a four-moment report) has no row: it is skipped.
    yt = np.array([index.get(t, -1) if t in labels else -1 for t in true])
    yp = np.array([index[p] for p in pred])
    confusion = np.zeros((len(labels), len(columns)), dtype=np.int64)
    for t, p in zip(yt, yp):
        if t >= 0:
            confusion[t, p] += 1
    precision, recall, f1, support = {}, {}, {}, {}
    for k, lab in enumerate(labels):
        tp = confusion[k, k]
        col = confusion[:, k].sum()
        row = confusion[k].sum()
        precision[lab] = float(tp / col) if col else 0.0
        recall[lab] = float(tp / row) if row else 0.0
        pr = precision[lab] + recall[lab]
        f1[lab] = 2 * precision[lab] * recall[lab] / pr if pr else 0.0
        support[lab] = int(row)
    rng = np.random.default_rng(seed)
    n = len(yt)
    boots = [_macro_f1(yt[s], yp[s], len(labels)) for s in (rng.integers(0, n, n) for _ in range(n_boot))] if n else [0.0]
    return Evaluation(
        labels=labels, n=n, accuracy=float(np.mean(yt == yp)) if n else 0.0,
        precision=precision, recall=recall, f1=f1, support=support,
        macro_f1=float(np.mean(list(f1.values()))) if f1 else 0.0,
        macro_f1_ci=(float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))),
        confusion=confusion, confusion_columns=columns,
    )


def format_report(ev: Evaluation) -> str:
    """A plain-text report (the CLI renders the same numbers as Rich tables).

    >>> print(format_report(evaluate_labels(["go"], ["go"], n_boot=10)).splitlines()[0])
    n=1 accuracy=1.000 macro-F1=1.000 (95% CI 1.000-1.000)
    """
    lines = [
        f"n={ev.n} accuracy={ev.accuracy:.3f} macro-F1={ev.macro_f1:.3f} "
        f"(95% CI {ev.macro_f1_ci[0]:.3f}-{ev.macro_f1_ci[1]:.3f})",
        "class      precision recall    f1  support",
    ]
    for lab in ev.labels:
        lines.append(f"{lab:<10} {ev.precision[lab]:9.3f} {ev.recall[lab]:6.3f} {ev.f1[lab]:5.3f} {ev.support[lab]:8d}")
    lines.append("confusion (rows true, columns predicted): " + " ".join(ev.confusion_columns))
    for lab, row in zip(ev.labels, ev.confusion):
        lines.append(f"{lab:<10} " + " ".join(f"{c:5d}" for c in row))
    return "\n".join(lines)
