"""The archive: everything qa-bot stores about one collection, behind one object.

Usage::

    from qa_bot.archive import Archive
    archive = Archive(settings)                  # nothing is opened until it is used
    archive.write(ids, vectors, texts, metas)    # chunks, their journal, the catalogue and BM25
    archive.delete_articles(["a.txt"])           # and everything recorded about them, in one call
    archive.articles(doc_ids=["a.txt"])          # {doc_id: DocInfo}, by id through the catalogue
    archive.stats()                              # counts and provenance, without the embedder
    archive.drop()                               # --reindex: every collection of the archive goes

What it owns, and who does the work (each part has one reason to change):

* the Chroma client and the chunks' collection, its write and delete journals and its article
  catalogue: :class:`qa_bot.archive.store.Store`;
* the BM25 index on this machine and its catching up: :class:`qa_bot.archive.lexical.LexicalSync`;
* keyed records beside the chunks (:class:`qa_bot.archive.records.Records`): the stories
  (``<collection>-stories``, :class:`qa_bot.archive.stories.StoryRecords`) and the fetch log
  (``<collection>-fetched``, whose record type the ingest owns: ``ingest.fetchlog``).

Nothing else in the product imports ``chromadb`` or ``tantivy`` (tests/test_layout.py checks).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from qa_bot.archive.errors import MB, StoreFullError, disk_full_message, disk_places, free_space, full_disk
from qa_bot.archive.lexical import LexicalSync, describe_index
from qa_bot.archive.records import Records, fetch_id
from qa_bot.archive.store import (
    CATALOGUE,
    JOURNALS,
    DocInfo,
    Store,
    collection_names,
    collection_signature,
    make_client,
    signature_differences,
)
from qa_bot.archive.stories import STORIES, Copy, StoryRecords
from qa_bot.embeddings import vector_kind
from qa_bot.schema import ArticleMeta
from qa_bot.settings import Settings

# Keyed records kept beside the chunks (the fetch log's kind is named by the ingest, which owns it).
FETCHED = "fetched"
RECORD_KINDS = (FETCHED, STORIES)


def collections_of(collection: str) -> list[str]:
    """The chunks' collection and every collection kept beside it: what ``--reindex`` drops together."""
    return [collection, *(f"{collection}-{kind}" for kind in (*JOURNALS, CATALOGUE, *RECORD_KINDS))]


def open_store(settings: Settings, dimension: int | None = None) -> Store:
    """The archive's chunk store, opened and checked against the settings (``Archive(...).store``).

    ``dimension`` defaults to the embedder's, which loads the embedder; pass it when known.
    """
    return Archive(settings, dimension).store


