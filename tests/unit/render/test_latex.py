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


def test_text_commands_an_author_wrapped_in_math_read_as_text() -> None:
    # real abstracts: 2605.10157 (math nested in a \textbf argument), 2511.09388, the title of 2506.14008
    nested = r"at $\textbf{$\textit{80$\times$ lower}$}$ FLOPs, termed $\texttt{$\textbf{Flora}$}$ from $\textbf{F}$lexib"
    html = str(latex.to_html(nested))
    assert "<strong><em>80</em></strong>" in html and "<mo>×</mo>" in html and "<strong>Flora</strong>" in html
    assert "<strong>F</strong>lexib" in html and "\\text" not in html.replace('title="$\\times$"', "")
    assert latex.plain(nested) == "at 80$\\times$ lower FLOPs, termed Flora from Flexib"
    assert latex.plain(r"metrics to $\textit{near} $, $ \textit{far} $") == "metrics to near , far"
    linked = str(latex.to_html(r"at $\href{https://github.com/o/Freq_SR#x}{\texttt{o/Freq-SR}}$."))  # 2606.28745
    assert linked == 'at <a href="https://github.com/o/Freq_SR#x" rel="nofollow noopener">o/Freq-SR</a>.'
    # math stays math: a bold vector, a subscript on text; currency is left as written
    assert [r.text for r in latex.runs(r"$\mathbf{v}$ and $\text{CLIP}_{ViT}$") if r.math] == [
        "$\\mathbf{v}$", "$\\text{CLIP}_{ViT}$"]  # fmt: skip
    assert [r.text for r in latex.runs(r"$x$\textbf{y} and $z$") if r.math] == ["$x$", "$z$"]
    assert latex.plain(r"costs $5 and $10 \emph{x}") == "costs $5 and $10 x"


def test_deeply_nested_or_unpaired_dollars_are_read_without_recursion() -> None:
    deep = "$\\text{" * 3000 + "core" + "}$" * 3000  # 3,000 levels of math in text in math
    assert "core" in latex.plain(deep) and "core" in str(latex.to_html(deep))
    for s in ("$\\textbf{" * 20_000, "{$" * 50_000 + "\\emph{x}"):  # never paired: left as they were
        assert latex.unwrap_text_math(s) == s


def test_accents_become_letters() -> None:
    # 229 corpus abstracts write "Fr\'echet" (FID), "Schr\"odinger", "Do\~nana"; comments write authors' names
    s = r"Fr\'echet Inception Distance, Schr\"odinger bridges in Do\~nana by \v{S}ar\'{a} and Zubi\'c, $\hat{x}$"
    assert latex.plain(s) == "Fréchet Inception Distance, Schrödinger bridges in Doñana by Šará and Zubić, $\\hat{x}$"
    assert "<strong>Fréchet</strong>" in str(latex.to_html(r"\textbf{Fr\'echet}"))


def test_venue_lines_keep_the_venue_and_give_links_their_place() -> None:
    from digest.render.view import code_link, project_link, venue_line, venue_source

    real = (  # arXiv comments, as written (2025-2026 cs.CV)
        "ACM Transactions on Graphics (Proc. of SIGGRAPH), 2025. Code:\n  https://github.com/yxuhan/DoRA; "
        "Project Page: https://yxuhan.github.io/DoRA"
    )
    assert venue_line(real, None) == "ACM Transactions on Graphics (Proc. of SIGGRAPH), 2025."
    assert venue_line("14 pages, 7 figures, project page:\n  https://zx-yin.github.io/x/", None) == "14 pages, 7 figures"
    assert venue_line("Project Page: https://a.github.io/p. Accepted by ICML 2026", None) == "Accepted by ICML 2026"
    assert venue_line(r"Accepted by ICCV 2025. Code: \url{https://github.com/o/r}", "CVPR 2026") == (
        "Accepted by ICCV 2025. · CVPR 2026")  # fmt: skip
    assert venue_line(r"Equal contribution by Nikola Zubi\'c", None) == "Equal contribution by Nikola Zubić"
    html = str(latex.to_html(venue_source(r"Code: \url{https://github.com/o/r}", None)))
    assert '<a href="https://github.com/o/r"' in html and "\\url" not in html
    # the code link from \href / \url / bare URLs, never a brace or a LaTeX command in it
    assert code_link(r"code: \href{https://peter.github.io/HierEdit-page/}{\textbf{Project Page}}") == (
        "https://peter.github.io/HierEdit-page/")  # fmt: skip
    assert code_link("Dataset: https://huggingface.co/datasets/Gracjan/Isle/viewer/x") == (
        "https://huggingface.co/datasets/Gracjan/Isle")  # fmt: skip
    assert code_link("see https://example.org/x", "Code: https://gitlab.com/a/b.") == "https://gitlab.com/a/b"
    # the project page, when it is not the code link (JSON Feed links.project)
    assert project_link(None, real) == "https://yxuhan.github.io/DoRA"
    assert project_link(None, "Project page: https://a.github.io/p/") == ""  # it is the code link already
