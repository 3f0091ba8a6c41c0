"""Article URLs and RSS/Atom feeds, served by a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json

from ingest import ingest
from qa_bot.archive import open_store
from qa_bot.settings import Settings
from tests.conftest import ROOT, SAMPLE, Route, WebServer, make_settings

PARAGRAPHS = "".join(f"<p>{line}</p>" for line in SAMPLE.read_text().splitlines() if line.strip())
# Other real stories, for pages that must not read as copies of the sample (ingest groups copies).
STORIES = [json.loads(line)["text"] for line in (ROOT / "tests" / "data" / "ares-60.jsonl").read_text().splitlines()]


def story(i: int) -> str:
    """Story ``i`` of tests/data/ares-60.jsonl as HTML paragraphs."""
    return "".join(f"<p>{s.strip()}.</p>" for s in STORIES[i].split(". ") if s.strip())


def page(title: str, canonical: str, body: str = PARAGRAPHS) -> bytes:
    return f"""<!doctype html><html><head><title>{title} | Daily Planet</title>
<link rel="canonical" href="{canonical}">
<meta property="og:title" content="{title}"><meta name="author" content="Jane Reporter">
<meta property="article:published_time" content="2024-11-08T09:30:00Z"></head>
<body><nav><a href="/">Home</a> <a href="/world">World</a> <a href="/login">Subscribe now</a></nav>
<article><h1>{title}</h1>{body}</article>
<footer>Copyright Daily Planet. All rights reserved. Cookie settings.</footer></body></html>""".encode()


def feed(items: list[tuple[str, str, str]]) -> bytes:
    entries = "".join(
        f"<item><title>{t}</title><link>{link}</link><pubDate>{date}</pubDate>"
        f"<author>desk@planet.example (Feed Desk)</author></item>"
        for t, link, date in items
    )
    return f"""<?xml version="1.0"?><rss version="2.0"><channel><title>Planet World News</title>
<link>http://planet.example/</link><description>d</description>{entries}</channel></rss>""".encode()


def metas(settings: Settings) -> list[dict]:
    return open_store(settings).collection.get(include=["metadatas"])["metadatas"]


def test_article_url_extracts_main_text_and_metadata(web: WebServer, settings: Settings) -> None:
    web.routes["/world/putin.html"] = Route(page("Putin congratulates Trump", "https://planet.example/world/putin"))
    report = ingest([web.url("/world/putin.html")], settings)
    assert report.ok, report.failed
    assert report.added == ["https://planet.example/world/putin"]  # the canonical URL is the id
    got = open_store(settings).collection.get(include=["metadatas", "documents"])
    text = " ".join(got["documents"])
    assert "bravery" in text and "Subscribe now" not in text and "Cookie settings" not in text
    meta = got["metadatas"][0]
    assert meta["title"] == "Putin congratulates Trump"
    assert meta["published"] == "2024-11-08" and isinstance(meta["published_ts"], int)


def test_feed_items_are_fetched_with_feed_metadata(web: WebServer, settings: Settings) -> None:
    web.routes["/a.html"] = Route(page("First story", "https://planet.example/a"))
    web.routes["/b.html"] = Route(page("Second story", "https://planet.example/b", story(0)))
    web.routes["/feed.xml"] = Route(
        feed(
            [
                ("Feed title A", web.url("/a.html"), "Mon, 04 Nov 2024 10:00:00 GMT"),
                ("Feed title B", web.url("/b.html"), "Tue, 05 Nov 2024 10:00:00 GMT"),
                ("Gone", web.url("/missing.html"), "Tue, 05 Nov 2024 11:00:00 GMT"),
            ]
        ),
        content_type="application/rss+xml",
    )
    report = ingest([web.url("/feed.xml")], settings)
    assert sorted(report.added) == ["https://planet.example/a", "https://planet.example/b"]
    assert report.failed == [(web.url("/missing.html"), "HTTP 404 Not Found")]
    by_doc = {m["doc_id"]: m for m in metas(settings)}
    assert by_doc["https://planet.example/a"]["title"] == "Feed title A"
    assert by_doc["https://planet.example/a"]["published"] == "2024-11-04"
    assert by_doc["https://planet.example/b"]["source"] == "Planet World News"
    # a second round costs nothing
    again = ingest([web.url("/feed.xml")], settings)
    assert len(again.unchanged) == 2 and again.chunks_written == 0


def test_broken_urls_and_feeds_fail_alone(web: WebServer, settings: Settings) -> None:
    web.routes["/ok.html"] = Route(page("Fine story", "https://planet.example/ok"))
    web.routes["/slow.html"] = Route(page("Slow", "https://planet.example/slow"), delay=3)
    web.routes["/bad.xml"] = Route(b"this is { not xml at all", content_type="application/rss+xml")
    quick = make_settings(settings.store.path, ingest={"fetch_timeout": 1})
    report = ingest(
        [
            web.url("/ok.html"),
            web.url("/nothing.html"),
            web.url("/slow.html"),
            web.url("/bad.xml"),
            "http://127.0.0.1:9/refused.html",
        ],
        quick,
    )
    reasons = dict(report.failed)
    assert reasons[web.url("/nothing.html")] == "HTTP 404 Not Found"
    assert "timed out" in reasons[web.url("/slow.html")]
    assert "not a valid RSS/Atom feed" in reasons[web.url("/bad.xml")]
    assert "cannot fetch" in reasons["http://127.0.0.1:9/refused.html"]
    assert report.added == ["https://planet.example/ok"]
