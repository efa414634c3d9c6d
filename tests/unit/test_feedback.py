"""Votes: files with a bad line import nothing; signed links bind everything they do."""

from __future__ import annotations

from pathlib import Path

import pytest

from digest.errors import InputError
from digest.feedback import parse_vote_lines, sign_unsubscribe, sign_vote, verify_unsubscribe, verify_vote
from digest.store import Store, Vote


def test_vote_lines_all_or_nothing_with_the_line_number() -> None:
    good = [
        '{"id": "2606.00001v2", "vote": "up"}',
        '{"id": "2606.00002", "vote": "down", "topics": ["clip", "editing"]}',
    ]
    votes = parse_vote_lines(good, ["clip", "editing"])
    assert [(v.paper_id, v.vote, v.topic) for v in votes] == [
        ("2606.00001", "up", "any"), ("2606.00002", "down", "clip"), ("2606.00002", "down", "editing")]  # fmt: skip
    for bad, msg in [
        ('{"id": "2606.00003", "vote": "meh"}', "line 3: vote must be"),
        ('{"id": "nonsense", "vote": "up"}', "line 3: 'nonsense' is not an arXiv id"),
        ('{"id": "2606.00003", "vote": "up", "topics": ["gs"]}', "line 3: unknown topic(s) gs"),
        ("not json", "line 3: not valid JSON"),
    ]:
        with pytest.raises(InputError, match=msg.replace("(", r"\(").replace(")", r"\)")):
            parse_vote_lines([*good, bad], ["clip", "editing"])


def test_signatures_bind_paper_vote_topic_and_reader() -> None:
    sig = sign_vote("s" * 32, "2606.00001", "up", "clip", "a@x.org")
    assert verify_vote("s" * 32, "2606.00001", "up", "clip", "a@x.org", sig)
    for args in [("2606.00002", "up", "clip", "a@x.org"), ("2606.00001", "down", "clip", "a@x.org"),
                 ("2606.00001", "up", "editing", "a@x.org"), ("2606.00001", "up", "clip", "b@x.org")]:  # fmt: skip
        assert not verify_vote("s" * 32, *args, sig)
    assert not verify_vote("other-secret-xxxxxxxxxxxxxxxxxxx", "2606.00001", "up", "clip", "a@x.org", sig)
    assert verify_unsubscribe("s" * 32, "a@x.org", sign_unsubscribe("s" * 32, "a@x.org"))


def test_latest_vote_wins(tmp_path: Path) -> None:
    s = Store(f"sqlite:///{tmp_path}/v.db")
    s.add_votes([Vote(paper_id="1", vote="up"), Vote(paper_id="1", vote="down"), Vote(paper_id="2", vote="up")])
    assert sorted((v.paper_id, v.vote) for v in s.current_votes()) == [("1", "down"), ("2", "up")]
    assert len(s.all_votes()) == 3
