"""The deliver stage: an edition (a day, a week) by email to its subscribers, through the store's outbox.

Each (edition, recipient) is **claimed** in the store before SMTP and **marked** after, so concurrent or
repeated runs never send it twice (see :mod:`digest.store.coord` for the crash window). A subscriber gets
only the topics they chose (``addr:clip+editing``) and the edition they chose (``addr:weekly``). Every
message carries ``List-Unsubscribe`` (mailto, and a signed one-click URL when ``digest web`` is public),
a readable plain-text part, and an HTML part with inlined CSS kept under the Gmail clipping size.
"""

from __future__ import annotations

import logging
import re
import smtplib
import ssl
import time
import urllib.parse
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Literal, Protocol

from digest.config import Settings
from digest.errors import ConfigError
from digest.feedback import VoteLinks, sign_reader, sign_unsubscribe, sign_vote, unsubscribe_link
from digest.models import DeliveryResult, DeliveryStatus, Digest, Edition, Relevance
from digest.render import edition_of
from digest.render.formats import EMAIL_CTE, EmailBodies, email_bodies, email_subject
from digest.retry import GaveUp, InDoubt, Overdue, RetryPolicy, Transient, within
from digest.store import Claim, Store

log = logging.getLogger(__name__)
Cadence = Literal["daily", "weekly"]
ADDRESS = re.compile(r"^[^@\s:,]+@[^@\s:,]+$")


@dataclass(frozen=True)
class Subscriber:
    address: str
    topics: tuple[str, ...] | None = None  # None: every topic
    edition: Cadence = "daily"


def parse_subscribers(entries: list[str], known_topics: list[str] | None = None) -> list[Subscriber]:
    """``addr``, ``addr:clip+editing``, ``addr:weekly`` or ``addr:clip:weekly`` → :class:`Subscriber`."""
    out = []
    for raw in entries:
        addr, *specs = [x.strip() for x in raw.strip().split(":")]
        if not ADDRESS.match(addr):
            raise ConfigError(f"DIGEST_EMAIL_TO: {addr!r} is not an email address")
        topics: tuple[str, ...] | None = None
        edition: Cadence = "daily"
        for spec in specs:
            if spec in ("daily", "weekly"):
                edition = spec  # type: ignore[assignment]
            elif spec:
                topics = tuple(t.strip() for t in spec.split("+") if t.strip())
                unknown = [t for t in topics if known_topics is not None and t not in known_topics]
                if unknown:
                    raise ConfigError(
                        f"DIGEST_EMAIL_TO: {addr} asks for unknown topic(s) {', '.join(unknown)} "
                        f"(known: {', '.join(known_topics or [])})"
                    )
        out.append(Subscriber(addr, topics, edition))
    return out


class MailSession(Protocol):
    def send(self, msg: EmailMessage) -> None: ...


class Mailer(Protocol):
    """Sends messages; ``session()`` opens one connection for several messages (raises Transient if it cannot)."""

    def session(self) -> AbstractContextManager[MailSession]: ...


class Refused(Exception):
    """The server refused this recipient for good (do not retry)."""


class _DataTracking:
    """Remembers whether the message body went out (``DATA``): an error after that point is in doubt."""

    data_sent = False

    def data(self, msg: Any) -> tuple[int, bytes]:
        self.data_sent = True
        return super().data(msg)  # type: ignore[misc]


class _SMTP(_DataTracking, smtplib.SMTP):
    pass


class _SMTPSSL(_DataTracking, smtplib.SMTP_SSL):
    pass


class SMTPMailer:
    """SMTP with TLS chosen by port (465 ssl, 587 starttls), login only when a user is set."""

    def __init__(self, settings: Settings) -> None:
        if not settings.smtp_host:
            raise ConfigError("no SMTP server: set DIGEST_SMTP_HOST")
        self.settings = settings

    @contextmanager
    def session(self) -> Iterator[MailSession]:
        s = self.settings
        assert s.smtp_host
        try:
            smtp: _SMTP | _SMTPSSL
            if s.smtp_tls_mode == "ssl":
                smtp = _SMTPSSL(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout, context=ssl.create_default_context())
            else:
                smtp = _SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout)
                if s.smtp_tls_mode == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
            if s.smtp_user:
                smtp.login(s.smtp_user, s.smtp_password.get_secret_value() if s.smtp_password else "")
        except (OSError, smtplib.SMTPException) as exc:
            raise Transient(_why(exc)) from None
        try:
            yield _SMTPSession(smtp, 3 * s.smtp_timeout)
        finally:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()


