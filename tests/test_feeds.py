"""News-grade feed ingestion against news sites on loopback that the tests start: conditional
requests, robots.txt, retries, concurrency with a slow and a failing host, XML attacks, wire
copies grouped, and ``watch`` backing off a failing source."""

from __future__ import annotations

import html
import json
import time
from collections.abc import Iterator
from pathlib import Path

import feedparser
import pytest
import yaml

from benchmarks.newsroom import NewsSite, article_html, rss
from ingest import ingest
from ingest.fetchlog import FetchLog, source_states
from ingest.watch import Watcher
from qa_bot import QABot
from qa_bot.archive import FETCHED, Archive, open_store
from qa_bot.settings import Settings
from tests.conftest import ROOT, make_settings
from tests.test_cli import qa_bot
from ui.app import App, render_sources

STORIES = [json.loads(line) for line in (ROOT / "tests" / "data" / "ares-60.jsonl").read_text().splitlines()]


def text_of(i: int) -> str:
    """Story ``i`` of tests/data/ares-60.jsonl, a paragraph per two sentences."""
    sentences = [s.strip() for s in STORIES[i]["text"].split(". ") if s.strip()]
    return "\n".join(". ".join(sentences[j : j + 2]) + "." for j in range(0, len(sentences), 2))


@pytest.fixture
def site() -> Iterator[NewsSite]:
    with NewsSite("127.0.0.1") as s:
        yield s


def feed_of(site: NewsSite, n: int, delay: float = 0.0, first: int = 0) -> str:
    items = []
    for i in range(first, first + n):
        site.add(f"/story/{i}.html", article_html(f"Story {i}", text_of(i)), delay=delay)
        items.append((f"Story {i}", site.url(f"/story/{i}.html")))
    site.add("/feed.xml", rss("Planet Wire", items), content_type="application/rss+xml")
    return site.url("/feed.xml")


def test_an_unchanged_feed_is_one_304_and_no_page_is_fetched_again(site: NewsSite, settings: Settings) -> None:
    url = feed_of(site, 3)
    first = ingest([url], settings)
    assert len(first.added) == 3 and first.ok, first.failed
    site.reset()
    again = ingest([url], settings)
    assert sorted(again.unchanged) == sorted(first.added) and again.chunks_written == 0
    assert site.page_hits() == ["/feed.xml"] and ("/feed.xml", 304) in site.hits
    assert again.traffic.not_modified == 1 and again.traffic.bodies == 0 and again.traffic.bytes == 0


def test_a_changed_feed_fetches_only_its_new_item(site: NewsSite, settings: Settings) -> None:
    url = feed_of(site, 3)
    ingest([url], settings)
    feed_of(site, 4)  # a new item at the end, the old three as they were
    site.reset()
    report = ingest([url], settings)
    assert len(report.added) == 1 and len(report.unchanged) == 3
    assert site.page_hits() == ["/feed.xml", "/story/3.html"]


def test_a_server_without_validators_is_compared_by_hash(site: NewsSite, settings: Settings) -> None:
    url = feed_of(site, 2)
    for page in site.pages.values():
        page.validators = False
    ingest([url], settings)
    site.reset()
    report = ingest([url], settings)
    assert len(report.unchanged) == 2 and site.page_hits() == ["/feed.xml"]  # same body: items not read


def test_a_changed_page_behind_a_conditional_request_is_read_again(site: NewsSite, settings: Settings) -> None:
    site.add("/story.html", article_html("Story", text_of(0)))
    ingest([site.url("/story.html")], settings)
    site.reset()
    assert ingest([site.url("/story.html")], settings).unchanged and site.page_hits() == ["/story.html"]
    assert site.hits[-1] == ("/story.html", 304)
    site.add("/story.html", article_html("Story", text_of(0) + "\nA correction was appended."))
    report = ingest([site.url("/story.html")], settings)
    assert len(report.updated) == 1 and site.hits[-1] == ("/story.html", 200)


def test_robots_txt_disallow_is_obeyed_for_our_user_agent(site: NewsSite, settings: Settings) -> None:
    site.add("/robots.txt", b"User-agent: qa-bot\nDisallow: /private/\n\nUser-agent: *\nDisallow: /public/\n")
    site.add("/private/a.html", article_html("Private", text_of(0)))
    site.add("/public/b.html", article_html("Public", text_of(1)))
    report = ingest([site.url("/private/a.html"), site.url("/public/b.html")], settings)
    reasons = dict(report.failed)
    assert reasons[site.url("/private/a.html")] == f"robots.txt of 127.0.0.1:{site.port} disallows it for qa-bot"
    assert len(report.added) == 1  # the rules for other agents are not ours
    assert "/private/a.html" not in site.page_hits()
    ignoring = make_settings(settings.store.path, ingest={"respect_robots_txt": False})
    assert len(ingest([site.url("/private/a.html")], ignoring).added) == 1


