"""The summarise stage: one validated structured call per paper, concurrent, cached, claimed, with fallbacks.

Per paper: a final cached summary → done (no call). Otherwise, with an LLM configured: claim the call in
the store (no other process pays for the same paper, version, model and prompt), call → validate → one
repair call quoting the problems → fallback (extractive English TL;DR + machine translation, marked). A
run-wide circuit breaker stops calling once the endpoint is clearly down (a dead endpoint costs about a
minute, not five); the papers not called keep an unreachable-fallback that the next run replaces. One
paper's slowness or failure never blocks another: calls run in a bounded thread pool, each under its
own deadline.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from digest.config import Settings
from digest.errors import mask_secrets
from digest.llm.cache import Route, best_stored, is_final
from digest.llm.client import ChatClient, ChatRefused, ChatUnavailable
from digest.llm.fallback import Probe, Translator, first_sentence
from digest.llm.mask import Masked, decode_answer, mask, unmask
from digest.llm.prompts import Prompts
from digest.llm.validate import cjk_ratio, validate
from digest.models import Paper, Summary, SummaryFields, SummaryStats, SummaryStatus, SummaryTier
from digest.retry import Breaker, GaveUp, RetryPolicy
from digest.store import Store
from digest.text import strip_unsafe

log = logging.getLogger(__name__)
Tick = Callable[[Summary | None], None]


def cost_of(settings: Settings, tokens_in: int, tokens_out: int) -> float:
    price = settings.price(settings.llm_model)
    if price is None:
        return 0.0
    return round(tokens_in / 1e6 * price[0] + tokens_out / 1e6 * price[1], 8)


#: characters of a title / an abstract sent to the LLM (real cs.CV abstracts stay under 2,500)
MAX_PROMPT_TITLE = 500
MAX_PROMPT_ABSTRACT = 6000


@dataclass
class Summariser:
    """Everything one run's summaries need; built once per run from the providers."""

    settings: Settings
    store: Store
    prompts: Prompts
    chat: ChatClient | None
    translator: Translator | None
    owner: str = ""

    def __post_init__(self) -> None:
        llm = self.chat is not None
        self.route = Route(self.chat.model, self.prompts.hash(self.settings)) if llm and self.chat else Route()
        self.breaker = Breaker(self.settings.llm_breaker)
        self.probe = Probe(self.translator)
        self.owner = self.owner or f"{socket.gethostname()}:{os.getpid()}"
        s = self.settings
        self.policy = RetryPolicy(tries=s.llm_max_tries, backoff=s.llm_backoff_seconds, deadline=s.llm_deadline)

    # --- cache -----------------------------------------------------------------------------
    def cached(self, papers: Sequence[Paper]) -> dict[int, Summary]:
        """Index → final stored summary, for the papers that need no work."""
        stored = self.store.summaries_of([(p.id, p.version) for p in papers])
        out: dict[int, Summary] = {}
        for i, p in enumerate(papers):
            best = best_stored(stored[(p.id, p.version)], self.route)
            if best is None:
                best = self._previous_version(p)
            if best is not None and is_final(best, self.route, self.probe, self.settings.llm_max_attempts):
                out[i] = best
        return out

    def _previous_version(self, p: Paper) -> Summary | None:
        prev = self.store.previous_version_unchanged(p)  # a new version with the same text reuses the summary
        if prev is None:
            return None
        old = best_stored(self.store.summaries_of([(p.id, prev)])[(p.id, prev)], self.route)
        if old is None:
            return None
        hit = old.model_copy(update={"version": p.version, "tokens_in": 0, "tokens_out": 0, "cost": 0.0})
        self.store.save_summary(hit)
        return hit

    # --- one paper ---------------------------------------------------------------------------
    def fallback(self, paper: Paper, reason: str, tokens: tuple[int, int] = (0, 0), answered: bool = False) -> Summary:
        tldr_en = first_sentence(paper.abstract) or paper.title
        base = {
            "id": paper.id,
            "version": paper.version,
            "tldr_en": tldr_en,
            "model": self.route.model,
            "prompt_hash": self.route.prompt_hash,
            "llm_answered": answered,
            "tokens_in": tokens[0],
            "tokens_out": tokens[1],
            "cost": cost_of(self.settings, *tokens) if self.route.llm else 0.0,
            "status": SummaryStatus.fallback if self.route.llm else SummaryStatus.ok,
        }
        if self.translator is not None and (self.route.llm or self.probe()):
            try:
                title_zh = self.translator.translate(paper.title)
                tldr_zh = self.translator.translate(tldr_en)
                abstract_zh = self.translator.translate(paper.abstract)
                if min(cjk_ratio(title_zh + tldr_zh), cjk_ratio(abstract_zh)) < 0.2:
                    raise ValueError("translator answered in the wrong language")
                return Summary(
                    **base,
                    title_zh=title_zh,
                    tldr_zh=tldr_zh,
                    abstract_zh=abstract_zh,
                    tier=SummaryTier.translated,
                    backend=self.translator.name,
                    reason=reason,
                )
            except Exception as exc:  # network, timeout, bad answer: a marked extractive summary, never a crash
                why = mask_secrets(f"{exc.__class__.__name__}: {str(exc)[:120]}", self.settings.secrets())
                reason = f"{reason}; translation unavailable ({why})".lstrip("; ")
        else:
            reason = f"{reason}; translation unavailable".lstrip("; ")
        return Summary(**base, tier=SummaryTier.extractive, backend="extractive", reason=reason)

    def _ask(self, messages: list[dict[str, str]], deadline: float, paper_id: str) -> tuple[str, int, int]:
        assert self.chat is not None
        chat = self.chat

        def once() -> tuple[str, int, int]:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise GaveUp("deadline", 0)
            try:
                reply = chat.complete(messages, min(self.settings.llm_timeout, remaining))
            except ChatUnavailable as exc:
                if not exc.live:  # a 429 or 5xx is a live endpoint having a bad moment: retried, never the breaker
                    self.breaker.failure(exc.reason)
                raise
            self.breaker.success()
            return reply.content, reply.tokens_in, reply.tokens_out

        policy = RetryPolicy(self.policy.tries, self.policy.backoff, deadline=max(0.0, deadline - time.monotonic()))
        return policy.call(once, f"LLM {paper_id}", breaker=self.breaker)

    def earlier_rejected(self, paper: Paper) -> Summary | None:
        """This key's stored summary when the LLM answered and every answer so far was rejected (to ask again)."""
        key = (paper.id, paper.version)
        stored = best_stored(self.store.summaries_of([key])[key], self.route)
        if stored is None or not stored.llm_answered or stored.tier == SummaryTier.llm:
            return None
        return stored

    def llm_one(self, paper: Paper, earlier: Summary | None = None) -> tuple[Summary, int]:
        """(summary, requests made). Never raises for a per-paper problem. ``earlier``: this key's rejected
        summary from an earlier run — its problems are quoted in the first call, and its attempts counted."""
        deadline = time.monotonic() + self.settings.llm_deadline
        before = max(earlier.attempts, 1) if earlier is not None else 0
        quoted = _problems_of(earlier.reason) if earlier is not None else []
        # bounded before the prompt: a 1 MB "abstract" must not become a 326k-token request
        title, abstract = mask(paper.title[:MAX_PROMPT_TITLE]), mask(paper.abstract[:MAX_PROMPT_ABSTRACT], start=100)
        tin = tout = requests = 0
        errors: list[str] = []
        answered = False
        attempt, garbled, second_wind = 0, 0, False
        prior: list[str] = []
        while attempt < 2:  # the call, then one repair call quoting the validation errors
            if self.breaker.open:
                errors = [f"LLM endpoint unreachable ({self.breaker.last})"]
                break
            requests += 1
            messages = self.prompts.messages(title.text, abstract.text, prior if attempt else (quoted or None))
            try:
                raw, t_in, t_out = self._ask(messages, deadline, paper.id)
            except ChatRefused as exc:
                errors = [f"LLM: {exc}"]
                break
            except GaveUp as exc:
                errors = [f"LLM: {exc}"]
                pause = self.policy.backoff * 4
                if second_wind or self.breaker.open or deadline - time.monotonic() <= pause:
                    break
                # every try met a live endpoint's 429/5xx: its bad moments come in bursts, so after a pause the
                # request gets one more round of tries (within the paper's deadline) before the paper falls back
                second_wind = True
                time.sleep(pause)
                continue
            answered = True
            tin += t_in
            tout += t_out
            fields, errors = self._parse(raw, title, abstract)
            prior = errors
            if fields is None and not garbled and _cut_off(raw):
                garbled += 1  # cut off mid-answer (a provider's hiccup, not the model's mistake): ask the same again
                continue
            if fields is not None and attempt and errors and all("bidirectional characters" in e for e in errors):
                fields = SummaryFields(**{k: strip_unsafe(v) for k, v in fields.model_dump().items()})
                errors = validate(fields, title, abstract, self.prompts.glossary)  # asked twice: strip, accept
            if fields is not None and not errors:
                spans = {**dict(enumerate(title.spans)), **{100 + i: s for i, s in enumerate(abstract.spans)}}
                return Summary(
                    id=paper.id,
                    version=paper.version,
                    tldr_en=unmask(fields.tldr_en, spans),
                    title_zh=unmask(fields.title_zh, spans),
                    tldr_zh=unmask(fields.tldr_zh, spans),
                    abstract_zh=unmask(fields.abstract_zh, spans),
                    tier=SummaryTier.llm,
                    status=SummaryStatus.ok,
                    backend=f"llm:{self.route.model}",
                    model=self.route.model,
                    prompt_hash=self.route.prompt_hash,
                    llm_answered=True,
                    tokens_in=tin,
                    tokens_out=tout,
                    cost=cost_of(self.settings, tin, tout),
                    reason="repaired" if attempt or quoted else "",
                    attempts=before + 1,
                ), requests
            attempt += 1
        verb = "rejected" if answered else "unavailable"
        # upstream text may quote the key back (a gateway's 422): masked before it is stored, logged or shown
        reason = mask_secrets(f"LLM answer {verb}: " + "; ".join(errors)[:500], self.settings.secrets())
        log.warning("%s: %s", paper.id, reason)
        s = self.fallback(paper, reason, (tin, tout), answered or earlier is not None)
        return s.model_copy(update={"attempts": before + (1 if answered else 0)}), requests

    def _parse(self, raw: str, title: Masked, abstract: Masked) -> tuple[SummaryFields | None, list[str]]:
        try:
            data = json.loads(_strip_fences(raw))
            if isinstance(data, dict):
                data = {k: decode_answer(v) if isinstance(v, str) else v for k, v in data.items()}
            fields = SummaryFields.model_validate(data)
        except (json.JSONDecodeError, ValidationError) as exc:
            if isinstance(exc, ValidationError):
                errs = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'answer'}: {e['msg']}" for e in exc.errors()[:4])
            else:
                errs = f"not JSON ({exc.msg})"
            return None, [f"answer is not the JSON object asked for ({errs})"]
        return fields, validate(fields, title, abstract, self.prompts.glossary)

    # --- the stage ---------------------------------------------------------------------------
    def run(self, papers: Sequence[Paper], tick: Tick | None = None, force: bool = False) -> SummaryStats:
        t0 = time.perf_counter()
        stats = SummaryStats(papers=len(papers))
        hits = {} if force else self.cached(papers)
        results: dict[int, Summary] = dict(hits)
        stats.cached = len(hits)
        for s in hits.values():
            if tick:
                tick(s)
        todo = [i for i in range(len(papers)) if i not in hits]
        busy: list[int] = []

        def done(i: int, s: Summary, nreq: int) -> None:
            self.store.save_summary(s)
            if s.status == SummaryStatus.fallback and not stats.first_error and s.reason:
                stats.first_error = s.reason.split("; translation unavailable")[0][:200]
            results[i] = s
            stats.requests += nreq
            stats.called += 1 if nreq else 0
            stats.called_ok += 1 if nreq and s.tier == SummaryTier.llm else 0
            stats.tokens_in += s.tokens_in
            stats.tokens_out += s.tokens_out
            stats.cost += s.cost
            if tick:
                tick(s)

        if not self.route.llm:
            for i in todo:
                done(i, self.fallback(papers[i], ""), 0)
        else:
            self._with_llm(papers, todo, busy, done, stats)
            if busy:
                self._await_others(papers, busy, done, results, stats, tick)
        for s in results.values():
            stats.ok += s.status == SummaryStatus.ok
            stats.fallback += s.status == SummaryStatus.fallback
            stats.backends[s.backend] = stats.backends.get(s.backend, 0) + 1
        stats.cost = round(stats.cost, 8)
        stats.seconds = round(time.perf_counter() - t0, 3)
        return stats

    def _with_llm(
        self,
        papers: Sequence[Paper],
        todo: list[int],
        busy: list[int],
        done: Callable[[int, Summary, int], None],
        stats: SummaryStats,
    ) -> None:
        claim_for = self.settings.llm_deadline + 60

        def work(i: int) -> tuple[Summary, int] | None:
            p = papers[i]
            if self.breaker.open:
                stats.skipped_breaker += 1
                return self.fallback(p, f"LLM endpoint unreachable ({self.breaker.last}); not called"), 0
            key = self.route.key(p.id, p.version)
            if not self.store.claim_call(key, self.owner, claim_for):
                return None  # another process is paying for this paper right now
            try:
                return self.llm_one(p, earlier.get(i))
            finally:
                self.store.release_call(key, self.owner)

        earlier = {i: s for i in todo if (s := self.earlier_rejected(papers[i])) is not None}
        stats.reasked = len(earlier)

        pool = cf.ThreadPoolExecutor(max_workers=self.settings.llm_concurrency, thread_name_prefix="llm")
        try:
            futs = {pool.submit(work, i): i for i in todo}
            for fut in cf.as_completed(futs):
                i = futs[fut]
                try:
                    res = fut.result()
                except Exception as exc:  # a bug for one paper must not lose the others
                    log.exception("summary of %s crashed", papers[i].id)
                    res = self.fallback(papers[i], f"internal error: {exc.__class__.__name__}"), 0
                if res is None:
                    busy.append(i)
                else:
                    done(i, *res)
        except BaseException:  # interrupted (SIGTERM/SIGINT): no new calls; those in flight end within their timeout
            self.breaker.trip("interrupted")
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)

    def _await_others(
        self,
        papers: Sequence[Paper],
        busy: list[int],
        done: Callable[[int, Summary, int], None],
        results: dict[int, Summary],
        stats: SummaryStats,
        tick: Tick | None,
    ) -> None:
        """Papers another process claimed: wait for its result (or its claim to lapse, then do them here)."""
        until = time.monotonic() + self.settings.llm_deadline + 90
        left = list(busy)
        while left and time.monotonic() < until:
            time.sleep(0.5)
            finished = self.cached([papers[i] for i in left])
            for j in sorted(finished, reverse=True):
                i = left.pop(j)
                results[i] = finished[j]  # the other run paid for it: cached for us
                stats.cached += 1
                if tick:
                    tick(finished[j])
            for i in list(left):
                key = self.route.key(papers[i].id, papers[i].version)
                if self.store.claim_call(key, self.owner, self.settings.llm_deadline + 60):
                    left.remove(i)
                    try:
                        done(i, *self.llm_one(papers[i], self.earlier_rejected(papers[i])))
                    finally:
                        self.store.release_call(key, self.owner)
        stats.busy = len(left)


def _strip_fences(raw: str) -> str:
    t = raw.strip()
    if t.startswith("```"):
        t = t.split("\n", 1)[1] if "\n" in t else t
        t = t.rsplit("```", 1)[0]
    if not t.startswith("{") and "{" in t and "}" in t:
        t = t[t.index("{") : t.rindex("}") + 1]
    return t


def _problems_of(reason: str) -> list[str]:
    """The validation problems an earlier rejected answer had (from its stored reason), to quote them."""
    text = reason.split("; translation unavailable")[0]
    if not text.startswith("LLM answer rejected: "):
        return []
    problems = text.removeprefix("LLM answer rejected: ").split(";")
    return [f"an earlier answer was rejected: {p.strip()}" for p in problems if p.strip()][:6]


def _cut_off(raw: str) -> bool:
    """An answer that starts as the JSON asked for and stops before its end (a truncated response)."""
    text = raw.strip()
    return text[:1] in ("{", "`") and not text.endswith(("}", "`"))
