"""The service layer: everything a person or a program can do with a running qa-bot, with no web
framework in it. The Gradio page (``ui.app``), the HTTP API (``ui.api``), the MCP server
(``ui.mcp_server``) and the CLI are adapters over it, so each behaviour is written once.

Usage::

    service = Service(load_settings())
    answer = service.ask("Why did Putin praise Trump?", user="alice")
    print(answer_json(answer)["citations"][0]["quote"])
    job = service.start_ingest(urls=["https://example.com/feed.xml"], user="alice")
    service.job(job.id, "alice").state   # "queued" | "running" | "done" | "failed"

What it owns: the one :class:`QABot` (models load once), the ingest lock (one write at a
time in this process), the refresh of the readers after a write, the store's health check,
the private upload folder (only files received through this server are ever read), ingest
jobs, and the conversations kept per user.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ingest import IngestReport, ingest
from ingest.fetchlog import source_states
from ingest.loaders import SUPPORTED
from qa_bot import Answer, Citation, EarlyAnswer, Passage, QABot
from qa_bot.archive import StoreError, StoreFullError, describe_failure, full_disk
from qa_bot.schema import ArticleMeta
from qa_bot.settings import Settings
from qa_bot.stats import store_stats
from qa_bot.timeline import Timeline
from ui.conversations import Conversations

log = logging.getLogger("qa_bot")

When = date | datetime | str | None
Progress = Callable[[int, int], None]
LOCAL_USER = "local"  # whose conversations they are on a server without logins or keys
JOBS_KEPT = 200  # finished jobs remembered for GET /api/jobs/{id}; the oldest go first


def safe_url(url: str) -> str | None:
    """The URL when it is an http(s) one with a host, else None: only such links are emitted or fetched."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    return url.strip() if parts.scheme in ("http", "https") and parts.netloc else None


@dataclass
class IngestOutcome:
    """What one ingest did: the pipeline's report (None when nothing could be read), the inputs
    refused before it ran, and the names users gave their uploads."""

    report: IngestReport | None
    refused: list[tuple[str, str]] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)

    @property
    def failed(self) -> list[tuple[str, str]]:
        """Every failed input, named as the user named it."""
        failed = [*self.refused, *(self.report.failed if self.report else [])]
        return [(self.shown(source), reason) for source, reason in failed]

    def shown(self, source: str) -> str:
        """A saved upload's path, or its file name (an article's id), as the name the user gave it."""
        for path, name in self.names.items():
            if source.startswith(path):
                return source.replace(path, name)
            if source == Path(path).name:
                return name
        return source

    def as_json(self) -> dict[str, Any]:
        r = self.report
        return {
            "added": [self.shown(s) for s in r.added] if r else [],
            "updated": [self.shown(s) for s in r.updated] if r else [],
            "unchanged": [self.shown(s) for s in r.unchanged] if r else [],
            "removed": list(r.removed) if r else [],
            "grouped": [list(g) for g in r.grouped] if r else [],
            "failed": [{"source": s, "reason": why} for s, why in self.failed],
            "chunks_written": r.chunks_written if r else 0,
            "seconds": round(r.seconds, 3) if r else 0.0,
        }


@dataclass
class Job:
    """An ingest running in the background: its progress while it runs, its report when done."""

    id: str
    user: str
    sources: list[str]
    state: str = "queued"  # queued | running | done | failed
    articles: int = 0
    chunks: int = 0
    created: float = field(default_factory=time.time)
    finished: float | None = None
    outcome: IngestOutcome | None = None
    error: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": self.state,
            "sources": [self.outcome.shown(s) if self.outcome else s for s in self.sources],
            "progress": {"articles": self.articles, "chunks": self.chunks},
            "created": _iso(self.created),
            "finished": _iso(self.finished) if self.finished else None,
            "report": self.outcome.as_json() if self.outcome and self.state == "done" else None,
            "error": self.error or None,
        }


