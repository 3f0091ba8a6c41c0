"""How well the yes/no answerability check separates answerable from unanswerable questions.

Usage::

    .venv/bin/python benchmarks/answerability.py --sets squad2 clapnq --limit 40

For each question of a seeded sample (the same sample as ``qa-bot eval --limit N``), the
passages and prompt are exactly those ``QABot.stream`` builds; each candidate wording is
appended to the prompt and the model's P(yes) read from its logits. The prompt's passages
stay in the KV cache, so every extra wording costs only its own tokens. Prints, per wording,
the AUC (answerable above unanswerable) and the threshold that refuses the most unanswerable
questions while refusing at most 10 % of the answerable ones, with the evidence gate applied
first as in the bot. Needs the stores built by benchmarks/retrieval_recall.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa_bot import QABot  # noqa: E402
from qa_bot.bot import ANSWERABLE_CHECK, with_line  # noqa: E402
from qa_bot.settings import load_settings  # noqa: E402
from ui.evaluate import load_questions  # noqa: E402

EVAL = ROOT.parent / "shared" / "eval"
WORDINGS = {
    "state": "\n\nDo the passages state the answer to this question? Reply yes or no.",
    "exact": "\n\nIs the answer to this exact question stated in the passages? Check that the passages "
    "talk about the same thing the question asks about. Reply yes or no.",
    "specific (default)": ANSWERABLE_CHECK,
    "facts": "\n\nReply yes or no: can the question be answered using only facts written in the passages?",
}
MEAN = "mean(specific, state)"


def readings(name: str, limit: int) -> list[dict]:
    base = load_settings(ROOT / "config.yaml")
    store = base.store.model_copy(update={"path": ROOT / "var" / "bench" / f"{name}-128-32-1"})
    bot = QABot(base.model_copy(update={"store": store}))
    rows = []
    for q in load_questions(EVAL / name, limit):
        passages = bot.retrieve(q["question"])
        prepared = bot.scorer.prepare(passages)
        q_vec = np.asarray(bot.embedder.embed([q["question"]]), dtype=np.float32)[0]
        evidence = bot._evidence(q["question"], q_vec, prepared)
        _, messages = bot._prompt(q["question"], q_vec, prepared, evidence, None)
        row = {"answerable": q["answerable"], "evidence": max(evidence)}
        for label, wording in WORDINGS.items():
            row[label] = bot.generator.yes_probability(with_line(messages, wording))
        row[MEAN] = (row["specific (default)"] + row["state"]) / 2  # two readings, one more line's cost
        rows.append(row)
        print(".", end="", flush=True, file=sys.stderr)
    return rows


def auc(rows: list[dict], key: str) -> float:
    pos = [r[key] for r in rows if r["answerable"]]
    neg = [r[key] for r in rows if not r["answerable"]]
    return float(np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg]))


def best_threshold(rows: list[dict], key: str, gate: float) -> tuple[float, float, float]:
    best = (0.0, 0.0, 0.0)
    for th in np.arange(0.30, 0.80, 0.01):
        refused = [r["evidence"] < gate or r[key] < th for r in rows]
        u = np.mean([x for x, r in zip(refused, rows, strict=True) if not r["answerable"]])
        a = np.mean([x for x, r in zip(refused, rows, strict=True) if r["answerable"]])
        if a <= 0.10 and u > best[1]:
            best = (float(th), float(u), float(a))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=["squad2", "clapnq"])
    parser.add_argument("--limit", type=int, default=40)
    args = parser.parse_args()
    gate = load_settings(ROOT / "config.yaml").answer.refuse_below
    every = []
    for name in args.sets:
        rows = readings(name, args.limit)
        every += rows
        print(f"\n{name}: {len(rows)} questions, {sum(r['answerable'] for r in rows)} answerable")
        print(f"  evidence score alone: AUC {auc(rows, 'evidence'):.3f}")
        for label in [*WORDINGS, MEAN]:
            print(f"  {label:20} AUC {auc(rows, label):.3f}")
    print(f"\npooled ({len(every)} questions), evidence gate {gate} first, answerable refused <= 10 %:")
    for label in [*WORDINGS, MEAN]:
        th, u, a = best_threshold(every, label, gate)
        print(f"  {label:20} P(yes) < {th:.2f}: unanswerable refused {u:.2f}, answerable refused {a:.2f}")


if __name__ == "__main__":
    main()
