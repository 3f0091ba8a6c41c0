"""Refusal figures of a finished ``qa-bot eval`` run at another answerability threshold.

Usage::

    .venv/bin/python benchmarks/rethreshold.py ../shared/eval/clapnq var/eval-full/clapnq.json \\
        --now 0.40 [--was 0.48] [--config config.yaml] [--json OUT]

``--was`` defaults to the threshold the run recorded (runs since the eval JSON kept its settings).

Every question of an eval run records its check reading (``scores.answerable``). Only the
questions whose reading lies between the two thresholds can end differently:

- raising the threshold refuses them, with no model call;
- lowering it lets the model answer them, so those questions alone are asked again (the
  corpus is ingested into a fresh store, as ``qa-bot eval`` does) and their real outcome is
  taken: the model may still refuse, or its answer may fail citation checking.

The other questions keep their recorded results, so the figures are those a full run at the
new threshold would give, for minutes instead of an hour. Latencies are those recorded, and
the re-asked questions' own. ``--json OUT`` writes the run as it stands at the new threshold, in
``qa-bot eval``'s format (for ``benchmarks/compare.py``).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa_bot import REFUSAL  # noqa: E402
from qa_bot.settings import load_settings  # noqa: E402
from ui.evaluate import Result, eval_bot, evaluate_bot, load_questions, recorded_results, summarise  # noqa: E402

SHOWN = (
    "refused_unanswerable",
    "refused_answerable",
    "answer_score_answered",
    "answer_score_all",
    "citation_precision",
    "citation_recall",
)


def in_band(result: Result, low: float, high: float) -> bool:
    reading = result.scores.get("answerable")
    return reading is not None and low <= reading < high


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("eval_json", type=Path)
    parser.add_argument("--was", type=float, help="answer.answerable_below of the run (default: as it recorded)")
    parser.add_argument("--now", type=float, required=True, help="the threshold to report")
    parser.add_argument("--config", type=Path, default=ROOT / "config.yaml")
    parser.add_argument("--json", type=Path, metavar="OUT", help="write the run at the new threshold here")
    args = parser.parse_args()
    run = json.loads(args.eval_json.read_text())
    if args.was is None:
        recorded_at = run.get("settings", {}).get("answer", {}).get("answerable_below")
        if recorded_at is None:
            parser.error(f"{args.eval_json} does not record its threshold (an older run): give --was")
        args.was = recorded_at
    k = run["k"]
    recorded = recorded_results(run, "qa-bot")
    low, high = sorted((args.was, args.now))
    band = {r.qid for r in recorded if in_band(r, low, high)}
    print(f"{len(band)} of {len(recorded)} questions have a reading in [{low}, {high})")
    if args.now > args.was:
        changed = {
            r.qid: replace(
                r, answer=REFUSAL, refused=True, cited=[], kept_sentences=0, unsupported=0, answer_score=None
            )
            for r in recorded
            if r.qid in band
        }
    else:
        settings = load_settings(args.config)
        settings = settings.model_copy(
            update={"answer": settings.answer.model_copy(update={"answerable_below": args.now})}
        )
        asked = [q for q in load_questions(args.dataset, None) if q["qid"] in band]
        with eval_bot(args.dataset, settings, k) as (bot, _, _):
            changed = {r.qid: r for r in evaluate_bot(bot, asked, k, lambda: None)}
    results = [changed.get(r.qid, r) for r in recorded]
    before, after = summarise(recorded, k), summarise(results, k)
    print(f"{'metric':28} {'at ' + str(args.was):>10} {'at ' + str(args.now):>10}")
    for key in SHOWN:
        print(f"{key:28} {_fmt(before[key]):>10} {_fmt(after[key]):>10}")
    if args.json:
        settings = run.setdefault("settings", {})
        settings["answer"] = {**settings.get("answer", {}), "answerable_below": args.now}
        run["qa-bot"], run["per_question"]["qa-bot"] = after, [r.__dict__ for r in results]
        run["rethreshold"] = {"was": args.was, "now": args.now, "re_asked": sorted(band) if args.now < args.was else []}
        args.json.write_text(json.dumps(run, indent=2, ensure_ascii=False))
        print(f"wrote {args.json}")


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    main()
