"""The HTTP API beside the page: an OpenAI-compatible chat endpoint and a REST API, over the service.

Usage::

    qa-bot serve            # the page at /, this API at /v1 and /api, its docs at /api/docs

    from openai import OpenAI
    client = OpenAI(base_url="http://127.0.0.1:7860/v1", api_key="KEY or anything on loopback")
    question = {"role": "user", "content": "Why did Putin praise Trump?"}
    reply = client.chat.completions.create(model="qa-bot", messages=[question])
    print(reply.choices[0].message.content)             # the answer with [n] marks, then "Sources:" lines
    print(reply.model_extra["qa_bot"]["citations"])     # number, exact quote, title, source, url, date

Decisions, in the order a client meets them:

- ``/v1/chat/completions``: the last message is the question; the user/assistant pairs before
  it are the follow-up context. System messages are read and ignored: qa-bot's instructions
  are its own, and a client cannot turn article text into instructions through them.
- The answer's text carries its ``[n]`` marks, then the date it is as of, then plain
  ``Sources:`` lines a chat client shows as they are. The structured answer (citations with the
  exact quoted sentence, as of, refused, unsupported sentences) is the extra field ``qa_bot``
  of the response, and of the last chunk before ``[DONE]`` when streaming.
- Streaming sends the model's words as it writes them. The checked answer may drop a sentence
  the passages do not support, or become a refusal; the stream cannot take back words, so the
  last chunk says what the check dropped, and ``qa_bot.answer`` is the checked text.
- Unknown request fields are ignored as OpenAI's API does; a malformed request gets an
  OpenAI-style error body (``{"error": {"message", "type", "param", "code"}}``) and status.
- Keys: with ``api.keys_env`` set, every ``/v1`` and ``/api`` call needs ``Authorization:
  Bearer KEY``; wrong keys are throttled per client address, with back-off. Unset, the API is loopback-only
  (``serve`` refuses to serve it elsewhere) and everyone is the user ``local``.
"""

from __future__ import annotations

import ipaddress
import json
import math
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from qa_bot import Answer, EarlyAnswer, QuestionError
from qa_bot.archive import StoreError, describe_failure
from qa_bot.generation import GenerationError
from ui.conversations import ConversationError
from ui.keys import ApiKeys, Throttle, client_key
from ui.service import LOCAL_USER, Service, answer_json, passage_json, sources_list

MODEL = "qa-bot"
MAX_MESSAGES = 200
MAX_URLS = 1000
MAX_FILES = 100
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")

# ---------------------------------------------------------------- request bodies


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")  # unknown fields are ignored, as OpenAI's API does


class FiltersIn(_Lenient):
    source: list[str] = Field(default_factory=list, max_length=100, description="Only these sources.")
    since: str | None = Field(None, description="Published on or after (YYYY-MM-DD).")
    until: str | None = Field(None, description="Published on or before (YYYY-MM-DD).")


class ChatMessage(_Lenient):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):  # content parts: the text parts, joined
            return "\n".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
        return self.content or ""


class ChatRequest(_Lenient):
    model: str
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: bool = False
    # qa-bot's own, optional: the moment the question is asked at, and filters.
    as_of: str | None = Field(None, description="Answer as of this date (YYYY-MM-DD); nothing later is used.")
    filters: FiltersIn | None = None


class AskRequest(_Lenient):
    question: str
    history: list[tuple[str, str]] = Field(default_factory=list, max_length=MAX_MESSAGES)
    filters: FiltersIn | None = None
    as_of: str | None = Field(None, description="Answer as of this date (YYYY-MM-DD); nothing later is used.")
    conversation_id: str | None = Field(None, description="Keep this turn in that conversation (yours).")
    keep: bool = Field(False, description="Keep this turn in a new conversation when no conversation_id is given.")


class IngestRequest(_Lenient):
    urls: list[str] = Field(min_length=1, max_length=MAX_URLS, description="Article or feed URLs (http/https).")


class NewConversation(_Lenient):
    title: str = Field("", max_length=500)


# ---------------------------------------------------------------- errors


