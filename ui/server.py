"""``qa-bot serve``: one server, one port. The page at ``/``, the OpenAI-compatible endpoint at
``/v1``, the REST API at ``/api`` (its docs at ``/api/docs``) and the MCP tools at ``/mcp``.

Who may reach what:

- On loopback (the default) everything is served, to the machine's own user (``local``);
  API keys, when set, are required all the same.
- Anywhere else the page needs a login (``ui.user_env`` / ``ui.password_env``) and the API and
  MCP need keys (``api.keys_env``). With neither, ``serve`` refuses to start; with a login and
  no keys, it serves the page alone and says why the API is off.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any

import gradio as gr
import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.requests import Request

from qa_bot.settings import Settings
from qa_bot.tuning import describe
from ui.api import ApiError, _error_body, authenticate, build_api
from ui.app import CSS, App, LoginThrottle, build_app
from ui.keys import ApiKeys, Throttle
from ui.mcp_server import build_mcp
from ui.service import Service

log = logging.getLogger("qa_bot")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
    return root


def access(settings: Settings, host: str, env: Mapping[str, str]) -> tuple[ApiKeys | None, LoginThrottle | None, bool]:
    """(the API keys, the page's login, whether the API and MCP are served) for binding to ``host``;
    SystemExit with one line saying what to set when nothing may be served."""
    try:
        keys = ApiKeys.parse(env[settings.api.keys_env]) if env.get(settings.api.keys_env, "").strip() else None
    except ValueError as exc:
        raise SystemExit(f"qa-bot serve: ${settings.api.keys_env}: {exc}") from exc
    if is_loopback(host):
        return keys, None, True
    user, password = env.get(settings.ui.user_env), env.get(settings.ui.password_env)
    if not user or not password:
        raise SystemExit(
            f"qa-bot serve: binding to {host} needs a login; set {settings.ui.user_env} and "
            f"{settings.ui.password_env} (names from ui.user_env / ui.password_env)"
        )
    if keys is None:
        log.warning("the API and MCP are off: binding to %s needs API keys in $%s", host, settings.api.keys_env)
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
