"""Render a replayed real day and screenshot its page, the index and the email with headless Chromium.

Usage: python bench/screenshot.py [--day 2026-06-02] [--out docs/screenshots]
Needs Debian's `chromium` (apt-get install chromium fonts-noto-cjk). Writes <day>-desktop.png, <day>-phone.png,
<day>-desktop-dark.png, index.png and <day>-email.png (the HTML part as a mail client gets it, CSS inlined).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.replay import replay
from digest.config import load_settings
from digest.pipeline import Run, run_day
from digest.providers import Providers

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-extensions",
         "--disable-sync", "--no-first-run", "--hide-scrollbars", "--disable-dev-shm-usage", "--disable-quic",
         "--disable-component-update"]


def shot(browser: str, page: Path, png: Path, width: int, height: int, dark: bool = False) -> None:
    extra = ["--force-dark-mode", "--blink-settings=preferredColorScheme=0"] if dark else []
    with tempfile.TemporaryDirectory() as profile:
        cmd = [browser, *FLAGS, *extra, f"--user-data-dir={profile}", f"--window-size={width},{height}",
               f"--screenshot={png}", page.as_uri()]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if res.returncode != 0 or not png.is_file():
        raise SystemExit(f"chromium failed ({res.returncode}): {res.stderr[-400:]}")
    print(f"{png} ({png.stat().st_size // 1024} KB)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--day", type=dt.date.fromisoformat, default=dt.date(2026, 6, 2))
    ap.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    ap.add_argument("--threshold", type=float, default=None, help="DIGEST_RELEVANCE_THRESHOLD (0: every paper)")
    ap.add_argument("--at", default="", help="an arXiv id: the page shots start at its entry (e.g. one with LaTeX)")
    args = ap.parse_args()
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if not browser:
        raise SystemExit("no chromium found: apt-get install chromium")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, replay(args.day, Path(tmp)) as r:
        if args.threshold is not None:
            os.environ["DIGEST_RELEVANCE_THRESHOLD"] = str(args.threshold)
        settings = load_settings()
        report = run_day(args.day, Run(Providers.from_settings(settings)))
        print(report.line())
        out = Path(settings.output_dir)
        page = out / f"{args.day:%Y}/{args.day:%m}/{args.day.isoformat()}.html"
        day = args.day.isoformat()
        target = page
        if args.at:  # a copy of the page that starts at that entry (a fragment does not scroll a headless shot)
            html = page.read_text(encoding="utf-8")
            start = html.find(f'data-arxiv-id="{args.at}"')
            art = html.rfind("<article", 0, start)
            body = html.find("<main") if "<main" in html else html.find("<body")
            body_end = html.find(">", body) + 1
            target = page.with_name(f"{day}-at.html")
            rest = html[art:].replace("<details><summary>English", "<details open><summary>English", 3)
            target.write_text(html[:body_end] + rest, encoding="utf-8")
        shot(browser, target, args.out / f"{day}-desktop.png", 1280, 2000)
        shot(browser, target, args.out / f"{day}-desktop-dark.png", 1280, 1200, dark=True)
        shot(browser, target, args.out / f"{day}-phone.png", 390, 1600)
        shot(browser, page, args.out / f"{day}-phone-top.png", 390, 700)
        shot(browser, out / "index.html", args.out / "index.png", 1000, 500)
        msg = r.mailbox.messages[0]
        html = msg.get_body(("html",)).get_content()
        email = Path(tmp) / "email.html"
        email.write_text(html, encoding="utf-8")
        print(f"email HTML part: {len(html.encode()) / 1000:.1f} KB; List-Unsubscribe: {msg['List-Unsubscribe']}")
        shot(browser, email, args.out / f"{day}-email.png", 800, 2000)


if __name__ == "__main__":
    main()
