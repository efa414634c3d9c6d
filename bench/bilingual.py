"""Quality harness for the bilingual summaries, on real abstracts with whatever endpoint is configured.

Usage:
    DIGEST_LLM_BASE_URL=… DIGEST_LLM_MODEL=… DIGEST_LLM_API_KEY=… python bench/bilingual.py [-n 50]
    python bench/bilingual.py --fake     # start the tests' fake server (exercises the harness, not quality)

Picks N cs.CV papers that ../shared/bilingual translated from the *full* English abstract (so the
reference is comparable), runs the summarise stage on them in a temporary store and prints:
validation pass rate (status ok), fallback and failure rates, server-reported tokens per paper, the
prompt overhead (tokens of the rendered prompt + JSON schema beyond title + abstract, counted with the
WordPiece tokenizer shipped in the package: about one token per CJK character and per English word
piece, close to GPT tokenizers for this text), and chrF (sacrebleu, character n-grams, suited to
Chinese) of our Chinese abstract and title against the reference translation. It also checks, on every
corpus abstract with LaTeX or a URL (../shared/corpus), that masking round-trips exactly: each span becomes a
placeholder and comes back byte for byte.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import statistics
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sacrebleu.metrics import CHRF
from tokenizers import Tokenizer

from digest.config import load_settings
from digest.llm.client import OpenAIChat, openai_client, schema
from digest.llm.mask import decode_answer, mask, unmask
from digest.llm.prompts import load_prompts
from digest.llm.summarize import Summariser
from digest.models import Paper, SummaryStatus
from digest.relevance.embed import STOCK_TOKENIZER as TOKENIZER_PATH
from digest.replay.data import corpus, default_shared
from digest.store import Store

SHARED = default_shared()


def references(n: int) -> list[dict[str, str]]:
    """Translation records whose English source is the full abstract (not cut at 1,000 characters)."""
    out = []
    with gzip.open(SHARED / "bilingual" / "cn-chat-arxiv-zh.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if r["kind"] != "translation" or r.get("en_abstract_truncated_at_1000") or not r.get("zh_title"):
                continue
            out.append(r)
            if len(out) == n:
                break
    return out


@contextlib.contextmanager
def endpoint(fake: bool) -> Iterator[dict[str, str]]:
    if not fake:
        yield {}
        return
    from digest.replay import LLMState, serve_llm

    with serve_llm(LLMState()) as url:
        yield {"llm_base_url": url, "llm_model": "fake-model"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=50)
    ap.add_argument("--fake", action="store_true", help="use the tests' fake server instead of DIGEST_LLM_BASE_URL")
    args = ap.parse_args()
    refs = references(args.n)
    papers = [Paper(id=r["id"], version=1, title=r["en_title"], abstract=r["en_abstract"]) for r in refs]
    tok = Tokenizer.from_file(str(TOKENIZER_PATH))
    tok.no_truncation()

    def ntok(text: str) -> int:
        return len(tok.encode(text, add_special_tokens=False).ids)

    with endpoint(args.fake) as over, tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(db_url=f"sqlite:///{tmp}/b.db", **over)
        prompts = load_prompts(settings)
        schema_tokens = ntok(json.dumps(schema(), separators=(",", ":")))
        overheads = [
            sum(ntok(m["content"]) for m in prompts.messages(mask(p.title).text, mask(p.abstract, 100).text))
            + schema_tokens
            - ntok(mask(p.title).text)
            - ntok(mask(p.abstract, 100).text)
            for p in papers
        ]
        store = Store(settings.db_url)
        chat = OpenAIChat(openai_client(settings), settings) if settings.llm_base_url else None
        stats = Summariser(settings, store, prompts, chat, None).run(papers)
        res = [store.summaries_of([(p.id, 1)])[(p.id, 1)][0] for p in papers]
    n = len(papers)
    chrf = CHRF()
    pairs = [(s, r) for s, r in zip(res, refs, strict=True) if s.abstract_zh]
    abs_chrf = chrf.corpus_score([s.abstract_zh for s, _ in pairs], [[r["zh_text"] for _, r in pairs]]).score
    title_chrf = chrf.corpus_score([s.title_zh for s, _ in pairs], [[r["zh_title"] for _, r in pairs]]).score
    backend = settings.llm_model if settings.llm_base_url else "offline (no DIGEST_LLM_BASE_URL)"
    print(f"endpoint: {settings.llm_base_url or '-'}  model: {backend}  papers: {n}")
    print(f"validation pass rate (status ok): {stats.ok / n:.1%}   fallback: {stats.fallback / n:.1%}   "
          f"backends: {stats.backends}")
    reasons = [s.reason for s in res if s.status != SummaryStatus.ok]
    if reasons:
        print(f"first non-ok reason: {reasons[0][:200]}")
    print(f"server-reported tokens per paper: in {stats.tokens_in / n:.0f}, out {stats.tokens_out / n:.0f}; "
          f"requests {stats.requests}; cost ${stats.cost:.4f}")
    print(f"prompt overhead beyond title+abstract (WordPiece tokens, incl. JSON schema {schema_tokens}): "
          f"median {statistics.median(overheads):.0f}, max {max(overheads)}")
    print(f"chrF vs ../shared/bilingual reference ({len(pairs)} papers): abstract {abs_chrf:.1f}, title {title_chrf:.1f}")
    spans = exact = abstracts = 0
    for p in corpus(SHARED).values():
        text = " ".join(p["abstract"].split())
        m = mask(text, 100)
        if not m.spans:
            continue
        abstracts += 1
        spans += len(m.spans)
        exact += unmask(decode_answer(m.text), {100 + i: s for i, s in enumerate(m.spans)}) == text
    latex = sum(1 for p in corpus(SHARED).values() if "$" in p["abstract"])
    print(f"masking round trip on the corpus: {exact} of {abstracts} abstracts with LaTeX/URL/code spans exact "
          f"({spans} spans; {latex} abstracts have $…$)")


if __name__ == "__main__":
    main()
