"""The enquiry log on real SQLite files: nothing recorded is ever lost."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from contextlib import closing
from dataclasses import FrozenInstanceError
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.enquiries import (
    MIGRATIONS,
    AsyncEnquiryLog,
    Enquiry,
    EnquiryLog,
    EnquiryNotFound,
    format_reference,
    parse_reference,
)
from bot.enquiries_cli import parse_args, run
from bot.persistence import encode_key

REPO = Path(__file__).resolve().parents[1]
START = datetime(2025, 5, 1, 9, 0, tzinfo=UTC)


class Clock:
    """A clock the tests move by hand."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "mesobot.sqlite3"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def log(db_path: Path, clock: Clock):
    with EnquiryLog(db_path, clock=clock) as log:
        yield log


def _booking(log: EnquiryLog, user_id: int = 42, text: str = "Book me on the foundation course"):
    return log.record(
        "booking",
        user_id,
        user_id,
        "Ann Smith",
        "ann",
        text,
        {"course": "foundation", "date": "12 June", "red_flags": []},
    )


def _raw(path: Path, sql: str, params: tuple = ()) -> list[tuple]:
    """Read with an independent plain sqlite3 connection (another process would see this)."""
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql, params).fetchall()


# --------------------------------------------------------------------------- basics


def test_reference_format_and_parse() -> None:
    assert format_reference(123) == "ENQ-000123"
    assert format_reference(1234567) == "ENQ-1234567"
    for text in ("123", "#123", "ENQ-000123", "enq-123", "enq123", " 123 "):
        assert parse_reference(text) == 123
    for bad in ("", "abc", "ENQ-", "0", "-5", "12a"):
        with pytest.raises(ValueError, match="not an enquiry reference"):
            parse_reference(bad)


def test_record_then_get(log: EnquiryLog, clock: Clock) -> None:
    enquiry = _booking(log)
    assert isinstance(enquiry, Enquiry)
    assert enquiry.id == 1
    assert enquiry.reference == "ENQ-000001"
    assert enquiry.kind == "booking"
    assert enquiry.status == "new" and enquiry.is_open
    assert enquiry.created_at == enquiry.updated_at == "2025-05-01T09:00:00+00:00"
    assert enquiry.details == {"course": "foundation", "date": "12 June", "red_flags": []}
    assert enquiry.staff_notes == ()
    assert enquiry.handled_by is None and enquiry.staff_message_id is None
    assert log.get(1) == enquiry
    assert log.find(2) is None
    with pytest.raises(FrozenInstanceError):
        enquiry.status = "done"  # type: ignore[misc]


def test_record_validates_kind_and_keeps_odd_details(log: EnquiryLog) -> None:
    with pytest.raises(ValueError, match="unknown enquiry kind 'question'"):
        log.record("question", 1, 1, "A", None, "hi", {})
    # A value JSON cannot hold must not stop the enquiry being stored.
    enquiry = log.record("urgent", 1, 1, "", None, "swollen lip", {"when": START, "flags": ("x",)})
    assert enquiry.details == {"when": "2025-05-01 09:00:00+00:00", "flags": ["x"]}
    assert enquiry.display_name == "" and enquiry.username is None


def test_parent_directories_are_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "c.sqlite3"
    with EnquiryLog(path) as log:
        _booking(log)
    assert path.exists()


def test_record_survives_reopen(db_path: Path, clock: Clock) -> None:
    with EnquiryLog(db_path, clock=clock) as log:
        first = _booking(log)
    with EnquiryLog(db_path, clock=clock) as log:
        assert log.get(first.id) == first
        assert _booking(log, user_id=7).id == 2


def test_record_is_committed_before_it_returns(log: EnquiryLog, db_path: Path) -> None:
    enquiry = _booking(log)
    assert not log.db.conn.in_transaction
    # The log is still open: a second, independent connection sees the row already.
    rows = _raw(db_path, "SELECT id, kind, text FROM enquiries")
    assert rows == [(enquiry.id, "booking", "Book me on the foundation course")]


def test_wal_and_durability_pragmas(log: EnquiryLog, db_path: Path) -> None:
    assert _raw(db_path, "PRAGMA journal_mode") == [("wal",)]
    assert log.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert log.db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert log.db.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000


