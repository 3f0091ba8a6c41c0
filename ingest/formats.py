"""The document formats ingest reads, in one registry: a file's suffix, or a fetched URL's content
type, picks the format whose parser turns the bytes into articles.

Usage::

    from ingest.formats import SUPPORTED, parse_bytes, REGISTRY
    SUPPORTED                                   # ['.htm', '.html', '.json', ...]: every file suffix read
    for item in parse_bytes(data, ".md", "notes/a.md", default_id="a.md", base={"origin": ...}):
        ...                                     # an Article, or a Failure naming where and why
    REGISTRY.suffix_for("/report.pdf", "application/octet-stream")  # '.pdf'; None: no format claims it

A new format: add one :class:`Format` to ``FORMATS`` (below). ``SUPPORTED``, the suffix lookup of
``parse_bytes`` and the content types a fetched body is known by all come from that tuple.

Extraction is left to libraries that do it well: trafilatura (the main text and metadata of an
HTML page), pypdf (PDF text), PyYAML (Markdown front matter). Before a parse, a format's cheap
estimate of the document's size (``Format.estimate``) refuses what is far too long to be one article
(``max_words``) or, for HTML, too costly to extract (``MAX_HTML_TAGS``), in under a second.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml

from ingest.articles import Article, Failure, canonical_url, title_from_text
from ingest.items import is_url
from qa_bot.settings import ChunkingSettings, IngestSettings

Parsed = Article | Failure
# (data, suffix, where, default_id, base): the bytes of one document, the suffix it is read as, where it
# came from (for messages), the id an article gets when its record names none, and the fields every
# article of the document starts from (origin, source_path, source, url).
Parser = Callable[[bytes, str, str, str, dict[str, str]], Iterator[Parsed]]


@dataclass(frozen=True)
class Format:
    """One document format: the file suffixes it is read from and the parser that reads it."""

    name: str
    suffixes: tuple[str, ...]  # lower case, with the dot; a fetched body's default is the first
    parse: Parser
    # A fetched body is this format when its Content-Type contains one of these ...
    content_types: tuple[str, ...] = ()
    # ... or its URL's path ends with one of these, whatever the server says it is.
    url_suffixes: tuple[str, ...] = ()
    # A cheap upper estimate of the document's size, read before the parse: a document whose parse
    # would take minutes and gigabytes is refused without it (see Registry.parse).
    estimate: Callable[[bytes], Extent] | None = None


@dataclass(frozen=True)
class Extent:
    """How big a document is, estimated without parsing it: an upper estimate of the words of its one
    article, and (HTML) the tags that an extractor's time and memory grow with."""

    words: int
    tags: int = 0


class Registry:
    """Formats by file suffix and by content type, derived from one ordered tuple of formats."""

    def __init__(self, formats: Iterable[Format], fallback: str) -> None:
        self.formats = tuple(formats)
        self.by_suffix: dict[str, Format] = {}
        for fmt in self.formats:
            for suffix in fmt.suffixes:
                if suffix in self.by_suffix:
                    raise ValueError(f"{suffix} is both {self.by_suffix[suffix].name} and {fmt.name}")
                self.by_suffix[suffix] = fmt
        self.supported = sorted(self.by_suffix)
        # The suffix a fetched body is read as when no format claims it (a web page, most often).
        self.fallback = fallback

    def with_format(self, fmt: Format) -> Registry:
        """This registry and one more format (claiming content types after those already here)."""
        return Registry((*self.formats, fmt), self.fallback)

    def suffix_for(self, path: str, content_type: str) -> str | None:
        """The suffix a fetched body is read as, by its content type or its URL's path (lower case);
        None when no format claims it. The first format that claims it wins, in registry order."""
        for fmt in self.formats:
            if any(t in content_type for t in fmt.content_types) or path.endswith(fmt.url_suffixes):
                # the path's own suffix when it is one of the format's: .jsonl and .json read differently
                return next((s for s in fmt.suffixes if path.endswith(s)), fmt.suffixes[0])
        return None

    def unsupported(self, name: str) -> str:
        """Why a file of this suffix (or name, when it has none) is not read."""
        return f"unsupported file type '{name}'; supported: {', '.join(self.supported)}"

    def parse(
        self,
        data: bytes,
        suffix: str,
        where: str,
        default_id: str,
        base: dict[str, str],
        max_words: int | None = None,
    ) -> Iterator[Parsed]:
        """Parse one document's bytes by their suffix; shared by files and fetched URLs. ``max_words``:
        a document estimated to have more words than this is refused before it is parsed."""
        if not data.strip():
            yield Failure(where, "empty file" if not is_url(where) else "empty response")
            return
        fmt = self.by_suffix.get(suffix)
        if fmt is None:
            yield Failure(where, self.unsupported(suffix))
            return
        refused = _too_big(fmt, data, max_words)
        if refused is not None:
            yield Failure(where, refused)
            return
        yield from fmt.parse(data, suffix, where, default_id, base)


