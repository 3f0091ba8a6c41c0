"""The Gradio chat app: ask, read the cited sources, add and manage articles.

Usage::

    qa-bot serve [--host 127.0.0.1] [--port 7860]
    # or from Python:
    from ui.app import build_app
    build_app(settings).queue().launch()

Everything that comes from an article (titles, text, sources, URLs) is HTML-escaped before
it reaches the page, links are emitted only for http(s) URLs, and the chat renders answers
as escaped Markdown: article text is shown as text and never runs in the page.
"""

from __future__ import annotations

import atexit
import hashlib
import hmac
import html
import ipaddress
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import gradio as gr
from gradio.utils import get_upload_folder as gradio_upload_folder

from ingest import ingest
from ingest.loaders import SUPPORTED
from qa_bot import REFUSAL, Answer, Citation, EarlyAnswer, QABot, QuestionError
from qa_bot.embeddings import EmbeddingError
from qa_bot.generation import GenerationError
from qa_bot.prompts import EMPTY_STORE
from qa_bot.settings import Settings
from qa_bot.stats import source_states
from qa_bot.store import StoreError, describe_failure
from qa_bot.timeline import Timeline
from qa_bot.tuning import describe

log = logging.getLogger("qa_bot")

EMPTY_HINT = (
    "No articles yet. Add some in the **Articles** tab (upload files or paste URLs), "
    "or run `qa-bot ingest PATH-OR-URL`."
)
CSS = """
.qa-card {border: 1px solid #d0d7de; border-radius: 8px; padding: 10px 12px; margin: 8px 0; background: #fff;}
.qa-card h4 {margin: 0 0 4px 0;}
.qa-meta {color: #57606a; font-size: 0.85em; margin-bottom: 6px;}
.qa-passage {font-size: 0.9em; line-height: 1.45; white-space: pre-wrap;}
.qa-passage mark {background: #fff3a3; padding: 0 2px;}
.qa-refused {border-left: 4px solid #cf222e; padding-left: 8px; color: #57606a;}
"""
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~&])")


def escape_markdown(text: str) -> str:
    """Escape Markdown and HTML so the chat shows model and article text literally."""
    return _MD_SPECIAL.sub(r"\\\1", text)


QUOTED_LABEL = "**Quoted from the articles**"
ANSWER_LABEL = "**Answer**"
READING = "*The model is reading the passages…*"


def display_answer(answer: Answer, early: EarlyAnswer | None = None) -> str:
    """The chat bubble for the final answer.

    The quoted early answer stays at the top and the model's answer goes beneath it, so the
    bubble only grows: nothing the reader has begun to read moves or vanishes, however fast the
    model is. A refusal replaces the quotes: the bot judged that they do not answer the question.
    """
    if answer.refused:
        return "🚫 *" + escape_markdown(answer.text) + "*"
    dateline = f"\n\n*{escape_markdown(answer.dateline)}*" if answer.dateline else ""
    if early is None or not early.text:
        return escape_markdown(answer.text) + dateline
    if answer.text == early.text:  # the model failed and its fallback is the same quotes
        return display_early(early, "") + dateline
    return display_early(early, escape_markdown(answer.text)) + dateline


def display_early(early: EarlyAnswer, below: str = READING) -> str:
    """The quoted early answer, labelled as quotes, with what goes beneath it."""
    shown = f"{QUOTED_LABEL}\n\n{escape_markdown(early.text)}"
    if below == READING or not below:
        return f"{shown}\n\n{below}".rstrip()
    return f"{shown}\n\n{ANSWER_LABEL}\n\n{below}"