class Archive:
    """The chunks, their journals and catalogue, the BM25 index, the stories and the fetch log of
    the configured collection. Parts open when first used: reading the fetch log or the stats
    loads neither the embedder nor the vectors. ``dimension``: the embedder's (or a function that
    gives it, called when the chunks are first opened); by default the collection's record of it
    when it was built by the configured model, else the configured embedder is asked."""

    def __init__(self, settings: Settings, dimension: int | Callable[[], int] | None = None) -> None:
        self.settings = settings
        self.name = settings.store.collection
        self._dimension = dimension
        self._client: Any | None = None
        self._store: Store | None = None
        self._lexical: LexicalSync | None = None
        self._open_lock = threading.Lock()
        self._records: dict[str, Records] = {}
        self._stories_seen = False
        self._stories_asked = 0.0  # when an archive without story records was last asked

    # ------------------------------------------------------------ parts, opened on first use

    @property
    def client(self) -> Any:
        """The Chroma client: the store's own once it is open (a reopened store has a new one)."""
        if self._store is not None:
            return self._store.client
        if self._client is None:
            self._client = make_client(self.settings)
        return self._client

    @property
    def store(self) -> Store:
        """The chunks' collection, checked against the settings (and created if missing)."""
        with self._open_lock:
            if self._store is None:
                dimension = self._dimension() if callable(self._dimension) else self._dimension
                if dimension is None:
                    dimension = self.recorded_dimension()
                if dimension is None:
                    from qa_bot.embeddings import get_embedder

                    dimension = get_embedder(self.settings.embedding).dimension
                self._store = Store(self.settings, self.client, collection_signature(self.settings, dimension))
            return self._store

    @property
    def lexical(self) -> LexicalSync:
        """The BM25 index of the store on this machine."""
        store = self.store
        with self._open_lock:
            if self._lexical is None:
                self._lexical = LexicalSync(store, self.settings.retrieval)
            return self._lexical

    def has(self, kind: str = "") -> bool:
        """Whether the chunks' collection (``kind`` empty) or the records of ``kind`` exist yet."""
        return (f"{self.name}-{kind}" if kind else self.name) in collection_names(self.client)

    def records(self, kind: str) -> Records:
        """The ``<collection>-<kind>`` records (created on first write)."""
        if kind not in RECORD_KINDS:
            raise ValueError(f"Unknown record kind {kind!r}. Supported kinds: {list(RECORD_KINDS)}")
        client = self.client
        kept = self._records.get(kind)
        if kept is None or kept.client is not client:  # kept per client: a reopened store has a new one
            kept = self._records[kind] = Records(client, f"{self.name}-{kind}")
        return kept

    @property
    def stories(self) -> StoryRecords:
        return StoryRecords(self.records(STORIES))

    # ------------------------------------------------------------ reading

    def articles(self, doc_ids: list[str] | None = None, origins: list[str] | None = None) -> dict[str, DocInfo]:
        """Indexed articles: these ids (by the catalogue, ~1 ms), these origins, or all (a scan)."""
        return self.store.documents(doc_ids=doc_ids, origins=origins)

    def chunks(self, ids: list[str]) -> dict[str, tuple[str, dict[str, Any]]]:
        """{chunk id: (text, metadata)} of those of ``ids`` that are stored."""
        return self.store.get(ids)

    def present(self, doc_ids: list[str]) -> set[str]:
        """Which articles the archive holds, indexed or as a further source of a story: by id."""
        found = set(self.articles(doc_ids=doc_ids))
        rest = [d for d in doc_ids if d not in found]
        return found | (self.stories.copies_present(rest) if rest else set())

    def also_reported_by(self, doc_ids: list[str]) -> dict[str, list[Copy]]:
        """Each story's further sources (wire copies grouped at ingest): one get by id."""
        if not self._stories_seen:
            # Until an ingest has made the records: asked at most once per catch-up interval, so an
            # archive without them (grouping off, or not re-ingested since) costs no question a listing.
            if time.monotonic() - self._stories_asked < self.settings.retrieval.refresh_seconds:
                return {}
            self._stories_asked = time.monotonic()
            self._stories_seen = self.has(STORIES)
            if not self._stories_seen:
                return {}
        return self.stories.copies_of(doc_ids)

    def recorded_dimension(self) -> int | None:
        """The vector size the collection records, when it records the configured embedding model
        and precision (the model fixes its size): opening the archive then loads no model."""
        if not self.has():
            return None
        found = self.client.get_collection(self.name, embedding_function=None).metadata or {}
        e = self.settings.embedding
        if found.get("embedding_model") != e.model or found.get("embedding_vectors") != vector_kind(e.backend):
            return None
        return int(found["embedding_dim"]) if found.get("embedding_dim") else None

    def recorded_origins(self) -> list[str]:
        """The sources the chunks were ingested through, read without checking the settings."""
        if not self.has():
            return []
        collection = self.client.get_collection(self.name, embedding_function=None)
        got = collection.get(include=["metadatas"])
        return sorted({o for m in got["metadatas"] or [] if (o := ArticleMeta.from_metadata(m).origin)})

    def stats(self) -> dict[str, Any]:
        """Counts and provenance for ``qa-bot stats`` and the page, read without the embedder."""
        s = self.settings.store
        where = s.path if s.mode == "embedded" else f"{s.host}:{s.port}"
        base: dict[str, Any] = {"store": f"{s.mode} {where}", "collection": self.name}
        if not self.has():
            return {
                **base,
                "articles": 0,
                "chunks": 0,
                "sources": 0,
                "newest article": "-",
                "embedding model": self.settings.embedding.model,
            }
        collection = self.client.get_collection(self.name, embedding_function=None)
        metas = [ArticleMeta.from_metadata(m) for m in collection.get(include=["metadatas"])["metadatas"] or []]
        dates = [m.published for m in metas if m.published]
        info = collection.metadata or {}
        wanted = collection_signature(self.settings, int(info.get("embedding_dim", 0)))
        note = "" if not signature_differences(info, wanted) else "  (differs from config: run qa-bot ingest --reindex)"
        return {
            **base,
            "articles": len({m.doc_id for m in metas}),
            "chunks": len(metas),
            "BM25 index": describe_index(self.settings, str(collection.id)),
            "sources": len({m.source for m in metas if m.source}),
            "newest article": max(dates) if dates else "-",
            "embedding model": f"{info.get('embedding_model')} ({info.get('embedding_vectors')} precision, "
            f"{info.get('embedding_dim')} dims){note}",
        }

    # ------------------------------------------------------------ writing

    def write(
        self, ids: list[str], vectors: list[list[float]], texts: list[str], metas: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Write chunks (journal, catalogue, collection) and tell the BM25 index; the metadata as written.

        Raises :class:`StoreFullError` before writing when a disk it writes to is below
        ``store.min_free_mb``, and in place of the store's own error when a disk filled during the write.
        """
        self.ensure_room()
        try:
            stamped = self.store.upsert(ids, vectors, texts, metas)
            self.lexical.written(ids, texts, stamped)
        except Exception as exc:
            # Chroma says "Error in compaction: ..." for a full disk: the words go with the error, so
            # every caller (the command line, the page's ingest, an API job) shows the same line.
            said = full_disk(exc, self.settings)
            if said is None:
                raise
            raise StoreFullError(said) from exc
        return stamped

    def ensure_room(self) -> None:
        """Refuse a write below ``store.min_free_mb`` on the store's or the BM25 index's disk.

        Checked in :meth:`write` rather than only in the ingest, so every writer of chunks is covered
        (the ingest also asks before it embeds a batch, so a full disk costs no embedding); a write
        refused whole leaves the store as it was, and a re-run redoes only the articles not finished.
        One statvfs a disk, microseconds against a write's seconds.
        Embedded only: a Chroma server's disk is not this machine's to measure.
        """
        s = self.settings.store
        if s.mode != "embedded" or not s.min_free_mb:
            return
        for what, path, key in disk_places(self.settings):
            free, total = free_space(path)
            if free < s.min_free_mb * MB:
                raise StoreFullError(disk_full_message(what, path, key, free, total, s.min_free_mb))

    def delete_chunks(self, ids: list[str]) -> None:
        """Delete chunks (journalled first, so an interrupted delete is still seen) and tell BM25."""
        if ids:
            self.store.delete(ids)
            self.lexical.deleted(ids)

    def delete_articles(self, doc_ids: list[str]) -> list[str]:
        """Delete articles and everything recorded about them: their chunks (with the journal, the
        catalogue and BM25), their stories and copies, and their pages' fetch records. Returns the
        ids that were held, indexed or as copies. Crash-safe as the parts are: the chunks go first,
        and a record left behind by a crash only names what is gone, which every reader tolerates."""
        if not doc_ids:
            return []
        indexed = self.articles(doc_ids=doc_ids)
        copies = self.stories.copies_present([d for d in doc_ids if d not in indexed])
        self.delete_chunks(sorted(cid for info in indexed.values() for cid in info.chunks))
        self.stories.forget(sorted(doc_ids))
        pages = {p for info in indexed.values() if (p := info.article.source_path).startswith(("http://", "https://"))}
        if pages and self.has(FETCHED):
            self.records(FETCHED).delete([fetch_id("page", url) for url in pages])
        return sorted(set(indexed) | copies)

    def drop(self) -> None:
        """Delete the collection and everything kept beside it (``--reindex``); the next use recreates it."""
        with self._open_lock:
            names = collection_names(self.client)
            for name in collections_of(self.name):
                if name in names:
                    self.client.delete_collection(name)
            if self._lexical is not None:
                self._lexical.stop()
            self._store = self._lexical = None
            self._records.clear()
            self._stories_seen = False

    def close(self) -> None:
        """Stop the BM25 index's background catching up, if it was started."""
        if self._lexical is not None:
            self._lexical.stop()
