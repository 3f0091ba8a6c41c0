"""What an evaluation measures: per-question results, answer scores and the summary figures.

Usage::

    from evaluation.metrics import load_questions, answer_score, summarise
    questions = load_questions(Path("../shared/eval/squad2"), limit=40)   # a fixed, seeded sample
    answer_score("It opened in 1889 [1].", ["1889"], short=True)         # 1.0
    summarise(results, k=4)                                               # recall@k, MRR, refusals, ...

No model and no store here: :mod:`evaluation.evaluate` runs the bot, :mod:`evaluation.baseline`
the LangChain tutorial pipeline, and both are scored by these functions.
"""

from __future__ import annotations

import json
import random
import re
import resource
import statistics
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa_bot.citations import content_words


@dataclass
class Result:
    qid: str
    question: str
    answerable: bool
    gold: list[str]
    retrieved: list[str]
    answer: str
    refused: bool
    cited: list[str]
    unsupported: int
    kept_sentences: int
    answer_score: float | None
    timings: dict[str, float] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)
    # The quoted early answer's score against the references (None: no early answer was given).
    early_score: float | None = None

    @classmethod
    def of(cls, question: dict[str, Any], **measured: Any) -> Result:
        """A question's result: its id, text, answerability and gold documents from the set's row."""
        return cls(
            qid=question["qid"],
            question=question["question"],
            answerable=question["answerable"],
            gold=question["gold_doc_ids"],
            **measured,
        )


def recorded_results(run: dict[str, Any], system: str) -> list[Result]:
    """The per-question results a ``--json`` run recorded for ``system`` (qa-bot or langchain)."""
    return [Result(**r) for r in run["per_question"][system]]


def load_questions(folder: Path, limit: int | None) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in (folder / "questions.jsonl").read_text().splitlines() if line.strip()]
    if limit and limit < len(rows):
        rng = random.Random(0)
        rows = rng.sample(rows, limit)
    return rows


_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalise(text: str) -> str:
    text = text.lower().translate(str.maketrans("", "", string.punctuation))
    return " ".join(_ARTICLES.sub(" ", text).split())


def answer_score(answer: str, references: list[str], short: bool) -> float | None:
    """Short answers: 1 if a reference is contained after normalisation; long: token recall."""
    if not references:
        return None
    if short:
        clean = normalise(answer)
        return float(any(normalise(r) and normalise(r) in clean for r in references))
    got = set(content_words(answer))
    best = 0.0
    for ref in references:
        words = content_words(ref)
        if words:
            best = max(best, sum(w in got for w in words) / len(words))
    return best


def summarise(results: list[Result], k: int) -> dict[str, Any]:
    answerable = [r for r in results if r.answerable]
    unanswerable = [r for r in results if not r.answerable]
    answered = [r for r in answerable if not r.refused]

    def share(items: list[Any], pred: Callable[[Any], bool]) -> float | None:
        return round(sum(1 for i in items if pred(i)) / len(items), 4) if items else None

    def rank(r: Result) -> int | None:
        return next((i for i, d in enumerate(r.retrieved) if d in r.gold), None)

    cited = [(r, d) for r in answered for d in r.cited]
    scores = [r.answer_score for r in answerable if r.answer_score is not None]
    all_scores = [r.answer_score or 0.0 for r in answerable]

    def pct(key: str, p: float) -> float | None:
        values = sorted(r.timings[key] for r in results if key in r.timings)
        if not values:
            return None
        return round(values[min(len(values) - 1, int(p * len(values)))], 3)

    return {
        "questions": len(results),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        f"recall@{k}": share(answerable, lambda r: (x := rank(r)) is not None and x < k),
        "mrr@10": round(statistics.fmean([1 / (x + 1) if (x := rank(r)) is not None else 0 for r in answerable]), 4)
        if answerable
        else None,
        "answer_score_answered": round(statistics.fmean(scores), 4) if scores else None,
        "answer_score_all": round(statistics.fmean(all_scores), 4) if all_scores else None,
        "citation_precision": share(cited, lambda rd: rd[1] in rd[0].gold),
        "citation_recall": share(answered, lambda r: any(d in r.gold for d in r.cited)),
        "unsupported_sentence_share": round(
            sum(r.unsupported for r in results) / max(1, sum(r.unsupported + r.kept_sentences for r in results)), 4
        ),
        # The quoted early answer, counted 0 where none was shown.
        "early_answer_score_all": round(statistics.fmean([r.early_score or 0.0 for r in answerable]), 4)
        if answerable
        else None,
        "refused_unanswerable": share(unanswerable, lambda r: r.refused),
        "refused_answerable": share(answerable, lambda r: r.refused),
        "latency_s": {
            key: {"p50": pct(key, 0.5), "p95": pct(key, 0.95)}
            for key in ("retrieval", "early", "first_token", "answer")
        },
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
