"""Ingestion throughput against the bare encoder and the LangChain tutorial pipeline.

Usage::

    .venv/bin/python -m benchmarks.ingest_speed [--corpus ../shared/eval/ares-news/corpus.jsonl] [--no-langchain]

Prints, from one run on a fresh temporary store:
  * qa-bot ingest: chunks/s (load + chunk + embed + write, everything a user waits for);
  * bare ``SentenceTransformer.encode`` (fp32, batch 32) on the very same chunk texts: chunks/s;
  * their ratio;
  * a second, unchanged ingest: seconds, and its share of the first;
  * the LangChain tutorial pipeline (RecursiveCharacterTextSplitter(1000, 200), the same
    MiniLM through sentence-transformers, ``Chroma.from_documents``): chunks/s.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from ingest import ingest
from qa_bot.archive import open_store
from qa_bot.embeddings import get_embedder, resolve_model_path
from qa_bot.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent

DEFAULT_CORPUS = ROOT.parent / "shared" / "eval" / "ares-news" / "corpus.jsonl"


def bare_encoder(texts: list[str], model_dir: Path, batch_size: int) -> float:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir), device="cpu")
    model.max_seq_length = 256
    model.encode(texts[:32], batch_size=batch_size)  # warm-up
    began = time.perf_counter()
    model.encode(texts, batch_size=batch_size)
    return len(texts) / (time.perf_counter() - began)


def langchain_pipeline(corpus: Path, model_dir: Path, store: Path) -> tuple[int, float]:
    from langchain_chroma import Chroma
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter
    from sentence_transformers import SentenceTransformer

    class MiniLM(Embeddings):
        def __init__(self) -> None:
            self.model = SentenceTransformer(str(model_dir), device="cpu")

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return self.model.encode(texts, batch_size=32).tolist()

        def embed_query(self, text: str) -> list[float]:
            return self.embed_documents([text])[0]

    embeddings = MiniLM()
    began = time.perf_counter()
    rows = [json.loads(line) for line in corpus.read_text().splitlines() if line.strip()]
    docs = [Document(page_content=r["text"], metadata={"doc_id": r["doc_id"]}) for r in rows]
    chunks = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200).split_documents(docs)
    Chroma.from_documents(chunks, embeddings, persist_directory=str(store), collection_name="langchain")
    return len(chunks), time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--config", type=Path, default=ROOT / "config.yaml")
    parser.add_argument("--no-langchain", action="store_true")
    args = parser.parse_args()
    base = load_settings(args.config)
    with tempfile.TemporaryDirectory() as tmp:
        settings = base.model_copy(update={"store": base.store.model_copy(update={"path": Path(tmp) / "store"})})
        get_embedder(settings.embedding).embed(["warm-up"])  # model load is not ingest work
        first = ingest([str(args.corpus)], settings)
        rate = first.chunks_written / first.seconds
        second = ingest([str(args.corpus)], settings)
        texts = open_store(settings).collection.get(include=["documents"])["documents"]
        bare = bare_encoder(texts, resolve_model_path(settings.embedding.model), 32)
        print(
            f"corpus: {args.corpus.name}, {len(first.added)} articles, {first.chunks_written} chunks "
            f"(max_tokens={settings.chunking.max_tokens}, backend={settings.embedding.backend})"
        )
        print(f"qa-bot ingest:            {first.seconds:7.1f} s  {rate:7.1f} chunks/s")
        print(f"bare ST encode (fp32):    {len(texts) / bare:7.1f} s  {bare:7.1f} chunks/s")
        print(f"ratio qa-bot / bare:      {rate / bare:7.2f}")
        print(
            f"unchanged re-ingest:      {second.seconds:7.2f} s  = {100 * second.seconds / first.seconds:.2f}% "
            f"of the first ({second.chunks_written} chunks written)"
        )
        if not args.no_langchain:
            n, seconds = langchain_pipeline(args.corpus, resolve_model_path(settings.embedding.model), Path(tmp) / "lc")
            print(f"LangChain tutorial:       {seconds:7.1f} s  {n / seconds:7.1f} chunks/s ({n} chunks of 1000 chars)")
            print(f"qa-bot / LangChain:       {rate / (n / seconds):7.2f} (chunks/s)")


if __name__ == "__main__":
    main()
