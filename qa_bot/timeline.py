"""Timelines across a story, and what is new about it since a date: extractive, no model call.

Usage::

    bot = QABot(settings)
    timeline = bot.timeline("Maduro", since="2025-01-01", as_of="2026-01-10")
    for entry in timeline.entries:                         # in date order, one per event
        entry.date, entry.text, entry.citations            # the quoted sentence and every outlet's
    timeline.to_list()                                      # [{"date", "text", "citations": [...]}]
    bot.whats_new("Maduro", since="2026-01-01").text        # only what was not reported before then

How a timeline is made (docs/architecture.md, "Time"), within seconds on 2 cores:

1. The topic is searched for across the whole period (no recency decay: a timeline wants the old
   as much as the new), more widely than for an answer (``TIMELINE_PASSAGES``).
2. A passage that does not name every name of the topic (the words it capitalises, less those
   capitalised only for their place: :func:`topic_names`) is left out: a jet bridge at
   Baltimore's airport is not the Key Bridge.
3. Each passage's sentences are scored against the topic (:func:`qa_bot.citations.support`);
   each article gives its best sentence that is about the topic (at least ``TOPIC_FLOOR``) and
   reports something (:func:`_reports`: a statement ending in a full stop or "!", not a headline,
   a question, a cut-off snippet, the outlet's word to its reader, or text that addresses an
   AI), and that does not date itself to another year than the article's (background such as
   "in 2019 he…" is not an event of the article's day).
4. The event's date is the article's, or the calendar date of a weekday the sentence names ("on
   Thursday", resolved from the article's date where that is safe: :mod:`qa_bot.timeframe`).
5. Sentences that say the same thing (cosine at least ``SAME_EVENT``) within ``SAME_EVENT_DAYS``
   of each other are one event: the first report is quoted and every outlet is cited. Wire
   copies were already grouped at ingest; their outlets come with the story's passage.
6. The best ``limit`` events are kept and put in date order.

"What's new since D": the timeline after D, less every event whose sentence matches one
reported before D (cosine at least ``ALREADY_REPORTED``) in the topic's articles up to D.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np

from qa_bot.citations import STOPWORDS, PassageSentences, SupportScorer, content_words, quotable, support
from qa_bot.results import Citation, Filters, Passage
from qa_bot.timeframe import TimeScope, parse_day, resolve, resolve_weekdays

TIMELINE_PASSAGES = 40  # passages searched for a timeline
TOPIC_FLOOR = 0.40  # a sentence's support for the topic, below which it is not about it
SAME_EVENT = 0.80  # cosine of two sentences that report one event
SAME_EVENT_DAYS = 3
ALREADY_REPORTED = 0.75  # cosine to a sentence from before "since" at which an event is not new
_YEAR = re.compile(r"\b(?:19|20)\d\d\b")
# A name in a topic: a capitalised word, cut at hyphens and apostrophes ("Israel-Hamas war",
# "Trump's trial": israel, hamas, trump).
_NAME = re.compile(r"\b[A-Z][A-Za-z0-9]*")
# The outlet speaking to its reader, not reporting: "For the latest news, read our live updates."
_TO_READER = re.compile(
    r"\b(read|follow) our\b|\bsee our (live|full|latest|coverage)\b|\bsign up (for|to)\b|\bsubscribe to\b|"
    r"\bclick here\b|\bdownload (the|our) app\b|\bour newsletter\b",
    re.IGNORECASE,
)
# A statement ends in a full stop or "!" (then perhaps closing quotes or brackets); not in "..."
# or "…", the mark of a cut-off snippet.
_STATEMENT_END = re.compile(r"(?<![.…])[.!][\"'”’)\]]*\s*$")

Search = Callable[[str, int, Filters, TimeScope], list[Passage]]


@dataclass
class TimelineEntry:
    """One event: its date, the quoted sentence, and a citation for every article reporting it."""

    date: str  # ISO day
    text: str  # an exact sentence of the first citation's passage
    citations: list[Citation] = field(default_factory=list)
    score: float = 0.0  # the sentence's support for the topic

    def to_dict(self) -> dict[str, Any]:
        return {
            "date": self.date,
            "text": self.text,
            "citations": [
                {
                    "doc_id": c.passage.doc_id,
                    "url": c.passage.url,
                    "title": c.passage.title,
                    "source": c.passage.source,
                    "quote": c.quote,
                }
                for c in self.citations
            ],
        }


@dataclass
class Timeline:
    topic: str
    entries: list[TimelineEntry] = field(default_factory=list)
    as_of: str = ""
    since: str = ""
    until: str = ""
    seconds: float = 0.0

    def to_list(self) -> list[dict[str, Any]]:
        """The entries as ``qa-bot timeline --json`` prints them."""
        return [e.to_dict() for e in self.entries]


@dataclass
class _Event:
    day: date
    score: float
    vector: np.ndarray
    ps: PassageSentences
    sentence: int
    others: list[tuple[PassageSentences, int]] = field(default_factory=list)


def build(
    topic: str,
    search: Search,
    scorer: SupportScorer,
    vector: np.ndarray,
    moment: date,
    since: date | None = None,
    until: date | None = None,
    filters: Filters | None = None,
    limit: int = 20,
) -> list[TimelineEntry]:
    """The timeline's entries, in date order (see the module's docstring for the steps)."""
    window = _window(filters or Filters(), since, until, moment)
    if window is None:
        return []
    passages = search(topic, TIMELINE_PASSAGES, window, TimeScope("named", window.since, window.until, "timeline"))
    events = _events(passages, topic, scorer, vector)
    kept = sorted(_merge(events), key=lambda e: -e.score)[:limit]
    return [_entry(e) for e in sorted(kept, key=lambda e: (e.day, -e.score))]


def new_since(entries: list[TimelineEntry], before: list[Passage], scorer: SupportScorer) -> list[TimelineEntry]:
    """The entries whose sentence matches none of the sentences of the passages from before."""
    if not entries or not before:
        return entries
    old = np.concatenate([ps.vectors for ps in scorer.prepare(before)])
    said = np.asarray(scorer.embedder.embed([e.text for e in entries]), dtype=np.float32)
    return [e for e, v in zip(entries, said, strict=True) if float(np.max(old @ v)) < ALREADY_REPORTED]


def _window(filters: Filters, since: date | None, until: date | None, moment: date) -> Filters | None:
    lo = max((d for d in (filters.since, since) if d), default=None)
    hi = min((d for d in (filters.until, until, moment) if d), default=moment)
    if lo and lo > hi:
        return None
    return Filters(source=list(filters.source), since=lo, until=hi)


def _events(passages: list[Passage], topic: str, scorer: SupportScorer, vector: np.ndarray) -> list[_Event]:
    """Each dated article's best sentence about the topic (one event per article)."""
    words = set(content_words(topic))
    names = topic_names(topic, [p.text for p in passages])
    best: dict[str, _Event] = {}
    for ps in scorer.prepare([p for p in passages if _names_all(p, names)]):
        published = parse_day(ps.passage.published)
        if published is None:
            continue  # an undated article cannot be placed in time
        scores = support(ps.vectors, ps.words, vector, words)
        for j in np.argsort(-scores):
            score = float(scores[j])
            if score < TOPIC_FLOOR:
                break
            sentence = ps.sentence(int(j))
            if not _reports(ps, int(j), published):
                continue
            known = best.get(ps.passage.doc_id)
            if known is None or score > known.score:
                day = _event_day(sentence, published)
                best[ps.passage.doc_id] = _Event(day, score, ps.vectors[int(j)], ps, int(j))
            break
    return list(best.values())