def test_migrations_applied_once_and_idempotent(db_path: Path) -> None:
    names = [
        "001_enquiries",
        "002_answer_counts",
        "003_relays",
        "004_persistence",
        "005_inbox",
        "006_enquiry_update",
        "007_enquiry_message",
        "008_awaiting_choice",
    ]
    with EnquiryLog(db_path) as log:
        assert [m.name for m in MIGRATIONS.applied(log.db)] == names
        assert MIGRATIONS.pending(log.db) == []
        _booking(log)
    for _ in range(2):
        with EnquiryLog(db_path) as log:
            assert [m.name for m in MIGRATIONS.applied(log.db)] == names
            assert log.count() == 1
    assert _raw(db_path, "SELECT count(*) FROM _sqlite_migrations") == [(len(names),)]
    tables = {row[0] for row in _raw(db_path, "SELECT name FROM sqlite_master WHERE type='table'")}
    assert {
        "enquiries",
        "answer_counts",
        "relays",
        "conversations",
        "user_data",
        "chat_data",
        "bot_data",
        "inbox",
    } <= tables
    indexes = {row[0] for row in _raw(db_path, "SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"enquiries_status", "enquiries_user_id"} <= indexes


def test_reference_numbers_are_never_reused(log: EnquiryLog) -> None:
    _booking(log, user_id=1)
    _booking(log, user_id=2)
    assert log.forget_user(2) == 1
    assert _booking(log, user_id=3).id == 3


# --------------------------------------------------------------------------- staff workflow


def test_status_transitions(log: EnquiryLog, clock: Clock) -> None:
    enquiry = _booking(log)
    clock.advance(minutes=5)
    taken = log.take(enquiry.id, "alice")
    assert (taken.status, taken.handled_by) == ("in_progress", "alice")
    assert taken.handled_at == taken.updated_at == "2025-05-01T09:05:00+00:00"
    assert log.take(enquiry.id, 1001).handled_by == "1001"  # another staff member takes over
    released = log.set_status(enquiry.id, "new", "alice")
    assert (released.status, released.handled_by, released.handled_at) == ("new", None, None)
    done = log.set_status(enquiry.id, "done", "bob")
    assert (done.status, done.handled_by, done.is_open) == ("done", "bob", False)
    assert log.set_status(enquiry.id, "done", "carol") == done  # already done: unchanged
    with pytest.raises(ValueError, match="ENQ-000001 is done: it can become in_progress, not new"):
        log.set_status(enquiry.id, "new")
    with pytest.raises(ValueError, match="unknown status 'closed'"):
        log.set_status(enquiry.id, "closed")
    reopened = log.take(enquiry.id, "carol")
    assert (reopened.status, reopened.handled_by) == ("in_progress", "carol")


def test_unknown_id_is_a_lookup_error(log: EnquiryLog) -> None:
    for call in (
        lambda: log.get(99),
        lambda: log.set_status(99, "done"),
        lambda: log.take(99, "alice"),
        lambda: log.add_note(99, "alice", "hello"),
        lambda: log.set_staff_message(99, 5),
        lambda: log.add_relay(99, direction="to_user", staff_chat_id=1, staff_message_id=2),
    ):
        with pytest.raises(LookupError) as info:
            call()
        assert isinstance(info.value, EnquiryNotFound)
        assert str(info.value) == "no enquiry ENQ-000099"


def test_paging_and_counts(log: EnquiryLog) -> None:
    for user_id in range(1, 8):
        _booking(log, user_id=user_id)
    log.set_status(2, "done", "alice")
    log.take(5, "bob")
    assert [e.id for e in log.list(limit=3)] == [7, 6, 5]
    assert [e.id for e in log.list(limit=3, offset=3)] == [4, 3, 2]
    assert [e.id for e in log.list(limit=3, offset=6)] == [1]
    assert log.list(limit=3, offset=9) == []
    assert [e.id for e in log.list(limit=None)] == [7, 6, 5, 4, 3, 2, 1]
    assert [e.id for e in log.list("open")] == [7, 6, 5, 4, 3, 1]
    assert [e.id for e in log.list("done")] == [2]
    assert [e.id for e in log.list("in_progress")] == [5]
    assert (log.count(), log.count_open(), log.count("new")) == (7, 6, 5)
    with pytest.raises(ValueError, match="unknown status"):
        log.list("closed")


def test_notes_append_in_order_and_survive_reopen(db_path: Path, log: EnquiryLog, clock: Clock) -> None:
    enquiry = _booking(log)
    log.add_note(enquiry.id, "alice", "  called, no answer ")
    clock.advance(hours=1)
    noted = log.add_note(enquiry.id, 1001, "booked for 12 June")
    assert noted.staff_notes == (
        {"at": "2025-05-01T09:00:00+00:00", "by": "alice", "text": "called, no answer"},
        {"at": "2025-05-01T10:00:00+00:00", "by": "1001", "text": "booked for 12 June"},
    )
    assert noted.updated_at == "2025-05-01T10:00:00+00:00"
    with pytest.raises(ValueError, match="a note needs some text"):
        log.add_note(enquiry.id, "alice", "   ")
    with EnquiryLog(db_path) as again:
        assert again.get(enquiry.id).staff_notes == noted.staff_notes


# --------------------------------------------------------------------------- relays


def test_relays_both_ways_survive_reopen(db_path: Path, log: EnquiryLog) -> None:
    staff_chat = -1001234
    enquiry = _booking(log, user_id=42)
    other = _booking(log, user_id=43)
    log.set_staff_message(enquiry.id, 500, staff_chat)
    log.set_staff_message(other.id, 501)  # stored without the chat id
    log.take(enquiry.id, "alice")
    relay_id = log.add_relay(
        enquiry.id,
        direction="to_staff",
        staff_chat_id=staff_chat,
        staff_message_id=510,
        user_chat_id=42,
        user_message_id=77,
    )
    assert relay_id > 0
    with pytest.raises(ValueError, match="unknown relay direction"):
        log.add_relay(enquiry.id, direction="sideways", staff_chat_id=1, staff_message_id=1)

    with EnquiryLog(db_path) as again:  # a restart
        # staff message replied to -> enquiry
        assert again.enquiry_for_staff_message(staff_chat, 500).id == enquiry.id
        assert again.enquiry_for_staff_message(staff_chat, 510).id == enquiry.id
        assert again.enquiry_for_staff_message(staff_chat, 501).id == other.id
        assert again.enquiry_for_staff_message(staff_chat, 999) is None
        assert again.enquiry_for_staff_message(-1009999, 500) is None  # other chat, same id
        # user's open hand-off -> staff thread
        handoff = again.open_handoff_for_user(42)
        assert handoff is not None and handoff.id == enquiry.id
        assert again.staff_thread_for(enquiry.id) == (staff_chat, 500)
        assert again.staff_thread_for(other.id) == (None, 501)
        assert [r["direction"] for r in again.relays_for(enquiry.id)] == ["staff_post", "to_staff"]
        assert again.relays_for(enquiry.id)[1]["user_message_id"] == 77


def test_open_handoff_only_when_staff_took_it(log: EnquiryLog) -> None:
    first = _booking(log, user_id=42)
    assert log.open_handoff_for_user(42) is None  # nobody took it yet
    log.take(first.id, "alice")
    second = _booking(log, user_id=42)
    log.take(second.id, "bob")
    assert log.open_handoff_for_user(42).id == second.id  # the newest one
    log.set_status(second.id, "done", "bob")
    assert log.open_handoff_for_user(42).id == first.id
    log.set_status(first.id, "done", "alice")
    assert log.open_handoff_for_user(42) is None
    assert log.open_handoff_for_user(7) is None


def test_staff_thread_falls_back_to_newest_relay(log: EnquiryLog) -> None:
    enquiry = _booking(log)
    assert log.staff_thread_for(enquiry.id) is None
    log.add_relay(enquiry.id, direction="to_staff", staff_chat_id=-5, staff_message_id=10)
    log.add_relay(enquiry.id, direction="to_user", staff_chat_id=-5, staff_message_id=11)
    assert log.staff_thread_for(enquiry.id) == (-5, 11)


# --------------------------------------------------------------------------- personal data


def _conversation_rows(log: EnquiryLog, user_id: int) -> None:
    """Persistence rows for a user, as bot/persistence.py writes them."""
    with log.write() as db:
        db.execute(
            "INSERT INTO conversations (name, key, state, chat_id, user_id, updated_at)"
            " VALUES ('booking', ?, '\"ASK_DATE\"', ?, ?, ?)",
            [encode_key((user_id, user_id)), user_id, user_id, log.now()],
        )
        db.execute(
            "INSERT INTO user_data (user_id, data, updated_at) VALUES (?, ?, ?)",
            [user_id, json.dumps({"booking": {"course": "foundation"}}), log.now()],
        )
        db.execute(
            "INSERT INTO chat_data (chat_id, data, updated_at) VALUES (?, '{}', ?)",
            [user_id, log.now()],
        )


def test_user_data_gathers_everything_about_one_user(log: EnquiryLog) -> None:
    mine = _booking(log, user_id=42)
    _booking(log, user_id=43)
    log.set_staff_message(mine.id, 500, -100)
    _conversation_rows(log, 42)
    _conversation_rows(log, 43)
    data = log.user_data(42)
    json.dumps(data)  # plain, JSON-ready
    assert [e["reference"] for e in data["enquiries"]] == ["ENQ-000001"]
    assert [r["staff_message_id"] for r in data["relays"]] == [500]
    assert data["conversations"] == [
        {"name": "booking", "key": [42, 42], "state": "ASK_DATE", "updated_at": log.now()}
    ]
    assert data["user_data"] == {"booking": {"course": "foundation"}}
    assert data["chat_data"] == {}
    assert data["awaiting_choice"] == []
    log.await_choice(42, 42, 7, "Ann", "ann", "how long?", {"suggested": ["duration"]})
    [awaiting] = log.user_data(42)["awaiting_choice"]
    assert (awaiting["text"], awaiting["details"]) == ("how long?", {"suggested": ["duration"]})
    nobody = log.user_data(9)
    assert nobody["enquiries"] == nobody["relays"] == nobody["conversations"] == []
    assert nobody["user_data"] is None


def test_forget_user_removes_only_that_users_rows(log: EnquiryLog, db_path: Path) -> None:
    for user_id in (42, 43):
        enquiry = _booking(log, user_id=user_id)
        log.set_staff_message(enquiry.id, 500 + user_id, -100)
        log.add_relay(
            enquiry.id,
            direction="to_staff",
            staff_chat_id=-100,
            staff_message_id=600 + user_id,
            user_chat_id=user_id,
            user_message_id=1,
        )
        _conversation_rows(log, user_id)
        log.await_choice(user_id, user_id, 7, "Ann", None, "how long?", {"suggested": ["duration"]})
    _booking(log, user_id=42)
    log.count_answer("price")
    # 2 enquiries + 2 relays + 1 question awaiting a choice + 1 conversation + user_data + chat_data
    assert log.forget_user(42) == 8
    assert log.user_data(42)["enquiries"] == []
    assert log.forget_user(42) == 0
    others = log.user_data(43)
    assert len(others["enquiries"]) == 1 and len(others["relays"]) == 2
    assert others["conversations"] and others["user_data"] is not None
    assert [row["text"] for row in others["awaiting_choice"]] == ["how long?"]
    assert log.answer_counts()[0]["count"] == 1  # not personal data
    assert _raw(db_path, "SELECT count(*) FROM relays") == [(2,)]


# --------------------------------------------------------------------------- "did you mean"

WAIT = timedelta(minutes=30)


def _awaiting(log: EnquiryLog, message_id: int = 7, text: str = "how long?") -> None:
    log.await_choice(42, 42, message_id, "Ann Smith", "ann", text, {"suggested": ["duration", "length"]})


def test_a_question_left_unchosen_is_filed_once_it_has_waited(log: EnquiryLog, clock: Clock) -> None:
    _awaiting(log)
    clock.advance(minutes=29)
    assert log.file_unchosen(WAIT) == []
    clock.advance(minutes=2)
    [filed] = log.file_unchosen(WAIT)
    assert (filed.kind, filed.text, filed.user_id, filed.username, filed.status) == (
        "fallback",
        "how long?",
        42,
        "ann",
        "new",
    )
    assert filed.details == {"suggested": ["duration", "length"], "not_chosen": "no suggestion was picked"}
    assert log.file_unchosen(WAIT) == []
    assert log.count() == 1


def test_a_choice_made_files_nothing(log: EnquiryLog, clock: Clock) -> None:
    _awaiting(log)
    assert log.choice_made(42, 7)
    assert not log.choice_made(42, 7)
    clock.advance(hours=1)
    assert log.file_unchosen(WAIT) == []
    assert log.count() == 0


def test_an_edited_question_waits_afresh_with_its_new_text(log: EnquiryLog, clock: Clock) -> None:
    _awaiting(log)
    clock.advance(minutes=20)
    _awaiting(log, text="how long does it take")
    clock.advance(minutes=20)
    assert log.file_unchosen(WAIT) == []
    clock.advance(minutes=11)
    assert [e.text for e in log.file_unchosen(WAIT)] == ["how long does it take"]


def test_a_question_awaiting_a_choice_survives_a_restart(db_path: Path, clock: Clock) -> None:
    with EnquiryLog(db_path, clock=clock) as log:
        _awaiting(log)
    clock.advance(hours=2)
    with EnquiryLog(db_path, clock=clock) as log:
        assert [e.text for e in log.file_unchosen(WAIT)] == ["how long?"]


def test_a_question_passed_on_already_is_not_filed_twice(log: EnquiryLog, clock: Clock) -> None:
    """ "None of these" files the question from the same message; if the bot stopped before the
    question stopped waiting, the sweep gets that enquiry back rather than a second one."""
    _awaiting(log)
    passed_on = log.record("fallback", 42, 42, "Ann Smith", "ann", "how long?", {}, message_id=7)
    clock.advance(hours=1)
    assert [e.id for e in log.file_unchosen(WAIT)] == [passed_on.id]
    assert log.count() == 1


def test_purge_keeps_open_and_recent(log: EnquiryLog, clock: Clock) -> None:
    old_done = _booking(log, user_id=1)
    old_open = _booking(log, user_id=2)
    old_taken = _booking(log, user_id=3)
    log.set_status(old_done.id, "done", "alice")
    log.add_relay(old_done.id, direction="to_user", staff_chat_id=-1, staff_message_id=1)
    log.take(old_taken.id, "alice")
    clock.advance(days=400)
    recent_done = _booking(log, user_id=4)
    log.set_status(recent_done.id, "done", "alice")
    clock.advance(days=1)
    assert log.purge_done_older_than(365) == 1
    assert log.find(old_done.id) is None
    assert log.relays_for(old_done.id) == []
    assert {e.id for e in log.list()} == {old_open.id, old_taken.id, recent_done.id}
    assert log.purge_done_older_than(365) == 0
    later = clock.now + timedelta(days=366)
    assert log.purge_done_older_than(365, now=later) == 1
    assert {e.id for e in log.list()} == {old_open.id, old_taken.id}
    with pytest.raises(ValueError):
        log.purge_done_older_than(-1)


def test_answer_counts(log: EnquiryLog, clock: Clock) -> None:
    assert log.answer_counts() == []
    assert log.count_answer("price") == 1
    clock.advance(minutes=1)
    assert log.count_answer("price") == 2
    assert log.count_answer("venue") == 1
    assert log.answer_counts() == [
        {"entry_id": "price", "count": 2, "last_answered_at": "2025-05-01T09:01:00+00:00"},
        {"entry_id": "venue", "count": 1, "last_answered_at": "2025-05-01T09:01:00+00:00"},
    ]


def test_export_rows(log: EnquiryLog) -> None:
    _booking(log, user_id=1)
    _booking(log, user_id=2)
    rows = log.export_rows()
    assert [row["reference"] for row in rows] == ["ENQ-000001", "ENQ-000002"]
    assert rows[0]["details"]["course"] == "foundation"
    json.dumps(rows)


# --------------------------------------------------------------------------- crash safety

KILL_CHILD = """
import os, signal, sys
from bot.enquiries import EnquiryLog
log = EnquiryLog(sys.argv[1])
enquiry = log.record("urgent", 42, 42, "Ann", "ann", "swelling after treatment", {"flag": "x"})
print("OK", enquiry.id, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
print("not reached", flush=True)
"""


def run_and_kill(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=60,
        check=False,
    )


def test_record_survives_kill_9(db_path: Path) -> None:
    child = run_and_kill(KILL_CHILD, str(db_path))
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert child.stdout.split() == ["OK", "1"]
    with EnquiryLog(db_path) as log:
        enquiry = log.get(1)
    assert (enquiry.kind, enquiry.text, enquiry.details) == (
        "urgent",
        "swelling after treatment",
        {"flag": "x"},
    )


# --------------------------------------------------------------------------- async


async def test_async_log_runs_on_one_worker_thread(db_path: Path) -> None:
    log = AsyncEnquiryLog(db_path)
    try:
        results = await asyncio.gather(
            *(log.record("fallback", n, n, f"user {n}", None, f"question {n}") for n in range(20))
        )
        assert sorted(e.id for e in results) == list(range(1, 21))
        threads = await asyncio.gather(
            *(log.call(lambda _log: threading.current_thread().name) for _ in range(5))
        )
        assert len(set(threads)) == 1 and threads[0].startswith("mesobot-sqlite")
        assert threads[0] != threading.current_thread().name
        assert await log.count_open() == 20
        target = next(e.id for e in results if e.user_id == 3)
        taken = await log.take(target, "alice")
        assert taken.status == "in_progress"
        await log.add_note(target, "alice", "called")
        await log.set_staff_message(target, 50, -100)
        assert (await log.enquiry_for_staff_message(-100, 50)).id == target
        assert (await log.open_handoff_for_user(3)).id == target
        assert await log.count_answer("price") == 1
        with pytest.raises(EnquiryNotFound):
            await log.get(99)
        assert len(await log.list("open", limit=5)) == 5
        assert (await log.user_data(3))["enquiries"][0]["staff_notes"][0]["text"] == "called"
        assert await log.forget_user(3) == 2  # the enquiry and its staff-post relay
    finally:
        await log.close()
    await log.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        await log.count_open()
    with EnquiryLog(db_path) as sync:
        assert sync.count() == 19


async def test_async_record_is_not_lost_when_the_caller_is_cancelled(db_path: Path) -> None:
    async with AsyncEnquiryLog(db_path) as log:
        task = asyncio.create_task(log.record("booking", 1, 1, "A", None, "book me"))
        await asyncio.sleep(0)  # submitted to the worker
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The write still completes on the worker thread.
        assert (await log.get(1)).text == "book me"


# --------------------------------------------------------------------------- CLI


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = run(parse_args(["enquiries", *argv]))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def filled(db_path: Path, clock: Clock) -> Path:
    with EnquiryLog(db_path, clock=clock) as log:
        _booking(log, user_id=42, text="Book me on the foundation course,\nplease")
        log.record("urgent", 7, 7, "Bob", None, "swelling after treatment", {"red_flags": ["x"]})
        log.record("fallback", 8, 8, "Cat", "cat", "do you teach in Leeds?", {})
        log.add_note(1, "alice", "called back")
        log.set_staff_message(1, 55, -100)
        log.set_status(3, "done", "bob")
    return db_path


def test_cli_list_open_by_default_and_all(capsys, filled: Path) -> None:
    code, out, err = _cli(capsys, "--db", str(filled), "list")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["REF", "CREATED", "(UTC)", "KIND"]
    assert [line.split()[0] for line in lines[1:3]] == ["ENQ-000002", "ENQ-000001"]
    assert "ENQ-000003" not in out
    assert "Ann Smith (@ann)" in out and "foundation course, please" in out
    assert lines[-1] == "1-2 of 2 open enquiries"

    code, out, _ = _cli(capsys, "list", "--all", "--db", str(filled))
    assert code == 0 and "ENQ-000003" in out and out.splitlines()[-1] == "1-3 of 3 enquiries"

    code, out, _ = _cli(capsys, "--db", str(filled), "list", "--all", "--limit", "2", "--page", "2")
    assert code == 0 and out.splitlines()[1].startswith("ENQ-000001")
    assert out.splitlines()[-1] == "3-3 of 3 enquiries"

    code, out, _ = _cli(capsys, "--db", str(filled))  # no command: the open ones
    assert code == 0 and out.splitlines()[-1] == "1-2 of 2 open enquiries"


def test_cli_show_and_done(capsys, filled: Path) -> None:
    code, out, err = _cli(capsys, "--db", str(filled), "show", "ENQ-000001")
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == "ENQ-000001  booking  new"
    assert "course: foundation" in out
    assert "alice: called back" in out
    assert "staff post  chat -100, message 55" in out

    code, out, err = _cli(capsys, "--db", str(filled), "done", "1", "--by", "carol")
    assert (code, out, err) == (0, "ENQ-000001 marked done by carol\n", "")
    code, out, _ = _cli(capsys, "--db", str(filled), "done", "1")
    assert (code, out) == (0, "ENQ-000001 was already done (carol)\n")
    code, out, _ = _cli(capsys, "--db", str(filled), "list")
    assert "ENQ-000001" not in out


def test_cli_unknown_id_is_one_line_and_exit_1(capsys, filled: Path) -> None:
    for command in ("show", "done"):
        code, out, err = _cli(capsys, "--db", str(filled), command, "42")
        assert (code, out, err) == (1, "", "mesobot: no enquiry ENQ-000042\n")


def test_cli_missing_database(capsys, tmp_path: Path) -> None:
    missing = tmp_path / "nope.sqlite3"
    code, out, _ = _cli(capsys, "--db", str(missing), "list")
    assert code == 0 and out.startswith("no enquiries yet")
    code, out, err = _cli(capsys, "--db", str(missing), "show", "1")
    assert code == 1 and out == "" and err.count("\n") == 1 and "no enquiry ENQ-000001" in err
    code, out, _ = _cli(capsys, "--db", str(missing), "export", "--format", "json")
    assert code == 0 and json.loads(out) == []
    assert not missing.exists()  # a read never creates the database


def test_cli_empty_database(capsys, db_path: Path) -> None:
    EnquiryLog(db_path).close()
    code, out, _ = _cli(capsys, "--db", str(db_path), "list")
    assert (code, out) == (0, "no open enquiries\n")
    code, out, _ = _cli(capsys, "--db", str(db_path), "list", "--all")
    assert (code, out) == (0, "no enquiries yet\n")


def test_cli_export_csv_parses_back(capsys, filled: Path) -> None:
    code, out, _ = _cli(capsys, "--db", str(filled), "export", "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [row["reference"] for row in rows] == ["ENQ-000001", "ENQ-000002", "ENQ-000003"]
    assert rows[0]["text"] == "Book me on the foundation course,\nplease"
    assert json.loads(rows[0]["details"])["course"] == "foundation"
    assert json.loads(rows[0]["staff_notes"])[0]["by"] == "alice"
    assert rows[1]["username"] == "" and rows[2]["status"] == "done"


def test_cli_export_json_loads(capsys, filled: Path, tmp_path: Path) -> None:
    code, out, _ = _cli(capsys, "--db", str(filled), "export", "--format", "json")
    assert code == 0
    rows = json.loads(out)
    assert [row["id"] for row in rows] == [1, 2, 3]
    assert rows[1]["details"] == {"red_flags": ["x"]}
    target = tmp_path / "out.csv"
    code, out, err = _cli(capsys, "--db", str(filled), "export", "-o", str(target))
    assert code == 0 and out == "" and "3 enquiries written" in err
    with target.open(newline="", encoding="utf-8") as stream:
        assert len(list(csv.DictReader(stream))) == 3


def test_cli_default_db_comes_from_the_environment(
    capsys, filled: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESOBOT_DB", str(filled))
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    code, out, _ = _cli(capsys, "list")
    assert code == 0 and "ENQ-000002" in out


def test_cli_bad_reference_is_an_argparse_error(capsys, filled: Path) -> None:
    with pytest.raises(SystemExit) as info:
        parse_args(["enquiries", "--db", str(filled), "show", "abc"])
    assert info.value.code == 2
    assert "not an enquiry reference" in capsys.readouterr().err
