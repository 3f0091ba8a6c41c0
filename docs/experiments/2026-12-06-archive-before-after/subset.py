"""The realtimeqa-2024 store for the before/after, smaller than the set (4,735 articles take about
40 minutes to ingest here): every search result of the 40 seeded questions (their gold articles
and the other articles the quiz's searches returned), then the corpus in file order up to 1,000.
The before/after compares two versions over one store, so any fixed store serves; this one keeps
each question's own candidates, dated across the years, in it.

Usage, from the repository root: .venv/bin/python docs/experiments/2026-12-06-archive-before-after/subset.py
(writes var/archive-before-after/realtimeqa-2024-subset/{corpus,questions}.jsonl)
"""

import json
import shutil
from pathlib import Path

from evaluation import load_questions

source = Path("../shared/eval/realtimeqa-2024")
out = Path("var/archive-before-after/realtimeqa-2024-subset")
out.mkdir(parents=True, exist_ok=True)
wanted = {d for q in load_questions(source, 40) for d in q["gold_doc_ids"] + q.get("search_doc_ids", [])}
rows = [json.loads(line) for line in (source / "corpus.jsonl").read_text().splitlines() if line.strip()]
kept = [r for r in rows if r["doc_id"] in wanted]
kept += [r for r in rows if r["doc_id"] not in wanted][: max(0, 1000 - len(kept))]
(out / "corpus.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept))
shutil.copy(source / "questions.jsonl", out / "questions.jsonl")
print(f"{len(kept)} articles ({len(wanted)} searched for the 40 questions)")
