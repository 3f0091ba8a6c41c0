"""The BM25 side of retrieval: a tantivy index on disk, kept in step with the store.

Usage::

    sync = LexicalSync(store, settings.retrieval)  # var/lexical/<collection>-<key>/, built the first time
    sync.search("why did putin praise trump", n=30, filters=Filters())  # [(chunk id, BM25 score)]
    sync.catch_up()    # take in what any process or machine wrote or deleted since the last catch-up
    sync.start()       # ... every retrieval.refresh_seconds, in a background thread

Why tantivy (and not SQLite FTS5 or a bm25s index rebuilt in the background): measured in
docs/experiments/2026-12-02-lexical-engines.md. In short, at a million chunks its top-30 takes
milliseconds where FTS5's ``ORDER BY bm25()`` takes hundreds, it is updated in place with
commits that readers in other processes see, and it lives on disk, so no process holds the
archive's text in memory.

How it stays consistent with Chroma, which remains the only record of what was ingested:

* Every chunk carries the time it was written (``schema.STAMP``). Every write leaves a record in
  the journal ``<collection>-written`` and every deletion one in ``<collection>-deleted``, both
  *before* the chunks change; the journals keep ``store.tombstone_days`` of records.
* The ingest that writes a batch applies it here right after Chroma (:meth:`LexicalSync.written`,
  :meth:`LexicalSync.deleted`), so a one-process setup is in step at once.
* Any process catches up (:meth:`LexicalSync.catch_up`): the deletions recorded since its last
  catch-up, then the chunks written since, less those whose stamp the index already holds. Both
  look ``retrieval.lookback_seconds`` further back, so a batch that landed late, or a writer whose
  clock is behind, is not missed. A killed ingest is therefore repaired by the next catch-up.
* An index that does not exist yet, was made for a collection since rebuilt, by another version
  of this module, or has not caught up since before the oldest deletion record kept, is rebuilt
  from the store into a new folder and swapped in; searches go on meanwhile on the old one.
* As a safety net, a background refresher that finds the index and the store holding different
  numbers of chunks twice a minute apart, with nothing written in between, compares every id and
  mends the difference (:meth:`LexicalSync.reconcile`): a write that landed later than the
  lookback, or chunks written by a version that did not stamp them.
* Several processes on one machine share the folder: tantivy lets one writer at a time in (an
  OS lock, released if its process dies), and every process reads the latest commit.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import threading
import time
import uuid
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from qa_bot.archive.locks import file_lock
from qa_bot.archive.store import Store, now_ms
from qa_bot.results import Filters
from qa_bot.schema import ArticleMeta, ChunkMeta, day_ts, stored_day
from qa_bot.settings import RetrievalSettings, Settings

log = logging.getLogger(__name__)

# The analysis (tokens, stemmer, stopwords), the schema and how it catches up (3: from the
# journal of writes); another version rebuilds the index.
VERSION = 3
# A catch-up waits this long for another process's writer; the next one tries again.
BACKGROUND_WAIT = 0.5
# The ingest that wrote a batch waits this long to index it; if it cannot, a catch-up will.
WRITER_WAIT = 30.0
# Chunks read from the store at a time while (re)building or reconciling.
BUILD_PAGE = 2000
# Background rounds between comparisons of the index's chunk count with the store's.
COUNT_EVERY = 30


# (chunk id, text, metadata): what the index is given of a chunk.
Row = tuple[str, str, dict[str, Any]]


class LexicalBusyError(RuntimeError):
    """Another process holds the index's writer for longer than we may wait."""


_local = threading.local()


def analyse(texts: list[str]) -> list[list[str]]:
    """Words to BM25 terms: lower case, English stopwords out, Snowball-stemmed (as bm25s does)."""
    import bm25s
    import Stemmer

    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:  # PyStemmer objects are not safe to share between threads
        stemmer = _local.stemmer = Stemmer.Stemmer("english")
    return bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False, return_ids=False)


def index_text(text: str, meta: dict[str, Any]) -> str:
    """What BM25 sees of a chunk: its article's title, then its text."""
    return f"{ArticleMeta.from_metadata(meta).title}\n{text}"


# ---------------------------------------------------------------- one index folder


