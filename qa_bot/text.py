"""Sentence spans, shared by chunking (ingest) and citation checking (qa_bot).

Usage::

    from qa_bot.text import split_sentences
    [text[s.start : s.end] for s in split_sentences(text)]
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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
