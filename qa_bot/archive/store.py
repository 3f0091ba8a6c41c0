"""The archive's chunks: the Chroma collection that holds them, embedded or behind a Chroma server.

Usage::

    from qa_bot.archive import open_store
    store = open_store(settings)           # checks the collection matches the settings
    store.count(); store.documents()       # chunk count; {doc_id: DocInfo}
    store.documents(doc_ids=["a.txt"])     # one article: a lookup by Chroma's metadata index
    store.changed_since(stamp); store.deleted_since(stamp)   # what the BM25 index catches up on

Every chunk's metadata carries its article's metadata, so the collection alone is the
record of what was ingested; the BM25 index (qa_bot.archive.lexical) is derived from it, by the
journals of writes and deletions kept beside it (``<collection>-written``,
``<collection>-deleted``). The collection's own
metadata records the embedding model, its dimension and the chunking settings; opening it
with other ones raises :class:`StoreMismatchError`, which says how to rebuild.

Embeddings are always computed by us and passed in; Chroma's default embedding function
(which would download a model) is never used.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from qa_bot.archive.errors import StoreError, StoreMismatchError
from qa_bot.archive.locks import file_lock
from qa_bot.embeddings import vector_kind
from qa_bot.schema import STAMP, ArticleMeta, ChunkMeta
from qa_bot.settings import Settings
from qa_bot.text import SPLITTER_VERSION

SCHEMA_VERSION = 1
log = logging.getLogger(__name__)

# Metadata key of a deletion record, in the collection "<collection>-deleted".
DELETED_AT = "deleted_at"
# The journals beside a collection: what was deleted, and what was written, each with its time.
# Why journals and not a filter on the chunks' own stamps: every Chroma ``get`` that is not by id
# counts the collection first (about 100 ms at a million chunks, measured), while a journal only
# holds the last ``store.tombstone_days`` of changes, and "what changed since" must be cheap: every
# process asks it every ``retrieval.refresh_seconds``, and every write asks it first.
JOURNALS = ("deleted", "written")
# The catalogue beside a collection, "<collection>-articles": one record per article, the ids of
# its chunks, so that an ingest finds an article's chunks by ids (about 1 ms) and not by a
# filtered get, which costs about 120 ms at a million chunks for the same reason.
CATALOGUE = "articles"
# How often a writer drops journal records older than store.tombstone_days.
_PRUNE_EVERY_MS = 600_000
# Catalogue records read or written at a time while it is built from the chunks (once).
_CATALOGUE_PAGE = 5000


def doc_id_of(chunk_id: str) -> str:
    """The article a chunk id belongs to (ids are ``doc_id::hash::n``; a doc_id may hold "::")."""
    return chunk_id.rsplit("::", 2)[0]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class DocInfo:
    """What the store knows of one article."""

    article: ArticleMeta  # as its chunks record it (the version stored, which may not be current)
    # chunk id -> the n_chunks recorded with it (its version's chunk count)
    chunks: dict[str, int] = field(default_factory=dict)

    def is_current(self, content_hash: str) -> bool:
        """True when the store holds exactly the complete chunk set of this version.

        An interrupted write leaves a partial set, or old and new chunks side by side;
        both read as not current, so the next run writes the article again.
        """
        prefix = chunk_prefix(self.article.doc_id, content_hash)
        mine = [n for cid, n in self.chunks.items() if cid.startswith(prefix)]
        return bool(mine) and len(mine) == len(self.chunks) == mine[0]


def chunk_prefix(doc_id: str, content_hash: str) -> str:
    return f"{doc_id}::{content_hash[:16]}::"


def chunk_id(doc_id: str, content_hash: str, index: int) -> str:
    """Content-addressed: a changed article gets new ids, so new chunks never overwrite old."""
    return f"{chunk_prefix(doc_id, content_hash)}{index:05d}"


# Signature keys added after stores existed, with the value those stores were built with.
_RECORDED_SINCE = {"splitter": 1}


def collection_signature(settings: Settings, dimension: int) -> dict[str, Any]:
    c = settings.chunking
    return {
        "schema": SCHEMA_VERSION,
        "embedding_model": settings.embedding.model,
        "embedding_vectors": vector_kind(settings.embedding.backend),
        "embedding_dim": dimension,
        "chunking": json.dumps(
            {"max_tokens": c.max_tokens, "overlap_tokens": c.overlap_tokens, "title": c.title_in_embedding},
            sort_keys=True,
        ),
        "splitter": SPLITTER_VERSION,
    }


def collection_names(client: Any) -> set[str]:
    """The names of the collections a Chroma client sees (older clients list objects, newer names)."""
    return {c if isinstance(c, str) else c.name for c in client.list_collections()}


def signature_differences(found: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """How a collection's recorded signature differs from the settings', one phrase per key."""
    found = {**_RECORDED_SINCE, **found}
    return [
        f"{key} is {found.get(key)!r} in the store but {want!r} in the settings"
        for key, want in wanted.items()
        if found.get(key) != want
    ]


def make_client(settings: Settings) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    s = settings.store
    try:
        if s.mode == "server":
            client = chromadb.HttpClient(host=s.host, port=s.port, settings=chroma_settings)
            client.heartbeat()
            return client
        s.path.mkdir(parents=True, exist_ok=True)
        # Chroma hands every client of a path in this process one shared system, loaded by the
        # first: writes of this process are seen by all of them, and its age is that first load.
        SYSTEMS.loaded_at.setdefault(str(s.path), now_ms())
        return chromadb.PersistentClient(path=str(s.path), settings=chroma_settings)
    except Exception as exc:
        where = f"Chroma server at {s.host}:{s.port}" if s.mode == "server" else f"store at {s.path}"
        if "readonly database" in str(exc) or "read-only file system" in str(exc).lower():
            # Chroma's SQLite writes even to read (its migrations and log): there is no read-only open.
            raise StoreError(
                f"cannot open the {where}: it is read-only here, and Chroma must write to its store even "
                "to read it; give this user write access, or copy the store and point store.path at the copy"
            ) from exc
        raise StoreError(f"cannot open the {where}: {exc}") from exc


# Ids fetched in one get by id.
_GET_PAGE = 5000

# How far back a check for other processes' writes looks past the previous check (ms).
_CHECK_LOOKBACK = 10_000


@dataclass
class EmbeddedSystems:
    """This process's embedded Chroma systems, by store path: when each was loaded, and the stamps of
    this process's own writes (whichever Store object made them: they share the system)."""

    loaded_at: dict[str, int] = field(default_factory=dict)
    own: dict[str, set[int]] = field(default_factory=dict)


