"""The personalise stage: every reader's head refit from the store, and each reader's part of a day.

:func:`load_profiles` runs at the start of each run (and after ``digest train``): it reads the readers' latest
votes, the embeddings of the voted papers and of an anchor sample of recent papers (the store's cache), scores
them with the run's topic model, and fits :mod:`digest.relevance.personal` heads — milliseconds per reader.
:func:`extra_papers` (after classify) names the papers some reader's head adds to their edition, so the run
summarises them too (paid once, whoever asked); :func:`with_reader_parts` (when the day's digest is built) gives
each subscriber and voting reader their part: their edition, what their votes changed, and the "help me learn"
papers their model is least sure about.
"""

from __future__ import annotations

import datetime as dt
import logging
import zlib
from collections.abc import Sequence

import numpy as np

from digest.deliver import in_topics
from digest.models import Digest, LearnItem, Paper, ReaderPart, Relevance
from digest.providers import Providers
from digest.relevance import personal
from digest.relevance.embed import embed_papers
from digest.render.build import entries_for_ids
from digest.store import Store

log = logging.getLogger(__name__)
ANCHOR_DAYS = 21  # anchors: papers announced in the three weeks before the latest vote
ANCHOR_POOL = 1500


def _scores(p: Providers, papers: Sequence[Paper]) -> tuple[np.ndarray, np.ndarray]:
    emb, _ = embed_papers(papers, p.embedder, p.store)
    if not papers:
        return emb, np.zeros((0, len(p.model.topics)))
    return emb, p.model.topic_scores([x.title for x in papers], [x.abstract for x in papers], emb)


def anchor_pool(p: Providers, voted: Sequence[str]) -> personal.Pool:
    """The voted papers and an anchor sample of the papers announced before the latest of them, with their
    embeddings (the store's cache) and topic scores under the run's model."""
    vpapers = p.store.get_papers(sorted(set(voted)))
    days = [x.announced for x in vpapers if x.announced is not None]
    latest = max(days) if days else dt.date.today()
    taken = set(voted)
    recent = [x for x in p.store.papers_between(latest - dt.timedelta(days=ANCHOR_DAYS), latest) if x.id not in taken]
    if len(recent) > ANCHOR_POOL:
        rng = np.random.default_rng(zlib.crc32(latest.isoformat().encode()))
        recent = [recent[i] for i in sorted(rng.choice(len(recent), ANCHOR_POOL, replace=False))]
    papers = vpapers + recent
    emb, scores = _scores(p, papers)
    return personal.Pool([x.id for x in papers], emb, scores, np.arange(len(vpapers), len(papers)))


def load_profiles(p: Providers, readers: Sequence[str] | None = None) -> personal.Profiles:
    """Every reader's head (or just ``readers``'), refit from the store's votes and embeddings."""
    thresholds = p.model.thresholds(p.settings.relevance_threshold)
    votes = personal.reader_votes(p.store.all_votes())
    if readers is not None:
        votes = {r: v for r, v in votes.items() if r in set(readers)}
    topics = {s.address: s.topics for s in p.subscribers}
    if not votes:
        return personal.Profiles(p.model.topics, thresholds, reader_topics=topics)
    pool = anchor_pool(p, [pid for mine in votes.values() for pid in mine])
    prof = personal.fit_profiles(p.model.topics, thresholds, votes, topics, pool)
    log.info("refit %d reader model(s) in %.2f s", len(prof.heads), prof.seconds)
    return prof


def _decisions(
    prof: personal.Profiles, p: Providers, papers: Sequence[Paper], rel: dict[str, Relevance], readers: Sequence[str]
) -> tuple[dict[str, personal.Decision], np.ndarray]:
    emb, scores = _scores(p, papers)
    ids = [x.id for x in papers]
    out = {}
    for r in readers:
        wanted = prof.reader_topics.get(r)
        topic_in = [(x := rel.get(i)) is not None and x.relevant and in_topics(x, wanted) for i in ids]
        out[r] = personal.decide(prof, r, ids, emb, scores, topic_in, max_extra=p.settings.reader_extra_max)
    return out, scores


def _relevance(store: Store, papers: Sequence[Paper]) -> dict[str, Relevance]:
    got = store.get_relevance([(x.id, x.version) for x in papers])
    return {x.id: r for x in papers if (r := got.get((x.id, x.version))) is not None}


def extra_papers(day_papers: Sequence[Paper], prof: personal.Profiles, p: Providers) -> list[Paper]:
    """Papers of the day some reader's head adds beyond the topic decision (the run summarises them too): at most
    ``DIGEST_READER_EXTRA_MAX`` per reader and ``DIGEST_READER_EXTRA_DAY_MAX`` in all, the most wanted first."""
    if not prof.heads or not day_papers:
        return []
    rel = _relevance(p.store, day_papers)
    decided, _ = _decisions(prof, p, day_papers, rel, sorted(prof.heads))
    shared = {i for i, r in rel.items() if r.relevant}
    out = set(personal.wanted_extras(decided, shared, p.settings.reader_extra_day_max))
    return [x for x in day_papers if x.id in out]


def with_reader_parts(d: Digest, prof: personal.Profiles, p: Providers, only: Sequence[str] | None = None) -> Digest:
    """``d`` with each subscriber's and voting reader's part of the day (``readers``) and the entries their heads
    add beyond the shared edition (``extra``). A subscriber who never voted gets the shared edition's part.
    ``only``: just these readers (a reader's page)."""
    papers = p.store.papers_of_day(d.date)
    readers = sorted(set(prof.votes) | {s.address for s in p.subscribers})
    if only is not None:
        readers = [r for r in readers if r in set(only)] or list(only)
    if not papers or not readers:
        return d
    decided, scores = _decisions(prof, p, papers, _relevance(p.store, papers), readers)
    by_id = {x.id: (k, x) for k, x in enumerate(papers)}
    best = {e.paper.id: e.relevance.best_topic for e in d.entries if e.relevance is not None}
    shown = {e.paper.id for e in d.entries}
    parts: dict[str, ReaderPart] = {}
    for r, dec in decided.items():
        cols = prof.columns(r)

        def topic_of(i: str, cols: list[int] = cols) -> str:
            return best.get(i) or p.model.topics[cols[int(np.argmax(scores[by_id[i][0], cols]))]]

        learn = [LearnItem(id=i, title=by_id[i][1].title, abs_url=by_id[i][1].abs_url, topic=topic_of(i))
                 for i in dec.learn]  # fmt: skip
        parts[r] = ReaderPart(ids=dec.ids, came_in=dec.came_in, left=dec.left, votes=dec.votes,
                              line=personal.summary_line(dec), learn=learn, voted=prof.votes.get(r, {}))  # fmt: skip
    extra_ids = sorted({i for part in parts.values() for i in part.ids} - shown)
    extra = [e for e in entries_for_ids(extra_ids, p.store) if e.summary is not None]
    return d.model_copy(update={"readers": parts, "extra": extra})


def without_downvoted(d: Digest, p: Providers) -> Digest:
    """A multi-day edition (the weekly): each voting reader's part is the shared one minus their 👎 papers."""
    votes = personal.reader_votes(p.store.all_votes())
    subs = {s.address: s for s in p.subscribers}
    parts = {}
    for r, mine in votes.items():
        wanted = subs[r].topics if r in subs else None
        ids = [e.paper.id for e in d.entries if mine.get(e.paper.id) != "down" and in_topics(e.relevance, wanted)]
        parts[r] = ReaderPart(ids=ids, votes=len(mine), voted=mine)
    return d.model_copy(update={"readers": parts})
