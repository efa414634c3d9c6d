"""``digest web``: the archive (day pages, index, feeds) with a vote on every paper, and the feedback endpoint.

Day pages are rendered from the store on request with two vote controls per entry (each carries
``data-arxiv-id`` and ``data-vote``) and a collapsed "rest of the day" listing the papers not selected, each
with an up-vote to rescue a miss. With ``DIGEST_FEEDBACK_SECRET`` the controls are signed links
(``GET /vote?…&sig=…``, bound to paper, vote, topic and reader, the same links as in the email); without
it they are buttons of a same-origin ``POST /vote`` form. Either way it works without JavaScript and
answers with a small confirmation page; a bad or tampered link gets 403 and records nothing.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import urllib.parse
from pathlib import Path

from markupsafe import Markup, escape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route
from starlette.staticfiles import StaticFiles

from digest.feedback import VOTES, sign_vote, verify_unsubscribe, verify_vote
from digest.providers import Providers
from digest.render.build import build_digest
from digest.render.formats import RestRow, html_page
from digest.store import ANY, Vote

WEB_WHO = "web"
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

    # --- vote controls -----------------------------------------------------------------------
    def _link(self, paper_id: str, vote: str, topic: str) -> str:
        q = {"id": paper_id, "vote": vote, "topic": topic, "who": WEB_WHO,
             "sig": sign_vote(self.secret, paper_id, vote, topic, WEB_WHO)}  # fmt: skip
        return "/vote?" + urllib.parse.urlencode(q)

    def _controls(self, paper_id: str, topic: str, votes: tuple[str, ...] = VOTES) -> Markup:
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

    def day_page(self, day: dt.date) -> str | None:
        store = self.p.store
        d = build_digest(day, store, self.p.topic_names)
        papers = store.papers_of_day(day)
        if not papers:
            return None
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
            votes=lambda e: self._controls(e.id, e.best_topic or ANY),
            rest=rest,
            rest_vote=lambda r: self._controls(r.id, ANY, ("up",)),
        )

    # --- endpoints -------------------------------------------------------------------------
    async def index(self, request: Request) -> Response:
        path = request.url.path
        m = _DAY.match(path)
        if m:
            try:
                day = dt.date.fromisoformat(m.group(3))
            except ValueError:
                return _page("Not found", "<p>No such day.</p>", 404)
            page = await run_in_threadpool(self.day_page, day)  # rendering never blocks the event loop
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
        latest = [
            v for v in self.p.store.current_votes() if v.paper_id == paper_id and v.topic == topic and v.who == who
        ]
        if latest and latest[0].vote == vote:
            return True, "already recorded"  # following the same link twice records one vote
        self.p.store.add_votes([Vote(paper_id=paper_id, topic=topic, vote=vote, who=who, source=source)])
        return True, "recorded"

    def _confirm(self, paper_id: str, vote: str, topic: str, how: str) -> HTMLResponse:
        [paper] = self.p.store.get_papers([paper_id])
        what = "👍 more like this" if vote == "up" else "👎 not for me"
        name = self.p.topic_names.get(topic, "any topic")
        return _page(
            "Thank you",
            f'<p>{what} — <a href="{escape(paper.abs_url)}">{escape(paper.title)}</a> ({escape(name)}): {how}.</p>'
            "<p>The model learns from it at the next <code>digest train</code> (weekly by default).</p>",
        )

    async def vote_get(self, request: Request) -> Response:
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
        return self._confirm(pid, vote, topic, how)

    async def vote_post(self, request: Request) -> Response:
        origin = request.headers.get("origin") or request.headers.get("referer") or ""
        host = request.headers.get("host", "")
        if not origin or urllib.parse.urlparse(origin).netloc != host:
            return _page("Not allowed", "<p>Votes are accepted from this site's own pages only.</p>", 403)
        form = await request.form()
        pid, vote, topic = (str(form.get(k, "")) for k in ("id", "vote", "topic"))
        ok, how = self._record(pid, vote, topic or ANY, WEB_WHO, "web")
        if not ok:
            return _page("Not recorded", f"<p>{escape(how)}.</p>", 400)
        return self._confirm(pid, vote, topic or ANY, how)

    async def unsubscribe(self, request: Request) -> Response:
        q = request.query_params
        if request.method == "POST":
            form = await request.form()
            q = {**dict(q), **{k: str(v) for k, v in form.items()}}  # type: ignore[assignment]
        who, sig = q.get("who", ""), q.get("sig", "")
        if not self.secret or not verify_unsubscribe(self.secret, who, sig):
            return _page("Link not valid", "<p>This unsubscribe link is not valid. Nothing was changed.</p>", 403)
        self.p.store.unsubscribe(who)
        return _page("Unsubscribed", f"<p>{escape(who)} will get no more digests.</p>")


def make_app(providers: Providers) -> Starlette:
    w = WebApp(providers)
    return Starlette(
        routes=[
            Route("/vote", w.vote_get, methods=["GET"]),
            Route("/vote", w.vote_post, methods=["POST"]),
            Route("/unsubscribe", w.unsubscribe, methods=["GET", "POST"]),
            Route("/{path:path}", w.index, methods=["GET"]),
        ]
    )


def serve(providers: Providers, host: str, port: int) -> None:
    import uvicorn

    uvicorn.run(make_app(providers), host=host, port=port, log_level="warning")
