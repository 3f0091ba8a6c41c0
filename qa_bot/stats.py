"""What the store holds, for ``qa-bot stats`` and the UI.

Usage::

    from qa_bot.stats import store_stats
    store_stats(settings)   # {"articles": 12, "chunks": 80, ...}
"""

from __future__ import annotations

from typing import Any

from qa_bot.lexical import describe_index
from qa_bot.schema import ChunkMeta
from qa_bot.settings import Settings
from qa_bot.sources import FETCHED, FetchLog, describe_source
from qa_bot.store import collection_names, collection_signature, make_client, signature_differences
from qa_bot.tuning import describe


def store_stats(settings: Settings, tune: bool = False) -> dict[str, Any]:
    """Counts and provenance, read without loading the embedder, and the model this machine runs
    (measured first with ``tune``, else as last measured)."""
    return {**_store_counts(settings), "model": describe(settings.generation, measure=tune)}


def _store_counts(settings: Settings) -> dict[str, Any]:
    client = make_client(settings)
    names = collection_names(client)
    where = settings.store.path if settings.store.mode == "embedded" else f"{settings.store.host}:{settings.store.port}"
    base: dict[str, Any] = {"store": f"{settings.store.mode} {where}", "collection": settings.store.collection}
    if settings.store.collection not in names:
        return {
            **base,
            "articles": 0,
            "chunks": 0,
            "sources": 0,
            "newest article": "-",
            "embedding model": settings.embedding.model,
        }
    collection = client.get_collection(settings.store.collection, embedding_function=None)
    metas = [ChunkMeta.from_metadata(m) for m in collection.get(include=["metadatas"])["metadatas"] or []]
    docs = {m.doc_id for m in metas}
    sources = {m.source for m in metas if m.source}
    dates = [m.published for m in metas if m.published]
    info = collection.metadata or {}
    wanted = collection_signature(settings, int(info.get("embedding_dim", 0)))
    same = not signature_differences(info, wanted)
    note = "" if same else "  (differs from config: run qa-bot ingest --reindex)"
    return {
        **base,
        "articles": len(docs),
        "chunks": len(metas),
        "BM25 index": describe_index(settings, str(collection.id)),
        "sources": len(sources),
        "newest article": max(dates) if dates else "-",
        "embedding model": f"{info.get('embedding_model')} ({info.get('embedding_vectors')} precision, "
        f"{info.get('embedding_dim')} dims){note}",
    }


def source_states(settings: Settings) -> list[dict[str, str]]:
    """Each source ingested or watched: its state, last success and last error (``describe_source``)."""
    client = make_client(settings)
    if f"{settings.store.collection}-{FETCHED}" not in collection_names(client):
        return []
    return [describe_source(r) for r in FetchLog(client, settings.store.collection).sources()]