class ApiError(Exception):
    """An error the client is told of, OpenAI-style."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", code: str | None = None,
                 param: str | None = None, headers: dict[str, str] | None = None) -> None:  # fmt: skip
        super().__init__(message)
        self.status, self.message, self.kind, self.code, self.param = status, message, kind, code, param
        self.headers = headers or {}


def _error_body(message: str, kind: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def _failure(exc: Exception, service: Service) -> ApiError:
    """What a failure of the bot or the store is, for a client."""
    if isinstance(exc, QuestionError | ValueError):
        return ApiError(400, str(exc))
    return ApiError(503, describe_failure(exc, service.settings), "server_error", "unavailable")


# ---------------------------------------------------------------- the app


def build_api(
    service: Service, keys: ApiKeys | None, throttle: Throttle | None = None, lifespan: Any = None
) -> FastAPI:
    """The FastAPI app with the API's routes; ``serve`` mounts the MCP server and the page on it."""
    api = FastAPI(
        title="qa-bot",
        summary="Cited answers from your news articles: an OpenAI-compatible chat endpoint and a REST API.",
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
        lifespan=lifespan,
    )
    settings = service.settings
    throttle = throttle or Throttle(settings.api.max_failures, settings.api.failure_window)
    models = [MODEL] + ([settings.generation.model] if settings.generation.model != "auto" else [])

    @api.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        body = _error_body(exc.message, exc.kind, exc.code, exc.param)
        return JSONResponse(body, status_code=exc.status, headers=exc.headers)

    @api.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ()) if x != "body")
        message = f"{where or 'request'}: {first.get('msg', 'invalid request')}"
        return JSONResponse(_error_body(message, "invalid_request_error", param=where or None), status_code=400)

    @api.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse(_error_body(str(exc.detail), "invalid_request_error"), status_code=exc.status_code)

    def user(request: Request) -> str:
        """Who is calling: the user their key acts as (``local`` where no keys are configured)."""
        return authenticate(request, keys, throttle)

    caller = Depends(user)

    # ------------------------------------------------------------ OpenAI-compatible

    @api.get("/v1/models", tags=["OpenAI-compatible"])
    def list_models(_: str = caller) -> dict[str, Any]:
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "qa-bot"} for m in models]
        return {"object": "list", "data": data}

    @api.post("/v1/chat/completions", tags=["OpenAI-compatible"], response_model=None)
    def chat_completions(body: ChatRequest, _: str = caller) -> dict[str, Any] | StreamingResponse:
        """A cited answer to the last user message; the earlier turns are the follow-up context.

        The response is OpenAI's, with one extra field, ``qa_bot``: the checked answer, its
        citations (number, exact quote, title, source, url, date, passage), as of, refused.
        """
        if body.model not in models:
            raise ApiError(404, f"Unknown model {body.model!r}. Supported models: {models}", code="model_not_found",
                           param="model")  # fmt: skip
        question, history = _conversation(body.messages)
        filters = body.filters.model_dump() if body.filters else None
        try:
            service.check_store()
            service.bot.check_question(question)
        except (QuestionError, StoreError) as exc:
            raise _failure(exc, service) from exc
        if body.stream:
            parts = service.stream(question, history, filters, body.as_of)
            return StreamingResponse(_chunks(parts, body.model, service), media_type="text/event-stream")
        try:
            answer = service.ask(question, history, filters, body.as_of)
        except (ValueError, StoreError, GenerationError, OSError) as exc:
            raise _failure(exc, service) from exc
        return _completion(answer, body.model)

    # ------------------------------------------------------------ REST

    @api.post("/api/ask", tags=["REST"])
    def ask(body: AskRequest, who: str = caller) -> dict[str, Any]:
        """A cited answer (JSON); with ``conversation_id`` or ``keep``, the turn is kept."""
        filters = body.filters.model_dump() if body.filters else None
        talks = service.conversations
        if body.conversation_id and talks.get(who, body.conversation_id) is None:
            raise ApiError(404, f"No conversation {body.conversation_id!r}.", code="not_found", param="conversation_id")
        try:
            answer = service.ask(body.question, body.history, filters, body.as_of)
        except (ValueError, StoreError, GenerationError, OSError) as exc:
            raise _failure(exc, service) from exc
        result = answer_json(answer)
        if body.conversation_id or body.keep:
            conversation = body.conversation_id or talks.create(who, body.question).id
            try:
                talks.append(who, conversation, body.question, result)
            except ConversationError as exc:
                raise ApiError(409, str(exc), code="conversation_full") from exc
            result["conversation_id"] = conversation
        return result

    @api.get("/api/search", tags=["REST"])
    def search(
        q: str, k: int = 8, since: str | None = None, until: str | None = None, source: str | None = None,
        as_of: str | None = None, _: str = caller,
    ) -> dict[str, Any]:  # fmt: skip
        """The passages for a query, best first (no model call): what ``ask`` would read."""
        if not 1 <= k <= 50:
            raise ApiError(400, f"k = {k}; use 1 to 50", param="k")
        filters = {"since": since, "until": until, "source": [source] if source else []}
        try:
            passages = service.search(q, k, filters, as_of)
        except (ValueError, StoreError, OSError) as exc:
            raise _failure(exc, service) from exc
        return {"query": q, "passages": [passage_json(p) for p in passages]}

    @api.get("/api/timeline", tags=["REST"])
    def timeline(
        topic: str, since: str | None = None, until: str | None = None, as_of: str | None = None, limit: int = 20,
        _: str = caller,
    ) -> dict[str, Any]:  # fmt: skip
        """The topic's events in date order, each an exact quoted sentence with every article reporting it."""
        if not 1 <= limit <= 100:
            raise ApiError(400, f"limit = {limit}; use 1 to 100", param="limit")
        try:
            found = service.timeline(topic, since, until, as_of, limit)
        except (ValueError, StoreError, OSError) as exc:
            raise _failure(exc, service) from exc
        return {"topic": found.topic, "as_of": found.as_of, "entries": found.to_list()}

    @api.get("/api/articles", tags=["REST"])
    def articles(limit: int = 100, offset: int = 0, _: str = caller) -> dict[str, Any]:
        """The stored articles, newest first, a page at a time."""
        if not 1 <= limit <= 1000 or offset < 0:
            raise ApiError(400, f"limit = {limit}, offset = {offset}; use limit 1 to 1000 and offset ≥ 0")
        rows = _read(service, service.articles)
        return {"total": len(rows), "offset": offset, "articles": rows[offset : offset + limit]}

    @api.get("/api/articles/{doc_id}", tags=["REST"])
    def article(doc_id: str, _: str = caller) -> dict[str, Any]:
        rows = _read(service, lambda: service.articles([doc_id]))
        if not rows:
            raise ApiError(404, f"No article with id {doc_id!r}.", code="not_found")
        return rows[0]

    @api.delete("/api/articles/{doc_id}", tags=["REST"])
    def delete_article(doc_id: str, _: str = caller) -> dict[str, Any]:
        title = _read(service, lambda: service.delete(doc_id))
        if title is None:
            raise ApiError(404, f"No article with id {doc_id!r}.", code="not_found")
        return {"deleted": doc_id, "title": title}

    @api.get("/api/sources", tags=["REST"])
    def sources(_: str = caller) -> dict[str, Any]:
        """The sources of the stored articles, and how each feed or URL fared when last fetched."""
        return {"sources": _read(service, service.sources), "fetched": _read(service, service.source_states)}

    @api.post("/api/ingest", tags=["REST"], status_code=202)
    async def ingest(request: Request, who: str = caller) -> dict[str, Any]:
        """Start an ingest of URLs and feeds (JSON ``{"urls": [...]}``), or of uploaded files and URLs
        (multipart: ``files``, and ``urls`` one per line). Returns the job; ``GET /api/jobs/{id}`` follows it.

        A file is taken only as an upload (never as a path on the server), and URLs only when
        public unless ``ingest.allow_private_addresses`` says otherwise, as on the page.
        """
        kind = request.headers.get("content-type", "")
        if kind.startswith("multipart/form-data"):
            saved, refused, urls = await _uploads(request, service)
        else:
            try:
                body = IngestRequest.model_validate(await request.json())
            except ValueError as exc:
                raise ApiError(400, f'the body must be JSON {{"urls": [...]}} or a multipart form: {exc}') from exc
            saved, refused, urls = {}, [], body.urls
        if not saved and not urls:
            if refused:
                reasons = "; ".join(f"{name}: {why}" for name, why in refused)
                raise ApiError(400, f"nothing to ingest: {reasons}", code="nothing_to_ingest")
            raise ApiError(400, "nothing to ingest: send urls or files", code="nothing_to_ingest")
        job = service.start_ingest(who, saved, urls, refused)
        return job.as_json()

    @api.get("/api/jobs/{job_id}", tags=["REST"])
    def job(job_id: str, who: str = caller) -> dict[str, Any]:
        """An ingest job: ``queued``, ``running`` (with progress), ``done`` (with its report) or ``failed``."""
        found = service.job(job_id, who)
        if found is None:
            raise ApiError(404, f"No job {job_id!r}.", code="not_found")
        return found.as_json()

    @api.get("/api/stats", tags=["REST"])
    def stats(_: str = caller) -> dict[str, Any]:
        return _read(service, service.stats)

    @api.get("/api/health", tags=["REST"])
    def health(_: str = caller) -> JSONResponse:
        state = service.health()
        return JSONResponse(state, status_code=200 if state["ok"] else 503)

    # ------------------------------------------------------------ conversations

    @api.get("/api/conversations", tags=["Conversations"])
    def conversations(who: str = caller) -> dict[str, Any]:
        return {"conversations": [c.summary() for c in service.conversations.list(who)]}

    @api.post("/api/conversations", tags=["Conversations"], status_code=201)
    def new_conversation(body: NewConversation, who: str = caller) -> dict[str, Any]:
        return service.conversations.create(who, body.title).as_json()

    @api.get("/api/conversations/{conversation_id}", tags=["Conversations"])
    def conversation(conversation_id: str, who: str = caller) -> dict[str, Any]:
        found = service.conversations.get(who, conversation_id)
        if found is None:  # another user's is as missing as one that never was
            raise ApiError(404, f"No conversation {conversation_id!r}.", code="not_found")
        return found.as_json()

    @api.delete("/api/conversations/{conversation_id}", tags=["Conversations"])
    def delete_conversation(conversation_id: str, who: str = caller) -> dict[str, Any]:
        if not service.conversations.delete(who, conversation_id):
            raise ApiError(404, f"No conversation {conversation_id!r}.", code="not_found")
        return {"deleted": conversation_id}

    @api.get("/api/conversations/{conversation_id}/markdown", tags=["Conversations"])
    def export_conversation(conversation_id: str, who: str = caller) -> PlainTextResponse:
        text = service.conversations.markdown(who, conversation_id)
        if text is None:
            raise ApiError(404, f"No conversation {conversation_id!r}.", code="not_found")
        return PlainTextResponse(text, media_type="text/markdown; charset=utf-8")

    return api


