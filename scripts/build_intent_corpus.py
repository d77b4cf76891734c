"""Build the unlabelled real-query corpus that the intent engine's labelling functions run over.

    python scripts/build_intent_corpus.py --mimics MIMICS-Manual.tsv --miracl-dir DIR --nq-dir DIR

Sources (recorded by repository commit and file SHA-256; texts of the frozen evaluation set are
left out, so nothing of it is trained on):

| source | what | licence |
|---|---|---|
| MIMICS-Manual (microsoft/MIMICS@6450e81) | the real Bing queries *not* in the evaluation sample, and the query refinements Bing offered for them (clarification options) | MIT |
| NQ-open (google-research-datasets/natural-questions@fb26a30: dev, efficientqa dev and test) | real Google queries phrased as questions | CC BY-SA 3.0 |
| MIRACL v1.0 topics (castorini/anserini-tools@5b819c1: en/es/fr train+dev, de dev) | questions written by native speakers | Apache-2.0 |

Writes `src/micromoments/intent/data/real_queries.tsv.gz` (text, source).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
from pathlib import Path

from build_intent_eval import MIMICS_SHA256, sha256

from micromoments.intent.text import normalize_text

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "micromoments" / "intent" / "data" / "real_queries.tsv.gz"
EVAL = ROOT / "tests" / "fixtures" / "intent" / "real" / "eval_unlabelled.tsv"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mimics", type=Path, required=True)
    ap.add_argument("--miracl-dir", type=Path, required=True)
    ap.add_argument("--nq-dir", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    if sha256(args.mimics) != MIMICS_SHA256:
        raise SystemExit(f"{args.mimics}: SHA-256 differs from the recorded {MIMICS_SHA256}")
    with EVAL.open(newline="", encoding="utf-8") as fh:
        held = {normalize_text(r["query"]) for r in csv.DictReader(fh, delimiter="\t")}
    rows: list[tuple[str, str]] = []
    with args.mimics.open(newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE):
            if normalize_text(r["query"]) in held:
                continue  # neither the query nor the refinements Bing offered for it
            rows.append((r["query"], "mimics"))
            rows += [(r[f"option_{k}"], "mimics-option") for k in range(1, 6) if r.get(f"option_{k}")]
    for name in ("NQ-open.dev.jsonl", "NQ-open.efficientqa.dev.1.1.jsonl", "NQ-open.efficientqa.test.1.1.jsonl"):
        for line in (args.nq_dir / name).read_text(encoding="utf-8").splitlines():
            rows.append((json.loads(line)["question"], "nq-open"))
    for lang, splits in (("en", ("train", "dev")), ("es", ("train", "dev")), ("fr", ("train", "dev")), ("de", ("dev",))):
        for split in splits:
            for line in (args.miracl_dir / f"topics.miracl-v1.0-{lang}-{split}.tsv").read_text(encoding="utf-8").splitlines():
                rows.append((line.partition("\t")[2], f"miracl-{lang}"))
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    for text, source in rows:
        t = normalize_text(text)
        if t and t not in held and t not in seen:
            seen.add(t)
            out.append((t, source))
    with gzip.open(args.out, "wt", encoding="utf-8", compresslevel=9) as fh:
        fh.write("text\tsource\n")
        fh.writelines(f"{t}\t{s}\n" for t, s in out)
    print(f"wrote {args.out}: {len(out)} texts")


if __name__ == "__main__":
    main()
