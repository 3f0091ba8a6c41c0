"""Article URLs and RSS/Atom feeds, fetched conditionally: a source URL's body is a feed or one
document of a registered format (:mod:`ingest.formats`); a feed's items are fetched concurrently.

Usage (through :func:`ingest.loaders.load_sources`, which reads every source argument in order)::

    from ingest.feeds import fetch_head, load_head
    record = memory.records([url], "source").get(url) or FetchRecord(url, kind="source")
    got = fetch_head(fetcher, url, record)      # a Response (maybe a 304), or the FetchError
    for item in load_head(url, record, got, fetcher, memory):
        ...                                     # an Article, a Failure, or Unchanged

What each URL answered is remembered (:class:`ingest.items.FetchMemory`, kept in the fetch log):
the next fetch is conditional, and a feed or page that has not changed costs one request, or none.
Feeds are parsed by feedparser; an item's page by its format's parser, with the feed's word on
its title, author, date and outlet.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from ingest import formats
from ingest.articles import Article, Failure, canonical_url
from ingest.fetchlog import FetchRecord, now
from ingest.items import FetchMemory, Item, Unchanged, is_url
from ingest.web import Fetcher, FetchError, Response, TooLateError

# A body is a feed when its content type says so or its URL's path looks like one; failing that, when
# no format claims it and it starts as an XML document.
FEED_TYPES = ("rss", "atom", "xml")
FEED_SUFFIXES = (".xml", ".rss", ".atom", "/feed", "/rss", "/atom")


def _kind(url: str, content_type: str, body: bytes) -> str:
    """What a fetched body is read as: "feed", or the suffix of a registered format."""
    path = urlsplit(url).path.lower()
    if any(t in content_type for t in FEED_TYPES) or path.endswith(FEED_SUFFIXES):
        return "feed"
    claimed = formats.REGISTRY.suffix_for(path, content_type)
    if claimed is not None:
        return claimed
    if body.lstrip()[:5] == b"<?xml":
        return "feed"
    return formats.REGISTRY.fallback


def _body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def fetch_head(fetcher: Fetcher, url: str, record: FetchRecord | None) -> Response | FetchError:
    """A source URL's first request: conditional when an earlier one succeeded; an error is returned,
    not raised, so it runs in the fetch pool and becomes that source's Failure in its turn."""
    try:
        if record is None or not record.last_success:
            return fetcher.get(url)
        return fetcher.get(url, record.etag, record.last_modified)
    except FetchError as exc:
        return exc


def load_head(
    url: str, record: FetchRecord, got: Response | FetchError, fetcher: Fetcher, memory: FetchMemory
) -> Iterator[Item]:
    """A source URL's items from its first answer: unchanged, or its document or feed read anew."""
    if isinstance(got, FetchError):
        record.failed(str(got))
        memory.note(record)
        yield Failure(url, str(got))
        return
    unchanged = got.not_modified or (record.last_success and _body_hash(got.body) == record.body_hash)
    if unchanged and not got.not_modified:  # the same body under new validators: keep the new ones
        record.etag, record.last_modified = got.etag, got.last_modified
    if unchanged and record.items:
        yield from _load_items(url, record, None, "", fetcher, memory)
    elif unchanged and record.doc_ids and memory.present(record.doc_ids) == set(record.doc_ids):
        yield from (Unchanged(doc_id, url) for doc_id in record.doc_ids)
    else:
        if got.not_modified:  # its articles left the store: read the whole page again
            got = fetch_head(fetcher, url, None)
            if isinstance(got, FetchError):
                yield from load_head(url, record, got, fetcher, memory)
                return
        yield from _load_fresh(url, record, got, fetcher, memory)
        return
    record.succeeded()
    memory.note(record)


def _load_fresh(url: str, record: FetchRecord, got: Response, fetcher: Fetcher, memory: FetchMemory) -> Iterator[Item]:
    record.etag, record.last_modified, record.body_hash = got.etag, got.last_modified, _body_hash(got.body)
    kind = _kind(url, got.content_type, got.body)
    if kind == "feed":
        feed = _parse_feed(url, got.body)
        if isinstance(feed, Failure):
            record.failed(feed.reason)
            memory.note(record)
            yield feed
            return
        yield from _load_items(url, record, feed, feed.feed.get("title") or "", fetcher, memory)
    else:
        base = {"origin": url, "source_path": url, "source": urlsplit(url).hostname or "", "url": url}
        limit = formats.max_words(fetcher.settings)
        items = list(formats.parse_bytes(got.body, kind, url, canonical_url(url), base, limit))
        record.items = []
        record.doc_ids = [a.doc_id for a in items if isinstance(a, Article)]
        yield from items
    record.succeeded()
    memory.note(record)


