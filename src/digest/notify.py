"""Chat channels: each edition as one compact message to Feishu/Lark, WeCom, DingTalk, Slack, Telegram, Discord,
ntfy, Matrix or any webhook — through Apprise URLs (``DIGEST_NOTIFY_URLS``), exactly once per edition and
channel (the store's outbox), after the email and never in its way.

A channel is ``URL`` or ``URL:topic1+topic2`` (the subscribers' ``:topic`` syntax; the suffix counts only when
every part is a known topic, so ``json://host:8080`` stays a URL). The message: the day, counts per topic, the
top papers with Chinese title, Chinese TL;DR and link, and a link to the full page; long digests are split
into parts of at most :data:`MAX_CHARS` characters (Discord's limit is the smallest of the common services).
The outbox keys a channel by a digest of its URL: webhook URLs carry tokens and never enter the store.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Protocol

from digest.errors import ConfigError, mask_secrets
from digest.models import DeliveryResult, DeliveryStatus, Digest
from digest.render import latex
from digest.render.view import views
from digest.retry import GaveUp, InDoubt, Overdue, RetryPolicy, Transient, within
from digest.store import Claim, Store

log = logging.getLogger(__name__)

MAX_CHARS = 1800
TOP = 10
#: services stricter than MAX_CHARS characters: WeCom's group bot takes 2,048 bytes of UTF-8 (a Chinese character
#: is 3), the title included (Apprise puts it in the body)
_BYTE_LIMITS = {"wecombot": 2000}


@dataclass(frozen=True)
class _Budget:
    """How a channel's service measures a message (characters, or UTF-8 bytes) and what one part may use."""

    in_bytes: bool
    limit: int

    @classmethod
    def of(cls, url: str, title: str) -> _Budget:
        scheme = url.split("://", 1)[0].lower()
        if scheme in _BYTE_LIMITS:
            return cls(True, _BYTE_LIMITS[scheme] - len(title.encode("utf-8")) - 2)
        return cls(False, MAX_CHARS)

    def size(self, text: str) -> int:
        return len(text.encode("utf-8")) if self.in_bytes else len(text)

    def cut(self, text: str, limit: int) -> str:
        """``text`` shortened to ``limit`` (whole characters)."""
        if self.in_bytes:
            return text.encode("utf-8")[: max(0, limit)].decode("utf-8", "ignore")
        return text[: max(0, limit)]


@dataclass(frozen=True)
class Channel:
    url: str
    topics: tuple[str, ...] | None = None  # None: every topic
    edition: str = "daily"  # daily | weekly, as for subscribers

    @property
    def key(self) -> str:
        """How the outbox names this channel (never the URL itself: it carries a token)."""
        scheme = self.url.split("://", 1)[0]
        return f"chat:{scheme}:{hashlib.sha256(self.url.encode()).hexdigest()[:12]}"


def parse_channels(entries: list[str], known_topics: list[str]) -> list[Channel]:
    """``URL``, ``URL:clip+editing``, ``URL:weekly`` or ``URL:clip:weekly`` (the subscribers' syntax; a suffix is
    read only when it names known topics or an edition, so the URL's own colons are left alone)."""
    out = []
    for raw in entries:
        raw = raw.strip()
        if not raw:
            continue
        url, topics, edition = raw, None, "daily"
        for _ in range(2):
            head, sep, tail = url.rpartition(":")
            if not (sep and head and "://" in head):
                break
            parts = [t.strip() for t in tail.split("+")]
            if tail.strip() in ("daily", "weekly"):
                url, edition = head, tail.strip()
            elif topics is None and parts and all(p in known_topics for p in parts):
                url, topics = head, tuple(parts)
            else:
                break
        if "://" not in url:
            raise ConfigError(
                f"DIGEST_NOTIFY_URLS: {mask_secrets(url)!r} is not an Apprise URL (e.g. json://host/hook, "
                "feishu://token, tgram://bot/chat, slack://…; see Apprise's list of services)"
            )
        out.append(Channel(url, topics, edition))
    return out


class Notifier(Protocol):
    def send(self, url: str, title: str, body: str) -> None:
        """Deliver one message; raise :class:`Transient` when the service did not take it."""


