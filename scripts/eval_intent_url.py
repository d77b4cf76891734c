"""How much the landing URL helps, on real queries that come with one: the GOV.UK site-search pilot set.

    python scripts/eval_intent_url.py [--split test|dev|all]

The set (`tests/fixtures/intent/govuk_url/`): 220 real GOV.UK site-search queries, each with the
GOV.UK page its search should return (alphagov/search-api, MIT; see SOURCES.md there), labelled
by the guideline from query and URL together in two independent passes. It is a single-site pilot,
not web search: every URL is on www.gov.uk, there is no go/local, and buy is rare, so the figures
say what a site's own path words add, not what a click log would. Split 50/50 (seed 21): `dev` chose
the landing-page rules' weight and the task-page rule; `test` is reported, never tuned on.

Prints Cohen's kappa of the two passes, then macro-F1 (95% bootstrap CI) and per-class F1 for the
query alone and for query + URL, and the paired bootstrap interval of the difference.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from eval_intent_real import MOMENTS, moment, read_tsv  # the sibling script (scripts/ is on the path)
from sklearn.metrics import cohen_kappa_score

from micromoments.intent.classifier import classify
from micromoments.intent.evaluate import evaluate_labels, format_report

ROOT = Path(__file__).resolve().parents[1]
SET = ROOT / "tests" / "fixtures" / "intent" / "govuk_url"


def paired_difference(truth: list[str], a: list[str], b: list[str], n_boot: int = 1000,
                      seed: int = 7) -> tuple[float, float, float]:
    """macro-F1(b) - macro-F1(a) and its 95% interval over the same bootstrap resamples."""
    rng = np.random.default_rng(seed)
    n = len(truth)
    base = evaluate_labels(truth, b, labels=MOMENTS, n_boot=1).macro_f1 - \
        evaluate_labels(truth, a, labels=MOMENTS, n_boot=1).macro_f1
    diffs = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        t = [truth[i] for i in idx]
        diffs.append(evaluate_labels(t, [b[i] for i in idx], labels=MOMENTS, n_boot=1).macro_f1
                     - evaluate_labels(t, [a[i] for i in idx], labels=MOMENTS, n_boot=1).macro_f1)
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return base, float(lo), float(hi)


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", choices=["test", "dev", "all"], default="test")
    split = ap.parse_args().split
    rows = [r for r in read_tsv(SET / "eval.tsv") if split == "all" or r["split"] == split]
    pass_a = {r["id"]: r["label"] for r in read_tsv(SET / "pass_a.tsv")}
    pass_b = {r["id"]: r["label"] for r in read_tsv(SET / "pass_b.tsv")}
    ids = [r["id"] for r in rows]
    kappa = cohen_kappa_score([moment(pass_a[i]) for i in ids], [moment(pass_b[i]) for i in ids])
    agree = sum(pass_a[i] == pass_b[i] for i in ids)
    print(f"GOV.UK site-search pilot, split {split}: {len(rows)} queries; two passes agree on {agree}, "
          f"Cohen's kappa {kappa:.3f} (four moments)")
    truth = [moment(r["label"]) for r in rows]
    print("labels:", {m: truth.count(m) for m in MOMENTS + ["other"] if truth.count(m)})
    queries = [r["query"] for r in rows]
    alone = [p.moment for p in classify(queries, explain=False)]
    with_url = [p.moment for p in classify(queries, url=[r["url"] for r in rows], explain=False)]
    for name, pred in (("query alone", alone), ("query + landing URL", with_url)):
        print(f"\n**{name}**")
        print(format_report(evaluate_labels(truth, pred, labels=MOMENTS)))
    diff, lo, hi = paired_difference(truth, alone, with_url)
    print(f"\nURL gain in macro-F1: {diff:+.3f} (95% paired bootstrap {lo:+.3f} to {hi:+.3f}); "
          f"predictions changed by the URL: {sum(a != b for a, b in zip(alone, with_url))} of {len(rows)}")


if __name__ == "__main__":
    main()
