"""``digest web``: the archive (day pages, index, feeds) and the feedback endpoint — safe to expose.

Who may vote: a **reader** who opened the page from their email (the link carries ``?r=address&t=token``, a
signed reader token; the page then shows that reader's signed vote links, the same as in the email), or
everyone when the operator says so (``DIGEST_WEB_OPERATOR=true``, for a private server: the controls vote
as the operator). An anonymous visitor of a public server sees the digest and no control that trains anything.
Day pages are rendered from the store off the event loop (at most four at a time), with two vote controls per
entry (``data-arxiv-id``, ``data-vote``) and a collapsed "rest of the day". A bad or tampered link gets 403
and records nothing; ``HEAD`` never changes state (mail scanners send it); ``GET /unsubscribe`` asks for a
confirmation and ``POST`` (RFC 8058 one-click) unsubscribes. With ``DIGEST_WEB_URL`` set, only its host
(and loopback) is served; every answer carries a CSP and frame-ancestors 'none'.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import urllib.parse
from pathlib import Path
from typing import Any

import anyio.to_thread
from anyio import CapacityLimiter
from markupsafe import Markup, escape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.staticfiles import StaticFiles

from digest.errors import ConfigError
from digest.feedback import VOTES, sign_reader, sign_vote, verify_reader, verify_unsubscribe, verify_vote, vote_links
from digest.personalise import load_profiles, with_reader_parts
from digest.providers import Providers
from digest.relevance.personal import Profiles, is_reader
from digest.render.build import build_digest
from digest.render.formats import RestRow, html_page
from digest.store import ANY, Vote

WEB_WHO = "web"
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",  # a reader's token in the page URL never leaks through a link
}
_DAY = re.compile(r"^/(\d{4})/(\d{2})/(\d{4}-\d{2}-\d{2})\.html$")


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    doc = (
        '<!DOCTYPE html><html lang="zh-Hans"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{escape(title)}</title></head><body style="font-family: sans-serif; max-width: 40rem; '
        f'margin: 2rem auto"><h1>{escape(title)}</h1>{body}<p><a href="/">all days</a></p></body></html>'
    )
    return HTMLResponse(doc, status_code=status)


class WebApp:
    def __init__(self, providers: Providers) -> None:
        self.p = providers
        s = providers.settings
        self.secret = s.feedback_secret.get_secret_value() if s.feedback_secret else ""
        self.out = Path(s.output_dir).resolve()
        self.static = StaticFiles(directory=self.out, html=True, check_dir=False)
        self.operator = s.web_operator
        self.render_slots = CapacityLimiter(4)  # page renders never take every worker thread from static files
        self._fits: dict[str, tuple[tuple[int, str], Profiles]] = {}

    # --- vote controls -----------------------------------------------------------------------
    def _link(self, paper_id: str, vote: str, topic: str) -> str:
        q = {"id": paper_id, "vote": vote, "topic": topic, "who": WEB_WHO,
             "sig": sign_vote(self.secret, paper_id, vote, topic, WEB_WHO)}  # fmt: skip
        return "/vote?" + urllib.parse.urlencode(q)

    def _reader_controls(self, reader: str, paper_id: str, topic: str, votes: tuple[str, ...] = VOTES) -> Markup:
        """A reader's signed vote links (the email's): they record that reader's votes."""
        label = {"up": "👍 more like this", "down": "👎 not for me"}
        links = vote_links("", self.secret, paper_id, topic, reader)
        parts = [
            f'<a class="vote" href="{escape(getattr(links, v))}" data-arxiv-id="{escape(paper_id)}" '
            f'data-vote="{v}" rel="nofollow">{label[v]}</a>'
            for v in votes
        ]
        return Markup(f'<p class="votes">{"".join(parts)}</p>')

    def _controls(self, paper_id: str, topic: str, votes: tuple[str, ...] = VOTES) -> Markup:
        """The operator's controls (``DIGEST_WEB_OPERATOR``): signed links with a secret, else a same-origin form."""
        label = {"up": "👍 more like this", "down": "👎 not for me"}
        parts = []
        if self.secret:
            for v in votes:
                parts.append(
                    f'<a class="vote" href="{escape(self._link(paper_id, v, topic))}" '
                    f'data-arxiv-id="{escape(paper_id)}" data-vote="{v}" rel="nofollow">{label[v]}</a>'
                )
            return Markup(f'<p class="votes">{"".join(parts)}</p>')
        for v in votes:
            parts.append(
                f'<button type="submit" name="vote" value="{v}" data-arxiv-id="{escape(paper_id)}" '
                f'data-vote="{v}">{label[v]}</button>'
            )
        return Markup(
            f'<form class="votes" method="post" action="/vote">'
            f'<input type="hidden" name="id" value="{escape(paper_id)}">'
            f'<input type="hidden" name="topic" value="{escape(topic)}">{"".join(parts)}</form>'
        )

    def day_page(self, day: dt.date, reader: str = "") -> str | None:
        """The day's page; vote controls for ``reader`` (verified) or in operator mode, else none."""
        store = self.p.store
        d = build_digest(day, store, self.p.topic_names)
        papers = store.papers_of_day(day)
        if not papers:
            return None
        votes: Any = None
        rest_vote: Any = None
        if reader:
            votes = lambda e: self._reader_controls(reader, e.id, e.best_topic or ANY)  # noqa: E731
            rest_vote = lambda r: self._reader_controls(reader, r.id, ANY, ("up",))  # noqa: E731
        elif self.operator:
            votes = lambda e: self._controls(e.id, e.best_topic or ANY)  # noqa: E731
            rest_vote = lambda r: self._controls(r.id, ANY, ("up",))  # noqa: E731
        part = None
        if reader:
            part = with_reader_parts(d, self._profiles(reader), self.p, [reader]).readers.get(reader)
        chosen = {e.paper.id for e in d.entries}
        rel = store.get_relevance([(p.id, p.version) for p in papers])
        rest = sorted(
            (
                RestRow(p.id, p.title, r.score if (r := rel.get((p.id, p.version))) else 0.0)
                for p in papers
                if p.id not in chosen
            ),
            key=lambda r: -r.score,
        )
        return html_page(
            d,
            self.p.edition,
            index_href="/",
            votes=votes,
            rest=rest,
            rest_vote=rest_vote,
            learn=part.learn if part else None,
            feedback_line=part.line if part else "",
            voted=part.voted if part else self._operator_votes() if self.operator else None,
        )

    def _operator_votes(self) -> dict[str, str]:
        """Paper id → the operator's latest vote (operator mode shows them on the page)."""
        out: dict[str, str] = {}
        for v in sorted(self.p.store.all_votes(), key=lambda v: v.created):
            if not is_reader(v.who):
                out[v.paper_id] = v.vote
        return out

    def _profiles(self, reader: str) -> Profiles:
        """The reader's model, refit when their votes (or the topic model) changed since the last page."""
        key = (len(self.p.store.all_votes()), self.p.model.name)
        hit = self._fits.get(reader)
        if hit is None or hit[0] != key:
            hit = (key, load_profiles(self.p, [reader]))
            if len(self._fits) > 256:
                self._fits.clear()
            self._fits[reader] = hit
        return hit[1]

    # --- endpoints -------------------------------------------------------------------------
    async def index(self, request: Request) -> Response:
        path = request.url.path
        m = _DAY.match(path)
        if m:
            try:
                day = dt.date.fromisoformat(m.group(3))
            except ValueError:
                return _page("Not found", "<p>No such day.</p>", 404)
            q = request.query_params
            who = q.get("r", "")
            reader = who if self.secret and verify_reader(self.secret, who, q.get("t", "")) else ""
            if who and not reader:
                return _page("Link not valid", "<p>This page link is not valid (changed or forged).</p>", 403)
            # rendering never blocks the event loop, and never takes every thread from static files
            page = await anyio.to_thread.run_sync(self.day_page, day, reader, limiter=self.render_slots)
            if page is not None:
                return HTMLResponse(page)
        # everything else is a file under the output directory, served by Starlette's StaticFiles: it
        # normalises the path and refuses anything whose real path is outside the directory
        rel = os.path.normpath(os.path.join(*path.split("/"))) if path.strip("/") else "."
        try:
            resp = await self.static.get_response(rel, request.scope)
        except HTTPException:
            return _page("Not found", "<p>Nothing here.</p>", 404)
        if rel.endswith(".xml") and "atom" not in rel.rsplit("/", 1)[-1]:
            resp.headers["content-type"] = "application/rss+xml"
        return resp

    def _record(self, paper_id: str, vote: str, topic: str, who: str, source: str) -> tuple[bool, str]:
        known = {p.id for p in self.p.store.get_papers([paper_id])}
        if paper_id not in known or vote not in VOTES or (topic != ANY and topic not in self.p.topic_names):
            return False, "unknown paper, vote or topic"
        latest = self.p.store.latest_vote(paper_id, topic, who)  # one indexed row, whatever the number of votes
        if latest is not None and latest.vote == vote:
            return True, "already recorded"  # following the same link twice records one vote
        self.p.store.add_votes([Vote(paper_id=paper_id, topic=topic, vote=vote, who=who, source=source)])
        return True, "recorded"

    def _back(self, paper_id: str, vote: str, topic: str, how: str, reader: str = "") -> Response:
        """After a vote: back to the paper on its day's page (303; no dead end, no JavaScript), where the vote
        now shows; a paper without a known day gets a short confirmation."""
        [paper] = self.p.store.get_papers([paper_id])
        if paper.announced is None:
            return self._confirm(paper_id, vote, topic, how)
        day = paper.announced
        q = "?" + urllib.parse.urlencode({"r": reader, "t": sign_reader(self.secret, reader)}) if reader else ""
        target = f"/{day:%Y}/{day:%m}/{day.isoformat()}.html{q}#arxiv-{urllib.parse.quote(paper_id)}"
        return RedirectResponse(target, status_code=303)

    def _confirm(self, paper_id: str, vote: str, topic: str, how: str) -> HTMLResponse:
        [paper] = self.p.store.get_papers([paper_id])
        what = "👍 more like this" if vote == "up" else "👎 not for me"
        name = self.p.topic_names.get(topic, "any topic")
        return _page(
            "Thank you",
            f'<p>{what} — <a href="{escape(paper.abs_url)}">{escape(paper.title)}</a> ({escape(name)}): {how}.</p>'
            "<p>Your model learns from it before the next edition.</p>"
            f'<p><a href="{escape(paper.abs_url)}">back to the paper</a></p>',
        )

    async def vote_get(self, request: Request) -> Response:
        if request.method == "HEAD":  # mail scanners and link checkers: never a vote
            return Response(status_code=200, headers={"content-type": "text/html; charset=utf-8"})
        q = request.query_params
        pid, vote, topic, who, sig = (q.get(k, "") for k in ("id", "vote", "topic", "who", "sig"))
        if not self.secret or not verify_vote(self.secret, pid, vote, topic, who, sig):
            return _page(
                "Link not valid", "<p>This vote link is not valid (changed or forged). Nothing was recorded.</p>", 403
            )
        source = "web" if who == WEB_WHO else "email"
        ok, how = self._record(pid, vote, topic, who, source)
        if not ok:
            return _page("Not recorded", f"<p>{escape(how)}.</p>", 404)
        return self._back(pid, vote, topic, how, "" if who == WEB_WHO else who)

    async def vote_post(self, request: Request) -> Response:
        if not self.operator:  # a form vote has no reader behind it: the operator's, only when allowed
            return _page("Not allowed", "<p>Vote with the links of your email's page.</p>", 403)
        origin = request.headers.get("origin") or request.headers.get("referer") or ""
        host = request.headers.get("host", "")
        if not origin or urllib.parse.urlparse(origin).netloc != host:
            return _page("Not allowed", "<p>Votes are accepted from this site's own pages only.</p>", 403)
        form = await request.form()
        pid, vote, topic = (str(form.get(k, "")) for k in ("id", "vote", "topic"))
        ok, how = self._record(pid, vote, topic or ANY, WEB_WHO, "web")
        if not ok:
            return _page("Not recorded", f"<p>{escape(how)}.</p>", 400)
        return self._back(pid, vote, topic or ANY, how)

    async def unsubscribe(self, request: Request) -> Response:
        if request.method == "HEAD":
            return Response(status_code=200, headers={"content-type": "text/html; charset=utf-8"})
        q = request.query_params
        if request.method == "POST":
            form = await request.form()
            q = {**dict(q), **{k: str(v) for k, v in form.items()}}  # type: ignore[assignment]
        who, sig = q.get("who", ""), q.get("sig", "")
        if not self.secret or not verify_unsubscribe(self.secret, who, sig):
            return _page("Link not valid", "<p>This unsubscribe link is not valid. Nothing was changed.</p>", 403)
        if request.method == "GET":  # a link follower (or a scanner) only sees the question
            return _page(
                "Unsubscribe?",
                f'<form method="post"><input type="hidden" name="who" value="{escape(who)}">'
                f'<input type="hidden" name="sig" value="{escape(sig)}">'
                f"<p>Stop sending the digest to {escape(who)}?</p>"
                '<button type="submit" data-unsubscribe>Unsubscribe</button></form>',
            )
        self.p.store.unsubscribe(who)
        return _page("Unsubscribed", f"<p>{escape(who)} will get no more digests.</p>")


