"""Fetching URLs the way a good crawler on a shared server must.

Usage::

    from ingest.web import Fetcher, FetchError
    with Fetcher(settings.ingest) as fetcher:
        page = fetcher.get("https://example.com/news/article.html", etag='"abc"')
        page.not_modified, page.body, page.content_type, page.etag, page.last_modified

One :class:`Fetcher` holds an httpx client (connections kept alive and reused), a thread pool
for concurrent fetches (``ingest.fetch_workers``), a limit per host
(``ingest.per_host_connections``) and each host's ``robots.txt``. Every fetch:

* **Address guard.** Each new connection (to a feed, a page, ``robots.txt``, every redirect hop)
  resolves the host once, refuses it if any of its addresses is loopback, private, link-local,
  multicast, reserved or unspecified (``127.0.0.1``, ``localhost``, ``2130706433``,
  ``169.254.169.254``, ``::ffff:10.0.0.1`` …), and connects to the address it checked, so a name
  that resolves differently a moment later (DNS rebinding) cannot slip through.
  ``ingest.allow_private_addresses`` lifts it: ``true`` for every address (the tests' loopback
  servers), or a list of networks. No proxy from the environment is used: the guard must see the
  real peer.
* **robots.txt** of each host is read once per ``ROBOTS_TTL`` and obeyed for ``ingest.user_agent``
  (RFC 9309: a 4xx means no rules, a 5xx means stay away; its ``Crawl-delay`` spaces requests).
* **Redirects**: at most ``MAX_REDIRECTS``, http(s) only, each hop guarded and checked against
  its host's robots.txt.
* **Retries**: 429 and 5xx answers are tried again up to ``ingest.fetch_retries`` times, after the
  server's ``Retry-After`` or an exponential back-off, never longer than ``MAX_RETRY_WAIT``.
* **Conditional requests**: given the ``ETag`` / ``Last-Modified`` of the last fetch, a server
  that answers 304 sends no body, and the caller knows nothing changed.
* **One deadline for the whole request** (``ingest.fetch_timeout``): connecting, headers and
  body together; a server that drips a byte every few seconds is cut off at the deadline.
* **Size**: at most ``ingest.max_file_mb`` of body.

Every failure is a :class:`FetchError` with a one-line reason that names what was refused.
"""

from __future__ import annotations

import email.utils
import ipaddress
import random
import socket
import ssl
import threading
import time
import urllib.robotparser
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx

from qa_bot.settings import IngestSettings

MAX_REDIRECTS = 5
# A server's Retry-After longer than this is not waited for: the item fails now and the next
# round (or the source's back-off in ``watch``) tries again.
MAX_RETRY_WAIT = 30.0
# robots.txt is read again after this long; a watch every 15 minutes reads it once an hour.
ROBOTS_TTL = 3600.0
# RFC 9309 asks crawlers to read at least 500 KiB of robots.txt; more is ignored.
ROBOTS_MAX_BYTES = 512 * 1024
# A Crawl-delay longer than this is held to it, so a hostile robots.txt cannot stall a round.
MAX_CRAWL_DELAY = 10.0
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

T = TypeVar("T")


class FetchError(OSError):
    """A URL could not be fetched; the message says why in one line."""


class TooLateError(FetchError):
    """The request could not start before the caller's ``start_by`` (its host was busy)."""


class BlockedAddressError(FetchError):
    """The URL's host is not a public address, and the config does not allow others."""


@dataclass
class Response:
    """What one GET brought back: a body (200) or nothing new (304)."""

    url: str  # after redirects
    status: int
    body: bytes = b""
    content_type: str = ""
    etag: str = ""
    last_modified: str = ""

    @property
    def not_modified(self) -> bool:
        return self.status == 304


@dataclass
class Traffic:
    """What a fetcher sent and received since it was made (or last reset), for summaries."""

    requests: int = 0
    not_modified: int = 0
    bytes: int = 0
    bodies: int = 0  # 200 answers, each with a body (robots.txt not counted)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, status: int, size: int, robots: bool) -> None:
        with self.lock:
            self.requests += 1
            self.bytes += size
            self.not_modified += status == 304
            self.bodies += status == 200 and not robots

    def snapshot(self) -> Traffic:
        with self.lock:
            return Traffic(self.requests, self.not_modified, self.bytes, self.bodies)


