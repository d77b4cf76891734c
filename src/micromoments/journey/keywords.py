"""Keyword research for SEO: intent per keyword, long-tail / question / voice flags, topic clusters.

>>> import pandas as pd
>>> out = keyword_research(pd.DataFrame({"keyword": ["how to clean suede shoes", "buy running shoes"]}))
>>> out[["keyword", "question", "long_tail"]].values.tolist()
[['how to clean suede shoes', True, True], ['buy running shoes', False, False]]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from micromoments.errors import InputError
from micromoments.journey.text import cluster_texts, is_long_tail, is_question, is_voice_style, words


def _field(result: Any, name: str) -> Any:
    if isinstance(result, dict):
        return result.get(name)
    return getattr(result, name, None)


def classify_keywords(keywords: list[str]) -> tuple[list[Any], list[Any], list[Any], str]:
    """(moments, go_types, confidences, source) from `micromoments.classify`, if it is available."""
    try:
        import micromoments

        results = micromoments.classify(list(keywords))
    except (ImportError, AttributeError, NotImplementedError):
        return [None] * len(keywords), [None] * len(keywords), [None] * len(keywords), "unavailable"
    if isinstance(results, pd.DataFrame):
        results = results.to_dict("records")
    results = list(results)
    moments = [r if isinstance(r, str) else _field(r, "moment") for r in results]
    go_types = [None if isinstance(r, str) else _field(r, "go_type") for r in results]
    confs = [None if isinstance(r, str) else _field(r, "confidence") for r in results]
    return moments, go_types, confs, "micromoments.classify"


def keyword_research(frame: pd.DataFrame, *, keyword_column: str = "keyword",
                     volume_column: str | None = None, max_topics: int = 20,
                     where: str = "keywords") -> pd.DataFrame:
    """One row per keyword: volume, moment, go_type, confidence, intent_source, words, long_tail,
    question, voice, topic, topic_label. Sorted as given."""
    if keyword_column not in frame.columns:
        raise InputError(f"no column '{keyword_column}'", where=where,
                         hint=f"columns are: {', '.join(map(str, frame.columns))}; name it with --keyword-column")
    if volume_column and volume_column not in frame.columns:
        raise InputError(f"no column '{volume_column}'", where=where,
                         hint=f"columns are: {', '.join(map(str, frame.columns))}")
    out = pd.DataFrame({"keyword": frame[keyword_column].astype("string").str.strip()})
    bad = out.keyword.isna() | (out.keyword == "")
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0]) + 2  # 1-based, after the header line
        raise InputError(f"empty keyword at row {row}", where=f"{where}:{row}", hint="remove the row or fill it in")
    if volume_column:
        volume = pd.to_numeric(frame[volume_column], errors="coerce")
        if volume.isna().any():
            row = int(volume.isna().to_numpy().nonzero()[0][0]) + 2
            raise InputError(f"{volume_column}: expected a number, got {frame[volume_column].iloc[row - 2]!r}",
                             where=f"{where}:{row}", hint="use plain numbers such as 1200")
        out["volume"] = volume.astype(float)
    else:
        out["volume"] = float("nan")
    kws = out.keyword.tolist()
    out["moment"], out["go_type"], out["confidence"], source = classify_keywords(kws)
    out["intent_source"] = source
    out["words"] = [len(words(k)) for k in kws]
    out["long_tail"] = [is_long_tail(k) for k in kws]
    out["question"] = [is_question(k) for k in kws]
    out["voice"] = [is_voice_style(k) for k in kws]
    weights = out.volume.fillna(1.0).tolist() if volume_column else None
    labels, names = cluster_texts(kws, weights, max_clusters=max_topics)
    out["topic"] = labels
    out["topic_label"] = [names[i] for i in labels]
    return out


def read_keywords(path: str | Path) -> pd.DataFrame:
    """Read a keyword CSV (or TSV), with an `InputError` naming the file on failure."""
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", where=str(path), hint="check the --input path")
    try:
        return pd.read_csv(path, sep=None, engine="python", dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"not a readable CSV: {exc}", where=str(path), hint="one keyword per row, with a header") from exc