class AppriseNotifier:
    """Apprise's own notify path (its per-service request code and formats), each message within ``timeout``
    seconds in total: Apprise's timeouts are per read, so a service that trickles its answer would hold the run
    for ever. A message past the deadline may have arrived: it is in doubt (:class:`InDoubt`), never re-sent."""

    def __init__(self, timeout: float = 30.0) -> None:
        self.timeout = timeout

    def send(self, url: str, title: str, body: str) -> None:
        import apprise

        a = apprise.Apprise()
        if not a.add(url):
            raise Transient(f"Apprise does not understand the URL {mask_secrets(url)!r}")
        service = url.split("://", 1)[0]
        try:
            ok = within(self.timeout, lambda: a.notify(title=title, body=body, body_format=apprise.NotifyFormat.TEXT),
                        "chat-send")  # fmt: skip
        except Overdue as exc:
            raise InDoubt(f"{service} channel: {exc}") from None
        if not ok:
            raise Transient(f"{service} channel did not accept the message")


def messages(d: Digest, page_url: str, topics: tuple[str, ...] | None, url: str = "") -> tuple[str, list[str]]:
    """(title, body parts): the edition for one channel, compact, each part within what the channel's service
    (``url``) takes: :data:`MAX_CHARS` characters, or its byte limit (:data:`_BYTE_LIMITS`)."""
    wanted = set(topics or ())
    entries = [e for e in views(d) if topics is None or e.best_topic in wanted or wanted & {b.id for b in e.badges}]
    counts: dict[str, int] = {}
    for e in entries:
        counts[e.best_topic] = counts.get(e.best_topic, 0) + 1
    per_topic = ", ".join(f"{d.topic_names.get(t, t)} {n}" for t, n in counts.items())
    heading = d.title or f"arXiv 摘要 {d.date.isoformat()}"
    title = f"{heading}: {len(entries)} 篇" + (f" ({per_topic})" if per_topic else "")
    lines = []
    for i, e in enumerate(entries[:TOP], 1):
        lines.append(f"{i}. {latex.plain(e.title_zh)}\n{latex.plain(e.tldr_zh)}\n{e.abs_url}")
    more = len(entries) - min(len(entries), TOP)
    tail = (f"…还有 {more} 篇 / {more} more. " if more else "") + (f"完整页面 / full page: {page_url}" if page_url
                                                                   else "")  # fmt: skip
    budget = _Budget.of(url, f"{title} (99)")
    limit = budget.limit - budget.size("(99/99)\n")  # room for the part number
    parts: list[str] = []
    cur = ""
    for block in [*lines, tail] if tail else lines:
        block = budget.cut(block, limit)
        if cur and budget.size(f"{cur}\n\n{block}") > limit:
            parts.append(cur)
            cur = block
        else:
            cur = f"{cur}\n\n{block}" if cur else block
    if cur:
        parts.append(cur)
    if len(parts) > 1:
        parts = [f"({i}/{len(parts)})\n{p}" for i, p in enumerate(parts, 1)]
    return title, parts


def _send_one(notifier: Notifier, ch: Channel, title: str, body: str, policy: RetryPolicy) -> None:
    policy.call(lambda: notifier.send(ch.url, title, body), f"chat {ch.key}")


def notify_channels(
    d: Digest,
    edition: str,
    channels: list[Channel],
    notifier: Notifier,
    store: Store,
    owner: str,
    page_url: str,
    lease_seconds: float,
    tries: int = 3,
    backoff: float = 2.0,
) -> DeliveryResult:
    """Send ``edition`` of ``d`` to every channel once (outbox); a channel that fails is retried by the next run."""
    t0 = time.perf_counter()
    res = DeliveryResult()
    if not d.entries:
        res.skipped_reason = "no relevant papers"
        return res
    for ch in channels:
        title, parts = messages(d, page_url, ch.topics, ch.url)
        if not parts:
            continue
        claim = store.claim_delivery(edition, ch.key, owner, lease_seconds)
        if claim != Claim.claimed:
            {Claim.sent: res.already, Claim.sending: res.busy}.get(claim, res.unknown).append(ch.key)
            continue
        try:
            for i, part in enumerate(parts):
                _send_one(notifier, ch, title if i == 0 else f"{title} ({i + 1})", part, RetryPolicy(tries, backoff))
        except InDoubt as exc:  # may have arrived: never sent again on its own (a duplicate is worse)
            res.unknown.append(ch.key)
            store.mark_delivery(edition, ch.key, owner, DeliveryStatus.unknown, str(exc))
            log.warning("chat channel %s: %s; it may have arrived, so it is not sent again", ch.key, exc)
            continue
        except GaveUp as exc:
            res.failed[ch.key] = exc.last
            store.mark_delivery(edition, ch.key, owner, DeliveryStatus.failed, exc.last)
            log.warning("chat channel %s failed: %s (the next run tries again)", ch.key, exc.last)
            continue
        store.mark_delivery(edition, ch.key, owner, DeliveryStatus.sent)
        res.sent.append(ch.key)
    res.seconds = round(time.perf_counter() - t0, 3)
    return res