class LexicalIndex:
    """One tantivy index: chunk id, filter fields, stamp and the analysed text."""

    def __init__(self, path: Path) -> None:
        import tantivy

        self._t = tantivy
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        builder = tantivy.SchemaBuilder()
        builder.add_text_field("id", stored=True, tokenizer_name="raw")
        builder.add_text_field("source", stored=False, tokenizer_name="raw")
        builder.add_integer_field("published_ts", indexed=True, fast=True)
        builder.add_integer_field("stamp", stored=True, fast=True)
        # Terms come analysed (analyse()), so splitting on spaces is all tantivy must do.
        builder.add_text_field("body", stored=False, tokenizer_name="whitespace")
        self.schema = builder.build()
        self.index = tantivy.Index(self.schema, path=str(path), reuse=True)

    def __len__(self) -> int:
        return int(self.index.searcher().num_docs)

    def reload(self) -> None:
        self.index.reload()

    def search(self, terms: list[str], n: int, filters: Filters) -> list[tuple[str, float]]:
        """(chunk id, score) of the best ``n`` chunks that contain any of ``terms``."""
        t = self._t
        if not terms:
            return []
        words = t.Query.boolean_query([(t.Occur.Should, t.Query.term_query(self.schema, "body", w)) for w in terms])
        clauses = [(t.Occur.Must, words)]
        if filters.source:
            sources = t.Query.term_set_query(self.schema, "source", list(filters.source))
            clauses.append((t.Occur.Must, t.Query.const_score_query(sources, 0.0)))
        if filters.since or filters.until:
            lo = day_ts(filters.since) if filters.since else None
            hi = day_ts(filters.until) if filters.until else None
            period = t.Query.range_query(self.schema, "published_ts", t.FieldType.Integer, lo, hi)
            clauses.append((t.Occur.Must, t.Query.const_score_query(period, 0.0)))
        query = words if len(clauses) == 1 else t.Query.boolean_query(clauses)
        searcher = self.index.searcher()
        hits = searcher.search(query, n, count=False).hits
        return [(searcher.doc(address)["id"][0], float(score)) for score, address in hits]

    def stamps(self, ids: list[str]) -> dict[str, int]:
        """{chunk id: stamp} of those of ``ids`` the index holds."""
        out: dict[str, int] = {}
        searcher = self.index.searcher()
        for start in range(0, len(ids), 10_000):
            batch = ids[start : start + 10_000]
            query = self._t.Query.term_set_query(self.schema, "id", batch)
            for _, address in searcher.search(query, len(batch), count=False).hits:
                doc = searcher.doc(address)
                out[doc["id"][0]] = doc["stamp"][0]
        return out

    def ids(self) -> set[str]:
        """Every chunk id in the index (reads all of it: for checks and tests)."""
        searcher = self.index.searcher()
        if not searcher.num_docs:
            return set()
        hits = searcher.search(self._t.Query.all_query(), searcher.num_docs, count=False).hits
        return {searcher.doc(address)["id"][0] for _, address in hits}

    def document(self, cid: str, meta: dict[str, Any], terms: list[str]) -> Any:
        m = ChunkMeta.from_metadata(meta)
        return self._t.Document(
            id=cid,
            source=m.article.source,
            published_ts=-1 if (day := stored_day(meta)) is None else day,
            stamp=m.indexed_at,
            body=" ".join(terms),
        )

    @contextlib.contextmanager
    def writer(self, wait: float, heap: int = 64_000_000) -> Iterator[Any]:
        """The index's one writer, committed and released on leaving; :class:`LexicalBusyError` if taken."""
        deadline = time.monotonic() + wait
        while True:
            try:
                writer = self.index.writer(heap, 1)
                break
            except ValueError as exc:
                if "LockBusy" not in str(exc) or time.monotonic() >= deadline:
                    busy = f"the BM25 index at {self.path} is being written by another process"
                    raise LexicalBusyError(busy) from exc
                time.sleep(0.05)
        try:
            yield writer
            writer.commit()
        except BaseException:
            writer.rollback()
            raise
        finally:
            writer.wait_merging_threads()  # finishes merges and releases the lock
        self.index.reload()

    def apply(self, rows: list[Row], deletes: Iterable[str], wait: float) -> None:
        """Index ``rows``, replacing any of the same id, and drop ``deletes``: one commit."""
        docs = self.documents(rows)  # analysed before the writer is taken, to hold it briefly
        with self.writer(wait) as writer:
            for cid in deletes:
                writer.delete_documents_by_term("id", cid)
            for (cid, _, _), doc in zip(rows, docs, strict=True):
                writer.delete_documents_by_term("id", cid)
                writer.add_document(doc)

    def documents(self, rows: list[Row]) -> list[Any]:
        terms = analyse([index_text(text, meta) for _, text, meta in rows])
        return [self.document(cid, meta, t) for (cid, _, meta), t in zip(rows, terms, strict=True)]


# ---------------------------------------------------------------- keeping it in step


@dataclass
class CatchUp:
    """What one catch-up did."""

    indexed: int = 0
    deleted: int = 0
    rebuilt: bool = False
    seconds: float = 0.0


@dataclass
class _State:
    version: int
    collection: str
    index: str
    watermark: int