def safe_url(url: str) -> str | None:
    """Only http(s) links are ever emitted."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    return url.strip() if parts.scheme in ("http", "https") and parts.netloc else None


def render_sources(answer: Answer | EarlyAnswer | None, early: EarlyAnswer | None = None) -> str:
    """Source cards: title, source, date, link, and the passage with every quoted sentence
    highlighted; one card per cited number, for the answer's citations and the early answer's."""
    if answer is None:
        return ""
    if isinstance(answer, Answer) and answer.refused:
        return f'<div class="qa-refused">{html.escape(answer.text)}</div>'
    quotes: dict[int, list[Citation]] = {}
    for c in [*answer.citations, *(early.citations if early else [])]:
        if all(c.quote_start != seen.quote_start for seen in quotes.get(c.number, [])):
            quotes.setdefault(c.number, []).append(c)
    # data-state tells a reader (and the browser tests) whether the model's answer has come.
    state = "early" if isinstance(answer, EarlyAnswer) else "final"
    cards = "\n".join(_card(number, cited) for number, cited in sorted(quotes.items()))
    return f'<div class="qa-cards" data-state="{state}">{cards}</div>'


def _card(number: int, cited: list[Citation]) -> str:
    p = cited[0].passage
    url = safe_url(p.url)
    title = html.escape(p.title or p.doc_id)
    heading = (
        f'<a href="{html.escape(url, quote=True)}" target="_blank" rel="noopener noreferrer">{title}</a>'
        if url
        else title
    )
    meta = " · ".join(html.escape(x) for x in (p.source, p.published) if x)
    if p.also_reported_by:
        meta += f'<div class="qa-also">also reported by {_further_sources(p)}</div>'
    body, at = [], 0
    for c in sorted(cited, key=lambda c: c.quote_start):
        start = c.quote_start if p.text.startswith(c.quote, c.quote_start) else p.text.find(c.quote, at)
        if start < at:
            continue  # not found, or overlapping a quote already marked: leave it unmarked
        end = start + len(c.quote)
        body += [html.escape(p.text[at:start]), "<mark>", html.escape(c.quote), "</mark>"]
        at = end
    body.append(html.escape(p.text[at:]))
    return (
        f'<div class="qa-card" data-citation="{number}"><h4>[{number}] {heading}</h4>'
        f'<div class="qa-meta">{meta}</div><div class="qa-passage">{"".join(body)}</div></div>'
    )


def render_timeline(found: Timeline) -> str:
    """A timeline as HTML: one row per event (date, the quoted sentence, every outlet that
    reported it, linked where its URL is http(s)); all article text escaped."""
    if not found.entries:
        return f'<div class="qa-refused">No dated articles about {html.escape(found.topic)} in that period.</div>'
    rows = []
    for e in found.entries:
        outlets = ", ".join(
            _link(c.passage.source or c.passage.title or c.passage.doc_id, c.passage.url) for c in e.citations
        )
        rows.append(
            f'<div class="qa-card qa-event" data-date="{html.escape(e.date)}"><h4>{html.escape(e.date)}</h4>'
            f'<div class="qa-passage">“{html.escape(e.text)}”</div><div class="qa-meta">{outlets}</div></div>'
        )
    head = f"{len(found.entries)} events as of {html.escape(found.as_of)}, in {found.seconds:.1f} s"
    return f'<div class="qa-timeline"><div class="qa-meta">{head}</div>{"".join(rows)}</div>'


def _further_sources(p: Any) -> str:
    """The other outlets of a passage's story, each a link when its URL is a safe http(s) one."""
    return ", ".join(_link(other.source or other.title or other.url, other.url) for other in p.also_reported_by)


def _link(name: str, url: str) -> str:
    """``name`` escaped, as a link only when ``url`` is a safe http(s) one."""
    safe = safe_url(url)
    if not safe:
        return html.escape(name)
    return (
        f'<a href="{html.escape(safe, quote=True)}" target="_blank" rel="noopener noreferrer">{html.escape(name)}</a>'
    )


