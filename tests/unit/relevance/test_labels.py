"""Label files: several merged (a later file wins), per-label weights reaching training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from digest.errors import InputError
from digest.relevance.data import Example, merge_labels, read_labels
from digest.relevance.finetune import targets_for
from digest.relevance.train import targets_of
from tests.fakes import paper

REPO = Path(__file__).resolve().parents[3]


def _write(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_a_later_file_overrides_an_earlier_label_and_keeps_its_place(tmp_path: Path) -> None:
    a = _write(tmp_path / "a.jsonl", [{"id": "2501.00001", "label": 2, "topics": ["clip"]}, {"id": "2501.00002", "label": 0}])
    b = _write(tmp_path / "b.jsonl", [{"id": "2501.00001", "label": 0, "weight": 5}, {"id": "2501.00003", "label": 1, "topics": ["editing"]}])
    labs = merge_labels([a, b])
    assert [(x.id, x.label, x.weight) for x in labs] == [("2501.00001", 0, 5.0), ("2501.00002", 0, 1.0), ("2501.00003", 1, 1.0)]


@pytest.mark.parametrize("weight", [0, -1, 1000, "x"])
def test_a_bad_weight_names_the_line(tmp_path: Path, weight: object) -> None:
    f = _write(tmp_path / "a.jsonl", [{"id": "2501.00001", "label": 0}, {"id": "2501.00002", "label": 0, "weight": weight}])
    with pytest.raises(InputError, match=r"a\.jsonl:2"):
        read_labels(f)


def test_weights_reach_the_encoder_targets_and_the_heads() -> None:
    ex = [Example(paper(1, "clip"), 2, ["clip"]), Example(paper(2, "clip"), 0, [], "curated", 5.0)]
    _, w = targets_for(ex, ["clip", "editing"])
    assert w.tolist() == [2.0, 5.0]  # clearly relevant counts 2, the curated negative 5
    t = targets_of(ex, ["clip", "editing"])
    assert t.w[1].tolist() == [5.0, 5.0] and t.y[1].tolist() == [0, 0]


def test_the_curated_labels_shipped_with_the_code_parse() -> None:
    labs = read_labels(REPO / "training" / "curated-labels.jsonl")
    assert labs and all(x.label == 0 and x.weight > 1 and x.stratum == "curated" for x in labs)
    rows = [json.loads(line) for line in (REPO / "training" / "curated-labels.jsonl").read_text().splitlines()]
    assert all(r["why"] and set(r) == {"id", "label", "topics", "stratum", "weight", "why"} for r in rows)
    assert not np.any([("title" in r or "abstract" in r) for r in rows])  # ids only: text comes from the corpus


def test_an_id_that_is_not_an_arxiv_id_is_a_clear_error(tmp_path: Path) -> None:
    f = _write(tmp_path / "a.jsonl", [{"id": "not-an-id", "label": 0}])
    with pytest.raises(InputError, match=r"a\.jsonl:1: expected \{id \(an arXiv id\)"):
        read_labels(f)
