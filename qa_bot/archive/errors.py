"""The archive's errors, and the one line a person reads when the store fails.

Usage::

    from qa_bot.archive import StoreError, describe_failure
    try:
        ...
    except StoreError as exc:
        print(describe_failure(exc, settings))
"""

from __future__ import annotations

from qa_bot.settings import Settings


class StoreError(RuntimeError):
    """The store cannot be opened or reached."""


def describe_failure(exc: BaseException, settings: Settings) -> str:
    """One line for a person: what failed, naming Chroma where the store is what failed."""
    if settings.store.mode == "server" and _is_connection_error(exc):
        s = settings.store
        return (
            f"cannot reach the Chroma server at {s.host}:{s.port} (store.mode: server): {_root(exc)}; "
            "is `chroma run` still running there?"
        )
    return str(exc) or type(exc).__name__


def _is_connection_error(exc: BaseException) -> bool:
    for e in _chain(exc):
        if isinstance(e, ConnectionError) or type(e).__name__ in (
            "ConnectError",
            "ConnectTimeout",
            "RemoteProtocolError",
        ):
            return True
    return False


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _root(exc: BaseException) -> str:
    return str(_chain(exc)[-1]) or type(exc).__name__


class StoreMismatchError(StoreError):
    """The collection was built with other embedding or chunking settings."""
