"""The summarise stage with in-process fakes: cache rule, tiers, repair, breaker, claims, hostile answers."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from digest.config import Settings
from digest.llm.fallback import chunks, first_sentence
from digest.llm.prompts import load_prompts
from digest.llm.summarize import Summariser
from digest.models import Paper, SummaryStatus, SummaryTier
from digest.store import Store
from digest.text import unsafe_chars
from tests.fakes import FakeChat, FakeTranslator
from tests.shared import corpus


def real_papers(n: int, latex: bool = False) -> list[Paper]:
    out = []
    for p in corpus().values():
        if latex and "$" not in p["abstract"]:
            continue
        out.append(Paper(id=p["id"], version=1, title=p["title"], abstract=p["abstract"]))
        if len(out) == n:
            break
    return out


def summariser(
    settings: Settings, store: Store, chat: FakeChat | None, translator: FakeTranslator | None = None
) -> Summariser:
    return Summariser(settings, store, load_prompts(settings), chat, translator, owner="test:1")


def test_ok_summaries_keep_latex_exactly_are_costed_and_cached(settings: Settings, store: Store) -> None:
    chat = FakeChat("gpt-4o-mini")
    papers = real_papers(6, latex=True)
    stats = summariser(settings, store, chat).run(papers)
    assert stats.ok == 6 and stats.called == 6 and chat.calls == 6 and stats.cost > 0
    sums = store.summaries_of([(p.id, 1) for p in papers])
    for p in papers:
        [s] = sums[(p.id, 1)]
        assert s.tier == SummaryTier.llm and s.status == SummaryStatus.ok
        for span in __import__("re").findall(r"\$[^$]+\$", p.abstract):
            assert " ".join(span.split()) in s.abstract_zh  # restored from its placeholder, exactly
    again = summariser(settings, store, chat).run(papers)
    assert again.cached == 6 and again.called == 0 and chat.calls == 6


@pytest.mark.parametrize(
    "mode", ["invalid_json", "english", "empty", "no_latex", "dup_placeholder", "no_glossary", "control", "bidi"]
)
def test_a_bad_answer_gets_one_repair_call_naming_the_problem(mode: str, settings: Settings, store: Store) -> None:
    chat = FakeChat()
    [p] = [x for x in real_papers(40, latex=True) if "CLIP" in x.abstract or mode not in ("no_glossary",)][:1]
    chat.per_paper[p.title[:30]] = [mode]
    summariser(settings, store, chat).run([p])
    [s] = store.summaries_of([(p.id, 1)])[(p.id, 1)]
    assert s.tier == SummaryTier.llm and s.reason == "repaired" and chat.calls == 2
    repair = chat.seen[1][-1]["content"]
    assert "rejected" in repair and not unsafe_chars(s.title_zh + s.tldr_zh)


def test_persistent_failure_falls_back_marked_and_is_final(settings: Settings, store: Store) -> None:
    chat = FakeChat()
    papers = real_papers(3)
    chat.per_paper[papers[0].title[:30]] = ["english"] * 6  # three runs: the call and the repair each
    tr = FakeTranslator()
    summariser(settings, store, chat, tr).run(papers)
    s = store.summaries_of([(papers[0].id, 1)])[(papers[0].id, 1)][0]
    assert s.tier == SummaryTier.translated and s.status == SummaryStatus.fallback and s.llm_answered
    assert s.tldr_en == first_sentence(papers[0].abstract) and "rejected" in s.reason and s.attempts == 1
    for attempt in (2, 3):  # later runs ask again, quoting the earlier problems, up to DIGEST_LLM_MAX_ATTEMPTS
        calls = chat.calls
        again = summariser(settings, store, chat, tr).run(papers)
        assert chat.calls == calls + 2 and again.reasked == 1 and again.cached == 2
        assert "an earlier answer was rejected" in str(chat.history[calls])  # this run's first call quotes it
        assert store.summaries_of([(papers[0].id, 1)])[(papers[0].id, 1)][0].attempts == attempt
    calls = chat.calls
    final = summariser(settings, store, chat, tr).run(papers)  # three paid attempts rejected: final
    assert chat.calls == calls and final.cached == 3


def test_offline_summaries_get_chinese_once_a_translator_is_back_and_only_then(
    settings: Settings, store: Store
) -> None:
    papers = real_papers(3)
    offline = FakeTranslator(up=False)
    first = summariser(settings, store, None, offline).run(papers)
    assert first.ok == 3 and {s.tier for v in store.summaries_of([(p.id, 1) for p in papers]).values() for s in v} == {
        SummaryTier.extractive
    }
    probes = offline.calls
    summariser(settings, store, None, offline).run(papers)  # still offline: the probe says so once, nothing redone
    assert offline.calls == probes + 1
    online = FakeTranslator(up=True)
    back = summariser(settings, store, None, online).run(papers)
    assert back.cached == 0 and back.backends == {"fake-translate": 3}
    calls = online.calls
    done = summariser(settings, store, None, online).run(papers)  # nothing new: no call at all
    assert done.cached == 3 and online.calls == calls


def test_an_llm_once_configured_replaces_offline_summaries(settings: Settings, store: Store) -> None:
    papers = real_papers(2)
    summariser(settings, store, None, None).run(papers)
    chat = FakeChat()
    stats = summariser(settings, store, chat).run(papers)
    assert stats.called == 2 and stats.backends == {"llm:fake-model": 2}


def test_dead_endpoint_trips_the_breaker_and_the_next_run_calls_again(settings: Settings, store: Store) -> None:
    s = settings.model_copy(update={"llm_max_tries": 3, "llm_breaker": 4, "llm_concurrency": 2})
    chat = FakeChat()
    chat.always = {"down"}
    papers = real_papers(20)
    t0 = time.monotonic()
    stats = summariser(s, store, chat).run(papers)
    assert time.monotonic() - t0 < 10 and chat.calls <= 8 and stats.skipped_breaker >= 15
    assert all(x.status == SummaryStatus.fallback and not x.llm_answered
               for v in store.summaries_of([(p.id, 1) for p in papers]).values() for x in v)  # fmt: skip
    chat.always = set()
    again = summariser(s, store, chat).run(papers)  # the endpoint is back: unreachable fallbacks are not final
    assert again.called == 20 and again.ok == 20


def test_a_paper_claimed_by_another_process_is_not_paid_twice(settings: Settings, store: Store) -> None:
    chat = FakeChat()
    [p] = real_papers(1)
    summ = summariser(settings, store, chat)
    key = summ.route.key(p.id, 1)
    assert store.claim_call(key, "other:2", 60)
    import threading

    def other_finishes() -> None:
        time.sleep(1.0)
        summariser(settings, store, FakeChat()).store.save_summary(
            __import__("digest.models", fromlist=["Summary"]).Summary(
                id=p.id, version=1, tldr_en="x", title_zh="标题", tldr_zh="中文", abstract_zh="中文摘要",
                tier=SummaryTier.llm, backend="llm:fake-model", model=summ.route.model,
                prompt_hash=summ.route.prompt_hash, llm_answered=True,
            )
        )  # fmt: skip
        store.release_call(key, "other:2")

    threading.Thread(target=other_finishes).start()
    stats = summ.run([p])
    assert chat.calls == 0 and stats.cached == 1


def test_429_is_retried_without_tripping_the_breaker(settings: Settings, store: Store) -> None:
    chat = FakeChat()
    papers = real_papers(2)
    chat.per_paper[papers[0].title[:30]] = ["429", "429"]
    stats = summariser(settings.model_copy(update={"llm_breaker": 1}), store, chat).run(papers)
    assert stats.ok == 2 and chat.calls == 4


def test_prompt_hash_changes_with_glossary(settings: Settings, tmp_path: Path) -> None:
    import shutil

    p = load_prompts(settings)
    shutil.copytree(p.folder, tmp_path / "prompts")
    s2 = settings.model_copy(update={"prompts_dir": tmp_path / "prompts"})
    assert load_prompts(s2).hash(s2) == p.hash(settings)
    (tmp_path / "prompts" / "glossary.yaml").write_text("keep: [CLIP]\nfixed: {}\n")
    assert load_prompts(s2).hash(s2) != p.hash(settings)
    assert p.hash(settings.model_copy(update={"llm_model": "other"})) != p.hash(settings)


def test_chunks_respect_the_translator_limit() -> None:
    text = "A sentence here. " * 400
    parts = chunks(text, 1500)
    assert all(len(c) <= 1500 for c in parts) and "".join(parts).replace(" ", "") == text.replace(" ", "")