def test_a_redirect_into_a_disallowed_path_is_refused(site: NewsSite, settings: Settings) -> None:
    site.add("/robots.txt", b"User-agent: *\nDisallow: /members/\n")
    site.add("/story.html", b"", location=site.url("/members/story.html"))
    site.add("/members/story.html", article_html("Members only", text_of(0)))
    report = ingest([site.url("/story.html")], settings)
    assert "disallows it" in dict(report.failed)[site.url("/story.html")]
    assert "/members/story.html" not in site.page_hits()


def test_crawl_delay_spaces_requests_to_its_host(site: NewsSite, settings: Settings) -> None:
    site.add("/robots.txt", b"User-agent: *\nCrawl-delay: 1\n")
    url = feed_of(site, 3)
    began = time.monotonic()
    report = ingest([url], settings)
    assert len(report.added) == 3 and site.max_in_flight == 1
    assert time.monotonic() - began >= 3  # feed + 3 pages, a second apart


def test_a_feed_is_read_up_to_its_item_cap(site: NewsSite, settings: Settings) -> None:
    url = feed_of(site, 5)
    report = ingest([url], make_settings(settings.store.path, ingest={"max_feed_items": 2}))
    assert len(report.added) == 2 and len([p for p in site.page_hits() if p.startswith("/story/")]) == 2
    assert dict(report.failed)[url] == "the feed has 5 items; only the first 2 are read (ingest.max_feed_items)"


def test_a_robots_txt_that_errors_keeps_the_site_out(site: NewsSite, settings: Settings) -> None:
    site.add("/robots.txt", b"oops", script=[500, 500, 500])
    site.add("/a.html", article_html("A", text_of(0)))
    quick = make_settings(settings.store.path, ingest={"fetch_retries": 0})
    report = ingest([site.url("/a.html")], quick)
    assert "answered HTTP 500" in dict(report.failed)[site.url("/a.html")] and "/a.html" not in site.page_hits()


def test_429_and_503_are_retried_after_retry_after(site: NewsSite, settings: Settings) -> None:
    site.add("/busy.html", article_html("Busy", text_of(0)), script=[429, 503], retry_after="1")
    site.add("/down.html", article_html("Down", text_of(1)), script=[503, 503, 503, 503])
    began = time.monotonic()
    report = ingest([site.url("/busy.html"), site.url("/down.html")], settings)
    assert len(report.added) == 1 and time.monotonic() - began >= 2  # waited twice for Retry-After: 1
    assert [s for p, s in site.hits if p == "/busy.html"] == [429, 503, 200]
    assert dict(report.failed)[site.url("/down.html")] == "HTTP 503 Service Unavailable (after 3 tries)"
    site.add("/later.html", article_html("Later", text_of(2)), script=[429], retry_after="3600")
    report = ingest([site.url("/later.html")], settings)
    assert "asked to retry after 3600 s; not waited for" in dict(report.failed)[site.url("/later.html")]


def test_feeds_fetch_concurrently_with_a_slow_host_and_a_failing_host(settings: Settings) -> None:
    with NewsSite("127.0.0.1") as home, NewsSite("127.0.0.2") as slow, NewsSite("127.0.0.3") as failing:
        items = []
        for i in range(8):
            slow.add(f"/s{i}.html", article_html(f"Slow {i}", text_of(i)), delay=1.0)
            items.append((f"Slow {i}", slow.url(f"/s{i}.html")))
        for i in range(8, 11):
            failing.add(f"/f{i}.html", b"", script=[500] * 10)
            items.append((f"Failing {i}", failing.url(f"/f{i}.html")))
        home.add("/feed.xml", rss("Mixed", items), content_type="application/rss+xml")
        began = time.monotonic()
        report = ingest([home.url("/feed.xml")], make_settings(settings.store.path, ingest={"fetch_retries": 1}))
        took = time.monotonic() - began
    assert len(report.added) == 8
    assert sorted(report.failed) == sorted(
        (failing.url(f"/f{i}.html"), "HTTP 500 Internal Server Error (after 2 tries)") for i in range(8, 11)
    )
    assert slow.max_in_flight >= 6  # the 8 slow pages together (the default per-host limit is 10)
    assert took < 8 * 1.0  # one at a time would take 8 s for the slow pages alone


