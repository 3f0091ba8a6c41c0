"""Does the probe fitted on the Q8_0 weights read the shipped Q4_K_M weights' hidden state too?

Usage (from the repository root; about 10 minutes on 2 cores)::

    .venv/bin/python docs/experiments/probe_transfer.py --limit 20

Both weights of the 1.5B read the same check prompts (the bot's own, at a 350-token budget) for
a fixed sample of squad2 and clapnq questions; the shipped probe reads each hidden state.
Printed: how far the two readings are apart, how often the bot's decisions (refuse below
answer.probe_below, override above answer.probe_overrides) agree, and each reading's AUC.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from evaluation import eval_bot, load_questions
from qa_bot import QABot
from qa_bot import generation as generation_module
from qa_bot.probe import shipped_probe
from qa_bot.prompts import ANSWERABLE_CHECK, with_line
from qa_bot.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=20)
    args = parser.parse_args()
    q8_probe = shipped_probe("qwen2.5-coder-1.5b", "q8_0")
    generation_module.shipped_probe = lambda model, weights: q8_probe  # the same probe for both weights
    base = load_settings(ROOT / "config.yaml")
    rows = []
    for name in ("squad2", "clapnq"):
        folder = ROOT.parent / "shared" / "eval" / name
        with eval_bot(folder, base, 4) as (bot, _, _):
            bots = {}
            for weights in ("q8_0", "as-shipped"):
                g = bot.settings.generation.model_copy(
                    update={"model": "qwen2.5-coder-1.5b", "weights": weights, "prompt_tokens": 350}
                )
                bots[weights] = QABot(bot.settings.model_copy(update={"generation": g}))
            reader = bots["q8_0"]
            for q in load_questions(folder, args.limit):
                question = reader.check_question(q["question"])
                vector = reader.embed_question(question)
                evidence = reader.weigh_evidence(question, vector, reader.retrieve(question, vector=vector))
                messages = reader.build_prompt(question, vector, evidence, reader.select_passages(evidence))
                check = with_line(messages, ANSWERABLE_CHECK)
                readings = {w: b.generator.judge(check).probe for w, b in bots.items()}
                rows.append((name, q["answerable"], readings["q8_0"], readings["as-shipped"]))
                print(name, q["answerable"], readings, flush=True)
    a = base.answer
    q8 = np.array([r[2] for r in rows])
    q4 = np.array([r[3] for r in rows])
    labels = [r[1] for r in rows]
    diff = np.abs(q8 - q4)
    print(f"questions: {len(rows)}")
    print(f"|q8_0 - as-shipped|: mean {diff.mean():.3f}, median {statistics.median(diff):.3f}, max {diff.max():.3f}")
    print(f"correlation: {np.corrcoef(q8, q4)[0, 1]:.3f}")
    for name, cut in (("refuse (probe_below)", a.probe_below), ("override (probe_overrides)", a.probe_overrides)):
        agree = np.mean((q8 < cut) == (q4 < cut))
        print(f"{name} at {cut}: same decision for {agree:.1%}")
    print(f"AUC answerable vs not: q8_0 {roc_auc_score(labels, q8):.3f}, as-shipped {roc_auc_score(labels, q4):.3f}")


if __name__ == "__main__":
    main()
