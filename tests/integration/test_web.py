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
def serve_web(port: int | None = None) -> Iterator[str]:
    """`digest web`'s app on 127.0.0.1 (``port``: the one the emails' links point at), in a thread."""
    import uvicorn

    from digest.web import make_app

    port = port or free_port()
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
        anonymous = BeautifulSoup(httpx.get(f"{base}/2025/11/{DAY}.html").text, "html.parser")
        assert anonymous.select("article[data-arxiv-id]") and not anonymous.select("[data-vote], form.votes")
        # the page link of the reader's email carries their signed token: their own vote controls
        page_link = next(a["href"] for a in html.select("a") if f"/2025/11/{DAY}.html?" in a.get("href", ""))
        assert page_link.startswith(base) and "t=" in page_link
        page = BeautifulSoup(httpx.get(page_link).text, "html.parser")
        entries = page.select("article[data-arxiv-id]")
        assert entries
        reader = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(page_link).query))["r"]
        for art in entries:
            ctl = art.select("[data-vote]")
            assert sorted(c["data-vote"] for c in ctl) == ["down", "up"]
            assert all(c["data-arxiv-id"] == art["data-arxiv-id"] and c["href"].startswith("/vote?") for c in ctl)
            assert all(f"who={urllib.parse.quote(reader)}" in c["href"] for c in ctl)
        rest = page.select("details.rest li[data-arxiv-id]")
        assert len(rest) == 43 - len(entries) and all(li.select_one('[data-vote="up"]') for li in rest)
        assert httpx.get(page_link.replace("t=", "t=x")).status_code == 403  # a tampered reader token
        assert httpx.head(links[0]["href"]).status_code == 200 and votes() == []  # HEAD: a scanner, never a vote
        assert httpx.get(f"{base}/feed.xml").status_code == 200 and httpx.get(f"{base}/").status_code == 200
        up = links[0]["href"]
        q = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(up).query))
        r = httpx.get(up)  # recorded, then back to the paper on its day's page (no dead end, no JavaScript)
        assert r.status_code == 303 and r.headers["location"].endswith(f"#arxiv-{q['id']}"), r.headers
        assert r.headers["location"].startswith(f"/2025/11/{DAY}.html?r=")
        assert len(votes()) == 1
        back = BeautifulSoup(httpx.get(base + r.headers["location"]).text, "html.parser")
        voted = back.select_one(f'[id="arxiv-{q["id"]}"]')
        assert voted is not None
        shown = back.select(f'article[data-arxiv-id="{q["id"]}"] [data-voted], li[data-arxiv-id="{q["id"]}"] [data-voted]')
        assert shown and shown[0]["data-voted"] == "up"  # the page shows the vote already cast
        assert httpx.get(up).status_code == 303 and len(votes()) == 1  # following it again records nothing new
        other = next(a["data-arxiv-id"] for a in links if a["data-arxiv-id"] != q["id"])
        tampered = up.replace(q["id"], other)
        r = httpx.get(tampered)
        assert r.status_code == 403 and len(votes()) == 1
        assert httpx.get(up.replace("vote=up", "vote=down")).status_code == 403 and len(votes()) == 1
        unsub = msg["List-Unsubscribe"].split("<")[-1].rstrip(">")
        assert httpx.head(unsub).status_code == 200 and httpx.get(unsub).status_code == 200  # asks, changes nothing
        code, _out, _ = run_cli("run", "--date", DAY, "--resend")
        assert code == 0 and len(box.messages) == 4  # both readers still subscribed
        assert httpx.post(unsub, data={"List-Unsubscribe": "One-Click"}).status_code == 200  # RFC 8058
        code, _out, _ = run_cli("run", "--date", DAY, "--resend")
        assert (
            code == 0 and len(box.messages) == 5 and box.envelopes[-1][1] == ["reader2@example.org"]
        )  # reader1 unsubscribed
    finally:
        server.should_exit = True
        t.join(timeout=10)


def test_operator_mode_without_a_secret_votes_through_a_same_origin_post(
    arxiv_state: ArxivState, servers: tuple[LLMState, Mailbox, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    arxiv_state.day = dt.date.fromisoformat(DAY)
    code, stdout, stderr = run_cli("run", "--date", DAY)
    assert code == 0, stdout + stderr
    with serve_web() as base:  # not in operator mode: no controls, and a forged POST is refused
        assert not BeautifulSoup(httpx.get(f"{base}/2025/11/{DAY}.html").text, "html.parser").select("form.votes")
        r = httpx.post(f"{base}/vote", data={"id": "x", "vote": "up", "topic": "any"}, headers={"Origin": base})
        assert r.status_code == 403 and votes() == []
    monkeypatch.setenv("DIGEST_WEB_OPERATOR", "true")
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
        assert r.status_code == 303 and len(votes()) == 1 and '"vote": "down"' in votes()[0]
        assert r.headers["location"] == f"/2025/11/{DAY}.html#arxiv-{pid}"  # back to the paper
        back = BeautifulSoup(httpx.get(base + r.headers["location"]).text, "html.parser")
        assert back.select_one(f'article[data-arxiv-id="{pid}"] [data-voted="down"]') is not None
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


def test_an_anonymous_visitor_of_a_public_server_changes_no_decision(
    arxiv_state: ArxivState, servers: tuple[LLMState, Mailbox, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    arxiv_state.day = dt.date.fromisoformat(DAY)
    monkeypatch.setenv("DIGEST_FEEDBACK_SECRET", "a-long-random-secret-for-the-test-0123")
    code, stdout, stderr = run_cli("run", "--date", DAY)
    assert code == 0, stdout + stderr
    port = free_port()
    monkeypatch.setenv("DIGEST_WEB_URL", f"http://127.0.0.1:{port}")
    import uvicorn

    from digest.web import make_app

    server = uvicorn.Server(uvicorn.Config(make_app(Providers.from_settings(load_settings(), need_llm=False)),
                                           host="127.0.0.1", port=port, log_level="warning"))  # fmt: skip
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    while not server.started:
        time.sleep(0.1)
    base = f"http://127.0.0.1:{port}"
    try:
        seen: set[str] = set()
        todo = ["/"]
        while todo and len(seen) < 200:  # follow every link and submit every form the site shows a stranger
            path = todo.pop()
            if path in seen:
                continue
            seen.add(path)
            for method in ("GET", "HEAD"):
                r = httpx.request(method, base + path)
                assert "default-src 'none'" in r.headers["content-security-policy"]
                assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
            if "html" not in r.headers.get("content-type", ""):
                continue
            doc = BeautifulSoup(httpx.get(base + path).text, "html.parser")
            for a in doc.select("a[href]"):
                href = urllib.parse.urljoin(base + path, a["href"])
                if href.startswith(base):
                    todo.append(href[len(base):])
            for form in doc.select("form"):
                data = {i["name"]: i.get("value", "") for i in form.select("input[name]")}
                httpx.post(urllib.parse.urljoin(base + path, form.get("action", path)), data=data,
                           headers={"Origin": base})  # fmt: skip
        assert len(seen) > 3 and votes() == []
        assert httpx.get(f"{base}/", headers={"Host": "evil.example"}).status_code == 400  # Host allow-list
    finally:
        server.should_exit = True
        t.join(timeout=10)
