"""Issue 21's before/after on ares-news over ONE store: the eval's fresh store is built anew per run,
and Chroma's HNSW graph differs between builds (3 of 40 questions ranked differently by the same
code: determinism.py), so both versions answer over the same ingested store here.

Usage, from the repository root: PYTHONPATH=<checkout of 2e87552 or of c47f1e8> .venv/bin/python docs/experiments/2026-12-02-restructure-before-after/same_store.py before|after
"""

import json
import sys
from pathlib import Path

from ingest import ingest
from qa_bot.settings import load_settings

which = sys.argv[1]
folder = Path("../shared/eval/ares-news")
base = load_settings("docs/experiments/2026-12-02-restructure-before-after/config.yaml")
store_dir = Path("var/restructure-ares-store")
settings = base.model_copy(
    update={
        "store": base.store.model_copy(update={"path": store_dir / "chroma", "collection": "eval"}),
        "retrieval": base.retrieval.model_copy(update={"k": 4, "lexical_path": store_dir / "lexical"}),
    }
)
if not store_dir.exists():
    ingest([str(folder / "corpus.jsonl")], settings)
if which == "before":
    from ui.evaluate import evaluate_bot, load_questions

    from qa_bot import QABot

    bot = QABot(settings)
else:
    from evaluation import EvalBot, evaluate_bot, load_questions

    bot = EvalBot(settings)
results = evaluate_bot(bot, load_questions(folder, 40), 4, lambda: None)
Path(f"docs/experiments/2026-12-02-restructure-before-after/same-{which}.json").write_text(
    json.dumps([r.__dict__ for r in results], indent=1)
)
print(which, len(results))
