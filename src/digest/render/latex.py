"""Text-mode LaTeX in titles, abstracts and summaries → runs of text, emphasis and links (pylatexenc).

About 7 % of cs.CV abstracts carry ``\\textbf{…}``, ``\\emph{…}``, ``\\href{url}{text}``, ``\\url{…}``,
``\\cite{…}``, ``CVPR~2026`` or ``\\textcolor{magenta}{…}``. They are parsed here, once, into :class:`Run` s that
every format renders its own way: bold/italic/links in HTML and Markdown, plain text in text parts and feeds.
Math (``$…$``, ``\\(…\\)``) is left verbatim for the MathML path; link targets must be http(s); citations are
removed; ``~`` is a no-break space; escaped characters (``\\%``, ``\\&``, ``\\_``) are unescaped; an unknown
command is reduced to its text argument; accents (``Fr\\'echet``) become letters; text commands an author wrapped
in ``$…$`` (``$\\textbf{$\\textit{80$\\times$ lower}$}$``, ``$\\href{…}{…}$``) are read as text mode, the math inside
them kept. Bare URLs become links. Pure functions; text without a backslash or a
``~`` is returned as one plain run, untouched.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from markupsafe import Markup, escape
from pylatexenc.latex2text import LatexNodes2Text
from pylatexenc.latexwalker import (
    LatexCharsNode,
    LatexCommentNode,
    LatexGroupNode,
    LatexMacroNode,
    LatexMathNode,
    LatexNode,
    LatexSpecialsNode,
    LatexWalker,
    get_default_latex_context_db,
)
from pylatexenc.macrospec import MacroSpec

from digest.text import unwrap_text_math

NBSP = "\u00a0"
_BOLD = {"textbf", "bf", "bfseries", "mathbf", "textsc"}
_ITALIC = {"emph", "textit", "it", "itshape", "textsl", "em"}
_DROP = {"cite", "citep", "citet", "citealp", "citeauthor", "citeyear", "ref", "eqref", "label", "footnote",
         "vspace", "hspace", "noindent", "newline", "linebreak"}  # fmt: skip
_SILENT = {"centering", "small", "large", "Large", "footnotesize", "normalsize", "relax", "xspace", "protect",
           "bigskip", "medskip", "smallskip", "par", "quad", "qquad", "maketitle", "today"}  # fmt: skip
_ESCAPED = {"%": "%", "&": "&", "_": "_", "#": "#", "$": "$", "{": "{", "}": "}", " ": " ", ",": NBSP, "\\": " "}
_URL = re.compile(r"https?://[^\s<>\"'()\[\]{}，。；：！？（）、《》]+[^\s<>\"'()\[\]{}.,;:!?，。；：！？（）、《》]")
_TRIGGER = re.compile(r"\\[A-Za-z%&_#${}'`^\"~=.]|\w~\w")
#: accents (``Fr\\'echet``, ``Schr\\"odinger``, ``Do\\~nana``, ``\\v{S}``): the accented letter
_ACCENTS = {"'", "`", "^", '"', "~", "=", ".", "u", "v", "H", "c", "k", "r", "d", "b", "t"}
_BARE_PERCENT = re.compile(r"(?<!\\)%")


@dataclass(frozen=True)
class Run:
    text: str
    bold: bool = False
    italic: bool = False
    href: str = ""  # an http(s) URL: the run is a link
    math: bool = False  # TeX kept verbatim, with its delimiters


@lru_cache(maxsize=1)
def _db() -> object:
    db = get_default_latex_context_db()
    db.add_context_category(
        "digest",
        prepend=True,
        macros=[
            MacroSpec("href", "{{"),  # the default spec raises IndexError on real abstracts
            MacroSpec("url", "{"),
            MacroSpec("textcolor", "{{"),
            MacroSpec("colorbox", "{{"),
            *(MacroSpec(c, "*[[{") for c in _DROP if c.startswith("cite")),
        ],
    )
    return db


def _safe_url(url: str) -> str:
    url = url.strip().replace("\\%", "%").replace("\\_", "_").replace("\\#", "#").replace("\\&", "&")
    return url if re.fullmatch(r"https?://[^\s<>\"]+", url) else ""


def _nodes_text(nodes: list[LatexNode] | None) -> str:
    return "".join(r.text for r in _walk(nodes or [], Run("")))


def _walk(nodes: list[LatexNode], style: Run) -> list[Run]:
    out: list[Run] = []

    def add(text: str, math: bool = False) -> None:
        if text:
            out.append(Run(text, style.bold, style.italic, style.href, math))

    for n in nodes:
        if isinstance(n, LatexCharsNode):
            add(n.chars)
        elif isinstance(n, LatexCommentNode):  # a bare % was escaped before parsing: keep what is left verbatim
            add(n.latex_verbatim())
        elif isinstance(n, LatexMathNode):
            add(n.latex_verbatim(), math=True)
        elif isinstance(n, LatexSpecialsNode):
            add(NBSP if n.specials_chars == "~" else n.latex_verbatim())
        elif isinstance(n, LatexGroupNode):
            out += _walk(n.nodelist, style)
        elif isinstance(n, LatexMacroNode):
            out += _macro(n, style)
        else:  # environments and anything else: their text
            out += _walk(getattr(n, "nodelist", None) or [], style)
    return out


def _args(n: LatexMacroNode) -> list[LatexNode | None]:
    return list(n.nodeargd.argnlist) if n.nodeargd is not None else []


def _arg_nodes(a: LatexNode | None) -> list[LatexNode]:
    if a is None:
        return []
    if isinstance(a, LatexGroupNode):
        return list(a.nodelist)
    return [a]


def _macro(n: LatexMacroNode, style: Run) -> list[Run]:
    name = n.macroname
    args = [a for a in _args(n) if a is not None]
    if name in _ESCAPED:
        return [Run(_ESCAPED[name], style.bold, style.italic, style.href)]
    if name in _DROP:
        return []
    if name in _ACCENTS and args:
        accented = LatexNodes2Text(math_mode="verbatim").macro_node_to_text(n)
        return [Run(accented, style.bold, style.italic, style.href)]
    if name in ("href", "url"):
        target = _safe_url(args[0].latex_verbatim().strip("{}") if args else "")
        label_nodes = _arg_nodes(args[1]) if name == "href" and len(args) > 1 else []
        link = Run("", style.bold, style.italic, target)
        if label_nodes:
            inner = _walk(label_nodes, link)
        else:
            inner = [Run(target or _nodes_text(_arg_nodes(args[0]) if args else []), style.bold, style.italic)]
        return [Run(r.text, r.bold, r.italic, target, r.math) for r in inner]
    if name in _BOLD or name in _ITALIC:
        inner_style = Run("", style.bold or name in _BOLD, style.italic or name in _ITALIC, style.href)
        return _walk(_arg_nodes(args[-1]) if args else [], inner_style)
    if args:  # \textcolor{magenta}{…}, \textsf{…}, an unknown command with arguments: its (last) text argument
        return _walk(_arg_nodes(args[-1]), style)
    text = LatexNodes2Text(math_mode="verbatim").macro_node_to_text(n) if n.macroname else ""
    if not text.strip() and text != " " and n.macroname.isalpha() and n.macroname not in _SILENT:
        text = n.macroname  # an author's own macro (``\\model`` for the method's name): its name beats nothing
    text += " " if getattr(n, "macro_post_space", "") and text.strip() else ""  # TeX ate the space after it
    return [Run(text, style.bold, style.italic, style.href)] if text.strip() or text == " " else []


def _linkify(runs: list[Run]) -> list[Run]:
    out: list[Run] = []
    for r in runs:
        if r.href or r.math or "http" not in r.text:
            out.append(r)
            continue
        pos = 0
        for m in _URL.finditer(r.text):
            if m.start() > pos:
                out.append(Run(r.text[pos : m.start()], r.bold, r.italic))
            out.append(Run(m.group(0), r.bold, r.italic, m.group(0)))
            pos = m.end()
        if pos < len(r.text):
            out.append(Run(r.text[pos:], r.bold, r.italic))
    return out


def _merge(runs: list[Run]) -> list[Run]:
    out: list[Run] = []
    for r in runs:
        if not r.text:
            continue
        if out and (out[-1].bold, out[-1].italic, out[-1].href, out[-1].math) == (r.bold, r.italic, r.href, r.math):
            out[-1] = Run(out[-1].text + r.text, r.bold, r.italic, r.href, r.math)
        else:
            out.append(r)
    return out


@lru_cache(maxsize=4096)
def _runs(text: str) -> tuple[Run, ...]:
    if not _TRIGGER.search(text):
        return tuple(_linkify([Run(text)]))
    # "50% of" is a percentage in an abstract, never a TeX comment
    src = _BARE_PERCENT.sub(r"\\%", unwrap_text_math(text))
    try:
        nodes, _, _ = LatexWalker(src, latex_context=_db(), tolerant_parsing=True).get_latex_nodes()
        runs = _walk(nodes, Run(""))
    except Exception:  # a parser surprise never loses the text
        return tuple(_linkify([Run(text)]))
    return tuple(_merge(_linkify(runs)))


def runs(text: str) -> list[Run]:
    """``text`` as runs of plain text, bold/italic, links and verbatim math."""
    return list(_runs(text))


def to_html(text: str) -> Markup:
    """HTML: escaped text, ``<strong>``/``<em>``, links to http(s) targets only, math through the MathML path."""
    from digest.render.math import to_html as math_html

    parts: list[str] = []
    for r in _runs(text):
        piece = str(math_html(r.text)) if r.math else str(escape(r.text))
        if r.italic:
            piece = f"<em>{piece}</em>"
        if r.bold:
            piece = f"<strong>{piece}</strong>"
        if r.href:
            piece = f'<a href="{escape(r.href)}" rel="nofollow noopener">{piece}</a>'
        parts.append(piece)
    return Markup("".join(parts))


def to_markdown(text: str, inline: Callable[[str], str], url: Callable[[str], str]) -> str:
    """Markdown with ``inline`` escaping every piece of text (no HTML, no link syntax from the text itself):
    ``**bold**``, ``*italic*``, ``[label](target)`` with ``url`` checking the target; math verbatim."""
    parts: list[str] = []
    for r in _runs(text):
        lead, core, trail = re.match(r"(\s*)(.*?)(\s*)$", r.text, re.DOTALL).groups()  # type: ignore[union-attr]
        lead, trail = (" " if lead else ""), (" " if trail else "")
        core = inline(core)
        if not core or r.math:
            parts.append(lead + core + trail)
            continue
        if r.italic:
            core = f"*{core}*"
        if r.bold:
            core = f"**{core}**"
        if r.href:
            core = f"[{core}]({url(r.href)})"
        parts.append(lead + core + trail)
    return "".join(parts)


def plain(text: str) -> str:
    """Text-mode LaTeX resolved to plain text (math kept verbatim); a link whose label differs from its
    target reads ``label (target)``."""
    parts = []
    for r in _runs(text):
        if r.href and r.text.strip() != r.href:
            parts.append(f"{r.text} ({r.href})")
        else:
            parts.append(r.text)
    return re.sub(r"[ \t]{2,}", " ", "".join(parts)).strip()
