"""What loading a source yields, and what its fetches remember: shared by files and URLs.

Usage::

    from ingest.items import FetchMemory, Item, Unchanged, is_url
    memory = FetchMemory(FetchLog(records), present=store_has)   # the pipeline's
    for item in load_sources(sources, settings, memory=memory):  # Item: Article | Failure | Unchanged
        ...

Its own module so that :mod:`ingest.loaders` (source arguments) and :mod:`ingest.feeds` (URLs and
feeds) both import it without importing each other; ``ingest.loaders`` re-exports every name.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from ingest.articles import Article, Failure
from ingest.fetchlog import FetchLog, FetchRecord, Kind


@dataclass
class Unchanged:
    """An article that a conditional fetch (or its feed entry) shows unchanged: nothing to read or write."""

    doc_id: str
    source: str  # the page or URL it came from


Item = Article | Failure | Unchanged


class FetchMemory:
    """What earlier fetches recorded, and what this run learns (saved by the pipeline once its
    writes are done, so a run killed midway leaves nothing claimed that was not written)."""

    def __init__(
        self,
        log: FetchLog | None = None,
        present: Callable[[list[str]], set[str]] | None = None,
        backoff: bool = False,
    ) -> None:
        self.log = log
        self._present = present
        # watch: an item page that failed is left alone until its record's retry_at, as sources are
        self.backoff = backoff
        self.notes: dict[tuple[str, str], FetchRecord] = {}
        self._lock = threading.Lock()

    def records(self, urls: list[str], kind: Kind) -> dict[str, FetchRecord]:
        return self.log.get(urls, kind) if self.log is not None else {}

    def present(self, doc_ids: list[str]) -> set[str]:
        """Which of these articles the store holds (or holds as a further source of a story)."""
        return self._present(doc_ids) if self._present is not None and doc_ids else set()

    def note(self, record: FetchRecord) -> None:
        with self._lock:
            self.notes[(record.kind, record.url)] = record


def is_url(source: str) -> bool:
    return urlsplit(source).scheme in ("http", "https")
