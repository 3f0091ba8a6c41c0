"""Timelines for five stories of realtimeqa-2024: entries, dates, duplicates and time to build.

Usage::

    .venv/bin/python -m benchmarks.timeline_topics [--store var/eval-stores/realtimeqa-2024] [--as-of 2024-06-30]

The store is the one ``qa-bot eval --keep-store`` (or benchmarks.temporal_retrieval) keeps. Per
topic: the number of entries; the share whose date is right, checked against the article the
entry quotes (its publication day, or a weekday the quoted sentence names within the six days
before it, as the resolver reads it); duplicate pairs, counted two ways, both independent of the
merge rule: ``loose`` (two entries whose quoted sentences share at least half their words of three
letters or more, the first measure: sentences on one trial share "trump", "hush", "money",
"trial", "the" and count though they report different days) and ``same_news`` (two entries within
``SAME_NEWS_DAYS`` of each other whose sentences share at least half their content words once
the topic's own words are left out); how many entries cite more than one article; and seconds to
build (the second build, with the models loaded).
"""

from __future__ import annotations

import argparse
import calendar
import json
import re
import time
from datetime import date, timedelta
from pathlib import Path

from evaluation.evaluate import eval_bot
from qa_bot.citations import content_words
from qa_bot.settings import load_settings
from qa_bot.timeline import TimelineEntry

ROOT = Path(__file__).resolve().parent.parent
SET = ROOT.parent / "shared" / "eval" / "realtimeqa-2024"
TOPICS = [
    "Boeing 737 MAX door plug",
    "Navalny death",
    "Francis Scott Key Bridge collapse in Baltimore",
    "Trump hush money trial",
    "Houthi attacks on ships in the Red Sea",
]


def date_right(entry: TimelineEntry) -> bool:
    """The entry's day is the quoted article's, or a weekday its sentence names in the week before."""
    published = date.fromisoformat(entry.citations[0].passage.published)
    day = date.fromisoformat(entry.date)
    if day == published:
        return True
    named = calendar.day_name[day.weekday()]
    return published - timedelta(days=6) <= day < published and named in entry.text


def duplicate_pairs(entries: list[TimelineEntry]) -> int:
    words = [set(re.findall(r"\w{3,}", e.text.lower())) for e in entries]
    return sum(
        1
        for i in range(len(words))
        for j in range(i + 1, len(words))
        if words[i] and words[j] and len(words[i] & words[j]) / min(len(words[i]), len(words[j])) >= 0.5
    )


SAME_NEWS_DAYS = 7


def same_news_pairs(entries: list[TimelineEntry], topic: str) -> int:
    """Pairs of entries a week apart at most that say the same beyond the topic's own words."""
    topic_words = set(content_words(topic))
    words = [set(content_words(e.text)) - topic_words for e in entries]
    days = [date.fromisoformat(e.date) for e in entries]
    return sum(
        1
        for i in range(len(words))
        for j in range(i + 1, len(words))
        if words[i]
        and words[j]
        and abs((days[i] - days[j]).days) <= SAME_NEWS_DAYS
        and len(words[i] & words[j]) / min(len(words[i]), len(words[j])) >= 0.5
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", type=Path, default=ROOT / "var" / "eval-stores" / "realtimeqa-2024")
    parser.add_argument("--as-of", default="2024-06-30")
    parser.add_argument("--show", action="store_true", help="print every entry")
    args = parser.parse_args()
    settings = load_settings(ROOT / "config.yaml")
    with eval_bot(SET, settings, 4, keep=args.store) as (bot, _, _):
        bot.timeline(TOPICS[0], as_of=args.as_of)  # models loaded, BM25 opened
        for topic in TOPICS:
            began = time.perf_counter()
            found = bot.timeline(topic, as_of=args.as_of)
            seconds = time.perf_counter() - began
            entries = found.entries
            row = {
                "topic": topic,
                "entries": len(entries),
                "date_right": round(sum(map(date_right, entries)) / len(entries), 3) if entries else None,
                "duplicate_pairs": duplicate_pairs(entries),
                "same_news_pairs": same_news_pairs(entries, topic),
                "multi_source": sum(len(e.citations) > 1 for e in entries),
                "seconds": round(seconds, 2),
            }
            print(json.dumps(row), flush=True)
            if args.show:
                for e in entries:
                    print(f"    {e.date} [{len(e.citations)}] {e.score:.3f} {e.text[:150]}")


if __name__ == "__main__":
    main()
