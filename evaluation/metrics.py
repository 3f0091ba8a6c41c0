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
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
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
    # News quizzes (realtimeqa): the day asked, the cited articles' dates ("" undated), and
    # whether the free answer's nearest choice is the right one (None: the set has no choices).
    asked_on: str | None = None
    cited_dates: list[str] = field(default_factory=list)
    choice_right: bool | None = None
    # The gold articles' publication days ("" undated), where the run recorded them.
    gold_dates: list[str] = field(default_factory=list)

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


def gold_days(folder: Path, questions: list[dict[str, Any]]) -> dict[str, str]:
    """The publication day ("" undated) of every gold article of the dated ``questions``, read
    from the set's ``corpus.jsonl``; empty when no question has an ``asked_on``."""
    wanted = {d for q in questions if q.get("asked_on") for d in q["gold_doc_ids"]}
    days: dict[str, str] = {}
    if not wanted:
        return days
    with (folder / "corpus.jsonl").open(encoding="utf-8") as rows:
        for line in rows:
            if line.strip() and (row := json.loads(line))["doc_id"] in wanted:
                days[row["doc_id"]] = (row.get("published") or "")[:10]
    return days


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


def _tokens(text: str) -> list[str]:
    return normalise(re.sub(r"\[\d+\]", " ", text)).split()


def token_f1(answer: str, reference: str) -> float:
    """SQuAD's token F1 of two texts, after :func:`normalise` (citation marks removed)."""
    got, want = _tokens(answer), _tokens(reference)
    common = sum((Counter(got) & Counter(want)).values())
    if not common:
        return 0.0
    precision, recall = common / len(got), common / len(want)
    return 2 * precision * recall / (precision + recall)


def nearest_choice(answer: str, choices: list[str]) -> int | None:
    """The choice a free answer means: the one of highest token F1 with it (RealTime QA's scorer
    for free answers); None when it shares no word with any, or ties between the best."""
    scores = [token_f1(answer, c) for c in choices]
    best = max(scores, default=0.0)
    if best == 0.0 or scores.count(best) > 1:
        return None
    return scores.index(best)


def choice_right(answer: str, refused: bool, question: dict[str, Any]) -> bool | None:
    """Right when the answer's nearest choice is the right one; a refusal is wrong; None without choices."""
    if not question.get("choices") or question.get("answer_index") is None:
        return None
    return not refused and nearest_choice(answer, question["choices"]) == int(question["answer_index"])


def cited_age_shares(results: list[Result], days: int = 30) -> dict[str, float | None]:
    """Of the cited passages of answered questions with an ``asked_on``: the share published more
    than ``days`` days before it, and the share published after it (undated ones count in neither)."""
    ages = []
    for r in results:
        if r.refused or not r.asked_on:
            continue
        asked = date.fromisoformat(r.asked_on)
        ages += [(asked - date.fromisoformat(d)).days for d in r.cited_dates if d]
    if not ages:
        return {f"cited_older_than_{days}d": None, "cited_after_asked": None}
    return {
        f"cited_older_than_{days}d": round(sum(a > days for a in ages) / len(ages), 4),
        "cited_after_asked": round(sum(a < 0 for a in ages) / len(ages), 4),
    }


def quiz_figures(quiz: list[Result], days: int = 30) -> dict[str, Any]:
    """A news quiz's figures: answered right, and where the archive could give the answer at all.

    ``archive_holds_answer``: the share of questions with a gold article (one of the quiz's
    searched articles states the right choice's words; on realtimeqa-2024 every one is published
    by ``asked_on``): the ceiling of an answer drawn from the archive. ``answered_right_held``:
    answered right among those questions, what the answer step does with evidence that exists.

    A gold article of years before often only names the right choice in another story (a 2018
    piece naming "United Airlines" for a 2024 question on its mishaps), so the same two figures
    are also given for gold articles published in the ``days`` days up to ``asked_on``
    (``archive_holds_answer_30d``, ``answered_right_held_30d``): the ceiling of an answer about the
    moment. They are None for a run that did not record the gold articles' dates.
    """
    held = [r for r in quiz if r.gold]
    recent = [r for r in quiz if _gold_within(r, days)]
    dated = any(r.gold_dates for r in quiz)
    return {
        "answered_right": _right_share(quiz),
        "archive_holds_answer": round(len(held) / len(quiz), 4),
        "answered_right_held": _right_share(held),
        f"archive_holds_answer_{days}d": round(len(recent) / len(quiz), 4) if dated else None,
        f"answered_right_held_{days}d": _right_share(recent),
    }


def _gold_within(r: Result, days: int) -> bool:
    """Whether a gold article of ``r`` was published in the ``days`` days up to its ``asked_on``."""
    if not r.asked_on:
        return False
    asked = date.fromisoformat(r.asked_on)
    return any(0 <= (asked - date.fromisoformat(d[:10])).days <= days for d in r.gold_dates if d)


def _right_share(results: list[Result]) -> float | None:
    return round(sum(bool(r.choice_right) for r in results) / len(results), 4) if results else None


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
        **(
            {**quiz_figures(quiz), **cited_age_shares(results)}
            if (quiz := [r for r in results if r.choice_right is not None])
            else {}
        ),
        "latency_s": {
            key: {"p50": pct(key, 0.5), "p95": pct(key, 0.95)}
            for key in ("retrieval", "early", "first_token", "answer")
        },
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
