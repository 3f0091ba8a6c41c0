"""``qa-bot serve``: one server, one port. The page at ``/``, the OpenAI-compatible endpoint at
``/v1``, the REST API at ``/api`` (its docs at ``/api/docs``) and the MCP tools at ``/mcp``.

Who may reach what:

- On loopback (the default) everything is served, to the machine's own user (``local``);
  API keys, when set, are required all the same. Loopback is what the host resolves to, every
  address of it, not how it is spelled (``127.1`` is loopback).
- Anywhere else, and wherever it is bound with ``ui.require_login: true`` (a shared machine's
  loopback has many users), the page needs a login (``ui.user_env`` / ``ui.password_env``) and
  the API and MCP need keys (``api.keys_env``). With neither, ``serve`` refuses to start; with a
  login and no keys, it serves the page alone and says why the API is off.
- Wrong passwords and wrong keys are throttled per client address, with back-off; the login's
  account only at ten times that (:class:`ui.app.LoginThrottle`).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import socket
from collections.abc import AsyncIterator, Mapping
from typing import Any

import gradio as gr
import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.requests import Request

from ingest.web import address_kind
from qa_bot.settings import Settings
from qa_bot.tuning import describe
from ui.api import ApiError, _error_body, authenticate, build_api
from ui.app import CSS, App, LoginThrottle, build_app
from ui.keys import LOGIN_CLIENT, ApiKeys, Throttle
from ui.mcp_server import build_mcp
from ui.service import Service

log = logging.getLogger("qa_bot")


def is_loopback(host: str) -> bool:
    """Whether binding to ``host`` serves this machine alone: it resolves, and every address it
    resolves to is loopback (decided as the fetcher decides an address, by
    :func:`ingest.web.address_kind`). By what the name resolves to, not how it is spelled:
    ``127.1``, ``::1`` and ``localhost`` are loopback; ``0.0.0.0`` and a name that resolves to
    any other address too are not."""
    try:
        infos = socket.getaddrinfo(host.strip().strip("[]") or None, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):  # gaierror is an OSError; an over-long label is a UnicodeError
        return False
    kinds = {address_kind(ipaddress.ip_address(str(sockaddr[0]).split("%")[0])) for *_, sockaddr in infos}
    return kinds == {"loopback"}


class ClientAddress:
    """Sets :data:`ui.keys.LOGIN_CLIENT` to each request's client address while it is served.

    Gradio calls the page's login check with the user name and password alone (its /login
    route passes no request), so this is how the check learns who is trying. The address is
    uvicorn's: the peer's, or X-Forwarded-For's only when the peer is one uvicorn trusts
    (``$FORWARDED_ALLOW_IPS``, default 127.0.0.1 and ::1: a reverse proxy on this machine). A
    remote client cannot name itself another; one on this machine can, as it can bind any of
    127/8, which is why the account has a threshold of its own.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        token = LOGIN_CLIENT.set(str(client[0]) if client else "")
        try:
            await self.app(scope, receive, send)
        finally:
            LOGIN_CLIENT.reset(token)


class KeyGuard:
    """The API's key check in front of a mounted ASGI app (the MCP server's)."""

    def __init__(self, app: Any, keys: ApiKeys | None, throttle: Throttle) -> None:
        self.app, self.keys, self.throttle = app, keys, throttle

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            try:
                authenticate(Request(scope), self.keys, self.throttle)
            except ApiError as exc:
                body = _error_body(exc.message, exc.kind, exc.code, exc.param)
                await JSONResponse(body, status_code=exc.status, headers=exc.headers)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def build_server(settings: Settings, host: str, keys: ApiKeys | None, auth: Any, api: bool = True) -> FastAPI:
    """The whole ASGI app: the API and MCP (when ``api``), and the page mounted at ``/``."""
    service = Service(settings)
    app = App(service)
    demo = build_app(settings, app)
    demo.queue(default_concurrency_limit=4)
    throttle = Throttle(settings.api.max_failures, settings.api.failure_window)
    if api:
        mcp = build_mcp(service)
        mcp_app = mcp.streamable_http_app(streamable_http_path="/", stateless_http=True, host=host)

        @contextlib.asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[None]:
            async with mcp.session_manager.run():
                yield

        root = build_api(service, keys, throttle, lifespan)
        root.mount("/mcp", KeyGuard(mcp_app, keys, throttle))
    else:
        root = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    root.state.service = service
    root = gr.mount_gradio_app(
        root,
        demo,
        path="/",
        auth=auth,
        show_error=False,
        css=CSS,
        max_file_size=f"{int(settings.ingest.max_file_mb)}mb",
        footer_links=[],
    )
    # Gradio checks that a file named in an API call was uploaded through the page only once the
    # Blocks "has launched", which launch() records and mount_gradio_app (6.31) does not: without
    # this, a call naming any file the server can read had it copied into Gradio's upload folder,
    # where Service.is_upload took it (tests/test_security.py caught it).
    demo.has_launched = True
    root.add_middleware(ClientAddress)
    return root


def access(settings: Settings, host: str, env: Mapping[str, str]) -> tuple[ApiKeys | None, LoginThrottle | None, bool]:
    """(the API keys, the page's login, whether the API and MCP are served) for binding to ``host``;
    SystemExit with one line saying what to set when nothing may be served."""
    try:
        keys = ApiKeys.parse(env[settings.api.keys_env]) if env.get(settings.api.keys_env, "").strip() else None
    except ValueError as exc:
        raise SystemExit(f"qa-bot serve: ${settings.api.keys_env}: {exc}") from exc
    loopback = is_loopback(host)
    if loopback and not settings.ui.require_login:
        return keys, None, True
    # Why a login is needed: the address, or the setting (a shared machine's loopback has many users).
    why = "ui.require_login: true" if loopback else f"binding to {host}"
    user, password = env.get(settings.ui.user_env), env.get(settings.ui.password_env)
    if not user or not password:
        unless = "; or set ui.require_login: false" if loopback else ""
        raise SystemExit(
            f"qa-bot serve: {why} needs a login; set {settings.ui.user_env} and "
            f"{settings.ui.password_env} (names from ui.user_env / ui.password_env){unless}"
        )
    if keys is None:
        log.warning("the API and MCP are off: %s needs API keys in $%s", why, settings.api.keys_env)
    return keys, LoginThrottle(user, password), keys is not None


def serve(settings: Settings, host: str | None = None, port: int | None = None) -> None:
    """Serve on loopback by default; anywhere else only behind a login (page) and keys (API)."""
    host = host or settings.ui.host
    port = port or settings.ui.port
    keys, auth, api = access(settings, host, os.environ)
    root = build_server(settings, host, keys, auth, api)
    service: Service = root.state.service
    # Decided and loaded before the page is served, so the first question waits for neither.
    log.info("model: %s", describe(settings.generation, measure=True))
    bot = service.bot
    bot.generator, bot.embedder  # noqa: B018 - loaded now, once
    bot.retriever.lexical()  # the BM25 index opened (built, the first time) and kept current from now on
    if api:
        log.info("serving the page, /v1, /api (docs at /api/docs) and /mcp on http://%s:%d/", host, port)
    # An open page holds a stream open; without a bound, SIGTERM or Ctrl-C waited for it forever.
    uvicorn.run(root, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)
