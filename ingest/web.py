"""Fetching a URL the way a shared server must: public addresses only, bounded in time and size.

Usage::

    from ingest.web import fetch, FetchError
    body, content_type = fetch("https://example.com/news/article.html", settings.ingest)

* **Address guard.** Each connection (the first request and every redirect hop) resolves the
  host once, refuses it if any of its addresses is loopback, private, link-local, multicast,
  reserved or unspecified (``127.0.0.1``, ``localhost``, ``2130706433``, ``169.254.169.254``,
  ``::ffff:10.0.0.1`` …), and connects to the address it checked, so a name that resolves
  differently a moment later (DNS rebinding) cannot slip through. ``ingest.allow_private_addresses``
  lifts it: ``true`` for every address (the tests' loopback servers), or a list of networks (an
  intranet's). No proxy from the environment is used: the guard must see the real peer.
* **Redirects**: at most ``MAX_REDIRECTS``, http(s) only, each hop guarded.
* **One deadline for the whole request** (``ingest.fetch_timeout``): connecting, headers and body
  together. A server that drips one byte every few seconds is cut off at the deadline, not
  allowed a fresh time-out for every read.
* **Size**: at most ``ingest.max_file_mb`` of body.

Every failure is a :class:`FetchError` with a one-line reason that names what was refused.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from http.client import HTTPMessage
from typing import IO, Any
from urllib.parse import urlsplit

from qa_bot.settings import IngestSettings

MAX_REDIRECTS = 5
_READ = 1 << 16


class FetchError(OSError):
    """A URL could not be fetched; the message says why in one line."""


class BlockedAddressError(FetchError):
    """The URL's host is not a public address, and the config does not allow others."""


def address_kind(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """What makes ``ip`` non-public ("loopback", "private", …), or None for a public address."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for kind in ("loopback", "link_local", "multicast", "unspecified", "reserved", "private"):
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    return None if ip.is_global else "non-public"


class _Request:
    """One fetch's state: its deadline, its sockets (closed at the deadline) and its guard."""

    def __init__(self, settings: IngestSettings) -> None:
        self.settings = settings
        self.deadline = time.monotonic() + settings.fetch_timeout
        self.expired = False
        self.sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self.sockets:
                with contextlib.suppress(OSError):  # already closed
                    sock.shutdown(socket.SHUT_RDWR)  # wakes a read blocked in another thread

    def connect(self, address: tuple[str, int], timeout: Any = None, source_address: Any = None) -> socket.socket:
        """``socket.create_connection`` with the address guard: resolve once, check, connect to what was checked."""
        host, port = address
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise FetchError(f"cannot resolve the host {host!r}: {exc.strerror}") from None
        allowed = self.settings.allow_private_addresses
        if allowed is not True:
            for *_, sockaddr in infos:
                ip = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
                kind = address_kind(ip)
                if kind and not any(ip in network for network in allowed or []):
                    who = str(ip) if host.strip("[]") == str(ip) else f"{host} ({ip})"
                    raise BlockedAddressError(
                        f"refused: {who} is a {kind} address; only public addresses are fetched "
                        "(ingest.allow_private_addresses)"
                    )
        error: OSError = FetchError(f"cannot connect to {host}")
        for family, kind_, proto, _, sockaddr in infos:
            sock = socket.socket(family, kind_, proto)
            with self._lock:
                if self.expired:
                    sock.close()
                    break
                self.sockets.append(sock)
            sock.settimeout(max(0.1, min(self.settings.fetch_timeout, self.deadline - time.monotonic())))
            try:
                sock.connect(sockaddr)
                return sock
            except OSError as exc:
                error = exc
                sock.close()
        raise error

    def connection(self, base: type[http.client.HTTPConnection]) -> type[http.client.HTTPConnection]:
        request = self

        # mypy cannot check a class whose base is a variable; both bases take the same arguments.
        class Guarded(base):  # type: ignore[valid-type, misc]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                self._create_connection = request.connect

        return Guarded


class _HTTP(urllib.request.HTTPHandler):
    def __init__(self, request: _Request) -> None:
        super().__init__()
        self.request = request

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(self.request.connection(http.client.HTTPConnection), req)


class _HTTPS(urllib.request.HTTPSHandler):
    def __init__(self, request: _Request) -> None:
        super().__init__(context=ssl.create_default_context())
        self.request = request

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        # HTTPSHandler keeps its context in _context, which typeshed does not declare.
        context = self._context  # type: ignore[attr-defined]
        return self.do_open(self.request.connection(http.client.HTTPSConnection), req, context=context)


class _Redirects(urllib.request.HTTPRedirectHandler):
    """At most MAX_REDIRECTS hops, to http(s) only; each hop goes through the guarded handlers."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        hops = getattr(req, "hops", 0) + 1
        if hops > MAX_REDIRECTS:
            raise FetchError(f"more than {MAX_REDIRECTS} redirects (the next to {newurl})")
        if urlsplit(newurl).scheme not in ("http", "https"):
            raise FetchError(f"redirected to {newurl}, which is not an http(s) URL")
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None:
            setattr(new, "hops", hops)  # noqa: B010 - counted on the request urllib carries along
        return new


def fetch(url: str, settings: IngestSettings) -> tuple[bytes, str]:
    """GET ``url`` within the guard, the deadline and the size limit; return (body, content type)."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise FetchError(f"not an http(s) URL: {url}")
    state = _Request(settings)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _HTTP(state), _HTTPS(state), _Redirects())
    request = urllib.request.Request(url, headers={"User-Agent": settings.user_agent})
    watchdog = threading.Timer(settings.fetch_timeout, state.expire)
    watchdog.daemon = True
    watchdog.start()
    limit = int(settings.max_file_mb * 1024 * 1024)
    try:
        with opener.open(request, timeout=settings.fetch_timeout) as response:
            content_type = response.headers.get("Content-Type", "").lower()
            body = bytearray()
            while len(body) <= limit and (block := response.read(_READ)):
                body += block
    except urllib.error.HTTPError as exc:
        raise FetchError(f"HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        if state.expired:
            raise _too_slow(settings) from None
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, FetchError):
            raise reason from None
        if isinstance(reason, (socket.timeout, TimeoutError)):
            raise _too_slow(settings) from None
        raise FetchError(f"cannot fetch: {reason}") from None
    finally:
        watchdog.cancel()
    if state.expired:  # the deadline cut the body short: never take a truncated page
        raise _too_slow(settings)
    if len(body) > limit:
        raise FetchError(f"response is over the limit ingest.max_file_mb = {settings.max_file_mb:g}")
    return bytes(body), content_type


def _too_slow(settings: IngestSettings) -> FetchError:
    return FetchError(f"timed out: no whole response within {settings.fetch_timeout:g} s (ingest.fetch_timeout)")
