"""Signed vote and unsubscribe links (HMAC-SHA256 with ``DIGEST_FEEDBACK_SECRET``) and vote files.

A link is bound to everything it does — paper, vote, topic, subscriber — so it cannot be forged, edited,
or replayed for another paper or another reader. Without a secret no links are made; ``digest web``
pages then vote through a same-origin POST.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from digest.errors import InputError
from digest.store import ANY, Vote
from digest.text import split_id

VOTES = ("up", "down")


def _mac(secret: str, *parts: str) -> str:
    msg = "\x1f".join(("v1", *parts)).encode()
    digest = hmac.new(secret.encode(), msg, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode().rstrip("=")


def sign_vote(secret: str, paper_id: str, vote: str, topic: str, who: str) -> str:
    return _mac(secret, "vote", paper_id, vote, topic, who)


def verify_vote(secret: str, paper_id: str, vote: str, topic: str, who: str, sig: str) -> bool:
    return hmac.compare_digest(sign_vote(secret, paper_id, vote, topic, who), sig or "")


def sign_unsubscribe(secret: str, address: str) -> str:
    return _mac(secret, "unsubscribe", address)


def verify_unsubscribe(secret: str, address: str, sig: str) -> bool:
    return hmac.compare_digest(sign_unsubscribe(secret, address), sig or "")


@dataclass(frozen=True)
class VoteLinks:
    up: str
    down: str


def vote_links(base_url: str, secret: str, paper_id: str, topic: str, who: str) -> VoteLinks:
    base = base_url.rstrip("/")

    def link(vote: str) -> str:
        q = {
            "id": paper_id,
            "vote": vote,
            "topic": topic,
            "who": who,
            "sig": sign_vote(secret, paper_id, vote, topic, who),
        }
        return f"{base}/vote?{urllib.parse.urlencode(q)}"

    return VoteLinks(link("up"), link("down"))


def sign_reader(secret: str, address: str) -> str:
    """The reader token of a page link from ``address``'s email: that reader may vote on the page."""
    return _mac(secret, "reader", address)


def verify_reader(secret: str, address: str, token: str) -> bool:
    return bool(address) and hmac.compare_digest(sign_reader(secret, address), token or "")


def reader_page_link(base_url: str, secret: str, address: str, rel: str) -> str:
    """``digest web``'s page ``rel`` for one reader (``?r=address&t=token``): it shows that reader's vote controls."""
    q = {"r": address, "t": sign_reader(secret, address)}
    return f"{base_url.rstrip('/')}/{rel.lstrip('/')}?{urllib.parse.urlencode(q)}"


def unsubscribe_link(base_url: str, secret: str, address: str) -> str:
    q = {"who": address, "sig": sign_unsubscribe(secret, address)}
    return f"{base_url.rstrip('/')}/unsubscribe?{urllib.parse.urlencode(q)}"


def parse_vote_lines(lines: Sequence[str], known_topics: Sequence[str], source: str = "import") -> list[Vote]:
    """``{"id": …, "vote": "up"|"down", "topics": [...]?, "who"?}`` per line; an error names the line."""
    out: list[Vote] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            o: Any = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"line {n}: not valid JSON ({exc.msg}); nothing was imported") from None
        if not isinstance(o, dict):
            raise InputError(f"line {n}: expected a JSON object; nothing was imported")
        try:
            pid = split_id(str(o.get("id", "")))[0]
        except ValueError:
            raise InputError(f"line {n}: {o.get('id')!r} is not an arXiv id; nothing was imported") from None
        vote = o.get("vote")
        if vote not in VOTES:
            raise InputError(f'line {n}: vote must be "up" or "down", not {vote!r}; nothing was imported')
        topics = o.get("topics") or [ANY]
        if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
            raise InputError(f"line {n}: topics must be a list of topic ids; nothing was imported")
        unknown = [t for t in topics if t != ANY and t not in known_topics]
        if unknown:
            raise InputError(
                f"line {n}: unknown topic(s) {', '.join(unknown)} (known: {', '.join(known_topics)}); "
                "nothing was imported"
            )
        for t in topics:
            who = str(o.get("reader") or o.get("who") or "")
            out.append(Vote(paper_id=pid, topic=t, vote=vote, who=who, source=source))
    return out


def read_vote_file(path: Path, known_topics: Sequence[str]) -> list[Vote]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"cannot read {path} ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise InputError(f"{path}:{line}: not UTF-8 text (byte {exc.object[exc.start]:#04x}); save it as UTF-8 "
                         "and import again; nothing was imported") from None  # fmt: skip
    return parse_vote_lines(lines, known_topics)
