"""Every id that becomes a path is checked where it enters (topics file, labels) and where it is written."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from digest.config import Settings
from digest.errors import ConfigError, InputError
from digest.models import Edition, RenderResult
from digest.relevance.data import read_labels
from digest.render import render_site
from digest.store import Store
from digest.topics import read_topics


def _topics(tmp_path: Path, tid: str, keywords: str = "") -> Path:
    p = tmp_path / "topics.toml"
    p.write_text(f"[[topics]]\nid = {json.dumps(tid)}\nname = \"X\"\nkeywords = {json.dumps(keywords)}\n")
    return p


@pytest.mark.parametrize("tid", ["gs\n", "../../ESCAPED", "any", "other", "GS", ""])
def test_bad_topic_ids_in_the_topics_file_are_refused(tmp_path: Path, tid: str) -> None:
    with pytest.raises(ConfigError, match="topic id"):
        read_topics(_topics(tmp_path, tid))


def test_a_bad_keywords_regex_is_refused_at_load(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a valid regular expression"):
        read_topics(_topics(tmp_path, "gs", "gauss(ian"))
    assert read_topics(_topics(tmp_path, "gs", "gauss(ian)?")).ids == ["gs"]


def test_a_labels_file_with_a_path_for_a_topic_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "labels.jsonl"
    p.write_text(json.dumps({"id": "2606.00001", "label": 1, "topics": ["../../../ESCAPED"]}) + "\n")
    with pytest.raises(InputError, match=r"labels\.jsonl:1: topic id"):
        read_labels(p)


def test_a_topic_id_never_becomes_a_path_outside_the_output(settings: Settings, store: Store, tmp_path: Path) -> None:
    ed = Edition(topic_names={"../../ESCAPED": "escaped"})
    with pytest.raises(ConfigError, match="topic id"):
        render_site(ed, settings, store, RenderResult(day=dt.date(2026, 6, 2)))
    assert not list(tmp_path.rglob("ESCAPED*"))


def test_a_read_only_store_and_a_non_utf8_vote_file_get_one_line(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import run_cli

    votes = tmp_path / "votes.jsonl"
    votes.write_bytes(b'{"id": "2606.00001", "vote": "up"}\n{"id": "2606.0000\xff2", "vote": "up"}\n')
    code, _out, err = run_cli("feedback", "import", str(votes))
    assert code == 1 and "votes.jsonl:2: not UTF-8" in err and "bug" not in err
    db = Path(settings.db_url.removeprefix("sqlite:///"))
    Store(settings.db_url).close()
    from digest.errors import StoreError
    from digest.store import Vote

    ro = Store(f"sqlite:///file:{db}?mode=ro&uri=true")  # what a read-only file or mount gives (root ignores chmod)
    with pytest.raises(StoreError) as info:
        ro.add_votes([Vote(paper_id="2606.00001", vote="up")])
    assert "read-only" in str(info.value) and "INSERT" not in str(info.value) and "\n" not in str(info.value)
