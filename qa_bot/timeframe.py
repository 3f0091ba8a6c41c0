"""Time in questions and articles: the moment a question is asked at, the period it names, and
calendar dates for the weekdays an article mentions.

Usage::

    from qa_bot.timeframe import moment_of, resolve, resolve_weekdays
    moment = moment_of("2024-01-05")              # a date, datetime or ISO string; None: today (UTC)
    scope = resolve("Which carrier had an outage this week?", moment)
    scope.kind, scope.since, scope.until          # "period", 2024-01-01, 2024-01-05
    resolve("Who won the 2019 final?", moment).kind          # "named": that period, not the latest
    resolve("Who is the current CEO?", moment).kind           # "recent": the newest evidence first
    resolve_weekdays("He resigned on Thursday.", date(2024, 1, 5))  # [("on Thursday", date(2024, 1, 4))]

A small rule-based resolver, not dateparser: every phrase it knows is listed below and tested
against a fixed moment, it costs microseconds on the question's path, and it never guesses a
date from a stray number. Articles' dates are days, so the moment is a day too.

Kinds of scope, and what retrieval does with each (qa_bot.retrieval):

- ``period``: a stretch near the moment ("today", "yesterday", "this week", "last month", "on
  Tuesday", "in the past two weeks", "this year", "since March"): articles of the period are
  searched for on their own and lifted. A period of one day also takes the day after, when the
  news of it is published.
- ``named``: a period the question names by its calendar ("in 2019", "in March 2020", "the 1990
  invasion", "on 2024-03-01"): that period is lifted, and recency is not applied.
- ``recent``: "latest", "currently", "now", "still": the newest evidence is preferred strongly.
- ``None`` (no time words): recency is still a ranking signal (retrieval.recency_*).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

Kind = Literal["period", "named", "recent"]

_MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_name) if m}
_MONTHS.update({m.lower(): i for i, m in enumerate(calendar.month_abbr) if m and m.lower() != "may"})
_MONTHS["sept"] = 9
_WEEKDAYS = {d.lower(): i for i, d in enumerate(calendar.day_name)}
_NUMBERS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "few": 3, "couple of": 2, "several": 4,
}  # fmt: skip
_UNIT_DAYS = {"day": 1, "week": 7, "fortnight": 14, "month": 30, "year": 365}

MONTH = r"(" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\b\.?"
WEEKDAY = r"(" + "|".join(_WEEKDAYS) + r")"
YEAR = r"((?:19|20)\d\d)"
COUNT = r"(\d+|" + "|".join(sorted(_NUMBERS, key=len, reverse=True)) + r")"
UNIT = r"(days?|weeks?|fortnights?|months?|years?)"
ORDINAL = r"(\d{1,2})(?:st|nd|rd|th)?"


@dataclass(frozen=True)
class TimeScope:
    """The period a question is about (inclusive days), what kind it is, and the words that said so."""

    kind: Kind
    since: date | None = None
    until: date | None = None
    phrase: str = ""

    def holds(self, day: date | None) -> bool:
        """Whether a day falls in the period (an undated article never does)."""
        if day is None:
            return False
        return (self.since is None or day >= self.since) and (self.until is None or day <= self.until)


def moment_of(value: date | datetime | str | None) -> date:
    """The day a question is asked at: ``None`` is today (UTC); a datetime is its own calendar day
    (11 pm on 5 January in New York is 5 January, as its reader means it).

    >>> moment_of("2024-01-05")
    datetime.date(2024, 1, 5)
    """
    if value is None or value == "":
        return datetime.now(UTC).date()
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return moment_of(datetime.fromisoformat(value.strip().replace("Z", "+00:00")))
        except ValueError:
            pass
    raise ValueError(f"as_of must be a date (YYYY-MM-DD), a datetime or None, got {value!r}")


def parse_day(value: Any) -> date | None:
    """An article's ``published`` string (ISO, as the ingest stores it) as a day; None if undated."""
    if not value:
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def _count(word: str) -> int:
    return int(word) if word.isdigit() else _NUMBERS[word]


