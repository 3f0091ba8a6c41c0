"""Is the eval's top-10 the same when the same corpus is ingested twice by the same code?"""

from pathlib import Path

from ui.evaluate import eval_bot, load_questions

from qa_bot.settings import load_settings

folder = Path("../shared/eval/ares-news")
settings = load_settings("docs/experiments/2026-12-02-restructure-before-after/config.yaml")
qs = [q for q in load_questions(folder, 40)]
runs = []
for _ in range(2):
    with eval_bot(folder, settings, 4) as (bot, _, _):
        runs.append({q["qid"]: [p.chunk_id for p in bot.retrieve(q["question"], k=10)] for q in qs})
same = [qid for qid in runs[0] if runs[0][qid] == runs[1][qid]]
print(f"{len(same)} of {len(qs)} questions ranked alike in two builds of the same store")
print("differ:", [qid for qid in runs[0] if runs[0][qid] != runs[1][qid]])
