"""Text-mode LaTeX over the whole cs.CV corpus: abstracts (and titles) that carry a raw text command, before and
after :func:`digest.render.latex.plain`, and how long the conversion takes. Record in docs/BENCHMARKS.md.

    python bench/latex.py
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from digest.render import latex
from digest.replay.data import corpus, default_shared

#: what a reader must never see: text-mode commands, and a ~ gluing two words
RAW = re.compile(r"\\(textbf|textit|emph|href|url|cite[a-z]*|textcolor|textsc|textsf|texttt|underline)\b|\w~\w")


def strip_math(s: str) -> str:
    return re.sub(r"\$\$.+?\$\$|\$[^$]+\$|\\\(.+?\\\)|\\\[.+?\\\]", " ", s, flags=re.DOTALL)


def main() -> None:
    papers = list(corpus(default_shared()).values())
    before = after = links = 0
    examples: list[tuple[str, str]] = []
    t0 = time.perf_counter()
    for p in papers:
        for text in (p["title"], p["abstract"]):
            if RAW.search(strip_math(text)):
                before += 1
                out = latex.plain(text)
                if RAW.search(strip_math(out)):
                    after += 1
                    if len(examples) < 5:
                        examples.append((p["id"], RAW.search(strip_math(out)).group(0)))  # type: ignore[union-attr]
                links += sum(1 for r in latex.runs(text) if r.href)
            else:
                latex.plain(text)
    took = time.perf_counter() - t0
    n = len(papers)
    print(f"{n:,} papers ({2 * n:,} titles and abstracts): {before:,} texts carry a raw text command "
          f"({before / (2 * n):.1%}); after conversion: {after}; links made from them: {links:,}")
    print(f"conversion: {took:.1f} s in all, {took / (2 * n) * 1e6:.0f} µs per text")
    for pid, what in examples:
        print(f"  left: {pid}: {what}")


if __name__ == "__main__":
    main()
