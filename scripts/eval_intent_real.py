"""Score the shipped intent head on the frozen real-query evaluation set, against a TF-IDF + LR baseline.

    python scripts/eval_intent_real.py [--split test|dev] [--no-baseline]

In one run: the agreement of the two labelling passes (Cohen's kappa), the shipped head's macro-F1
with a 95% bootstrap interval and per-class precision/recall/F1 on the chosen split (query alone,
and with the landing URL where the source has one), its calibration (10-bin ECE), the same for
a TF-IDF (word 1-2 + char 3-5 grams) + logistic-regression baseline trained here on the same
training set, and the per-language results. The test split is for reporting only: choices are
made on dev.
"""

from __future__ import annotations

import argparse
import csv
from collections import Counter
from pathlib import Path

import numpy as np

from micromoments.intent.evaluate import Evaluation, evaluate_labels
from micromoments.predict.evaluate import ece as calibration_error

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / "tests" / "fixtures" / "intent" / "real"
CLINC = next((p / "shared" / "datasets" / "clinc150" / "data_full.json" for p in (ROOT.parent, ROOT.parent.parent)
              if (p / "shared" / "datasets" / "clinc150" / "data_full.json").exists()),
             ROOT.parent / "shared" / "datasets" / "clinc150" / "data_full.json")
MOMENTS = ["know", "go", "do", "buy"]


def moment(label: str) -> str:
    return "go" if label.startswith("go") else label


def read_tsv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def cohen_kappa(a: list[str], b: list[str]) -> float:
    """Cohen's kappa of two label sequences.

    >>> round(cohen_kappa(["x", "y", "x", "x"], ["x", "y", "y", "x"]), 3)
    0.5
    """
    n = len(a)
    po = sum(x == y for x, y in zip(a, b)) / n
    ca, cb = Counter(a), Counter(b)
    pe = sum(ca[k] * cb[k] for k in set(ca) | set(cb)) / n / n
    return (po - pe) / (1 - pe)


def ece(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error over equal-width confidence bins (`predict.evaluate.ece`), 4 decimals.

    >>> ece(np.array([0.9, 0.9, 0.6, 0.6]), np.array([1, 1, 1, 0]))
    0.1
    """
    return round(calibration_error(correct, confidence, bins), 4)


def table(name: str, ev: Evaluation, extra: str = "") -> str:
    lines = [f"**{name}**: n={ev.n}, accuracy {ev.accuracy:.3f}, **macro-F1 {ev.macro_f1:.3f}** "
             f"(95% CI {ev.macro_f1_ci[0]:.3f}-{ev.macro_f1_ci[1]:.3f}){extra}", "",
             "| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for lab in ev.labels:
        lines.append(f"| {lab} | {ev.precision[lab]:.3f} | {ev.recall[lab]:.3f} | {ev.f1[lab]:.3f} | {ev.support[lab]} |")
    return "\n".join(lines) + "\n"


def baseline_predict(train: list[tuple[str, str]], texts: list[str]) -> tuple[list[str], np.ndarray]:
    """TF-IDF + LR on the same training rows and class weights as the head; (moments, confidences)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    from micromoments.intent.training import class_weights

    x, y = zip(*train)
    model = make_pipeline(
        make_union(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                   TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, min_df=2)),
        LogisticRegression(C=4.0, max_iter=2000, class_weight=class_weights(list(y))),
    )
    model.fit(list(x), list(y))
    proba = model.predict_proba(texts)
    classes = list(model.classes_)
    # Sum go_local + go_site as the head does, then take the best moment.
    scores = {m: np.zeros(len(texts)) for m in MOMENTS + ["other"]}
    for k, c in enumerate(classes):
        scores[moment(c)] += proba[:, k]
    stacked = np.stack([scores[m] for m in MOMENTS + ["other"]], axis=1)
    best = stacked.argmax(axis=1)
    return [(MOMENTS + ["other"])[k] for k in best], stacked.max(axis=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", default="test", choices=["test", "dev"])
    ap.add_argument("--no-baseline", action="store_true")
    args = ap.parse_args()

    from micromoments.intent.classifier import Classifier
    from micromoments.intent.training import build_training_set

    rows = read_tsv(REAL / "eval.tsv")
    a = {r["id"]: r["label"] for r in read_tsv(REAL / "pass_a.tsv")}
    b = {r["id"]: r["label"] for r in read_tsv(REAL / "pass_b.tsv")}
    ids = sorted(a)
    print(f"Labelling agreement on all {len(ids)} queries: Cohen's kappa "
          f"{cohen_kappa([moment(a[i]) for i in ids], [moment(b[i]) for i in ids]):.3f} (four moments), "
          f"{cohen_kappa([a[i] for i in ids], [b[i] for i in ids]):.3f} (go split into local/site); "
          f"{sum(a[i] != b[i] for i in ids)} disagreements resolved by the guideline.\n")

    split = [r for r in rows if r["split"] == args.split]
    truth = [moment(r["label"]) for r in split]
    print(f"Split `{args.split}`: {len(split)} queries, {dict(Counter(truth))}\n")
    clf = Classifier()
    res = clf.predict([r["query"] for r in split], explain=False)
    pred = [p.moment for p in res]
    conf = np.array([p.confidence for p in res])
    ok = np.array([p == t for p, t in zip(pred, truth)], dtype=float)
    ev = evaluate_labels(truth, pred, labels=MOMENTS)
    go_ok = [p.go_type == r["label"][3:] for p, r in zip(res, split) if r["label"].startswith("go") and p.moment == "go"]
    print(table("micromoments, query alone", ev,
                f"; ECE {ece(conf, ok)}; go type right on {np.mean(go_ok):.1%} of correct go" if go_ok else ""))
    with_url = [i for i, r in enumerate(split) if r["url"] or r["title"]]
    if with_url:
        ctx = clf.predict([split[i]["query"] for i in with_url], [split[i]["url"] for i in with_url],
                          [split[i]["title"] for i in with_url], explain=False)
        print(table("micromoments, query + landing URL/title", evaluate_labels(
            [truth[i] for i in with_url], [p.moment for p in ctx], labels=MOMENTS)))
    else:
        print("With landing URL: not measurable here, no query in this split has a URL or title "
              "(MIMICS and MIRACL ship none).\n")
    for lang in ("en", "de", "fr", "es"):
        sel = [i for i, r in enumerate(split) if r["lang"] == lang]
        if sel:
            acc = np.mean([ok[i] for i in sel])
            got = Counter(pred[i] for i in sel)
            print(f"- {lang}: {len(sel)} queries, accuracy {acc:.3f}, predicted {dict(got)}")
    print()
    if not args.no_baseline:
        held = [r["query"] for r in rows]
        train = build_training_set(CLINC if CLINC.exists() else None, exclude=held)
        bpred, bconf = baseline_predict(train, [r["query"] for r in split])
        bok = np.array([p == t for p, t in zip(bpred, truth)], dtype=float)
        print(table("TF-IDF + LR baseline (same training rows, trained in this run)",
                    evaluate_labels(truth, bpred, labels=MOMENTS), f"; ECE {ece(bconf, bok)}"))


if __name__ == "__main__":
    main()
