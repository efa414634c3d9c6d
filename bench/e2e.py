"""One real day end to end through the Prefect flow, with a 0.5 s-latency fake LLM: time per stage, RSS.

Usage: python bench/e2e.py [--day 2026-06-02] [--latency 0.5]

Runs ``daily_digest(date=day)`` on Prefect's ephemeral server against local arXiv / LLM / SMTP servers,
then again (cached). Prints wall time split by stage (Prefect overhead = wall − sum of stages), peak RSS.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from bench.replay import replay

STAGES = ["fetch", "embed", "classify", "summarise", "render", "deliver"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--day", type=dt.date.fromisoformat, default=dt.date(2026, 6, 2))
    ap.add_argument("--latency", type=float, default=0.5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["PREFECT_HOME"] = str(Path(tmp) / "prefect")
        t = time.perf_counter()
        from flows.daily import daily_digest

        import_s = time.perf_counter() - t
        with replay(args.day, Path(tmp), latency=args.latency) as r:
            rows = []
            for label in ("first run", "cached re-run"):
                t = time.perf_counter()
                rep = daily_digest(date=args.day)[0]
                wall = time.perf_counter() - t
                stages = {s: rep.stage_seconds.get(s, 0.0) for s in STAGES}
                rows.append((label, wall, stages, rep, r.llm.requests, len(r.mailbox.messages)))
    print(f"day {args.day}, fake LLM latency {args.latency} s, {os.cpu_count()} CPUs; import prefect+flows {import_s:.1f} s")
    print("| run | wall (s) | Prefect overhead | " + " | ".join(STAGES) + " | papers | relevant | LLM requests (cum.) | emails (cum.) |")
    print("|---" * (len(STAGES) + 7) + "|")
    for label, wall, st, rep, reqs, mails in rows:
        overhead = wall - sum(st.values())
        print(f"| {label} | {wall:.1f} | {overhead:.1f} | " + " | ".join(f"{st[s]:.1f}" for s in STAGES)
              + f" | {rep.fetched} | {rep.relevant} | {reqs} | {mails} |")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB (this process, incl. the fake servers)")


if __name__ == "__main__":
    main()