class App:
    """State shared by all sessions: one bot (models load once), one upload folder."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.bot = QABot(settings)
        self.upload_dir = Path(tempfile.mkdtemp(prefix="qa-bot-uploads-"))
        os.chmod(self.upload_dir, 0o700)
        atexit.register(shutil.rmtree, self.upload_dir, ignore_errors=True)  # not left behind in /tmp
        self._ingest_lock = threading.Lock()
        self._had_store = False
        self.store_problem()  # notes whether a store is there to be missed later

    # ------------------------------------------------------------ chat

    def respond(
        self,
        message: str,
        chat: list[dict],
        history: list[tuple[str, str]],
        sources: list[str],
        since: str,
        until: str,
        as_of: str | None = None,
    ) -> Iterator[tuple[list[dict], list[tuple[str, str]], str, str]]:
        chat = [
            *chat,
            {"role": "user", "content": escape_markdown(message or "")},
            {"role": "assistant", "content": "…"},
        ]
        filters = {"source": sources or [], "since": since or None, "until": until or None}
        # Show the question at once and clear the last answer's cards: the model may be busy
        # with another person's answer, and a click that shows nothing looks lost.
        yield chat, history, "", ""
        try:
            problem = self.store_problem()
            if problem:
                raise StoreError(problem)
            if self.bot.store.is_empty():
                chat[-1]["content"] = "🚫 " + EMPTY_HINT
                yield chat, history, "", render_sources(Answer(text=EMPTY_STORE, refused=True))
                return
            raw, early = "", None
            for part in self.bot.stream(message, history=history, filters=filters, as_of=(as_of or "").strip() or None):
                if isinstance(part, EarlyAnswer):
                    early = part
                    chat[-1]["content"] = display_early(part)
                    yield chat, history, "", render_sources(part)
                elif isinstance(part, Answer):
                    chat[-1]["content"] = display_answer(part, early)
                    history = [*history, (message, part.text)]
                    yield chat, history, "", render_sources(part, early)
                else:
                    raw += part
                    shown = escape_markdown(raw)
                    chat[-1]["content"] = display_early(early, shown) if early else shown
                    yield chat, history, "", gr.skip()
        except (QuestionError, ValueError, GenerationError, StoreError, OSError) as exc:
            chat[-1]["content"] = "⚠️ " + escape_markdown(describe_failure(exc, self.settings))
            yield chat, history, message, ""

    def source_choices(self) -> list[str]:
        if self.store_problem():
            return []
        try:
            return sorted({a["source"] for a in self.articles() if a["source"]})
        except Exception:  # the filter's choices are a convenience; the failure is logged
            log.exception("listing the sources failed")
            return []

    def lists(self) -> tuple[list[list[Any]], list[list[str]]]:
        """The Articles tab's two tables; empty when the store cannot be read.

        Whatever action ran before says what is wrong in its own message. Reading a store whose
        folder has gone fails in Chroma's own ways (a new SQLite connection to a missing file is
        a chromadb InternalError), and a failed refresh must not turn that message into an error.
        """
        if self.store_problem():
            return [], []
        try:
            return self.article_rows(), self.source_rows()
        except Exception:
            log.exception("refreshing the article list failed")
            return [], []

    def timeline(self, topic: str, since: str, until: str, as_of: str) -> str:
        """The Timeline tab's view: the topic's events in date order, or one line saying what failed."""
        problem = self.store_problem()
        if problem:
            return f'<div class="qa-refused">{html.escape(problem)}</div>'
        try:
            found = self.bot.timeline(
                topic, since=since.strip() or None, until=until.strip() or None, as_of=as_of.strip() or None
            )
        except (QuestionError, ValueError, StoreError, OSError) as exc:
            return f'<div class="qa-refused">{html.escape(describe_failure(exc, self.settings))}</div>'
        return render_timeline(found)

    # ------------------------------------------------------------ articles

    def articles(self) -> list[dict[str, Any]]:
        docs = self.bot.store.documents()
        return sorted(
            (
                {
                    "title": d.title,
                    "source": d.source,
                    "published": d.published,
                    "chunks": len(d.chunks),
                    "doc_id": d.doc_id,
                }
                for d in docs.values()
            ),
            key=lambda a: (a["published"], a["title"]),
            reverse=True,
        )

    def article_rows(self) -> list[list[Any]]:
        return [[a["title"], a["source"], a["published"], a["chunks"], a["doc_id"]] for a in self.articles()]

    def source_rows(self) -> list[list[str]]:
        """The feeds and URLs ingested here (not uploads): state, last success, last error."""
        states = [s for s in source_states(self.settings) if safe_url(s["source"])]
        return [[s["source"], s["state"], s["last success"], s["last error"]] for s in states]

    def save_uploads(self, files: list[str] | None) -> tuple[dict[str, str], list[tuple[str, str]]]:
        """Copy uploads into the private folder under generated names; refuse bad ones.

        Returns {saved path: the name the user uploaded} and the refused (name, reason).
        """
        saved: dict[str, str] = {}
        failed: list[tuple[str, str]] = []
        limit = self.settings.ingest.max_file_mb * 1024 * 1024
        for item in files or []:
            path = Path(item if isinstance(item, str) else getattr(item, "name", str(item)))
            original = path.name
            if not self.is_upload(path):
                # The API takes a file as a path: only a file Gradio received from this browser may be read.
                failed.append((original, "refused: not a file uploaded through this page"))
                continue
            suffix = path.suffix.lower()
            if suffix not in SUPPORTED:
                failed.append((original, f"unsupported file type '{suffix}'; supported: {', '.join(SUPPORTED)}"))
                continue
            if path.stat().st_size > limit:
                failed.append((original, f"over the limit ingest.max_file_mb = {self.settings.ingest.max_file_mb:g}"))
                continue
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
            target = self.upload_dir / f"upload-{digest}{suffix}"  # our name: no path from the user is used
            shutil.copyfile(path, target)
            saved[str(target)] = original
        return saved, failed

    def store_problem(self) -> str | None:
        """What is wrong with the store, if something is that a person should be told of."""
        s = self.settings.store
        if s.mode != "embedded":
            return None
        if (s.path / "chroma.sqlite3").is_file():
            self._had_store = True  # a store that is not there yet is made by the first ingest
            return None
        if self._had_store:
            # Chroma would go on answering from what it holds in memory, and lose every write.
            return f"the store folder {s.path} has gone; restore it (or run qa-bot ingest) and restart qa-bot serve"
        return None

    def guarded(self, action: str, work: Callable[[], str]) -> str:
        """Run an Articles-tab action; a failure becomes one line that says what failed and why."""
        problem = self.store_problem()
        if problem:
            return f"⚠️ {action} failed: {escape_markdown(problem)}"
        try:
            return work()
        except (StoreError, EmbeddingError, OSError, ValueError) as exc:
            log.warning("%s failed: %s", action, exc)
            return f"⚠️ {action} failed: {escape_markdown(describe_failure(exc, self.settings))}"

    def is_upload(self, path: Path) -> bool:
        """Whether ``path``, links resolved, is a regular file in Gradio's upload folder or ours."""
        try:
            real = path.resolve(strict=True)
        except (OSError, RuntimeError):  # missing, or a symlink loop
            return False
        folders = (Path(gradio_upload_folder()).resolve(), self.upload_dir.resolve())
        return real.is_file() and any(real.is_relative_to(folder) for folder in folders)

    def ingest_sources(self, files: list[str] | None, urls: str, progress: gr.Progress | None = None) -> str:
        saved, failed = self.save_uploads(files)
        links = [u.strip() for u in (urls or "").splitlines() if u.strip()]
        bad_links = [u for u in links if not safe_url(u)]
        failed += [(u, "not an http(s) URL") for u in bad_links]
        sources = list(saved) + [u for u in links if u not in bad_links]
        if not sources and not failed:
            return "Nothing to ingest: upload files or paste URLs (one per line)."
        with self._ingest_lock:

            def tick(articles: int, chunks: int) -> None:
                if progress is not None:
                    progress((articles, None), desc=f"{articles} articles, {chunks} chunks", unit="articles")

            report = ingest(sources, self.settings, progress=tick) if sources else None
        self.bot.retriever.refresh()
        return format_report(report, failed, names=saved)

    def reingest(self, progress: gr.Progress | None = None) -> str:
        origins = sorted({d.origin for d in self.bot.store.documents().values() if d.origin})
        if not origins:
            return "Nothing to re-ingest yet."
        with self._ingest_lock:
            report = ingest(origins, self.settings)
        self.bot.retriever.refresh()
        return format_report(report, [])

    def delete(self, doc_id: str) -> str:
        docs = self.bot.store.documents(doc_ids=[doc_id])
        if doc_id not in docs:
            return f"No article with id {doc_id!r}."
        self.bot.store.delete(sorted(docs[doc_id].chunks))
        self.bot.stories.forget([doc_id])  # its further sources are read as new next time
        self.bot.retriever.refresh()
        return f"Deleted {docs[doc_id].title or doc_id}."


