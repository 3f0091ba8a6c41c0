"""Retrieval latency at 10k and 100k chunks, and how it grows between them.

Usage::

    .venv/bin/python -m benchmarks.query_latency [--sizes 10000 100000] [--queries 200]

The corpus is built from the real chunks of the three eval sets (ingest them first with
benchmarks.retrieval_recall): each copy of a chunk gets a marker appended to its text and
a small random change to its vector (renormalised), and a doc id of its own. Chunks are
written straight into a collection with qa-bot's signature, so no re-embedding is needed.
Queries are real eval questions; each timed search is the whole ``Retriever.search``:
query embedding, Chroma dense search, BM25, fusion and collapse.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from qa_bot.archive import open_store
from qa_bot.embeddings import get_embedder
from qa_bot.retrieval import Retriever
from qa_bot.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent

SETS = ["ares-news", "clapnq", "squad2"]
EVAL = ROOT.parent / "shared" / "eval"


def real_chunks(settings_tag: str) -> tuple[list[str], list[str], list[dict], np.ndarray]:
    base = load_settings(ROOT / "config.yaml")
    ids, texts, metas, vectors = [], [], [], []
    for name in SETS:
        path = ROOT / "var" / "bench" / f"{name}-{settings_tag}"
        s = base.model_copy(update={"store": base.store.model_copy(update={"path": path})})
        got = open_store(s).collection.get(include=["documents", "metadatas", "embeddings"])
        ids += got["ids"]
        texts += got["documents"]
        metas += got["metadatas"]
        vectors.append(np.asarray(got["embeddings"], dtype=np.float32))
    return ids, texts, metas, np.concatenate(vectors)


def build(store, size: int, chunks: tuple, rng: np.random.Generator) -> None:
    ids, texts, metas, vectors = chunks
    n = len(ids)
    for start in range(0, size, 2000):
        rows = range(start, min(size, start + 2000))
        batch_ids, batch_texts, batch_metas, batch_vecs = [], [], [], []
        for i in rows:
            src, copy = i % n, i // n
            vec = vectors[src] + (rng.normal(0, 0.01, vectors.shape[1]) if copy else 0)
            batch_vecs.append((vec / np.linalg.norm(vec)).tolist())
            batch_ids.append(f"{ids[src]}~{copy}")
            batch_texts.append(texts[src] + (f" (copy {copy})" if copy else ""))
            batch_metas.append({**metas[src], "doc_id": f"{metas[src]['doc_id']}~{copy}"})
        store.upsert(batch_ids, batch_vecs, batch_texts, batch_metas)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    base = load_settings(ROOT / "config.yaml")
    tag = f"{base.chunking.max_tokens}-{base.chunking.overlap_tokens}-{int(base.chunking.title_in_embedding)}"
    chunks = real_chunks(tag)
    questions = [
        json.loads(line)["question"]
        for name in SETS
        for line in (EVAL / name / "questions.jsonl").read_text().splitlines()
    ][: args.queries]
    embedder = get_embedder(base.embedding)
    rng = np.random.default_rng(0)
    results = {}
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            s = base.model_copy(update={"store": base.store.model_copy(update={"path": Path(tmp)})})
            store = open_store(s, embedder.dimension)
            began = time.perf_counter()
            build(store, size, chunks, rng)
            built = time.perf_counter() - began
            retriever = Retriever(s.retrieval, store, embedder)
            began = time.perf_counter()
            retriever.lexical()
            bm25 = time.perf_counter() - began
            for q in questions[:5]:
                retriever.search(q)  # warm-up
            times = []
            for q in questions:
                began = time.perf_counter()
                retriever.search(q)
                times.append(1000 * (time.perf_counter() - began))
            times.sort()
            results[size] = (statistics.median(times), times[int(0.99 * (len(times) - 1))])
            print(
                f"{store.count():>7} chunks: retrieval p50 {results[size][0]:6.1f} ms  p99 {results[size][1]:6.1f} ms"
                f"  (written in {built:.0f} s, BM25 index built in {bm25:.1f} s, {len(times)} queries)",
                flush=True,
            )
    if len(results) == 2:
        (a, (pa, _)), (b, (pb, _)) = sorted(results.items())
        print(f"p50 grows {pb / pa:.2f}x for {b / a:.0f}x the chunks")


if __name__ == "__main__":
    main()