def _last_weekday(moment: date, weekday: int) -> date:
    """The latest such weekday on or before the moment."""
    return moment - timedelta(days=(moment.weekday() - weekday) % 7)


def _last_month(moment: date, month: int) -> tuple[date, date]:
    """The latest such month that began on or before the moment (its days up to the moment)."""
    year = moment.year if month <= moment.month else moment.year - 1
    return date(year, month, 1), min(moment, date(year, month, calendar.monthrange(year, month)[1]))


def _day(moment: date, day: date, phrase: str, kind: Kind = "period") -> TimeScope:
    # News of a day is published that day and the next.
    return TimeScope(kind, day, min(moment, day + timedelta(days=1)) if day <= moment else day, phrase)


def _month_day(moment: date, month: int, day: int, year: int | None) -> date | None:
    try:
        if year is not None:
            return date(year, month, day)
        found = date(moment.year, month, day)
        return found if found <= moment else date(moment.year - 1, month, day)
    except ValueError:
        return None


def _start_of(moment: date, q: str) -> tuple[date, str] | None:
    """The first day of what follows "since" (a date, a month, a year, a weekday, last week…)."""
    for pattern, start in (
        (r"(\d{4})-(\d\d)-(\d\d)", lambda m: _safe_date(int(m[1]), int(m[2]), int(m[3]))),
        (MONTH + r"\s+" + ORDINAL + r",?\s+" + YEAR, lambda m: _month_day(moment, _MONTHS[m[1]], int(m[2]), int(m[3]))),
        (ORDINAL + r"\s+" + MONTH + r",?\s+" + YEAR, lambda m: _month_day(moment, _MONTHS[m[2]], int(m[1]), int(m[3]))),
        (MONTH + r"\s+(\d{1,2})(?:st|nd|rd|th)?\b", lambda m: _month_day(moment, _MONTHS[m[1]], int(m[2]), None)),
        (r"(\d{1,2})(?:st|nd|rd|th)?\s+" + MONTH, lambda m: _month_day(moment, _MONTHS[m[2]], int(m[1]), None)),
        (MONTH + r"\s+" + YEAR, lambda m: date(int(m[2]), _MONTHS[m[1]], 1)),
        (MONTH, lambda m: _last_month(moment, _MONTHS[m[1]])[0]),
        (YEAR, lambda m: date(int(m[1]), 1, 1)),
        (WEEKDAY, lambda m: _last_weekday(moment - timedelta(days=1), _WEEKDAYS[m[1]])),
        (r"last week", lambda m: moment - timedelta(days=moment.weekday() + 7)),
        (r"last month", lambda m: (moment.replace(day=1) - timedelta(days=1)).replace(day=1)),
        (r"last year", lambda m: date(moment.year - 1, 1, 1)),
        (r"yesterday", lambda m: moment - timedelta(days=1)),
    ):  # fmt: skip
        found = re.match(pattern + r"\b", q)
        if found:
            day = start(found)
            return (day, found.group(0)) if day else None
    return None


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def resolve(question: str, moment: date) -> TimeScope | None:
    """The period ``question`` is about, read against ``moment``; None when it names none."""
    q = " ".join(question.lower().replace("’", "'").split())
    for find in (_explicit_day, _since, _relative, _named, _recent):
        scope = find(q, moment)
        if scope is not None:
            return scope
    return None


