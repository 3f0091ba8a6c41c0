"""A news site on loopback, for the feed tests and benchmarks: pages, feeds, robots.txt,
injected latency, conditional requests, scripted failures, and a count of what was asked.

Usage::

    with NewsSite("127.0.0.1") as site:
        site.add("/a.html", article_html("Title", "text ..."), delay=0.3)
        site.add("/feed.xml", rss("Feed", [("Title", site.url("/a.html"))]), content_type="application/rss+xml")
        site.url("/feed.xml"), site.hits, site.max_in_flight, site.bytes_sent

Every page answers ``If-None-Match`` / ``If-Modified-Since`` with 304 when it has not changed
(unless added with ``validators=False``); ``script`` gives statuses to answer first, one per
request (``[503, 429]``), each with ``Retry-After`` when ``retry_after`` is set.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import http.server
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any


@dataclass
class Page:
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    delay: float = 0.0
    validators: bool = True  # send ETag / Last-Modified and answer 304 when they match
    script: list[int] = field(default_factory=list)
    retry_after: str = ""
    location: str = ""  # a redirect
    modified: float = field(default_factory=time.time)

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:16] + '"'

    @property
    def last_modified(self) -> str:
        return formatdate(self.modified, usegmt=True)


class NewsSite:
    """A threaded HTTP server on ``host`` (any 127.x.y.z) and a free port."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.pages: dict[str, Page] = {}
        self.hits: list[tuple[str, int]] = []  # (path, status), in order
        self.in_flight = 0
        self.max_in_flight = 0
        self.bytes_sent = 0
        self.lock = threading.Lock()
        self.server = http.server.ThreadingHTTPServer((host, 0), self._handler())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> NewsSite:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def add(self, path: str, body: bytes, **options: Any) -> Page:
        self.pages[path] = Page(body, **options)
        return self.pages[path]

    def page_hits(self) -> list[str]:
        """Paths asked for, robots.txt left out."""
        return [path for path, _ in self.hits if path != "/robots.txt"]

    def reset(self) -> None:
        with self.lock:
            self.hits.clear()
            self.in_flight = self.max_in_flight = self.bytes_sent = 0

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real sites do

            def handle(self) -> None:
                # A kept-alive connection the client closed: nothing to tell it.
                with contextlib.suppress(ConnectionResetError, BrokenPipeError):
                    super().handle()

            def do_GET(self) -> None:
                with site.lock:
                    site.in_flight += 1
                    site.max_in_flight = max(site.max_in_flight, site.in_flight)
                try:
                    status, headers, body = self.answer(site.pages.get(self.path.split("?")[0]))
                    with site.lock:
                        site.hits.append((self.path, status))
                        site.bytes_sent += len(body)
                    self.send_response(status)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a deadline): nothing to tell it
                finally:
                    with site.lock:
                        site.in_flight -= 1

            def answer(self, page: Page | None) -> tuple[int, dict[str, str], bytes]:
                if page is None:
                    return 404, {"Content-Type": "text/plain"}, b"not here"
                if page.delay:
                    time.sleep(page.delay)
                if page.script:
                    status = page.script.pop(0)
                    headers = {"Retry-After": page.retry_after} if page.retry_after else {}
                    return status, {"Content-Type": "text/plain", **headers}, b"try later"
                if page.location:
                    return 302, {"Location": page.location}, b""
                headers = {"Content-Type": page.content_type}
                if page.validators:
                    headers |= {"ETag": page.etag, "Last-Modified": page.last_modified}
                    if self.headers.get("If-None-Match") == page.etag or (
                        not self.headers.get("If-None-Match")
                        and self.headers.get("If-Modified-Since") == page.last_modified
                    ):
                        return 304, headers, b""
                return 200, headers, page.body

            def log_message(self, *args: object) -> None:
                pass

        return Handler


def article_html(title: str, text: str, outlet: str = "Daily Planet") -> bytes:
    """An article page with the chrome a real site has around the story (nav, footer)."""
    paragraphs = "".join(f"<p>{html.escape(p)}</p>" for p in text.split("\n") if p.strip())
    return f"""<!doctype html><html><head><title>{html.escape(title)} | {outlet}</title>
<meta property="og:title" content="{html.escape(title)}"><meta property="og:site_name" content="{outlet}">
</head><body><nav><a href="/">Home</a> <a href="/world">World</a> <a href="/login">Subscribe</a></nav>
<article><h1>{html.escape(title)}</h1>{paragraphs}</article>
<footer>Copyright {outlet}. All rights reserved.</footer></body></html>""".encode()


def rss(title: str, items: list[tuple[str, str]], published: str = "Mon, 04 Nov 2024 10:00:00 GMT") -> bytes:
    """An RSS 2.0 feed of (title, link) items."""
    entries = "".join(
        f"<item><title>{html.escape(t)}</title><link>{html.escape(link)}</link><guid>{html.escape(link)}</guid>"
        f"<pubDate>{published}</pubDate></item>"
        for t, link in items
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>{html.escape(title)}</title>'
        f"<link>http://example.org/</link><description>news</description>{entries}</channel></rss>"
    ).encode()
