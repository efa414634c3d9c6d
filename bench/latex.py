"""Text-mode LaTeX over the whole cs.CV corpus: titles, abstracts and comments (the page's venue line) that carry
a raw text command or accent, before and after conversion — as plain text (:func:`digest.render.latex.plain`)
and as the page shows it (:func:`digest.render.latex.to_html`, the text a browser shows with the rendered
formulas set aside) — and how long the conversion takes. Record in docs/BENCHMARKS.md.

    python bench/latex.py
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bs4 import BeautifulSoup

from digest.render import latex
from digest.replay.data import corpus, default_shared
from digest.text import one_line

#: what a reader must never see: text-mode commands, a ~ gluing two words, an accent command (Fr\'echet)
RAW = re.compile(
    r"\\(textbf|textit|emph|href|url|cite[a-z]*|textcolor|textsc|textsf|texttt|underline)\b|\w~\w"
    r"|\\['`^\"~=.]\{?[A-Za-z]"
)


def strip_math(s: str) -> str:
    return re.sub(r"\$\$.+?\$\$|\$[^$]+\$|\\\(.+?\\\)|\\\[.+?\\\]", " ", s, flags=re.DOTALL)


def shown(html: str) -> str:
    """The page's text without its formulas (their TeX source is in a title attribute, on purpose)."""
    soup = BeautifulSoup(html, "html.parser")
    for m in soup.select("math, .math"):
        m.decompose()
    return soup.get_text(" ")


def main() -> None:
    papers = list(corpus(default_shared()).values())
    texts = [one_line(t) for p in papers for t in (p["title"], p["abstract"], p.get("comment")) if t]
    before = after_plain = after_page = links = 0
    examples: list[str] = []
    t0 = time.perf_counter()
    for text in texts:
        plain, html = latex.plain(text), str(latex.to_html(text))
        if not RAW.search(strip_math(text)):
            continue
        before += 1
        links += sum(1 for r in latex.runs(text) if r.href)
        left_plain, left_page = RAW.search(strip_math(plain)), RAW.search(shown(html))
        after_plain += left_plain is not None
        after_page += left_page is not None
        for left in (left_plain, left_page):
            if left is not None and len(examples) < 5:
                examples.append(left.string[max(0, left.start() - 40) : left.end() + 20])
    took = time.perf_counter() - t0
    n = len(texts)
    print(f"{len(papers):,} papers, {n:,} titles, abstracts and comments: {before:,} carry a raw text command or "
          f"accent outside math ({before / n:.1%}); left after conversion: plain {after_plain}, page {after_page}; "
          f"links made from them: {links:,}")
    print(f"conversion (plain + page HTML): {took:.1f} s in all, {took / n * 1e6:.0f} µs per text")
    for what in examples:
        print(f"  left: {what!r}")


if __name__ == "__main__":
    main()