# ---------------------------------------------------------------- keys


def authenticate(request: Request, keys: ApiKeys | None, throttle: Throttle) -> str:
    """The user a request acts as; an :class:`ApiError` (401, or 429 while throttled) if none."""
    if keys is None:
        # Served without keys only on loopback; a page elsewhere that rebinds its own name to
        # 127.0.0.1 still sends that name as Host, and is refused.
        host = (request.url.hostname or "").strip("[]")
        if not names_loopback(host):
            raise ApiError(403, f"Host {host!r} is not this machine's; use 127.0.0.1 or localhost",
                           "permission_error", "wrong_host")  # fmt: skip
        return LOCAL_USER
    client = client_key(request.client.host if request.client else None)
    wait = throttle.wait(client)
    if wait > 0:
        seconds = str(math.ceil(wait))
        raise ApiError(429, f"too many wrong API keys from {client or 'this client'}; try again in {seconds} s",
                       "rate_limit_error", "too_many_failures", headers={"Retry-After": seconds})  # fmt: skip
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "this server needs an API key: send the header 'Authorization: Bearer KEY'",
                       "authentication_error", "missing_api_key", headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
    who = keys.user(token.strip())
    if who is None:
        throttle.failed(client)
        raise ApiError(401, "wrong API key", "authentication_error", "invalid_api_key",
                       headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
    return who


def names_loopback(host: str) -> bool:
    """Whether a request's Host names this machine: a loopback name, or an address written out
    (in any spelling the OS reads: ``127.1`` too) that is loopback. A name is never looked up:
    a page's own domain rebound to 127.0.0.1 is exactly what this check refuses."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        infos = socket.getaddrinfo(host, None, flags=socket.AI_NUMERICHOST)
    except (OSError, UnicodeError):  # not an address: a name other than localhost
        return False
    return all(ipaddress.ip_address(str(sockaddr[0]).split("%")[0]).is_loopback for *_, sockaddr in infos)


# ---------------------------------------------------------------- helpers


def _conversation(messages: list[ChatMessage]) -> tuple[str, list[tuple[str, str]]]:
    """The question (the last message, the user's) and the user/assistant pairs before it."""
    if messages[-1].role != "user":
        raise ApiError(400, f"the last message must be the user's question, not {messages[-1].role!r}",
                       param="messages")  # fmt: skip
    turns = [m for m in messages[:-1] if m.role in ("user", "assistant")]
    history = [
        (turns[i].text(), turns[i + 1].text())
        for i in range(len(turns) - 1)
        if turns[i].role == "user" and turns[i + 1].role == "assistant"
    ]
    return messages[-1].text(), history


def _content(answer: Answer) -> str:
    """The answer as a chat client shows it: text with [n] marks, as of, then the sources."""
    parts = [answer.text]
    if answer.dateline:
        parts.append(answer.dateline)
    listed = sources_list(answer)
    if listed:
        parts.append(listed)
    return "\n\n".join(parts)


def _completion(answer: Answer, model: str) -> dict[str, Any]:
    content = _content(answer)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},  # not counted
        "qa_bot": answer_json(answer),
    }


