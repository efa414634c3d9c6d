"""Text-mode LaTeX → runs: the commands real cs.CV abstracts carry (e.g. 2606.00910, a 2026-06-30 code link)."""

from __future__ import annotations

from digest.render import latex
from digest.render.view import _md_inline, md_rich, md_url

REAL = (
    r"the \emph{Reason-Aware} CoVR at the CVPR~2026 benchmark attains \textbf{91.9\% R@1}, 50% better "
    r"than $x_1^2$ \cite{a,b}; code: \textcolor{magenta}{\href{https://github.com/o/r}{here}} and \url{https://x.io/p}"
)


def test_commands_become_text_emphasis_and_links() -> None:
    rs = latex.runs(REAL)
    assert any(r.italic and r.text == "Reason-Aware" for r in rs)
    assert any(r.bold and r.text == "91.9% R@1" for r in rs)
    assert any(r.href == "https://github.com/o/r" and r.text == "here" for r in rs)
    assert any(r.href == "https://x.io/p" for r in rs)
    assert any(r.math and r.text == "$x_1^2$" for r in rs)
    text = latex.plain(REAL)
    assert "\\" not in text.replace("$x_1^2$", "") and "CVPR\u00a02026" in text and "50% better" in text
    assert "cite" not in text and "here (https://github.com/o/r)" in text


def test_html_and_markdown_render_the_runs_safely() -> None:
    html = str(latex.to_html(REAL + r" \href{javascript:alert(1)}{x} <b>"))
    assert "<em>Reason-Aware</em>" in html and "<strong>91.9% R@1</strong>" in html
    assert '<a href="https://github.com/o/r" rel="nofollow noopener">here</a>' in html
    assert "javascript:" not in html and "&lt;b&gt;" in html and "<math" in html
    md = md_rich(REAL)
    assert "*Reason-Aware*" in md and "**91.9% R@1**" in md and "[here](https://github.com/o/r)" in md
    assert latex.to_markdown("see https://a.b/c.", _md_inline, md_url) == "see [https://a.b/c](https://a.b/c)."


def test_text_without_latex_is_untouched() -> None:
    s = "A plain abstract with 50% gains, a_b and x^2 outside math."
    assert latex.plain(s) == s and [r.text for r in latex.runs(s)] == [s]