class _SMTPSession:
    def __init__(self, smtp: _SMTP | _SMTPSSL, total: float) -> None:
        self.smtp = smtp
        self.total = total

    def send(self, msg: EmailMessage) -> None:
        """One message, handed over within three times the socket timeout in total (a relay that trickles its
        answers would reset a per-read timeout for ever)."""
        self.smtp.data_sent = False
        try:
            within(self.total, lambda: self._send(msg), "smtp-send")
        except Overdue as exc:
            self.smtp.close()  # the connection is spent; the thread ends with its socket
            raise InDoubt(str(exc)) if self.smtp.data_sent else Transient(str(exc)) from None

    def _send(self, msg: EmailMessage) -> None:
        try:
            self.smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            raise Refused(_why(exc)) from None
        except smtplib.SMTPResponseException as exc:  # the server answered with a code: it did not take it
            if 500 <= exc.smtp_code < 600:
                raise Refused(_why(exc)) from None
            raise Transient(_why(exc)) from None
        except (OSError, smtplib.SMTPException) as exc:
            if self.smtp.data_sent:  # no answer after the body went out: maybe delivered
                raise InDoubt(_why(exc)) from None
            raise Transient(_why(exc)) from None


def _domain(addr: str) -> str:
    try:
        return Address(addr_spec=addr).domain or "localhost"
    except Exception:
        return "localhost"


def in_topics(rel: Relevance | None, topics: tuple[str, ...] | None) -> bool:
    """Whether a relevant paper belongs to a subscriber's topics (``None``: every topic)."""
    if topics is None:
        return True
    return rel is not None and bool(set(topics) & {t for t, v in rel.topics.items() if v >= 0.5 or t == rel.best_topic})


def for_subscriber(d: Digest, sub: Subscriber) -> Digest:
    """The subscriber's part of an edition (renumbered): their topics' papers, or — for a reader with votes —
    the papers their personal model chose (``d.readers``; a 👎 paper never, a 👍 paper always)."""
    part = d.readers.get(sub.address)
    if part is not None:
        chosen = set(part.ids)
        keep = [e for e in [*d.entries, *d.extra] if e.paper.id in chosen]
    elif sub.topics is None:
        return d
    else:
        keep = [e for e in d.entries if in_topics(e.relevance, sub.topics)]
    wanted = set(sub.topics or d.topic_names)
    names = {t: n for t, n in d.topic_names.items() if t in wanted}
    return d.model_copy(
        update={"entries": [e.model_copy(update={"n": i}) for i, e in enumerate(keep, 1)], "topic_names": names}
    )


def _edition(settings: Settings, d: Digest) -> Edition:
    return edition_of(settings, d.topic_names)


#: rendered once per (topics, cadence) with these placeholders, then made each reader's (signatures computed)
_READER = "RDRPLACEHOLDERX"
_SIG = re.compile(r"SIGPH(vote|unsub|reader)(?:X([\w.-]*?))?XEND")


def _placeholder_links(web: str) -> tuple[Callable[[Any], VoteLinks], str]:
    def links(e: Any) -> VoteLinks:
        def one(vote: str) -> str:
            topic = e.best_topic or "any"
            sig = f"SIGPHvoteX{e.id}X{vote}X{topic}XEND"
            q = {"id": e.id, "vote": vote, "topic": topic, "who": _READER, "sig": sig}
            return f"{web.rstrip('/')}/vote?{urllib.parse.urlencode(q)}"

        return VoteLinks(one("up"), one("down"))

    unsub = f"{web.rstrip('/')}/unsubscribe?" + urllib.parse.urlencode({"who": _READER, "sig": "SIGPHunsubXEND"})
    return links, unsub