def format_report(report: Any, failed: list[tuple[str, str]], names: dict[str, str] | None = None) -> str:
    """The ingest report as Markdown; uploads are named as the user named them."""
    names = names or {}
    lines = []
    if report is not None:
        failed = [*failed, *report.failed]
        grouped = f", {len(report.grouped)} grouped as copies of stored stories" if report.grouped else ""
        lines.append(
            f"**{len(report.added)} added, {len(report.updated)} updated, {len(report.unchanged)} unchanged{grouped}, "
            f"{len(report.removed)} removed, {len(failed)} failed** "
            f"({report.chunks_written} chunks in {report.seconds:.1f} s)"
        )
    elif failed:
        lines.append(f"**0 added, {len(failed)} failed**")
    for source, reason in failed:
        shown = next((source.replace(path, name) for path, name in names.items() if source.startswith(path)), source)
        lines.append(f"- failed: {escape_markdown(shown)}: {escape_markdown(reason)}")
    return "\n".join(lines)


def build_app(settings: Settings, app: App | None = None) -> gr.Blocks:
    app = app or App(settings)
    with gr.Blocks(title="qa-bot: news questions") as demo:
        gr.Markdown("## qa-bot — ask the news articles")
        history = gr.State([])
        with gr.Tab("Chat"):
            with gr.Row():
                with gr.Column(scale=3):
                    chatbot = gr.Chatbot(
                        label="Chat", height=460, sanitize_html=True, elem_id="chat", placeholder=EMPTY_HINT
                    )
                    question = gr.Textbox(placeholder="Ask about the articles…", show_label=False, elem_id="question")
                    with gr.Row():
                        send = gr.Button("Ask", variant="primary", elem_id="ask")
                        clear = gr.Button("Clear chat", elem_id="clear")
                    with gr.Accordion("Filters", open=False):
                        sources = gr.Dropdown(
                            choices=app.source_choices(), multiselect=True, label="Sources", elem_id="sources"
                        )
                        since = gr.Textbox(label="Published on or after (YYYY-MM-DD)", elem_id="since")
                        until = gr.Textbox(label="Published on or before (YYYY-MM-DD)", elem_id="until")
                        as_of = gr.Textbox(
                            label="As of (YYYY-MM-DD; empty: today): nothing published later is used",
                            elem_id="as-of",
                        )
                with gr.Column(scale=2):
                    gr.Markdown("### Sources")
                    cards = gr.HTML(elem_id="source-cards")
            inputs = [question, chatbot, history, sources, since, until, as_of]
            outputs = [chatbot, history, question, cards]
            # The HTTP API's "ask" keeps its six inputs whatever the page gains (a client that
            # sends six values must go on working), so it is an event of a hidden button; the
            # page's own Ask button and Enter send the As-of date too.
            api_only = gr.Button(visible=False, elem_id="ask-api")
            api_only.click(app.respond, inputs[:6], outputs, api_name="ask")
            send.click(app.respond, inputs, outputs, api_visibility="private")
            question.submit(app.respond, inputs, outputs, api_visibility="private")
            clear.click(lambda: ([], [], "", ""), None, outputs)
        with gr.Tab("Timeline"):
            with gr.Row():
                topic = gr.Textbox(label="Topic", placeholder="e.g. Boeing 737 MAX", elem_id="timeline-topic", scale=3)
                t_since = gr.Textbox(label="Since (YYYY-MM-DD)", elem_id="timeline-since")
                t_until = gr.Textbox(label="Until (YYYY-MM-DD)", elem_id="timeline-until")
                t_as_of = gr.Textbox(label="As of (YYYY-MM-DD)", elem_id="timeline-as-of")
            show = gr.Button("Show timeline", variant="primary", elem_id="timeline-show")
            events = gr.HTML(elem_id="timeline")
            show.click(app.timeline, [topic, t_since, t_until, t_as_of], events, api_name="timeline")
            topic.submit(app.timeline, [topic, t_since, t_until, t_as_of], events, api_visibility="private")
        with gr.Tab("Articles") as articles_tab:
            # No file_types filter: the browser would drop an unsupported file without a word;
            # save_uploads refuses it by name instead, and takes the rest of the batch.
            files = gr.File(label=f"Upload articles ({', '.join(SUPPORTED)})", file_count="multiple", elem_id="upload")
            urls = gr.Textbox(label="Article or feed URLs, one per line", lines=3, elem_id="urls")
            with gr.Row():
                add = gr.Button("Ingest", variant="primary", elem_id="ingest")
                again = gr.Button("Re-ingest all sources", elem_id="reingest")
            report = gr.Markdown(elem_id="report")
            table = gr.Dataframe(
                headers=["title", "source", "published", "chunks", "id"],
                interactive=False,
                elem_id="articles",
                wrap=True,
            )
            with gr.Row():
                doc = gr.Textbox(label="Article id to delete", elem_id="delete-id")
                delete = gr.Button("Delete", variant="stop", elem_id="delete")
            fetched = gr.Dataframe(
                headers=["source", "state", "last success", "last error"],
                label="Feeds and URLs: how each fared when last fetched",
                interactive=False,
                elem_id="fetched-sources",
                wrap=True,
            )

            def refreshed(message: str) -> tuple[str, list[list[Any]], Any, list[list[str]]]:
                rows, states = app.lists()
                return message, rows, gr.update(choices=app.source_choices()), states

            add.click(
                lambda f, u, progress=gr.Progress(): refreshed(
                    app.guarded("Ingest", lambda: app.ingest_sources(f, u, progress))
                ),
                [files, urls],
                [report, table, sources, fetched],
                api_name="ingest",
            )
            again.click(
                lambda progress=gr.Progress(): refreshed(app.guarded("Re-ingest", lambda: app.reingest(progress))),
                None,
                [report, table, sources, fetched],
            )
            delete.click(
                lambda d: refreshed(app.guarded("Delete", lambda: app.delete(d.strip()))),
                [doc],
                [report, table, sources, fetched],
            )
            articles_tab.select(app.lists, None, [table, fetched])
        demo.load(lambda: gr.update(choices=app.source_choices()), None, sources)
    return demo