class Service:
    """One qa-bot, shared by every session and every adapter of this process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.bot = QABot(settings)
        self.upload_dir = Path(tempfile.mkdtemp(prefix="qa-bot-uploads-"))
        os.chmod(self.upload_dir, 0o700)
        atexit.register(shutil.rmtree, self.upload_dir, ignore_errors=True)  # not left behind in /tmp
        # Where files this server received may be read from; the page adds Gradio's own folder.
        self.upload_folders: list[Path] = [self.upload_dir]
        self._ingest_lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._jobs_lock = threading.Lock()
        # One writer thread: jobs queue behind each other instead of contending for the lock.
        self._job_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qa-bot-ingest")
        self._conversations: Conversations | None = None
        self._had_store = False
        self.store_problem()  # notes whether a store is there to be missed later

    # ------------------------------------------------------------ health

    def store_problem(self) -> str | None:
        """What is wrong with the store, if something is that a person should be told of."""
        s = self.settings.store
        if s.mode != "embedded":
            return None
        if (s.path / "chroma.sqlite3").is_file():
            self._had_store = True  # a store that is not there yet is made by the first ingest
            return None
        if self._had_store:
            # Chroma would go on answering from what it holds in memory, and lose every write.
            return f"the store folder {s.path} has gone; restore it (or run qa-bot ingest) and restart qa-bot serve"
        return None

    def check_store(self) -> None:
        """Raise :class:`StoreError` with the store's problem, if it has one."""
        problem = self.store_problem()
        if problem:
            raise StoreError(problem)

    def health(self) -> dict[str, Any]:
        """Whether this server can answer: the store's state and the models loaded so far."""
        problem = self.store_problem()
        loaded = self.bot.__dict__  # cached_property keeps what has been loaded
        return {
            "ok": problem is None,
            "store": problem or "ok",
            "models_loaded": {"embedder": "embedder" in loaded, "generator": "generator" in loaded},
            "ingest_running": self._ingest_lock.locked(),
        }

    def stats(self) -> dict[str, Any]:
        self.check_store()
        return {k: str(v) if isinstance(v, Path) else v for k, v in store_stats(self.settings).items()}

    # ------------------------------------------------------------ reading

    def ask(
        self,
        question: str,
        history: Iterable[tuple[str, str]] = (),
        filters: dict[str, Any] | None = None,
        as_of: When = None,
    ) -> Answer:
        """The checked, cited answer (a refusal is an Answer too)."""
        self.check_store()
        with self.storage_in_words():
            return self.bot.ask(question, history=list(history), filters=filters, as_of=as_of or None)

    def stream(
        self,
        question: str,
        history: Iterable[tuple[str, str]] = (),
        filters: dict[str, Any] | None = None,
        as_of: When = None,
    ) -> Iterator[EarlyAnswer | str | Answer]:
        """As :meth:`QABot.stream`: the early quoted answer, the model's deltas, the checked Answer."""
        self.check_store()
        return self._worded(self.bot.stream(question, history=list(history), filters=filters, as_of=as_of or None))

    def search(self, query: str, k: int | None = None, filters: dict[str, Any] | None = None, as_of: When = None):
        """The passages for a query, best first, as of a moment (nothing published later)."""
        self.check_store()
        with self.storage_in_words():
            return self.bot.retrieve(query, k=k, filters=filters, as_of=as_of or None)

    def timeline(
        self, topic: str, since: When = None, until: When = None, as_of: When = None, limit: int = 20
    ) -> Timeline:
        self.check_store()
        with self.storage_in_words():
            return self.bot.timeline(topic, since=since or None, until=until or None, as_of=as_of or None, limit=limit)

    @contextlib.contextmanager
    def storage_in_words(self) -> Iterator[None]:
        """A read that fails because the store's disk is full raises :class:`StoreFullError` with the
        words (Chroma must apply its log before it reads, and says only "Error in compaction"), so
        every door catches it as the StoreError it already shows; any other failure goes on as it was."""
        try:
            yield
        except StoreError:
            raise
        except Exception as exc:
            said = full_disk(exc, self.settings)
            if said is None:
                raise
            raise StoreFullError(said) from exc

    def _worded(self, items: Iterator[EarlyAnswer | str | Answer]) -> Iterator[EarlyAnswer | str | Answer]:
        with self.storage_in_words():
            yield from items

    def articles(self, doc_ids: list[str] | None = None) -> list[dict[str, Any]]:
        """The stored articles (title, source, date, chunks, id), newest first."""
        self.check_store()
        docs = self.bot.archive.articles(doc_ids=doc_ids or None)
        rows = [
            {
                "id": a.doc_id,
                "title": a.title,
                "source": a.source,
                "published": a.published,
                "chunks": len(d.chunks),
                "origin": a.origin,
            }
            for d in docs.values()
            if (a := d.article)
        ]
        return sorted(rows, key=lambda a: (a["published"] or "", a["title"] or ""), reverse=True)

    def sources(self) -> list[str]:
        return sorted({a["source"] for a in self.articles() if a["source"]})

    def source_states(self) -> list[dict[str, str]]:
        """The feeds and URLs ingested here (not uploads): state, last success, last error."""
        self.check_store()
        return [s for s in source_states(self.bot.archive) if safe_url(s["source"])]

    # ------------------------------------------------------------ writing

    def is_upload(self, path: Path) -> bool:
        """Whether ``path``, links resolved, is a regular file in one of :attr:`upload_folders`."""
        try:
            real = path.resolve(strict=True)
        except (OSError, RuntimeError):  # missing, or a symlink loop
            return False
        return real.is_file() and any(real.is_relative_to(folder.resolve()) for folder in self.upload_folders)

    def save_uploads(self, files: list[Any] | None) -> tuple[dict[str, str], list[tuple[str, str]]]:
        """Copy uploads into the private folder under generated names; refuse bad ones.

        Returns {saved path: the name the user uploaded} and the refused (name, reason).
        """
        saved: dict[str, str] = {}
        failed: list[tuple[str, str]] = []
        for item in files or []:
            path = Path(item if isinstance(item, str) else getattr(item, "name", str(item)))
            if not self.is_upload(path):
                # The page's API takes a file as a path: only a file this server received may be read.
                failed.append((path.name, "refused: not a file uploaded through this page"))
                continue
            self._keep(path.name, path.read_bytes, path.stat().st_size, saved, failed)
        return saved, failed

    def save_upload_bytes(
        self, name: str, read: Callable[[], bytes], size: int, saved: dict[str, str], failed: list[tuple[str, str]]
    ) -> None:
        """An upload received by the HTTP API (its bytes, never a path), checked as the page's are."""
        self._keep(Path(name or "upload").name, read, size, saved, failed)

    def _keep(
        self, original: str, read: Callable[[], bytes], size: int, saved: dict[str, str], failed: list[tuple[str, str]]
    ) -> None:
        suffix = Path(original).suffix.lower()
        if suffix not in SUPPORTED:
            failed.append((original, f"unsupported file type '{suffix}'; supported: {', '.join(SUPPORTED)}"))
            return
        if size > self.settings.ingest.max_file_mb * 1024 * 1024:
            failed.append((original, f"over the limit ingest.max_file_mb = {self.settings.ingest.max_file_mb:g}"))
            return
        data = read()
        digest = hashlib.sha256(data).hexdigest()[:16]
        target = self.upload_dir / f"upload-{digest}{suffix}"  # our name: no path from the user is used
        target.write_bytes(data)
        saved[str(target)] = original

    def ingest(
        self,
        saved: dict[str, str] | None = None,
        urls: Iterable[str] = (),
        refused: list[tuple[str, str]] | None = None,
        progress: Progress | None = None,
    ) -> IngestOutcome:
        """Ingest saved uploads and http(s) URLs (pages or feeds); anything else is refused by name."""
        saved = saved or {}
        links = [u.strip() for u in urls if u and u.strip()]
        refused = [*(refused or []), *((u, "not an http(s) URL") for u in links if not safe_url(u))]
        sources = [*saved, *(u for u in links if safe_url(u))]
        if not sources:
            return IngestOutcome(None, refused, saved)
        self.check_store()
        with self._ingest_lock:
            report = ingest(sources, self.settings, progress=progress)
        self.bot.retriever.refresh()
        return IngestOutcome(report, refused, saved)

    def reingest(self, progress: Progress | None = None) -> IngestOutcome | None:
        """Every recorded source again; None when nothing has been ingested from a source yet."""
        self.check_store()
        origins = sorted({o for d in self.bot.archive.articles().values() if (o := d.article.origin)})
        if not origins:
            return None
        with self._ingest_lock:
            report = ingest(origins, self.settings, progress=progress)
        self.bot.retriever.refresh()
        return IngestOutcome(report)

    def delete(self, doc_id: str) -> str | None:
        """Delete an article; its title (or id), or None when there is no such article."""
        self.check_store()
        docs = self.bot.archive.articles(doc_ids=[doc_id])
        if doc_id not in docs:
            return None
        # Chunks, catalogue, journals, BM25, stories (its further sources are read as new next
        # time) and fetch records: one call.
        self.bot.archive.delete_articles([doc_id])
        self.bot.retriever.refresh()
        return docs[doc_id].article.title or doc_id

    # ------------------------------------------------------------ jobs

    def start_ingest(
        self,
        user: str,
        saved: dict[str, str] | None = None,
        urls: Iterable[str] = (),
        refused: list[tuple[str, str]] | None = None,
    ) -> Job:
        """Queue an ingest; it runs on the one writer thread. :meth:`job` follows it."""
        saved = saved or {}
        links = [u.strip() for u in urls if u and u.strip()]
        job = Job(uuid.uuid4().hex, user, [*saved, *links])
        with self._jobs_lock:
            self._jobs[job.id] = job
            for old in sorted(self._jobs.values(), key=lambda j: j.created)[: max(0, len(self._jobs) - JOBS_KEPT)]:
                if old.finished:
                    del self._jobs[old.id]
        self._job_worker.submit(self._run_job, job, saved, links, refused or [])
        return job

    def _run_job(self, job: Job, saved: dict[str, str], links: list[str], refused: list[tuple[str, str]]) -> None:
        job.state = "running"

        def tick(articles: int, chunks: int) -> None:
            job.articles, job.chunks = articles, chunks

        try:
            job.outcome = self.ingest(saved, links, refused, progress=tick)
            job.state = "done"
        except Exception as exc:  # a job's failure is its report; the thread goes on to the next
            log.exception("ingest job %s failed", job.id)
            job.error, job.state = describe_failure(exc, self.settings), "failed"
        finally:
            job.finished = time.time()

    def job(self, job_id: str, user: str) -> Job | None:
        """The user's job of that id (another user's is None, as a missing one is)."""
        job = self._jobs.get(job_id)
        return job if job is not None and job.user == user else None

    # ------------------------------------------------------------ conversations

    @property
    def conversations(self) -> Conversations:
        if self._conversations is None:
            self._conversations = Conversations(self.settings.api.conversations_path, self.settings.api.max_turns)
        return self._conversations