# Tags of HTML read at most (about 30,000 elements; a news page has a few thousand). trafilatura's time
# and memory grow with a page's elements faster than linearly, whatever its size in bytes: on a 2-core
# EPYC, 25,000 elements took 3.1 s, 50,000 6.6 s, 100,000 17 s and 0.5 GB, 200,000 30 s and 1.6 GB.
# With this many tags and a million words (the most the word limit lets by) an ingest took 9.6 s.
MAX_HTML_TAGS = 60_000


def _too_big(fmt: Format, data: bytes, max_words: int | None) -> str | None:
    """Why a document is refused before its parse (far too long to be one article, or too costly to
    parse); None when it may be parsed. The pipeline still counts the words and chunks it extracts."""
    if fmt.estimate is None:
        return None
    extent = fmt.estimate(data)
    size = f"{len(data) / 1048576:.1f} MB"
    if max_words is not None and extent.words > max_words:
        return (
            f"too big: about {extent.words:,} words of text in {size}, over the {max_words:,} words that "
            "ingest.max_chunks_per_article chunks can hold; refused before extraction"
        )
    if extent.tags > MAX_HTML_TAGS:
        return (
            f"too big: about {extent.tags:,} HTML tags in {size}, over the {MAX_HTML_TAGS:,} a page is read "
            "with (its extraction would take minutes and gigabytes); refused before extraction"
        )
    return None


# ---------------------------------------------------------------- parsers


def _decoded(parse: Callable[[str, str, str, str, dict[str, str]], Iterator[Parsed]]) -> Parser:
    """A parser of text made a parser of bytes: UTF-8 (with or without a BOM), else a Failure."""

    def parse_data(data: bytes, suffix: str, where: str, default_id: str, base: dict[str, str]) -> Iterator[Parsed]:
        text = _decode(data, where)
        if isinstance(text, Failure):
            yield text
        else:
            yield from parse(text, suffix, where, default_id, base)

    return parse_data


