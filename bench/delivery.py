"""Email delivery at scale: one edition of a real day to N subscribers through a local SMTP server (the outbox
claims one message at a time; one SMTP connection carries them all). Prints seconds and messages per second.

    python bench/delivery.py [--subscribers 1000 10000] [--secret]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.replay import replay

DAY = dt.date(2026, 6, 2)  # a real 313-paper day (~50 relevant)

#: an SMTP server in its own process (as a real relay is): it counts what it accepts, on stdout at the end
SINK = """
import sys, time
from aiosmtpd.controller import Controller
class Count:
    n = 0
    async def handle_DATA(self, server, session, envelope):
        Count.n += 1
        return "250 OK"
c = Controller(Count(), hostname="127.0.0.1", port=int(sys.argv[1]))
c.start()
print("ready", flush=True)
sys.stdin.readline()
c.stop()
print(Count.n, flush=True)
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--subscribers", type=int, nargs="+", default=[1000, 10_000])
    ap.add_argument("--secret", action="store_true", help="signed vote links per reader (DIGEST_FEEDBACK_SECRET)")
    a = ap.parse_args()
    import os
    import subprocess

    from typer.testing import CliRunner

    from digest.cli import app
    from digest.config import load_settings
    from digest.deliver import Subscriber, deliver
    from digest.providers import Providers
    from digest.render.build import build_digest
    from digest.replay.smtp import free_port

    port = free_port()
    sink = subprocess.Popen([sys.executable, "-c", SINK, str(port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)  # fmt: skip
    assert sink.stdout is not None and sink.stdout.readline().strip() == "ready"
    with tempfile.TemporaryDirectory() as tmp, replay(DAY, Path(tmp)):
        os.environ["DIGEST_EMAIL_TO"] = ""
        os.environ["DIGEST_SMTP_PORT"] = str(port)
        if a.secret:
            os.environ["DIGEST_FEEDBACK_SECRET"] = "bench-secret-0123456789abcdef"
            os.environ["DIGEST_WEB_URL"] = "https://digest.example.net"
        res = CliRunner().invoke(app, ["run", "--date", DAY.isoformat()])
        assert res.exit_code == 0, res.output
        p = Providers.from_settings(load_settings(), need_llm=False)
        d = build_digest(DAY, p.store, p.topic_names)
        total = 0
        for n in a.subscribers:
            subs = [Subscriber(f"reader{i}@example.org", ("clip",) if i % 3 == 0 else None) for i in range(n)]
            t0 = time.perf_counter()
            out = deliver(d, f"bench:{n}", subs, p.mailer, p.store, p.settings, p.owner, "https://x/day.html")
            took = time.perf_counter() - t0
            total += n
            print(f"{n:,} subscribers ({len(d.entries)} papers, secret={a.secret}, "
                  f"{p.settings.email_connections} connections): {took:.1f} s, {n / took:,.0f} messages/s; "
                  f"sent {len(out.sent)}, failed {len(out.failed)}")
    out_text, _ = sink.communicate("stop\n", timeout=60)
    print(f"the SMTP server accepted {out_text.strip()} messages (expected {total})")


if __name__ == "__main__":
    main()
