"""Relevance stage speed and memory: model load, embedding throughput, scoring throughput, a cold day, and the
peak memory of a whole daily run.

Usage: python bench/relevance.py [--papers 1000] [--day 2026-06-02] [--no-run]

* embedding and scoring on N real corpus papers with the shipped encoder (int8 ONNX) and model, in this process;
* a cold day: the papers of a real ~300-paper day embedded and classified from scratch, model load included;
* the peak RSS of ``digest run --date DAY`` (a separate process, fresh store, against ``digest replay`` running in
  yet another process so the corpus it holds is not counted), and whether torch was imported by it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from digest.models import Paper
from digest.relevance.classify import score
from digest.relevance.embed import OnnxEncoder, encoder_files, paper_text
from digest.relevance.model import PACKAGED_MODEL, RelevanceModel
from digest.replay.data import corpus, corpus_by_day, default_shared

BIN = Path(sys.executable).parent


def whole_run(day: dt.date, tmp: Path) -> tuple[float, float, str]:
    """(peak RSS MB of `digest run`, its wall seconds, its report line)."""
    replay = subprocess.Popen([str(BIN / "digest"), "replay", "--day", day.isoformat(), "--port", "8795", "--llm-port", "8796"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        time.sleep(4)
        env = {**os.environ, "DIGEST_ARXIV_RSS_URL": "http://127.0.0.1:8795/rss/",
               "DIGEST_ARXIV_API_URL": "http://127.0.0.1:8795/api/query", "DIGEST_ARXIV_DELAY_SECONDS": "0",
               "DIGEST_LLM_BASE_URL": "http://127.0.0.1:8796/v1", "DIGEST_TRANSLATE_FALLBACK": "none",
               "DIGEST_DB_URL": f"sqlite:///{tmp}/d.db", "DIGEST_OUTPUT_DIR": str(tmp / "out"),
               "PYTHONPROFILEIMPORTTIME": "1"}  # fmt: skip
        t = time.perf_counter()
        res = subprocess.run([str(BIN / "digest"), "run", "--date", day.isoformat()], env=env,
                             capture_output=True, text=True, timeout=900)  # fmt: skip
        wall = time.perf_counter() - t
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        torch = "torch imported" if "| torch" in res.stderr else "no torch"
        return peak, wall, (res.stdout.strip().splitlines() or ["?"])[0] + f"  [{torch}]"
    finally:
        replay.terminate()
        replay.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--papers", type=int, default=1000)
    ap.add_argument("--day", type=dt.date.fromisoformat, default=dt.date(2026, 6, 2))
    ap.add_argument("--no-run", action="store_true", help="skip the whole-run memory measurement")
    args = ap.parse_args()
    shared = default_shared()
    if not args.no_run:
        with tempfile.TemporaryDirectory() as tmp:
            peak, wall, line = whole_run(args.day, Path(tmp))
        print(f"whole `digest run --date {args.day}` (fresh store, stand-in LLM): {wall:.1f} s, peak RSS {peak:.0f} MB")
        print(f"  {line}")
    day = [Paper(id=p["id"], title=p["title"], abstract=p["abstract"]) for p in corpus_by_day(shared)[args.day.isoformat()]]
    t = time.perf_counter()
    model = RelevanceModel.load(PACKAGED_MODEL)
    enc = OnnxEncoder(encoder_files(model.embedder))
    emb = enc.embed([paper_text(p.title, p.abstract) for p in day])
    rel = score(day, model, emb)
    cold = time.perf_counter() - t
    print(f"cold day {args.day}: {len(day)} papers embedded and classified in {cold:.1f} s (model + encoder load "
          f"included); {sum(r.relevant for r in rel)} relevant")  # fmt: skip
    papers = [Paper(id=p["id"], title=p["title"], abstract=p["abstract"]) for p in list(corpus(shared).values())[: args.papers]]
    t = time.perf_counter()
    model = RelevanceModel.load(PACKAGED_MODEL)
    load = time.perf_counter() - t
    texts = [paper_text(p.title, p.abstract) for p in papers]
    t = time.perf_counter()
    emb = enc.embed(texts)
    emb_s = time.perf_counter() - t
    t = time.perf_counter()
    scores = model.topic_scores([p.title for p in papers], [p.abstract for p in papers], emb)
    score_s = time.perf_counter() - t
    t = time.perf_counter()
    model.neighbours(emb, [model.topics[int(s.argmax())] for s in scores])
    neigh_s = time.perf_counter() - t
    print(f"cpus: {os.cpu_count()}; encoder {model.embedder}; topics {', '.join(model.topics)}; threshold {model.threshold:.3f}")
    print(f"relevance model load: {load * 1000:.0f} ms")
    print(f"embedding ({len(papers)} papers, 256 word pieces): {emb_s:.1f} s, {len(papers) / emb_s:.1f} papers/s")
    print(f"scoring (TF-IDF + heads): {score_s * 1000:.0f} ms, {len(papers) / score_s:,.0f} papers/s; "
          f"neighbours: {neigh_s * 1000:.0f} ms, {len(papers) / neigh_s:,.0f} papers/s")
    print(f"peak RSS of this bench process (holds the 39k-paper corpus): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
