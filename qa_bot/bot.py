"""The Python API: ask questions of the ingested articles.

Usage::

    from qa_bot import QABot, load_settings
    bot = QABot(load_settings("config.yaml"))          # QABot() uses the default config
    answer = bot.ask("Why did Putin praise Trump?")
    answer.text, answer.refused, answer.citations, answer.passages
    for part in bot.stream("What did he say about Ukraine?", history=[(q, answer.text)]):
        ...  # an EarlyAnswer (quoted, cited), str deltas while the model writes, then the final Answer
    bot.retrieve("Putin Trump", k=4, filters={"source": "CNN", "published": ("2024-11-01", None)})
    bot.as_retriever()                                  # a LangChain BaseRetriever

The answer path is a chain of public stages, read top to bottom in :meth:`QABot.stream`;
a test or a benchmark can call any of them alone, or replace one::

    question = bot.check_question(q); vector = bot.embed_question(question)   # embedded once
    passages = bot.retrieve(question, vector=vector)                          # 1. retrieve
    evidence = bot.weigh_evidence(question, vector, passages)                 # 2. select the prompt's evidence
    shown = bot.select_passages(evidence)
    messages = bot.build_prompt(question, vector, evidence, shown)            # 3. build the prompt
    scores = {"evidence": evidence.best, **bot.judge(messages)}               # 4. judge answerability
    decide(scores, bot.settings.answer, bot.yes_below(), has_probe, judged=True)  # 5. decide (pure)
    raw = "".join(bot.generate(messages))                                     # 6. generate
    answer = bot.check_answer(question, vector, raw, shown, scores)           # 7. check citations

Models load lazily on first use and are reused. Article text is passed to the model as
quoted data inside a fenced block; sentences in it that address an AI ("ignore your
instructions…") are left out of the prompt, and every citation is checked afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property
from typing import Any, Literal
from urllib.parse import urlsplit

import numpy as np

from qa_bot import prompts
from qa_bot import timeline as timelines
from qa_bot.archive import Archive, Store
from qa_bot.citations import (
    Checked,
    PassageSentences,
    SupportScorer,
    content_words,
    extractive_answer,
    looks_like_refusal,
    strip_citations,
    support,
    verify_citations,
)
from qa_bot.embeddings import Embedder, get_embedder
from qa_bot.generation import GenerationError, Generator, get_generator, yes_threshold
from qa_bot.prompts import (
    ANSWERABLE_CHECK,
    EMPTY_STORE,
    INSTRUCTION_LIKE,
    NOTHING_BY_THEN,
    REFUSAL,
    Message,
    with_line,
)
from qa_bot.results import Answer, Citation, EarlyAnswer, Filters, FurtherSource, Passage
from qa_bot.retrieval import Retriever
from qa_bot.schema import day_ts
from qa_bot.settings import AnswerSettings, Settings, load_settings
from qa_bot.timeframe import TimeScope, annotate_weekdays, long_date, moment_of, month_year, parse_day, resolve
from qa_bot.timeline import Timeline, whats_new_request

History = Sequence[tuple[str, str]]
Verdict = Literal["refuse", "judge", "answer"]


class QuestionError(ValueError):
    """The question itself is unusable (empty, too long); the message says why."""


class QABot:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or load_settings()

    # ------------------------------------------------------------ lazily built parts

    @cached_property
    def embedder(self) -> Embedder:
        return get_embedder(self.settings.embedding)

    @cached_property
    def archive(self) -> Archive:
        return Archive(self.settings, lambda: self.embedder.dimension)  # the embedder loads only for the chunks

    @property
    def store(self) -> Store:
        return self.archive.store

    @cached_property
    def retriever(self) -> Retriever:
        return Retriever(self.settings.retrieval, self.store, self.embedder, self.archive.lexical)

    @cached_property
    def scorer(self) -> SupportScorer:
        return SupportScorer(self.embedder)

    @cached_property
    def generator(self) -> Generator:
        return get_generator(self.settings.generation)

    # ------------------------------------------------------------ API

    def retrieve(
        self,
        question: str,
        k: int | None = None,
        filters: Filters | dict[str, Any] | None = None,
        history: History | None = None,
        vector: np.ndarray | None = None,
        as_of: date | datetime | str | None = None,
    ) -> list[Passage]:
        """Stage 1: the passages for the question as of ``as_of`` (None: now; nothing published
        after it is returned); ``vector``: the question's embedding, if already made."""
        question = self.check_question(question)
        query = vector.tolist() if vector is not None else None
        passages = self.retriever.search(
            question,
            k=k,
            filters=Filters.coerce(filters),
            context=_context(history),
            vector=query,
            as_of=None if as_of is None else moment_of(as_of),
        )
        self._further_sources(passages)
        return passages

    def _further_sources(self, passages: list[Passage]) -> None:
        """Name the other outlets of each passage's story (wire copies grouped at ingest): one get by id."""
        if not passages:
            return
        copies = self.archive.also_reported_by([p.doc_id for p in passages])
        for p in passages:
            p.also_reported_by = [
                FurtherSource(
                    c.article.source or urlsplit(c.article.url).hostname or "", c.article.title, c.article.url
                )
                for c in copies.get(p.doc_id, [])
            ]

    def ask(
        self,
        question: str,
        history: History | None = None,
        filters: Filters | dict[str, Any] | None = None,
        as_of: date | datetime | str | None = None,
    ) -> Answer:
        """The checked answer as of ``as_of`` (None: now): the last thing :meth:`stream` yields."""
        final = None
        for part in self.stream(question, history=history, filters=filters, as_of=as_of):
            if isinstance(part, Answer):
                final = part
        assert final is not None
        return final

    def stream(
        self,
        question: str,
        history: History | None = None,
        filters: Filters | dict[str, Any] | None = None,
        as_of: date | datetime | str | None = None,
    ) -> Iterator[EarlyAnswer | str | Answer]:
        """Yield an :class:`EarlyAnswer`, then text deltas as the model writes them, then the checked :class:`Answer`.

        The early answer (the passages' own best sentences, cited) comes as soon as retrieval and
        the evidence scores are done, before the model reads its prompt; a question whose evidence
        is too weak gets no early answer, only the final refusal. The deltas are the model's raw
        text; the final :class:`Answer` is what to show: its citations are checked and its text
        may differ from the deltas (unsupported sentences dropped), or be a refusal.

        ``as_of`` is the moment the question is asked at (a date, datetime or ISO string; None:
        now): nothing published after it is retrieved, "this week" or "latest" in the question
        are read against it, the prompt states it, and the answer says what it is as of
        (:attr:`Answer.dateline`).
        """
        began = time.perf_counter()
        question = self.check_question(question)
        moment = moment_of(as_of)
        request = whats_new_request(question, moment)
        if request is not None:  # "What's new about X since D?"
            yield self.whats_new(request[0], request[1], as_of=moment, filters=filters)
            return
        vector = self.embed_question(question)
        passages = self.retrieve(question, filters=filters, history=history, vector=vector, as_of=as_of)
        timings = {"retrieval": time.perf_counter() - began}
        if not passages:
            yield Answer(text=self.nothing_found(moment), refused=True, mode="refused", timings=timings,
                         as_of=moment.isoformat())  # fmt: skip
            return
        evidence = self.weigh_evidence(question, vector, passages)
        scores = {"evidence": evidence.best}
        settings, yes_below, has_probe = self.settings.answer, self.yes_below(), self.generator.probe is not None
        if decide(scores, settings, yes_below, has_probe, judged=False) == "refuse":
            yield self.date_answer(refusal(passages, timings, scores), question, moment)
            return
        shown = self.select_passages(evidence)
        messages = self.build_prompt(question, vector, evidence, shown, history, moment)
        if not evidence.weak(settings):
            # Cited words first: the model may take many seconds to read its prompt on a slow CPU.
            yield self.early_answer(question, vector, shown, began, timings)
        if yes_below > 0:  # 0: the check is off
            scores.update(self.judge(messages))
            if "answerable" in scores or "probe" in scores:
                timings["check"] = time.perf_counter() - began
        if decide(scores, settings, yes_below, has_probe, judged=True) == "refuse":
            yield self.date_answer(refusal([ps.passage for ps in shown], timings, scores), question, moment)
            return
        raw: list[str] = []
        for delta in self.generate(messages):
            if not raw:
                timings["first_token"] = time.perf_counter() - began
            raw.append(delta)
            yield delta
        timings["answer"] = time.perf_counter() - began
        answer = self.check_answer(question, vector, "".join(raw), shown, scores, timings)
        yield self.date_answer(answer, question, moment)

    def timeline(
        self,
        topic: str,
        since: date | str | None = None,
        until: date | str | None = None,
        as_of: date | datetime | str | None = None,
        filters: Filters | dict[str, Any] | None = None,
        limit: int = 20,
    ) -> Timeline:
        """The topic's events in date order, each one exact quoted sentence with every article that
        reports it, from ``since`` to ``until`` (inclusive) as of ``as_of`` (None: now).

        Extractive and without a model call (qa_bot.timeline says how)::

            for e in bot.timeline("Boeing 737 MAX", since="2024-01-01").entries:
                print(e.date, e.text, [c.passage.source for c in e.citations])
        """
        began = time.perf_counter()
        topic = self.check_question(topic)
        moment = moment_of(as_of)
        period = Filters.coerce({"since": since, "until": until})
        lo, hi = period.since, period.until
        entries = timelines.build(
            topic, self._timeline_search, self.scorer, self.embed_question(topic), moment, lo, hi,
            Filters.coerce(filters), limit,
        )  # fmt: skip
        return Timeline(
            topic,
            entries,
            as_of=moment.isoformat(),
            since=lo.isoformat() if lo else "",
            until=hi.isoformat() if hi else "",
            seconds=round(time.perf_counter() - began, 3),
        )

    def whats_new(
        self,
        topic: str,
        since: date | str,
        as_of: date | datetime | str | None = None,
        filters: Filters | dict[str, Any] | None = None,
    ) -> Answer:
        """What the articles report about ``topic`` after ``since`` that they had not reported
        before it, as a cited answer (one dated line per event); ``qa-bot ask "What's new about X
        since 2024-03-01?"`` comes here too."""
        began = time.perf_counter()
        moment = moment_of(as_of)
        day = timelines.since_day(since, moment)
        found = self.timeline(topic, since=day, as_of=moment, filters=filters)
        before = timelines.day_before(day)
        window = Filters.coerce(filters)
        window = Filters(source=window.source, since=window.since, until=before)
        earlier = self._timeline_search(topic, 20, window, TimeScope("named", window.since, before, "before"))
        entries = timelines.new_since(found.entries, earlier, self.scorer)
        timings = {"answer": time.perf_counter() - began}
        if not entries:
            text = prompts.NOTHING_NEW.format(topic=topic, since=long_date(day))
            return Answer(text=text, refused=False, mode="whats_new", timings=timings, as_of=moment.isoformat())
        citations: list[Citation] = []
        lines = []
        for entry in entries:
            marks = ""
            for c in entry.citations:
                citations.append(Citation(len(citations) + 1, c.passage, c.quote, c.quote_start, c.support))
                marks += f"[{len(citations)}]"
            lines.append(f"- {long_date(date.fromisoformat(entry.date))}: {entry.text} {marks}")
        text = prompts.NEW_SINCE.format(topic=topic, since=long_date(day)) + "\n" + "\n".join(lines)
        passages = [c.passage for c in citations]
        answer = Answer(text, False, citations, passages, mode="whats_new", timings=timings, as_of=moment.isoformat())
        answer.newest = max(e.date for e in entries)
        return answer

    def _timeline_search(self, topic: str, k: int, filters: Filters, scope: TimeScope) -> list[Passage]:
        passages = self.retriever.search(topic, k=k, filters=filters, as_of=filters.until, scope=scope)
        self._further_sources(passages)
        return passages

    def as_retriever(self, k: int | None = None, filters: Filters | dict[str, Any] | None = None) -> Any:
        from qa_bot.langchain import QABotRetriever

        return QABotRetriever(bot=self, k=k, filters=filters)

    # ------------------------------------------------------------ the stages, in order

    def check_question(self, question: str) -> str:
        """The question with its whitespace folded; :class:`QuestionError` if empty or too long."""
        if not isinstance(question, str) or not question.strip():
            raise QuestionError("the question is empty; type a question about the articles")
        limit = self.settings.answer.max_question_chars
        if len(question) > limit:
            raise QuestionError(
                f"the question is {len(question):,} characters long; the limit is {limit:,} (answer.max_question_chars)"
            )
        return " ".join(question.split())

    def embed_question(self, question: str) -> np.ndarray:
        """The question's unit vector: made once, used by retrieval, evidence, prompt and quotes."""
        return np.asarray(self.embedder.embed([question]), dtype=np.float32)[0]

    def nothing_found(self, moment: date) -> str:
        """Why nothing was retrieved, in words: an empty archive, a moment before everything in it
        (asked "as of 1999" of an archive that starts in 2008), or no passage for the question."""
        if self.store.is_empty():
            return EMPTY_STORE
        day_end = day_ts(moment) + 86400
        if not self.store.holds_by(day_end, day_end * 1000):
            return NOTHING_BY_THEN.format(day=long_date(moment))
        return REFUSAL

    def weigh_evidence(self, question: str, vector: np.ndarray, passages: list[Passage]) -> Evidence:
        """Stage 2a: the passages split into sentences, and how well each passage's best sentence
        matches the question (:func:`qa_bot.citations.support`, the scale of every score here)."""
        prepared = self.scorer.prepare(passages)
        words = set(content_words(question))
        scores = [float(np.max(support(ps.vectors, ps.words, vector, words))) for ps in prepared]
        return Evidence(prepared, scores)

    def select_passages(self, evidence: Evidence) -> list[PassageSentences]:
        """Stage 2b: the passages the model is shown, those within generation.passage_margin of the
        best one's evidence.

        A passage from the best one's article is kept whatever its evidence: an answer often
        runs on into the next chunk.
        """
        best = int(np.argmax(evidence.scores))
        floor = evidence.scores[best] - self.settings.generation.passage_margin
        article = evidence.passages[best].passage.doc_id
        return [
            ps
            for ps, e in zip(evidence.passages, evidence.scores, strict=True)
            if e >= floor or ps.passage.doc_id == article
        ]

    def build_prompt(
        self,
        question: str,
        vector: np.ndarray,
        evidence: Evidence,
        shown: list[PassageSentences],
        history: History | None = None,
        moment: date | None = None,
    ) -> list[Message]:
        """Stage 3: the model's messages (qa_bot.prompts), each shown passage cut to its sentences
        closest to the question within an even share of generation.prompt_tokens.

        The share is of every retrieved passage, not only of those shown: the left-out passages'
        share is saved, not handed to the others, because each prompt token delays the first token
        of the answer (docs/experiments/2026-11-28-passage-margin.md); and an even share, not one
        budget for all, because giving the best passage more made the model refuse more often, not
        answer better (docs/experiments/2026-11-28-first-token-latency.md).
        """
        share = max(40, int(self.generator.settings.prompt_tokens) // max(1, len(evidence.passages)))
        moment = moment or moment_of(None)
        texts = [self.passage_text(ps, vector, share) for ps in shown]
        blocks: list[str] = []
        seen_docs: dict[str, int] = {}
        for n, (ps, body) in enumerate(zip(shown, texts, strict=True), start=1):
            p = ps.passage
            if p.doc_id in seen_docs:  # the title again would only cost prompt time
                blocks.append(prompts.MORE_OF.format(number=n, first=seen_docs[p.doc_id], body=body))
                continue
            seen_docs[p.doc_id] = n
            day = parse_day(p.published)
            meta = ", ".join(x for x in (p.source, long_date(day) if day else "") if x)
            title = p.title if len(p.title) <= 80 else p.title[:80].rsplit(" ", 1)[0] + "…"
            blocks.append(prompts.PASSAGE.format(number=n, title=title, meta=f" ({meta})" if meta else "", body=body))
        # Retrieval already saw the whole earlier turn (_context); the prompt only names its question.
        earlier = history[-1][0] if history else None
        # The day asked matters only beside dated passages; without them the prompt is as before.
        dated = any(parse_day(ps.passage.published) for ps in shown)
        user = prompts.user_message(blocks, question, earlier, long_date(moment) if dated else "")
        return [{"role": "system", "content": prompts.SYSTEM}, {"role": "user", "content": user}]

    def passage_text(self, ps: PassageSentences, vector: np.ndarray, budget: int) -> str:
        """The passage's sentences most relevant to the question, in article order, within budget."""
        order = np.argsort(-(ps.vectors @ vector))
        lengths = self.embedder.count_tokens([ps.sentence(i) for i in range(len(ps.spans))])
        chosen: list[int] = []
        used = 0
        for i in order:
            sentence = ps.sentence(int(i))
            if INSTRUCTION_LIKE.search(sentence):
                continue  # article text is data: a sentence that addresses the AI is not passed on
            if chosen and used + lengths[i] > budget:
                continue
            chosen.append(int(i))
            used += lengths[i]
        # "on Thursday" in the article, with its calendar date from the article's own (timeframe).
        return annotate_weekdays(" ".join(ps.sentence(i) for i in sorted(chosen)), parse_day(ps.passage.published))

    def early_answer(
        self, question: str, vector: np.ndarray, shown: list[PassageSentences], began: float, timings: dict[str, float]
    ) -> EarlyAnswer:
        """The shown passages' best sentences, quoted and cited: no model time, the vectors exist."""
        quoted = extractive_answer(question, shown, self.scorer, q_vec=vector, per_sentence=True)
        timings["early"] = time.perf_counter() - began
        return EarlyAnswer(quoted.text, quoted.citations, [ps.passage for ps in shown], timings["early"])

    def yes_below(self) -> float:
        """The P(yes) below which the model's judgement refuses; 0 when the check is off."""
        a = self.settings.answer
        return yes_threshold(self.generator.settings) if a.answerable_below == "auto" else a.answerable_below

    def judge(self, messages: list[Message]) -> dict[str, float]:
        """Stage 4: the model's own judgement, before it writes: do these passages answer the question?

        Read by its answerability probe where it has one (qa_bot.probe), else by P(yes); the
        scores ``answerable`` and ``probe`` for what was read.
        """
        judgement = self.generator.judge(with_line(messages, ANSWERABLE_CHECK))
        scores: dict[str, float] = {}
        if judgement.yes is not None:
            scores["answerable"] = judgement.yes
        if judgement.probe is not None:
            scores["probe"] = judgement.probe
        return scores

    def generate(self, messages: list[Message]) -> Iterator[str]:
        """Stage 6: the model's answer, as it writes it."""
        return self.generator.stream(messages)

    def check_answer(
        self,
        question: str,
        vector: np.ndarray,
        raw: str,
        shown: list[PassageSentences],
        scores: dict[str, float],
        timings: dict[str, float] | None = None,
    ) -> Answer:
        """Stage 7: the model's text with its citations checked, corrected and completed; a refusal
        or an extractive answer (by :func:`strong`) where it refused or nothing it said is supported."""
        timings = timings if timings is not None else {}
        passages = [ps.passage for ps in shown]
        a = self.settings.answer
        if looks_like_refusal(raw) or not raw.strip():
            if strong(scores, a):
                return answer_of(
                    extractive_answer(question, shown, self.scorer, q_vec=vector), passages, timings, scores
                )
            return refusal(passages, timings, scores)
        checked = verify_citations(raw, shown, self.scorer, threshold=a.support_threshold)
        if not checked.text:
            if strong(scores, a):
                fallback = extractive_answer(question, shown, self.scorer, q_vec=vector)
                fallback.unsupported = checked.unsupported
                return answer_of(fallback, passages, timings, scores)
            refused = refusal(passages, timings, scores)
            refused.unsupported = checked.unsupported
            return refused
        return answer_of(checked, passages, timings, scores, mode="generated")

    def date_answer(self, answer: Answer, question: str, moment: date) -> Answer:
        """Stage 8: say what the answer is as of: the moment, the newest cited article's date, and
        a note when that is older than the question suggests (docs/architecture.md, "Time").

        The note: for a question about a period near the moment ("this week", "since March"),
        when the newest cited article is from before the period; for one about now or naming no
        time, when it is more than answer.stale_days older than the moment; none for a question
        naming a calendar period ("in 2019"). Cited articles none of which is dated are said to be.
        """
        answer.as_of = moment.isoformat()
        if answer.refused or not answer.citations:
            return answer
        dated = [d for c in answer.citations if (d := parse_day(c.passage.published)) is not None]
        if not dated:
            answer.note = prompts.UNDATED_NOTE
            return answer
        newest = max(dated)
        answer.newest = newest.isoformat()
        scope = resolve(question, moment)
        if scope is not None and scope.kind == "period" and scope.since and newest < scope.since:
            answer.note = prompts.OLD_FOR_PERIOD.format(newest=month_year(newest), phrase=scope.phrase)
        elif (scope is None or scope.kind == "recent") and (moment - newest).days > self.settings.answer.stale_days:
            answer.note = prompts.OLD_FOR_NOW.format(newest=month_year(newest))
        return answer


@dataclass
class Evidence:
    """The retrieved passages split into sentences, and each one's best match with the question."""

    passages: list[PassageSentences]
    scores: list[float]

    @property
    def best(self) -> float:
        return max(self.scores)

    def weak(self, answer: AnswerSettings) -> bool:
        """Below answer.refuse_below: no early answer, and refused unless the model's probe is sure."""
        return self.best < answer.refuse_below


def decide(
    scores: dict[str, float], answer: AnswerSettings, yes_below: float, has_probe: bool, judged: bool
) -> Verdict:
    """Stage 5: refuse, go on to the model's judgement, or answer. A pure function of the scores.

    ``scores``: ``evidence`` always; ``answerable`` (P(yes)) and ``probe`` once the judge stage
    has run (``judged``; it is skipped when ``yes_below`` is 0, the check turned off). Weak
    evidence (below answer.refuse_below) is refused at once where the model has no probe;
    otherwise it is refused unless the probe is sure (above
    answer.probe_overrides): the probe was sure for 6 of the 8 answerable questions the
    evidence gate refused on squad2 and clapnq, and for 1 of its 53 others. The model's
    judgement refuses below answer.probe_below (probe) or ``yes_below`` (P(yes); 0: no check).
    """
    weak = scores["evidence"] < answer.refuse_below
    if not judged:  # before the model is asked: only weak evidence with no probe to overrule it
        return "refuse" if weak and not has_probe else "judge"
    if "probe" in scores:
        unanswerable = scores["probe"] < answer.probe_below
    else:
        unanswerable = "answerable" in scores and scores["answerable"] < yes_below
    if unanswerable or (weak and not scores.get("probe", 0.0) > answer.probe_overrides):
        return "refuse"
    return "answer"


def strong(scores: dict[str, float], answer: AnswerSettings) -> bool:
    """Evidence strong enough, or a probe sure enough, to answer from the passages' own sentences
    where the model refused or said nothing supported."""
    return scores["evidence"] >= answer.strong_evidence or scores.get("probe", 0.0) > answer.probe_overrides


def refusal(passages: list[Passage], timings: dict[str, float], scores: dict[str, float]) -> Answer:
    return Answer(text=REFUSAL, refused=True, passages=passages, mode="refused", timings=timings, scores=scores)


def answer_of(
    checked: Checked,
    passages: list[Passage],
    timings: dict[str, float],
    scores: dict[str, float],
    mode: str = "extractive",
) -> Answer:
    return Answer(
        text=checked.text,
        refused=False,
        citations=checked.citations,
        passages=passages,
        unsupported=checked.unsupported,
        mode=mode,
        timings=timings,
        scores=scores,
    )


def _context(history: History | None) -> str:
    """Earlier turns, for retrieval: the last question and the start of its answer."""
    if not history:
        return ""
    last_q, last_a = history[-1]
    return f"{last_q} {strip_citations(last_a)[:300]}"


__all__ = [
    "EMPTY_STORE",
    "REFUSAL",
    "Answer",
    "EarlyAnswer",
    "Evidence",
    "GenerationError",
    "QABot",
    "QuestionError",
    "decide",
    "strong",
    "with_line",
]
