"""The enquiry log: every enquiry the bot promises to pass on is committed to disk first.

One SQLite file (WAL, synchronous=FULL) holds the enquiries, the links between relayed
messages and enquiries, per-FAQ answer counts and the conversation persistence tables
(see bot/persistence.py). The schema is a sqlite-utils migration set: each change is
registered once, applied in a transaction, recorded, and skipped when already applied.

`EnquiryLog` is synchronous (CLI, tests). The bot uses `AsyncEnquiryLog`, which runs every
call on one dedicated worker thread, so the event loop never blocks on the disk and the
connection is never touched from two threads.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

KINDS: tuple[str, ...] = ("booking", "fallback", "urgent")
STATUSES: tuple[str, ...] = ("new", "in_progress", "done")
OPEN_STATUSES: tuple[str, ...] = ("new", "in_progress")
# Which status each status may move to: staff take or close a new one, release or close a
# taken one, and reopen a closed one only by taking it again.
TRANSITIONS: dict[str, frozenset[str]] = {
    "new": frozenset({"in_progress", "done"}),
    "in_progress": frozenset({"new", "done"}),
    "done": frozenset({"in_progress"}),
}
# staff_post: the bot's post of the enquiry in the staff chat; to_staff: a user's message
# relayed into the staff chat; to_user: a staff reply relayed to the user.
DIRECTIONS: tuple[str, ...] = ("staff_post", "to_staff", "to_user")
BUSY_TIMEOUT_MS = 10_000
REFERENCE_PREFIX = "ENQ-"
_REFERENCE = re.compile(r"^\s*(?:#|enq-?)?\s*0*(\d{1,12})\s*$", re.IGNORECASE)

T = TypeVar("T")


class EnquiryNotFound(LookupError):
    """No enquiry has this number; str() is one line the CLI and the bot can show as is."""

    def __init__(self, enquiry_id: int) -> None:
        super().__init__(f"no enquiry {format_reference(enquiry_id)}")
        self.enquiry_id = enquiry_id


def format_reference(enquiry_id: int) -> str:
    """The reference users and staff quote: ENQ-000123 for id 123."""
    return f"{REFERENCE_PREFIX}{enquiry_id:06d}"


def parse_reference(text: str | int) -> int:
    """Accept what people type for a reference (123, #123, ENQ-000123, enq123) -> the id."""
    if isinstance(text, int):
        return text
    match = _REFERENCE.match(text)
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"not an enquiry reference: {text!r} (expected a number or ENQ-000123)")
    return int(match.group(1))


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """UTC ISO 8601 to the second; naive datetimes are taken as UTC. Sorts as text."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _to_json(value: Any) -> str:
    # default=str: an odd value in the details must never stop an enquiry being stored.
    return json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))


# --------------------------------------------------------------------------- schema

MIGRATIONS = Migrations("mesobot")


def _ddl(db: Database, *statements: str) -> None:
    for statement in statements:
        db.execute(statement)


@MIGRATIONS(name="001_enquiries")
def _m001_enquiries(db: Database) -> None:
    # AUTOINCREMENT: a reference number is never reused, even after forget_user or purge.
    _ddl(
        db,
        """
        CREATE TABLE enquiries (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            user_id INTEGER,
            chat_id INTEGER,
            display_name TEXT NOT NULL DEFAULT '',
            username TEXT,
            kind TEXT NOT NULL,
            text TEXT NOT NULL DEFAULT '',
            details TEXT NOT NULL DEFAULT '{}',
            status TEXT NOT NULL DEFAULT 'new'
                CHECK (status IN ('new', 'in_progress', 'done')),
            staff_notes TEXT NOT NULL DEFAULT '[]',
            handled_by TEXT,
            handled_at TEXT,
            staff_chat_id INTEGER,
            staff_message_id INTEGER
        )
        """,
        "CREATE INDEX enquiries_status ON enquiries (status)",
        "CREATE INDEX enquiries_user_id ON enquiries (user_id)",
    )


@MIGRATIONS(name="002_answer_counts")
def _m002_answer_counts(db: Database) -> None:
    _ddl(
        db,
        """
        CREATE TABLE answer_counts (
            entry_id TEXT PRIMARY KEY,
            count INTEGER NOT NULL DEFAULT 0,
            last_answered_at TEXT NOT NULL
        )
        """,
    )


@MIGRATIONS(name="003_relays")
def _m003_relays(db: Database) -> None:
    _ddl(
        db,
        """
        CREATE TABLE relays (
            id INTEGER PRIMARY KEY,
            enquiry_id INTEGER NOT NULL REFERENCES enquiries (id) ON DELETE CASCADE,
            direction TEXT NOT NULL,
            staff_chat_id INTEGER NOT NULL,
            staff_message_id INTEGER NOT NULL,
            user_chat_id INTEGER,
            user_message_id INTEGER,
            created_at TEXT NOT NULL
        )
        """,
        "CREATE UNIQUE INDEX relays_staff_message ON relays (staff_chat_id, staff_message_id)",
        "CREATE INDEX relays_enquiry_id ON relays (enquiry_id)",
        "CREATE INDEX relays_user_chat_id ON relays (user_chat_id)",
    )


@MIGRATIONS(name="004_persistence")
def _m004_persistence(db: Database) -> None:
    # The tables bot/persistence.py keeps PTB's conversations and *_data in. They live in
    # this set so forget_user and user_data can always rely on them existing.
    _ddl(
        db,
        """
        CREATE TABLE conversations (
            name TEXT NOT NULL,
            key TEXT NOT NULL,
            state TEXT NOT NULL,
            chat_id INTEGER,
            user_id INTEGER,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (name, key)
        )
        """,
        "CREATE INDEX conversations_user_id ON conversations (user_id)",
        "CREATE INDEX conversations_updated_at ON conversations (updated_at)",
        """
        CREATE TABLE user_data (
            user_id INTEGER PRIMARY KEY,
            data TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE chat_data (
            chat_id INTEGER PRIMARY KEY,
            data TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE bot_data (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            data TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )
        """,
    )


@MIGRATIONS(name="005_inbox")
def _m005_inbox(db: Database) -> None:
    # bot/inbox.py: updates from Telegram, committed before they are confirmed. The payload is
    # cleared once the update is handled; the row is kept a day so a redelivery is recognised.
    _ddl(
        db,
        """
        CREATE TABLE inbox (
            update_id INTEGER PRIMARY KEY,
            received_at TEXT NOT NULL,
            payload TEXT,
            handled_at TEXT
        )
        """,
        "CREATE INDEX inbox_pending ON inbox (update_id) WHERE handled_at IS NULL",
        "CREATE INDEX inbox_handled_at ON inbox (handled_at) WHERE handled_at IS NOT NULL",
    )


@MIGRATIONS(name="006_enquiry_update")
def _m006_enquiry_update(db: Database) -> None:
    # The Telegram update an enquiry was filed from: an update handled twice (replayed from the
    # inbox after a crash) files its enquiry once.
    _ddl(
        db,
        "ALTER TABLE enquiries ADD COLUMN update_id INTEGER",
        "CREATE UNIQUE INDEX enquiries_update ON enquiries (update_id, kind) WHERE update_id IS NOT NULL",
    )


@MIGRATIONS(name="007_enquiry_message")
def _m007_enquiry_message(db: Database) -> None:
    # The person's message an enquiry passes on when it is filed from a button ("None of these",
    # "Not what I asked"): a double tap sends two updates for one question, which files it once.
    _ddl(
        db,
        "ALTER TABLE enquiries ADD COLUMN message_id INTEGER",
        "CREATE UNIQUE INDEX enquiries_message ON enquiries (chat_id, message_id, kind)"
        " WHERE message_id IS NOT NULL",
    )


@MIGRATIONS(name="008_awaiting_choice")
def _m008_awaiting_choice(db: Database) -> None:
    # A question answered with "did you mean": kept until the person picks a suggestion or
    # "None of these"; if they do neither, it is filed for staff (EnquiryLog.file_unchosen).
    _ddl(
        db,
        """
        CREATE TABLE awaiting_choice (
            chat_id INTEGER NOT NULL,
            message_id INTEGER NOT NULL,
            user_id INTEGER,
            display_name TEXT NOT NULL DEFAULT '',
            username TEXT,
            text TEXT NOT NULL,
            details TEXT NOT NULL DEFAULT '{}',
            asked_at TEXT NOT NULL,
            PRIMARY KEY (chat_id, message_id)
        )
        """,
        "CREATE INDEX awaiting_choice_asked_at ON awaiting_choice (asked_at)",
        "CREATE INDEX awaiting_choice_user_id ON awaiting_choice (user_id)",
    )


def _migrate(db: Database) -> None:
    try:
        MIGRATIONS.apply(db)
    except sqlite3.DatabaseError:
        # Two processes (bot and CLI) opening a brand-new file at once: the loser's
        # migration fails because the winner already applied it. Only re-raise if
        # something is still pending.
        if MIGRATIONS.pending(db):
            raise


def open_database(path: str | Path) -> Database:
    """Open (creating parents and schema) the database file, tuned for durability."""
    path = Path(path)
    if str(path) != ":memory:":
        path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        db = Database(conn)
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        db.enable_wal()
        # FULL: a committed enquiry survives power loss too, not only a crash of the bot.
        db.execute("PRAGMA synchronous = FULL")
        db.execute("PRAGMA foreign_keys = ON")
        _migrate(db)
    except BaseException:
        conn.close()
        raise
    return db


# --------------------------------------------------------------------------- rows


@dataclass(frozen=True)
class Enquiry:
    """One stored enquiry; `id` is the reference number users are given."""

    id: int
    created_at: str
    updated_at: str
    user_id: int | None
    chat_id: int | None
    display_name: str
    username: str | None
    kind: str
    text: str
    details: dict[str, Any]
    status: str
    staff_notes: tuple[dict[str, Any], ...]
    handled_by: str | None
    handled_at: str | None
    staff_chat_id: int | None
    staff_message_id: int | None

    @property
    def reference(self) -> str:
        return format_reference(self.id)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Enquiry:
        return cls(
            id=row["id"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            user_id=row["user_id"],
            chat_id=row["chat_id"],
            display_name=row["display_name"],
            username=row["username"],
            kind=row["kind"],
            text=row["text"],
            details=json.loads(row["details"] or "{}"),
            status=row["status"],
            staff_notes=tuple(json.loads(row["staff_notes"] or "[]")),
            handled_by=row["handled_by"],
            handled_at=row["handled_at"],
            staff_chat_id=row["staff_chat_id"],
            staff_message_id=row["staff_message_id"],
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-ready dict (reference first) for /mydata and exports."""
        return {
            "reference": self.reference,
            "id": self.id,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "user_id": self.user_id,
            "chat_id": self.chat_id,
            "display_name": self.display_name,
            "username": self.username,
            "kind": self.kind,
            "text": self.text,
            "details": self.details,
            "status": self.status,
            "staff_notes": [dict(note) for note in self.staff_notes],
            "handled_by": self.handled_by,
            "handled_at": self.handled_at,
            "staff_chat_id": self.staff_chat_id,
            "staff_message_id": self.staff_message_id,
        }


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}: expected one of {', '.join(STATUSES)}")


# --------------------------------------------------------------------------- the log


class EnquiryLog:
    """Synchronous enquiry log over one SQLite connection; every write is committed on return.

    Use it from one thread only (the connection enforces this); the bot goes through
    `AsyncEnquiryLog`.
    """

    def __init__(self, path: str | Path, *, clock: Callable[[], datetime] = utc_now) -> None:
        self.path = Path(path)
        self.db = open_database(self.path)
        self._clock = clock

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> EnquiryLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing

    def clock(self) -> datetime:
        """The current time from the injected clock (tests move it)."""
        return self._clock()

    def now(self) -> str:
        """The current time as stored: UTC ISO 8601."""
        return iso(self._clock())

    @contextmanager
    def write(self, *, fsync: bool = True) -> Iterator[Database]:
        """One write transaction, committed on exit. IMMEDIATE takes the write lock up front
        (waiting up to the busy timeout), so a read-then-write never fails half way because
        the CLI wrote in between.

        fsync=False commits without waiting for the disk (synchronous=NORMAL): the write
        survives a crash of the bot, not a power cut. For what is cheap to lose or redo
        (counts, the inbox's bookkeeping), so that enquiries alone wait for the disk."""
        conn = self.db.conn
        if conn.in_transaction:
            raise RuntimeError("EnquiryLog.write() cannot be nested")
        if not fsync:
            conn.execute("PRAGMA synchronous = NORMAL")
            try:
                with self.write() as db:
                    yield db
            finally:
                conn.execute("PRAGMA synchronous = FULL")
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        try:
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return list(self.db.query(sql, list(params)))

    def _enquiries(self, sql: str, params: Sequence[Any] = ()) -> list[Enquiry]:
        return [Enquiry.from_row(row) for row in self._rows(sql, params)]

    def _require(self, enquiry_id: int) -> Enquiry:
        found = self._enquiries("SELECT * FROM enquiries WHERE id = ?", [enquiry_id])
        if not found:
            raise EnquiryNotFound(enquiry_id)
        return found[0]

    # -- enquiries

    def record(
        self,
        kind: str,
        user_id: int | None,
        chat_id: int | None,
        display_name: str | None,
        username: str | None,
        text: str,
        details: Mapping[str, Any] | None = None,
        update_id: int | None = None,
        message_id: int | None = None,
    ) -> Enquiry:
        """Store a new enquiry; it is committed (fsynced) before this returns, so the
        reference handed to the user always points at a row that survives a crash.

        `update_id` is the Telegram update it came from: the same update filing the same kind
        again (handled twice after a crash) gets the enquiry already stored. `message_id` is the
        person's message it passes on, for enquiries filed from a button: the same message in
        the same chat filed as the same kind again (a double tap) gets the stored one too."""
        if kind not in KINDS:
            raise ValueError(f"unknown enquiry kind {kind!r}: expected one of {', '.join(KINDS)}")
        now = self.now()
        with self.write() as db:
            found = None
            if update_id is not None:
                found = db.execute(
                    "SELECT id FROM enquiries WHERE update_id = ? AND kind = ?", [update_id, kind]
                ).fetchone()
            if found is None and message_id is not None:
                found = db.execute(
                    "SELECT id FROM enquiries WHERE chat_id IS ? AND message_id = ? AND kind = ?",
                    [chat_id, message_id, kind],
                ).fetchone()
            if found is not None:
                return self._require(found[0])
            cursor = db.execute(
                "INSERT INTO enquiries (created_at, updated_at, user_id, chat_id, display_name,"
                " username, kind, text, details, status, staff_notes, update_id, message_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'new', '[]', ?, ?)",
                [
                    now,
                    now,
                    user_id,
                    chat_id,
                    display_name or "",
                    username or None,
                    kind,
                    text or "",
                    _to_json(dict(details or {})),
                    update_id,
                    message_id,
                ],
            )
            enquiry_id = cursor.lastrowid
        assert enquiry_id is not None
        return self.get(enquiry_id)

    def get(self, enquiry_id: int) -> Enquiry:
        """The enquiry with this number; EnquiryNotFound (a LookupError) if there is none."""
        return self._require(enquiry_id)

    def for_update(self, update_id: int) -> Enquiry | None:
        """The first enquiry filed from this Telegram update, of any kind; None if none was."""
        found = self._enquiries(
            "SELECT * FROM enquiries WHERE update_id = ? ORDER BY id LIMIT 1", [update_id]
        )
        return found[0] if found else None

    def find(self, enquiry_id: int) -> Enquiry | None:
        """Like get() but None when missing, for handlers that treat that as normal."""
        try:
            return self._require(enquiry_id)
        except EnquiryNotFound:
            return None

    def list(self, status: str | None = None, *, limit: int | None = 50, offset: int = 0) -> list[Enquiry]:
        """A page of enquiries, newest first. status: None = all, "open" = new or
        in_progress, or one status."""
        where, params = self._status_filter(status)
        return self._enquiries(
            f"SELECT * FROM enquiries {where} ORDER BY id DESC LIMIT ? OFFSET ?",
            [*params, -1 if limit is None else limit, offset],
        )

    def count(self, status: str | None = None) -> int:
        """How many enquiries match the same filter list() takes, for "page 2 of 5"."""
        where, params = self._status_filter(status)
        return self.db.execute(f"SELECT count(*) FROM enquiries {where}", params).fetchone()[0]

    def count_open(self) -> int:
        """How many enquiries still need staff (new or in_progress)."""
        return self.count("open")

    @staticmethod
    def _status_filter(status: str | None) -> tuple[str, list[Any]]:
        if status is None:
            return "", []
        if status == "open":
            return "WHERE status IN ('new', 'in_progress')", []
        _check_status(status)
        return "WHERE status = ?", [status]

    def set_status(self, enquiry_id: int, status: str, by: str | int | None = None) -> Enquiry:
        """Move an enquiry along new -> in_progress -> done (see TRANSITIONS). Setting the
        status it already has changes nothing; a disallowed move is a ValueError."""
        _check_status(status)
        with self.write() as db:
            current = self._require(enquiry_id)
            if current.status == status:
                return current
            allowed = TRANSITIONS[current.status]
            if status not in allowed:
                raise ValueError(
                    f"{current.reference} is {current.status}: it can become "
                    f"{' or '.join(sorted(allowed))}, not {status}"
                )
            now = self.now()
            if status == "new":  # released: nobody is handling it any more
                handled_by, handled_at = None, None
            else:
                handled_by = str(by) if by is not None else current.handled_by
                handled_at = now
            db.execute(
                "UPDATE enquiries SET status = ?, handled_by = ?, handled_at = ?, updated_at = ?"
                " WHERE id = ?",
                [status, handled_by, handled_at, now, enquiry_id],
            )
        return self.get(enquiry_id)

    def take(self, enquiry_id: int, by: str | int) -> Enquiry:
        """A staff member takes the enquiry: in_progress, handled by them (taking one that
        someone else holds, or that was done, reassigns or reopens it)."""
        with self.write() as db:
            self._require(enquiry_id)
            now = self.now()
            db.execute(
                "UPDATE enquiries SET status = 'in_progress', handled_by = ?, handled_at = ?,"
                " updated_at = ? WHERE id = ?",
                [str(by), now, now, enquiry_id],
            )
        return self.get(enquiry_id)

    def add_note(self, enquiry_id: int, by: str | int, text: str) -> Enquiry:
        """Append a staff note {at, by, text}; one UPDATE, so concurrent notes never clobber."""
        text = (text or "").strip()
        if not text:
            raise ValueError("a note needs some text")
        now = self.now()
        note = _to_json({"at": now, "by": str(by), "text": text})
        with self.write() as db:
            cursor = db.execute(
                "UPDATE enquiries SET staff_notes = json_insert(staff_notes, '$[#]', json(?)),"
                " updated_at = ? WHERE id = ?",
                [note, now, enquiry_id],
            )
            if cursor.rowcount == 0:
                raise EnquiryNotFound(enquiry_id)
        return self.get(enquiry_id)

    def set_staff_message(self, enquiry_id: int, message_id: int, chat_id: int | None = None) -> Enquiry:
        """Remember the enquiry's post in the staff chat, so staff replies to it find the
        enquiry after a restart. With chat_id it is also stored as a relay (exact lookup)."""
        now = self.now()
        with self.write() as db:
            cursor = db.execute(
                "UPDATE enquiries SET staff_message_id = ?,"
                " staff_chat_id = coalesce(?, staff_chat_id), updated_at = ? WHERE id = ?",
                [message_id, chat_id, now, enquiry_id],
            )
            if cursor.rowcount == 0:
                raise EnquiryNotFound(enquiry_id)
            if chat_id is not None:
                self._insert_relay(db, enquiry_id, "staff_post", chat_id, message_id, None, None)
        return self.get(enquiry_id)

    # -- relays

    def _insert_relay(
        self,
        db: Database,
        enquiry_id: int,
        direction: str,
        staff_chat_id: int,
        staff_message_id: int,
        user_chat_id: int | None,
        user_message_id: int | None,
    ) -> int:
        cursor = db.execute(
            "INSERT OR REPLACE INTO relays (enquiry_id, direction, staff_chat_id,"
            " staff_message_id, user_chat_id, user_message_id, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                enquiry_id,
                direction,
                staff_chat_id,
                staff_message_id,
                user_chat_id,
                user_message_id,
                self.now(),
            ],
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def add_relay(
        self,
        enquiry_id: int,
        *,
        direction: str,
        staff_chat_id: int,
        staff_message_id: int,
        user_chat_id: int | None = None,
        user_message_id: int | None = None,
    ) -> int:
        """Link a message in the staff chat to an enquiry (and the user's side of it), so a
        staff reply to any message of the thread reaches the right user after a restart.
        Returns the relay id; recording the same staff message again replaces the link."""
        if direction not in DIRECTIONS:
            raise ValueError(
                f"unknown relay direction {direction!r}: expected one of {', '.join(DIRECTIONS)}"
            )
        with self.write() as db:
            self._require(enquiry_id)
            return self._insert_relay(
                db,
                enquiry_id,
                direction,
                staff_chat_id,
                staff_message_id,
                user_chat_id,
                user_message_id,
            )

    def enquiry_for_staff_message(self, chat_id: int, message_id: int) -> Enquiry | None:
        """The enquiry a staff-chat message belongs to (the one staff replied to), or None."""
        found = self._enquiries(
            "SELECT e.* FROM relays r JOIN enquiries e ON e.id = r.enquiry_id"
            " WHERE r.staff_chat_id = ? AND r.staff_message_id = ?",
            [chat_id, message_id],
        )
        if not found:
            # A staff post stored without its chat id matches in any chat.
            found = self._enquiries(
                "SELECT * FROM enquiries WHERE staff_message_id = ?"
                " AND (staff_chat_id = ? OR staff_chat_id IS NULL) ORDER BY id DESC LIMIT 1",
                [message_id, chat_id],
            )
        return found[0] if found else None

    def relays_for(self, enquiry_id: int) -> list[dict[str, Any]]:
        """Every relayed message of an enquiry, oldest first."""
        return self._rows("SELECT * FROM relays WHERE enquiry_id = ? ORDER BY id", [enquiry_id])

    def was_relayed(self, direction: str, chat_id: int, message_id: int) -> bool:
        """Whether this message (staff's for to_user, the user's for to_staff) was already
        relayed: an update handled again after a crash must not deliver it twice."""
        side = {"to_user": "staff", "to_staff": "user"}[direction]
        return bool(
            self._rows(
                f"SELECT 1 FROM relays WHERE direction = ? AND {side}_chat_id = ? AND {side}_message_id = ?"
                " LIMIT 1",
                [direction, chat_id, message_id],
            )
        )

    def staff_thread_for(self, enquiry_id: int) -> tuple[int | None, int] | None:
        """(staff_chat_id, message_id) to reply to when relaying the user's next message:
        the enquiry's staff post, else the newest relayed message; None if neither exists.
        The chat id is None only if the post was stored without one."""
        enquiry = self._require(enquiry_id)
        if enquiry.staff_message_id is not None:
            return enquiry.staff_chat_id, enquiry.staff_message_id
        rows = self._rows(
            "SELECT staff_chat_id, staff_message_id FROM relays WHERE enquiry_id = ?"
            " ORDER BY id DESC LIMIT 1",
            [enquiry_id],
        )
        return (rows[0]["staff_chat_id"], rows[0]["staff_message_id"]) if rows else None

    def open_handoff_for_user(self, user_id: int) -> Enquiry | None:
        """The user's newest open enquiry that a staff member took: while there is one, the
        user's next messages are relayed to staff instead of answered by the bot."""
        found = self._enquiries(
            "SELECT * FROM enquiries WHERE user_id = ? AND status IN ('new', 'in_progress')"
            " AND handled_by IS NOT NULL ORDER BY id DESC LIMIT 1",
            [user_id],
        )
        return found[0] if found else None

    # -- questions awaiting a choice ("did you mean")

    def await_choice(
        self,
        user_id: int | None,
        chat_id: int,
        message_id: int,
        display_name: str | None,
        username: str | None,
        text: str,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Keep a question the bot answered with suggestions until the person chooses; the
        same message again (edited) replaces it and waits afresh."""
        with self.write() as db:
            db.execute(
                "INSERT INTO awaiting_choice (chat_id, message_id, user_id, display_name, username,"
                " text, details, asked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (chat_id, message_id) DO UPDATE SET text = excluded.text,"
                " details = excluded.details, asked_at = excluded.asked_at",
                [
                    chat_id,
                    message_id,
                    user_id,
                    display_name or "",
                    username or None,
                    text or "",
                    _to_json(dict(details or {})),
                    self.now(),
                ],
            )

    def choice_made(self, chat_id: int, message_id: int) -> bool:
        """The person chose (a suggestion, or "None of these", which files it itself): the
        question no longer waits. False if it was not waiting."""
        with self.write(fsync=False) as db:
            return bool(
                db.execute(
                    "DELETE FROM awaiting_choice WHERE chat_id = ? AND message_id = ?", [chat_id, message_id]
                ).rowcount
            )

    def file_unchosen(self, wait: timedelta, now: datetime | None = None) -> list[Enquiry]:
        """File for staff, as unanswered questions, those that have waited longer than `wait`
        for a choice, oldest first; returns their enquiries. Each is stored before it stops
        waiting, and filed once: a crash in between files it again as the same enquiry."""
        cutoff = iso((now or self.clock()) - wait)
        rows = self._rows("SELECT * FROM awaiting_choice WHERE asked_at < ? ORDER BY asked_at", [cutoff])
        filed = []
        for row in rows:
            details = {**json.loads(row["details"] or "{}"), "not_chosen": "no suggestion was picked"}
            filed.append(
                self.record(
                    kind="fallback",
                    user_id=row["user_id"],
                    chat_id=row["chat_id"],
                    display_name=row["display_name"],
                    username=row["username"],
                    text=row["text"],
                    details=details,
                    message_id=row["message_id"],
                )
            )
            self.choice_made(row["chat_id"], row["message_id"])
        return filed

    # -- answer counts (per FAQ entry, no personal data)

    def count_answer(self, entry_id: str) -> int:
        """Count one answer from this FAQ entry for the curators; returns the new total."""
        with self.write(fsync=False) as db:
            return db.execute(
                "INSERT INTO answer_counts (entry_id, count, last_answered_at) VALUES (?, 1, ?)"
                " ON CONFLICT (entry_id) DO UPDATE SET count = count + 1,"
                " last_answered_at = excluded.last_answered_at RETURNING count",
                [entry_id, self.now()],
            ).fetchone()[0]

    def answer_counts(self) -> list[dict[str, Any]]:
        """[{entry_id, count, last_answered_at}], most answered first."""
        return self._rows("SELECT * FROM answer_counts ORDER BY count DESC, entry_id")

    # -- personal data

    def user_data(self, user_id: int) -> dict[str, Any]:
        """Everything stored about one user as plain JSON-ready dicts, for /mydata."""
        enquiries = self._enquiries("SELECT * FROM enquiries WHERE user_id = ? ORDER BY id", [user_id])
        relays = self._rows(
            "SELECT * FROM relays WHERE enquiry_id IN (SELECT id FROM enquiries WHERE user_id = ?)"
            " OR user_chat_id = ? ORDER BY id",
            [user_id, user_id],
        )
        conversations = [
            {
                "name": row["name"],
                "key": json.loads(row["key"]),
                "state": json.loads(row["state"]),
                "updated_at": row["updated_at"],
            }
            for row in self._rows(
                "SELECT * FROM conversations WHERE user_id = ? ORDER BY name, key", [user_id]
            )
        ]
        awaiting = [
            {**row, "details": json.loads(row["details"] or "{}")}
            for row in self._rows(
                "SELECT * FROM awaiting_choice WHERE user_id = ? ORDER BY asked_at", [user_id]
            )
        ]
        user_rows = self._rows("SELECT data FROM user_data WHERE user_id = ?", [user_id])
        chat_rows = self._rows("SELECT data FROM chat_data WHERE chat_id = ?", [user_id])
        return {
            "user_id": user_id,
            "enquiries": [enquiry.to_dict() for enquiry in enquiries],
            "relays": relays,
            "awaiting_choice": awaiting,
            "conversations": conversations,
            "user_data": json.loads(user_rows[0]["data"]) if user_rows else None,
            "chat_data": json.loads(chat_rows[0]["data"]) if chat_rows else None,
        }

    def forget_user(self, user_id: int) -> int:
        """Delete everything stored about one user (enquiries, relays, questions awaiting a
        choice, conversation state, user_data and their private chat's chat_data) in one
        transaction; returns the number of rows deleted. Answer counts hold no personal data
        and stay."""
        deleted = 0
        with self.write() as db:
            for sql, params in (
                (
                    "DELETE FROM relays WHERE enquiry_id IN"
                    " (SELECT id FROM enquiries WHERE user_id = ?) OR user_chat_id = ?",
                    [user_id, user_id],
                ),
                ("DELETE FROM enquiries WHERE user_id = ?", [user_id]),
                ("DELETE FROM awaiting_choice WHERE user_id = ?", [user_id]),
                ("DELETE FROM conversations WHERE user_id = ?", [user_id]),
                ("DELETE FROM user_data WHERE user_id = ?", [user_id]),
                # A private chat's id is the user's id; group ids are negative.
                ("DELETE FROM chat_data WHERE chat_id = ?", [user_id]),
            ):
                deleted += db.execute(sql, params).rowcount
        return deleted

    def purge_done_older_than(self, days: float, now: datetime | None = None) -> int:
        """Delete done enquiries (and their relays) closed more than `days` ago, for the
        retention period; open ones are never purged. Returns enquiries deleted."""
        if days < 0:
            raise ValueError(f"days must be zero or more, got {days}")
        cutoff = iso((now or self.clock()) - timedelta(days=days))
        with self.write() as db:
            return db.execute(
                "DELETE FROM enquiries WHERE status = 'done' AND coalesce(handled_at, updated_at) < ?",
                [cutoff],
            ).rowcount

    def export_rows(self) -> list[dict[str, Any]]:
        """Every enquiry as a plain dict, oldest first, for CSV/JSON export."""
        return [enquiry.to_dict() for enquiry in self._enquiries("SELECT * FROM enquiries ORDER BY id")]


# --------------------------------------------------------------------------- async


class AsyncEnquiryLog:
    """The enquiry log for the bot: same methods as coroutines, all run on ONE dedicated
    worker thread that owns the connection, so SQLite never blocks the event loop and is
    never used from two threads. Calls are shielded: a cancelled handler never cancels a
    write that was already submitted (an enquiry is stored even if the reply is lost)."""

    def __init__(self, path: str | Path, *, clock: Callable[[], datetime] = utc_now) -> None:
        self.path = Path(path)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mesobot-sqlite")
        self._closed = False
        try:
            # Opened in the worker thread: only that thread ever touches the connection.
            self._log: EnquiryLog = self._executor.submit(EnquiryLog, self.path, clock=clock).result()
        except BaseException:
            self._executor.shutdown(wait=True)
            raise

    @property
    def closed(self) -> bool:
        return self._closed

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run fn(log, *args, **kwargs) on the worker thread (log is the sync EnquiryLog);
        bot/persistence.py uses this to share the connection and the thread."""
        return await asyncio.shield(self.submit(fn, *args, **kwargs))

    def submit(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> asyncio.Future[T]:
        """Queue fn(log, *args, **kwargs) on the worker thread now; calls run in the order
        they were submitted (bot/inbox.py relies on that)."""
        if self._closed:
            raise RuntimeError("the enquiry log is closed")
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._executor, functools.partial(fn, self._log, *args, **kwargs))

    async def close(self) -> None:
        """Finish queued calls, close the connection (in its thread), stop the worker."""
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, self._log.close)
        finally:
            self._executor.shutdown(wait=True)

    async def __aenter__(self) -> AsyncEnquiryLog:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def record(
        self,
        kind: str,
        user_id: int | None,
        chat_id: int | None,
        display_name: str | None,
        username: str | None,
        text: str,
        details: Mapping[str, Any] | None = None,
        update_id: int | None = None,
        message_id: int | None = None,
    ) -> Enquiry:
        """See EnquiryLog.record: committed before the coroutine returns."""
        return await self.call(
            EnquiryLog.record,
            kind,
            user_id,
            chat_id,
            display_name,
            username,
            text,
            details,
            update_id,
            message_id,
        )

    async def get(self, enquiry_id: int) -> Enquiry:
        return await self.call(EnquiryLog.get, enquiry_id)

    async def for_update(self, update_id: int) -> Enquiry | None:
        return await self.call(EnquiryLog.for_update, update_id)

    async def find(self, enquiry_id: int) -> Enquiry | None:
        return await self.call(EnquiryLog.find, enquiry_id)

    async def list(
        self, status: str | None = None, *, limit: int | None = 50, offset: int = 0
    ) -> list[Enquiry]:
        return await self.call(EnquiryLog.list, status, limit=limit, offset=offset)

    async def count(self, status: str | None = None) -> int:
        return await self.call(EnquiryLog.count, status)

    async def count_open(self) -> int:
        return await self.call(EnquiryLog.count_open)

    async def set_status(self, enquiry_id: int, status: str, by: str | int | None = None) -> Enquiry:
        return await self.call(EnquiryLog.set_status, enquiry_id, status, by)

    async def take(self, enquiry_id: int, by: str | int) -> Enquiry:
        return await self.call(EnquiryLog.take, enquiry_id, by)

    async def add_note(self, enquiry_id: int, by: str | int, text: str) -> Enquiry:
        return await self.call(EnquiryLog.add_note, enquiry_id, by, text)

    async def set_staff_message(
        self, enquiry_id: int, message_id: int, chat_id: int | None = None
    ) -> Enquiry:
        return await self.call(EnquiryLog.set_staff_message, enquiry_id, message_id, chat_id)

    async def add_relay(
        self,
        enquiry_id: int,
        *,
        direction: str,
        staff_chat_id: int,
        staff_message_id: int,
        user_chat_id: int | None = None,
        user_message_id: int | None = None,
    ) -> int:
        return await self.call(
            EnquiryLog.add_relay,
            enquiry_id,
            direction=direction,
            staff_chat_id=staff_chat_id,
            staff_message_id=staff_message_id,
            user_chat_id=user_chat_id,
            user_message_id=user_message_id,
        )

    async def enquiry_for_staff_message(self, chat_id: int, message_id: int) -> Enquiry | None:
        return await self.call(EnquiryLog.enquiry_for_staff_message, chat_id, message_id)

    async def relays_for(self, enquiry_id: int) -> list[dict[str, Any]]:
        return await self.call(EnquiryLog.relays_for, enquiry_id)

    async def was_relayed(self, direction: str, chat_id: int, message_id: int) -> bool:
        return await self.call(EnquiryLog.was_relayed, direction, chat_id, message_id)

    async def staff_thread_for(self, enquiry_id: int) -> tuple[int | None, int] | None:
        return await self.call(EnquiryLog.staff_thread_for, enquiry_id)

    async def open_handoff_for_user(self, user_id: int) -> Enquiry | None:
        return await self.call(EnquiryLog.open_handoff_for_user, user_id)

    async def await_choice(
        self,
        user_id: int | None,
        chat_id: int,
        message_id: int,
        display_name: str | None,
        username: str | None,
        text: str,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        await self.call(
            EnquiryLog.await_choice, user_id, chat_id, message_id, display_name, username, text, details
        )

    async def choice_made(self, chat_id: int, message_id: int) -> bool:
        return await self.call(EnquiryLog.choice_made, chat_id, message_id)

    async def file_unchosen(self, wait: timedelta, now: datetime | None = None) -> list[Enquiry]:
        return await self.call(EnquiryLog.file_unchosen, wait, now)

    async def count_answer(self, entry_id: str) -> int:
        return await self.call(EnquiryLog.count_answer, entry_id)

    async def answer_counts(self) -> list[dict[str, Any]]:
        return await self.call(EnquiryLog.answer_counts)

    async def user_data(self, user_id: int) -> dict[str, Any]:
        return await self.call(EnquiryLog.user_data, user_id)

    async def forget_user(self, user_id: int) -> int:
        return await self.call(EnquiryLog.forget_user, user_id)

    async def purge_done_older_than(self, days: float, now: datetime | None = None) -> int:
        return await self.call(EnquiryLog.purge_done_older_than, days, now)

    async def export_rows(self) -> list[dict[str, Any]]:
        return await self.call(EnquiryLog.export_rows)
