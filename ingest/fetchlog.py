"""What was fetched from where, and how each source fared: ``<collection>-fetched``.

Usage::

    from ingest.fetchlog import FetchLog, FetchRecord
    log = FetchLog(archive.records(FETCHED))
    log.get(["https://example.com/feed.xml"])      # {url: FetchRecord}
    log.put([FetchRecord(url=..., kind="source", etag='"abc"')])
    log.sources()                                  # every source argument, for stats and the UI

One record per URL (a feed, an article page) and per source argument (a feed URL, an article
URL, a folder). A record keeps the validators of the last good fetch (``ETag``,
``Last-Modified``, a hash of the body) so the next fetch can be conditional, the articles it
gave, and how the source fared: last success, last error, failures in a row and, after
failures, when ``watch`` tries it again. Records are read by id (about 1 ms at any size) and
live beside the collection (the archive keeps them: ``qa_bot.archive.records``), so
``--reindex`` drops them with it and every page is read anew.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from qa_bot.archive import FETCHED, Archive, Records, fetch_id

# watch's back-off after a source fails: 1, 2, 4 … minutes, at most 6 hours.
BACKOFF_FIRST = 60.0
BACKOFF_MAX = 6 * 3600.0

Kind = Literal["source", "page"]


def now() -> float:
    return time.time()


@dataclass
class FetchRecord:
    url: str  # for kind "source": the source argument as given (a URL, or a folder's full path)
    kind: Kind = "page"
    etag: str = ""
    last_modified: str = ""
    body_hash: str = ""
    # For a page read through a feed: a hash of the feed entry's fields that become the article's
    # metadata, and those fields, so a page can be read again when its feed answers 304.
    entry_hash: str = ""
    entry: dict[str, str] = field(default_factory=dict)
    doc_ids: list[str] = field(default_factory=list)  # articles this URL gave
    items: list[str] = field(default_factory=list)  # a feed's item links
    last_success: float = 0.0
    last_error: str = ""
    last_error_at: float = 0.0
    failures: int = 0  # in a row
    retry_at: float = 0.0

    def succeeded(self, at: float | None = None) -> None:
        self.last_success = at or now()
        self.failures = 0
        self.retry_at = 0.0

    def failed(self, reason: str, at: float | None = None) -> None:
        at = at or now()
        self.last_error, self.last_error_at = reason, at
        self.failures += 1
        self.retry_at = at + min(BACKOFF_FIRST * 2 ** (self.failures - 1), BACKOFF_MAX)

    def to_metadata(self) -> dict[str, Any]:
        meta = asdict(self)
        for key in ("entry", "doc_ids", "items"):
            meta[key] = json.dumps(meta[key], ensure_ascii=False)
        return meta

    @classmethod
    def from_metadata(cls, meta: dict[str, Any]) -> FetchRecord:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in meta.items() if k in known}
        for key in ("entry", "doc_ids", "items"):
            if isinstance(values.get(key), str):
                values[key] = json.loads(values[key])
        return cls(**values)


class FetchLog:
    """The ``<collection>-fetched`` records of one collection, as :class:`FetchRecord` objects."""

    def __init__(self, records: Records) -> None:
        self.records = records

    def get(self, urls: list[str], kind: Kind = "page") -> dict[str, FetchRecord]:
        got = self.records.get([fetch_id(kind, u) for u in dict.fromkeys(urls)])
        return {r.url: r for r in (FetchRecord.from_metadata(m) for m in got.values())}

    def put(self, records: list[FetchRecord]) -> None:
        last = {(r.kind, r.url): r for r in records}.values()  # the last word on each
        self.records.put({fetch_id(r.kind, r.url): r.to_metadata() for r in last})

    def sources(self) -> list[FetchRecord]:
        """Every source argument's record (a few per deployment: feeds, folders), by URL."""
        got = self.records.where("kind", ["source"]).values()
        return sorted((FetchRecord.from_metadata(m) for m in got), key=lambda r: r.url)


def source_states(archive: Archive) -> list[dict[str, str]]:
    """Each source ingested or watched: its state, last success and last error (``describe_source``)."""
    if not archive.has(FETCHED):
        return []
    return [describe_source(r) for r in FetchLog(archive.records(FETCHED)).sources()]


def describe_source(record: FetchRecord, at: float | None = None) -> dict[str, str]:
    """One source's state in words, for ``qa-bot stats`` and the Articles tab."""
    at = at or now()

    def ago(when: float) -> str:
        if not when:
            return "never"
        seconds = max(0, int(at - when))
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
            if seconds >= size:
                return f"{seconds // size}{unit} ago"
        return f"{seconds}s ago"

    state = "ok"
    if record.failures:
        wait = record.retry_at - at
        state = f"{record.failures} failure(s) in a row" + (
            f"; next try in {int(wait // 60) + 1} min" if wait > 0 else ""
        )
    return {
        "source": record.url,
        "state": state,
        "last success": ago(record.last_success),
        "last error": f"{record.last_error} ({ago(record.last_error_at)})" if record.last_error else "-",
    }
