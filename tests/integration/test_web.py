"""`digest web` over real HTTP: vote controls on every entry and the rest of the day; signed links from a
real email record exactly one vote; tampered links are refused; without a secret, same-origin POST."""

from __future__ import annotations

import datetime as dt
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from bs4 import BeautifulSoup

from digest.config import load_settings
from digest.providers import Providers
from digest.replay import ArxivState, LLMState
from digest.replay.smtp import Mailbox, free_port
from tests.conftest import run_cli

DAY = "2025-11-06"


@contextmanager
def serve_web() -> Iterator[str]:
    import uvicorn

    from digest.web import make_app

    port = free_port()
    app = make_app(Providers.from_settings(load_settings(), need_llm=False))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        t.join(timeout=10)


def votes() -> list[str]:
    code, out, _ = run_cli("feedback", "list", "--format", "jsonl")
    assert code == 0
    return [line for line in out.splitlines() if line.strip()]


def test_signed_links_from_a_real_email_and_the_served_day_page(
    arxiv_state: ArxivState, servers: tuple[LLMState, Mailbox, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _llm, box, _out = servers
    arxiv_state.day = dt.date.fromisoformat(DAY)
    port = free_port()
    monkeypatch.setenv("DIGEST_FEEDBACK_SECRET", "a-long-random-secret-for-the-test-0123")
    monkeypatch.setenv("DIGEST_WEB_URL", f"http://127.0.0.1:{port}")
    code, stdout, stderr = run_cli("run", "--date", DAY)
    assert code == 0, stdout + stderr
    msg = box.messages[0]
    html = BeautifulSoup(msg.get_body(("html",)).get_content(), "html.parser")
    links = html.select("a[data-vote]")
    assert links and all(a["href"].startswith(f"http://127.0.0.1:{port}/vote?") for a in links)
    assert f"http://127.0.0.1:{port}/unsubscribe?" in msg["List-Unsubscribe"]
    import uvicorn

    from digest.web import make_app

    app = make_app(Providers.from_settings(load_settings(), need_llm=False))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    while not server.started:
        time.sleep(0.1)
    try:
        base = f"http://127.0.0.1:{port}"
        page = BeautifulSoup(httpx.get(f"{base}/2025/11/{DAY}.html").text, "html.parser")
        entries = page.select("article[data-arxiv-id]")
        assert entries
        for art in entries:
            ctl = art.select("[data-vote]")
            assert sorted(c["data-vote"] for c in ctl) == ["down", "up"]
            assert all(c["data-arxiv-id"] == art["data-arxiv-id"] and c["href"].startswith("/vote?") for c in ctl)
        rest = page.select("details.rest li[data-arxiv-id]")
        assert len(rest) == 43 - len(entries) and all(li.select_one('[data-vote="up"]') for li in rest)
        assert httpx.get(f"{base}/feed.xml").status_code == 200 and httpx.get(f"{base}/").status_code == 200
        up = links[0]["href"]
        r = httpx.get(up)
        assert r.status_code == 200 and "Thank you" in r.text
        assert len(votes()) == 1
        assert httpx.get(up).status_code == 200 and len(votes()) == 1  # following it again records nothing new
        q = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(up).query))
        other = next(a["data-arxiv-id"] for a in links if a["data-arxiv-id"] != q["id"])
        tampered = up.replace(q["id"], other)
        r = httpx.get(tampered)
        assert r.status_code == 403 and len(votes()) == 1
        assert httpx.get(up.replace("vote=up", "vote=down")).status_code == 403 and len(votes()) == 1
        unsub = msg["List-Unsubscribe"].split("<")[-1].rstrip(">")
        assert httpx.post(unsub).status_code == 200
        code, _out, _ = run_cli("run", "--date", DAY, "--resend")
        assert (
            code == 0 and len(box.messages) == 3 and box.envelopes[-1][1] == ["reader2@example.org"]
        )  # reader1 unsubscribed
    finally:
        server.should_exit = True
        t.join(timeout=10)


def test_without_a_secret_the_page_votes_through_a_same_origin_post(
    arxiv_state: ArxivState, servers: tuple[LLMState, Mailbox, Path]
) -> None:
    arxiv_state.day = dt.date.fromisoformat(DAY)
    code, stdout, stderr = run_cli("run", "--date", DAY)
    assert code == 0, stdout + stderr
    with serve_web() as base:
        page = BeautifulSoup(httpx.get(f"{base}/2025/11/{DAY}.html").text, "html.parser")
        form = page.select_one("article form.votes")
        assert form is not None and form["method"] == "post" and not page.select("a[data-vote]")
        pid = form.select_one('input[name="id"]')["value"]
        topic = form.select_one('input[name="topic"]')["value"]
        data = {"id": pid, "topic": topic, "vote": "down"}
        assert httpx.post(f"{base}/vote", data=data).status_code == 403  # no Origin: refused
        assert httpx.post(f"{base}/vote", data=data, headers={"Origin": "http://evil.example"}).status_code == 403
        assert votes() == []
        r = httpx.post(f"{base}/vote", data=data, headers={"Origin": base})
        assert r.status_code == 200 and len(votes()) == 1 and '"vote": "down"' in votes()[0]
        assert httpx.get(f"{base}/vote?id={pid}&vote=up&topic=any&who=web&sig=x").status_code == 403


def _raw_get(base: str, target: str) -> tuple[int, bytes]:
    """GET with the request target sent byte for byte (no client-side normalisation of ``..`` or ``%2e``)."""
    import socket

    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_nothing_outside_the_output_directory_is_served(base_env: dict[str, str], tmp_path: Path) -> None:
    out = Path(base_env["DIGEST_OUTPUT_DIR"])
    out.mkdir(parents=True)
    (out / "index.html").write_text("<p>the index</p>", encoding="utf-8")
    (out / "feed.xml").write_text("<rss/>", encoding="utf-8")
    sibling = out.with_name(out.name + "-x")  # shares the output dir's name as a prefix
    sibling.mkdir()
    (sibling / "secret.txt").write_text("SECRET-OUTSIDE", encoding="utf-8")
    (tmp_path / "digest.db.txt").write_text("SECRET-PARENT", encoding="utf-8")
    with serve_web() as base:
        assert _raw_get(base, "/") == (200, b"<p>the index</p>")
        assert _raw_get(base, "/feed.xml")[0] == 200
        for target in (
            f"/../{sibling.name}/secret.txt",
            f"/%2e%2e/{sibling.name}/secret.txt",
            f"/..%2f{sibling.name}%2fsecret.txt",
            f"/.%2e/{sibling.name}/secret.txt",
            "/../digest.db.txt",
            f"//{sibling}/secret.txt",
            f"/{out.name}/../{sibling.name}/secret.txt",
        ):
            code, body = _raw_get(base, target)
            assert code == 404, (target, code)
            assert b"SECRET" not in body, target
