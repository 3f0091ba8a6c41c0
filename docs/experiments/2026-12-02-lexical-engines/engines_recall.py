"""recall@4 of the three BM25 engines on every eval set, fused with dense (as shipped) and alone.

Usage (after benchmarks.retrieval_recall has ingested the sets into var/bench)::

    .venv/bin/python docs/experiments/2026-12-02-lexical-engines/engines_recall.py

Each engine indexes the same analysed text (qa_bot.lexical.analyse: bm25s's tokens, English
stopwords, Snowball stems) and is plugged into the shipped Retriever in place of its index:
tantivy is qa_bot.lexical itself; FTS5 is SQLite's ``bm25()`` over the same terms; bm25s is the
legacy index (legacy_retrieval.py), which scored with its ``lucene`` variant (k1 1.5, b 0.75).
"""

from __future__ import annotations

import importlib.util
import json
import sqlite3
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from benchmarks.retrieval_recall import EVAL, evaluate  # noqa: E402
from qa_bot.embeddings import get_embedder  # noqa: E402
from qa_bot.lexical import analyse, index_text  # noqa: E402
from qa_bot.results import Filters  # noqa: E402
from qa_bot.retrieval import Retriever  # noqa: E402
from qa_bot.settings import load_settings  # noqa: E402
from qa_bot.store import open_store  # noqa: E402

HERE = Path(__file__).resolve().parent


class Fts5:
    def __init__(self, rows: list[tuple]) -> None:
        self.db = sqlite3.connect(":memory:")
        self.db.execute("create virtual table f using fts5(body, tokenize='unicode61')")
        terms = analyse([index_text(t, m) for _, t, m in rows])
        self.ids = [cid for cid, _, _ in rows]
        self.db.executemany("insert into f(rowid, body) values (?, ?)", ((i, " ".join(t)) for i, t in enumerate(terms)))

    def search(self, query: str, n: int, filters: Filters) -> list[tuple[str, float]]:
        terms = analyse([query])[0]
        if not terms:
            return []
        match = " OR ".join(f'"{t}"' for t in terms)
        got = self.db.execute("select rowid, bm25(f) from f where f match ? order by rank limit ?", (match, n))
        return [(self.ids[i], -score) for i, score in got]


class Bm25s:
    def __init__(self, store) -> None:
        spec = importlib.util.spec_from_file_location("legacy_retrieval", HERE / "legacy_retrieval.py")
        legacy = importlib.util.module_from_spec(spec)
        sys.modules["legacy_retrieval"] = legacy
        spec.loader.exec_module(legacy)
        self.index = legacy.LexicalIndex(store)

    def search(self, query: str, n: int, filters: Filters) -> list[tuple[str, float]]:
        return [(self.index.ids[i], s) for i, s in self.index.search(query, n, filters)]


def main() -> None:
    base = load_settings(ROOT / "config.yaml")
    embedder = get_embedder(base.embedding)
    for name in ["ares-news", "squad2", "clapnq"]:
        path = ROOT / "var" / "bench" / f"{name}-128-32-1"
        settings = base.model_copy(update={"store": base.store.model_copy(update={"path": path})})
        store = open_store(settings, embedder.dimension)
        questions = [json.loads(line) for line in (EVAL / name / "questions.jsonl").read_text().splitlines()]
        rows = store.rows(["documents", "metadatas"])
        engines = {"tantivy": None, "fts5": Fts5(rows), "bm25s": Bm25s(store)}
        for engine, shim in engines.items():
            for dense in (1.0, 0.0):
                rs = settings.retrieval.model_copy(update={"dense_weight": dense})
                m = evaluate(Retriever(rs, store, embedder, lexical=shim), questions)
                mode = "fused" if dense else "bm25 alone"
                print(f"{name:10} {engine:8} {mode:10} r@4={m['r@4']:.3f} mrr@10={m['mrr@10']:.3f}", flush=True)


if __name__ == "__main__":
    main()