def index_folder(settings: Settings) -> Path:
    """Where this machine keeps the BM25 index of the configured store and collection."""
    s = settings.store
    where = f"http://{s.host}:{s.port}" if s.mode == "server" else str(s.path)
    key = hashlib.sha256(f"{where}#{s.collection}".encode()).hexdigest()[:12]
    return Path(settings.retrieval.lexical_path) / f"{s.collection}-{key}"


def describe_index(settings: Settings, collection_id: str) -> str:
    """One line for ``qa-bot stats``: how many chunks the index holds and when it last caught up."""
    folder = index_folder(settings)
    try:
        state = _State(**json.loads((folder / "state.json").read_text()))
    except (OSError, ValueError, TypeError):
        return f"not built on this machine yet (the next ingest or serve builds it in {folder})"
    if not state.collection.endswith(f"#{collection_id}") or state.version != VERSION:
        return f"out of date (the next ingest or serve rebuilds it in {folder})"
    chunks = len(LexicalIndex(folder / state.index))
    when = datetime.fromtimestamp(state.watermark / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"{chunks} chunks, caught up at {when} ({folder})"


class LexicalSync:
    """The store's BM25 index on this machine, and the catching up that keeps it current."""

    def __init__(self, store: Store, settings: RetrievalSettings) -> None:
        self.store = store
        self.settings = settings
        self.folder = index_folder(
            store.settings.model_copy(update={"retrieval": settings})  # this retrieval's lexical_path
        )
        self.folder.mkdir(parents=True, exist_ok=True)
        self._index: LexicalIndex | None = None
        self._lock = threading.Lock()  # one catch-up at a time in this process
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_counts: tuple[int, int] = (-1, -1)

    # ------------------------------------------------------------ reading

    def search(self, query: str, n: int, filters: Filters) -> list[tuple[str, float]]:
        return self.index.search(analyse([query])[0], n, filters)

    @property
    def index(self) -> LexicalIndex:
        """The current index, built first if this machine has none for the store (the one wait)."""
        if self._index is None:
            self.catch_up()
        assert self._index is not None
        return self._index

    # ------------------------------------------------------------ writing, from the ingest

    def written(self, ids: list[str], texts: list[str], metas: list[dict[str, Any]]) -> None:
        """Index chunks this process has just written to the store (metadata with its stamp)."""
        self._apply(list(zip(ids, texts, metas, strict=True)), [])

    def deleted(self, ids: list[str]) -> None:
        """Drop chunks this process has just deleted from the store."""
        self._apply([], ids)

    def _apply(self, rows: list[Row], deletes: list[str]) -> None:
        state = self._read_state()
        if state is None or self._needs_build(state):
            return  # nothing to keep in step yet: the build will read these from the store
        try:
            self._open(state).apply(rows, deletes, WRITER_WAIT)
        except LexicalBusyError as exc:
            log.warning("%s; the next catch-up will index these %d chunks", exc, len(rows) + len(deletes))

    # ------------------------------------------------------------ catching up

    def catch_up(self, wait: float = WRITER_WAIT) -> CatchUp:
        """Bring the index level with the store; build it if it cannot be caught up."""
        began = time.perf_counter()
        with self._lock:
            state = self._read_state()
            if state is None or self._needs_build(state):
                self._build()
                done = CatchUp(rebuilt=True)
            else:
                done = self._incremental(state, wait)
        done.seconds = time.perf_counter() - began
        return done

    def _incremental(self, state: _State, wait: float) -> CatchUp:
        index = self._open(state)
        index.reload()  # another process may have committed
        began = now_ms()
        since = state.watermark - int(self.settings.lookback_seconds * 1000)
        deleted = self.store.deleted_since(since)
        changed = self.store.changed_since(since)
        held = index.stamps(list(changed))
        stale = [cid for cid, stamp in changed.items() if held.get(cid) != stamp]
        # A chunk deleted and written again since is live; one the index lacks needs no delete.
        gone = list(index.stamps([cid for cid in deleted if cid not in changed]))
        rows = self._fetch(stale)
        if rows or gone:
            index.apply(rows, gone, wait)
        self._advance(began)
        return CatchUp(indexed=len(rows), deleted=len(gone))

    def _build(self) -> None:
        """Index the whole store into a new folder, then make it the current one."""
        with self._file_lock("build.lock"):
            state = self._read_state()
            if state is not None and not self._needs_build(state):
                self._index = None
                self._open(state)  # another process built it while we waited for the lock
                return
            began = now_ms()
            name = f"index-{uuid.uuid4().hex[:12]}"
            index = LexicalIndex(self.folder / name)
            total = 0
            log.info("building the BM25 index of %s at %s", self.store.name, index.path)
            with index.writer(WRITER_WAIT, heap=256_000_000) as writer:  # one commit, at the end
                for page in self.store.pages(["documents", "metadatas"], BUILD_PAGE):
                    for doc in index.documents([(cid, text or "", meta or {}) for cid, text, meta in page]):
                        writer.add_document(doc)
                    total += len(page)
            new = _State(VERSION, self.store.identity(), name, began)
            with self._file_lock("state.lock"):
                self._write_state(new)
            self._index = index
            log.info("BM25 index of %s: %d chunks in %.1f s", self.store.name, total, (now_ms() - began) / 1000)
            self._remove_old(keep={name, state.index if state else name})
        # What was written or deleted while we read the store.
        self._incremental(new, WRITER_WAIT)

    def reconcile(self) -> CatchUp:
        """Compare every chunk id with the store's and mend the difference.

        Reads both whole, so it runs only when the counts disagree for a while, in the background.
        The index is listed before the store: a chunk written in between is then missing here
        (and fetched), and one deleted in between is extra here (and dropped), never the reverse.
        """
        began = time.perf_counter()
        with self._lock:
            state = self._read_state()
            if state is None or self._needs_build(state):
                self._build()
                return CatchUp(rebuilt=True, seconds=time.perf_counter() - began)
            index = self._open(state)
            index.reload()
            mine = index.ids()
            theirs = {row[0] for page in self.store.pages([], 10 * BUILD_PAGE) for row in page}
            extra = sorted(mine - theirs)
            rows = self._fetch(sorted(theirs - mine))
            if rows or extra:
                index.apply(rows, extra, WRITER_WAIT)
            log.info("BM25 index reconciled with the store: %d chunks added, %d dropped", len(rows), len(extra))
        return CatchUp(indexed=len(rows), deleted=len(extra), seconds=time.perf_counter() - began)

    def check_count(self) -> bool:
        """True when the index and the store disagree on the chunk count as they did last time."""
        pair = (len(self.index), self.store.count())
        stuck = pair[0] != pair[1] and pair == self._last_counts
        self._last_counts = pair
        return stuck

    def _fetch(self, ids: list[str]) -> list[Row]:
        rows: list[Row] = []
        for start in range(0, len(ids), 1000):
            got = self.store.get(ids[start : start + 1000])
            rows += [(cid, text, meta) for cid, (text, meta) in got.items()]
        return rows

    def _needs_build(self, state: _State) -> bool:
        return (
            state.version != VERSION
            or state.collection != self.store.identity()
            or not (self.folder / state.index).is_dir()
            or state.watermark < self.store.tombstones_kept_since()
        )

    def _open(self, state: _State) -> LexicalIndex:
        if self._index is None or self._index.path.name != state.index:
            self._index = LexicalIndex(self.folder / state.index)  # another process rebuilt it
        return self._index

    def _advance(self, watermark: int) -> None:
        with self._file_lock("state.lock"):
            state = self._read_state()
            if state is not None and watermark > state.watermark:
                state.watermark = watermark
                self._write_state(state)

    def _remove_old(self, keep: set[str]) -> None:
        # The folder before the newest is kept: another process may be searching it still.
        for path in self.folder.glob("index-*"):
            if path.name not in keep:
                shutil.rmtree(path, ignore_errors=True)

    # ------------------------------------------------------------ state file

    def _read_state(self) -> _State | None:
        try:
            return _State(**json.loads((self.folder / "state.json").read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def _write_state(self, state: _State) -> None:
        tmp = self.folder / f"state.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(state.__dict__))
        os.replace(tmp, self.folder / "state.json")

    def _file_lock(self, name: str) -> contextlib.AbstractContextManager[None]:
        return file_lock(self.folder / name)

    # ------------------------------------------------------------ in the background

    def start(self) -> None:
        """Catch up every ``retrieval.refresh_seconds`` in a daemon thread, until :meth:`stop`."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=_refresh_loop,
            args=(weakref.ref(self), self._stop, self.settings.refresh_seconds),
            name="qa-bot-lexical",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()


def _refresh_loop(ref: weakref.ref[LexicalSync], stop: threading.Event, every: float) -> None:
    # A weak reference, so a bot that is dropped without stop() does not live on in its thread.
    rounds = 0
    while not stop.wait(every):
        sync = ref()
        if sync is None:
            return
        rounds += 1
        try:
            done = sync.catch_up(wait=BACKGROUND_WAIT)
            if rounds % COUNT_EVERY == 0 and not (done.indexed or done.deleted) and sync.check_count():
                sync.reconcile()
        except LexicalBusyError:
            pass  # another process is writing; next round
        except Exception as exc:  # noqa: BLE001 - a store that is down must not kill the thread
            log.warning("BM25 catch-up failed: %s", exc)
        del sync
