"""Providers: everything a run talks to, built **once** at the edge from the settings and passed in.

:meth:`Providers.from_settings` validates the settings that choose providers before any fetch (a bad
``DIGEST_EMBEDDER=openai`` fails at start-up with a message that says what to set) and builds the cheap
ones; the ONNX encoder is built on first use and then reused for every day of a range. Tests construct
:class:`Providers` directly with in-process fakes — the same seam the CLI and the flows use.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field
from functools import cached_property

from digest.config import Settings
from digest.deliver import Mailer, SMTPMailer, Subscriber, parse_subscribers
from digest.errors import install_log_masking, register_secrets
from digest.llm.client import ChatClient, OpenAIChat, openai_client
from digest.llm.fallback import GoogleTranslator, Translator
from digest.llm.prompts import Prompts, load_prompts
from digest.models import Edition
from digest.notify import AppriseNotifier, Channel, Notifier, parse_channels
from digest.relevance.embed import Embedder
from digest.relevance.model import RelevanceModel
from digest.relevance.setup import build_embedder, check_embedder_settings, model_path
from digest.render import edition_of
from digest.sources.http import ArxivClient
from digest.store import Store
from digest.topics import Topics, load_topics

log = logging.getLogger(__name__)


def owner_id() -> str:
    """Who is running: host and process (shown when another run holds a day)."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class Providers:
    settings: Settings
    store: Store
    arxiv: ArxivClient
    topics: Topics
    model: RelevanceModel
    prompts: Prompts
    chat: ChatClient | None = None
    translator: Translator | None = None
    mailer: Mailer | None = None
    subscribers: list[Subscriber] = field(default_factory=list)
    channels: list[Channel] = field(default_factory=list)
    notifier: Notifier | None = None
    embedder_override: Embedder | None = None
    owner: str = field(default_factory=owner_id)
    warnings: list[str] = field(default_factory=list)

    @cached_property
    def embedder(self) -> Embedder:
        if self.embedder_override is not None:
            return self.embedder_override
        return build_embedder(self.settings, self.model)

    def embedder_for(self, model: RelevanceModel) -> Embedder:
        """The embedder a given model was trained with (the run's own when it is the run's model's)."""
        if self.embedder_override is not None or model.embedder == self.model.embedder:
            return self.embedder
        return build_embedder(self.settings, model)

    @property
    def edition(self) -> Edition:
        """The rendering context of this installation's editions (categories, site, topics)."""
        return edition_of(self.settings, self.topic_names)

    @property
    def topic_names(self) -> dict[str, str]:
        """The model's topics (what is scored), named from the topics configuration."""
        return self.topics.names(self.model.topics)

    @classmethod
    def from_settings(cls, settings: Settings, store: Store | None = None, need_llm: bool = True) -> Providers:
        register_secrets(settings.secrets())  # every message, reason, log line and stored row is masked with them
        install_log_masking()
        topics = load_topics(settings.topics)
        model = RelevanceModel.load(model_path(settings))
        warnings = []
        missing = [t for t in topics.ids if t not in model.topics]
        if missing:
            warnings.append(
                f"topic(s) {', '.join(missing)} of {settings.topics} have no head in the relevance model yet: "
                "run `digest train` to add them"
            )
        check_embedder_settings(settings, model)
        default_site = type(settings).model_fields["site_url"].default
        if settings.site_url == default_site and (settings.smtp_host or settings.notify_urls):
            warnings.append(
                f"DIGEST_SITE_URL is unset: emails, chat messages and feeds link to {default_site}; set it to "
                "the public address of the output folder"
            )
        prompts = load_prompts(settings)
        chat: ChatClient | None = None
        if settings.llm_base_url and need_llm:
            chat = OpenAIChat(openai_client(settings), settings)
        translator: Translator | None = None
        if settings.translate_fallback == "google":
            translator = GoogleTranslator(settings.translate_timeout)
        mailer = SMTPMailer(settings) if settings.smtp_host else None
        subs = parse_subscribers(settings.email_to, list(model.topics) + topics.ids)
        urls = settings.notify_urls.get_secret_value().replace(",", " ").split() if settings.notify_urls else []
        channels = parse_channels(urls, list(model.topics) + topics.ids)
        store = store or Store(settings.db_url)  # opened once the settings are known to be valid
        return cls(
            settings=settings,
            store=store,
            arxiv=ArxivClient(settings, clock=store),  # one arXiv clock for every process sharing the store
            topics=topics,
            model=model,
            prompts=prompts,
            chat=chat,
            translator=translator,
            mailer=mailer,
            subscribers=subs,
            channels=channels,
            notifier=AppriseNotifier(settings.notify_timeout) if channels else None,
            warnings=warnings,
        )

    def close(self) -> None:
        self.arxiv.close()
        self.store.close()
