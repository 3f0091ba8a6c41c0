"""Retrieval recall@k and MRR@10 on the eval sets, for tuning chunking and fusion.

Usage::

    .venv/bin/python -m benchmarks.retrieval_recall [--sets ares-news squad2 clapnq] [--max-tokens 200]
        [--grid]      # also try fusion weights

Each corpus is ingested once per chunking setting into var/bench/<set>-<setting> (kept, so
reruns only query). Prints recall@1/4/10, MRR@10 and retrieval p50 per set.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from ingest import ingest
from qa_bot.archive import open_store
from qa_bot.embeddings import get_embedder
from qa_bot.retrieval import Retriever
from qa_bot.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent

EVAL = ROOT.parent / "shared" / "eval"


def evaluate(retriever: Retriever, questions: list[dict], k: int = 10) -> dict[str, float]:
    hits = {1: 0, 4: 0, 10: 0}
    rr, times = [], []
    answerable = [q for q in questions if q["gold_doc_ids"]]
    for q in answerable:
        began = time.perf_counter()
        passages = retriever.search(q["question"], k=k)
        times.append(time.perf_counter() - began)
        docs = [p.doc_id for p in passages]
        gold = set(q["gold_doc_ids"])
        first = next((i for i, d in enumerate(docs) if d in gold), None)
        for cut in hits:
            hits[cut] += first is not None and first < cut
        rr.append(0 if first is None else 1 / (first + 1))
    n = len(answerable)
    return {
        "n": n,
        **{f"r@{c}": hits[c] / n for c in hits},
        "mrr@10": sum(rr) / n,
        "p50_ms": 1000 * statistics.median(times),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sets", nargs="+", default=["ares-news", "squad2", "clapnq"])
    parser.add_argument("--max-tokens", type=int, default=None)
    parser.add_argument("--overlap", type=int, default=None)
    parser.add_argument("--no-title", action="store_true")
    parser.add_argument("--grid", action="store_true")
    args = parser.parse_args()
    base = load_settings(ROOT / "config.yaml")
    chunking = base.chunking.model_copy(
        update={
            k: v
            for k, v in {
                "max_tokens": args.max_tokens,
                "overlap_tokens": args.overlap,
                "title_in_embedding": False if args.no_title else None,
            }.items()
            if v is not None
        }
    )
    tag = f"{chunking.max_tokens}-{chunking.overlap_tokens}-{int(chunking.title_in_embedding)}"
    for name in args.sets:
        store_path = ROOT / "var" / "bench" / f"{name}-{tag}"
        # Gold labels name document ids, so near-copies stay documents of their own (as in qa-bot eval).
        settings = base.model_copy(
            update={
                "chunking": chunking,
                "store": base.store.model_copy(update={"path": store_path}),
                "ingest": base.ingest.model_copy(update={"group_duplicates": False}),
            }
        )
        report = ingest([str(EVAL / name / "corpus.jsonl")], settings)
        questions = [json.loads(line) for line in (EVAL / name / "questions.jsonl").read_text().splitlines()]
        store = open_store(settings)
        grid = [(1.0, 1.0)] + ([(1.0, 0.0), (0.0, 1.0), (0.5, 1.0), (1.0, 0.5), (0.7, 1.0)] if args.grid else [])
        for dense, bm25 in grid:
            rs = settings.retrieval.model_copy(update={"dense_weight": dense, "bm25_weight": bm25})
            retriever = Retriever(rs, store, get_embedder(settings.embedding))
            m = evaluate(retriever, questions)
            print(
                f"{name:10} chunk={tag:9} dense={dense:.1f} bm25={bm25:.1f} n={m['n']:3} "
                f"r@1={m['r@1']:.3f} r@4={m['r@4']:.3f} r@10={m['r@10']:.3f} mrr@10={m['mrr@10']:.3f} "
                f"p50={m['p50_ms']:.1f}ms  (chunks {store.count()}, ingest {report.seconds:.0f}s)",
                flush=True,
            )


if __name__ == "__main__":
    main()
