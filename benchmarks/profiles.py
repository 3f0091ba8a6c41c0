"""The bundled models side by side on the eval sets: answers, citations, refusals and speed.

Usage::

    .venv/bin/python -m benchmarks.profiles [--sets squad2 clapnq] [--limit 40] [--json OUT]

For each set, the corpus is ingested once into a temporary store; then each profile (the 1.5B
and the 0.5B, each on the weights ``qa_bot.tuning`` finds fastest here, and the passage budget
it picks) answers the same fixed sample of questions, as ``qa-bot eval --limit`` draws it.
Printed: answer score over all answerable questions, the quoted early answer's score, citation
precision, unanswerable and answerable refused, and p50/p95 of the first cited words (the early
answer), the first model token and the whole answer, with the CPU and the llama.cpp build.
``qa_bot.tuning.ANSWER_SCORE`` takes its figures from this run (the mean over squad2 and clapnq).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

from evaluation import EvalBot, eval_bot, evaluate_bot, load_questions, summarise
from qa_bot.settings import load_settings
from qa_bot.tuning import BIG, SMALL, machine, tune

ROOT = Path(__file__).resolve().parent.parent
EVAL = ROOT.parent / "shared" / "eval"
ROWS = [
    ("answer score (all answerable)", "answer_score_all"),
    ("early answer score (all answerable)", "early_answer_score_all"),
    ("citation precision", "citation_precision"),
    ("unanswerable refused", "refused_unanswerable"),
    ("answerable refused", "refused_answerable"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=["squad2", "clapnq"])
    parser.add_argument("--limit", type=int, default=40)
    parser.add_argument("--models", nargs="+", default=[BIG, SMALL])
    parser.add_argument("--json", type=Path, help="write the figures and every question's result here")
    parser.add_argument("--answerable-below", type=float, help="override answer.answerable_below (0: no check)")
    args = parser.parse_args()
    base = load_settings(ROOT / "config.yaml")
    if args.answerable_below is not None:
        answer = base.answer.model_copy(update={"answerable_below": args.answerable_below})
        base = base.model_copy(update={"answer": answer})
    out: dict[str, Any] = {"machine": machine(), "sets": {}}
    for name in args.sets:
        folder = EVAL / name
        questions = load_questions(folder, args.limit)
        with eval_bot(folder, base, k=4) as (bot, _, _):
            out["sets"][name] = {}
            for model in args.models:
                generation = tune(base.generation.model_copy(update={"model": model}))
                profile = EvalBot(bot.settings.model_copy(update={"generation": generation.settings}))
                profile.ask("What is this about?")  # loads the model; not timed
                results = evaluate_bot(profile, questions, 4, lambda: None)
                figures = summarise(results, 4)
                figures["choice"] = generation.choice.summary()
                out["sets"][name][model] = figures
                out.setdefault("per_question", {}).setdefault(name, {})[model] = [r.__dict__ for r in results]
                print(f"{name} {model}: {figures['choice']}", flush=True)
    print(report(out, args.limit))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


def report(out: dict[str, Any], limit: int) -> str:
    m = out["machine"]
    lines = [f"CPU: {m['cpu']}; {m['build']}; {m['cores']} cores; {limit} questions a set", ""]
    for name, profiles in out["sets"].items():
        models = list(profiles)
        lines += [f"**{name}**", "", "| metric | " + " | ".join(models) + " |", "|---" * (len(models) + 1) + "|"]
        for label, key in ROWS:
            lines.append(f"| {label} | " + " | ".join(_fmt(profiles[m][key]) for m in models) + " |")
        for step, label in (("early", "first cited words"), ("first_token", "first model token"), ("answer", "answer")):
            cells = [profiles[m]["latency_s"][step] for m in models]
            lines.append(
                f"| {label} p50 / p95 (s) | " + " | ".join(f"{_fmt(c['p50'])} / {_fmt(c['p95'])}" for c in cells) + " |"
            )
        lines.append("")
    scores = {
        m: statistics.fmean(p[m]["answer_score_all"] or 0 for p in out["sets"].values())
        for m in out["sets"][next(iter(out["sets"]))]
    }
    lines.append("mean answer score over the sets: " + ", ".join(f"{m} {s:.3f}" for m, s in scores.items()))
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


if __name__ == "__main__":
    main()
