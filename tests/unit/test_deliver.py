"""Delivery through the outbox, with a fake mailer: once per subscriber, topics per subscriber, headers."""

from __future__ import annotations

import pytest

from digest.config import Settings
from digest.deliver import Subscriber, deliver, parse_subscribers
from digest.errors import ConfigError
from digest.models import Paper
from digest.render.build import build_digest
from digest.store import Store
from tests.fakes import FakeMailer
from tests.unit.render.conftest import DAY, NAMES, populate


def test_once_per_subscriber_then_resend(settings: Settings, store: Store) -> None:
    populate(store)
    d = build_digest(DAY, store, NAMES)
    mailer = FakeMailer()
    subs = [Subscriber("a@x.org"), Subscriber("b@y.org")]
    res = deliver(d, "daily:2026-06-02", subs, mailer, store, settings, "me")
    assert sorted(res.sent) == ["a@x.org", "b@y.org"] and len(mailer.sent) == 2
    again = deliver(d, "daily:2026-06-02", subs, mailer, store, settings, "me")
    assert again.sent == [] and len(again.already) == 2 and len(mailer.sent) == 2
    forced = deliver(d, "daily:2026-06-02", subs, mailer, store, settings, "me", resend=True)
    assert len(forced.sent) == 2 and len(mailer.sent) == 4


def test_outage_is_recorded_and_the_next_run_delivers(settings: Settings, store: Store) -> None:
    populate(store)
    d = build_digest(DAY, store, NAMES)
    mailer = FakeMailer()
    mailer.down = True
    res = deliver(d, "daily:x", [Subscriber("a@x.org")], mailer, store, settings, "me")
    assert res.failed and "Connection refused" in res.failed["a@x.org"] and not mailer.sent
    mailer.down = False
    res = deliver(d, "daily:x", [Subscriber("a@x.org")], mailer, store, settings, "me")
    assert res.sent == ["a@x.org"] and len(mailer.sent) == 1


def test_subscribers_get_only_their_topics_and_a_list_unsubscribe(settings: Settings, store: Store) -> None:
    papers: list[Paper] = populate(store)
    d = build_digest(DAY, store, NAMES)
    mailer = FakeMailer()
    subs = parse_subscribers(["all@x.org", "clip@x.org:clip"], ["clip", "editing"])
    deliver(d, "daily:t", subs, mailer, store, settings, "me")
    by = {m["To"]: m for m in mailer.sent}
    full, clip = by["all@x.org"].get_body(("plain",)).get_content(), by["clip@x.org"].get_body(("plain",)).get_content()
    assert (
        "== image editing ==" in full and "== image editing ==" not in clip and "== CLIP / contrastive VLM ==" in clip
    )
    assert "CLIP / contrastive VLM" in clip.splitlines()[-1] or "CLIP / contrastive VLM" in clip
    assert all(m["List-Unsubscribe"].startswith("<mailto:") for m in mailer.sent)
    assert len(papers) == 12


def test_email_html_stays_under_the_clipping_size_and_says_where_the_rest_is(settings: Settings, store: Store) -> None:
    populate(store, n=60, hostile=False, failed=0)
    d = build_digest(DAY, store, NAMES)
    mailer = FakeMailer()
    s = settings.model_copy(update={"email_max_kb": 40})
    deliver(d, "daily:big", [Subscriber("a@x.org")], mailer, store, s, "me", page_url="https://ex.org/d.html")
    html = mailer.sent[0].get_body(("html",)).get_content()
    assert len(html.encode()) <= 40_000 and "https://ex.org/d.html" in html and "full page" in html
    assert "<style" not in html and 'style="' in html  # CSS inlined for mail clients


def test_signed_vote_and_unsubscribe_links_when_configured(settings: Settings, store: Store) -> None:
    from pydantic import SecretStr

    from digest.feedback import verify_vote

    populate(store, n=3, hostile=False, failed=0)
    d = build_digest(DAY, store, NAMES)
    mailer = FakeMailer()
    s = settings.model_copy(update={"feedback_secret": SecretStr("k" * 32), "web_url": "https://digest.example.org"})
    deliver(d, "daily:v", [Subscriber("a@x.org")], mailer, store, s, "me")
    msg = mailer.sent[0]
    assert "https://digest.example.org/unsubscribe?" in msg["List-Unsubscribe"]
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    from urllib.parse import parse_qs, urlparse

    from bs4 import BeautifulSoup

    links = BeautifulSoup(msg.get_body(("html",)).get_content(), "html.parser").select("a[data-vote]")
    assert len(links) == 6
    q = {k: v[0] for k, v in parse_qs(urlparse(links[0]["href"]).query).items()}
    assert verify_vote("k" * 32, q["id"], q["vote"], q["topic"], q["who"], q["sig"]) and q["who"] == "a@x.org"
    assert not verify_vote("k" * 32, "2606.99999", q["vote"], q["topic"], q["who"], q["sig"])


