"""Turn source arguments (files, folders, article URLs, feed URLs) into articles.

Usage::

    from ingest.loaders import load_sources
    for item in load_sources(["data/articles", "https://example.com/feed.xml"], settings.ingest):
        ...  # an Article, or a Failure naming its source and the reason

Each file, JSON line, URL and feed item is loaded on its own: whatever goes wrong with one
becomes a :class:`Failure` and the rest are still loaded. Extraction is left to libraries
that do it well: trafilatura (the main text and metadata of an HTML page), feedparser
(RSS/Atom), pypdf.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from ingest.articles import Article, Failure, canonical_url, title_from_text
from ingest.web import Fetcher, FetchError, Response, TooLateError
from qa_bot.settings import IngestSettings
from qa_bot.sources import FetchLog, FetchRecord, Kind, now

TEXT_TYPES = {".txt", ".md", ".markdown"}
HTML_TYPES = {".html", ".htm"}
DUMP_TYPES = {".json", ".jsonl"}
SUPPORTED = sorted(TEXT_TYPES | HTML_TYPES | DUMP_TYPES | {".pdf"})
FEED_SUFFIXES = (".xml", ".rss", ".atom", "/feed", "/rss", "/atom")


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


def origin_of(source: str) -> str:
    """The stable key a source argument is recorded under (prune scope)."""
    return source if is_url(source) else str(Path(source).expanduser().resolve())


def load_sources(
    sources: list[str],
    settings: IngestSettings,
    fetcher: Fetcher | None = None,
    memory: FetchMemory | None = None,
) -> Iterator[Item]:
    """Every article of every source, in order; URL sources and feed items are fetched concurrently."""
    memory = memory or FetchMemory()
    own = fetcher is None
    fetcher = fetcher or Fetcher(settings)
    try:
        # Every URL source's first request at once; their articles still come in the given order.
        urls = list(dict.fromkeys(s for s in sources if is_url(s)))
        known = memory.records(urls, "source")
        heads = {url: fetcher.submit(_fetch_head, fetcher, url, known.get(url)) for url in urls}
        for source in sources:
            if source in heads:
                record = known.get(source) or FetchRecord(source, kind="source")
                yield from _load_head(source, record, heads.pop(source).result(), fetcher, memory)
            elif not is_url(source):
                yield from _load_path(source, settings, memory)
    finally:
        if own:
            fetcher.close()


def _load_path(source: str, settings: IngestSettings, memory: FetchMemory) -> Iterator[Item]:
    origin = origin_of(source)
    record = memory.records([origin], "source").get(origin) or FetchRecord(origin, kind="source")
    path = Path(source).expanduser()
    if path.is_dir():
        for file in sorted(path.rglob("*")):
            rel = file.relative_to(path)
            if any(part.startswith(".") for part in rel.parts):
                continue  # hidden files and folders (.git, .DS_Store) are not articles
            if file.is_symlink() and not file.exists():
                yield Failure(str(file), "a link that leads nowhere (a link loop, or its target is gone)")
            elif file.is_file():
                yield from load_file(file, rel.as_posix(), settings, origin)
        record.succeeded()
    elif path.is_file():
        items = list(load_file(path, path.name, settings, origin))
        failures = [i for i in items if isinstance(i, Failure)]
        if items and len(failures) == len(items):  # a file whose every article failed has failed
            record.failed(failures[0].reason)
        else:
            record.succeeded()
        yield from items
    else:
        record.failed("no such file or folder")
        yield Failure(source, "no such file or folder")
    memory.note(record)


# ---------------------------------------------------------------- files


def load_file(path: Path, rel: str, settings: IngestSettings, origin: str) -> Iterator[Item]:
    suffix = path.suffix.lower()
    where = str(path)
    if suffix not in SUPPORTED:
        yield Failure(where, f"unsupported file type '{suffix or path.name}'; supported: {', '.join(SUPPORTED)}")
        return
    size = path.stat().st_size
    limit = int(settings.max_file_mb * 1024 * 1024)
    if size > limit:
        mb = size / 1048576
        yield Failure(where, f"file is {mb:.1f} MB, over the limit ingest.max_file_mb = {settings.max_file_mb:g}")
        return
    try:
        data = path.read_bytes()
    except OSError as exc:
        yield Failure(where, f"cannot read file: {exc.strerror or exc}")
        return
    base = {"origin": origin, "source_path": where, "source": path.parent.name}
    yield from parse_bytes(data, suffix, where, default_id=rel, base=base)


def parse_bytes(data: bytes, suffix: str, where: str, default_id: str, base: dict[str, str]) -> Iterator[Item]:
    """Parse one document's bytes by type; shared by files and fetched URLs."""
    if not data.strip():
        yield Failure(where, "empty file" if not is_url(where) else "empty response")
        return
    if suffix == ".pdf":
        yield from _parse_pdf(data, where, default_id, base)
        return
    text = _decode(data, where)
    if isinstance(text, Failure):
        yield text
    elif suffix in HTML_TYPES:
        yield _parse_html(text, where, default_id, base)
    elif suffix in DUMP_TYPES:
        yield from _parse_dump(text, suffix, where, base)
    else:
        yield _parse_text(text, where, default_id, base)