# ---------------------------------------------------------------- answers as JSON


def passage_json(p: Passage) -> dict[str, Any]:
    return {
        "chunk_id": p.chunk_id,
        "doc_id": p.doc_id,
        "title": p.title,
        "source": p.source,
        "url": p.url,
        "date": p.published,
        "text": p.text,
        "score": round(float(p.score), 4),
        "also_reported_by": [{"source": o.source, "title": o.title, "url": o.url} for o in p.also_reported_by],
    }


def citation_json(c: Citation) -> dict[str, Any]:
    """One citation: its number in the text, the exact quoted sentence, and where it is from."""
    p = c.passage
    return {
        "number": c.number,
        "quote": c.quote,
        "quote_start": c.quote_start,
        "title": p.title,
        "source": p.source,
        "url": p.url,
        "date": p.published,
        "doc_id": p.doc_id,
        "chunk_id": p.chunk_id,
        "passage": p.text,
    }


def answer_json(answer: Answer) -> dict[str, Any]:
    """The answer as the API, the MCP server and the kept conversations give it."""
    return {
        "answer": answer.text,
        "refused": answer.refused,
        "citations": [citation_json(c) for c in answer.citations],
        "as_of": answer.as_of,
        "newest": answer.newest,
        "dateline": answer.dateline,
        "note": answer.note,
        "unsupported": list(answer.unsupported),
        "mode": answer.mode,
        "timings": {k: round(v, 3) for k, v in answer.timings.items()},
    }