# One per process, as Chroma's own system cache is.
SYSTEMS = EmbeddedSystems()


class Store:
    """The chunks' collection, its journals of writes and deletions, and its article catalogue
    (the archive's part that holds what is searched; :class:`qa_bot.archive.Archive` owns it).

    Embedded Chroma keeps each collection's vector index in the memory of the process that opened
    it and never sees vectors that other processes write after that. Reading through such a copy
    only misses the new articles' vectors; *writing* through it is what harms: deleting a vector
    the copy lacks left the store unreadable for every process after ("Error finding id";
    reproduced in tests/test_lexical.py). So in embedded mode the store notes its own writes, and
    before writing (and, for a long-lived reader, every so often: :meth:`is_stale`) checks for
    anyone else's since it opened; if there are, it opens Chroma afresh (:meth:`reopen`) first.

    Loading the vectors while another process writes them crashed the loading process (SIGSEGV,
    reproduced); reading through a loaded copy did not. So loading and writing take turns through
    a lock file beside the store (:meth:`exclusive`), held for each write and each load, never for
    a search.
    """

    def __init__(self, settings: Settings, client: Any, signature: dict[str, Any]) -> None:
        self.settings = settings
        self.client = client
        self.signature = signature
        self.name = settings.store.collection
        self._tombstones: Any | None = None
        self._written: Any | None = None
        self._catalogue: Any | None = None
        self._pruned_at = 0
        self._write_lock = threading.Lock()
        with self.exclusive():
            self.collection = self._open()
            self._load(self.collection)
        key = str(settings.store.path)
        self._opened = SYSTEMS.loaded_at.get(key, now_ms())
        self._checked = now_ms()
        self._own = SYSTEMS.own.setdefault(key, set())  # stamps of this process's writes

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Embedded mode: no other process writes or loads this store's vectors meanwhile."""
        if self.settings.store.mode != "embedded":
            yield
            return
        with file_lock(self.settings.store.path / "qa-bot.lock"):
            yield

    def _load(self, collection: Any) -> None:
        """Embedded mode: load the vectors now (under :meth:`exclusive`), not in the first search."""
        if self.settings.store.mode == "embedded" and collection.get(limit=1, include=[])["ids"]:
            dim = int(self.signature.get("embedding_dim", 0)) or 1
            collection.query(query_embeddings=[[1.0] * dim], n_results=1, include=[])

    def _open(self) -> Any:
        existing = self._existing()
        if existing is None:
            return self.client.create_collection(
                name=self.name,
                metadata={**self.signature, "hnsw:space": "cosine"},
                embedding_function=None,
                get_or_create=True,
            )
        self._check(existing.metadata or {})
        return existing

    def _names(self) -> set[str]:
        return collection_names(self.client)

    def _existing(self) -> Any | None:
        if self.name not in self._names():
            return None
        return self.client.get_collection(self.name, embedding_function=None)

    def _check(self, found: dict[str, Any]) -> None:
        diffs = signature_differences(found, self.signature)
        if diffs:
            raise StoreMismatchError(
                f"collection '{self.name}' was built with other settings: {'; '.join(diffs)}. "
                "Rebuild it with: qa-bot ingest --reindex"
            )

    def count(self) -> int:
        return self.collection.count()

    def is_empty(self) -> bool:
        """Cheaper than ``count() == 0`` on a big store: it reads one id."""
        return not self.collection.get(limit=1, include=[])["ids"]

    def holds_by(self, day_end_s: int, day_end_ms: int) -> bool:
        """Whether any chunk may have existed by a moment: one published before ``day_end_s`` (s), or
        one written before ``day_end_ms`` (ms; an undated article counts as published when it was
        ingested). Two gets of one id through Chroma's metadata index, whatever the archive's size;
        a "yes" may be loose (a dated article ingested early), a "no" is sure."""
        for where in ({"published_ts": {"$lt": day_end_s}}, {STAMP: {"$lt": day_end_ms}}):
            if self.collection.get(where=where, limit=1, include=[])["ids"]:
                return True
        return False

    def identity(self) -> str:
        """Where this collection lives and which incarnation it is (a rebuilt one has a new id)."""
        s = self.settings.store
        where = f"http://{s.host}:{s.port}" if s.mode == "server" else str(s.path)
        return f"{where}#{self.name}#{self.collection.id}"

    # ------------------------------------------------------------ reading

    def rows(self, include: list[str], page: int = 5000) -> list[tuple[Any, ...]]:
        """(chunk id, *the included fields) of every chunk, fetched in pages."""
        return [row for rows in self.pages(include, page) for row in rows]

    def pages(self, include: list[str], page: int = 5000) -> Iterator[list[tuple[Any, ...]]]:
        """Every chunk, a page at a time, so a million chunks never sit in memory at once.

        The ids are listed first and the pages fetched by id: Chroma's ``offset`` re-reads
        everything before it, which made paging a million chunks quadratic (4.4 s a page at
        offset 900,000 against 0.5 s by id).
        """
        ids = self.collection.get(include=[])["ids"]
        if not include:
            for start in range(0, len(ids), page):
                yield [(cid,) for cid in ids[start : start + page]]
            return
        for start in range(0, len(ids), page):
            got = self.collection.get(ids=ids[start : start + page], include=include)
            yield list(zip(got["ids"], *(got[field] or [] for field in include), strict=True))

    def all_metadatas(self) -> list[tuple[str, dict[str, Any]]]:
        """(chunk id, metadata) of every chunk."""
        return [(row[0], row[1]) for row in self.rows(["metadatas"])]

    def get(self, ids: list[str]) -> dict[str, tuple[str, dict[str, Any]]]:
        """{chunk id: (text, metadata)} of those of ``ids`` the store holds."""
        if not ids:
            return {}
        got = self.collection.get(ids=ids, include=["documents", "metadatas"])
        return {
            cid: (text or "", meta or {})
            for cid, text, meta in zip(got["ids"], got["documents"] or [], got["metadatas"] or [], strict=True)
        }

    def documents(self, doc_ids: list[str] | None = None, origins: list[str] | None = None) -> dict[str, DocInfo]:
        """Articles in the store, from their chunks' metadata: every one, or those with these ids or origins.

        Asking for ids reads the catalogue by id, then the chunks it lists by id: about 1 ms at
        any size. Asking for origins is a filtered lookup of the catalogue (one record an
        article); asking for all reads the whole store.
        """
        if doc_ids is None and origins is None:
            return _doc_infos(self.all_metadatas())
        if doc_ids is not None:
            if not doc_ids:
                return {}
            records = self.catalogue.get(ids=list(doc_ids), include=["metadatas"])
        else:
            if not origins:
                return {}
            records = self.catalogue.get(where={"origin": {"$in": list(origins)}}, include=["metadatas"])
        listed = sorted({cid for meta in records["metadatas"] or [] for cid in json.loads(meta["chunks"])})
        rows: list[tuple[str, dict[str, Any]]] = []
        # In pages: a batch of long articles can list more ids than one SQLite statement may bind.
        for start in range(0, len(listed), _GET_PAGE):
            got = self.collection.get(ids=listed[start : start + _GET_PAGE], include=["metadatas"])
            rows += zip(got["ids"], got["metadatas"] or [], strict=True)
        return _doc_infos(rows)

    def nearest(
        self, vector: list[float], n: int, where: dict[str, Any] | None
    ) -> list[tuple[str, str, dict[str, Any]]]:
        """(chunk id, text, metadata) of the ``n`` chunks nearest ``vector`` that match ``where``."""
        got = self.collection.query(
            query_embeddings=[vector], n_results=n, where=where, include=["documents", "metadatas"]
        )
        return [
            (cid, doc or "", meta or {})
            for cid, doc, meta in zip(got["ids"][0], got["documents"][0], got["metadatas"][0], strict=True)
        ]

    def changed_since(self, stamp: int) -> dict[str, int]:
        """{chunk id: its write stamp} of every chunk written after ``stamp`` (ms), from the journal.

        A chunk written and since deleted is not listed (its record goes with it)."""
        got = self.written.get(where={STAMP: {"$gt": stamp}}, include=["metadatas"])
        return {cid: int(meta[STAMP]) for cid, meta in zip(got["ids"], got["metadatas"] or [], strict=True)}

    def deleted_since(self, stamp: int) -> list[str]:
        """Ids of the chunks deleted after ``stamp`` (ms)."""
        return list(self.tombstones.get(where={DELETED_AT: {"$gt": stamp}}, include=[])["ids"])

    def tombstones_kept_since(self) -> int:
        """Deletions before this stamp (ms) may have been purged; an index older than it must rebuild."""
        return now_ms() - int(self.settings.store.tombstone_days * 86_400_000)

    @property
    def tombstones_name(self) -> str:
        return f"{self.name}-deleted"

    @property
    def tombstones(self) -> Any:
        """The journal of deletions (one-dimensional: it holds no real vectors)."""
        if self._tombstones is None:
            self._tombstones = self.client.get_or_create_collection(self.tombstones_name, embedding_function=None)
        return self._tombstones

    @property
    def catalogue(self) -> Any:
        """{doc_id: the ids of its chunks, its origin}, built from the chunks once if missing."""
        if self._catalogue is None:
            self._catalogue = self._ready_catalogue()
        return self._catalogue

    def _ready_catalogue(self) -> Any:
        # Building takes the write locks, so writers get the catalogue before they take them.
        name = f"{self.name}-{CATALOGUE}"
        catalogue = self.client.get_or_create_collection(name, embedding_function=None)
        if (catalogue.metadata or {}).get("complete"):
            return catalogue
        # A store written before the catalogue existed: list every article's chunks, once.
        with self._write_lock, self.exclusive():
            catalogue = self.client.get_or_create_collection(name, embedding_function=None)
            if not (catalogue.metadata or {}).get("complete"):
                began = time.perf_counter()
                articles: dict[str, tuple[set[str], str]] = {}
                for page in self.pages(["metadatas"], _CATALOGUE_PAGE):
                    for cid, meta in page:
                        m = ArticleMeta.from_metadata(meta)
                        articles.setdefault(m.doc_id, (set(), m.origin))[0].add(cid)
                self._put_records(catalogue, articles)
                catalogue.modify(metadata={"complete": 1})
                log.info(
                    "catalogued %d articles of %s in %.1f s", len(articles), self.name, time.perf_counter() - began
                )
        return catalogue

    def _ready_for_writing(self) -> None:
        if self._catalogue is None:
            self._catalogue = self._ready_catalogue()

    @staticmethod
    def _put_records(catalogue: Any, records: dict[str, tuple[set[str], str]]) -> None:
        items = sorted(records.items())
        for start in range(0, len(items), _CATALOGUE_PAGE):
            page = items[start : start + _CATALOGUE_PAGE]
            catalogue.upsert(
                ids=[doc for doc, _ in page],
                embeddings=[[0.0]] * len(page),
                metadatas=[{"chunks": json.dumps(sorted(ids)), "origin": origin} for _, (ids, origin) in page],
            )

    def _records(self, doc_ids: list[str]) -> dict[str, tuple[set[str], str]]:
        got = self.catalogue.get(ids=doc_ids, include=["metadatas"]) if doc_ids else {"ids": [], "metadatas": []}
        return {
            doc: (set(json.loads(meta["chunks"])), str(meta.get("origin", "")))
            for doc, meta in zip(got["ids"], got["metadatas"] or [], strict=True)
        }

    def _list(self, ids: list[str], metadatas: list[dict[str, Any]]) -> None:
        """Add chunks to their articles' records (before the chunks are written: a record may
        name a chunk that is not there yet, never the other way round)."""
        records = self._records(sorted({ArticleMeta.from_metadata(m).doc_id for m in metadatas}))
        for cid, meta in zip(ids, metadatas, strict=True):
            m = ArticleMeta.from_metadata(meta)
            listed, _ = records.get(m.doc_id, (set(), ""))
            records[m.doc_id] = (listed | {cid}, m.origin)
        self._put_records(self.catalogue, records)

    def _unlist(self, ids: list[str]) -> None:
        """Drop deleted chunks from their articles' records, and an article's record with its last chunk."""
        records = self._records(sorted({doc_id_of(cid) for cid in ids}))
        gone = set(ids)
        empty = [doc for doc, (listed, _) in records.items() if listed <= gone]
        kept = {doc: (listed - gone, origin) for doc, (listed, origin) in records.items() if doc not in empty}
        if empty:
            self.catalogue.delete(ids=empty)
        self._put_records(self.catalogue, kept)

    @property
    def written(self) -> Any:
        """The journal of writes: {chunk id: ``STAMP``} for the last ``store.tombstone_days``."""
        if self._written is None:
            self._written = self.client.get_or_create_collection(f"{self.name}-written", embedding_function=None)
        return self._written

    # ------------------------------------------------------------ writing

    def upsert(
        self, ids: list[str], embeddings: list[list[float]], texts: list[str], metadatas: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Write chunks, each stamped with the time of writing (:data:`STAMP`); the metadata as written.

        The journal is written first: a writer killed in between leaves a record of a chunk not
        yet written, which a catch-up looks up and skips, never a chunk without a record.
        """
        self._ready_for_writing()
        with self._write_lock, self.exclusive():
            self._fresh_for_writing()
            stamp = self._stamp()
            stamped = [{**meta, STAMP: stamp} for meta in metadatas]
            self._list(ids, metadatas)
            self.written.upsert(ids=ids, embeddings=[[0.0]] * len(ids), metadatas=[{STAMP: stamp}] * len(ids))
            self.collection.upsert(ids=ids, embeddings=embeddings, documents=texts, metadatas=stamped)
            self._prune_journals()
        return stamped

    def delete(self, ids: list[str]) -> None:
        """Delete chunks, recording each deletion first, so that one interrupted midway is still seen."""
        self._ready_for_writing()
        with self._write_lock, self.exclusive():
            self._fresh_for_writing()
            for start in range(0, len(ids), 5000):
                batch = ids[start : start + 5000]
                records = [{DELETED_AT: self._stamp()}] * len(batch)
                self.tombstones.upsert(ids=batch, embeddings=[[0.0]] * len(batch), metadatas=records)
                self.written.delete(ids=batch)
                self.collection.delete(ids=batch)
            if ids:
                self._unlist(ids)  # after the chunks went: a record may name a gone chunk, harmlessly
                self._prune_journals()

    def _prune_journals(self) -> None:
        # Records older than tombstone_days serve no index: one that old is rebuilt instead.
        if now_ms() - self._pruned_at < _PRUNE_EVERY_MS:
            return
        self._pruned_at = now_ms()
        old = self.tombstones_kept_since()
        self.tombstones.delete(where={DELETED_AT: {"$lt": old}})
        self.written.delete(where={STAMP: {"$lt": old}})

    def _stamp(self) -> int:
        stamp = now_ms()
        self._own.add(stamp)
        return stamp

    # ------------------------------------------------------------ embedded: other processes' writes

    def is_stale(self) -> bool:
        """Embedded mode: True when another process wrote or deleted chunks since Chroma was opened
        here, so this process's copy of the vector index lacks them. It reads the journals since the
        last check; a server-mode store is never stale."""
        if self.settings.store.mode != "embedded":
            return False
        since = max(self._opened, self._checked - _CHECK_LOOKBACK)
        checked = now_ms()
        written = self.written.get(where={STAMP: {"$gt": since}}, include=["metadatas"])["metadatas"] or []
        deleted = self.tombstones.get(where={DELETED_AT: {"$gt": since}}, include=["metadatas"])["metadatas"] or []
        foreign = any(m.get(STAMP) not in self._own for m in written) or any(
            m.get(DELETED_AT) not in self._own for m in deleted
        )
        if not foreign:
            self._checked = checked
        return foreign

    def reopen(self) -> None:
        """Open Chroma afresh, so that the vector index includes every process's writes.

        The vectors are loaded before they replace the old ones in searches; handles to the old
        client held elsewhere go on working, on the old copy.
        """
        with self._write_lock, self.exclusive():
            self._reopen_locked()

    def _fresh_for_writing(self) -> None:
        # Under exclusive() already: a second flock() of ours would wait for the first forever.
        if self.is_stale():
            self._reopen_locked()

    def _reopen_locked(self) -> None:
        from chromadb.api.shared_system_client import SharedSystemClient

        SharedSystemClient.clear_system_cache()  # else Chroma hands back the same stale system
        opened = now_ms()
        SYSTEMS.loaded_at[str(self.settings.store.path)] = opened
        client = make_client(self.settings)
        collection = client.get_collection(self.name, embedding_function=None)
        self._load(collection)
        # The old system is not stopped: in Chroma 1.5 that tore down the new one's bindings too.
        # Each reopen therefore keeps one more copy of the vectors for the process's life, which
        # is why nothing reopens on a timer, only before a write that follows someone else's.
        self.client, self.collection = client, collection
        self._tombstones = self._written = self._catalogue = None
        self._opened = self._checked = opened


def _doc_infos(rows: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, DocInfo]:
    docs: dict[str, DocInfo] = {}
    for cid, meta in rows:
        m = ChunkMeta.from_metadata(meta)
        info = docs.get(m.article.doc_id)
        if info is None:
            info = docs[m.article.doc_id] = DocInfo(m.article)
        info.chunks[cid] = m.n_chunks
    return docs