def test_bad_subscriber_entries_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="not an email"):
        parse_subscribers(["nobody"], ["clip"])
    with pytest.raises(ConfigError, match="unknown topic"):
        parse_subscribers(["a@x.org:gs"], ["clip"])
    assert parse_subscribers(["a@x.org:clip:weekly"], ["clip"]) == [Subscriber("a@x.org", ("clip",), "weekly")]


def test_bodies_rendered_once_carry_each_readers_own_signed_links(settings: Settings, store: Store) -> None:
    import re
    import urllib.parse

    from pydantic import SecretStr

    from digest.deliver import build_message
    from digest.feedback import verify_reader, verify_unsubscribe, verify_vote

    populate(store)
    s = settings.model_copy(update={"feedback_secret": SecretStr("a-long-secret-for-the-test-0123456"),
                                    "web_url": "https://w.example"})  # fmt: skip
    d = build_digest(DAY, store, NAMES)
    cache: dict[tuple[object, ...], object] = {}
    page = s.site_url.rstrip("/") + "/2026/06/2026-06-02.html"
    for who in ("ana@example.org", "bo+news@example.org"):
        msg = build_message(d, s, Subscriber(who), page, cache=cache)  # type: ignore[arg-type]
        html = msg.get_body(("html",)).get_content()
        links = [u.replace("&amp;", "&") for u in re.findall(r'href="(https://w\.example[^"]+)"', html)]
        assert links and not any("PLACEHOLDER" in u or "SIGPH" in u for u in links)
        kinds = set()
        for u in links:
            q = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(u).query))
            if "/vote?" in u:
                kinds.add("vote")
                assert q["who"] == who and verify_vote(s.feedback_secret.get_secret_value(), q["id"], q["vote"],
                                                       q["topic"], who, q["sig"])  # fmt: skip
            elif "/unsubscribe?" in u:
                kinds.add("unsub")
                assert verify_unsubscribe(s.feedback_secret.get_secret_value(), who, q["sig"])
            else:
                kinds.add("page")
                assert q["r"] == who and verify_reader(s.feedback_secret.get_secret_value(), who, q["t"])
        assert kinds == {"vote", "unsub", "page"}
    assert len(cache) == 1  # rendered once for both readers


def test_chat_channels_take_the_subscribers_topic_and_edition_suffixes() -> None:
    from digest.notify import Channel, parse_channels

    known = ["clip", "editing"]
    got = parse_channels(
        ["json://127.0.0.1:8080/hook", "feishu://tok:clip", "json://h:9/x:clip+editing:weekly",
         "slack://a/b/c:weekly", "tgram://bot/chat:daily"],
        known,
    )  # fmt: skip
    assert got == [
        Channel("json://127.0.0.1:8080/hook"),  # the port's colon is the URL's own
        Channel("feishu://tok", ("clip",)),
        Channel("json://h:9/x", ("clip", "editing"), "weekly"),
        Channel("slack://a/b/c", None, "weekly"),
        Channel("tgram://bot/chat"),
    ]
    assert parse_channels(["json://h/x:nosuchtopic"], known) == [Channel("json://h/x:nosuchtopic")]
    with pytest.raises(ConfigError, match="not an Apprise URL"):
        parse_channels(["not-a-url:weekly"], known)


def test_chat_parts_fit_each_services_limit(store: Store) -> None:
    from digest.models import Summary, SummaryTier
    from digest.notify import MAX_CHARS, messages

    papers = populate(store, n=30, hostile=False, failed=0)
    for p in papers:  # long Chinese TL;DRs: a WeCom bot counts 3 bytes for each of these characters
        store.save_summary(Summary(id=p.id, version=1, tier=SummaryTier.llm, backend="llm:m", model="m",
                                   prompt_hash="h2", title_zh="视觉语言模型" * 8, tldr_zh="对比学习的新方法。" * 30,
                                   tldr_en="x", abstract_zh="摘要"))  # fmt: skip
    d = build_digest(DAY, store, NAMES)
    for url, fits in (
        ("json://h/x", lambda title, part: len(part) <= MAX_CHARS),
        ("wecombot://key", lambda title, part: len(f"{title}\r\n{part}".encode()) <= 2048),  # title in the body
    ):
        title, parts = messages(d, "https://ex.org/d.html", None, url)
        assert len(parts) > 1 and all(fits(title if i == 0 else f"{title} ({i + 1})", p) for i, p in enumerate(parts))
        shown = "\n".join(parts)
        assert shown.count("https://arxiv.org/abs/") == 10 and "https://ex.org/d.html" in shown  # the top 10, the page
