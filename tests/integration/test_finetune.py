"""`digest train --finetune` end to end on a small slice (needs the [train] extra: torch; skipped without it)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from digest.relevance.model import RelevanceModel
from tests.conftest import run_cli
from tests.shared import shared_path

torch = pytest.importorskip("torch", reason="fine-tuning needs `pip install -e '.[train]'`")


def test_finetune_exports_an_int8_encoder_and_a_model_that_records_it(base_env: dict[str, str], tmp_path: Path) -> None:
    dates = {}
    with gzip.open(shared_path("corpus", "cs-cv-papers.jsonl.gz"), "rt") as f:
        for line in f:
            o = json.loads(line)
            dates[o["id"]] = o["date"][:7]
    rows = [json.loads(line) for line in shared_path("labels", "relevance-train.jsonl").read_text().splitlines()]
    early = [r for r in rows if dates.get(r["id"], "") <= "2025-12"][:90]
    late = [r for r in rows if dates.get(r["id"], "") > "2025-12"][:40]
    labels = tmp_path / "small.jsonl"
    labels.write_text("".join(json.dumps(r) + "\n" for r in early + late))
    out = tmp_path / "model.npz"
    code, stdout, err = run_cli("train", "--labels", str(labels), "--corpus", str(shared_path("corpus", "cs-cv-papers.jsonl.gz")),
                                "--finetune", "--epochs", "0.2", "--folds", "3", "--output", str(out))  # fmt: skip
    assert code == 0, stdout + err
    assert "time split (train ≤ 2025-12)" in stdout and "3-fold CV" in stdout
    m = RelevanceModel.load(out)
    assert m.embedder.startswith("minilm-ft-") and m.topics == ("clip", "editing")
    assert (out.with_name("model-base.npz")).is_file() and (tmp_path / "encoder" / "encoder.onnx").is_file()
