"""qa-bot's tools for agents, over MCP (the official ``mcp`` SDK): stdio or streamable HTTP.

Usage::

    qa-bot mcp --config config.yaml     # stdio: an agent starts it as a subprocess
    qa-bot serve                        # the same tools over streamable HTTP at /mcp

    {"mcpServers": {"news": {"command": "qa-bot", "args": ["mcp", "--config", "/path/config.yaml"]}}}

Tools: ``search`` (passages, no model call), ``ask`` (a cited answer), ``list_articles``,
``timeline`` (a story's events in date order), and ``ingest_urls`` only when
``api.mcp_ingest`` is on. Each returns JSON whose shape its description gives. A tool that
fails returns an MCP error with one line saying why, never a traceback.
"""

from __future__ import annotations

import time
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from qa_bot import QuestionError
from qa_bot.archive import StoreError, describe_failure
from qa_bot.generation import GenerationError
from ui.service import LOCAL_USER, Service, answer_json, passage_json

INSTRUCTIONS = (
    "qa-bot answers questions from a local archive of news articles, with citations whose quotes are exact "
    "sentences of the articles. Use `search` to read passages, `ask` for a checked, cited answer, `timeline` "
    "for what happened in what order. Dates are YYYY-MM-DD; `as_of` asks as of that day (nothing later is used)."
)
INGEST_WAIT = 120.0  # seconds ingest_urls waits for its job before returning it unfinished


def build_mcp(service: Service, user: str = LOCAL_USER) -> MCPServer:
    """The MCP server over ``service``; ``user`` is whose ingest jobs these are."""
    server = MCPServer("qa-bot", instructions=INSTRUCTIONS)

    def guarded(work: Any) -> Any:
        try:
            return work()
        except (QuestionError, ValueError, StoreError, GenerationError, OSError) as exc:
            raise ToolError(describe_failure(exc, service.settings)) from exc

    @server.tool()
    def search(query: str, k: int = 8, since: str = "", until: str = "", as_of: str = "") -> dict[str, Any]:
        """Search the news archive; no model call. Returns {"passages": [{"chunk_id", "doc_id", "title",
        "source", "url", "date", "text", "score", "also_reported_by"}]}, best first, at most k (1-50).
        since/until (YYYY-MM-DD) bound the publication date; as_of excludes anything published later."""
        k = max(1, min(50, k))
        filters = {"since": since or None, "until": until or None}
        found = guarded(lambda: service.search(query, k, filters, as_of or None))
        return {"passages": [passage_json(p) for p in found]}

    @server.tool()
    def ask(question: str, as_of: str = "", since: str = "", until: str = "") -> dict[str, Any]:
        """Answer a question from the archive. Returns {"answer": text with [n] marks, "refused": bool,
        "citations": [{"number", "quote" (an exact sentence of the article), "title", "source", "url",
        "date", "doc_id", "chunk_id", "passage"}], "as_of", "newest", "dateline", "unsupported"}.
        A refusal (the articles do not answer it) is an answer with refused true."""
        filters = {"since": since or None, "until": until or None}
        return answer_json(guarded(lambda: service.ask(question, (), filters, as_of or None)))

    @server.tool()
    def list_articles(limit: int = 50, offset: int = 0) -> dict[str, Any]:
        """The stored articles, newest first. Returns {"total", "articles": [{"id", "title", "source",
        "published", "chunks", "origin"}]} for limit (1-1000) articles from offset."""
        rows = guarded(service.articles)
        limit = max(1, min(1000, limit))
        return {"total": len(rows), "articles": rows[max(0, offset) : max(0, offset) + limit]}

    @server.tool()
    def timeline(topic: str, since: str = "", until: str = "", as_of: str = "", limit: int = 20) -> dict[str, Any]:
        """A story's events in date order, one entry per event however many outlets reported it.
        Returns {"topic", "as_of", "entries": [{"date": "YYYY-MM-DD", "text": an exact quoted sentence,
        "citations": [{"doc_id", "url", "title", "source", "quote"}]}]}."""
        found = guarded(lambda: service.timeline(topic, since or None, until or None, as_of or None,
                                                 max(1, min(100, limit))))  # fmt: skip
        return {"topic": found.topic, "as_of": found.as_of, "entries": found.to_list()}

    if service.settings.api.mcp_ingest:

        @server.tool()
        def ingest_urls(urls: list[str]) -> dict[str, Any]:
            """Add articles or feeds (http/https URLs; public addresses only unless the server allows more).
            Waits up to 120 s; returns the job {"id", "state", "progress", "report": {"added", "updated",
            "unchanged", "failed": [{"source", "reason"}], ...}}. A job still running is returned as such."""
            job = service.start_ingest(user, urls=urls[:1000])
            deadline = time.monotonic() + INGEST_WAIT
            while job.finished is None and time.monotonic() < deadline:
                time.sleep(0.2)
            return job.as_json()

    return server


def run_stdio(service: Service) -> None:
    """Serve the tools over stdio until the client closes it."""
    build_mcp(service).run("stdio")
