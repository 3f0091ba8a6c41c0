"""Time in retrieval, on realtimeqa-2024: each question asked as of its ``asked_on``.

Usage::

    .venv/bin/python -m benchmarks.temporal_retrieval [--store var/eval-stores/realtimeqa-2024] [--grid]

The corpus is ingested once into ``--store`` as ``qa-bot eval --keep-store`` does (kept, so
reruns only query). For each variant of the retrieval settings it prints, over the questions
whose searched articles state the answer (``gold_doc_ids``), recall@4 of a gold article (half of
the gold articles are over 330 days older than the question: the label is "contains the
answer's words", not "reports this week's news"); over every question, the share whose right
answer's words stand in one of the top 4 passages (``answer_in_4``: what an answer can be drawn
from), the share of the top 4 passages published more than 30 days before the question ("old"),
after it ("after"), the same two over the questions about now only (``now_answer_in_4``,
``now_old``: "latest", "currently", or a period ending within the week before it is asked, by
:func:`about_now`, which counts "this year" too), and retrieval p50. ``--half first|second``
takes the questions asked before, or from, the middle ``asked_on`` date: a setting chosen on all
questions should hold on each half. Rows:

- ``no moment``: as of today, without recency (what main did before the moment existed);
- ``until asked_on``: the hard filter alone (no recency, no period search);
- ``default``: the shipped settings, as of ``asked_on``;
- with ``--grid``: the recency weight, half-life, period search weight and window around it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import date
from pathlib import Path
from typing import Any

from evaluation.evaluate import eval_bot
from evaluation.metrics import load_questions, normalise
from qa_bot.retrieval import Retriever
from qa_bot.settings import load_settings
from qa_bot.timeframe import resolve

ROOT = Path(__file__).resolve().parent.parent
SET = ROOT.parent / "shared" / "eval" / "realtimeqa-2024"


def measure(
    retriever: Retriever, questions: list[dict[str, Any]], vectors: dict[str, list[float]], as_of: bool
) -> dict:
    hits, gold_n, ages, times, holds = 0, 0, [], [], 0
    now_ages, now_holds, now_n = [], 0, 0
    for q in questions:
        asked = date.fromisoformat(q["asked_on"])
        began = time.perf_counter()
        passages = retriever.search(q["question"], k=4, as_of=asked if as_of else None, vector=vectors[q["qid"]])
        times.append(time.perf_counter() - began)
        answer = normalise(q["answers"][0])
        held = bool(answer) and any(answer in normalise(p.text) for p in passages)
        holds += held
        if q["gold_doc_ids"]:
            gold_n += 1
            hits += any(p.doc_id in q["gold_doc_ids"] for p in passages)
        found = [(asked - date.fromisoformat(p.published)).days for p in passages if p.published]
        ages += found
        if about_now(q["question"], asked):
            now_n += 1
            now_holds += held
            now_ages += found
    return {
        "recall@4": round(hits / gold_n, 4),
        "answer_in_4": round(holds / len(questions), 4),
        "old": round(sum(a > 30 for a in ages) / len(ages), 4),
        "after": round(sum(a < 0 for a in ages) / len(ages), 4),
        "now_answer_in_4": round(now_holds / now_n, 4) if now_n else None,
        "now_old": round(sum(a > 30 for a in now_ages) / len(now_ages), 4) if now_ages else None,
        "p50_ms": round(1000 * statistics.median(times), 1),
    }


def about_now(question: str, asked: date) -> bool:
    """A question about now: it says "latest", "currently" or the like, or names a period that
    ends within the week before it is asked ("this week", "on Tuesday")."""
    scope = resolve(question, asked)
    if scope is None or scope.kind == "named":
        return False
    return scope.kind == "recent" or (scope.until is not None and (asked - scope.until).days <= 7)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", type=Path, default=ROOT / "var" / "eval-stores" / "realtimeqa-2024")
    parser.add_argument("--grid", action="store_true", help="also try other recency and period settings")
    parser.add_argument(
        "--try",
        dest="tries",
        action="append",
        default=[],
        metavar="K=V,K=V",
        help="a row with these retrieval settings, e.g. recency_weight=0.5,period_weight=0.5",
    )
    parser.add_argument("--limit", type=int, default=None, help="a fixed random sample of N questions")
    parser.add_argument(
        "--half",
        choices=["first", "second"],
        help="only the questions asked before, or from, the middle asked_on date (does a setting hold on each?)",
    )
    args = parser.parse_args()
    settings = load_settings(ROOT / "config.yaml")
    questions = load_questions(SET, args.limit)
    if args.half:
        weeks = sorted({q["asked_on"] for q in questions})
        middle = weeks[len(weeks) // 2]
        questions = [q for q in questions if (q["asked_on"] < middle) == (args.half == "first")]
        if not questions:
            parser.error(f"--half {args.half}: no questions in that half (asked_on dates: {len(weeks)})")
    with eval_bot(SET, settings, 4, keep=args.store) as (bot, figures, _):
        print(f"ingest: {figures}", flush=True)
        base = bot.settings.retrieval
        embedded = bot.embedder.embed([q["question"] for q in questions])
        vectors = {q["qid"]: list(map(float, v)) for q, v in zip(questions, embedded, strict=True)}
        lexical = bot.retriever.lexical()
        off = {"recency_weight": 0.0, "recency_weight_recent": 0.0, "period_weight": 0.0, "time_boost": 0.0}
        rows: list[tuple[str, dict[str, Any], bool]] = [
            ("no moment", off, False),
            ("until asked_on", off, True),
            ("default", {}, True),
        ]
        if args.grid:
            for w in (0.1, 0.2, 0.3, 0.5):
                for half in (14, 30, 60, 180):
                    rows.append((f"w={w} half={half}", {"recency_weight": w, "recency_half_life_days": half}, True))
            for pw in (0.0, 0.5, 1.0, 2.0):
                for days in (7, 14, 30):
                    rows.append((f"period={pw} days={days}", {"period_weight": pw, "recent_days": days}, True))
            rows.append(("decay only", {"period_weight": 0.0}, True))
            rows.append(("period only", {"recency_weight": 0.0, "recency_weight_recent": 0.0}, True))
        for spec in args.tries:
            pairs = (kv.split("=", 1) for kv in spec.split(","))
            rows.append((spec, {k.strip(): json.loads(v) for k, v in pairs}, True))
        for name, update, as_of in rows:
            retriever = Retriever(base.model_copy(update=update), bot.store, bot.embedder, lexical)
            m = measure(retriever, questions, vectors, as_of)
            print(f"{name:24} {json.dumps(m)}", flush=True)


if __name__ == "__main__":
    main()
