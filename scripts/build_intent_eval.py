"""Build the frozen real-query evaluation set of the intent engine (unlabelled), reproducibly.

    python scripts/build_intent_eval.py --mimics MIMICS-Manual.tsv --miracl-dir DIR

Sources (each recorded by repository commit and file SHA-256; none written by us):

- English: MIMICS-Manual (`data/MIMICS-Manual.tsv` of github.com/microsoft/MIMICS, commit 6450e81,
  MIT licence): real Bing queries. 1,400 distinct queries are drawn with seed 21.
- German, French, Spanish: MIRACL v1.0 dev topics (`topics/topics.miracl-v1.0-{de,fr,es}-dev.tsv`
  of github.com/castorini/anserini-tools, commit 5b819c1; MIRACL is Apache-2.0): questions written
  by native speakers. 60 per language, seed 21.

Writes `tests/fixtures/intent/real/eval_unlabelled.tsv` (id, query, url, title, lang, source,
licence, split). `split` is dev or test, 50/50, seeded, stratified by source. MIMICS and MIRACL
ship no landing URL or title, so those columns are empty.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "fixtures" / "intent" / "real" / "eval_unlabelled.tsv"
SEED = 21
MIMICS_SHA256 = "bd8e405326605d69b643c046d2d72fcb0cb891acc1d7a8438c2ed2d724aeafbb"
SOURCES = {
    "mimics": ("MIMICS-Manual (microsoft/MIMICS@6450e81, data/MIMICS-Manual.tsv)", "MIT"),
    "miracl": ("MIRACL v1.0 dev topics (castorini/anserini-tools@5b819c1)", "Apache-2.0"),
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def mimics_queries(path: Path) -> list[str]:
    """Distinct queries of MIMICS-Manual, sorted (the file repeats a query once per clarification pane)."""
    with path.open(newline="", encoding="utf-8") as fh:
        rows = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        return sorted({r["query"].strip() for r in rows if r["query"].strip()})


def miracl_topics(path: Path) -> list[str]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        _, _, text = line.partition("\t")
        if text.strip():
            out.append(text.strip())
    return sorted(set(out))


def build(mimics: Path, miracl_dir: Path, n_en: int = 1400, n_lang: int = 60) -> list[dict[str, str]]:
    rng = random.Random(SEED)
    if sha256(mimics) != MIMICS_SHA256:
        raise SystemExit(f"{mimics}: SHA-256 differs from the recorded {MIMICS_SHA256}")
    rows: list[dict[str, str]] = []
    for q in rng.sample(mimics_queries(mimics), n_en):
        rows.append({"query": q, "lang": "en", "source": "mimics"})
    for lang in ("de", "fr", "es"):
        for q in rng.sample(miracl_topics(miracl_dir / f"topics.miracl-v1.0-{lang}-dev.tsv"), n_lang):
            rows.append({"query": q, "lang": lang, "source": "miracl"})
    rng.shuffle(rows)
    # 50/50 dev/test within each (source, lang) stratum.
    strata: dict[tuple[str, str], list[int]] = {}
    for i, r in enumerate(rows):
        strata.setdefault((r["source"], r["lang"]), []).append(i)
    for idx in strata.values():
        rng.shuffle(idx)
        for k, i in enumerate(idx):
            rows[i]["split"] = "dev" if k < len(idx) // 2 else "test"
    for i, r in enumerate(rows):
        r["id"] = f"q{i + 1:04d}"
        r["url"] = r["title"] = ""
        r["source"], r["licence"] = SOURCES[r["source"]]
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mimics", type=Path, required=True)
    ap.add_argument("--miracl-dir", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    rows = build(args.mimics, args.miracl_dir)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cols = ["id", "query", "url", "title", "lang", "source", "licence", "split"]
    with args.out.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=cols, delimiter="\t", lineterminator="\n")
        w.writeheader()
        w.writerows({c: r[c] for c in cols} for r in rows)
    print(f"wrote {args.out}: {len(rows)} queries")


if __name__ == "__main__":
    main()
