"""Evaluation: the bot and the LangChain tutorial pipeline on the question sets of ../shared/eval.

Used by ``qa-bot eval`` (ui/cli.py) and by the benchmarks; it imports ``ingest`` and ``qa_bot``,
and nothing imports it but those two callers.
"""

from evaluation.evaluate import EvalBot, eval_bot, evaluate_bot, format_table, run_eval
from evaluation.metrics import Result, answer_score, load_questions, normalise, recorded_results, summarise

__all__ = [
    "EvalBot",
    "Result",
    "answer_score",
    "eval_bot",
    "evaluate_bot",
    "format_table",
    "load_questions",
    "normalise",
    "recorded_results",
    "run_eval",
    "summarise",
]
