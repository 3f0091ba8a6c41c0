"""API keys and the throttle on wrong ones, with no web framework in them.

Usage::

    keys = ApiKeys.parse(os.environ["QA_BOT_API_KEYS"])   # "alice=k1,bob=k2,k3"
    keys.user("k1")                                # "alice"; None for a wrong key
    throttle = Throttle(max_failures=5, window=60)
    throttle.wait("10.0.0.7")                      # seconds this client must wait, 0 if none

Keys are kept only as SHA-256 digests, compared in constant time: a key read from the
environment is hashed at once and the plain text is not held.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("qa_bot")


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
    """At most ``max_failures`` wrong tries per client in ``window`` seconds; then it waits.

    Per client (its address), so one guesser does not lock out everyone else.
    """

    def __init__(
        self, max_failures: int = 5, window: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_failures, self.window, self.clock = max_failures, window, clock
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def wait(self, client: str) -> float:
        """Seconds ``client`` must wait before its next try counts (0: it may try now)."""
        with self._lock:
            now = self.clock()
            recent = [t for t in self._failures.get(client, []) if now - t < self.window]
            self._failures[client] = recent
            if not recent:
                del self._failures[client]  # the table holds only clients that failed lately
            if len(recent) < self.max_failures:
                return 0.0
            return max(0.0, recent[0] + self.window - now)

    def failed(self, client: str) -> None:
        with self._lock:
            self._failures.setdefault(client, []).append(self.clock())
            if len(self._failures[client]) == self.max_failures:
                log.warning("API keys: %d wrong keys from %s; it waits %.0f s", self.max_failures, client, self.window)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
