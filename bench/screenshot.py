"""Render a replayed real day and screenshot its HTML page and the index with headless Chromium.

Usage: python bench/screenshot.py [--day 2026-06-02] [--out docs/screenshots]
Needs Debian's `chromium` (apt-get install chromium). Writes <day>-desktop.png, <day>-phone.png, index.png.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.replay import replay
from digest.config import load_settings
from digest.pipeline import RunContext, run_day
from digest.store import Store

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-extensions",
         "--disable-sync", "--no-first-run", "--hide-scrollbars", "--disable-dev-shm-usage"]


def shot(browser: str, page: Path, png: Path, width: int, height: int) -> None:
    cmd = [browser, *FLAGS, f"--window-size={width},{height}", f"--screenshot={png}", page.as_uri()]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if res.returncode != 0 or not png.is_file():
        raise SystemExit(f"chromium failed ({res.returncode}): {res.stderr[-400:]}")
    print(f"{png} ({png.stat().st_size // 1024} KB)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--day", type=dt.date.fromisoformat, default=dt.date(2026, 6, 2))
    ap.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    args = ap.parse_args()
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if not browser:
        raise SystemExit("no chromium found: apt-get install chromium")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, replay(args.day, Path(tmp)):
        settings = load_settings()
        report = run_day(args.day, RunContext(settings, Store(settings.db_url)))
        print(report.line())
        out = Path(settings.output_dir)
        page = out / f"{args.day:%Y}/{args.day:%m}/{args.day.isoformat()}.html"
        shot(browser, page, args.out / f"{args.day.isoformat()}-desktop.png", 1280, 2000)
        shot(browser, page, args.out / f"{args.day.isoformat()}-phone.png", 390, 1600)
        shot(browser, out / "index.html", args.out / "index.png", 1000, 500)


if __name__ == "__main__":
    main()
