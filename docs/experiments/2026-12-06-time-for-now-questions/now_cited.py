"""Questions about now in a ``qa-bot eval --json`` run of realtimeqa-2024: how many were answered,
answered right, and how many of their cited articles are older than 30 days.

Usage, from the repository root::

    .venv/bin/python docs/experiments/2026-12-06-time-for-now-questions/now_cited.py RUN.json [RUN.json ...]
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from benchmarks.temporal_retrieval import about_now


def main() -> None:
    for name in sys.argv[1:]:
        results = json.loads(Path(name).read_text())["per_question"]["qa-bot"]
        now = [r for r in results if about_now(r["question"], date.fromisoformat(r["asked_on"]))]
        ages = [
            (date.fromisoformat(r["asked_on"]) - date.fromisoformat(day)).days
            for r in now
            if not r["refused"]
            for day in r["cited_dates"]
            if day
        ]
        old = sum(a > 30 for a in ages)
        print(
            f"{name}: {len(now)} about now, {sum(not r['refused'] for r in now)} answered, "
            f"{sum(bool(r['choice_right']) for r in now)} right, {len(ages)} cited, {old} older than 30 days "
            f"({old / max(1, len(ages)):.2f})"
        )


if __name__ == "__main__":
    main()
