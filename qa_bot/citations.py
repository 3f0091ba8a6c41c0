"""Citations are verified, not trusted.

Usage::

    scorer = SupportScorer(embedder)
    checked = verify_citations("Putin praised Trump [2].", passages, scorer)
    checked.text, checked.citations, checked.unsupported

Each answer sentence is scored against every sentence of every passage (cosine of MiniLM
embeddings plus lexical recall of the sentence's content words), and a passage that never
states a figure the sentence gives (its digits, against the passage's digits and number
words) does not support it at all; a cited number that its
passage does not support is corrected to the passage that does, a supported sentence
without a citation gets one, and a sentence that nothing supports is dropped (and kept in
``unsupported`` so a caller can show what was removed). Every quote is an exact sentence
of its passage's text, and every number is in range.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from qa_bot.embeddings import Embedder
from qa_bot.prompts import INSTRUCTION_LIKE
from qa_bot.results import Citation, Passage
from qa_bot.text import digit_figures, figures, split_sentences
from qa_bot.timeframe import long_date, parse_day, resolve_weekdays

CITATION = re.compile(r"\s*\[(\d+(?:\s*[,;]\s*\d+)*)\]")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
STOPWORDS = set(
    "a an the and or but of to in on at for from by with as is are was were be been being it its this that these"
    " those he she they them his her their there here what which who whom whose when where why how not no do does"
    " did has have had will would can could should may might must about into over after before than then so such"
    " also said says say according i you we our your my me us".split()
)
REFUSAL_PATTERNS = re.compile(
    r"(cannot|can't|can not|unable to) (find|answer|determine|provide|be found)|"
    r"(do|does|did) not (contain|mention|provide|say|include|specify|state)|"
    r"(no|not enough|insufficient) (information|mention|details|evidence)|"
    r"(is|are) not (mentioned|provided|stated|specified|given)|i don't know|i do not know",
    re.IGNORECASE,
)


# "It rained. [1]" -> "It rained [1]." so that the mark stays with its sentence.
_MARK_AFTER_STOP = re.compile(r"([.!?])\s*((?:\[\d+(?:\s*[,;]\s*\d+)*\]\s*)+)")


def content_words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS]


def strip_citations(text: str) -> str:
    return " ".join(CITATION.sub("", text).split())


def looks_like_refusal(text: str) -> bool:
    return bool(REFUSAL_PATTERNS.search(text[:400]))


def support(vectors: np.ndarray, words: list[set[str]], vector: np.ndarray, claim_words: set[str]) -> np.ndarray:
    """How well each sentence (its unit vector and content words) supports a claim or matches a
    question: 0.5 x cosine + 0.5 x the share of the claim's content words it has, in [0, 1].

    The one scale of the bot: evidence (a question against passage sentences), support (an
    answer sentence against them) and the quoted early answer all read it.
    """
    cosine = vectors @ vector
    recall = np.array([len(claim_words & w) / len(claim_words) if claim_words else 0.0 for w in words])
    return 0.5 * cosine + 0.5 * recall


@dataclass
class PassageSentences:
    """A passage's sentences with their embeddings and content words."""

    passage: Passage
    spans: list[tuple[int, int]]
    vectors: np.ndarray
    words: list[set[str]]
    figures: set[str] = field(default_factory=set)

    def sentence(self, i: int) -> str:
        start, end = self.spans[i]
        return self.passage.text[start:end]


