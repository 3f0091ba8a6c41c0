"""``qa-bot eval``: ingest an eval set into a fresh store, ask every question, measure.

Usage::

    qa-bot eval ../shared/eval/squad2 --limit 40 --json out.json [--baseline langchain]

    from evaluation import run_eval
    result = run_eval(Path("../shared/eval/squad2"), settings, limit=40, k=4, baseline=None,
                      progress_factory=lambda total, label: lambda: None)

The dataset folder holds ``corpus.jsonl`` and ``questions.jsonl`` (see ../shared/eval/README.md).
Questions go through the same ``QABot.stream`` the UI uses. ``--limit`` takes a fixed,
seeded sample that keeps the mix of answerable and unanswerable questions.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.baseline import LangChainBaseline
from evaluation.metrics import Result, answer_score, choice_right, gold_days, load_questions, summarise
from ingest import ingest
from qa_bot import Answer, EarlyAnswer, Filters, Passage, QABot
from qa_bot.bot import History
from qa_bot.citations import CITATION
from qa_bot.settings import Settings
from qa_bot.tuning import machine, tune

# Recall and MRR are read from this many ranked passages; the bot answers from the first k.
RANKED = 10


class EvalBot(QABot):
    """The bot, with its retrieve stage replaced by one that ranks 10 passages, keeps the ranking
    for recall and MRR, and hands the bot its first k: one retrieval per question, and the same
    passages as the bot's own (retrieval takes its 30 candidates whatever k is, then the best first)."""

    ranked: list[Passage]

    def retrieve(
        self,
        question: str,
        k: int | None = None,
        filters: Filters | dict[str, Any] | None = None,
        history: History | None = None,
        vector: np.ndarray | None = None,
        as_of: date | datetime | str | None = None,
    ) -> list[Passage]:
        self.ranked = super().retrieve(
            question, k=max(RANKED, k or 0), filters=filters, history=history, vector=vector, as_of=as_of
        )
        return self.ranked[: k or self.settings.retrieval.k]


def evaluate_bot(
    bot: EvalBot,
    questions: list[dict[str, Any]],
    k: int,
    progress: Callable[[], None],
    as_of: bool = True,
    days: dict[str, str] | None = None,
) -> list[Result]:
    """Ask each question through ``QABot.stream``; one with an ``asked_on`` is asked as of that
    day unless ``as_of`` is False (the "without" row of docs/benchmarks.md). ``days``: the gold
    articles' publication days (:func:`evaluation.metrics.gold_days`), recorded with each result."""
    days = days or {}
    results = []
    for q in questions:
        short = q.get("type") == "factoid"
        final: Answer | None = None
        early: EarlyAnswer | None = None
        for part in bot.stream(q["question"], as_of=q.get("asked_on") if as_of else None):
            if isinstance(part, Answer):
                final = part
            elif isinstance(part, EarlyAnswer):
                early = part
        assert final is not None
        results.append(
            Result.of(
                q,
                retrieved=[p.doc_id for p in bot.ranked],
                answer=final.text,
                refused=final.refused,
                cited=[c.passage.doc_id for c in final.citations],
                unsupported=len(final.unsupported),
                kept_sentences=len(CITATION.findall(final.text)) if not final.refused else 0,
                answer_score=None if final.refused else answer_score(final.text, q["answers"], short),
                timings=dict(final.timings),
                scores=final.scores,
                early_score=answer_score(early.text, q["answers"], short) if early else None,
                asked_on=q.get("asked_on"),
                cited_dates=[c.passage.published for c in final.citations],
                choice_right=choice_right(final.text, final.refused, q),
                gold_dates=[days[d] for d in q["gold_doc_ids"] if d in days],
            )
        )
        progress()
    return results


@contextmanager
def eval_bot(
    folder: Path, settings: Settings, k: int, keep: Path | None = None
) -> Iterator[tuple[EvalBot, dict[str, Any], Path]]:
    """A bot over the set's corpus in a fresh temporary store (document ids kept), with the ingest
    figures; with ``keep``, the store is kept in that folder and reused by the next run (an
    unchanged corpus is not embedded again: realtimeqa-2024's 4,735 articles take minutes)."""
    with tempfile.TemporaryDirectory(prefix="qa-bot-eval-") as tmp:
        where = keep if keep is not None else Path(tmp)
        store = settings.store.model_copy(update={"mode": "embedded", "path": where / "store", "collection": "eval"})
        update: dict[str, Any] = {"k": k}
        if keep is not None:
            update["lexical_path"] = where / "lexical"
        retrieval = settings.retrieval.model_copy(update=update)
        # The gold labels name document ids: a near-copy grouped under another id has no chunks
        # of its own, and its questions would count as misses although their text is found. The
        # eval corpora hold six such pairs (docs/experiments/2026-12-02-wire-copies.md).
        # A set's corpus is one trusted file, larger than a user's upload may be (realtimeqa-2024: 48.5 MB).
        corpus_mb = (folder / "corpus.jsonl").stat().st_size / 2**20 + 1
        ingesting = settings.ingest.model_copy(
            update={"group_duplicates": False, "max_file_mb": max(settings.ingest.max_file_mb, corpus_mb)}
        )
        eval_settings = settings.model_copy(update={"store": store, "retrieval": retrieval, "ingest": ingesting})
        report = ingest([str(folder / "corpus.jsonl")], eval_settings)
        figures = {
            "articles": len(report.added),
            "chunks": report.chunks_written,
            "seconds": round(report.seconds, 1),
            "failed": len(report.failed),
        }
        yield EvalBot(eval_settings), figures, Path(tmp)


def run_eval(
    folder: Path,
    settings: Settings,
    limit: int | None,
    k: int,
    baseline: str | None,
    progress_factory: Callable[[int, str], Callable[[], None]],
    baseline_only: bool = False,
    as_of: bool = True,
    keep: Path | None = None,
) -> dict[str, Any]:
    """Every figure of one set; ``baseline_only`` skips qa-bot's questions (the bot still lends its
    LLM); ``as_of``: ask a dated question as of its ``asked_on``; ``keep``: a folder to keep the
    ingested store in and reuse."""
    questions = load_questions(folder, limit)
    out: dict[str, Any] = {"dataset": folder.name, "limit": limit, "k": k, "settings": _eval_settings(settings)}
    out["as_of_asked_on"] = as_of
    out["per_question"] = {}
    with eval_bot(folder, settings, k, keep) as (bot, figures, tmp):
        out["ingest"] = figures
        if not baseline_only:
            progress = progress_factory(len(questions), "qa-bot")
            results = evaluate_bot(bot, questions, k, progress, as_of, gold_days(folder, questions))
            out["qa-bot"] = summarise(results, k)
            out["per_question"]["qa-bot"] = [r.__dict__ for r in results]
        if baseline == "langchain":
            base = LangChainBaseline(folder / "corpus.jsonl", tmp / "langchain", bot)
            base_results = base.evaluate(questions, progress_factory(len(questions), "langchain"))
            out["langchain"] = summarise(base_results, k)
            out["langchain"]["ingest_seconds"] = round(base.ingest_seconds, 1)
            out["per_question"]["langchain"] = [r.__dict__ for r in base_results]
    return out


def _eval_settings(settings: Settings) -> dict[str, Any]:
    """The settings that move the figures, so that a later reading of the JSON knows them.

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
