"""The Markdown digest keeps the reference format; untrusted text cannot break it or make links."""

from __future__ import annotations

import re

from markdown_it import MarkdownIt

from digest.config import Settings
from digest.models import Paper
from digest.render import latex
from digest.render.build import build_digest
from digest.store import Store
from tests.shared import shared_path
from tests.unit.render.conftest import DAY, HOSTILE, NAMES


def entries_of(md: str) -> tuple[list[str], dict[int, list[str]]]:
    """(table rows, footnote number → its lines) of a digest in the reference format."""
    head, _, body = md.partition("\n# 详细\n")
    rows = [line for line in head.splitlines() if line.startswith("| [^")]
    notes: dict[int, list[str]] = {}
    cur: list[str] | None = None
    for line in body.splitlines():
        m = re.match(r"\[\^(\d+)\]: ", line)
        if m:
            cur = notes.setdefault(int(m.group(1)), [])
        if cur is not None:
            cur.append(line)
    for lines in notes.values():
        while lines and lines[-1] == "":
            lines.pop()
    return rows, notes


def paragraphs(lines: list[str]) -> list[str]:
    return [line[4:] for line in lines[1:] if line.startswith("    ") and line.strip()]


def shape(lines: list[str]) -> list[str]:
    return ["title" if re.match(r"\[\^\d+\]: \S", ln) else "para" if ln.startswith("    ") else "blank" for ln in lines]


def test_markdown_matches_reference_structure(rendered: tuple[Settings, Store, list[Paper]]) -> None:
    settings, store, papers = rendered
    md = (settings.output_dir / "2026/06/2026-06-02.md").read_text(encoding="utf-8")
    ref = shared_path("reference", "digest-format.md").read_text(encoding="utf-8")
    assert md.splitlines()[2:6] == ["# 摘要", "", "| Ref | Title | Summary |", "| --- | --- | --- |"]
    rows, notes = entries_of(md)
    _ref_rows, ref_notes = entries_of(ref)
    assert len(rows) == len(notes) == len(papers)
    assert list(notes) == list(range(1, len(papers) + 1))
    ref_shape = shape(ref_notes[1])
    for lines in notes.values():
        assert shape(lines)[: len(ref_shape) - 1] == ref_shape[:-1]
        assert lines[-1] == "    " and shape(lines)[-3:] == ["blank", "para", "para"]
        assert len(lines) == len(ref_notes[1]) + 2
    d = build_digest(DAY, store, NAMES)
    scores = [e.relevance.score for e in d.entries if e.relevance]
    assert scores == sorted(scores, reverse=True)
    for e in d.entries:
        p, s = e.paper, e.summary
        assert s is not None
        row = rows[e.n - 1]
        assert row.startswith(f"| [^{e.n}] | [") and f"](https://arxiv.org/abs/{p.id}) | " in row
        paras = paragraphs(notes[e.n])
        assert paras[1] == f"[https://arxiv.org/abs/{p.id}](https://arxiv.org/abs/{p.id})"
        plain = re.sub(r"\[(https?://[^\]]+)\]\(\1\)", r"\1", paras[5])  # bare URLs are links now
        plain = plain.replace("&lt;", "<").replace("&gt;", ">").replace("\\[", "[").replace("\\]", "]")
        assert plain == latex.plain(" ".join(p.abstract.split()))  # text-mode LaTeX resolved, nothing else lost
        assert "image editing" in paras[6] or "CLIP / contrastive VLM" in paras[6]  # the topic in the meta line
        if s.status.value == "fallback":
            assert "⚠" in paras[2] and "answer was rejected" in paras[2] and "wrong language" not in paras[2] and "⚠" in row
            assert paras[3] == "First sentence."


def test_untrusted_text_cannot_break_the_table_or_make_links(rendered: tuple[Settings, Store, list[Paper]]) -> None:
    settings, _store, papers = rendered
    md = (settings.output_dir / "2026/06/2026-06-02.md").read_text(encoding="utf-8")
    tokens = MarkdownIt("commonmark").enable("table").parse(md)
    cells_per_row: list[int] = []
    for t in tokens:
        if t.type == "tr_open":
            cells_per_row.append(0)
        elif t.type in ("td_open", "th_open"):
            cells_per_row[-1] += 1
    assert cells_per_row == [3] * (len(papers) + 1)
    html = MarkdownIt("commonmark").enable("table").render(md)
    assert "<script>" not in html and "<b>bold</b>" not in html and "<img" not in html
    assert "javascript:" not in re.sub(r"[^\"]*", "", "") and 'href="javascript:' not in html
    hrefs = re.findall(r'href="([^"]+)"', html)  # plain CommonMark reads footnotes as link definitions
    assert hrefs and not any(re.match(r"\s*(javascript|vbscript|data|file):", h, re.I) for h in hrefs)
    assert all(h.startswith("https://arxiv.org/abs/") for h in re.findall(r'href="(http[^"]+)"', html))
    assert "\u202e" not in md
    assert HOSTILE[0].replace("|", "\\|") in md
    from digest.render.view import md_note

    assert md_note("javascript:alert(1)") == "javascript：alert(1)" and md_note("CLIP: 对比") == "CLIP: 对比"