def _explicit_day(q: str, moment: date) -> TimeScope | None:
    iso = re.search(r"\b(\d{4})-(\d\d)-(\d\d)\b", q)
    if iso and not re.search(r"\bsince\s+" + re.escape(iso.group(0)), q):
        day = _safe_date(int(iso[1]), int(iso[2]), int(iso[3]))
        if day:
            return _day(moment, day, iso.group(0), "named")
    for pattern, groups in (
        (r"\b(?:on|of)\s+" + MONTH + r"\s+(\d{1,2})(?:st|nd|rd|th)?(?:,?\s+" + YEAR + r")?\b", (1, 2, 3)),
        (r"\b(?:on|of)\s+(?:the\s+)?" + ORDINAL + r"\s+(?:of\s+)?" + MONTH + r"(?:,?\s+" + YEAR + r")?\b", (2, 1, 3)),
    ):  # fmt: skip
        found = re.search(pattern, q)
        if found:
            month, day_, year = (found.group(g) for g in groups)
            day = _month_day(moment, _MONTHS[month], int(day_), int(year) if year else None)
            if day:
                return _day(moment, day, found.group(0).strip(), "named" if year else "period")
    return None


def _since(q: str, moment: date) -> TimeScope | None:
    found = re.search(r"\b(?:since|from|after)\s+(?:the\s+(?:start|beginning)\s+of\s+)?", q)
    if not found:
        return None
    start = _start_of(moment, q[found.end() :])
    if start is None or start[0] > moment:
        return None
    return TimeScope("period", start[0], moment, (found.group(0) + start[1]).strip())


def _relative(q: str, moment: date) -> TimeScope | None:
    past = re.search(
        r"\b(?:in|over|during|within|for)?\s*(?:the\s+)?(?:past|last|previous)\s+" + COUNT + r"\s+" + UNIT + r"\b", q
    )
    if past:
        days = _count(past.group(1)) * _UNIT_DAYS[past.group(2).rstrip("s")]
        return TimeScope("period", moment - timedelta(days=days - 1), moment, past.group(0).strip())
    past_one = re.search(r"\b(?:in|over|during|within)\s+the\s+(?:past|last)\s+(day|week|fortnight|month|year)\b", q)
    if past_one:
        days = _UNIT_DAYS[past_one.group(1)]
        return TimeScope("period", moment - timedelta(days=days - 1), moment, past_one.group(0))
    saturday, monday, first = _last_weekday(moment, 5), moment - timedelta(days=moment.weekday()), moment.replace(day=1)
    for pattern, span in (
        (r"\btoday\b|\btonight\b|\bthis morning\b|\bthis afternoon\b", lambda: (moment, moment)),
        (r"\byesterday\b|\blast night\b", lambda: (moment - timedelta(days=1), moment)),
        (r"\bthis (?:past )?weekend\b|\blast weekend\b", lambda: (saturday, min(moment, saturday + timedelta(days=2)))),
        (r"\bthis (?:past )?week\b|\bthe past week\b", lambda: (moment - timedelta(days=6), moment)),
        (r"\blast week\b", lambda: (monday - timedelta(days=7), monday)),
        (r"\bthis month\b", lambda: (moment.replace(day=1), moment)),
        (r"\blast month\b", lambda: ((first - timedelta(days=1)).replace(day=1), first)),
        (r"\bthis year\b|\bso far this year\b", lambda: (date(moment.year, 1, 1), moment)),
        (r"\blast year\b", lambda: (date(moment.year - 1, 1, 1), date(moment.year - 1, 12, 31))),
        (r"\b(?:earlier|later) this week\b", lambda: (moment - timedelta(days=6), moment)),
    ):  # fmt: skip
        found = re.search(pattern, q)
        if found:
            since, until = span()
            return TimeScope("period", since, until, found.group(0))
    weekday = re.search(r"\b(?:on\s+|last\s+|this\s+past\s+)?" + WEEKDAY + r"(?:'s)?\b", q)
    if weekday:
        day = _last_weekday(moment, _WEEKDAYS[weekday.group(1)])
        return _day(moment, day, weekday.group(0))
    in_month = re.search(r"\b(?:in|during|since|of)\s+" + MONTH + r"(?!\s*\d)", q)
    if in_month:
        since, until = _last_month(moment, _MONTHS[in_month.group(1)])
        return TimeScope("period", since, until, in_month.group(0))
    return None