def address_kind(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """What makes ``ip`` non-public ("loopback", "private", …), or None for a public address."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for kind in ("loopback", "link_local", "multicast", "unspecified", "reserved", "private"):
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    return None if ip.is_global else "non-public"


# ---------------------------------------------------------------- the guarded network backend

# The deadline of the request this thread is making. httpcore runs a sync request in the
# caller's thread, so each read and connect can be held to what is left of it, even on a
# pooled connection another thread opened.
_deadline = threading.local()


def _left(timeout: float | None) -> float:
    end = getattr(_deadline, "at", None)
    if end is None:
        return timeout if timeout is not None else 30.0
    left = end - time.monotonic()
    if left <= 0:
        raise httpcore.ReadTimeout("the whole-request deadline passed")
    return min(left, timeout) if timeout is not None else left


class _Stream(httpcore.NetworkStream):
    """A socket stream whose every read and write ends by the request's deadline."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self.inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.inner.read(max_bytes, _left(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.inner.write(buffer, _left(timeout))

    def close(self) -> None:
        self.inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        # The certificate is checked against the URL's host name, not the address connected to.
        return _Stream(self.inner.start_tls(ssl_context, server_hostname, _left(timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self.inner.get_extra_info(info)


class _GuardedBackend(httpcore.NetworkBackend):
    """httpcore's socket backend with the address guard: resolve once, check, connect to what was checked."""

    def __init__(self, settings: IngestSettings) -> None:
        self.settings = settings
        self.plain = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = self.checked_addresses(host, port)
        error: Exception = FetchError(f"cannot connect to {host}")
        for address in addresses:
            try:
                stream = self.plain.connect_tcp(address, port, _left(timeout), local_address, socket_options)
                return _Stream(stream)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error

    def checked_addresses(self, host: str, port: int) -> list[str]:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise FetchError(f"cannot resolve the host {host!r}: {exc.strerror}") from None
        allowed = self.settings.allow_private_addresses
        addresses: list[str] = []
        for *_, sockaddr in infos:
            ip = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
            kind = address_kind(ip)
            if allowed is not True and kind and not any(ip in network for network in allowed or []):
                who = str(ip) if host.strip("[]") == str(ip) else f"{host} ({ip})"
                raise BlockedAddressError(
                    f"refused: {who} is a {kind} address; only public addresses are fetched "
                    "(ingest.allow_private_addresses)"
                )
            addresses.append(str(sockaddr[0]))
        return addresses

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


# ---------------------------------------------------------------- hosts: limits, robots.txt, delays


@dataclass
class _Robots:
    parser: urllib.robotparser.RobotFileParser | None  # None: no rules (a 4xx robots.txt)
    read_at: float
    refusal: str = ""  # set when the host is not to be fetched at all (a 5xx robots.txt)


class _Host:
    def __init__(self, limit: int) -> None:
        self.slots = threading.BoundedSemaphore(limit)
        self.lock = threading.Lock()  # one robots.txt read at a time per host
        self.robots: _Robots | None = None
        self.next_at = 0.0  # Crawl-delay: the earliest start of the next request
        self.pace = threading.Lock()


def _host_key(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.lower()}"


# ---------------------------------------------------------------- the fetcher


def _guarded_client(settings: IngestSettings) -> httpx.Client:
    """An HTTP client whose every connection goes through the address guard."""
    limits = httpx.Limits(
        max_connections=settings.fetch_workers * 2, max_keepalive_connections=settings.fetch_workers * 2
    )
    transport = httpx.HTTPTransport(limits=limits, retries=0)
    # httpx takes no network backend of its own; the pool it would build is replaced by the
    # same httpcore pool with the guarded backend, so no connection can bypass the guard.
    transport._pool = httpcore.ConnectionPool(
        ssl_context=ssl.create_default_context(),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=_GuardedBackend(settings),
    )
    return httpx.Client(
        transport=transport,
        trust_env=False,  # no proxy from the environment: the guard must see the real peer
        follow_redirects=False,  # followed here, each hop checked
        timeout=httpx.Timeout(settings.fetch_timeout),
        headers={"User-Agent": settings.user_agent},
    )


class Fetcher:
    """Concurrent, polite, guarded HTTP GETs; one per ingest run (or per ``watch``, across rounds)."""

    def __init__(self, settings: IngestSettings) -> None:
        self.settings = settings
        self.traffic = Traffic()
        # The client (its SSL context and pool) is built at the first request: 40-55 ms that an
        # ingest of files alone never needs (docs/experiments/2026-12-06-reingest-profile.md).
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()
        self._hosts: dict[str, _Host] = {}
        self._hosts_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=settings.fetch_workers, thread_name_prefix="qa-bot-fetch")

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def client(self) -> httpx.Client:
        with self._client_lock:
            if self._client is None:
                self._client = _guarded_client(self.settings)
            return self._client

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._client_lock:
            if self._client is not None:
                self._client.close()

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Run ``fn(*args)`` in the fetch pool (at most ``ingest.fetch_workers`` at once)."""
        return self._pool.submit(fn, *args)

    # ------------------------------------------------------------ one GET

    def get(self, url: str, etag: str = "", last_modified: str = "", start_by: float | None = None) -> Response:
        """GET ``url`` after its host's robots.txt allows it, following checked redirects.

        ``start_by`` (a ``time.monotonic()`` value): raise :class:`TooLateError` instead of sending a
        request that waited for its host past it.
        """
        if urlsplit(url).scheme not in ("http", "https"):
            raise FetchError(f"not an http(s) URL: {url}")
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        current = url
        for hop in range(MAX_REDIRECTS + 1):
            self._check_robots(current)
            response = self._get_with_retries(current, headers, start_by)
            if not isinstance(response, str):
                return response
            target = urljoin(current, response)
            if hop == MAX_REDIRECTS:
                raise FetchError(f"more than {MAX_REDIRECTS} redirects (the next to {target})")
            if urlsplit(target).scheme not in ("http", "https"):
                raise FetchError(f"redirected to {target}, which is not an http(s) URL")
            if _host_key(target) != _host_key(current):
                headers = {}  # validators belong to the URL asked for, not another host's
            current = target
        raise AssertionError("unreachable")

    def _get_with_retries(self, url: str, headers: dict[str, str], start_by: float | None) -> Response | str:
        """A Response, or the Location of a redirect."""
        retries = self.settings.fetch_retries
        for attempt in range(retries + 1):
            status, reason, wait, result = self._once(url, headers, robots=False, start_by=start_by)
            if result is not None:
                return result
            if status not in _RETRY_STATUSES or attempt == retries:
                tries = f" (after {attempt + 1} tries)" if attempt else ""
                raise FetchError(f"HTTP {status} {reason}{tries}")
            delay = wait if wait is not None else 0.5 * 2**attempt * (1 + random.random() / 2)
            if delay > MAX_RETRY_WAIT:
                raise FetchError(f"HTTP {status} {reason}: asked to retry after {delay:.0f} s; not waited for")
            time.sleep(delay)
        raise AssertionError("unreachable")

    def _once(
        self, url: str, headers: dict[str, str], robots: bool, start_by: float | None = None
    ) -> tuple[int, str, float | None, Response | str | None]:
        """(status, reason, Retry-After, result); result is None for an answer to retry or fail on."""
        host = self._host(url)
        with host.slots:
            self._pace(host)
            if start_by is not None and time.monotonic() > start_by:
                raise TooLateError("not started in time")
            _deadline.at = time.monotonic() + self.settings.fetch_timeout
            try:
                return self._send(url, headers, robots)
            except FetchError:
                raise
            except httpx.TimeoutException:
                raise self._too_slow() from None
            except (httpx.HTTPError, httpcore.ReadTimeout) as exc:
                if _deadline_passed():
                    raise self._too_slow() from None
                raise FetchError(f"cannot fetch: {_reason(exc)}") from None
            finally:
                _deadline.at = None

    def _send(self, url: str, headers: dict[str, str], robots: bool) -> tuple[int, str, float | None, Any]:
        limit = ROBOTS_MAX_BYTES if robots else int(self.settings.max_file_mb * 1024 * 1024)
        with self.client.stream("GET", url, headers=headers) as response:
            status = response.status_code
            if response.is_redirect and "location" in response.headers:
                self.traffic.count(status, 0, robots)
                return status, response.reason_phrase, None, response.headers["location"]
            if status != 200 and status != 304:
                self.traffic.count(status, response.num_bytes_downloaded, robots)
                return status, response.reason_phrase, _retry_after(response.headers.get("retry-after")), None
            body = bytearray()
            for block in response.iter_bytes():
                body += block
                if len(body) > limit:
                    if robots:
                        break  # the rest of an over-long robots.txt is ignored (RFC 9309)
                    raise FetchError(f"response is over the limit ingest.max_file_mb = {self.settings.max_file_mb:g}")
            self.traffic.count(status, response.num_bytes_downloaded, robots)
            return (
                status,
                response.reason_phrase,
                None,
                Response(
                    url=url,
                    status=status,
                    body=bytes(body[:limit]),
                    content_type=response.headers.get("content-type", "").lower(),
                    etag=response.headers.get("etag", ""),
                    last_modified=response.headers.get("last-modified", ""),
                ),
            )

    def _too_slow(self) -> FetchError:
        return FetchError(
            f"timed out: no whole response within {self.settings.fetch_timeout:g} s (ingest.fetch_timeout)"
        )

    # ------------------------------------------------------------ hosts

    def _host(self, url: str) -> _Host:
        key = _host_key(url)
        with self._hosts_lock:
            if key not in self._hosts:
                self._hosts[key] = _Host(self.settings.per_host_connections)
            return self._hosts[key]

    def _pace(self, host: _Host) -> None:
        """Space request starts by the host's Crawl-delay (none unless its robots.txt asks)."""
        delay = self._crawl_delay(host)
        if not delay:
            return
        with host.pace:
            wait = host.next_at - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            host.next_at = time.monotonic() + delay

    def _crawl_delay(self, host: _Host) -> float:
        robots = host.robots
        if robots is None or robots.parser is None:
            return 0.0
        delay = robots.parser.crawl_delay(self.settings.user_agent)
        return min(float(delay), MAX_CRAWL_DELAY) if delay else 0.0

    def _check_robots(self, url: str) -> None:
        if not self.settings.respect_robots_txt:
            return
        host = self._host(url)
        with host.lock:
            robots = host.robots
            if robots is None or time.monotonic() - robots.read_at > ROBOTS_TTL:
                robots = host.robots = self._read_robots(url)
        if robots.refusal:
            raise FetchError(robots.refusal)
        if robots.parser is not None and not robots.parser.can_fetch(self.settings.user_agent, url):
            raise FetchError(f"robots.txt of {urlsplit(url).netloc} disallows it for {self._agent_token()}")

    def _read_robots(self, url: str) -> _Robots:
        where = f"{_host_key(url)}/robots.txt"
        current = where
        for _ in range(MAX_REDIRECTS + 1):
            status, _reason_text, _wait, result = self._once(current, {}, robots=True)
            if isinstance(result, str):  # a redirect, each hop through the guard
                current = urljoin(current, result)
                if urlsplit(current).scheme not in ("http", "https"):
                    break
                continue
            if isinstance(result, Response):
                parser = urllib.robotparser.RobotFileParser(where)
                parser.parse(result.body.decode("utf-8", "replace").splitlines())
                return _Robots(parser, time.monotonic())
            if 400 <= status < 500:
                return _Robots(None, time.monotonic())  # RFC 9309: no robots.txt, no rules
            refusal = (
                f"robots.txt of {urlsplit(url).netloc} answered HTTP {status}; "
                "its site is not fetched until it answers (RFC 9309)"
            )
            return _Robots(None, time.monotonic(), refusal)
        return _Robots(None, time.monotonic())  # redirected too often: treated as absent

    def _agent_token(self) -> str:
        return self.settings.user_agent.split("/")[0].split()[0]


def _deadline_passed() -> bool:
    end = getattr(_deadline, "at", None)
    return end is not None and time.monotonic() >= end


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header: a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    if "Connection refused" in text or "Errno 111" in text:
        return "connection refused"
    return text