def answer_from_json(data: dict[str, Any]) -> Answer:
    """An Answer rebuilt from :func:`answer_json` (a kept turn shown again with its source cards)."""
    citations = [
        Citation(c["number"], _passage_from(c), c["quote"], c.get("quote_start", 0)) for c in data.get("citations", [])
    ]
    answer = Answer(data.get("answer", ""), bool(data.get("refused")), citations, mode=data.get("mode", "generated"))
    answer.as_of, answer.newest, answer.note = data.get("as_of", ""), data.get("newest", ""), data.get("note", "")
    return answer


def _passage_from(c: dict[str, Any]) -> Passage:
    text = c.get("passage", "")
    article = ArticleMeta(
        doc_id=c.get("doc_id", ""), title=c.get("title", ""), source=c.get("source", ""), url=c.get("url", ""),
        published=c.get("date", ""),
    )  # fmt: skip
    return Passage(chunk_id=c.get("chunk_id", ""), article=article, text=text, start=0, end=len(text))


def sources_list(answer: Answer | dict[str, Any]) -> str:
    """The cited sources as plain lines a chat client shows as they are: ``[1] Title — Source, date. URL``."""
    data = answer if isinstance(answer, dict) else answer_json(answer)
    seen: dict[int, str] = {}
    for c in data["citations"]:
        where = ", ".join(x for x in (c["source"], c["date"]) if x)
        url = safe_url(c["url"] or "")
        line = f"[{c['number']}] {c['title'] or c['doc_id']}" + (f" — {where}" if where else "")
        seen.setdefault(c["number"], line + (f". {url}" if url else ""))
    return "\n".join(["Sources:", *(seen[n] for n in sorted(seen))]) if seen else ""


def _iso(stamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp))
