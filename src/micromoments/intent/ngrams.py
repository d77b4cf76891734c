"""Hashed word and character n-grams: the surface-form features of the head, with no vocabulary file.

Like scikit-learn's `HashingVectorizer` (char_wb 3-5 grams, word 1-2 grams, l2-normalised
counts), but hashed with CRC-32 in plain Python: importing scikit-learn alone would cost
about a second of the 2-second model-load budget.

>>> m = hashed_ngrams(["gmail login", ""])
>>> m.shape, m[1].nnz
((2, 524288), 0)
"""

from __future__ import annotations

import re
import zlib
from collections import Counter

import numpy as np
import scipy.sparse as sp

HASH_BITS = 18
N_BUCKETS = 2**HASH_BITS
N_HASHED = 2 * N_BUCKETS  # characters, then words
_MASK = N_BUCKETS - 1
_WORD = re.compile(r"(?u)\b\w\w+\b")
_SPACE = re.compile(r"\s\s+")


def _char_grams(text: str) -> Counter[int]:
    counts: Counter[int] = Counter()
    for word in _SPACE.sub(" ", text).split(" "):
        if not word:
            continue
        padded = f" {word} "
        for n in (3, 4, 5):
            if len(padded) < n:
                continue
            for i in range(len(padded) - n + 1):
                counts[zlib.crc32(padded[i : i + n].encode()) & _MASK] += 1
            if len(padded) == n:
                break
    return counts


def _word_grams(text: str) -> Counter[int]:
    words = _WORD.findall(text)
    grams = words + [f"{a} {b}" for a, b in zip(words, words[1:])]
    return Counter(N_BUCKETS + (zlib.crc32(g.encode()) & _MASK) for g in grams)


def hashed_ngrams(texts: list[str]) -> sp.csr_matrix:
    """(len(texts), N_HASHED) sparse matrix; each block (chars, words) is l2-normalised per row."""
    indptr = [0]
    indices: list[int] = []
    data: list[float] = []
    for text in texts:
        for counts in (_char_grams(text), _word_grams(text)):
            if not counts:
                continue
            values = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
            norm = float(np.sqrt((values**2).sum()))
            indices.extend(counts.keys())
            data.extend((values / norm).tolist())
        indptr.append(len(indices))
    matrix = sp.csr_matrix(
        (np.asarray(data, dtype=np.float32), np.asarray(indices, dtype=np.int32), np.asarray(indptr, dtype=np.int64)),
        shape=(len(texts), N_HASHED),
    )
    matrix.sum_duplicates()
    return matrix
