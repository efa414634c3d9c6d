"""Which stored summaries are final under the current settings (the cache rule).

A summary is cached under (id, version, model, prompt hash) — model and hash empty when no LLM was
configured — and carries its **tier** (llm / translated / extractive):

* with an LLM configured, only that model's and prompt's row counts; it is final when the LLM wrote it,
  or when the LLM *answered* and the answer was rejected twice (paid: a re-run would pay again for the
  same result; ``--force`` retries). A fallback made because the endpoint was unreachable is not final:
  the next run calls the LLM again.
* with no LLM, the best stored summary of any key counts: an LLM or a translated one is final; an
  extractive one is final only while no translator is reachable (probed once per run, lazily) — so a
  paper summarised offline gets its Chinese text once the network comes back, and only then.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from digest.models import Summary, SummaryTier


@dataclass(frozen=True)
class Route:
    """What the settings allow this run: an LLM (model + prompt hash), or the offline tiers."""

    model: str = ""
    prompt_hash: str = ""

    @property
    def llm(self) -> bool:
        return bool(self.model)

    def key(self, paper_id: str, version: int) -> str:
        return f"{paper_id}:{version}:{self.model}:{self.prompt_hash}"


def best_stored(candidates: list[Summary], route: Route) -> Summary | None:
    """The stored summary this route would show: its own key with an LLM, else the best tier of any key."""
    if route.llm:
        return next((s for s in candidates if s.model == route.model and s.prompt_hash == route.prompt_hash), None)
    return min(candidates, key=lambda s: s.tier.rank, default=None)


def is_final(s: Summary, route: Route, translator_ok: Callable[[], bool], max_attempts: int = 1) -> bool:
    """Nothing left to do for this key: an accepted answer, or ``max_attempts`` paid answers all rejected."""
    if route.llm:
        same_key = s.model == route.model and s.prompt_hash == route.prompt_hash
        return same_key and (s.tier == SummaryTier.llm or (s.llm_answered and max(s.attempts, 1) >= max_attempts))
    if s.tier in (SummaryTier.llm, SummaryTier.translated):
        return True
    return not translator_ok()
