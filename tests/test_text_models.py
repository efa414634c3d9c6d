from __future__ import annotations

import pytest

from digest.models import Paper
from digest.text import clean_abstract, clean_text, split_id


def test_prefix_stripped_and_wraps_collapsed() -> None:
    raw = "arXiv:2403.13298v1 Announce Type: cross \nAbstract: Rotary   Position\n  Embedding $O(n^2)$ at https://x.org/a_b."
    assert clean_abstract(raw) == "Rotary Position Embedding $O(n^2)$ at https://x.org/a_b."


def test_replace_cross_prefix() -> None:
    assert clean_abstract("arXiv:2203.01250v3 Announce Type: replace-cross \nAbstract: X y") == "X y"


def test_never_truncates_long_abstract() -> None:
    text = "word " * 2000
    assert len(clean_abstract(text)) == len(text.strip())


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("oai:arXiv.org:2403.13298v2", ("2403.13298", 2)),
        ("http://arxiv.org/abs/2202.12139v1", ("2202.12139", 1)),
        ("https://arxiv.org/abs/2604.21935", ("2604.21935", None)),
        ("http://arxiv.org/abs/hep-ex/0406020v1", ("hep-ex/0406020", 1)),
    ],
)
def test_split_id(raw: str, expected: tuple[str, int | None]) -> None:
    assert split_id(raw) == expected


def test_paper_cleans_and_defaults_urls() -> None:
    p = Paper(id="2403.13298", version=1, title="A\n  title", abstract="Abstract:  b\nc")
    assert p.title == "A title" and p.abstract == "b c"
    assert p.abs_url == "https://arxiv.org/abs/2403.13298"
    assert clean_text(None) == ""
