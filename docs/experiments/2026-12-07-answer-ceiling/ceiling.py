"""The ceilings of realtimeqa-2024. First, the share of questions with a gold article (one of the
quiz's searched articles stating the right choice) published in the N days up to ``asked_on``.
Then the loose ceiling: the share of questions for which some article of the
archive, published in the N days up to ``asked_on``, contains the right choice's words (and the
share where that article contains no other choice). Word matching as the published scorer
normalises (lower case, no punctuation, no articles).

Usage (from the repository root)::

    .venv/bin/python docs/experiments/2026-12-07-answer-ceiling/ceiling.py
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))
from evaluation.metrics import normalise  # noqa: E402

SET = ROOT.parent / "shared" / "eval" / "realtimeqa-2024"


def main() -> None:
    questions = [json.loads(line) for line in (SET / "questions.jsonl").open()]
    articles = []
    for line in (SET / "corpus.jsonl").open():
        row = json.loads(line)
        if row.get("published"):
            text = f" {normalise(row['title'] + ' ' + row['text'])} "
            articles.append((date.fromisoformat(row["published"][:10]), text))

    def appears(q: dict, days: int, alone: bool) -> bool:
        asked = date.fromisoformat(q["asked_on"])
        right = f" {normalise(q['choices'][q['answer_index']])} "
        others = [f" {normalise(c)} " for i, c in enumerate(q["choices"]) if i != q["answer_index"]]
        return any(
            0 <= (asked - day).days <= days and right in text and not (alone and any(o in text for o in others))
            for day, text in articles
        )

    published = {}
    for line in (SET / "corpus.jsonl").open():
        row = json.loads(line)
        published[row["doc_id"]] = (row.get("published") or "")[:10]

    def gold_within(q: dict, days: int) -> bool:
        asked = date.fromisoformat(q["asked_on"])
        dated = [date.fromisoformat(published[d]) for d in q["gold_doc_ids"] if published.get(d)]
        return any(0 <= (asked - day).days <= days for day in dated)

    for days in (7, 14, 30, 90, 365, 100_000):
        share = sum(gold_within(q, days) for q in questions) / len(questions)
        print(f"a gold article within {days} days: {share:.3f}")
    for days in (7, 30):
        share = sum(appears(q, days, False) for q in questions) / len(questions)
        alone = sum(appears(q, days, True) for q in questions) / len(questions)
        print(f"within {days} days: right choice appears {share:.3f}; and no other choice in that article {alone:.3f}")


if __name__ == "__main__":
    main()
