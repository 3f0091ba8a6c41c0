"""API keys and the throttle on wrong ones, with no web framework in them.

Usage::

    keys = ApiKeys.parse(os.environ["QA_BOT_API_KEYS"])   # "alice=k1,bob=k2,k3"
    keys.user("k1")                                # "alice"; None for a wrong key
    throttle = Throttle(max_failures=5, window=60)
    throttle.wait("10.0.0.7")                      # seconds this client must wait, 0 if none
    throttle.failed("10.0.0.7")                    # a wrong try: past 5 in a minute it waits, then longer

Keys are kept only as SHA-256 digests, compared in constant time: a key read from the
environment is hashed at once and the plain text is not held.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field

log = logging.getLogger("qa_bot")

# The address of the client whose request is being served. Gradio calls the page's login check with
# the user name and password alone, so ``qa-bot serve`` sets this around each request to the page.
LOGIN_CLIENT: ContextVar[str] = ContextVar("LOGIN_CLIENT", default="")

BACKOFF_CAP = 64  # the longest lock, in windows: 6 doublings of the first
SWEEP_AT = 4096  # records held before forgotten ones are swept out


class ApiKeys:
    """Which user a key acts as. A bare key acts as a user of its own, named by its digest."""

    def __init__(self, entries: dict[str, str]) -> None:  # {sha256 hex of the key: user}
        self._users = entries

    @classmethod
    def parse(cls, text: str, source: str = "the API keys") -> ApiKeys:
        entries: dict[str, str] = {}
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            user, _, key = part.rpartition("=") if "=" in part else ("", "", part)
            key, user = key.strip(), user.strip()
            if len(key) < 16:
                raise ValueError(
                    f"{source}: a key of {len(key)} characters; use at least 16 (e.g. `openssl rand -hex 16`)"
                )
            digest = _digest(key)
            entries[digest] = user or f"key-{digest[:8]}"
        return cls(entries)

    def __len__(self) -> int:
        return len(self._users)

    def user(self, key: str) -> str | None:
        digest = _digest(key)
        found = None
        for known, user in self._users.items():  # every digest compared: the time taken tells nothing
            if hmac.compare_digest(known, digest):
                found = user
        return found


class Throttle:
    """Wrong tries counted per key (a client address, or the login's one account), with back-off.

    ``max_failures`` wrong tries within ``window`` seconds lock the key for ``window`` seconds;
    from then on each further wrong try locks it again for twice as long as the last time, up to
    ``BACKOFF_CAP`` windows (64: about an hour for the default minute). A guesser at the defaults
    gets five tries, then one per lock as the locks grow: 11 in the first two hours, then one an hour.
    A key is forgotten once it has gone one cap without a wrong try after its last lock ended, or
    when :meth:`forgive` is called (a right login: whoever knows the password is its user).

    Tries while locked are refused before they are checked and count for nothing, so a locked
    client cannot push another key (the account) towards its own, far higher, threshold.
    """

    def __init__(
        self,
        max_failures: int = 5,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        what: str = "wrong API keys",
    ) -> None:
        self.max_failures, self.window, self.clock, self.what = max_failures, window, clock, what
        self.cap = window * BACKOFF_CAP
        self._records: dict[str, _Record] = {}
        self._sweep_at = SWEEP_AT
        self._lock = threading.Lock()

    def wait(self, key: str) -> float:
        """Seconds ``key`` must wait before its next try counts (0: it may try now)."""
        with self._lock:
            now = self.clock()
            record = self._current(key, now)
            return 0.0 if record is None else max(0.0, record.until - now)

    def failed(self, key: str) -> None:
        with self._lock:
            now = self.clock()
            record = self._current(key, now) or self._records.setdefault(key, _Record())
            if record.locks:  # past the threshold already: every wrong try locks again, twice as long
                self._lock_out(key, record, now)
                return
            record.failures = [t for t in record.failures if now - t < self.window] + [now]
            if len(record.failures) >= self.max_failures:
                self._lock_out(key, record, now)
            self._sweep(now)

    def forgive(self, key: str) -> None:
        with self._lock:
            self._records.pop(key, None)

    def _lock_out(self, key: str, record: _Record, now: float) -> None:
        record.failures, record.locks = [], record.locks + 1
        seconds = min(self.cap, self.window * 2 ** (record.locks - 1))
        record.until = now + seconds
        log.warning(
            "%s from %s: it waits %.0f s (lock %d)", self.what, key or "an unknown client", seconds, record.locks
        )

    def _current(self, key: str, now: float) -> _Record | None:
        """``key``'s record, or None (and dropped) once there is nothing left to remember."""
        record = self._records.get(key)
        if record is not None and self._forgotten(record, now):
            del self._records[key]
            return None
        return record

    def _forgotten(self, record: _Record, now: float) -> bool:
        if record.locks:
            return now - record.until >= self.cap
        return not any(now - t < self.window for t in record.failures)

    def _sweep(self, now: float) -> None:
        """Drop forgotten keys once the table has grown: many addresses must not fill the memory."""
        if len(self._records) < self._sweep_at:
            return
        for key in [k for k, r in self._records.items() if self._forgotten(r, now)]:
            del self._records[key]
        self._sweep_at = max(SWEEP_AT, 2 * len(self._records))


@dataclass
class _Record:
    failures: list[float] = field(default_factory=list)  # times of wrong tries within the window, before a lock
    locks: int = 0  # locks in a row; the next lasts twice the last
    until: float = 0.0  # locked until this time of the clock


def client_key(address: str | None) -> str:
    """The key a client address is throttled under: the address itself, and for IPv6 its /64
    (one subscriber usually holds a whole /64, and would otherwise get a fresh budget per address)."""
    if not address:
        return ""
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else ip)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