def _personal(text: str, secret: str, address: str) -> str:
    """A reader's copy of a body rendered with placeholders: their address and their signatures."""

    def sig(m: re.Match[str]) -> str:
        kind, rest = m.group(1), m.group(2)
        if kind == "vote":
            pid, vote, topic = rest.split("X", 2)
            return sign_vote(secret, pid, vote, topic, address)
        return sign_unsubscribe(secret, address) if kind == "unsub" else sign_reader(secret, address)

    return _SIG.sub(sig, text).replace(_READER, urllib.parse.quote(address, safe=""))


def build_message(
    d: Digest,
    settings: Settings,
    sub: Subscriber,
    page_url: str = "",
    bodies: EmailBodies | None = None,
    cache: dict[tuple[object, ...], EmailBodies] | None = None,
) -> EmailMessage:
    """One reader's message. ``cache``: bodies rendered once per (topics, cadence) and personalised, so an
    edition to 1,000 readers is rendered a handful of times, not 1,000."""
    secret = settings.feedback_secret.get_secret_value() if settings.feedback_secret else ""
    web = settings.web_url or ""
    signed = bool(web and secret)
    unsub_url = unsubscribe_link(web, secret, sub.address) if signed else ""
    rp = d.readers.get(sub.address)
    if bodies is None:
        key: tuple[object, ...] = (sub.topics, sub.edition, page_url)
        if rp is not None:  # a reader's own part: readers with the same part share one rendering
            key += (tuple(rp.ids), tuple(x.id for x in rp.learn), rp.line)
        template = cache.get(key) if cache is not None else None
        if template is None:
            links, unsub_ph = _placeholder_links(web) if signed else (None, "")
            page = page_url
            site = settings.site_url.rstrip("/") + "/"
            if signed and page_url.startswith(site):  # the page on `digest web`, where this reader can vote
                q = urllib.parse.urlencode({"r": _READER, "t": "SIGPHreaderXEND"})
                page = f"{web.rstrip('/')}/{page_url[len(site):]}?{q}"
            topics = ", ".join(d.topic_names.values()) or "all topics"
            footer = f"You receive the {sub.edition} arXiv digest for: {topics}."
            template = email_bodies(
                d, _edition(settings, d), page, footer, unsub_ph, links, budget_bytes=settings.email_max_kb * 1000,
                learn=rp.learn if rp is not None else (), feedback_line=rp.line if rp is not None else "",
            )  # fmt: skip
            if cache is not None:
                cache[key] = template
        bodies = (
            EmailBodies(
                _personal(template.text, secret, sub.address),
                _personal(template.html, secret, sub.address),
                template.compact,
                template.omitted,
            )
            if signed
            else template
        )
    msg = EmailMessage()
    msg["Subject"] = email_subject(d, _edition(settings, d))
    msg["From"] = settings.email_from
    msg["To"] = sub.address
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=_domain(settings.email_from))
    mailto = f"mailto:{settings.email_from}?subject={urllib.parse.quote('unsubscribe ' + sub.address)}"
    msg["List-Unsubscribe"] = f"<{mailto}>" + (f", <{unsub_url}>" if unsub_url else "")
    if unsub_url:
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    # base64 by choice: quoted-printable turns each CJK character into 9 bytes (a 60 KB page became 124 KB as
    # sent, past Gmail's ~102 KB clip, taking the unsubscribe footer with it)
    msg.set_content(bodies.text, subtype="plain", charset="utf-8", cte=EMAIL_CTE)
    msg.add_alternative(bodies.html, subtype="html", charset="utf-8", cte=EMAIL_CTE)
    return msg