class _SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to every answer (pure ASGI: no buffering of files)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"],
                                      *((k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items())]  # fmt: skip
            await send(message)

        await self.app(scope, receive, with_headers)


def allowed_hosts(web_url: str | None) -> list[str]:
    """The ``Host`` names answered: ``DIGEST_WEB_URL``'s host and loopback; any host when it is unset."""
    if not web_url:
        return ["*"]
    host = urllib.parse.urlparse(web_url).hostname or ""
    return sorted({host, "127.0.0.1", "localhost", "::1"} - {""})


def make_app(providers: Providers) -> Starlette:
    w = WebApp(providers)
    return Starlette(
        middleware=[
            Middleware(_SecurityHeaders),
            Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts(providers.settings.web_url)),
        ],
        routes=[
            Route("/vote", w.vote_get, methods=["GET"]),
            Route("/vote", w.vote_post, methods=["POST"]),
            Route("/unsubscribe", w.unsubscribe, methods=["GET", "POST"]),
            Route("/{path:path}", w.index, methods=["GET"]),
        ]
    )


def check_port(host: str, port: int) -> None:
    """One line (exit 2) for a port another program holds, before the server says anything."""
    import socket

    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror}): choose another port with --port") from None


def serve(providers: Providers, host: str, port: int) -> None:
    import uvicorn

    check_port(host, port)
    uvicorn.run(make_app(providers), host=host, port=port, log_level="warning")
