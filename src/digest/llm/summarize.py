"""The summarise stage: one validated structured call per paper, concurrent, cached, with fallbacks.

Per paper: cache hit → done (no call). Otherwise call → validate → one repair call quoting the
problems → fallback (extractive English TL;DR + machine translation, status ``fallback``) → if that
fails too, status ``failed`` (the digest shows the English abstract with a note). One paper's slowness
or failure never blocks another: calls run in a bounded thread pool, each under its own deadline.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from digest.config import Settings
from digest.errors import LLMError
from digest.llm.client import ChatCaller, make_client
from digest.llm.fallback import Translate, first_sentence, google_translator
from digest.llm.prompts import Prompts, load_prompts
from digest.llm.validate import cjk_ratio, validate
from digest.models import Paper, Summary, SummaryFields, SummaryStatus
from digest.store import Store

log = logging.getLogger(__name__)

NO_LLM_MODEL = "none"


@dataclass
class SummaryStats:
    papers: int = 0
    cached: int = 0
    called: int = 0  # papers that needed at least one LLM request
    called_ok: int = 0  # … of which the LLM's answer was accepted
    requests: int = 0
    ok: int = 0
    fallback: int = 0
    failed: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    backends: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        return (
            f"papers {self.papers}, cached {self.cached}, called {self.called}, fallback {self.fallback}, "
            f"failed {self.failed}, tokens in {self.tokens_in} / out {self.tokens_out}, cost ${self.cost:.4f}"
        )


def cost_of(settings: Settings, tokens_in: int, tokens_out: int) -> float:
    price = settings.price(settings.llm_model)
    if price is None:
        return 0.0
    return round(tokens_in / 1e6 * price[0] + tokens_out / 1e6 * price[1], 8)


def _fallback(
    paper: Paper, translate: Translate | None, reason: str, model: str, phash: str, tokens: tuple[int, int], cost: float
) -> Summary:
    tldr_en = first_sentence(paper.abstract) or paper.title
    base = {
        "id": paper.id,
        "version": paper.version,
        "tldr_en": tldr_en,
        "model": model,
        "prompt_hash": phash,
        "tokens_in": tokens[0],
        "tokens_out": tokens[1],
        "cost": cost,
    }
    if translate is None:
        return Summary(
            **base,
            status=SummaryStatus.fallback if model == NO_LLM_MODEL else SummaryStatus.failed,
            backend="extractive",
            reason=f"{reason}; translation unavailable".lstrip("; "),
        )
    try:
        title_zh = translate(paper.title)
        tldr_zh = translate(tldr_en)
        abstract_zh = translate(paper.abstract)
        if min(cjk_ratio(title_zh + tldr_zh), cjk_ratio(abstract_zh)) < 0.2:
            raise ValueError("translator answered in the wrong language")
    except Exception as exc:  # network, timeout, bad answer: all end in a marked failure, never a crash
        status = SummaryStatus.fallback if model == NO_LLM_MODEL else SummaryStatus.failed
        return Summary(
            **base,
            status=status,
            backend="extractive",
            reason=f"{reason}; translation unavailable ({exc.__class__.__name__}: {str(exc)[:120]})".lstrip("; "),
        )
    return Summary(
        **base,
        title_zh=title_zh,
        tldr_zh=tldr_zh,
        abstract_zh=abstract_zh,
        status=SummaryStatus.fallback,
        backend="google-translate",
        reason=reason,
    )


def summarise_one(
    paper: Paper, caller: ChatCaller, prompts: Prompts, settings: Settings, phash: str, translate: Translate | None
) -> tuple[Summary, int]:
    """(summary, requests made). Never raises for a per-paper problem."""
    deadline = time.monotonic() + settings.llm_deadline
    tin = tout = requests = 0
    errors: list[str] = []
    for attempt in range(2):  # the call, then one repair call quoting the validation errors
        requests += 1  # a call, answered or not (the caller's own HTTP retries are inside it)
        try:
            ans = caller.call(
                prompts.messages(paper.title, paper.abstract, errors if attempt else None), deadline, paper.id
            )
        except LLMError as exc:
            errors = [str(exc)]
            break
        tin += ans.tokens_in
        tout += ans.tokens_out
        errors = [ans.error] if ans.fields is None else validate(ans.fields, paper.title, paper.abstract)
        if not errors and ans.fields is not None:
            f = ans.fields
            return Summary(
                id=paper.id,
                version=paper.version,
                tldr_en=f.tldr_en.strip(),
                title_zh=f.title_zh.strip(),
                tldr_zh=f.tldr_zh.strip(),
                abstract_zh=f.abstract_zh.strip(),
                status=SummaryStatus.ok,
                backend=f"llm:{settings.llm_model}",
                model=settings.llm_model,
                prompt_hash=phash,
                tokens_in=tin,
                tokens_out=tout,
                cost=cost_of(settings, tin, tout),
                reason="repaired" if attempt else "",
            ), requests
    reason = "LLM answer rejected: " + "; ".join(errors)[:500]
    log.warning("%s: %s", paper.id, reason)
    return _fallback(
        paper, translate, reason, settings.llm_model, phash, (tin, tout), cost_of(settings, tin, tout)
    ), requests


def summarise(
    papers: Sequence[Paper],
    settings: Settings,
    store: Store,
    tick: Callable[[Summary], None] | None = None,
    translate: Translate | None = None,
    force: bool = False,
) -> tuple[list[Summary], SummaryStats]:
    """Summaries of ``papers`` in order; every paper gets one (ok, fallback or failed)."""
    stats = SummaryStats(papers=len(papers))
    prompts = load_prompts(settings)
    if translate is None and settings.translate_fallback == "google":
        translate = google_translator(settings.translate_timeout)
    llm = bool(settings.llm_base_url)
    model = settings.llm_model if llm else NO_LLM_MODEL
    phash = prompts.hash(settings) if llm else "no-llm"
    results: dict[int, Summary] = {}
    todo: list[int] = []
    for i, p in enumerate(papers):
        hit = None if force else _cached(store, p, model, phash)
        if hit is not None:
            results[i] = hit
            stats.cached += 1
            if tick:
                tick(hit)
        else:
            todo.append(i)

    def done(i: int, s: Summary, nreq: int) -> None:
        store.save_summary(s)
        results[i] = s
        stats.requests += nreq
        stats.called += 1 if nreq else 0
        stats.called_ok += 1 if nreq and s.status == SummaryStatus.ok else 0
        stats.tokens_in += s.tokens_in
        stats.tokens_out += s.tokens_out
        stats.cost += s.cost
        if tick:
            tick(s)

    if todo and not llm:
        for i in todo:
            done(
                i,
                _fallback(
                    papers[i],
                    translate,
                    "no LLM endpoint configured (DIGEST_LLM_BASE_URL)",
                    NO_LLM_MODEL,
                    phash,
                    (0, 0),
                    0.0,
                ),
                0,
            )
    elif todo:
        caller = ChatCaller(make_client(settings), settings)
        with cf.ThreadPoolExecutor(max_workers=settings.llm_concurrency, thread_name_prefix="llm") as pool:
            futs = {pool.submit(summarise_one, papers[i], caller, prompts, settings, phash, translate): i for i in todo}
            for fut in cf.as_completed(futs):
                i = futs[fut]
                try:
                    s, nreq = fut.result()
                except Exception as exc:  # a bug for one paper must not lose the others
                    log.exception("summary of %s crashed", papers[i].id)
                    s, nreq = _fallback(papers[i], translate, f"internal error: {exc}", model, phash, (0, 0), 0.0), 0
                done(i, s, nreq)
    out = [results[i] for i in range(len(papers))]
    for s in out:
        stats.ok += s.status == SummaryStatus.ok
        stats.fallback += s.status == SummaryStatus.fallback
        stats.failed += s.status == SummaryStatus.failed
        stats.backends[s.backend] = stats.backends.get(s.backend, 0) + 1
    stats.cost = round(stats.cost, 8)
    return out, stats


def _cached(store: Store, p: Paper, model: str, phash: str) -> Summary | None:
    hit = store.get_summary(p.id, p.version, model, phash)
    if hit is None:
        prev = store.previous_version_unchanged(p)  # a new version with the same text reuses the summary
        if prev is not None:
            old = store.get_summary(p.id, prev, model, phash)
            if old is not None:
                hit = old.model_copy(update={"version": p.version, "tokens_in": 0, "tokens_out": 0, "cost": 0.0})
                store.save_summary(hit)
    if hit is not None and hit.status == SummaryStatus.failed:
        return None  # failures are retried on the next run
    return hit


def summary_fields_example() -> SummaryFields:
    return SummaryFields(tldr_en="", title_zh="", tldr_zh="", abstract_zh="")