def _parse_feed(url: str, body: bytes) -> Any:
    import feedparser

    if _DECLARES_ENTITIES.search(body[:65536]):
        # feedparser's parser does not fetch external entities, and expat caps entity expansion;
        # a feed has no business declaring entities at all, so it is refused before either runs.
        return Failure(url, "not a valid RSS/Atom feed: it declares XML entities (<!ENTITY>), which are refused")
    feed = feedparser.parse(body)
    if feed.bozo and not feed.entries:
        return Failure(url, f"not a valid RSS/Atom feed: {feed.get('bozo_exception') or 'no items'}")
    return feed


_DECLARES_ENTITIES = re.compile(rb"<!ENTITY", re.IGNORECASE)


def _load_items(
    url: str, record: FetchRecord, feed: Any, feed_title: str, fetcher: Fetcher, memory: FetchMemory
) -> Iterator[Item]:
    """A feed's items: unchanged ones from the records, the rest fetched concurrently, in feed order."""
    skipped: list[Item] = []
    if feed is not None:
        title = feed_title or urlsplit(url).hostname or ""
        cap = fetcher.settings.max_feed_items
        if len(feed.entries) > cap:
            said = f"the feed has {len(feed.entries):,} items; only the first {cap:,} are read (ingest.max_feed_items)"
            skipped.append(Failure(url, said))
        entries = [(e.get("link") or "", _entry_meta(e, title), _entry_hash(e), e) for e in feed.entries[:cap]]
    else:  # the feed has not changed: its items as recorded
        known = memory.records(record.items, "page")
        entries = [(link, known[link].entry, known[link].entry_hash, None) for link in record.items if link in known]
    links = [link for link, *_ in entries if is_url(link)]
    pages = memory.records(links, "page")
    present = memory.present(sorted({d for link in links if link in pages for d in pages[link].doc_ids}))
    record.items = list(dict.fromkeys(links))
    pending: list[Future[tuple[Item, FetchRecord | None]] | Item] = []
    deadline = time.monotonic() + fetcher.settings.feed_timeout
    for link, meta, entry_hash, entry in entries:
        if not is_url(link):
            pending.append(Failure(f"feed item {meta['title']!r} of {url}", "the item has no http(s) link"))
            continue
        page = pages.get(link) or FetchRecord(link, kind="page")
        stored = bool(page.last_success and page.doc_ids) and set(page.doc_ids) <= present
        if stored and page.entry == meta and page.entry_hash == entry_hash:
            pending.append(Unchanged(page.doc_ids[0], link))  # the feed says nothing changed: no request
            continue
        if memory.backoff and page.failures and page.retry_at > now() and page.entry == meta:
            when = datetime.fromtimestamp(page.retry_at).strftime("%H:%M")
            reason = f"not asked again until {when}, after {page.failures} failure(s): {page.last_error}"
            pending.append(Failure(link, reason))
            continue
        conditional = stored and page.entry == meta
        item = _FeedItem(link, meta, entry_hash, entry, url, deadline)
        pending.append(fetcher.submit(_load_page, fetcher, item, page, conditional))
    complete = True
    for waiting in pending:
        if isinstance(waiting, Future):
            loaded, new = waiting.result()
            if new is not None:
                memory.note(new)
        else:
            loaded = waiting
        complete = complete and not isinstance(loaded, Failure)
        yield loaded
    yield from skipped
    if not complete:
        # An item not read this time must not hide behind the feed's 304 next time: its entry may
        # be news the records do not hold. The feed is asked for whole again.
        record.etag = record.last_modified = record.body_hash = ""


@dataclass
class _FeedItem:
    link: str
    meta: dict[str, str]  # the feed's word on title, author, date and source
    entry_hash: str
    entry: Any  # feedparser's entry; None when the items come from the records (a 304 feed)
    origin: str
    deadline: float  # the feed's, from ingest.feed_timeout