def topic_names(topic: str, texts: list[str]) -> list[re.Pattern[str]]:
    """The topic's names, the words it capitalises ("Francis Scott Key Bridge collapse in
    Baltimore": francis, scott, key, bridge, baltimore), each a whole word or its plural or
    possessive ("Houthi" finds "Houthis", not "Max" "maximum").

    The first word may be capitalised only for its place: it counts only if ``texts`` (the
    passages found) never write it in lower case ("Latest on the Key Bridge", "Ceasefire talks
    in Gaza": latest and ceasefire are not names; "Boeing" is). A topic typed without capitals
    names nothing; one in Title Case names every word.
    """
    words = [m.group() for m in _NAME.finditer(topic) if len(m.group()) > 1]
    first = _NAME.match(topic.strip())
    names: list[str] = []
    for word in dict.fromkeys(words):
        low = word.lower()
        if low in STOPWORDS:
            continue
        opening = first is not None and first.group() == word
        if opening and any(re.search(rf"\b{re.escape(low)}\b", t) for t in texts):
            continue  # written in lower case in the articles: an ordinary word
        names.append(low)
    return [re.compile(rf"\b{re.escape(n)}(?:s|es|'s|’s)?\b") for n in names]


def _names_all(passage: Passage, names: list[re.Pattern[str]]) -> bool:
    """Whether the passage (with its title) names every name of the topic: a passage about a jet
    bridge at Baltimore's airport, or one on Francis Scott Key's anthem, is not about the Key
    Bridge's collapse, however close its sentences come to the topic's embedding."""
    text = f"{passage.title}\n{passage.text}".lower()
    return all(n.search(text) for n in names)