class SupportScorer:
    """Passages split into sentences with their vectors, and claims scored against them (:func:`support`)."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def prepare(self, passages: list[Passage]) -> list[PassageSentences]:
        spans = [[(s.start, s.end) for s in split_sentences(p.text)] or [(0, len(p.text))] for p in passages]
        texts = [p.text[a:b] for p, ss in zip(passages, spans, strict=True) for a, b in ss]
        vectors = np.asarray(self.embedder.embed(texts), dtype=np.float32) if texts else np.zeros((0, 384))
        out, offset = [], 0
        for p, ss in zip(passages, spans, strict=True):
            block = vectors[offset : offset + len(ss)]
            offset += len(ss)
            words = [set(content_words(p.text[a:b])) for a, b in ss]
            # The title and date belong to the evidence: "published in 2024" is backed by the date.
            # So are the calendar dates of its weekdays ("on Thursday"), which the prompt shows.
            day = parse_day(p.published)
            weekdays = " ".join(long_date(d) for _, d in resolve_weekdays(p.text, day))
            out.append(
                PassageSentences(p, ss, block, words, figures(f"{p.title}\n{p.text}\n{p.published}\n{weekdays}"))
            )
        return out

    def scores(self, claims: list[str], prepared: list[PassageSentences]) -> list[list[tuple[float, int]]]:
        """For each claim, for each passage: (best support, index of the best sentence)."""
        if not claims:
            return []
        vectors = np.asarray(self.embedder.embed(claims), dtype=np.float32)
        result = []
        for claim, vector in zip(claims, vectors, strict=True):
            words = set(content_words(claim))
            stated = digit_figures(claim)
            row = []
            for ps in prepared:
                combined = support(ps.vectors, ps.words, vector, words)
                best = int(np.argmax(combined))
                # A figure the passage never states is not supported by it, however alike the words
                # are: "4,000 visitors" against "forty thousand visitors" scores 0.9 by words alone.
                backed = all(readings & ps.figures for readings in stated)
                row.append((float(combined[best]) if backed else 0.0, best))
            result.append(row)
        return result


@dataclass
class Checked:
    text: str
    citations: list[Citation] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    corrected: int = 0


def verify_citations(
    answer: str, prepared: list[PassageSentences], scorer: SupportScorer, threshold: float = 0.5
) -> Checked:
    """Check, correct and complete the ``[n]`` citations of ``answer`` against the passages."""
    answer = _MARK_AFTER_STOP.sub(lambda m: " " + "".join(m.group(2).split()) + m.group(1) + " ", answer)
    sentences = [answer[s.start : s.end] for s in split_sentences(answer.strip())]
    claims = [strip_citations(s) for s in sentences]
    # A question in the answer (often the user's own, echoed) claims nothing: leave it out.
    keep = [i for i, c in enumerate(claims) if content_words(c) and not c.rstrip("\"'”’)").endswith("?")]
    support = scorer.scores([claims[i] for i in keep], prepared)
    out_sentences: list[str] = []
    quotes: dict[int, tuple[float, int]] = {}  # passage index -> (support, sentence index) of its best use
    checked = Checked(text="")
    for i, row in zip(keep, support, strict=True):
        cited = [int(n) - 1 for m in CITATION.finditer(sentences[i]) for n in re.split(r"[,;]", m.group(1))]
        valid = [n for n in dict.fromkeys(cited) if 0 <= n < len(prepared) and row[n][0] >= threshold]
        if not valid:
            best = max(range(len(row)), key=lambda n: row[n][0]) if row else -1
            if best < 0 or row[best][0] < threshold:
                checked.unsupported.append(claims[i])
                continue
            checked.corrected += 1 if cited else 0
            valid = [best]
        for n in valid:
            if n not in quotes or row[n][0] > quotes[n][0]:
                quotes[n] = row[n]
        marks = "".join(f"[{n + 1}]" for n in valid)
        out_sentences.append(_attach(claims[i], marks))
    checked.text = " ".join(out_sentences)
    checked.citations = [_citation(n, prepared[n], sent, score) for n, (score, sent) in sorted(quotes.items())]
    return checked


def _attach(claim: str, marks: str) -> str:
    """Put the citation marks before the sentence's final punctuation: 'He left [1].'"""
    match = re.search(r"([.!?…]+[\"'”’)]*)$", claim)
    if match:
        return f"{claim[: match.start()].rstrip()} {marks}{match.group(1)}"
    return f"{claim} {marks}"


def _citation(index: int, ps: PassageSentences, sentence: int, score: float) -> Citation:
    start, _ = ps.spans[sentence]
    return Citation(
        number=index + 1, passage=ps.passage, quote=ps.sentence(sentence), quote_start=start, support=round(score, 4)
    )


def extractive_answer(
    question: str,
    prepared: list[PassageSentences],
    scorer: SupportScorer,
    max_sentences: int = 2,
    q_vec: np.ndarray | None = None,
    per_sentence: bool = False,
) -> Checked:
    """The passages' own best sentences for the question, each cited: shown before the model's
    answer, and used when the model fails. ``q_vec``, the question's embedding, if already made;
    ``per_sentence``, a citation for every sentence quoted, not only the best one per passage."""
    if not prepared:
        return Checked(text="")
    if q_vec is None:
        q_vec = np.asarray(scorer.embedder.embed([question]), dtype=np.float32)[0]
    q_words = set(content_words(question))
    ranked: list[tuple[float, int, int]] = []
    for n, ps in enumerate(prepared):
        matches = support(ps.vectors, ps.words, q_vec, q_words)
        ranked += [(float(matches[j]), n, j) for j in range(len(ps.spans))]
    ranked.sort(reverse=True)
    chosen = _distinct(ranked, prepared, max_sentences)
    parts = [_attach(prepared[n].sentence(j), f"[{n + 1}]") for _, n, j in chosen]
    if per_sentence:
        quoted = sorted((_citation(n, prepared[n], j, score) for score, n, j in chosen), key=_reading_order)
        return Checked(text=" ".join(parts), citations=quoted)
    citations: dict[int, Citation] = {}
    for score, n, j in chosen:
        citations.setdefault(n, _citation(n, prepared[n], j, score))
    return Checked(text=" ".join(parts), citations=[citations[n] for n in sorted(citations)])


def _distinct(
    ranked: list[tuple[float, int, int]], prepared: list[PassageSentences], most: int
) -> list[tuple[float, int, int]]:
    """The best ``most`` sentences, each said once: overlapping chunks of an article (and copies of
    a story) hold the same sentence, whole or cut at a chunk's edge, and it is quoted only once."""
    chosen: list[tuple[float, int, int]] = []
    said: list[str] = []
    for score, n, j in ranked:
        text = " ".join(prepared[n].sentence(j).split()).lower()
        if not text or any(text in other or other in text for other in said) or not quotable(prepared[n], j):
            continue
        chosen.append((score, n, j))
        said.append(text)
        if len(chosen) == most:
            break
    return chosen


def quotable(ps: PassageSentences, j: int) -> bool:
    """Whether a sentence may be quoted as an answer: not one that addresses an AI (article text is
    data, as in the prompt: prompts.INSTRUCTION_LIKE), and not the article's title on a line of its
    own (a headline is not a sentence the article says)."""
    sentence = ps.sentence(j)
    if INSTRUCTION_LIKE.search(sentence):
        return False
    title = " ".join(ps.passage.title.split()).lower().lstrip("# ")
    return not title or " ".join(sentence.split()).lower().lstrip("# ").rstrip(".") != title.rstrip(".")


def _reading_order(c: Citation) -> tuple[int, int]:
    return (c.number, c.quote_start)
