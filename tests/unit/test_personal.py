"""Personal models (pure): a reader's votes move the papers like them, and only that reader's; a vote decides its
own paper; a reader without votes gets the topic decision."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np

from digest.relevance import personal
from digest.store import Vote

TOPICS = ("clip", "editing")
THR = np.array([0.5, 0.5])


def cluster(rng: np.random.Generator, centre: np.ndarray, n: int) -> np.ndarray:
    x = centre + 0.15 * rng.standard_normal((n, len(centre)))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def world(seed: int = 0) -> tuple[personal.Pool, np.ndarray, np.ndarray, np.ndarray]:
    """Two kinds of paper the topic model both keeps (clusters A and B), and kind C it drops."""
    rng = np.random.default_rng(seed)
    d = 16
    a, b, c = (np.eye(d)[i] for i in range(3))
    emb = np.vstack([cluster(rng, a, 60), cluster(rng, b, 60), cluster(rng, c, 60)])
    scores = np.zeros((180, 2))
    scores[:120, 0] = 0.8  # A and B: relevant to clip
    scores[120:, 0] = 0.3  # C: not
    scores[:, 1] = 0.1
    ids = [f"2601.{i:05d}" for i in range(180)]
    anchors = np.array([i for i in range(180) if i % 3 == 0])
    return personal.Pool(ids, emb, scores, anchors), emb, scores, np.array([s[0] >= 0.5 for s in scores])


def test_without_votes_a_reader_gets_the_topic_decision() -> None:
    pool, emb, scores, topic_in = world()
    prof = personal.fit_profiles(TOPICS, THR, {}, {}, pool)
    d = personal.decide(prof, "ana@x.org", pool.ids, emb, scores, list(topic_in))
    assert d.ids == [i for i, t in zip(pool.ids, topic_in, strict=True) if t] and not d.came_in and not d.left
    assert len(d.learn) == personal.LEARN and personal.summary_line(d) == ""


def test_down_votes_on_one_kind_take_that_kind_out_for_that_reader_only() -> None:
    pool, emb, scores, topic_in = world()
    ids = pool.ids
    votes = {"ana@x.org": {ids[i]: "down" for i in range(1, 30, 3)}}  # 10 papers of kind A (not anchors)
    prof = personal.fit_profiles(TOPICS, THR, votes, {}, pool)
    fresh = [i for i in range(180) if i % 3 == 2]  # papers never voted on, never anchors
    sub = [ids[i] for i in fresh]
    d = personal.decide(prof, "ana@x.org", sub, emb[fresh], scores[fresh], list(topic_in[fresh]))
    kept = set(d.ids)
    a_kept = sum(ids[i] in kept for i in fresh if i < 60)
    b_kept = sum(ids[i] in kept for i in fresh if 60 <= i < 120)
    assert a_kept <= 2 and b_kept == 20, (a_kept, b_kept)  # kind A leaves, kind B stays
    other = personal.decide(prof, "bo@x.org", sub, emb[fresh], scores[fresh], list(topic_in[fresh]))
    assert other.ids == [ids[i] for i in fresh if topic_in[i]]  # bo never voted: unchanged
    assert "left your digest" in personal.summary_line(d) and len(d.left) >= 18


def test_up_votes_bring_a_dropped_kind_in_capped_per_day() -> None:
    pool, emb, scores, topic_in = world()
    ids = pool.ids
    votes = {"bo@x.org": {ids[i]: "up" for i in range(121, 150, 3)}}  # 10 papers of kind C
    prof = personal.fit_profiles(TOPICS, THR, votes, {}, pool)
    fresh = [i for i in range(180) if i % 3 == 2]
    sub = [ids[i] for i in fresh]
    d = personal.decide(prof, "bo@x.org", sub, emb[fresh], scores[fresh], list(topic_in[fresh]), max_extra=5)
    assert len(d.came_in) == 5 and all(ids.index(i) >= 120 for i in d.came_in)
    assert set(d.ids) >= {ids[i] for i in fresh if topic_in[i]}


def test_a_vote_decides_its_own_paper_whatever_the_head_says() -> None:
    pool, emb, scores, topic_in = world()
    ids = pool.ids
    votes = {"ana@x.org": {ids[0]: "down", ids[130]: "up"}}
    prof = personal.fit_profiles(TOPICS, THR, votes, {}, pool)
    d = personal.decide(prof, "ana@x.org", ids, emb, scores, list(topic_in))
    assert ids[0] not in d.ids and ids[130] in d.ids
    assert ids[0] not in d.learn and ids[130] not in d.learn  # already voted: nothing to learn there


def test_reader_votes_latest_wins_and_operator_votes_are_not_a_readers() -> None:
    t = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    vs = [
        Vote(paper_id="2601.00001", vote="up", who="ana@x.org", created=t),
        Vote(paper_id="2601.00001", topic="clip", vote="down", who="ana@x.org", created=t + dt.timedelta(1)),
        Vote(paper_id="2601.00002", vote="down", who="", created=t),
        Vote(paper_id="2601.00003", vote="down", who="web", created=t),
    ]
    assert personal.reader_votes(vs) == {"ana@x.org": {"2601.00001": "down"}}


def test_replay_predicts_each_vote_from_the_votes_before_it() -> None:
    pool, _emb, _scores, _ = world()
    ids = pool.ids
    seq = [(ids[i], "down") for i in range(1, 40, 3)]  # kind A, over and over
    got = personal.replay(pool, TOPICS, THR, None, seq)
    assert len(got) == len(seq) and got[0][1] > 0  # the first is the topic model's guess: in
    assert sum(z < 0 for _, z in got[3:]) >= len(got) - 4  # after a few votes, the next ones are predicted


def test_auc() -> None:
    assert personal.auc([1, 0, 1, 0], [0.9, 0.1, 0.8, 0.2]) == 1.0
    assert personal.auc([1, 0], [0.1, 0.9]) == 0.0
    assert personal.auc([1, 0], [0.5, 0.5]) == 0.5
    assert math.isnan(personal.auc([1, 1], [0.5, 0.4]))


def test_a_topic_down_vote_takes_the_paper_out_of_every_topic_that_keeps_it() -> None:
    """The web 👎 under `clip` on a paper the `editing` head also kept used to leave it in the digest."""
    from digest.relevance.votes import vote_targets

    t = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    vs = [
        Vote(paper_id="2606.00080", topic="clip", vote="down", who="web", created=t),
        Vote(paper_id="2606.00081", topic="clip", vote="up", who="web", created=t),
    ]
    passing = {"2606.00080": ["clip", "editing"], "2606.00081": ["editing"]}
    got = vote_targets(vs, list(TOPICS), {}, passing)
    assert got["2606.00080"] == {"clip": 0, "editing": 0}
    assert got["2606.00081"] == {"clip": 1}  # a 👍 says yes for its topic, nothing about the others
    assert vote_targets(vs, list(TOPICS), {})["2606.00080"] == {"clip": 0}


def test_the_days_extra_papers_are_the_most_wanted_first_within_the_cap() -> None:
    def dec(ids: list[str], came_in: list[str]) -> personal.Decision:
        return personal.Decision(ids=ids, came_in=came_in, left=[], learn=[], votes=3)

    decided = {
        "ana@x.org": dec(["s1", "e1", "e2"], ["e1", "e2"]),
        "bo@x.org": dec(["e2", "e3"], ["e2", "e3"]),
        "cy@x.org": dec(["e2", "s2", "e4"], ["e2", "s2", "e4"]),  # s2: another topic's shared paper
    }
    shared = {"s1", "s2"}
    assert personal.wanted_extras(decided, shared, 10) == ["e2", "e1", "e3", "e4"]  # 3 readers, then rank, then id
    assert personal.wanted_extras(decided, shared, 2) == ["e2", "e1"]
    assert personal.wanted_extras(decided, shared, 0) == []
