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

import hmac
import html
import logging
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.utils import get_upload_folder

from ingest.loaders import SUPPORTED
from qa_bot import REFUSAL, Answer, Citation, EarlyAnswer, QuestionError
from qa_bot.archive import StoreError, describe_failure
from qa_bot.embeddings import EmbeddingError
from qa_bot.generation import GenerationError
from qa_bot.prompts import EMPTY_STORE
from qa_bot.settings import Settings
from qa_bot.timeline import Timeline
from ui.conversations import ConversationError
from ui.keys import LOGIN_CLIENT, Throttle, client_key
from ui.service import LOCAL_USER, Service, answer_from_json, answer_json, safe_url

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
    """The page's side of the :class:`~ui.service.Service`: what Gradio calls, shaped for the page.

    Everything that is not about the page (the store's health, uploads, ingest, deletion,
    conversations) is the service's; this class turns its results into Markdown and HTML.
    """

    def __init__(self, settings: Settings | Service) -> None:
        self.service = settings if isinstance(settings, Service) else Service(settings)
        self.settings = self.service.settings
        self.bot = self.service.bot
        # A file a browser sends to the page lands in Gradio's folder first; only there, or in
        # the service's own folder, may a file named in a call be read.
        gradio_folder = Path(get_upload_folder())
        if gradio_folder not in self.service.upload_folders:
            self.service.upload_folders.append(gradio_folder)

    @property
    def upload_dir(self) -> Path:
        return self.service.upload_dir

    def store_problem(self) -> str | None:
        return self.service.store_problem()

    def save_uploads(self, files: list[Any] | None) -> tuple[dict[str, str], list[tuple[str, str]]]:
        return self.service.save_uploads(files)

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
        conversation: str = "",
        user: str | None = None,
    ) -> Iterator[tuple[list[dict], list[tuple[str, str]], str, str, str]]:
        """The chat: the question at once, the quoted early answer, the model's words, the checked
        answer with its cards. With ``user``, the turn is kept in the user's ``conversation``
        (a new one when empty), whose id is the last value yielded."""
        chat = [
            *chat,
            {"role": "user", "content": escape_markdown(message or "")},
            {"role": "assistant", "content": "…"},
        ]
        filters = {"source": sources or [], "since": since or None, "until": until or None}
        # Show the question at once and clear the last answer's cards: the model may be busy
        # with another person's answer, and a click that shows nothing looks lost.
        yield chat, history, "", "", conversation
        try:
            self.service.check_store()
            if self.bot.store.is_empty():
                chat[-1]["content"] = "🚫 " + EMPTY_HINT
                yield chat, history, "", render_sources(Answer(text=EMPTY_STORE, refused=True)), conversation
                return
            raw, early = "", None
            for part in self.service.stream(message, history, filters, (as_of or "").strip() or None):
                if isinstance(part, EarlyAnswer):
                    early = part
                    chat[-1]["content"] = display_early(part)
                    yield chat, history, "", render_sources(part), conversation
                elif isinstance(part, Answer):
                    chat[-1]["content"] = display_answer(part, early)
                    history = [*history, (message, part.text)]
                    conversation = self.keep(user, conversation, message, part)
                    yield chat, history, "", render_sources(part, early), conversation
                else:
                    raw += part
                    shown = escape_markdown(raw)
                    chat[-1]["content"] = display_early(early, shown) if early else shown
                    yield chat, history, "", gr.skip(), conversation
        except (QuestionError, ValueError, GenerationError, StoreError, OSError) as exc:
            chat[-1]["content"] = "⚠️ " + escape_markdown(describe_failure(exc, self.settings))
            yield chat, history, message, "", conversation

    def respond_api(
        self, message: str, chat: list[dict], history: list[tuple[str, str]], sources: list[str], since: str, until: str
    ) -> Iterator[tuple[list[dict], list[tuple[str, str]], str, str]]:
        """The Gradio HTTP API's ``ask``: six inputs and four outputs, as before; nothing is kept."""
        for chat_, history_, question, cards, _ in self.respond(message, chat, history, sources, since, until):
            yield chat_, history_, question, cards

    def keep(self, user: str | None, conversation: str, question: str, answer: Answer) -> str:
        """Add the turn to the user's conversation (a new one when there is none); its id."""
        if user is None:
            return conversation
        talks = self.service.conversations
        try:
            if not conversation or talks.get(user, conversation) is None:
                conversation = talks.create(user, question).id
            talks.append(user, conversation, question, answer_json(answer))
        except (ConversationError, sqlite3.Error, OSError) as exc:  # the answer stands; keeping it failed
            log.warning("keeping the turn failed: %s", exc)
        return conversation

    # ------------------------------------------------------------ conversations

    def conversation_choices(self, user: str) -> list[tuple[str, str]]:
        talks = self.service.conversations.list(user)
        return [(f"{c.title} · {c.summary()['updated'][:16].replace('T', ' ')}", c.id) for c in talks]

    def reopen(self, user: str, conversation: str) -> tuple[list[dict], list[tuple[str, str]], str, str]:
        """A kept conversation as the chat shows it: its turns, the last answer's cards, its id."""
        found = self.service.conversations.get(user, conversation or "") if conversation else None
        if found is None:
            return [], [], "", ""
        chat: list[dict] = []
        history: list[tuple[str, str]] = []
        cards = ""
        for turn in found.turns:
            answer = answer_from_json(turn.answer)
            chat += [
                {"role": "user", "content": escape_markdown(turn.question)},
                {"role": "assistant", "content": display_answer(answer)},
            ]
            history.append((turn.question, answer.text))
            cards = render_sources(answer)
        return chat, history, cards, found.id

    def export(self, user: str, conversation: str) -> str | None:
        """The conversation as a Markdown file to download (in the private upload folder)."""
        text = self.service.conversations.markdown(user, conversation or "") if conversation else None
        if text is None:
            return None
        target = self.upload_dir / "exports" / f"conversation-{conversation}.md"
        target.parent.mkdir(exist_ok=True)
        target.write_text(text, encoding="utf-8")
        return str(target)

    # ------------------------------------------------------------ articles

    def source_choices(self) -> list[str]:
        if self.store_problem():
            return []
        try:
            return self.service.sources()
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
        try:
            found = self.service.timeline(topic, since.strip(), until.strip(), as_of.strip())
        except (QuestionError, ValueError, StoreError, OSError) as exc:
            return f'<div class="qa-refused">{html.escape(describe_failure(exc, self.settings))}</div>'
        return render_timeline(found)

    def articles(self) -> list[dict[str, Any]]:
        return self.service.articles()

    def article_rows(self) -> list[list[Any]]:
        return [[a["title"], a["source"], a["published"], a["chunks"], a["id"]] for a in self.articles()]

    def source_rows(self) -> list[list[str]]:
        """The feeds and URLs ingested here (not uploads): state, last success, last error."""
        states = self.service.source_states()
        return [[s["source"], s["state"], s["last success"], s["last error"]] for s in states]

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

    def ingest_sources(self, files: list[str] | None, urls: str, progress: gr.Progress | None = None) -> str:
        saved, failed = self.save_uploads(files)
        links = [u.strip() for u in (urls or "").splitlines() if u.strip()]
        if not saved and not links and not failed:
            return "Nothing to ingest: upload files or paste URLs (one per line)."

        def tick(articles: int, chunks: int) -> None:
            if progress is not None:
                progress((articles, None), desc=f"{articles} articles, {chunks} chunks", unit="articles")

        outcome = self.service.ingest(saved, links, failed, progress=tick)
        return format_report(outcome.report, outcome.failed)

    def reingest(self, progress: gr.Progress | None = None) -> str:
        outcome = self.service.reingest()
        return "Nothing to re-ingest yet." if outcome is None else format_report(outcome.report, outcome.failed)

    def delete(self, doc_id: str) -> str:
        title = self.service.delete(doc_id)
        return f"No article with id {doc_id!r}." if title is None else f"Deleted {title}."