def _reports(ps: PassageSentences, j: int, published: date) -> bool:
    """Whether sentence ``j`` reports something: a statement the article makes, not a headline or
    a question (both end without a full stop: "What time does the trial start today?", "Trump
    arrives in courtroom for day 2"), nor the outlet's word to its reader ("read our live
    updates"), nor its title, nor text that addresses an AI."""
    sentence = ps.sentence(j)
    if not reads_as_report(sentence) or not quotable(ps, j):
        return False
    # A sentence dated to another year is background, not the article's event.
    return all(int(y) == published.year for y in _YEAR.findall(sentence))


def reads_as_report(sentence: str) -> bool:
    """Six words or more ending as a statement ends, and not the outlet's word to its reader."""
    return len(sentence.split()) >= 6 and bool(_STATEMENT_END.search(sentence)) and not _TO_READER.search(sentence)


def _event_day(sentence: str, published: date) -> date:
    days = [d for _, d in resolve_weekdays(sentence, published)]
    return min(days) if days else published


def _merge(events: list[_Event]) -> list[_Event]:
    """One event per happening: alike sentences within a few days merge into the earliest report."""
    merged: list[_Event] = []
    for e in sorted(events, key=lambda e: (e.day, -e.score)):
        same = next(
            (
                m
                for m in merged
                if abs((e.day - m.day).days) <= SAME_EVENT_DAYS and float(m.vector @ e.vector) >= SAME_EVENT
            ),
            None,
        )
        if same is None:
            merged.append(e)
            continue
        same.others.append((e.ps, e.sentence))
        same.score = max(same.score, e.score)
    return merged


def _entry(e: _Event) -> TimelineEntry:
    cited = [(e.ps, e.sentence), *e.others]
    citations = [
        Citation(number=n, passage=ps.passage, quote=ps.sentence(j), quote_start=ps.spans[j][0])
        for n, (ps, j) in enumerate(cited, start=1)
    ]
    return TimelineEntry(date=e.day.isoformat(), text=citations[0].quote, citations=citations, score=round(e.score, 4))


def since_day(value: Any, moment: date) -> date:
    """``since`` as a day: an ISO date, or a phrase ("March", "last week") read against the moment."""
    if isinstance(value, date):
        return value
    text = str(value).strip()
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        pass
    scope = resolve(f"since {text}", moment)
    if scope is None or scope.since is None:
        raise ValueError(f"since must be a date (YYYY-MM-DD) or a phrase such as 'March' or 'last week', got {value!r}")
    return scope.since


_WHATS_NEW = re.compile(
    r"^\s*what(?:'s|’s| is| has)\s+(?:new|changed|happened)\s+(?:about|on|with|in|for|regarding|to)\s+"
    r"(?P<topic>.+?)\s+since\s+(?P<since>.+?)\s*\??\s*$",
    re.IGNORECASE,
)


def whats_new_request(question: str, moment: date) -> tuple[str, date] | None:
    """The topic and day of "What's new about X since D?", or None for any other question."""
    found = _WHATS_NEW.match(question)
    if not found:
        return None
    try:
        return found.group("topic"), since_day(found.group("since"), moment)
    except ValueError:
        return None


def day_before(day: date) -> date:
    return day - timedelta(days=1)
