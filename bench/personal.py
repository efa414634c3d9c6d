"""Personal models on simulated readers: does a reader's head learn them, does it cost the others, how fast is it.

Usage: python bench/personal.py [--readers 40] [--votes 50] [--scale 1000] [--grid]

The shipped base data (5,300 labelled papers: embeddings and TF-IDF rows, no text) and the shipped topic model
give every paper a topic decision. A simulated reader follows both topics but likes only part of them: the
labelled positives in 2 of 5 k-means clusters of the positives' embeddings, plus the 3 % of label-0 papers
nearest those clusters (what they would rescue from "the rest of the day"). Papers are split in time (arXiv id
order): the reader votes on the first 70 % as they would on their editions — 👍 on shown papers they like, 👎 on
shown papers they do not, and 👍 on a few liked papers from the rest of the day — up to ``--votes`` votes; their
head is judged on the last 30 % against what they like: F1 of the topic decision alone vs. their personal
decision, and the replayed-vote accuracy / AUC (each vote predicted by the head fitted on the votes before it).
``--scale`` times the refit of that many readers with ``--votes`` votes each (the start of every run), and the
memory it takes. ``--grid`` tries the weights around the shipped ones.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from digest.relevance import personal
from digest.relevance.model import PACKAGED_MODEL, RelevanceModel, metrics
from digest.relevance.votes import Base, base_path


def kmeans(x: np.ndarray, k: int, rng: np.random.Generator, iters: int = 30) -> np.ndarray:
    c = x[rng.choice(len(x), k, replace=False)]
    for _ in range(iters):
        lab = np.argmax(x @ c.T, axis=1)
        c = np.stack([x[lab == j].mean(axis=0) if (lab == j).any() else c[j] for j in range(k)])
        c /= np.linalg.norm(c, axis=1, keepdims=True)
    return c


def simulate(
    args: argparse.Namespace, w_vote: float, w_anchor: float, l2: float, say: bool, replay: bool = True
) -> dict[str, float]:
    model = RelevanceModel.load(PACKAGED_MODEL)
    base = Base(base_path(PACKAGED_MODEL))
    order = np.argsort(np.array(base.ids))  # arXiv ids sort in time
    ids = [base.ids[i] for i in order]
    emb = base.emb[order]
    z = np.tile(model.intercept, (len(ids), 1)) + np.asarray(base.x[order] @ model.coef_tfidf.T) + emb @ model.coef_emb.T
    scores = 1 / (1 + np.exp(-z))
    thr = model.thresholds()
    topic_in = (scores >= thr).any(axis=1)
    label = base.label[order] >= 1
    cut = int(len(ids) * 0.7)
    pool = personal.Pool(ids, emb, scores, np.arange(0, cut))
    rng = np.random.default_rng(7)
    pos = np.where(label)[0]
    cents = kmeans(emb[pos] / np.linalg.norm(emb[pos], axis=1, keepdims=True), 5, rng)
    near = np.argmax(emb @ cents.T, axis=1)
    sims = emb @ cents.T
    old = (personal.W_VOTE, personal.W_ANCHOR, personal.L2)
    personal.W_VOTE, personal.W_ANCHOR, personal.L2 = w_vote, w_anchor, l2
    f_topic, f_mine, accs, aucs = [], [], [], []
    try:
        for r in range(args.readers):
            mine = rng.choice(5, 2, replace=False)
            likes = label & np.isin(near, mine)
            neg = np.where(~label)[0]
            close = neg[np.argsort(-sims[neg][:, mine].max(axis=1))[: int(0.03 * len(neg))]]
            likes[close] = True
            votes: dict[str, str] = {}
            seen = rng.permutation(cut)
            for i in seen:
                if len(votes) >= args.votes:
                    break
                if topic_in[i]:
                    votes[ids[i]] = "up" if likes[i] else "down"
                elif likes[i] and rng.random() < 0.3:
                    votes[ids[i]] = "up"
            prof = personal.fit_profiles(model.topics, thr, {"r": votes}, {"r": None}, pool, seed=r)
            test = np.arange(cut, len(ids))
            dec = personal.decide(prof, "r", [ids[i] for i in test], emb[test], scores[test], list(topic_in[test]),
                                  max_extra=10_000)  # fmt: skip
            chosen = np.isin([ids[i] for i in test], dec.ids)
            f_topic.append(metrics(likes[test].astype(int), topic_in[test])["f1"])
            f_mine.append(metrics(likes[test].astype(int), chosen)["f1"])
            if replay and r < 8:  # the replay refits once per vote: a few readers are enough
                seq = [(k, v) for k, v in votes.items()]
                got = personal.replay(pool, model.topics, thr, None, seq)
                accs.append(np.mean([(b >= 0) == bool(a) for a, b in got]))
                aucs.append(personal.auc([a for a, _ in got], [b for _, b in got]))
    finally:
        personal.W_VOTE, personal.W_ANCHOR, personal.L2 = old
    out = {"f1_topic": float(np.mean(f_topic)), "f1_personal": float(np.mean(f_mine)),
           "replay_accuracy": float(np.mean(accs)) if accs else float("nan"),
           "replay_auc": float(np.nanmean(aucs)) if aucs else float("nan")}  # fmt: skip
    if say:
        print(f"W_VOTE={w_vote} W_ANCHOR={w_anchor} L2={l2}: " + ", ".join(f"{k} {v:.3f}" for k, v in out.items()))
    return out


def scale(n: int, votes: int) -> None:
    model = RelevanceModel.load(PACKAGED_MODEL)
    base = Base(base_path(PACKAGED_MODEL))
    z = np.tile(model.intercept, (len(base.ids), 1)) + np.asarray(base.x @ model.coef_tfidf.T) + base.emb @ model.coef_emb.T
    scores = 1 / (1 + np.exp(-z))
    thr = model.thresholds()
    rng = np.random.default_rng(1)
    anchors = np.arange(1500)
    pool = personal.Pool(base.ids, base.emb, scores, anchors)
    voted = {f"r{i}@example.org": {base.ids[j]: ("up" if rng.random() < 0.4 else "down")
                                   for j in rng.choice(np.arange(1500, len(base.ids)), votes, replace=False)}
             for i in range(n)}  # fmt: skip
    t0 = time.perf_counter()
    prof = personal.fit_profiles(model.topics, thr, voted, {}, pool)
    dt = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"refit {len(prof.heads)} readers x {votes} votes: {dt:.2f} s ({1000 * dt / n:.1f} ms per reader); "
          f"peak RSS of this process {rss:.0f} MB")  # fmt: skip


def operator_votes(n_votes: int = 200, weights: tuple[float, ...] = (1.0, 3.0, 5.0, 20.0)) -> None:
    """The topic model retrained with operator votes simulated from held-out labels, on the time split: heads fit on
    the labels up to 2025-12 (+ the votes), F1 on the 2026-01…03 papers that were not voted on, at the shipped
    threshold. A vote is the label: 👍 under the paper's labelled topics, 👎 for any topic."""
    from digest.relevance.model import Targets, fit_heads

    model = RelevanceModel.load(PACKAGED_MODEL)
    base = Base(base_path(PACKAGED_MODEL))
    ids = np.array(base.ids)
    train = np.where(ids < "2601")[0]
    split = np.where(ids >= "2601")[0]
    rng = np.random.default_rng(3)
    for trial in range(3):
        voted = rng.choice(split, n_votes, replace=False)
        held = np.setdiff1d(split, voted)

        def f1_with(
            rows: np.ndarray, w: np.ndarray, held: np.ndarray = held, voted: np.ndarray = voted
        ) -> tuple[float, float]:
            y = base.y[rows].astype(np.int8)
            votes = np.arange(len(rows)) >= len(train)
            up = votes & (base.label[rows] >= 1)
            y[up] = np.where(y[up] == 1, 1, -1)  # a 👍 says yes for its topic, nothing about the others
            ct, ce, b = fit_heads(base.x[rows], base.emb[rows], Targets(y, w), model.params)
            def decided(r: np.ndarray) -> np.ndarray:
                z = b + np.asarray(base.x[r] @ ct.T) + base.emb[r] @ ce.T
                return (1 / (1 + np.exp(-z))).max(axis=1) >= model.threshold

            f1 = float(metrics((base.label[held] >= 1).astype(int), decided(held))["f1"])
            return f1, float(np.mean(decided(voted) == (base.label[voted] >= 1)))

        nt = len(model.topics)
        before, follow = f1_with(train, np.ones((len(train), nt), np.float32))
        line = [f"trial {trial}: no votes F1 {before:.3f} (voted papers decided as voted {follow:.0%})"]
        for wv in weights:
            rows = np.concatenate([train, voted])
            w = np.ones((len(rows), nt), np.float32)
            w[len(train):] = wv
            f1, follow = f1_with(rows, w)
            line.append(f"W={wv:g} F1 {f1 - before:+.3f} ({follow:.0%})")
        print("operator votes, time split: " + ", ".join(line))


