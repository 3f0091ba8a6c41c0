"""Everything qa-bot stores, owned in one place: :class:`Archive` (qa_bot/archive/archive.py).

Usage::

    from qa_bot.archive import Archive, StoreError, describe_failure
    archive = Archive(settings)
    archive.articles(doc_ids=["a.txt"]); archive.delete_articles(["a.txt"]); archive.stats()

Only this package imports ``chromadb`` and ``tantivy``.
"""

from qa_bot.archive.archive import FETCHED, RECORD_KINDS, Archive, collections_of, open_store
from qa_bot.archive.errors import StoreError, StoreFullError, StoreMismatchError, describe_failure, full_disk
from qa_bot.archive.lexical import LexicalSync
from qa_bot.archive.records import Records, fetch_id
from qa_bot.archive.store import STAMP, DocInfo, Store, chunk_id, doc_id_of, now_ms
from qa_bot.archive.stories import Copy, StoryRecords

__all__ = [
    "FETCHED",
    "RECORD_KINDS",
    "STAMP",
    "Archive",
    "Copy",
    "DocInfo",
    "LexicalSync",
    "Records",
    "Store",
    "StoreError",
    "StoreFullError",
    "StoreMismatchError",
    "StoryRecords",
    "chunk_id",
    "collections_of",
    "describe_failure",
    "doc_id_of",
    "fetch_id",
    "full_disk",
    "now_ms",
    "open_store",
]