def test_the_per_host_limit_holds(site: NewsSite, settings: Settings) -> None:
    url = feed_of(site, 12, delay=0.3)
    ingest([url], make_settings(settings.store.path, ingest={"per_host_connections": 3}))
    assert site.max_in_flight == 3


def test_twenty_slow_pages_are_fetched_in_parallel_and_not_again(site: NewsSite, settings: Settings) -> None:
    """The issue's independent check: a 20-item feed whose pages take 0.3 s each."""
    url = feed_of(site, 20, delay=0.3)
    first = ingest([url], settings)
    assert len(first.added) == 20 and site.max_in_flight >= 4
    site.reset()
    second = ingest([url], settings)
    assert len(second.unchanged) == 20 and [p for p in site.page_hits() if p.startswith("/story/")] == []


BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE rss [
 <!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">
 <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
 <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
 <!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
 <!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">
 <!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">
 <!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;">
]>
<rss version="2.0"><channel><title>Bomb</title>
<item><title>&g;</title><link>http://127.0.0.1:9/x.html</link><description>&g;</description></item>
</channel></rss>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><title>XXE</title>
<item><title>Leak &secret;</title><link>http://127.0.0.1:9/x.html</link>
<content:encoded xmlns:content="http://purl.org/rss/1.0/modules/content/">&secret;</content:encoded></item>
</channel></rss>"""


def test_an_xml_bomb_and_an_external_entity_feed_are_inert(site: NewsSite, settings: Settings) -> None:
    site.add("/bomb.xml", BOMB, content_type="application/rss+xml")
    site.add("/xxe.xml", XXE, content_type="application/rss+xml")
    began = time.monotonic()
    report = ingest([site.url("/bomb.xml"), site.url("/xxe.xml")], settings)
    assert time.monotonic() - began < 30 and not report.added
    for path in ("/bomb.xml", "/xxe.xml"):
        assert "declares XML entities" in dict(report.failed)[site.url(path)]
    # Below our refusal, feedparser itself stays safe: neither expanded nor read from disk.
    for body in (BOMB, XXE):
        began = time.monotonic()
        parsed = feedparser.parse(body)
        assert time.monotonic() - began < 10
        flat = json.dumps(parsed.entries, default=str)
        assert "root:" not in flat and len(flat) < 1_000_000


def outlet(site: NewsSite, path: str, title: str, text: str, name: str) -> str:
    site.add(path, article_html(title, text, outlet=name))
    return site.url(path)


def test_wire_copies_are_grouped_and_named_on_the_source_card(settings: Settings) -> None:
    wire = text_of(3)
    paragraphs = wire.split("\n")
    byline = "(Reporting by Jane Doe; editing by Al Roe)"
    edited = "\n".join([paragraphs[0].replace("said", "told reporters"), *paragraphs[1:-1], byline])
    with NewsSite("127.0.0.1") as a, NewsSite("127.0.0.2") as b, NewsSite("127.0.0.3") as c:
        first = outlet(a, "/world/story.html", STORIES[3]["title"] or "Wire story", wire, "Daily Planet")
        exact = outlet(b, "/news/1.html", "Exact copy", wire, "Gotham Gazette")
        light = outlet(c, "/intl/a.html", "Lightly edited copy", edited, "Metropolis Times")
        distinct = outlet(c, "/other.html", "Another story", text_of(4), "Metropolis Times")
        report = ingest([first, exact, light, distinct], settings)
        assert sorted(report.added) == sorted([first, distinct]), report
        assert {copy for copy, _ in report.grouped} == {exact, light}
        assert {story for _, story in report.grouped} == {first}
        again = ingest([first, exact, light, distinct], settings)
    assert len(again.unchanged) == 4 and not again.grouped and again.chunks_written == 0
    docs = open_store(settings).documents()
    assert sorted(docs) == sorted([first, distinct])  # the copies are not indexed
    question = paragraphs[0].split(". ")[0]
    passages = QABot(settings).retrieve(question)
    top = next(p for p in passages if p.doc_id == first)
    assert {o.source for o in top.also_reported_by} == {"Gotham Gazette", "Metropolis Times"}


def test_an_aggregators_items_are_named_by_their_own_outlets(site: NewsSite, settings: Settings) -> None:
    plain = f"<html><body><article><p>{text_of(6)}</p></article></body></html>".encode()  # names no outlet
    site.add("/named.html", article_html("Named", text_of(7), outlet="Gotham Gazette"))
    site.add("/plain.html", plain)
    site.add("/bare.html", f"<html><body><article><p>{text_of(8)}</p></article></body></html>".encode())
    items = "".join(
        f"<item><title>{t}</title><link>{site.url(p)}</link>{extra}</item>"
        for t, p, extra in [
            ("Named", "/named.html", ""),
            ("Plain", "/plain.html", '<source url="https://wire.example/rss">Wire Service</source>'),
            ("Bare", "/bare.html", ""),
        ]
    )
    site.add(
        "/agg.xml",
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>Top Stories</title>{items}</channel></rss>'.encode(),
        content_type="application/rss+xml",
    )
    assert len(ingest([site.url("/agg.xml")], settings).added) == 3
    sources = {d.article.title: d.article.source for d in open_store(settings).documents().values()}
    # the page's own name, then the item's <source>, then the feed's title
    assert sources == {"Named": "Gotham Gazette", "Plain": "Wire Service", "Bare": "Top Stories"}


def test_deleting_a_story_lets_its_copies_be_read_as_new(settings: Settings) -> None:
    with NewsSite("127.0.0.1") as a, NewsSite("127.0.0.2") as b:
        first = outlet(a, "/story.html", "Wire story", text_of(9), "Daily Planet")
        copy = outlet(b, "/copy.html", "Copy", text_of(9), "Gotham Gazette")
        assert ingest([first, copy], settings).grouped == [(copy, first)]
        app = App(settings)
        assert app.delete(first).startswith("Deleted")
        stories = app.bot.archive.stories
        assert stories.copies_of([first]) == {} and stories.copies_present([copy]) == set()
        again = ingest([first, copy], settings)  # the copy is news again: grouped anew, not "unchanged"
    assert again.added == [first] and again.grouped == [(copy, first)] and not again.unchanged


def test_a_pruned_copy_leaves_its_storys_list(tmp_path: Path, settings: Settings) -> None:
    (tmp_path / "planet").mkdir()
    (tmp_path / "gazette").mkdir()
    (tmp_path / "planet" / "story.txt").write_text("Wire story\n" + text_of(10))
    (tmp_path / "gazette" / "copy.txt").write_text("Copy\n" + text_of(10))
    (tmp_path / "gazette" / "other.txt").write_text("Other\n" + text_of(11))
    report = ingest([str(tmp_path / "planet"), str(tmp_path / "gazette")], settings)
    assert report.grouped == [("copy.txt", "story.txt")]
    (tmp_path / "gazette" / "copy.txt").unlink()
    pruned = ingest([str(tmp_path / "gazette")], settings, prune=True)
    assert pruned.removed == ["copy.txt"]
    stories = QABot(settings).archive.stories
    assert stories.copies_of(["story.txt"]) == {} and stories.copies_present(["copy.txt"]) == set()
    assert sorted(open_store(settings).documents()) == ["other.txt", "story.txt"]  # the story stays


def test_the_source_card_escapes_further_sources() -> None:
    from qa_bot.results import Answer, Citation, FurtherSource, Passage
    from qa_bot.schema import ArticleMeta

    article = ArticleMeta(
        doc_id="d1", title="Title", source="Planet", url="https://planet.example/a", published="2024-11-04"
    )
    p = Passage("c1", article, "Text here.", 0, 10)
    p.also_reported_by = [FurtherSource("<script>alert(1)</script>", "T", "javascript:alert(1)")]
    page = render_sources(Answer(text="Text here. [1]", refused=False, citations=[Citation(1, p, "Text here.")]))
    assert "also reported by &lt;script&gt;" in page and "javascript:" not in page and "<script>" not in page


def test_watch_backs_off_a_failing_source_and_records_it(site: NewsSite, tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "store")
    good = feed_of(site, 2)
    bad = "http://127.0.0.1:9/feed.xml"  # nothing listens on port 9
    with Watcher([good, bad], settings) as watcher:
        one = watcher.round()
        two = watcher.round()
    assert one.due == [good, bad] and len(one.report.added) == 2  # type: ignore[union-attr]
    assert two.due == [good] and [s for s, *_ in two.backing_off] == [bad]
    assert "1 of 2 sources due (1 backing off: http://127.0.0.1:9/feed.xml after 1 failure(s)" in two.summary()
    assert "2 unchanged" in two.summary() and "1 requests (1 not modified, 0 with a body" in two.summary()
    states = {s["source"]: s for s in source_states(Archive(settings))}
    assert states[bad]["state"].startswith("1 failure(s) in a row; next try in")
    assert "connection refused" in states[bad]["last error"] and states[bad]["last success"] == "never"
    assert states[good]["state"] == "ok" and states[good]["last error"] == "-"
    record = FetchLog(Archive(settings).records(FETCHED)).get([bad], "source")[bad]
    record.retry_at = 0  # the back-off has run out
    FetchLog(Archive(settings).records(FETCHED)).put([record])
    with Watcher([good, bad], settings) as watcher:
        assert watcher.round().due == [good, bad]
    rows = {row[0]: row for row in App(settings).source_rows()}  # the Articles tab's table
    assert rows[bad][1].startswith("2 failure(s) in a row") and "connection refused" in rows[bad][3]
    assert rows[good][1] == "ok"


def test_watch_leaves_a_failing_item_page_alone_until_its_back_off_runs_out(site: NewsSite, settings: Settings) -> None:
    url = feed_of(site, 2)
    site.add("/story/1.html", b"", script=[404] * 10)  # the second item's page is gone
    with Watcher([url], settings) as watcher:
        first = watcher.round()
        site.reset()
        second = watcher.round()
    assert first.report is not None and len(first.report.added) == 1
    assert second.report is not None and "/story/1.html" not in site.page_hits()
    reason = dict(second.report.failed)[site.url("/story/1.html")]
    assert reason.startswith("not asked again until") and reason.endswith("after 1 failure(s): HTTP 404 Not Found")
    assert len(ingest([url], settings).failed) == 1 and "/story/1.html" in site.page_hits()  # ingest asks again


def test_a_feed_that_carries_the_full_text_stands_in_for_a_failing_page(site: NewsSite, settings: Settings) -> None:
    body = html.escape("".join(f"<p>{p}</p>" for p in text_of(5).split("\n")))
    site.add(
        "/full.xml",
        f"""<?xml version="1.0"?><rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel><title>Full Text Wire</title><item><title>From the feed</title><link>{site.url("/gone.html")}</link>