def _chunks(parts: Iterator[EarlyAnswer | str | Answer], model: str, service: Service) -> Iterator[str]:
    """Server-sent events in OpenAI's format: a role chunk, the model's words, a last chunk with the
    check's verdict, the sources and the ``qa_bot`` field, then ``[DONE]``."""
    ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        body = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}  # fmt: skip
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    streamed = False
    try:
        for part in parts:
            if isinstance(part, str):
                streamed = streamed or bool(part.strip())
                yield chunk({"content": part})
            elif isinstance(part, Answer):
                yield chunk({"content": _tail(part, streamed)}, "stop", qa_bot=answer_json(part))
    except (ValueError, StoreError, GenerationError, OSError) as exc:
        message = describe_failure(exc, service.settings)
        yield chunk({"content": f"\n\n⚠️ {message}"}, "stop", qa_bot={"error": message})
    yield "data: [DONE]\n\n"


def _tail(answer: Answer, streamed: bool) -> str:
    """What the last chunk adds to the words already streamed."""
    if not streamed:  # nothing came from the model (a refusal, or what's new): the whole answer
        return _content(answer)
    parts: list[str] = []
    if answer.refused:
        parts.append(f"Checked against the passages: {answer.text}")
    elif answer.unsupported:
        dropped = " ".join(f"“{s}”" for s in answer.unsupported)
        parts.append(f"Not supported by the passages, and left out of the checked answer: {dropped}")
    if answer.dateline:
        parts.append(answer.dateline)
    listed = sources_list(answer)
    if listed:
        parts.append(listed)
    return "".join("\n\n" + p for p in parts)


