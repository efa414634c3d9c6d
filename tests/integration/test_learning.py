"""The reader teaches the model: votes flip their papers and move their neighbours; a topic from seeds alone.

Runs on the shipped model and base data (no ../shared is read by `digest train` itself; the tests take real
papers from ../shared to play the reader's store).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from pathlib import Path

import numpy as np
import pytest

from digest.config import load_settings
from digest.models import DaySource, Paper
from digest.relevance.embed import embed_papers
from digest.relevance.model import PACKAGED_MODEL, RelevanceModel
from digest.relevance.setup import build_embedder
from digest.relevance.votes import Base, base_path
from digest.replay import ArxivState, LLMState
from digest.replay.smtp import Mailbox
from digest.store import Store
from tests.conftest import run_cli
from tests.shared import corpus, corpus_by_day, shared_path

LABELLED = {json.loads(line)["id"] for line in shared_path("labels", "relevance-train.jsonl").read_text().splitlines()}


def _store_papers(store: Store, days: list[str]) -> list[Paper]:
    out = []
    for day in days:
        ps = [
            Paper(id=p["id"], title=p["title"], abstract=p["abstract"])
            for p in corpus_by_day()[day]
            if p["id"] not in LABELLED
        ]
        store.upsert_papers(ps, DaySource.rss, dt.date.fromisoformat(day))
        out += ps
    return out


def test_votes_flip_their_papers_and_move_their_neighbours(base_env: dict[str, str], tmp_path: Path) -> None:
    settings = load_settings()
    store = Store(settings.db_url)
    papers = _store_papers(store, ["2026-05-12", "2026-05-13", "2026-05-14", "2026-05-15"])
    model = RelevanceModel.load(PACKAGED_MODEL)
    emb, _ = embed_papers(papers, build_embedder(settings, model), store)
    before = model.topic_scores([p.title for p in papers], [p.abstract for p in papers], emb).max(axis=1)
    # a reader with consistent tastes votes on the papers the model is least sure about: down on multimodal-LLM,
    # segmentation and grounding work, up on video, face and removal editing
    down = re.compile(r"MLLM|multimodal large language|large language model|segmentation|grounding", re.I)
    up_ = re.compile(r"video|face|facial|expression|removal|outpaint|try-on|relight|style transfer|inpaint", re.I)
    unsure = np.argsort(np.abs(before - model.threshold))[:400]
    lines, voted = [], {}
    for i in unsure:
        text = papers[i].title + " " + papers[i].abstract[:400]
        if up_.search(text) or down.search(text):
            up = bool(up_.search(text)) and not down.search(text)
            voted[int(i)] = up
            lines.append(json.dumps({"id": papers[i].id, "vote": "up" if up else "down"}))
    assert len(voted) >= 150
    (tmp_path / "votes.jsonl").write_text("\n".join(lines) + "\n")
    code, out, err = run_cli("train")  # the counterfactual: the same retraining without the votes
    assert code == 0, out + err
    mine_path = Path(base_env["DIGEST_DATA_DIR"]) / "relevance-model.npz"
    m0 = RelevanceModel.load(mine_path)
    without = m0.topic_scores([p.title for p in papers], [p.abstract for p in papers], emb).max(axis=1)
    code, out, err = run_cli("feedback", "import", str(tmp_path / "votes.jsonl"))
    assert code == 0 and f"imported {len(lines)} votes" in out, err
    t0 = time.monotonic()
    code, out, err = run_cli("train")
    took = time.monotonic() - t0
    assert code == 0, out + err
    print(f"RETRAIN {took:.1f}s for {len(voted)} votes")
    assert took < 300 and f"votes used: {len(voted)} papers" in out
    mine = RelevanceModel.load(Path(base_env["DIGEST_DATA_DIR"]) / "relevance-model.npz")
    assert mine.card["votes"] == len(voted) and RelevanceModel.load(PACKAGED_MODEL).card.get("votes") is None
    after = mine.topic_scores([p.title for p in papers], [p.abstract for p in papers], emb).max(axis=1)
    agree = sum((after[i] >= mine.threshold) == up for i, up in voted.items())
    assert agree >= 0.85 * len(voted), agree

    # neighbours: the nearest unvoted paper of each voted one, of the same kind for this reader, moves the vote's way
    def kind(i: int) -> bool | None:
        text = papers[i].title + " " + papers[i].abstract[:400]
        return (bool(up_.search(text)) and not down.search(text)) if up_.search(text) or down.search(text) else None

    others = np.array([i for i in range(len(papers)) if i not in voted])
    sims = emb[list(voted)] @ emb[others].T
    moves = []
    for row, (_i, up) in zip(sims, voted.items(), strict=True):
        same = [k for k in np.argsort(-row)[:10] if kind(int(others[k])) == up and row[k] > 0.5]
        if same:
            j = others[same[0]]
            moves.append((after[j] - without[j]) * (1 if up else -1))
    moved = np.array([m for m in moves if abs(m) > 0.02])  # what a vote changes, not the last decimals
    print("MOVES", len(moves), float(np.mean(moves)), len(moved), float(np.mean(moved > 0)), float(np.median(moves)))
    assert len(moved) >= 20 and np.mean(moves) > 0.02 and np.mean(moved > 0) > 0.6, (len(moved), np.mean(moves))
    # the default topics' quality on their labels does not drop
    f1 = re.search(r"base labels F1 before ([\d.]+) / after ([\d.]+)", out)
    assert f1 and float(f1.group(2)) >= float(f1.group(1)) - 0.02, out


def test_a_topic_from_thirty_seed_papers(
    arxiv_state: ArxivState,
    servers: tuple[LLMState, Mailbox, Path],
    env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gs = re.compile(r"gaussian splatting|3dgs|gaussian splat", re.IGNORECASE)
    seeds = sorted(p["id"] for p in corpus().values()
                   if gs.search(p["title"]) and "2026-01" <= p["date"] < "2026-05")[:30]  # fmt: skip
    assert len(seeds) == 30
    topics = tmp_path / "topics.toml"
    topics.write_text(
        '[[topics]]\nid = "clip"\nname = "CLIP / contrastive VLM"\n\n[[topics]]\nid = "editing"\nname = "image editing"\n\n'
        '[[topics]]\nid = "gs"\nname = "3D Gaussian splatting"\nseeds = [' + ", ".join(f'"{s}"' for s in seeds) + "]\n"
    )
    monkeypatch.setenv("DIGEST_TOPICS", str(topics))
    code, out, err = run_cli("train")  # seeds are fetched from the (replayed) arXiv API by id
    assert code == 0, out + err
    assert "seeds used: gs 30" in out and "topics clip, editing, gs" in out
    day = "2026-06-02"
    arxiv_state.day = dt.date.fromisoformat(day)
    code, out, err = run_cli("run", "--date", day)
    assert code == 0, out + err
    feed = Path(env["DIGEST_OUTPUT_DIR"]) / "feeds/gs.xml"
    import feedparser

    titles = [e.title for e in feedparser.parse(feed.read_bytes()).entries]
    day_papers = {p["id"]: p for p in corpus_by_day()[day]}
    on_topic = {i for i, p in day_papers.items() if gs.search(p["title"] + " " + p["abstract"][:300])}
    got = {e.id for e in feedparser.parse(feed.read_bytes()).entries}
    assert got, "a gs section and feed"
    precision = len(got & on_topic) / len(got)
    recall = len(got & on_topic) / max(len(on_topic), 1)
    print(f"SEEDED gs: {len(got)} in the feed, precision {precision:.2f}, recall {recall:.2f} of {len(on_topic)}")
    from digest.store import Store as _S

    rel = _S(env["DIGEST_DB_URL"]).get_relevance(
        [(i, int(str(day_papers[i].get("version") or 1).lstrip("v") or 1)) for i in on_topic]
    )
    print("GS SCORES", sorted((round(r.topics.get("gs", 0), 3), r.relevant) for r in rel.values()))
    assert precision >= 0.7 and recall >= 0.7, (precision, recall, titles[:10])
    page = (Path(env["DIGEST_OUTPUT_DIR"]) / "2026/06/2026-06-02.html").read_text(encoding="utf-8")
    assert "<h2>3D Gaussian splatting</h2>" in page
    assert Base(base_path(PACKAGED_MODEL)).ids  # the base data ships with the package
