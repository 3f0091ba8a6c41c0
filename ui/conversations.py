"""Conversations kept on the server: one SQLite file beside the store, shared by the page and the API.

Usage::

    talks = Conversations(Path("var/conversations.sqlite3"))
    c = talks.create("alice", "Why did Putin praise Trump?")
    talks.append("alice", c.id, "Why did Putin praise Trump?", answer_json)
    talks.list("alice")            # newest first; only alice's
    talks.get("bob", c.id)         # None: one user never sees another's
    print(talks.markdown("alice", c.id))

Why SQLite: a conversation is a handful of small rows written a turn at a time, read back by
id and listed per user. SQLite is in the standard library, keeps them across restarts, takes
writers from several threads and processes (WAL), and needs no server. Every call opens its
own connection, so a Gradio worker thread and an API request never share one.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    title TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS conversations_by_user ON conversations (user, updated);
CREATE TABLE IF NOT EXISTS turns (
    conversation TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (conversation, seq)
);
"""
TITLE_CHARS = 80


class ConversationError(ValueError):
    """A conversation that cannot take another turn (named, with the limit)."""


@dataclass
class Turn:
    question: str
    answer: dict[str, Any]  # the answer as JSON (ui.service.answer_json)
    created: float


@dataclass
class Conversation:
    id: str
    user: str
    title: str
    created: float
    updated: float
    turns: list[Turn] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "created": _iso(self.created),
            "updated": _iso(self.updated),
        }

    def as_json(self) -> dict[str, Any]:
        turns = [{"question": t.question, "answer": t.answer, "created": _iso(t.created)} for t in self.turns]
        return {**self.summary(), "turns": turns}


class Conversations:
    """Each user's conversations; every read and write names the user, and finds only theirs."""

    def __init__(self, path: Path, max_turns: int = 500) -> None:
        self.path = path
        self.max_turns = max_turns
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=10)
        db.execute("PRAGMA foreign_keys=ON")
        try:
            with db:  # one transaction: committed, or rolled back on an error
                yield db
        finally:
            db.close()

    def create(self, user: str, title: str = "") -> Conversation:
        now = time.time()
        c = Conversation(uuid.uuid4().hex, user, _title(title), now, now)
        with self._db() as db:
            db.execute(
                "INSERT INTO conversations (id, user, title, created, updated) VALUES (?, ?, ?, ?, ?)",
                (c.id, c.user, c.title, c.created, c.updated),
            )
        return c

    def append(self, user: str, conversation_id: str, question: str, answer: dict[str, Any]) -> Turn:
        """Add a turn to the user's conversation; :class:`KeyError` if it is not theirs or not there."""
        now = time.time()
        with self._db() as db:
            row = db.execute(
                "SELECT title, (SELECT COUNT(*) FROM turns WHERE conversation = id) FROM conversations "
                "WHERE id = ? AND user = ?",
                (conversation_id, user),
            ).fetchone()
            if row is None:
                raise KeyError(conversation_id)
            title, count = row
            if count >= self.max_turns:
                raise ConversationError(
                    f"conversation {conversation_id} has {count} turns, the limit (api.max_turns); start a new one"
                )
            db.execute(
                "INSERT INTO turns (conversation, seq, question, answer, created) VALUES (?, ?, ?, ?, ?)",
                (conversation_id, count, question, json.dumps(answer, ensure_ascii=False), now),
            )
            db.execute(
                "UPDATE conversations SET updated = ?, title = ? WHERE id = ?",
                (now, title or _title(question), conversation_id),
            )
        return Turn(question, answer, now)

    def list(self, user: str, limit: int = 100) -> list[Conversation]:
        """The user's conversations, most recently used first (without their turns)."""
        with self._db() as db:
            rows = db.execute(
                "SELECT id, user, title, created, updated FROM conversations WHERE user = ? "
                "ORDER BY updated DESC LIMIT ?",
                (user, limit),
            ).fetchall()
        return [Conversation(*row) for row in rows]

    def get(self, user: str, conversation_id: str) -> Conversation | None:
        """The user's conversation with its turns; None if there is none of that id *for this user*."""
        with self._db() as db:
            row = db.execute(
                "SELECT id, user, title, created, updated FROM conversations WHERE id = ? AND user = ?",
                (conversation_id, user),
            ).fetchone()
            if row is None:
                return None
            turns = db.execute(
                "SELECT question, answer, created FROM turns WHERE conversation = ? ORDER BY seq",
                (conversation_id,),
            ).fetchall()
        cid, owner, title, created, updated = row
        return Conversation(cid, owner, title, created, updated, [Turn(q, json.loads(a), t) for q, a, t in turns])

    def delete(self, user: str, conversation_id: str) -> bool:
        with self._db() as db:
            gone = db.execute("DELETE FROM conversations WHERE id = ? AND user = ?", (conversation_id, user))
        return gone.rowcount > 0

    def markdown(self, user: str, conversation_id: str) -> str | None:
        """The conversation as Markdown: each question, its answer, and the quotes it cites."""
        c = self.get(user, conversation_id)
        if c is None:
            return None
        lines = [f"# {c.title}", "", f"*{_iso(c.created)}, {len(c.turns)} turns*", ""]
        for t in c.turns:
            lines += [f"## {t.question}", "", t.answer.get("answer", "")]
            if t.answer.get("dateline"):
                lines += ["", f"*{t.answer['dateline']}*"]
            for cite in t.answer.get("citations", []):
                where = ", ".join(x for x in (cite.get("source"), cite.get("date")) if x)
                link = f" <{cite['url']}>" if cite.get("url") else ""
                lines += ["", f"> [{cite['number']}] “{cite['quote']}” — {cite.get('title', '')} ({where}){link}"]
            lines.append("")
        return "\n".join(lines)


def _title(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= TITLE_CHARS else text[: TITLE_CHARS - 1] + "…"


def _iso(stamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp))