def _read(service: Service, work: Callable[[], Any]) -> Any:
    try:
        return work()
    except (StoreError, OSError, ValueError) as exc:
        raise _failure(exc, service) from exc


async def _uploads(request: Request, service: Service) -> tuple[dict[str, str], list[tuple[str, str]], list[str]]:
    """A multipart form's files (checked and saved as the page's uploads are) and its URLs."""
    limit = int(service.settings.ingest.max_file_mb * 1024 * 1024)
    length = request.headers.get("content-length")
    if length is None or not length.isdigit():
        raise ApiError(411, "an upload needs a Content-Length header", code="length_required")
    if int(length) > limit * MAX_FILES:
        raise ApiError(413, f"the upload is {int(length):,} bytes; the limit is {MAX_FILES} files of "
                       f"ingest.max_file_mb = {service.settings.ingest.max_file_mb:g}", code="too_large")  # fmt: skip
    form = await request.form(max_files=MAX_FILES, max_fields=10)
    saved: dict[str, str] = {}
    refused: list[tuple[str, str]] = []
    urls: list[str] = []
    for key, value in form.multi_items():
        if isinstance(value, str):
            if key == "urls":
                urls += [u for u in value.splitlines() if u.strip()]
            continue
        size = value.size if value.size is not None else limit + 1
        service.save_upload_bytes(value.filename or "upload", value.file.read, size, saved, refused)
    await form.close()
    if len(urls) > MAX_URLS:
        raise ApiError(400, f"{len(urls)} URLs; the limit is {MAX_URLS} a request", param="urls")
    return saved, refused, urls
