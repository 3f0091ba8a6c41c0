"""The dataclasses the read path returns: passages, citations, answers, filters."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, is_dataclass
from datetime import date
from typing import Any

from qa_bot.schema import ArticleMeta, ChunkMeta
from qa_bot.timeframe import long_date, parse_day


@dataclass
class FurtherSource:
    """Another outlet that ran the same story (a wire copy grouped at ingest, not indexed)."""

    source: str
    title: str
    url: str


@dataclass
class Passage:
    """One retrieved chunk of ``article``; ``start``/``end`` are its character offsets in the article text."""

    chunk_id: str
    article: ArticleMeta
    text: str
    start: int
    end: int
    score: float = 0.0
    also_reported_by: list[FurtherSource] = field(default_factory=list)

    # What a reader of a passage names most, read through from its article's record.
    @property
    def doc_id(self) -> str:
        return self.article.doc_id

    @property
    def title(self) -> str:
        return self.article.title

    @property
    def source(self) -> str:
        return self.article.source

    @property
    def url(self) -> str:
        return self.article.url

    @property
    def published(self) -> str:
        return self.article.published

    @property
    def author(self) -> str:
        return self.article.author

    @classmethod
    def from_chunk(cls, chunk_id: str, text: str, meta: dict[str, Any], score: float = 0.0) -> Passage:
        m = ChunkMeta.from_metadata(meta)
        return cls(chunk_id, m.article, text, m.start, m.end if m.end >= 0 else len(text), score)

    def to_dict(self) -> dict[str, Any]:
        """The passage as the JSON outputs have always shown it: flat, its article's reader-facing fields in it."""
        a = self.article
        return {
            "chunk_id": self.chunk_id, "doc_id": a.doc_id, "title": a.title, "source": a.source, "url": a.url,
            "published": a.published, "text": self.text, "start": self.start, "end": self.end, "score": self.score,
            "author": a.author, "also_reported_by": [asdict(o) for o in self.also_reported_by],
        }  # fmt: skip


def plain(value: Any) -> Any:
    """``dataclasses.asdict`` for the read path's results, each passage flat (:meth:`Passage.to_dict`)."""
    if isinstance(value, Passage):
        return value.to_dict()
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


@dataclass
class Citation:
    """``[number]`` in the answer points at ``passage``; ``quote`` is the supporting sentence,
    an exact substring of ``passage.text`` (``quote_start`` is its offset there)."""

    number: int
    passage: Passage
    quote: str
    quote_start: int = 0
    support: float = 0.0


@dataclass
class Answer:
    text: str
    refused: bool
    citations: list[Citation] = field(default_factory=list)
    passages: list[Passage] = field(default_factory=list)
    # Sentences the model wrote that no passage supports; dropped from ``text``.
    unsupported: list[str] = field(default_factory=list)
    # How the text was made: "generated", "extractive" (model output unusable), "refused".
    mode: str = "generated"
    timings: dict[str, float] = field(default_factory=dict)
    # The signals the refusal decision used: "evidence" (best question-sentence match, 0..1)
    # and "answerable" (the model's P(yes) that the passages answer the question).
    scores: dict[str, float] = field(default_factory=dict)
    # The moment the question was asked at (ISO day), the newest cited article's date (ISO; ""
    # when none is dated), and a note when that evidence is older than the question suggests.
    as_of: str = ""
    newest: str = ""
    note: str = ""

    @property
    def dateline(self) -> str:
        """What the answer is as of, for a reader: "As of 5 January 2024 (newest cited article: …)."."""
        moment, newest = parse_day(self.as_of), parse_day(self.newest)
        if moment is None:
            return self.note
        said = f"As of {long_date(moment)}"
        if newest is not None:
            said += f"; newest cited article {long_date(newest)}"
        return f"{said}. {self.note}".strip()

    def to_dict(self) -> dict[str, Any]:
        return plain(self)


@dataclass
class EarlyAnswer:
    """The first thing :meth:`QABot.stream` yields for a question it can support: the passages'
    own sentences that best match it, each cited ``[n]`` (numbered as the final
    :class:`Answer`'s passages), quoted from the articles, not written by the model. It comes
    within about a second, before the model has read its prompt; the :class:`Answer` that ends
    the stream is the bot's answer, and may refuse where the model finds the passages do not
    answer the question."""

    text: str
    citations: list[Citation] = field(default_factory=list)
    passages: list[Passage] = field(default_factory=list)
    seconds: float = 0.0  # from the question

    def to_dict(self) -> dict[str, Any]:
        return plain(self)


@dataclass
class Filters:
    """Retrieval filters: sources (any of) and a published date range (inclusive)."""

    source: list[str] = field(default_factory=list)
    since: date | None = None
    until: date | None = None

    @classmethod
    def coerce(cls, value: Filters | dict[str, Any] | None) -> Filters:
        """Accept a Filters, None, or a dict such as ``{"source": "CNN", "published": ("2024-01-01", None)}``."""
        if value is None:
            return cls()
        if isinstance(value, Filters):
            return value
        allowed = {"source", "published", "since", "until"}
        unknown = set(value) - allowed
        if unknown:
            raise ValueError(f"unknown filter {sorted(unknown)[0]!r}; supported filters: {sorted(allowed)}")
        source = value.get("source") or []
        sources = [source] if isinstance(source, str) else [str(s) for s in source]
        since, until = value.get("since"), value.get("until")
        if value.get("published") is not None:
            rng = value["published"]
            if isinstance(rng, dict):
                since, until = rng.get("since", rng.get("from")), rng.get("until", rng.get("to"))
            else:
                since, until = [*list(rng), None, None][:2]
        return cls(source=sources, since=_to_date(since, "since"), until=_to_date(until, "until"))

    @property
    def empty(self) -> bool:
        return not self.source and self.since is None and self.until is None


def _to_date(value: Any, name: str) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise ValueError(f"filter {name!r} must be an ISO date (YYYY-MM-DD), got {value!r}") from None
