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

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from ingest.articles import Article, Failure, canonical_url, title_from_text
from ingest.web import FetchError, fetch
from qa_bot.settings import IngestSettings

TEXT_TYPES = {".txt", ".md", ".markdown"}
HTML_TYPES = {".html", ".htm"}
DUMP_TYPES = {".json", ".jsonl"}
SUPPORTED = sorted(TEXT_TYPES | HTML_TYPES | DUMP_TYPES | {".pdf"})
FEED_SUFFIXES = (".xml", ".rss", ".atom", "/feed", "/rss", "/atom")

Item = Article | Failure


def is_url(source: str) -> bool:
    return urlsplit(source).scheme in ("http", "https")


def origin_of(source: str) -> str:
    """The stable key a source argument is recorded under (prune scope)."""
    return source if is_url(source) else str(Path(source).expanduser().resolve())


def load_sources(sources: list[str], settings: IngestSettings) -> Iterator[Item]:
    for source in sources:
        origin = origin_of(source)
        if is_url(source):
            yield from load_url(source, settings, origin)
            continue
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
        elif path.is_file():
            yield from load_file(path, path.name, settings, origin)
        else:
            yield Failure(source, "no such file or folder")


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
    site = found.get("sitename") or found.get("source-hostname") or found.get("hostname")
    for key, value in (
        ("title", found.get("title")),
        ("author", found.get("author")),
        ("published", found.get("date")),
        ("url", url),
        ("source", site),
    ):
        if value:
            record[key] = value
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


def load_url(url: str, settings: IngestSettings, origin: str) -> Iterator[Item]:
    try:
        body, content_type = fetch(url, settings)
    except FetchError as exc:
        yield Failure(url, str(exc))
        return
    kind = _kind(url, content_type, body)
    if kind == "feed":
        yield from _load_feed(url, body, settings, origin)
        return
    base = {"origin": origin, "source_path": url, "source": urlsplit(url).hostname or "", "url": url}
    yield from parse_bytes(body, kind, url, default_id=canonical_url(url), base=base)


def _load_feed(url: str, body: bytes, settings: IngestSettings, origin: str) -> Iterator[Item]:
    import feedparser

    feed = feedparser.parse(body)
    if feed.bozo and not feed.entries:
        yield Failure(url, f"not a valid RSS/Atom feed: {feed.get('bozo_exception') or 'no items'}")
        return
    feed_title = feed.feed.get("title") or urlsplit(url).hostname or ""
    for entry in feed.entries:
        yield _load_entry(entry, feed_title, settings, origin)


def _load_entry(entry: Any, feed_title: str, settings: IngestSettings, origin: str) -> Item:
    link = entry.get("link") or ""
    item_meta = {
        "title": entry.get("title") or "",
        "author": entry.get("author") or "",
        "published": _entry_date(entry),
        "source": feed_title,
    }
    if not is_url(link):
        return Failure(f"feed item {item_meta['title']!r} of {origin}", "the item has no http(s) link")
    items = list(load_url(link, settings, origin))
    article = items[0] if items else Failure(link, "nothing found at the link")
    if isinstance(article, Failure):
        return _entry_fallback(entry, link, item_meta, origin) or article
    # The feed's own metadata is the publisher's word on the item; it wins over extraction.
    for key, value in item_meta.items():
        if value:
            setattr(article, key, value)
    article.__post_init__()
    return article


def _entry_fallback(entry: Any, link: str, meta: dict[str, Any], origin: str) -> Article | None:
    """When the page cannot be fetched, a feed that carries the full text still gives the article."""
    import trafilatura

    content = " ".join(c.get("value", "") for c in entry.get("content", []))
    text = trafilatura.extract(content) if content else None
    if not text or len(text) < 200:
        return None
    return Article(doc_id=canonical_url(link), text=text, url=link, origin=origin, source_path=link, **meta)


def _entry_date(entry: Any) -> str:
    parsed = entry.get("published_parsed") or entry.get("updated_parsed")
    if parsed:
        return f"{parsed.tm_year:04d}-{parsed.tm_mon:02d}-{parsed.tm_mday:02d}"
    return entry.get("published") or entry.get("updated") or ""
