"""The article record every loader produces, with its normalised text and content hash."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from qa_bot.schema import ArticleMeta, published_ts


@dataclass
class Failure:
    """One source that could not be ingested, and why."""

    source: str
    reason: str
    # The file or URL this failure belongs to (a JSON line's failure names its dump file).
    path: str = ""

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}"


@dataclass(frozen=True, eq=True)
class Article:
    """One article, frozen: a changed article is a new one (:meth:`with_feed_metadata`,
    ``dataclasses.replace``), so its normalised fields and content hash always match."""

    doc_id: str
    text: str
    title: str = ""
    source: str = ""
    url: str = ""
    published: str = ""  # ISO date, YYYY-MM-DD, or "" when unknown
    author: str = ""
    origin: str = ""  # the source argument it was ingested through (prune scope)
    source_path: str = ""  # the file or URL it was read from
    extra: dict[str, Any] = field(default_factory=dict)

    # Hash of the normalised text and the metadata a reader sees; not of where it came from.
    # Computed once, here, not per chunk: a 15 MB text took 0.2 s a hash.
    content_hash: str = field(init=False, default="")

    def __post_init__(self) -> None:
        # The one place a frozen Article's fields are set after __init__: their normal form.
        set_field = object.__setattr__
        set_field(self, "text", normalise_text(self.text))
        set_field(self, "title", " ".join(self.title.split()))
        set_field(self, "published", normalise_date(self.published))
        payload = json.dumps(
            [self.text, self.title, self.source, self.url, self.published, self.author], ensure_ascii=False
        )
        set_field(self, "content_hash", hashlib.sha256(payload.encode("utf-8")).hexdigest())

    def with_feed_metadata(self, meta: Mapping[str, str]) -> Article:
        """A new article with a feed's word on its title, author, date and outlet: the publisher's
        word on the item wins over what extraction found, where the feed says anything."""
        changes = {
            key: value
            for key, value in meta.items()
            # The outlet is the page's own word when it names itself: an aggregator's feed carries
            # many outlets under one title, and a wire copy must be told from its original.
            if value and not (key == "source" and self.extra.get("site_name"))
        }
        # replace() runs __post_init__ again: the new fields normalised, the hash of the new article.
        return replace(self, extra=dict(self.extra), **changes)

    @property
    def meta(self) -> ArticleMeta:
        """Its metadata as the archive records it (everything but the text and ``extra``)."""
        return ArticleMeta(**{f.name: getattr(self, f.name) for f in fields(ArticleMeta)})

    @property
    def published_ts(self) -> int | None:
        return published_ts(self.published)


_SPACES = re.compile(r"[ \t\f\v\u00a0\u2000-\u200b\u3000]+")
_BLANKS = re.compile(r"\n{3,}")


def normalise_text(text: str) -> str:
    """NFC, Unix newlines, single spaces, at most one blank line: the form chunks index into."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip()


def normalise_date(value: Any) -> str:
    """Any date-like value to ISO ``YYYY-MM-DD``; "" when absent or unparseable."""
    if value in (None, ""):
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, tz=UTC).date().isoformat()
    text = str(value).strip()
    try:
        return date.fromisoformat(text[:10]).isoformat()
    except ValueError:
        pass
    try:
        from dateutil import parser

        return parser.parse(text, fuzzy=True).date().isoformat()
    except (ValueError, OverflowError, ImportError):
        return ""


_TRACKING = ("utm_", "fbclid", "gclid", "mc_cid", "mc_eid")


def canonical_url(url: str) -> str:
    """Lower-case scheme and host, no fragment, no tracking parameters, no trailing slash."""
    parts = urlsplit(url.strip())
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if not k.lower().startswith(_TRACKING)])
    path = parts.path.rstrip("/") or "/"
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, query, ""))


def title_from_text(text: str, limit: int = 120) -> str:
    """The first non-empty line, shortened at a word boundary."""
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    first = first.lstrip("#").strip()
    if len(first) <= limit:
        return first
    return first[:limit].rsplit(" ", 1)[0] + "…"
