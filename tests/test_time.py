"""Time: the moment a question is asked at, relative time, recency, dated answers, timelines.

The resolver and the quiz scorer are pure logic and are tested alone; everything else runs on a
real store of dated articles about one story across years, with the real embedder and Chroma,
and SmolLM2 in llama.cpp where an answer is asked for.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from evaluation.metrics import Result, choice_right, gold_days, nearest_choice, quiz_figures, token_f1
from ingest import ingest
from qa_bot import QABot
from qa_bot.retrieval import visible
from qa_bot.settings import Settings
from qa_bot.timeframe import TimeScope, annotate_weekdays, moment_of, resolve, resolve_weekdays
from qa_bot.timeline import TimelineEntry, reads_as_report, topic_names
from tests.conftest import FAST_MODEL, ROOT, SAMPLE, make_settings

FRIDAY = date(2024, 1, 5)


@pytest.mark.parametrize(
    ("question", "kind", "since", "until"),
    [
        ("What happened today?", "period", "2024-01-05", "2024-01-05"),
        ("What did he say yesterday?", "period", "2024-01-04", "2024-01-05"),
        ("Which carrier reported an outage this week?", "period", "2023-12-30", "2024-01-05"),
        ("What happened last week?", "period", "2023-12-25", "2024-01-01"),
        ("What did the Fed decide last month?", "period", "2023-12-01", "2024-01-01"),
        ("What did she announce on Tuesday?", "period", "2024-01-02", "2024-01-03"),
        ("Who resigned Friday?", "period", "2024-01-05", "2024-01-05"),
        ("What has changed since March?", "period", "2023-03-01", "2024-01-05"),
        ("What has changed since March 5?", "period", "2023-03-05", "2024-01-05"),
        ("What happened in the past two weeks?", "period", "2023-12-23", "2024-01-05"),
        ("Any storms in the last 3 days?", "period", "2024-01-03", "2024-01-05"),
        ("How many strikes this year?", "period", "2024-01-01", "2024-01-05"),
        ("What happened in May?", "period", "2023-05-01", "2023-05-31"),
        ("Who is currently the CEO?", "recent", None, "2024-01-05"),
        ("What is the latest on the talks?", "recent", None, "2024-01-05"),
        ("Who won in 2019?", "named", "2019-01-01", "2019-12-31"),
        ("Why did the 1990 invasion happen?", "named", "1990-01-01", "1990-12-31"),
        ("What happened in March 2020?", "named", "2020-03-01", "2020-03-31"),
        ("What happened on 2023-12-25?", "named", "2023-12-25", "2023-12-26"),
        ("What changed between 2015 and 2018?", "named", "2015-01-01", "2018-12-31"),
    ],
)
def test_relative_time_resolves_against_the_moment(question: str, kind: str, since: str | None, until: str) -> None:
    scope = resolve(question, FRIDAY)
    assert scope is not None, question
    assert (scope.kind, scope.since and scope.since.isoformat(), scope.until.isoformat() if scope.until else None) == (
        kind,
        since,
        until,
    )


@pytest.mark.parametrize(
    "question", ["About 2000 people protested; why?", "Who is the mayor of New York?", "Why did prices rise?"]
)
def test_no_time_words_no_scope(question: str) -> None:
    assert resolve(question, FRIDAY) is None


def test_the_moment_and_an_articles_weekdays() -> None:
    assert moment_of("2024-01-05") == FRIDAY == moment_of(datetime(2024, 1, 5, 23, 30))
    assert moment_of(None) <= date.today() + timedelta(days=1)
    with pytest.raises(ValueError, match="as_of must be a date"):
        moment_of("next Tuesday-ish")
    text = "Police said on Thursday that he was arrested last Friday. He will appear in court on Monday."
    assert resolve_weekdays(text, FRIDAY) == [("on Thursday", date(2024, 1, 4)), ("last Friday", date(2023, 12, 29))]
    assert resolve_weekdays(text, None) == []  # an undated article: nothing is resolved
    assert annotate_weekdays("It fell on Thursday.", FRIDAY) == "It fell on Thursday (4 January 2024)."


def test_the_quiz_scorer_matches_a_free_answer_to_the_nearest_choice() -> None:
    choices = ["Scott Williams", "Rob Cross", "Luke Humphries", "Michael van Gerwen"]
    assert nearest_choice("Luke Humphries beat him in the final [1].", choices) == 2
    assert nearest_choice("Nobody knows.", choices) is None
    q = {"choices": choices, "answer_index": 2}
    assert choice_right("Humphries won [2].", False, q) is True
    assert choice_right("Humphries won [2].", True, q) is False  # a refusal is wrong
    assert choice_right("Rob Cross won.", False, q) is False
    assert choice_right("x", False, {"choices": []}) is None
    assert token_f1("the Luke Humphries", "Luke Humphries") == 1.0


def test_quiz_figures_say_where_the_archive_holds_the_answer() -> None:
    def result(qid: str, gold: list[str], right: bool, days: list[str] | None = None) -> Result:
        return Result.of(
            {"qid": qid, "question": "?", "answerable": True, "gold_doc_ids": gold},
            retrieved=[], answer="", refused=not right, cited=[], unsupported=0, kept_sentences=0,
            answer_score=None, asked_on="2024-01-05", choice_right=right, gold_dates=days or [],
        )  # fmt: skip

    quiz = [result("a", ["d1"], True), result("b", ["d2"], False), result("c", [], False), result("d", [], True)]
    figures = quiz_figures(quiz)
    assert figures["answered_right"] == 0.5
    assert figures["archive_holds_answer"] == 0.5  # two of four have an article stating the answer
    assert figures["answered_right_held"] == 0.5  # one of those two answered right
    # A run that recorded no gold dates cannot say what the archive held about the moment.
    assert figures["archive_holds_answer_30d"] is None and figures["answered_right_held_30d"] is None

    dated = [
        result("a", ["d1"], True, ["2023-12-20"]),  # 16 days before: the moment's news
        result("b", ["d2", "d3"], False, ["2018-05-24", "2024-01-05"]),  # one on the day itself
        result("c", ["d4"], True, ["2018-03-20"]),  # only an old story names the choice
        result("d", ["d5"], True, ["2024-01-06"]),  # after the moment: not held then
        result("e", [], False),
    ]
    figures = quiz_figures(dated)
    assert figures["archive_holds_answer"] == 0.8
    assert figures["archive_holds_answer_30d"] == 0.4
    assert figures["answered_right_held_30d"] == 0.5


def test_gold_days_reads_the_dated_questions_gold_articles(tmp_path: Path) -> None:
    rows = [
        {"doc_id": "d1", "published": "2024-01-02T10:00:00"},
        {"doc_id": "d2"},
        {"doc_id": "d3", "published": "2020-01-01"},
    ]
    (tmp_path / "corpus.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    questions = [{"asked_on": "2024-01-05", "gold_doc_ids": ["d1", "d2"]}, {"gold_doc_ids": ["d3"]}]
    assert gold_days(tmp_path, questions) == {"d1": "2024-01-02", "d2": ""}
    assert gold_days(tmp_path, questions[1:]) == {}


def test_a_timelines_names_are_the_words_its_topic_capitalises() -> None:
    texts = ["The latest: a key witness said the bridge was closed.", "Houthi rebels fired on ships."]
    names = [n.pattern for n in topic_names("Francis Scott Key Bridge collapse in Baltimore", texts)]
    assert [p.split("(")[0] for p in names] == [r"\bfrancis", r"\bscott", r"\bkey", r"\bbridge", r"\bbaltimore"]

    def found(topic: str, text: str) -> list[bool]:
        return [n.search(text.lower()) is not None for n in topic_names(topic, texts)]

    assert found("Houthi attacks", "the houthis fired") == [True]  # a plural
    assert found("Trump's hush money trial", "Trump testified") == [True]  # the possessive cut off
    assert found("Israel-Hamas war", "Israel and Hamas agreed") == [True, True]  # the hyphen splits
    assert found("Boeing 737 MAX door plug", "the maximum load of a Boeing") == [True, False]  # not "max"
    # Capitalised only for its place: written in lower case in the articles, so not a name.
    assert found("Latest on the Key Bridge", "the Key Bridge fell") == [True, True]  # no "latest"
    assert found("Boeing door plug", "a Boeing jet") == [True]  # never written "boeing": a name
    assert topic_names("the harbor bridge toll", texts) == []  # typed without capitals: names nothing
    # A topic is the user's text, never a pattern: names are its letters and digits, nothing else.
    assert [n.pattern.split("(")[0] for n in topic_names("Bridge (C++) [Tolls]* Key.+ Gaza|.*", texts)] == [
        r"\btolls",
        r"\bkey",
        r"\bgaza",
    ]
    assert found("Tolls Key.+ Gaza|.*", "new tolls on the key road to gaza") == [True, True, True]
    assert found("The Key.+", "a keyboard") == [False]  # ".+" is not "any letters"


def test_a_timeline_sentence_reads_as_a_report() -> None:
    assert reads_as_report("The transit authority raised the toll to five dollars on Tuesday.")
    assert reads_as_report('"We will rebuild the bridge," the governor said on Tuesday!')
    assert reads_as_report("The agency said shipments to the U.S. had stopped, officials said.”")
    assert not reads_as_report("What time does the Trump hush money trial start today?")  # a question
    assert not reads_as_report("Trump arrives in courtroom for day 2 of hush money trial")  # a headline
    assert not reads_as_report("The jury heard from the first witness and then the judge said...")  # cut off
    assert not reads_as_report("For the latest news from the trial, read our live trial updates.")  # to the reader
    assert not reads_as_report("Sign up for our newsletter to get the news every morning.")
    assert reads_as_report("Thousands of voters rushed to sign the petition before the deadline.")
    assert not reads_as_report("The bridge fell.")  # too short to report an event


def test_the_benchmarks_read_questions_about_now_and_same_news_pairs() -> None:
    from benchmarks.temporal_retrieval import about_now
    from benchmarks.timeline_topics import same_news_pairs

    friday = date(2024, 1, 5)
    assert about_now("Which carrier reported an outage this week?", friday)
    assert about_now("Who is the current CEO of Boeing?", friday)
    assert not about_now("Who won the 2019 final?", friday)
    assert not about_now("Which animal was the first mammal to be cloned?", friday)

    def entry(day: str, text: str) -> TimelineEntry:
        return TimelineEntry(date=day, text=text)

    trial = [
        entry("2024-04-15", "Jury selection began in the Trump hush money trial in Manhattan."),
        entry("2024-04-16", "Jury selection continued in Manhattan, with seven jurors seated."),
        entry("2024-05-30", "The jury found Trump guilty on all counts in the hush money trial."),
    ]
    # The first two share "jury", "selection", "manhattan" beyond the topic's words; the verdict
    # shares only the topic's words with them.
    assert same_news_pairs(trial, "Trump hush money trial") == 1


# ---------------------------------------------------------------- a real store of one story

STORY = [
    ("bridge-2019", "2019-05-10", "Harbor Gazette", "Harbor Bridge closed for repairs",
     "Is the Harbor Bridge safe to cross after the repairs? "
     "The Harbor Bridge was closed for repairs after inspectors found cracks in its steel cables. "
     "Drivers were told to use the ferry while the cables are replaced."),
    ("bridge-2021", "2021-08-03", "Harbor Gazette", "Harbor Bridge reopens",
     "The Harbor Bridge reopened to traffic on Monday after two years of repairs to its cables. "
     "The mayor cut a ribbon at the east end of the bridge."),
    ("bridge-2023", "2023-03-15", "Coast Times", "Council approves a Harbor Bridge toll",
     "The city council voted to charge a toll on the Harbor Bridge from June. "
     "Council members said the money would pay for the cable repairs."),
    ("bridge-2024a", "2024-01-03", "Harbor Gazette", "Harbor Bridge toll raised",
     "The transit authority raised the Harbor Bridge toll to five dollars on Tuesday. "
     "Commuters complained about the increase at a public meeting in the evening."),
    ("bridge-2024b", "2024-01-04", "Coast Times", "Bridge toll goes up",
     "The Harbor Bridge toll was raised to five dollars by the transit authority on Tuesday. "
     "Officials said the new toll would fund a bicycle lane across the span next year."),
    ("bay-2022", "2022-04-12", "Coast Times", "Bay Bridge toll rises",
     "The Bay Bridge toll rose to four dollars on Monday, the transit authority said. "
     "Drivers queued at the toll booths at both ends of the bridge."),
    ("bridge-later", "2025-06-01", "Coast Times", "Harbor Bridge toll scrapped",
     "The city scrapped the Harbor Bridge toll after a referendum. "
     "Voters rejected the toll by a wide margin in the spring ballot."),
]  # fmt: skip
UNDATED = {
    "doc_id": "bridge-tours",
    "title": "Walking tours of the Harbor Bridge",
    "source": "Historical Society",
    "published": None,
    "text": "The historical society offers guided walking tours of the Harbor Bridge every weekend. "
    "Guides explain how the steel cables of the bridge were first strung.",
}


def story_rows() -> list[dict]:
    rows = [
        {"doc_id": d, "published": p, "source": s, "title": t, "text": x, "url": f"https://news.test/{d}"}
        for d, p, s, t, x in STORY
    ]
    return [*rows, UNDATED]


@pytest.fixture(scope="module")
def story_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    path = tmp_path_factory.mktemp("time") / "store"
    corpus = path.parent / "story.jsonl"
    corpus.write_text("\n".join(json.dumps(r) for r in story_rows()) + "\n")
    settings = make_settings(path, generation=FAST_MODEL["generation"], answer=FAST_MODEL["answer"])
    report = ingest([str(corpus)], settings)
    assert report.ok and len(report.added) == len(STORY) + 1, report.failed
    return settings


@pytest.fixture(scope="module")
def bot(story_settings: Settings) -> QABot:
    return QABot(story_settings)


MOMENTS = {"2019-06-01": "bridge-2019", "2021-08-06": "bridge-2021", "2024-01-05": "bridge-2024"}


@pytest.mark.parametrize(("moment", "expected"), MOMENTS.items())
def test_latest_and_this_week_get_the_article_of_their_moment(bot: QABot, moment: str, expected: str) -> None:
    for question in (
        "What is the latest news about the Harbor Bridge?",
        "What happened to the Harbor Bridge this week?",
    ):
        passages = bot.retrieve(question, as_of=moment)
        assert passages[0].doc_id.startswith(expected), (question, moment, [p.doc_id for p in passages])
        assert all(p.published and p.published <= moment for p in passages if p.published)
        assert "bridge-tours" not in {p.doc_id for p in passages}  # undated, ingested today: after the moment


def test_asked_as_of_a_moment_before_everything_it_says_so(bot: QABot) -> None:
    # The archive starts on 2019-05-10 (and its undated article was ingested today).
    early = bot.ask("What happened to the Harbor Bridge?", as_of="2010-01-01")
    assert (
        early.refused
        and early.text == "Nothing in the archive was published on or before 1 January 2010: ask as of a later date."
    )
    assert not early.passages and early.as_of == "2010-01-01"
    # The day before the first article is still before everything; its own day is not.
    assert bot.ask("What happened to the Harbor Bridge?", as_of="2019-05-09").text.startswith("Nothing in the archive")
    assert not bot.ask("Why was the Harbor Bridge closed?", as_of="2019-05-10").text.startswith(
        "Nothing in the archive"
    )


@pytest.mark.parametrize("moment", MOMENTS)
def test_nothing_after_the_moment_is_cited_and_the_answer_says_its_moment(bot: QABot, moment: str) -> None:
    answer = bot.ask("What happened to the Harbor Bridge toll?", as_of=moment)
    assert answer.as_of == moment
    assert all(p.published <= moment for p in answer.passages)
    for c in answer.citations:
        assert c.passage.published <= moment
    if answer.citations:
        assert answer.newest == max(c.passage.published for c in answer.citations)
        assert answer.dateline.startswith("As of ")


def test_now_prefers_the_newest_and_a_named_year_gets_its_year(bot: QABot) -> None:
    assert bot.retrieve("Harbor Bridge toll")[0].doc_id == "bridge-later"  # as of today
    assert bot.retrieve("What happened to the Harbor Bridge in 2019?")[0].doc_id == "bridge-2019"
    assert bot.retrieve("Harbor Bridge cables repairs in 2021", as_of="2024-01-05")[0].doc_id == "bridge-2021"


def test_the_prompt_carries_dates_and_the_moment_and_old_evidence_is_said(bot: QABot) -> None:
    q = "Who offers walking tours of the Harbor Bridge?"
    vector = bot.embed_question(q)
    passages = bot.retrieve(q, vector=vector)
    assert passages[0].doc_id == "bridge-tours"  # undated: found as of today (it was ingested before)
    evidence = bot.weigh_evidence(q, vector, passages)
    messages = bot.build_prompt(q, vector, evidence, evidence.passages, moment=FRIDAY)
    user = messages[-1]["content"]
    assert "Walking tours of the Harbor Bridge (Historical Society)\n" in user  # undated: no date shown
    assert "(Harbor Gazette, 3 January 2024)" in user or "(Coast Times, " in user
    assert "Asked on 5 January 2024. Question:" in user
    assert "on Tuesday (2 January 2024)" in user or "bridge-2024a" not in {p.doc_id for p in passages}
    # An answer about now whose newest cited article is old says so.
    answer = bot.ask("What is the latest on the Harbor Bridge cables?", as_of="2024-01-05")
    assert answer.as_of == "2024-01-05"
    if answer.citations and answer.newest < "2023-12-01":
        assert "newest article on this is from" in answer.note


def test_an_undated_article_counts_as_published_when_ingested(bot: QABot) -> None:
    undated_meta = {"doc_id": "x", "indexed_at": int(datetime(2026, 1, 2, 12).timestamp() * 1000)}
    assert visible(undated_meta, date(2026, 1, 2)) and not visible(undated_meta, date(2026, 1, 1))
    dated = {"doc_id": "y", "published_ts": int(datetime(2024, 1, 4).timestamp()) // 86400 * 86400}
    assert visible(dated, date(2024, 1, 4)) and not visible(dated, date(2024, 1, 3))
    q = "Who offers walking tours of the Harbor Bridge?"
    assert "bridge-tours" in {p.doc_id for p in bot.retrieve(q)}
    assert "bridge-tours" not in {p.doc_id for p in bot.retrieve(q, as_of="2025-01-01")}


def test_timeline_is_in_date_order_with_exact_quotes_and_one_entry_per_event(bot: QABot) -> None:
    found = bot.timeline("Harbor Bridge", as_of="2024-12-31")
    dates = [e.date for e in found.entries]
    assert dates == sorted(dates) and dates
    assert all(d <= "2024-12-31" for d in dates)  # the 2025 article is after the moment
    by_doc = {c.passage.doc_id: e for e in found.entries for c in e.citations}
    assert {"bridge-2019", "bridge-2021", "bridge-2023"} <= set(by_doc)
    for entry in found.entries:
        for c in entry.citations:
            assert c.quote in c.passage.text and c.passage.text[c.quote_start :].startswith(c.quote)
        assert entry.text == entry.citations[0].quote
    # The toll rise reported by two outlets is one entry, dated the Tuesday both name.
    toll = by_doc["bridge-2024a"]
    assert by_doc["bridge-2024b"] is toll and len(toll.citations) == 2
    assert toll.date == "2024-01-02"
    assert by_doc["bridge-2021"].date == "2021-08-02"  # "reopened ... on Monday", from the article's Tuesday
    assert by_doc["bridge-2019"].date == "2019-05-10"
    assert "bridge-tours" not in by_doc  # an undated article cannot be placed in time
    assert "bay-2022" not in by_doc  # another bridge: it does not name the topic's "Harbor"
    assert not any(e.text.endswith("?") for e in found.entries)  # a question reports nothing
    assert found.seconds < 30
    rows = found.to_list()
    assert set(rows[0]) == {"date", "text", "citations"}
    assert set(rows[0]["citations"][0]) == {"doc_id", "url", "title", "source", "quote"}
    window = bot.timeline("Harbor Bridge", since="2021-01-01", until="2023-12-31")
    assert {e.date[:4] for e in window.entries} <= {"2021", "2022", "2023"} and window.entries


def test_whats_new_since_a_date_lists_only_what_was_not_reported_before(bot: QABot) -> None:
    answer = bot.ask("What's new about the Harbor Bridge toll since 2023-06-01?", as_of="2024-12-31")
    assert answer.mode == "whats_new" and not answer.refused
    cited = {c.passage.doc_id for c in answer.citations}
    assert cited & {"bridge-2024a", "bridge-2024b"}
    assert all(c.passage.published >= "2023-06-01" for c in answer.citations)
    for c in answer.citations:
        assert f"[{c.number}]" in answer.text and c.quote in c.passage.text
    nothing = bot.whats_new("Harbor Bridge toll", since="2024-06-01", as_of="2024-12-31")
    assert not nothing.citations and "nothing new" in nothing.text


def test_the_cli_asks_as_of_a_date_and_prints_a_timeline(story_settings: Settings, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps(json.loads(story_settings.model_dump_json())))
    run = [sys.executable, "-m", "ui.cli"]
    asked = subprocess.run(
        [*run, "ask", "What happened to the Harbor Bridge this week?", "--as-of", "2021-08-06", "--json",
         "--config", str(config)],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert asked.returncode == 0, asked.stderr
    out = json.loads(asked.stdout)
    assert out["as_of"] == "2021-08-06"
    assert out["passages"][0]["doc_id"] == "bridge-2021"
    assert all(p["published"] <= "2021-08-06" for p in out["passages"] if p["published"])
    bad = subprocess.run(
        [*run, "ask", "Anything?", "--as-of", "someday", "--config", str(config)],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert bad.returncode == 2 and "as_of must be a date" in bad.stderr and "Traceback" not in bad.stderr
    shown = subprocess.run(
        [*run, "timeline", "Harbor Bridge", "--as-of", "2024-12-31", "--json", "--config", str(config)],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    rows = json.loads(shown.stdout)
    assert [r["date"] for r in rows] == sorted(r["date"] for r in rows) and rows
    assert all(c["quote"] and c["doc_id"] for r in rows for c in r["citations"])


def test_the_early_answer_quotes_a_sentence_once(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "store", generation=FAST_MODEL["generation"], answer=FAST_MODEL["answer"])
    assert ingest([str(SAMPLE)], settings).ok
    bot = QABot(settings)
    for question in ("What did he say about Ukraine?", "Why did Putin praise Trump?"):
        vector = bot.embed_question(question)
        evidence = bot.weigh_evidence(question, vector, bot.retrieve(question, vector=vector))
        early = bot.early_answer(question, vector, bot.select_passages(evidence), 0.0, {})
        quotes = [" ".join(c.quote.split()) for c in early.citations]
        assert len(quotes) == len(set(quotes)), early.text
        assert not any(a != b and a in b for a in quotes for b in quotes), early.text


def test_a_named_period_scope_holds_its_days() -> None:
    scope = TimeScope("named", date(2019, 1, 1), date(2019, 12, 31), "2019")
    assert scope.holds(date(2019, 6, 1)) and not scope.holds(date(2020, 1, 1)) and not scope.holds(None)