def _load_page(
    fetcher: Fetcher, item: _FeedItem, page: FetchRecord, conditional: bool
) -> tuple[Item, FetchRecord | None]:
    """One feed item's page (in the fetch pool): its article, or why not, and its new record
    (None when the page was not asked, so its record stays as it was)."""
    link = item.link
    etag, modified = (page.etag, page.last_modified) if conditional else ("", "")
    try:
        got = fetcher.get(link, etag, modified, start_by=item.deadline)
    except TooLateError:  # not the page's fault: its record stays as it was
        limit = fetcher.settings.feed_timeout
        return Failure(link, f"not fetched: the feed ran past ingest.feed_timeout = {limit:g} s"), None
    except FetchError as exc:
        return _entry_fallback_or(Failure(link, str(exc)), item, page)
    if conditional and (got.not_modified or _body_hash(got.body) == page.body_hash):
        if not got.not_modified:
            page.etag, page.last_modified = got.etag, got.last_modified
        page.entry_hash = item.entry_hash  # the entry changed, not the page or its metadata
        page.succeeded()
        return Unchanged(page.doc_ids[0], link), page
    page.etag, page.last_modified, page.body_hash = got.etag, got.last_modified, _body_hash(got.body)
    kind = _kind(link, got.content_type, got.body)
    base = {"origin": item.origin, "source_path": link, "source": urlsplit(link).hostname or "", "url": link}
    kind = ".html" if kind == "feed" else kind  # an item's link is an article, whatever its server says
    limit = formats.max_words(fetcher.settings)  # bounded before extraction, as a file is
    items = list(formats.parse_bytes(got.body, kind, link, canonical_url(link), base, limit))
    article = items[0] if items and not isinstance(items[0], Unchanged) else Failure(link, "nothing found at the link")
    if isinstance(article, Failure):
        return _entry_fallback_or(article, item, page)
    return _with_feed_metadata(article, item, page), page


def _with_feed_metadata(article: Article, item: _FeedItem, page: FetchRecord) -> Article:
    """The article with the feed's metadata (a new Article: see Article.with_feed_metadata), and
    the page's record brought up to this entry."""
    article = article.with_feed_metadata(item.meta)
    page.entry, page.entry_hash, page.doc_ids = item.meta, item.entry_hash, [article.doc_id]
    page.succeeded()
    return article


def _entry_fallback_or(failure: Failure, item: _FeedItem, page: FetchRecord) -> tuple[Item, FetchRecord]:
    """The article from the feed's own full text when the page fails, else the failure, recorded.

    A page that was read before keeps the entry it was read with, so a changed entry is asked
    for again next time; a page never read keeps this one, to be asked for when its feed is a 304.
    """
    if item.entry is not None:
        text = _entry_text(item.entry)
        if text:
            article = Article(
                doc_id=canonical_url(item.link),
                text=text,
                url=item.link,
                origin=item.origin,
                source_path=item.link,
            )
            return _with_feed_metadata(article, item, page), page
    if not page.last_success:
        page.entry, page.entry_hash = item.meta, item.entry_hash
    page.failed(failure.reason)
    return failure, page


def _entry_meta(entry: Any, feed_title: str) -> dict[str, str]:
    outlet = entry.get("source", {}).get("title") if isinstance(entry.get("source"), dict) else None
    return {
        "title": entry.get("title") or "",
        "author": entry.get("author") or "",
        "published": _entry_date(entry),
        "source": outlet or feed_title,  # an item's <source> names its outlet (news aggregators)
    }


def _entry_hash(entry: Any) -> str:
    """What a feed says about an item's version: a changed hash means the page may have changed."""
    # dict.get: feedparser's own get maps a missing "updated" to "published", with a warning.
    parts = [dict.get(entry, k) or "" for k in ("id", "link", "updated", "published", "title", "summary")]
    parts += [c.get("value", "") for c in entry.get("content", [])]
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode()).hexdigest()[:32]


def _entry_text(entry: Any) -> str | None:
    """A feed entry's own full text (``content:encoded``), when it carries the whole article."""
    import trafilatura

    content = " ".join(c.get("value", "") for c in entry.get("content", []))
    text = trafilatura.extract(content) if content else None
    return text if text and len(text) >= 200 else None


def _entry_date(entry: Any) -> str:
    parsed = entry.get("published_parsed") or entry.get("updated_parsed")
    if parsed:
        return f"{parsed.tm_year:04d}-{parsed.tm_mon:02d}-{parsed.tm_mday:02d}"
    return entry.get("published") or entry.get("updated") or ""
