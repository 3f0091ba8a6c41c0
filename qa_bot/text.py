"""Sentence spans, shared by chunking (ingest) and citation checking (qa_bot).

Usage::

    from qa_bot.text import split_sentences
    [text[s.start : s.end] for s in split_sentences(text)]
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The version of how split_sentences cuts text. Chunks are runs of its sentences, so a store's
# chunks are only comparable with one version: it is part of the collection's signature
# (qa_bot.archive.store), and a store built with another asks for `qa-bot ingest --reindex`.
# tests/test_chunking.py holds a fingerprint of its output that fails until this is raised.
SPLITTER_VERSION = 1

# Words after which a full stop does not end a sentence.
_ABBREVIATIONS = set(
    "mr mrs ms dr prof st jr sr gen sen rep gov lt col capt sgt rev no vs etc inc co corp ltd jan feb mar apr jun jul"
    " aug sep sept oct nov dec u.s u.k u.n e.g i.e a.m p.m mt ft approx dept est fig".split()
)
_BOUNDARY = re.compile(r"[.!?…]+[\"'”’)\]]*\s+|\n+")
_WORD_BEFORE = re.compile(r"([\w.]+)[.!?…]+[\"'”’)\]]*\s*$")


@dataclass(frozen=True)
class Span:
    start: int
    end: int


def split_sentences(text: str) -> list[Span]:
    """Sentence spans (trimmed of surrounding space) covering all non-space text."""
    spans: list[Span] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        end = match.end()
        if "\n" not in match.group() and _is_abbreviation(text[start:end], text[end : end + 1]):
            continue
        _add_span(spans, text, start, end)
        start = end
    _add_span(spans, text, start, len(text))
    return spans


def _is_abbreviation(sentence: str, next_char: str) -> bool:
    found = _WORD_BEFORE.search(sentence)
    if not found:
        return False
    word = found.group(1).lower()
    if word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
        return True
    # "3.5" is caught by the regex only with a space; a lower-case next word means no new sentence.
    return bool(next_char) and next_char.islower()


def _add_span(spans: list[Span], text: str, start: int, end: int) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        spans.append(Span(start, end))


# Figures: the numbers a sentence states, so that "4,000 visitors" is not taken as support for
# "forty thousand visitors". Number words count in the evidence (articles spell numbers out);
# only digits count in a claim, because "one of the ..." is not a figure.
_UNITS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen"
        " seventeen eighteen nineteen".split()
    )
}
_TENS = {w: 10 * i for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()) if i > 1}
_ORDINALS = {w: i + 1 for i, w in enumerate("first second third fourth fifth sixth seventh eighth ninth tenth".split())}
_SCALES = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000, "trillion": 10**12}
_DIGITS = re.compile(
    r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(?:st|nd|rd|th)?(?:\s+(hundred|thousand|million|billion|trillion))?",
    re.I,
)
_NUMBER_WORDS = re.compile(
    r"\b(?:(?:" + "|".join([*_UNITS, *_TENS, *_SCALES, *_ORDINALS, "and", "a"]) + r")(?:[\s-]+|\b))+", re.I
)


def _canon(value: float) -> str:
    return f"{value:.6g}" if value != int(value) else str(int(value))


def digit_figures(text: str) -> list[set[str]]:
    """Each figure written with digits, as its equivalent readings: '4.5 million' -> {'4.5', '4500000'}."""
    out = []
    for whole, frac, scale in _DIGITS.findall(text):
        value = float(whole.replace(",", "") + (f".{frac}" if frac else ""))
        readings = {_canon(value)}
        if scale:
            readings.add(_canon(value * _SCALES[scale.lower()]))
        out.append(readings)
    return out


def word_figures(text: str) -> set[str]:
    """The values of spelled-out numbers: 'forty thousand' -> {'40000'}, 'third' -> {'3'}."""
    out = set()
    for match in _NUMBER_WORDS.finditer(text):
        words = [w for w in re.split(r"[\s-]+", match.group().lower()) if w and w not in ("and", "a")]
        total, current, seen = 0, 0, False
        for w in words:
            if w in _UNITS or w in _TENS or w in _ORDINALS:
                current += _UNITS.get(w, 0) + _TENS.get(w, 0) + _ORDINALS.get(w, 0)
                seen = True
            elif w in _SCALES and (seen or match.group().lower().startswith("a ")):
                current = max(current, 1) * _SCALES[w]
                if _SCALES[w] >= 1000:
                    total, current = total + current, 0
                seen = True
        if seen:
            out.add(_canon(total + current))
    return out


def figures(text: str) -> set[str]:
    """Every reading of every figure in ``text``, digits and words: what evidence can back."""
    found = word_figures(text)
    for readings in digit_figures(text):
        found |= readings
    # "10.30 am" backs a claim of "10:30"; splitting every decimal costs little precision.
    found |= {part for r in list(found) if "." in r for part in r.split(".")}
    return found
