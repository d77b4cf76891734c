"""Rebuild the intent engine's shipped model files, reproducibly (fixed seeds).

    python scripts/train_intent.py                       # head only (uses the shipped static table)
    python scripts/train_intent.py --rebuild-static      # also re-distil the static token table (~30 s)
    python scripts/train_intent.py --demo-truth out/truth_moments.csv   # use this demo truth file
    python scripts/train_intent.py --no-demo             # CLINC150 + hand-written queries only

Training data (all seeded; see docs/intent.md "Training data"):
- weak supervision over the real unlabelled query corpus `data/real_queries.tsv.gz` (MIMICS-Manual,
  NQ-open, MIRACL; rebuilt by scripts/build_intent_corpus.py, sources recorded by commit and hash):
  labelling functions + the label model of `intent/weak.py`;
- the hand-written list `data/web_queries.txt`, templates, brand names (`data/brands.txt`: npm
  simple-icons, CC0, and top-sites, MIT, recorded by tarball hash), CLINC150 (CC BY 3.0);
- the demo generator's `train` split (2,000 users x 60 days, seed 7), 300 rows per class, relabelled
  by the guideline where it differs (a price or "best X" without a purchase cue is know); its
  `test` split is never used.
Every text of the frozen real evaluation set (tests/fixtures/intent/real/eval.tsv) is excluded.
Classes are weighted towards the class balance of real traffic (`training.TRAFFIC_SHARE`).

Writes `src/micromoments/intent/data/head.npz` (and `minilm_static.npz` with --rebuild-static),
then prints macro-F1 on the real dev split (choices are made there; the test split is reported by
scripts/eval_intent_real.py and never tuned on).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from micromoments.intent.embed import STATIC_TABLE_PATH, distill_static_table
from micromoments.intent.evaluate import evaluate_labels, format_report
from micromoments.intent.model import HEAD_PATH, IntentHead
from micromoments.intent.cues import FAMILIES
from micromoments.intent.text import normalize_text
from micromoments.intent.training import TRAFFIC_SHARE, build_training_set

_PRICE = next(f.pattern for f in FAMILIES if f.name == "price")
_BUY = next(f.pattern for f in FAMILIES if f.name == "buy")

ROOT = Path(__file__).resolve().parents[1]
REAL_EVAL_PATH = ROOT / "tests" / "fixtures" / "intent" / "real" / "eval.tsv"
# ../shared next to the repository (a worktree under /work/wt/NAME finds it one level further up).
CLINC_PATH = next((p / "shared" / "datasets" / "clinc150" / "data_full.json" for p in (ROOT.parent, ROOT.parent.parent)
                   if (p / "shared" / "datasets" / "clinc150" / "data_full.json").exists()),
                  ROOT.parent / "shared" / "datasets" / "clinc150" / "data_full.json")


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
            if label == "buy" and _PRICE.search(row["query"].lower()) and not _BUY.search(row["query"].lower()):
                label = "know"  # the guideline: prices, "best X" and reviews without a purchase cue are research
            if label in {"know", "go_local", "go_site", "do", "buy"}:
                rows.append((row["query"], label))
    return rows


def tune_decision(head: IntentHead, dev: list[dict[str, str]]) -> IntentHead:
    """Per-class logit offsets (a small grid, best dev macro-F1) and the temperature refitted on dev."""
    import itertools

    from scipy.optimize import minimize_scalar

    from micromoments.intent.classifier import Classifier
    from micromoments.intent.model import softmax

    texts = [r["query"] for r in dev]
    truth = ["go" if r["label"].startswith("go") else r["label"] for r in dev]
    best: tuple[float, float, dict[str, float]] = (-1.0, 0.0, {})
    for gs, gl, do, buy in itertools.product([0, 1, 2, 3], [0, 0.5], [0, 1, 2], [-0.5, 0, 0.5]):
        offsets = {"go_site": gs, "go_local": gl, "do": do, "buy": buy}
        preds = Classifier(head=head.with_decision(offsets, head.temperature)).predict(texts, explain=False)
        ev = evaluate_labels(truth, [p.moment for p in preds], labels=["know", "go", "do", "buy"], n_boot=1)
        key = (round(ev.macro_f1, 4), ev.precision["buy"])
        if key > best[:2]:
            best = (key[0], key[1], offsets)
    tuned = head.with_decision(best[2], head.temperature)
    from micromoments.intent.model import features

    _, dense, hashed = features(tuned.embedder, [normalize_text(t) for t in texts])
    logits = tuned.raw_logits(dense, hashed)
    keep = [i for i, r in enumerate(dev) if r["label"] in tuned.classes]
    logits = logits[keep]
    y = np.array([tuned.classes.index(dev[i]["label"]) for i in keep])

    def nll(t: float) -> float:
        p = softmax(logits / t)
        return float(-np.log(np.maximum(p[np.arange(len(y)), y], 1e-12)).mean())

    temperature = float(minimize_scalar(nll, bounds=(0.05, 10.0), method="bounded").x)
    print(f"decision offsets {best[2]} (dev macro-F1 {best[0]:.3f}), temperature {head.temperature:.3f} -> {temperature:.3f}")
    return tuned.with_decision({}, temperature)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clinc", type=Path, default=CLINC_PATH, help="CLINC150 data_full.json")
    ap.add_argument("--demo-truth", type=Path, default=None, help="demo truth_moments.csv (train split used)")
    ap.add_argument("--demo-per-class", type=int, default=300, help="at most this many demo rows per class")
    ap.add_argument("--no-demo", action="store_true", help="do not use the demo generator's train split")
    ap.add_argument("--embedder", default="minilm-static")
    ap.add_argument("--rebuild-static", action="store_true")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--power", type=float, default=1.0, help="class weights (traffic share / training share) ** power")
    ap.add_argument("--no-weak", action="store_true", help="leave out the weakly labelled real queries")
    ap.add_argument("--out", type=Path, default=HEAD_PATH)
    args = ap.parse_args()

    if args.rebuild_static:
        table = distill_static_table()
        np.savez_compressed(STATIC_TABLE_PATH, table=table.astype(np.float16))
        print(f"wrote {STATIC_TABLE_PATH} {table.shape}")

    with REAL_EVAL_PATH.open(newline="", encoding="utf-8") as fh:
        real = list(csv.DictReader(fh, delimiter="\t"))
    real_dev = [r for r in real if r["split"] == "dev"]
    dev = [{"query": r["query"], "label": "go" if r["label"].startswith("go") else r["label"]} for r in real_dev]
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
        exclude=[r["query"] for r in real], weak=not args.no_weak,
    )
    texts, labels = zip(*rows)
    head = IntentHead.fit(list(texts), list(labels), embedder_name=args.embedder, seed=args.seed, C=4.0,
                          class_share=TRAFFIC_SHARE, power=args.power)
    counts = {c: labels.count(c) for c in head.classes}
    head.meta = {"n_train": str(len(texts)), "counts": str(counts), "seed": str(args.seed),
                 "demo": str(bool(args.demo_truth)), "weak": str(not args.no_weak), "power": str(args.power)}
    head.save(args.out.with_suffix(".untuned.npz"))
    head = tune_decision(head, real_dev)
    head.save(args.out)
    print(f"wrote {args.out}: {len(texts)} examples {counts}, temperature {head.temperature:.3f}, "
          f"version {head.version}")

    from micromoments.intent.classifier import Classifier

    preds = Classifier(head=head).predict([r["query"] for r in dev], explain=False)
    print("real dev split (never trained on):")
    print(format_report(evaluate_labels([r["label"] for r in dev], [p.moment for p in preds],
                                        labels=["know", "go", "do", "buy"])))


if __name__ == "__main__":
    main()