def whole_run_with_readers(readers: int, votes: int, first: str, day: str) -> None:
    """Peak RSS and wall time of `digest run --date DAY` with ``readers`` subscribers who each voted ``votes`` times
    on the papers of FIRST (run before, in the same fresh store): the refit, the readers' parts and their extra
    papers included."""
    import datetime as dt
    import os
    import subprocess
    import tempfile

    from digest.store import Store, Vote

    bin_ = Path(sys.executable).parent
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "DIGEST_ARXIV_RSS_URL": "http://127.0.0.1:8795/rss/",
               "DIGEST_ARXIV_API_URL": "http://127.0.0.1:8795/api/query", "DIGEST_ARXIV_DELAY_SECONDS": "0",
               "DIGEST_LLM_BASE_URL": "http://127.0.0.1:8796/v1", "DIGEST_TRANSLATE_FALLBACK": "none",
               "DIGEST_DB_URL": f"sqlite:///{tmp}/d.db", "DIGEST_OUTPUT_DIR": f"{tmp}/out"}  # fmt: skip

        def run(d: str, extra: dict[str, str]) -> tuple[float, float, str]:
            replay = subprocess.Popen([str(bin_ / "digest"), "replay", "--day", d, "--port", "8795", "--llm-port",
                                       "8796"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
            try:
                time.sleep(4)
                code = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
                        "r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
                        "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024);"
                        "print(r.stdout.strip().splitlines()[0] if r.stdout.strip() else r.stderr[-300:])")  # fmt: skip
                res = subprocess.run([sys.executable, "-c", code, str(bin_ / "digest"), "run", "--date", d],
                                     env={**env, **extra}, capture_output=True, text=True, timeout=1800)  # fmt: skip
                head, line = res.stdout.split("\n", 1)
                wall, peak = (float(x) for x in head.split())
                return wall, peak, line.strip()
            finally:
                replay.terminate()
                replay.wait(timeout=30)

        print("first day:", run(first, {})[2])
        store = Store(env["DIGEST_DB_URL"])
        ids = [p.id for p in store.papers_of_day(dt.date.fromisoformat(first))]
        rng = np.random.default_rng(5)
        addresses = [f"reader{i}@example.org" for i in range(readers)]
        store.add_votes([Vote(paper_id=ids[j], vote="up" if rng.random() < 0.4 else "down", who=a, source="email")
                         for a in addresses for j in rng.choice(len(ids), min(votes, len(ids)), replace=False)])  # fmt: skip
        store.close()
        wall, peak, line = run(day, {"DIGEST_EMAIL_TO": ",".join(addresses)})
        print(f"`digest run --date {day}` with {readers} readers x {votes} votes: {wall:.1f} s, peak RSS {peak:.0f} MB")
        print(f"  {line}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--readers", type=int, default=40)
    ap.add_argument("--votes", type=int, default=50)
    ap.add_argument("--scale", type=int, default=1000)
    ap.add_argument("--grid", action="store_true")
    ap.add_argument("--operator", action="store_true", help="the operator-vote weight experiment (time split)")
    ap.add_argument("--run", nargs=2, metavar=("FIRST", "DAY"), help="a whole run of DAY with --scale readers who "
                    "voted on FIRST's papers: its peak RSS and time")  # fmt: skip
    args = ap.parse_args()
    if args.run:
        whole_run_with_readers(args.scale, args.votes, *args.run)
        return
    if args.operator:
        operator_votes()
        return
    if args.grid:
        for wv in (4.0, 16.0, 32.0, 64.0):
            for l2 in (0.5, 1.0):
                simulate(args, wv, personal.W_ANCHOR, l2, True, replay=False)
    simulate(args, personal.W_VOTE, personal.W_ANCHOR, personal.L2, True)
    if args.scale:
        scale(args.scale, args.votes)


if __name__ == "__main__":
    main()
