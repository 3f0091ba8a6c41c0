"""Issue 31's before/after over ONE store per set: both versions answer the same 40 seeded
questions of each shared set over the store the first run ingested (Chroma builds its HNSW graph
differently each time, so a fresh store per run can rank a few questions differently by itself:
docs/experiments/2026-12-02-restructure-before-after.md).

Usage, from the repository root (the store is ingested by whichever version runs first):
    PYTHONPATH=<checkout of e4715e6 or of the after commit> .venv/bin/python \
        docs/experiments/2026-12-06-archive-before-after/same_store.py <set or folder> before|after
Then ``python docs/experiments/2026-12-06-archive-before-after/compare.py``.
"""

import json
import sys
from pathlib import Path

from evaluation import EvalBot, evaluate_bot, load_questions
from ingest import ingest
from qa_bot.settings import load_settings

HERE = Path("docs/experiments/2026-12-06-archive-before-after")
which = sys.argv[2]
# A shared set by name, or a folder of the same format (subset.py's realtimeqa-2024 store).
folder = Path(sys.argv[1]) if "/" in sys.argv[1] else Path("../shared/eval") / sys.argv[1]
name = folder.name
base = load_settings(HERE / "config.yaml")
store_dir = Path("var/archive-before-after") / name
settings = base.model_copy(
    update={
        "store": base.store.model_copy(update={"path": store_dir / "chroma", "collection": "eval"}),
        "retrieval": base.retrieval.model_copy(update={"k": 4, "lexical_path": store_dir / "lexical"}),
    }
)
if not (store_dir / "chroma").exists():
    print(ingest([str(folder / "corpus.jsonl")], settings).summary(), flush=True)
results = evaluate_bot(EvalBot(settings), load_questions(folder, 40), 4, lambda: None)
(HERE / f"{which}-{name}.json").write_text(json.dumps([r.__dict__ for r in results], indent=1, default=str))
print(which, name, len(results))
