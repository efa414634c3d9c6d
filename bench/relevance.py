"""Relevance stage speed: model load, local embedding throughput, scoring throughput, peak RSS.

Usage: python bench/relevance.py [--papers 1000]

Embedding is measured on N real corpus papers (title + abstract, first 256 word pieces) with the
shipped int8 ONNX MiniLM; scoring (TF-IDF + embedding heads + neighbours) is measured on precomputed
embeddings, i.e. what a re-run with cached embeddings costs.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.shared import corpus

from digest.models import Paper
from digest.relevance.embed import LocalMiniLM, paper_text
from digest.relevance.model import RelevanceModel


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--papers", type=int, default=1000)
    args = ap.parse_args()
    papers = [
        Paper(id=p["id"], version=1, title=p["title"], abstract=p["abstract"])
        for p in list(corpus().values())[: args.papers]
    ]
    t = time.perf_counter()
    model = RelevanceModel.load()
    load = time.perf_counter() - t
    t = time.perf_counter()
    emb_model = LocalMiniLM()
    emb_load = time.perf_counter() - t
    texts = [paper_text(p.title, p.abstract) for p in papers]
    emb_model.embed(texts[:32])  # warm-up
    t = time.perf_counter()
    emb = emb_model.embed(texts)
    emb_s = time.perf_counter() - t
    t = time.perf_counter()
    scores = model.topic_scores([p.title for p in papers], [p.abstract for p in papers], emb)
    score_s = time.perf_counter() - t
    t = time.perf_counter()
    model.neighbours(emb)
    neigh_s = time.perf_counter() - t
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kept = int((scores.max(axis=1) >= model.threshold).sum())
    print(f"cpus: {os.cpu_count()}  papers: {len(papers)}  relevant at threshold {model.threshold:.3f}: {kept}")
    print(f"relevance model load: {load * 1000:.0f} ms;  ONNX embedder load: {emb_load * 1000:.0f} ms")
    print(f"embedding (int8 MiniLM, 256 tokens): {emb_s:.1f} s, {len(papers) / emb_s:.0f} papers/s")
    print(f"scoring (TF-IDF + heads): {score_s * 1000:.0f} ms, {len(papers) / score_s:,.0f} papers/s; "
          f"neighbours: {neigh_s * 1000:.0f} ms, {len(papers) / neigh_s:,.0f} papers/s")
    print(f"peak RSS: {rss_mb:.0f} MB")


if __name__ == "__main__":
    main()