def _named(q: str, moment: date) -> TimeScope | None:
    month_year = re.search(r"\b" + MONTH + r",?\s+" + YEAR + r"\b", q)
    if month_year:
        year, month = int(month_year.group(2)), _MONTHS[month_year.group(1)]
        last = date(year, month, calendar.monthrange(year, month)[1])
        return TimeScope("named", date(year, month, 1), last, month_year.group(0))
    # A year only after a word that dates something ("in 2019", "the 1990 invasion"): "2000
    # people" is a count.
    lead = r"\b(?:in|of|during|the|from|between|and|to|before|after|until|by|since|early|late|mid|year|season)\s+"
    years = [int(y) for y in re.findall(lead + YEAR + r"(?![\d,.]\d|-\d\d-)", q)]
    years = [y for y in years if y <= moment.year]
    if years:
        span = r"\b(?:between|from)\s+" + YEAR + r"\s+(?:and|to|-|–)\s+" + YEAR + r"\b"
        both = re.search(span, q)
        lo, hi = (int(both.group(1)), int(both.group(2))) if both else (min(years), max(years))
        decade = re.search(r"\b" + YEAR + r"'?s\b", q)
        if decade and int(decade.group(1)) % 10 == 0 and not both:
            hi = int(decade.group(1)) + 9
        return TimeScope("named", date(lo, 1, 1), min(date(hi, 12, 31), moment), str(lo) if lo == hi else f"{lo}-{hi}")
    return None


def _recent(q: str, moment: date) -> TimeScope | None:
    found = re.search(
        r"\b(latest|newest|most recent|most recently|recently|recent|currently|current|now|nowadays|"
        r"right now|at the moment|at present|presently|still|so far|to date|upcoming|ongoing)\b",
        q,
    )
    return TimeScope("recent", None, moment, found.group(0)) if found else None


# ---------------------------------------------------------------- dates inside an article

_IN_TEXT_WEEKDAY = re.compile(
    r"\b(?:on|last|this|since|until|by|late|early)\s+(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)\b"
)


_FUTURE = re.compile(
    r"\b(will|would|next|scheduled|expected|plans?|planned|set to|due|going to|upcoming|until)\b", re.I
)


def resolve_weekdays(text: str, published: date | None) -> list[tuple[str, date]]:
    """The weekdays an article mentions ("on Thursday"), as calendar dates from its own date.

    Safe only one way: news reports the past week, so a weekday is the latest such day on or
    before the article's date, and only within the six days before it ("on Thursday" in a
    Friday article is the day before). Phrases that point forward ("next Monday") are not
    matched; an undated article gets nothing.
    """
    if published is None:
        return []
    out = []
    for found in _IN_TEXT_WEEKDAY.finditer(text):
        if found.group(0).lower().startswith(("this", "until", "by")):
            continue  # "this Friday", "by Monday": may be ahead of the article
        before = re.split(r"[.!?]\s", text[max(0, found.start() - 120) : found.start()])[-1]
        if _FUTURE.search(before):
            continue  # "will appear in court on Monday": ahead of the article
        day = _last_weekday(published, _WEEKDAYS[found.group(1).lower()])
        if found.group(0).lower().startswith("last") and day == published:
            day -= timedelta(days=7)
        out.append((found.group(0), day))
    return out


def annotate_weekdays(text: str, published: date | None) -> str:
    """``text`` with each safely resolved weekday followed by its date: "on Thursday (4 January 2024)"."""
    resolved = dict(resolve_weekdays(text, published))
    if not resolved:
        return text
    return _IN_TEXT_WEEKDAY.sub(
        lambda m: f"{m.group(0)} ({long_date(resolved[m.group(0)])})" if m.group(0) in resolved else m.group(0), text
    )


def long_date(day: date) -> str:
    """A date as a reader (and the model) reads it: "5 January 2024"."""
    return f"{day.day} {calendar.month_name[day.month]} {day.year}"


def month_year(day: date) -> str:
    return f"{calendar.month_name[day.month]} {day.year}"