def _decode(data: bytes, where: str) -> str | Failure:
    if b"\x00" in data[:8192]:
        return Failure(where, "binary file, not text (it contains NUL bytes)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        bad = data[exc.start : exc.start + 1].hex()
        return Failure(where, f"not valid UTF-8 text: byte 0x{bad} at offset {exc.start} cannot be decoded")


@_decoded
def _parse_text(text: str, suffix: str, where: str, default_id: str, base: dict[str, str]) -> Iterator[Parsed]:
    split = _front_matter(text.replace("\r\n", "\n"))
    if isinstance(split, str):
        yield Failure(where, split)
        return
    meta, body = split
    if not body.strip():
        yield Failure(where, "empty file" if not meta else "no text after the front matter")
        return
    record = {**base, **meta}
    record.setdefault("title", title_from_text(body))
    yield _article(record, body, default_id, where)


# A header of a few fields needs little room; the cap keeps PyYAML (pure Python, about 1 MB/s) from
# spending a minute on a file that is all "front matter".
MAX_FRONT_MATTER = 64 * 1024
_CLOSING = re.compile(r"^(?:---|\.\.\.)[ \t]*$", re.MULTILINE)
# The values an article's record takes from front matter; a list or mapping (tags: [a, b]) is not one
# of them, and its str() could be the billion laughs of YAML aliases.
_SCALARS = (str, int, float, date, datetime)


def _front_matter(text: str) -> tuple[dict[str, Any], str] | str:
    """Optional YAML front matter (``---`` ... ``---``) with title, source, url, published, author:
    (its fields, the body), or why it cannot be read. A text whose first line is ``---`` begins with
    front matter; if that is not a valid YAML mapping the file fails, rather than be stored whole
    under the title ``---``."""
    if not re.match(r"---[ \t]*\n", text):
        return {}, text
    start = text.index("\n") + 1
    closing = _CLOSING.search(text, start)
    if closing is None:
        return "front matter opened by '---' on line 1 is never closed by a '---' line"
    if closing.start() - start > MAX_FRONT_MATTER:
        return f"front matter is over {MAX_FRONT_MATTER // 1024} KB, too long for a header of fields"
    try:
        meta = yaml.safe_load(text[start : closing.start()])
    except yaml.YAMLError as exc:
        return f"front matter is not valid YAML ({_yaml_error(exc)})"
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        what = {"str": "plain text", "list": "a list"}.get(type(meta).__name__, f"a {type(meta).__name__}")
        return f"front matter is not a mapping of fields (title: ..., published: ...) but {what}"
    fields = {str(k): v for k, v in meta.items() if isinstance(v, _SCALARS) and v != ""}
    return fields, text[closing.end() :].lstrip("\n")


def _yaml_error(exc: yaml.YAMLError) -> str:
    """A YAML error as "line N: problem", lines counted in the file (front matter begins on line 2),
    with where the construct it broke began when that is another line (an unclosed quote)."""
    if not isinstance(exc, yaml.MarkedYAMLError) or exc.problem_mark is None:
        return str(exc)
    line = exc.problem_mark.line + 2
    said = f"line {line}: {exc.problem or 'invalid YAML'}"
    if exc.context and exc.context_mark is not None and exc.context_mark.line + 2 != line:
        said += f", {exc.context} from line {exc.context_mark.line + 2}"
    return said


_HOSTNAME = re.compile(r"[\w-]+(\.[\w-]+)+")


@_decoded
def _parse_html(html: str, suffix: str, where: str, default_id: str, base: dict[str, str]) -> Iterator[Parsed]:
    import trafilatura

    # trafilatura logs its own ERROR lines without saying which input they are about; the
    # Failure below names the input, so its log stays quiet.
    logging.getLogger("trafilatura").setLevel(logging.CRITICAL)

    try:
        extracted = trafilatura.extract(html, output_format="json", with_metadata=True, favor_precision=True)
    except Exception as exc:  # noqa: BLE001 - trafilatura raises assorted parser errors on broken markup
        yield Failure(where, f"cannot parse HTML: {exc}")
        return
    found = json.loads(extracted) if extracted else {}
    text = found.get("text") or ""
    if not text.strip():
        yield Failure(where, "no article text found in the HTML page")
        return
    record = {**base, **_page_metadata(found, where)}
    title = str(record.get("title", ""))
    if title and text.startswith(title + "\n"):
        text = text[len(title) + 1 :]  # the headline is the title, not the first sentence
    record.setdefault("title", title_from_text(text))
    doc_id = canonical_url(record["url"]) if record.get("url") else default_id
    yield _article(record, text, doc_id, where)


# What a reader never sees: a comment, and the content of a script, style and the like. Each runs to
# its closer or, unclosed, to the end of the page (as in a browser), so one pass of it is linear.
_UNSEEN = re.compile(
    r"<!--.*?(?:-->|\Z)|<(script|style|noscript|template|svg|math)\b.*?(?:</\1\s*>|\Z)", re.IGNORECASE | re.DOTALL
)
# A tag ends at the next ">"; stopping at the next "<" too keeps a page of stray "<" linear.
_TAG = re.compile(r"<[^<>]*>")


def _html_extent(data: bytes) -> Extent:
    """An upper estimate of the words of text in an HTML page (its text outside tags, scripts, styles
    and comments) and of its tags there: three linear passes in C, no parse (a 20 MB page in 0.4 s)."""
    seen = _UNSEEN.sub(" ", data.decode("utf-8", "replace"))
    text, tags = _TAG.subn(" ", seen)
    return Extent(_count_words(text), tags)


def _text_extent(data: bytes) -> Extent:
    return Extent(_count_words(data))


def _count_words(text: str | bytes) -> int:
    """Whitespace-separated words, split a slice at a time so 3 million words are never one list (a
    word cut by a slice's edge counts twice: the count stays an upper estimate)."""
    step = 1 << 20
    return sum(len(text[i : i + step].split()) for i in range(0, len(text), step))


def _page_metadata(found: dict[str, Any], where: str) -> dict[str, str]:
    """The fields trafilatura found on a page, under the names an article's record uses."""
    # trafilatura's JSON names the canonical URL "source" and the site "source-hostname".
    url = found.get("source") or found.get("url") or (where if is_url(where) else "")
    # The page's own name for its outlet (og:site_name, or the title's "… | Daily Planet"): trafilatura
    # reports it as "source-hostname", or there the host of the canonical URL when it found no name.
    named = found.get("sitename") or found.get("source-hostname")
    declared = named if named and not _HOSTNAME.fullmatch(named) else None
    site = named or found.get("hostname")
    fields = {
        "title": found.get("title"),
        "author": found.get("author"),
        "published": found.get("date"),
        "url": url,
        "source": site,
        "site_name": declared,
    }
    return {key: value for key, value in fields.items() if value}


def _parse_pdf(data: bytes, suffix: str, where: str, default_id: str, base: dict[str, str]) -> Iterator[Parsed]:
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


@_decoded
def _parse_dump(text: str, suffix: str, where: str, default_id: str, base: dict[str, str]) -> Iterator[Parsed]:
    """Article dumps: JSON Lines, or a JSON list (or ``{"articles": [...]}``) of records."""
    if suffix == ".jsonl":
        yield from _parse_lines(text, where, base)
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


def _parse_lines(text: str, where: str, base: dict[str, str]) -> Iterator[Parsed]:
    """JSON Lines: one record a line, each line on its own (a malformed one fails alone)."""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield Failure(f"{where} line {number}", f"malformed JSON: {exc.msg} at column {exc.colno}", where)
            continue
        yield _record(record, f"{where} line {number}", f"{Path(where).name}#{number}", base, where)


def _record(record: Any, where: str, fallback_id: str, base: dict[str, str], path: str) -> Parsed:
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


def _article(record: dict[str, Any], text: str, doc_id: str, where: str) -> Parsed:
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


# ---------------------------------------------------------------- the registry

# A new format: add one Format here. The order matters only to a fetched body, which is read as the
# first format that claims its content type or URL path (a PDF served as text/plain is still a PDF).
FORMATS: tuple[Format, ...] = (
    Format("pdf", (".pdf",), _parse_pdf, content_types=("pdf",), url_suffixes=(".pdf",)),
    # JSON is claimed by its content type alone (as before the registry); the path then tells .jsonl from .json.
    Format("dump", (".json", ".jsonl"), _parse_dump, content_types=("json",)),
    Format(
        "text",
        (".txt", ".md", ".markdown"),
        _parse_text,
        content_types=("text/plain",),
        url_suffixes=(".txt", ".md"),
        estimate=_text_extent,
    ),
    # HTML claims no content type: it is the fallback, read only after ingest.feeds has looked for
    # an XML feed in a body no format claims (a feed served as text/html is still a feed).
    Format("html", (".html", ".htm"), _parse_html, estimate=_html_extent),
)

REGISTRY = Registry(FORMATS, fallback=".html")
SUPPORTED = REGISTRY.supported


def parse_bytes(
    data: bytes, suffix: str, where: str, default_id: str, base: dict[str, str], max_words: int | None = None
) -> Iterator[Parsed]:
    """Parse one document's bytes by type; shared by files and fetched URLs."""
    return REGISTRY.parse(data, suffix, where, default_id, base, max_words)


def max_words(settings: IngestSettings) -> int:
    """The most words an article can have and still fit in ``ingest.max_chunks_per_article`` chunks,
    whatever the chunk size: every word is at least one token, and no chunk holds more tokens than the
    largest ``chunking.max_tokens`` allowed. A file estimated over it is refused before it is parsed
    (extracting a 20 MB page of text took 33 s and 0.7 GB before the pipeline's exact count refused it)."""
    field = ChunkingSettings.model_fields["max_tokens"]
    largest = next((m.le for m in field.metadata if isinstance(getattr(m, "le", None), int)), 512)
    return settings.max_chunks_per_article * largest