<content:encoded>{body}</content:encoded></item></channel></rss>""".encode(),
        content_type="application/rss+xml",
    )
    report = ingest([site.url("/full.xml")], settings)
    assert report.added == [site.url("/gone.html")] and report.ok
    meta = open_store(settings).documents()[site.url("/gone.html")].article
    assert meta.title == "From the feed" and meta.source == "Full Text Wire"


def test_a_changed_item_whose_page_fails_is_asked_for_again(site: NewsSite, settings: Settings) -> None:
    url = feed_of(site, 1)
    assert len(ingest([url], settings).added) == 1
    site.add("/feed.xml", rss("Planet Wire", [("Story 0, corrected", site.url("/story/0.html"))]))
    site.pages["/story/0.html"].script = [503] * 3  # down while the feed announces the change
    assert "HTTP 503" in dict(ingest([url], settings).failed)[site.url("/story/0.html")]
    report = ingest([url], settings)  # the page is back: the change is read, not taken as seen
    assert len(report.updated) == 1
    assert open_store(settings).documents()[report.updated[0]].article.title == "Story 0, corrected"


def test_a_feed_that_runs_past_its_time_leaves_the_rest_for_next_time(site: NewsSite, settings: Settings) -> None:
    url = feed_of(site, 6, delay=1.0)
    quick = make_settings(settings.store.path, ingest={"per_host_connections": 1, "feed_timeout": 2.5})
    report = ingest([url], quick)
    assert len([p for p in site.page_hits() if p.startswith("/story/")]) <= 4  # not all six, one a second
    late = [r for _, r in report.failed]
    assert 2 <= len(report.added) <= 4 and len(late) == 6 - len(report.added)
    assert set(late) == {"not fetched: the feed ran past ingest.feed_timeout = 2.5 s"}
    assert len(ingest([url], settings).added) == len(late)  # asked for next time


def test_stats_command_shows_each_sources_last_success_and_error(site: NewsSite, tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        yaml.safe_dump({"store": {"path": "store", "collection": "cli"}, "ingest": {"allow_private_addresses": True}})
    )
    good = feed_of(site, 1)
    (tmp_path / "empty.txt").write_text("")
    run = qa_bot("ingest", good, "http://127.0.0.1:9/feed.xml", "empty.txt", "--config", str(cfg), cwd=tmp_path)
    assert run.returncode == 1
    stats = qa_bot("stats", "--config", str(cfg), cwd=tmp_path)
    assert stats.returncode == 0 and "sources (last success, last error):" in stats.stdout
    assert f"{good}: ok; last success " in stats.stdout
    assert "http://127.0.0.1:9/feed.xml: 1 failure(s) in a row" in stats.stdout
    assert "last error: cannot fetch: connection refused" in stats.stdout
    assert f"{tmp_path / 'empty.txt'}: 1 failure(s) in a row" in stats.stdout  # a file source that failed
