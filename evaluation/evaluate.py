"""``qa-bot eval``: ingest an eval set into a fresh store, ask every question, measure.

Usage::

    qa-bot eval ../shared/eval/squad2 --limit 40 --json out.json [--baseline langchain]

The dataset folder holds ``corpus.jsonl`` and ``questions.jsonl`` (see ../shared/eval/README.md).
Questions go through the same ``QABot.stream`` the UI uses. ``--limit`` takes a fixed,
seeded sample that keeps the mix of answerable and unanswerable questions.
"""

from __future__ import annotations

import json
import random
import re
import resource
import statistics
import string
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest import ingest
from qa_bot import Answer, EarlyAnswer, QABot
from qa_bot.citations import CITATION, content_words
from qa_bot.settings import Settings
from qa_bot.tuning import machine, tune


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


def evaluate_bot(bot: QABot, questions: list[dict[str, Any]], k: int, progress: Callable[[], None]) -> list[Result]:
    results = []
    for q in questions:
        short = q.get("type") == "factoid"
        began = time.perf_counter()
        retrieved = [p.doc_id for p in bot.retrieve(q["question"], k=10)]
        retrieval = time.perf_counter() - began
        final: Answer | None = None
        early: EarlyAnswer | None = None
        for part in bot.stream(q["question"]):
            if isinstance(part, Answer):
                final = part
            elif isinstance(part, EarlyAnswer):
                early = part
        assert final is not None
        timings = {"retrieval": retrieval, **final.timings}
        results.append(
            Result(
                qid=q["qid"],
                question=q["question"],
                answerable=q["answerable"],
                gold=q["gold_doc_ids"],
                retrieved=retrieved,
                answer=final.text,
                refused=final.refused,
                cited=[c.passage.doc_id for c in final.citations],
                unsupported=len(final.unsupported),
                kept_sentences=len(CITATION.findall(final.text)) if not final.refused else 0,
                answer_score=None if final.refused else answer_score(final.text, q["answers"], short),
                timings=timings,
                scores=final.scores,
                early_score=answer_score(early.text, q["answers"], short) if early else None,
            )
        )
        progress()
    return results


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


@contextmanager
def eval_bot(folder: Path, settings: Settings, k: int) -> Iterator[tuple[QABot, dict[str, Any], Path]]:
    """A bot over the set's corpus in a fresh temporary store (document ids kept), with the ingest figures."""
    with tempfile.TemporaryDirectory(prefix="qa-bot-eval-") as tmp:
        store = settings.store.model_copy(
            update={"mode": "embedded", "path": Path(tmp) / "store", "collection": "eval"}
        )
        retrieval = settings.retrieval.model_copy(update={"k": k})
        eval_settings = settings.model_copy(update={"store": store, "retrieval": retrieval})
        report = ingest([str(folder / "corpus.jsonl")], eval_settings)
        figures = {
            "articles": len(report.added),
            "chunks": report.chunks_written,
            "seconds": round(report.seconds, 1),
            "failed": len(report.failed),
        }
        yield QABot(eval_settings), figures, Path(tmp)


def run_eval(
    folder: Path,
    settings: Settings,
    limit: int | None,
    k: int,
    baseline: str | None,
    progress_factory: Callable[[int, str], Callable[[], None]],
    baseline_only: bool = False,
) -> dict[str, Any]:
    """Every figure of one set; ``baseline_only`` skips qa-bot's questions (the bot still lends its LLM)."""
    questions = load_questions(folder, limit)
    out: dict[str, Any] = {"dataset": folder.name, "limit": limit, "k": k, "settings": _eval_settings(settings)}
    out["per_question"] = {}
    with eval_bot(folder, settings, k) as (bot, figures, tmp):
        out["ingest"] = figures
        if not baseline_only:
            results = evaluate_bot(bot, questions, k, progress_factory(len(questions), "qa-bot"))
            out["qa-bot"] = summarise(results, k)
            out["per_question"]["qa-bot"] = [r.__dict__ for r in results]
        if baseline == "langchain":
            from ui.baseline import LangChainBaseline

            base = LangChainBaseline(folder / "corpus.jsonl", tmp / "langchain", bot)
            base_results = base.evaluate(questions, progress_factory(len(questions), "langchain"))
            out["langchain"] = summarise(base_results, k)
            out["langchain"]["ingest_seconds"] = round(base.ingest_seconds, 1)
            out["per_question"]["langchain"] = [r.__dict__ for r in base_results]
    return out


def _eval_settings(settings: Settings) -> dict[str, Any]:
    """The settings that move the figures, so a later reading (``benchmarks/rethreshold.py``) knows them.

    The generation settings are those that ran: "auto" decided for this machine (qa_bot.tuning).
    """
    tuned = tune(settings.generation)
    return {
        "machine": machine(),
        "tuning": tuned.choice.summary(),
        "answer": settings.answer.model_dump(mode="json"),
        "retrieval": settings.retrieval.model_dump(mode="json"),
        "generation": tuned.settings.model_dump(
            mode="json",
            include={
                "backend",
                "model",
                "model_path",
                "weights",
                "openai_model",
                "prompt_tokens",
                "passage_margin",
                "max_tokens",
            },
        ),
    }


def format_table(result: dict[str, Any]) -> str:
    systems = [s for s in ("qa-bot", "langchain") if s in result]
    first = result[systems[0]]
    rows = [key for key, v in first.items() if not isinstance(v, dict)]
    lines = [f"{result['dataset']}: {first['questions']} questions ({first['answerable']} answerable)", ""]
    lines.append(f"{'metric':32}" + "".join(f"{s:>14}" for s in systems))
    for key in rows:
        lines.append(f"{key:32}" + "".join(f"{_fmt(result[s].get(key)):>14}" for s in systems))
    for key in ("retrieval", "early", "first_token", "answer"):
        for p in ("p50", "p95"):
            lines.append(
                f"{'latency ' + key + ' ' + p + ' (s)':32}"
                + "".join(f"{_fmt(result[s]['latency_s'][key][p]):>14}" for s in systems)
            )
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)