def deliver(
    d: Digest,
    edition: str,
    subscribers: list[Subscriber],
    mailer: Mailer | None,
    store: Store,
    settings: Settings,
    owner: str,
    page_url: str = "",
    resend: bool | frozenset[str] = False,
) -> DeliveryResult:
    """Email edition ``edition`` (e.g. ``daily:2026-06-02``) of ``d`` to ``subscribers``. Never raises for SMTP."""
    t0 = time.perf_counter()
    res = DeliveryResult()
    if mailer is None:
        res.skipped_reason = "no DIGEST_SMTP_HOST"
        return res
    if not subscribers:
        res.skipped_reason = "no DIGEST_EMAIL_TO subscribers for this edition"
        return res
    if not d.entries and not d.extra:
        res.skipped_reason = "no relevant papers"
        return res
    unsubscribed = store.unsubscribed()
    todo: list[tuple[Subscriber, Digest]] = []
    for sub in subscribers:
        if sub.address in unsubscribed:
            continue
        part = for_subscriber(d, sub)
        mine = d.readers.get(sub.address)
        # a reader whose own model took every paper out still gets the edition's question ("help me learn") and
        # what their votes changed: a model that went too far must never silence itself
        if part.entries or (mine is not None and mine.votes and mine.learn and d.entries):
            todo.append((sub, part))
    policy = RetryPolicy(tries=settings.email_max_tries, backoff=settings.email_backoff_seconds)

    def claim(sub: Subscriber) -> bool:
        """Claimed just before its message goes out (a crash leaves at most the message in flight in doubt)."""
        again = resend if isinstance(resend, bool) else sub.address in resend
        c = store.claim_delivery(edition, sub.address, owner, settings.lease_seconds, again)
        if c == Claim.claimed:
            return True
        {Claim.sent: res.already, Claim.sending: res.busy}.get(c, res.unknown).append(sub.address)
        return False

    def send_pending(pending: list[tuple[Subscriber, Digest]]) -> None:
        with mailer.session() as session:  # one connection carries many messages
            while pending:
                sub, part = pending[0]
                if sub.address not in claimed:
                    if not claim(sub):
                        pending.pop(0)
                        continue
                    claimed.add(sub.address)
                msg = build_message(part, settings, sub, page_url, cache=rendered)
                try:
                    session.send(msg)
                except Refused as exc:  # permanent for this address: recorded, not retried
                    res.failed[sub.address] = str(exc)
                    store.mark_delivery(edition, sub.address, owner, DeliveryStatus.failed, str(exc))
                    pending.pop(0)
                    continue
                except InDoubt as exc:  # may have arrived: never sent again on its own
                    res.unknown.append(sub.address)
                    store.mark_delivery(edition, sub.address, owner, DeliveryStatus.unknown, str(exc))
                    pending.pop(0)
                    log.warning("email to %s may or may not have arrived (%s): not re-sent", sub.address, exc)
                    raise Transient(f"connection lost after DATA: {exc}") from None  # a fresh connection
                store.mark_delivery(edition, sub.address, owner, DeliveryStatus.sent, message_id=str(msg["Message-ID"]))
                res.sent.append(sub.address)
                pending.pop(0)

    def run_share(pending: list[tuple[Subscriber, Digest]]) -> None:
        try:
            policy.call(lambda: send_pending(pending), f"SMTP {settings.smtp_host}:{settings.smtp_port}")
        except GaveUp as exc:
            for sub, _part in pending:  # never handed over: the next run sends them
                res.failed[sub.address] = exc.last
                if sub.address in claimed:
                    store.mark_delivery(edition, sub.address, owner, DeliveryStatus.failed, exc.last)

    claimed: set[str] = set()
    rendered: dict[tuple[object, ...], EmailBodies] = {}
    # a large edition goes over a few connections at once (each message still claimed on its own)
    k = max(1, min(settings.email_connections, len(todo) // 50))
    shares = [todo[i::k] for i in range(k)]
    if k == 1 and todo:
        run_share(shares[0])
    elif todo:
        with ThreadPoolExecutor(max_workers=k, thread_name_prefix="smtp") as pool:
            list(pool.map(run_share, shares))
    res.seconds = round(time.perf_counter() - t0, 3)
    return res


def _why(exc: BaseException) -> str:
    return f"{exc.__class__.__name__}: {exc}"[:300]
