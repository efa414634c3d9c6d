"""A local arXiv (RSS + API) on 127.0.0.1 serving real papers from ../shared/corpus (``digest replay``).

* ``/rss/<cats>``: the announcement of ``state.day`` as RSS 2.0, with the channel/item structure of
  the real feeds in ``../shared/feeds/rss/`` (an empty channel on a weekend day);
* ``/api/query``: Atom answers for ``cat:… AND submittedDate:[A TO B]`` and ``id_list`` queries,
  paged by ``start``/``max_results``, in the 2026 API format of ``../shared/feeds/api-new-format``;
* ``/raw/<path>``: any file under ../shared/feeds byte for byte;
* ``state.script``: a queue of faults for the next requests: an int status (429, 503, …), ``"hang"``
  (sleeps past the client's timeout), ``"malformed"`` (truncated XML), ``"html"`` (a maintenance page
  with status 200) or ``"empty"`` (an empty channel).

A corpus paper announced on day A is given a submission time inside A's real submission window, so
the API's submittedDate queries and the RSS day agree.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from digest.replay.data import corpus, corpus_by_day, default_shared
from digest.replay.http import send, serve_http
from digest.sources.calendar import submission_window


def _version(p: dict[str, Any]) -> int:
    v = p.get("version")
    try:
        return int(str(v).lstrip("v")) if v else 1
    except ValueError:
        return 1


def submitted_at(p: dict[str, Any], index: int) -> dt.datetime:
    day = dt.date.fromisoformat(p["date"])
    while day.weekday() >= 5:
        day -= dt.timedelta(days=1)
    start, end = submission_window(day)
    span = (end - start).total_seconds()
    return start + dt.timedelta(seconds=(index * 7919) % int(span))


def rss_item(p: dict[str, Any], pub: str, cats: list[str]) -> str:
    ver = _version(p)
    primary = p.get("primary_category") or "cs.CV"
    atype = "new" if primary in cats else "cross"
    categories = p.get("categories") or [primary]
    cat_xml = "".join(f"\n      <category>{escape(c)}</category>" for c in categories)
    authors = ", ".join(p.get("authors") or [])
    return f"""    <item>
      <title>{escape(p["title"])}</title>
      <link>https://arxiv.org/abs/{p["id"]}</link>
      <description>arXiv:{p["id"]}v{ver} Announce Type: {atype}{SP}
Abstract: {escape(p["abstract"])}</description>
      <guid isPermaLink="false">oai:arXiv.org:{p["id"]}v{ver}</guid>{cat_xml}
      <pubDate>{pub}</pubDate>
      <arxiv:announce_type>{atype}</arxiv:announce_type>
      <dc:rights>http://creativecommons.org/licenses/by/4.0/</dc:rights>
      <dc:creator>{escape(authors)}</dc:creator>
    </item>
"""


def rss_feed(day: dt.date, cats: list[str], papers: list[dict[str, Any]], extra: str = "") -> str:
    pub = format_datetime(dt.datetime.combine(day, dt.time(0), tzinfo=dt.timezone(dt.timedelta(hours=-4))))
    name = "+".join(cats)
    items = "".join(rss_item(p, pub, cats) for p in papers)
    return f"""<?xml version='1.0' encoding='UTF-8'?>
<rss xmlns:arxiv="http://arxiv.org/schemas/atom" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom" xmlns:content="http://purl.org/rss/1.0/modules/content/" version="2.0">
  <channel>
    <title>{", ".join(cats)} updates on arXiv.org</title>
    <link>http://rss.arxiv.org/rss/{name}</link>
    <description>{", ".join(cats)} updates on the arXiv.org e-print archive.</description>
    <atom:link href="http://rss.arxiv.org/rss/{name}" rel="self" type="application/rss+xml"/>
    <docs>http://www.rssboard.org/rss-specification</docs>
    <language>en-us</language>
    <lastBuildDate>{pub}</lastBuildDate>
    <managingEditor>rss-help@arxiv.org</managingEditor>
    <pubDate>{pub}</pubDate>
    <skipDays>
      <day>Sunday</day>
      <day>Saturday</day>
    </skipDays>
{items}{extra}  </channel>
</rss>
"""


def atom_entry(p: dict[str, Any], published: dt.datetime) -> str:
    ver = _version(p)
    ts = published.strftime("%Y-%m-%dT%H:%M:%SZ")
    cats = p.get("categories") or [p.get("primary_category") or "cs.CV"]
    primary = p.get("primary_category") or cats[0]
    cat_xml = "".join(f'\n    <category term="{escape(c)}" scheme="http://arxiv.org/schemas/atom"/>' for c in cats)
    authors = "".join(f"\n    <author>\n      <name>{escape(a)}</name>\n    </author>" for a in p.get("authors") or [])
    comment = f"\n    <arxiv:comment>{escape(p['comment'])}</arxiv:comment>" if p.get("comment") else ""
    return f"""  <entry>
    <id>http://arxiv.org/abs/{p["id"]}v{ver}</id>
    <title>{escape(p["title"])}</title>
    <updated>{ts}</updated>
    <link href="https://arxiv.org/abs/{p["id"]}v{ver}" rel="alternate" type="text/html"/>
    <link href="https://arxiv.org/pdf/{p["id"]}v{ver}" rel="related" type="application/pdf" title="pdf"/>
    <summary>{escape(p["abstract"])}</summary>{cat_xml}
    <published>{ts}</published>{comment}
    <arxiv:primary_category term="{escape(primary)}"/>{authors}
  </entry>
"""


def atom_feed(entries: list[str], total: int, start: int, per_page: int) -> str:
    return f"""<?xml version='1.0' encoding='UTF-8'?>
