"""Rebuild the intent engine's shipped model files, reproducibly (fixed seeds).

    python scripts/train_intent.py                       # head only (uses the shipped static table)
    python scripts/train_intent.py --rebuild-static      # also re-distil the static token table (~30 s)
    python scripts/train_intent.py --demo-truth out/truth_moments.csv   # use this demo truth file
    python scripts/train_intent.py --no-demo             # CLINC150 + hand-written queries only

By default the demo generator is run (seeded: 2,000 users x 60 days, seed 7) and 300 rows per
class of its `train` split are added; its `test` split is never used for training.

Writes `src/micromoments/intent/data/head.npz` (and `minilm_static.npz` with --rebuild-static),
then prints macro-F1 on the hand-written dev set, which is never trained on.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from micromoments.intent.embed import STATIC_TABLE_PATH, distill_static_table
from micromoments.intent.evaluate import evaluate_labels, format_report
from micromoments.intent.model import HEAD_PATH, IntentHead
from micromoments.intent.training import build_training_set

ROOT = Path(__file__).resolve().parents[1]
DEV_PATH = ROOT / "tests" / "fixtures" / "intent" / "dev.csv"
CLINC_PATH = ROOT.parent / "shared" / "datasets" / "clinc150" / "data_full.json"


def read_demo_train(path: Path) -> list[tuple[str, str]]:
    """(query, class) rows of the demo ground truth's `train` split only (never `test`)."""
    rows = []
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row.get("split") != "train" or not row.get("query"):
                continue
            label = row["moment"]
            if label == "go":
                label = "go_site" if row.get("go_type") == "site" else "go_local"
            if label in {"know", "go_local", "go_site", "do", "buy"}:
                rows.append((row["query"], label))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clinc", type=Path, default=CLINC_PATH, help="CLINC150 data_full.json")
    ap.add_argument("--demo-truth", type=Path, default=None, help="demo truth_moments.csv (train split used)")
    ap.add_argument("--demo-per-class", type=int, default=300, help="at most this many demo rows per class")
    ap.add_argument("--no-demo", action="store_true", help="do not use the demo generator's train split")
    ap.add_argument("--embedder", default="minilm-static")
    ap.add_argument("--rebuild-static", action="store_true")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--out", type=Path, default=HEAD_PATH)
    args = ap.parse_args()

    if args.rebuild_static:
        table = distill_static_table()
        np.savez_compressed(STATIC_TABLE_PATH, table=table.astype(np.float16))
        print(f"wrote {STATIC_TABLE_PATH} {table.shape}")

    with DEV_PATH.open(newline="", encoding="utf-8") as fh:
        dev = list(csv.DictReader(fh))
    extra: list[tuple[str, str]] = []
    if not args.demo_truth and not args.no_demo:
        import tempfile

        from micromoments.demo.generator import generate

        paths = generate(tempfile.mkdtemp(prefix="mm-demo-"), users=2000, days=60, seed=7)
        args.demo_truth = paths.truth_moments
    if args.demo_truth:
        rng = np.random.default_rng(args.seed)
        demo = sorted(set(read_demo_train(args.demo_truth)))
        by_label: dict[str, list[tuple[str, str]]] = {}
        for row in demo:
            by_label.setdefault(row[1], []).append(row)
        for label in sorted(by_label):
            rows = by_label[label]
            keep = rng.permutation(len(rows))[: args.demo_per_class]
            extra += [rows[i] for i in sorted(keep)]
        print(f"demo train rows used: {len(extra)} of {len(demo)} distinct")
    rows = build_training_set(
        args.clinc if args.clinc.exists() else None, seed=args.seed, extra=extra,
        exclude=[r["query"] for r in dev],
    )
    texts, labels = zip(*rows)
    head = IntentHead.fit(list(texts), list(labels), embedder_name=args.embedder, seed=args.seed, C=4.0)
    counts = {c: labels.count(c) for c in head.classes}
    head.meta = {"n_train": str(len(texts)), "counts": str(counts), "seed": str(args.seed),
                 "demo": str(bool(args.demo_truth))}
    head.save(args.out)
    print(f"wrote {args.out}: {len(texts)} examples {counts}, temperature {head.temperature:.3f}, "
          f"version {head.version}")

    from micromoments.intent.classifier import Classifier

    preds = Classifier(head=head).predict([r["query"] for r in dev], explain=False)
    print("dev set (hand-written, never trained on):")
    print(format_report(evaluate_labels([r["label"] for r in dev], [p.moment for p in preds])))


if __name__ == "__main__":
    main()
