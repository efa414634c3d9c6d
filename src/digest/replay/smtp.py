"""A real SMTP server on 127.0.0.1 that keeps every message it receives (replay, tests, bench).

aiosmtpd is the ``replay`` extra, imported only when the server starts: a plain install does without it."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from digest.errors import ConfigError


@dataclass
class Mailbox:
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)  # each message as it came over the wire
    delay: float = 0.0  # seconds before accepting each message (a slow server)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        self.raw.append(bytes(envelope.original_content or envelope.content))
        self.messages.append(msg)  # taken in (like a relay that scans or greylists), then answered late
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        if self.delay:
            import asyncio

            await asyncio.sleep(self.delay)
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_smtp(delay: float = 0.0) -> Iterator[tuple[Mailbox, int]]:
    try:
        from aiosmtpd.controller import Controller
    except ImportError:
        raise ConfigError("the local SMTP sink needs aiosmtpd: pip install 'arxiv-digest[replay]'") from None
    box = Mailbox(delay=delay)
    port = free_port()
    ctl = Controller(box, hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        yield box, port
    finally:
        ctl.stop()
