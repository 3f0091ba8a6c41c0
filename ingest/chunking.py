"""Sentence-aware chunks, bounded in the embedder's own tokens, with overlap and offsets.

Usage::

    chunks = chunk_text(text, count_tokens=embedder.count_tokens, max_tokens=200, overlap_tokens=40)
    chunks[0].start, chunks[0].end      # text[start:end] == chunks[0].text

A chunk is a run of whole sentences whose token count stays within ``max_tokens``; the next
chunk repeats the last sentences of the previous one, up to ``overlap_tokens``, so that a
fact that straddles a boundary is whole in one of them. A sentence longer than the budget
is cut at word boundaries. Offsets index into the article's normalised text, so the UI can
highlight a quote exactly.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from qa_bot.text import Span, split_sentences

CountTokens = Callable[[list[str]], list[int]]


@dataclass(frozen=True)
class Chunk:
    index: int
    text: str
    start: int
    end: int
    tokens: int


def chunk_text(text: str, count_tokens: CountTokens, max_tokens: int, overlap_tokens: int) -> list[Chunk]:
    sentences = _fit_sentences(text, split_sentences(text), count_tokens, max_tokens)
    if not sentences:
        return []
    counts = [n for _, n in sentences]
    chunks: list[Chunk] = []
    first = 0
    while first < len(sentences):
        last, total = first, counts[first]
        while last + 1 < len(sentences) and total + counts[last + 1] <= max_tokens:
            last += 1
            total += counts[last]
        start, end = sentences[first][0].start, sentences[last][0].end
        chunks.append(Chunk(len(chunks), text[start:end], start, end, total))
        if last + 1 >= len(sentences):
            break
        first = _overlap_start(counts, first, last, overlap_tokens)
    return chunks


def _overlap_start(counts: list[int], first: int, last: int, overlap_tokens: int) -> int:
    """The first sentence of the next chunk: back from ``last`` within the overlap budget."""
    nxt, carried = last + 1, 0
    while nxt - 1 > first and carried + counts[nxt - 1] <= overlap_tokens:
        nxt -= 1
        carried += counts[nxt]
    return nxt


def _fit_sentences(text: str, spans: list[Span], count_tokens: CountTokens, max_tokens: int) -> list[tuple[Span, int]]:
    """Pair each sentence with its token count, cutting any that exceeds the budget."""
    if not spans:
        return []
    counts = count_tokens([text[s.start : s.end] for s in spans])
    fitted: list[tuple[Span, int]] = []
    for span, n in zip(spans, counts, strict=True):
        if n <= max_tokens:
            fitted.append((span, n))
        else:
            fitted.extend(_cut_long(text, span, count_tokens, max_tokens))
    return fitted


def _cut_long(text: str, span: Span, count_tokens: CountTokens, max_tokens: int) -> list[tuple[Span, int]]:
    piece = text[span.start : span.end]
    words = [Span(m.start() + span.start, m.end() + span.start) for m in re.finditer(r"\S+", piece)]
    word_counts = count_tokens([text[w.start : w.end] for w in words])
    pieces: list[tuple[Span, int]] = []
    begin, total = 0, 0
    for i, n in enumerate(word_counts):
        if total and total + n > max_tokens:
            pieces.append((Span(words[begin].start, words[i - 1].end), total))
            begin, total = i, 0
        total += n
    pieces.append((Span(words[begin].start, words[-1].end), min(total, max_tokens)))
    return pieces