<feed xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/" xmlns:arxiv="http://arxiv.org/schemas/atom" xmlns="http://www.w3.org/2005/Atom">
  <id>https://arxiv.org/api/local</id>
  <title>arXiv Query: local</title>
  <updated>2026-06-01T00:00:00Z</updated>
  <link href="https://arxiv.org/api/query" type="application/atom+xml"/>
  <opensearch:itemsPerPage>{per_page}</opensearch:itemsPerPage>
  <opensearch:totalResults>{total}</opensearch:totalResults>
  <opensearch:startIndex>{start}</opensearch:startIndex>
{"".join(entries)}</feed>
"""


SP = " "  # the real feed has a trailing space after the announce type
_RANGE = re.compile(r"submittedDate:\[(\d{12}) TO (\d{12})\]")


MAINTENANCE = b"""<!DOCTYPE html><html><head><title>arXiv is under maintenance</title></head>
<body><h1>arXiv is down for maintenance</h1><p>Please try again later.</p></body></html>"""


class ArxivState:
    def __init__(self, day: dt.date | None = None, cats: list[str] | None = None, shared: Path | None = None) -> None:
        self.shared = shared or default_shared()
        self.day = day
        self.cats = cats or ["cs.CV"]
        self.rss_papers: list[dict[str, Any]] | None = None  # override the day's papers
        self.rss_raw: bytes | None = None  # serve these bytes for /rss/
        self.script: list[Any] = []
        self.requests: list[str] = []
        self.request_times: list[float] = []  # time.time() of each request (politeness across processes)
        self.hang_seconds = 3.0
        self._times: dict[str, dt.datetime] | None = None
        self.lock = threading.Lock()

    def times(self) -> dict[str, dt.datetime]:
        if self._times is None:
            out = {}
            for _day, ps in sorted(corpus_by_day(self.shared).items()):
                for i, p in enumerate(sorted(ps, key=lambda p: p["id"])):
                    out[p["id"]] = submitted_at(p, i)
            self._times = out
        return self._times

    def day_papers(self, day: dt.date) -> list[dict[str, Any]]:
        return sorted(corpus_by_day(self.shared).get(day.isoformat(), []), key=lambda p: p["id"])


def _handler(state: ArxivState) -> type[BaseHTTPRequestHandler]:
    class H(BaseHTTPRequestHandler):
        def log_message(self, *a: Any) -> None:
            pass

        def _send(
            self, status: int, body: bytes, ctype: str = "application/xml", headers: dict[str, str] | None = None
        ) -> None:
            send(self, status, body, ctype, headers)

        def do_GET(self) -> None:
            with state.lock:
                state.requests.append(self.path)
                state.request_times.append(time.time())
                fault = state.script.pop(0) if state.script else None
            if fault == "hang":
                time.sleep(state.hang_seconds)
                self._send(503, b"too late")
                return
            if isinstance(fault, int):
                self._send(fault, b"<error/>", headers={"Retry-After": "0"} if fault == 429 else None)
                return
            url = urllib.parse.urlparse(self.path)
            if fault == "html":
                self._send(200, MAINTENANCE, "text/html; charset=utf-8")
                return
            if url.path.startswith("/raw/"):
                path = state.shared.joinpath("feeds", *url.path[5:].split("/"))
                if ".." in url.path or not path.is_file():
                    self._send(404, b"not found")
                    return
                self._send(200, path.read_bytes())
            elif url.path.startswith("/rss/"):
                body = self._rss(empty=fault == "empty")
                if fault == "malformed":
                    body = body[: len(body) // 2]
                self._send(200, body, "application/rss+xml")
            elif url.path.endswith("/query"):
                body = self._api(urllib.parse.parse_qs(url.query))
                if fault == "malformed":
                    body = body[: len(body) // 2]
                self._send(200, body)
            else:
                self._send(404, b"not found")

        def _rss(self, empty: bool = False) -> bytes:
            if state.rss_raw is not None:
                return state.rss_raw
            day = state.day or dt.date.today()
            papers = (
                state.rss_papers
                if state.rss_papers is not None
                else ([] if day.weekday() >= 5 or empty else state.day_papers(day))
            )
            if empty:
                papers = []
            return rss_feed(day, state.cats, papers).encode()

        def _api(self, q: dict[str, list[str]]) -> bytes:
            start = int(q.get("start", ["0"])[0])
            per = int(q.get("max_results", ["100"])[0])
            ids = [i for i in q.get("id_list", [""])[0].split(",") if i]
            times = state.times()
            if ids:
                c = corpus(state.shared)
                found = [c[i.split("v")[0]] for i in ids if i.split("v")[0] in c]
            else:
                m = _RANGE.search(q.get("search_query", [""])[0])
                if not m:
                    return atom_feed([], 0, start, per).encode()
                lo = dt.datetime.strptime(m.group(1), "%Y%m%d%H%M").replace(tzinfo=dt.UTC)
                hi = dt.datetime.strptime(m.group(2), "%Y%m%d%H%M").replace(tzinfo=dt.UTC) + dt.timedelta(minutes=1)
                c = corpus(state.shared)
                found = sorted((c[i] for i, t in times.items() if lo <= t < hi), key=lambda p: times[p["id"]])
            page = found[start : start + per]
            entries = [atom_entry(p, times.get(p["id"], dt.datetime(2026, 1, 1, tzinfo=dt.UTC))) for p in page]
            return atom_feed(entries, len(found), start, per).encode()

    return H


@contextmanager
def serve_arxiv(state: ArxivState, port: int = 0) -> Iterator[str]:
    """Start the server on 127.0.0.1 (a free port by default); yields its base URL."""
    with serve_http(_handler(state), port) as port:
        yield f"http://127.0.0.1:{port}"
