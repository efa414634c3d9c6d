"""The deliver stage: the day's digest by email (multipart/alternative: plain Markdown + HTML) to subscribers.

One message per recipient; each attempt is recorded in the store so a re-run never sends twice
(``resend=True`` forces). Connection problems are retried with backoff; an SMTP outage fails this stage
only — the digest files are already written and stay intact.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import time
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from digest.config import Settings
from digest.models import Digest
from digest.render.formats import email_subject, html_page, markdown
from digest.store import Store

log = logging.getLogger(__name__)


@dataclass
class DeliveryResult:
    sent: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    skipped_reason: str = ""

    @property
    def status(self) -> str:
        if self.skipped_reason:
            return f"skipped: {self.skipped_reason}"
        if self.failed:
            return f"failed for {len(self.failed)} of {len(self.failed) + len(self.sent) + len(self.already)}"
        return f"sent {len(self.sent)}, already sent {len(self.already)}"


def build_message(d: Digest, settings: Settings, recipient: str, bodies: tuple[str, str] | None = None) -> EmailMessage:
    """One subscriber's message; ``bodies`` = (plain Markdown, HTML), rendered once per day by the caller."""
    plain, html = bodies or email_bodies(d, settings)
    msg = EmailMessage()
    msg["Subject"] = email_subject(d, settings.categories)
    msg["From"] = settings.email_from
    msg["To"] = recipient
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=_domain(settings.email_from))
    msg.set_content(plain, subtype="plain", charset="utf-8")
    msg.add_alternative(html, subtype="html", charset="utf-8")
    return msg


def email_bodies(d: Digest, settings: Settings) -> tuple[str, str]:
    return markdown(d, settings.categories), html_page(d, settings.categories, index_href=None)


def _domain(addr: str) -> str:
    try:
        return Address(addr_spec=addr).domain or "localhost"
    except Exception:
        return "localhost"


def _connect(settings: Settings) -> smtplib.SMTP:
    assert settings.smtp_host
    mode = settings.smtp_tls_mode
    ctx = ssl.create_default_context()
    smtp: smtplib.SMTP
    if mode == "ssl":
        smtp = smtplib.SMTP_SSL(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout, context=ctx)
    else:
        smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout)
        if mode == "starttls":
            smtp.starttls(context=ctx)
    if settings.smtp_user:
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
        smtp.login(settings.smtp_user, password)
    return smtp


def deliver_day(d: Digest, settings: Settings, store: Store, resend: bool = False) -> DeliveryResult:
    """Email ``d`` to every subscriber not yet served for its day. Never raises for SMTP problems."""
    res = DeliveryResult()
    if not settings.smtp_host:
        res.skipped_reason = "no DIGEST_SMTP_HOST"
        return res
    if not settings.email_to:
        res.skipped_reason = "no DIGEST_EMAIL_TO subscribers"
        return res
    if not d.entries:
        res.skipped_reason = "no relevant papers"
        return res
    done = set() if resend else store.delivered(d.date)
    todo = [r for r in settings.email_to if r not in done]
    res.already = [r for r in settings.email_to if r in done]
    bodies = email_bodies(d, settings)
    wait = settings.email_backoff_seconds
    for attempt in range(1, settings.email_max_tries + 1):
        if not todo:
            break
        try:
            with _connect(settings) as smtp:
                for rcpt in list(todo):
                    try:
                        smtp.send_message(build_message(d, settings, rcpt, bodies), to_addrs=[rcpt])
                    except smtplib.SMTPRecipientsRefused as exc:  # permanent for this address: do not retry
                        res.failed[rcpt] = _why(exc)
                        store.record_delivery(d.date, rcpt, "failed", res.failed[rcpt])
                        todo.remove(rcpt)
                        continue
                    store.record_delivery(d.date, rcpt, "sent")
                    res.sent.append(rcpt)
                    res.failed.pop(rcpt, None)
                    todo.remove(rcpt)
        except (OSError, smtplib.SMTPException) as exc:  # connection refused, timeout, TLS, auth, 4xx/5xx
            why = _why(exc)
            log.warning(
                "SMTP %s:%s attempt %d/%d: %s",
                settings.smtp_host,
                settings.smtp_port,
                attempt,
                settings.email_max_tries,
                why,
            )
            for rcpt in todo:
                res.failed[rcpt] = why
            if attempt < settings.email_max_tries:
                time.sleep(wait)
                wait *= 2
    for rcpt in todo:
        store.record_delivery(d.date, rcpt, "failed", res.failed.get(rcpt, "not sent"))
    return res


def _why(exc: BaseException) -> str:
    return f"{exc.__class__.__name__}: {exc}"[:300]