def format_report(report: Any, failed: list[tuple[str, str]]) -> str:
    """The ingest report as Markdown; ``failed`` is every failed input, named as the user named it."""
    lines = []
    if report is not None:
        grouped = f", {len(report.grouped)} grouped as copies of stored stories" if report.grouped else ""
        lines.append(
            f"**{len(report.added)} added, {len(report.updated)} updated, {len(report.unchanged)} unchanged{grouped}, "
            f"{len(report.removed)} removed, {len(failed)} failed** "
            f"({report.chunks_written} chunks in {report.seconds:.1f} s)"
        )
    elif failed:
        lines.append(f"**0 added, {len(failed)} failed**")
    lines += [f"- failed: {escape_markdown(source)}: {escape_markdown(reason)}" for source, reason in failed]
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
                        clear = gr.Button("New chat", elem_id="clear")
                    with gr.Accordion("Conversations", open=False, elem_id="conversations-box"):
                        talks = gr.Dropdown(
                            choices=[], label="Your past conversations (kept on the server)", elem_id="conversations"
                        )
                        with gr.Row():
                            reopen = gr.Button("Open", elem_id="open-conversation")
                            forget = gr.Button("Delete", variant="stop", elem_id="delete-conversation")
                            export = gr.Button("Export as Markdown", elem_id="export-conversation")
                        exported = gr.File(label="Exported conversation", elem_id="exported", interactive=False)
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
            conversation = gr.State("")
            inputs = [question, chatbot, history, sources, since, until, as_of, conversation]
            outputs = [chatbot, history, question, cards]

            def respond(
                message: str,
                chat: list[dict],
                past: list,
                chosen: list[str],
                lo: str,
                hi: str,
                at: str,
                current: str,
                request: gr.Request,
            ) -> Iterator[tuple[Any, ...]]:
                user, kept = user_of(request), current
                for *shown, kept in app.respond(message, chat, past, chosen, lo, hi, at, current, user=user):
                    yield *shown, kept, gr.skip()
                yield (gr.skip(),) * 5 + (gr.update(choices=app.conversation_choices(user), value=kept),)

            # The HTTP API's "ask" keeps its six inputs whatever the page gains (a client that
            # sends six values must go on working), so it is an event of a hidden button; the
            # page's own Ask button and Enter send the As-of date and keep the conversation.
            api_only = gr.Button(visible=False, elem_id="ask-api")
            api_only.click(app.respond_api, inputs[:6], outputs, api_name="ask")
            page_outputs = [*outputs, conversation, talks]
            send.click(respond, inputs, page_outputs, api_visibility="private")
            question.submit(respond, inputs, page_outputs, api_visibility="private")
            clear.click(lambda: ([], [], "", "", "", None), None, [*outputs, conversation, talks])

            def listed(request: gr.Request) -> Any:
                return gr.update(choices=app.conversation_choices(user_of(request)))

            def opened(chosen: str, request: gr.Request) -> tuple[Any, ...]:
                chat, past, shown, kept = app.reopen(user_of(request), chosen)
                return chat, past, "", shown, kept

            def forgotten(chosen: str, request: gr.Request) -> tuple[Any, ...]:
                if chosen:
                    app.service.conversations.delete(user_of(request), chosen)
                return [], [], "", "", "", gr.update(choices=app.conversation_choices(user_of(request)), value=None)

            reopen.click(opened, talks, [*outputs, conversation], api_visibility="private")
            forget.click(forgotten, talks, [*outputs, conversation, talks], api_visibility="private")

            def exported_file(chosen: str, request: gr.Request) -> str | None:
                return app.export(user_of(request), chosen)

            export.click(exported_file, talks, exported, api_visibility="private")
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
        demo.load(listed, None, talks)
    return demo


