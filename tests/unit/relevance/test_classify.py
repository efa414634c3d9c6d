"""Relevance: the batch classify contract, caching, explanations, topics from the model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from digest.config import Settings
from digest.models import Paper
from digest.relevance.classify import classify
from digest.relevance.model import PACKAGED_MODEL, RelevanceModel
from digest.relevance.readinglist import parse_reading_list
from digest.store import Store
from tests.conftest import run_cli
from tests.fakes import HashEmbedder, paper, tiny_model
from tests.shared import corpus, shared_path


def test_classify_contract_on_the_packaged_model(tmp_path: Path, base_env: dict[str, str]) -> None:
    papers = list(corpus().values())[:25]
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps({"id": p["id"], "title": p["title"], "abstract": p["abstract"], "x": 1}) + "\n"
                           for p in papers))  # fmt: skip
    outp = tmp_path / "out.jsonl"
    code, _, errtext = run_cli("classify", "--input", str(inp), "--output", str(outp))
    assert code == 0, errtext
    rows = [json.loads(line) for line in outp.read_text().splitlines()]
    model = RelevanceModel.load(PACKAGED_MODEL)
    assert [r["id"] for r in rows] == [p["id"] for p in papers]
    for r in rows:
        assert isinstance(r["relevant"], bool) and 0.0 <= r["score"] <= 1.0
        assert set(r["topics"]) == set(model.topics) and all(0 <= v <= 1 for v in r["topics"].values())
        assert r["relevant"] == (r["score"] >= model.threshold)


def test_classify_bad_line_names_it(tmp_path: Path, base_env: dict[str, str]) -> None:
    inp = tmp_path / "in.jsonl"
    inp.write_text('{"id": "1", "title": "t", "abstract": "a"}\n{"id": "2", "title": "t"}\n')
    code, _, errtext = run_cli("classify", "--input", str(inp), "--output", str(tmp_path / "o.jsonl"))
    assert code == 1 and "line 2" in errtext and "abstract" in errtext
    assert not (tmp_path / "o.jsonl").exists()


@pytest.mark.parametrize(
    "name", ["awesome-clip.md", "clip-reading-notes.md", "clip-series.md", "image-editing-notes.md"]
)
def test_reading_lists_parse(name: str) -> None:
    import re

    text = shared_path("reference", "reading-lists", name).read_text()
    items = parse_reading_list(text)
    ids = [i.arxiv_id for i in items if i.arxiv_id]
    assert items and len(ids) == len(set(ids))
    assert set(ids) == set(re.findall(r"(?:arxiv\.org/(?:abs|pdf)/|arXiv:\s?)(\d{4}\.\d{4,5})", text, re.I))


def test_a_second_classification_reads_embeddings_from_the_store(settings: Settings, store: Store) -> None:
    emb = HashEmbedder()
    model = tiny_model(("clip", "editing"), emb)
    papers = [paper(100 + i, t) for i, t in enumerate(["clip", "editing", "other"] * 5)]
    first = classify(papers, model, emb, store)
    assert emb.calls >= 1 and first.embedded == 15
    calls = emb.calls
    second = classify(papers, model, emb, store)
    assert emb.calls == calls and second.embedded == 0
    assert [r.score for r in first.relevance] == [r.score for r in second.relevance]
    kept = [r for r in second.relevance if r.relevant]
    assert {r.id for r in kept} == {p.id for p in papers if "Paper" in p.title and "object" not in p.title}
    for r in kept:  # explanations: 3 nearest labelled positives of the paper's best topic
        assert len(r.neighbours) == 3 and set(r.topics) == {"clip", "editing"}
        sims = [n.similarity for n in r.neighbours]
        assert sims == sorted(sims, reverse=True)
    assert len(store.get_relevance([(p.id, 1) for p in papers])) == 15


def test_a_third_topic_is_configuration_not_code(settings: Settings, store: Store) -> None:
    emb = HashEmbedder()
    model = tiny_model(("clip", "editing", "gs"), emb)
    assert model.topics == ("clip", "editing", "gs")
    res = classify([paper(500, "gs"), paper(501, "other")], model, emb, None)
    gs, other = res.relevance
    assert gs.relevant and gs.best_topic == "gs" and set(gs.topics) == {"clip", "editing", "gs"}
    assert not other.relevant
    path = settings.data_dir / "m.npz"
    model.save(path)
    again = RelevanceModel.load(path)
    assert again.topics == model.topics and again.pos_topics == model.pos_topics
    e = emb.embed(["x y z"])
    assert np.allclose(again.topic_scores(["x"], ["y"], e), model.topic_scores(["x"], ["y"], e), atol=1e-3)


def test_packaged_model_card_records_topics_and_threshold_policy() -> None:
    m = RelevanceModel.load(PACKAGED_MODEL)
    assert m.topics == ("clip", "editing") and 0 < m.threshold < 1 and len(m.pos_ids) > 500
    _ = Paper  # the contract type


def test_a_topic_with_its_own_threshold_decides_on_its_margin(settings: Settings) -> None:
    emb = HashEmbedder()
    model = tiny_model(("clip", "editing", "gs"), emb)
    p = paper(600, "gs")
    e = emb.embed([p.text])
    gs = float(model.topic_scores([p.title], [p.abstract], e)[0][2])
    model.threshold = min(0.99, gs + 0.05)  # too strict for this paper…
    assert not classify([p], model, emb, None).relevance[0].relevant
    model.topic_thresholds = {"gs": gs - 0.05}  # …but its topic was calibrated on its seeds
    r = classify([p], model, emb, None).relevance[0]
    assert r.relevant and r.best_topic == "gs"


def test_the_decided_topic_is_kept_when_another_topic_scores_higher(settings: Settings, store: Store) -> None:
    emb = HashEmbedder()
    model = tiny_model(("clip", "editing", "gs"), emb)
    p = paper(601, "clip")
    s = model.topic_scores([p.title], [p.abstract], emb.embed([p.text]))[0]
    low, high = model.topics[int(np.argmin(s))], model.topics[int(np.argmax(s))]
    assert low != high
    model.threshold = min(0.999, float(s.max()) + 0.01)  # no topic passes the shared threshold…
    model.topic_thresholds = {low: float(s.min()) - 0.01}  # …the weakest passes its own, calibrated one
    r = classify([p], model, emb, store).relevance[0]
    assert r.relevant and r.topic == low and r.best_topic == low  # not the raw maximum
    again = store.get_relevance([(p.id, p.version)])[(p.id, p.version)]
    assert again.best_topic == low  # the page's section and the email's topic filter read it back