class LoginThrottle:
    """Gradio's login check, with at most ``max_failures`` wrong tries a ``window`` of seconds.

    Past that, every try (the right password too) is refused until the oldest failure is a
    window old: guessing then costs a minute per five tries instead of 100 tries in 0.6 s. A
    guesser can keep the real user out for as long as they keep guessing; on a login shared by
    a few people that is the lesser harm, and the log says it is happening.
    """

    def __init__(
        self,
        user: str,
        password: str,
        max_failures: int = 5,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._user, self._password = user.encode(), password.encode()
        self.max_failures, self.window, self.clock = max_failures, window, clock
        self._failures: list[float] = []
        self._lock = threading.Lock()

    def __call__(self, username: str, password: str) -> bool:
        with self._lock:
            now = self.clock()
            self._failures = [t for t in self._failures if now - t < self.window]
            if len(self._failures) >= self.max_failures:
                log.warning("login refused: %d wrong passwords in the last %.0f s", len(self._failures), self.window)
                return False
            # Compared in constant time, both always, so the time taken tells nothing.
            right_user = hmac.compare_digest(username.encode(), self._user)
            right_password = hmac.compare_digest(password.encode(), self._password)
            if right_user and right_password:
                return True
            self._failures.append(now)
            return False


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(settings: Settings, host: str | None = None, port: int | None = None) -> None:
    """Serve on loopback by default; anywhere else only behind a login from the environment."""
    host = host or settings.ui.host
    port = port or settings.ui.port
    auth: LoginThrottle | None = None
    if not is_loopback(host):
        user, password = os.environ.get(settings.ui.user_env), os.environ.get(settings.ui.password_env)
        if not user or not password:
            raise SystemExit(
                f"qa-bot serve: binding to {host} needs a login; set {settings.ui.user_env} and "
                f"{settings.ui.password_env} (names from ui.user_env / ui.password_env)"
            )
        auth = LoginThrottle(user, password)
    app = App(settings)
    demo = build_app(settings, app)
    # Decided and loaded before the page is served, so the first question waits for neither.
    log.info("model: %s", describe(settings.generation, measure=True))
    bot = app.bot
    bot.generator, bot.embedder  # noqa: B018 - loaded now, once
    bot.retriever.lexical()  # the BM25 index opened (built, the first time) and kept current from now on
    demo.queue(default_concurrency_limit=4)
    demo.launch(
        server_name=host,
        server_port=port,
        auth=auth,
        show_error=False,
        css=CSS,
        max_file_size=f"{int(settings.ingest.max_file_mb)}mb",
        footer_links=[],
    )


__all__ = ["REFUSAL", "build_app", "display_answer", "escape_markdown", "render_sources", "safe_url", "serve"]