def user_of(request: gr.Request | None) -> str:
    """Whose conversations these are: the login's user name, or ``local`` on a server without a login
    (loopback only: everyone who can reach it is the machine's own user)."""
    return (request.username if request is not None else None) or LOCAL_USER


# The account locks after ten times the wrong passwords that lock one address: only a guesser with
# many addresses reaches it, and one address's guessing never keeps the real user out.
ACCOUNT_FACTOR = 10
ACCOUNT = "all addresses together"  # the account's key in its throttle (there is one login)


class LoginThrottle:
    """Gradio's login check, throttled per client address and, far higher, per account.

    A client address gets ``max_failures`` wrong tries a ``window`` of seconds, then waits with
    back-off (:class:`ui.keys.Throttle`); the account (there is one login) locks only after
    ``ACCOUNT_FACTOR`` times as many wrong tries from everywhere in a window. So one guesser
    locks out only their own address and the real user, from another address, gets in at once;
    only guessing from many addresses at once can lock the account, and the log says so.

    Gradio calls this with the user name and password alone; the client's address comes from
    :data:`ui.keys.LOGIN_CLIENT`, which ``qa-bot serve`` sets around each request (unset, all
    tries count as one unknown client's).
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
        self.clients = Throttle(max_failures, window, clock, what="wrong passwords")
        self.account = Throttle(max_failures * ACCOUNT_FACTOR, window, clock, what="wrong passwords")

    def __call__(self, username: str, password: str, client: str | None = None) -> bool:
        client = client_key(LOGIN_CLIENT.get() if client is None else client)
        if self.clients.wait(client) > 0 or self.account.wait(ACCOUNT) > 0:
            return False  # not logged: each lock is, once, and a guesser's every try would flood the log
        # Compared in constant time, both always, so the time taken tells nothing.
        right_user = hmac.compare_digest(username.encode(), self._user)
        right_password = hmac.compare_digest(password.encode(), self._password)
        if right_user and right_password:
            self.clients.forgive(client)  # whoever knows the password is its user: their typos are forgotten
            return True
        self.clients.failed(client)
        self.account.failed(ACCOUNT)  # one login: every wrong try is a guess at it, the user name included
        return False


__all__ = [
    "CSS", "REFUSAL", "App", "LoginThrottle", "build_app", "display_answer", "escape_markdown", "render_sources",
    "safe_url",
]  # fmt: skip