def _decode(data: bytes, where: str) -> str | Failure:
    if b"\x00" in data[:8192]:
        return Failure(where, "binary file, not text (it contains NUL bytes)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        bad = data[exc.start : exc.start + 1].hex()
        return Failure(where, f"not valid UTF-8 text: byte 0x{bad} at offset {exc.start} cannot be decoded")


def _parse_text(text: str, where: str, default_id: str, base: dict[str, str]) -> Item:
    meta, body = _front_matter(text)
    if not body.strip():
        return Failure(where, "empty file" if not meta else "no text after the front matter")
    record = {**base, **{k: v for k, v in meta.items() if v not in (None, "")}}
    record.setdefault("title", title_from_text(body))
    return _article(record, body, default_id, where)


def _front_matter(text: str) -> tuple[dict[str, Any], str]:
    """Optional YAML front matter (``---`` ... ``---``) with title, source, url, published, author."""
    if not text.startswith("---\n"):
        return {}, text
    end = text.find("\n---", 4)
    if end < 0:
        return {}, text
    try:
        meta = yaml.safe_load(text[4:end])
    except yaml.YAMLError:
        return {}, text
    if not isinstance(meta, dict):
        return {}, text
    return {str(k): v for k, v in meta.items()}, text[end + 4 :].lstrip("-\n")


def _parse_html(html: str, where: str, default_id: str, base: dict[str, str]) -> Item:
    import trafilatura

    # trafilatura logs its own ERROR lines without saying which input they are about; the
    # Failure below names the input, so its log stays quiet.
    logging.getLogger("trafilatura").setLevel(logging.CRITICAL)

    try:
        extracted = trafilatura.extract(html, output_format="json", with_metadata=True, favor_precision=True)
    except Exception as exc:  # noqa: BLE001 - trafilatura raises assorted parser errors on broken markup
        return Failure(where, f"cannot parse HTML: {exc}")
    if not extracted:
        return Failure(where, "no article text found in the HTML page")
    found = json.loads(extracted)
    text = found.get("text") or ""
    if not text.strip():
        return Failure(where, "no article text found in the HTML page")
    record = dict(base)
    # trafilatura's JSON names the canonical URL "source" and the site "source-hostname".
    url = found.get("source") or found.get("url") or (where if is_url(where) else "")
    # The page's own name for its outlet (og:site_name, or the title's "… | Daily Planet"): trafilatura
    # reports it as "source-hostname", or there the host of the canonical URL when it found no name.
    named = found.get("sitename") or found.get("source-hostname")
    declared = named if named and not _HOSTNAME.fullmatch(named) else None
    site = named or found.get("hostname")
    for key, value in (
        ("title", found.get("title")),
        ("author", found.get("author")),
        ("published", found.get("date")),
        ("url", url),
        ("source", site),
    ):
        if value:
            record[key] = value
    if declared:
        record["site_name"] = declared
    title = str(record.get("title", ""))
    if title and text.startswith(title + "\n"):
        text = text[len(title) + 1 :]  # the headline is the title, not the first sentence
    record.setdefault("title", title_from_text(text))
    doc_id = canonical_url(record["url"]) if record.get("url") else default_id
    return _article(record, text, doc_id, where)


def _parse_pdf(data: bytes, where: str, default_id: str, base: dict[str, str]) -> Iterator[Item]:
    import io

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        text = "\n\n".join(page.extract_text() or "" for page in reader.pages)
        info: Any = reader.metadata or {}
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        yield Failure(where, f"not a readable PDF: {exc}")
        return
    if not text.strip():
        yield Failure(where, "the PDF has no extractable text (a scan without a text layer?)")
        return
    record = dict(base)
    record["title"] = str(info.get("/Title") or "") or title_from_text(text)
    if info.get("/Author"):
        record["author"] = str(info["/Author"])
    yield _article(record, text, default_id, where)


def _parse_dump(text: str, suffix: str, where: str, base: dict[str, str]) -> Iterator[Item]:
    """Article dumps: JSON Lines, or a JSON list (or ``{"articles": [...]}``) of records."""
    if suffix == ".jsonl":
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                yield Failure(f"{where} line {number}", f"malformed JSON: {exc.msg} at column {exc.colno}", where)
                continue
            yield _record(record, f"{where} line {number}", f"{Path(where).name}#{number}", base, where)
        return
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        yield Failure(where, f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
        return
    records = data.get("articles", [data]) if isinstance(data, dict) else data
    if not isinstance(records, list):
        yield Failure(where, "expected an article object or a list of article objects")
        return
    for number, record in enumerate(records, start=1):
        yield _record(record, f"{where} item {number}", f"{Path(where).name}#{number}", base, where)


def _record(record: Any, where: str, fallback_id: str, base: dict[str, str], path: str) -> Item:
    if not isinstance(record, dict):
        return Failure(where, f"expected a JSON object, got {type(record).__name__}", path)
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        return Failure(where, "the record has no 'text'", path)
    given = record.get("doc_id") or record.get("id")
    url = record.get("url") or ""
    doc_id = str(given) if given not in (None, "") else (canonical_url(url) if url else fallback_id)
    merged = dict(base)
    for key in ("title", "source", "url", "published", "author"):
        if record.get(key) not in (None, ""):
            merged[key] = str(record[key])
    return _article(merged, text, doc_id, where)


def _article(record: dict[str, Any], text: str, doc_id: str, where: str) -> Item:
    try:
        return Article(
            doc_id=str(record.get("doc_id") or doc_id),
            text=text,
            title=str(record.get("title") or ""),
            source=str(record.get("source") or ""),
            url=str(record.get("url") or ""),
            published=str(record.get("published") or ""),
            author=str(record.get("author") or ""),
            origin=record.get("origin", ""),
            source_path=record.get("source_path", ""),
            extra={"site_name": str(record["site_name"])} if record.get("site_name") else {},
        )
    except ValueError as exc:
        return Failure(where, f"invalid article: {exc}")


# ---------------------------------------------------------------- URLs and feeds


def _kind(url: str, content_type: str, body: bytes) -> str:
    path = urlsplit(url).path.lower()
    if any(t in content_type for t in ("rss", "atom", "xml")) or path.endswith(FEED_SUFFIXES):
        return "feed"
    if "pdf" in content_type or path.endswith(".pdf"):
        return ".pdf"
    if "json" in content_type:
        return ".jsonl" if path.endswith(".jsonl") else ".json"
    if "text/plain" in content_type or path.endswith((".txt", ".md")):
        return ".txt"
    if body.lstrip()[:5] == b"<?xml":
        return "feed"
    return ".html"


def _body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _fetch_head(fetcher: Fetcher, url: str, record: FetchRecord | None) -> Response | FetchError:
    try:
        if record is None or not record.last_success:
            return fetcher.get(url)
        return fetcher.get(url, record.etag, record.last_modified)
    except FetchError as exc:
        return exc


def _load_head(
    url: str, record: FetchRecord, got: Response | FetchError, fetcher: Fetcher, memory: FetchMemory
) -> Iterator[Item]:
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
            got = _fetch_head(fetcher, url, None)
            if isinstance(got, FetchError):
                yield from _load_head(url, record, got, fetcher, memory)
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
        items = list(parse_bytes(got.body, kind, url, default_id=canonical_url(url), base=base))
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
_HOSTNAME = re.compile(r"[\w-]+(\.[\w-]+)+")


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
    items = list(parse_bytes(got.body, kind, link, default_id=canonical_url(link), base=base))
    article = items[0] if items and not isinstance(items[0], Unchanged) else Failure(link, "nothing found at the link")
    if isinstance(article, Failure):
        return _entry_fallback_or(article, item, page)
    return _with_feed_metadata(article, item, page), page


def _with_feed_metadata(article: Article, item: _FeedItem, page: FetchRecord) -> Article:
    """The article with the feed's metadata (the publisher's word on the item wins over extraction),
    and the page's record brought up to this entry."""
    for key, value in item.meta.items():
        # The outlet is the page's own word when it names itself: an aggregator's feed carries
        # many outlets under one title, and a wire copy must be told from its original.
        if value and not (key == "source" and article.extra.get("site_name")):
            setattr(article, key, value)
    article.__post_init__()
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
