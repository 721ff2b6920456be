"""Conversation state in SQLite: read back after a restart, and after kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from telegram import Update
from telegram.ext import (
    ApplicationBuilder,
    BasePersistence,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    MessageHandler,
    PersistenceInput,
    filters,
)
from telegram.request import BaseRequest, RequestData

from bot.enquiries import AsyncEnquiryLog, EnquiryLog
from bot.persistence import SQLitePersistence, decode_key, encode_key, key_ids

REPO = Path(__file__).resolve().parents[1]


def run_and_kill(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=60,
        check=False,
    )


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "mesobot.sqlite3"


@pytest.fixture
async def persistence(db_path: Path):
    persistence = SQLitePersistence(db_path)
    yield persistence
    await persistence.close()


async def reopened(db_path: Path) -> dict[str, Any]:
    """What a freshly started bot would load."""
    fresh = SQLitePersistence(db_path)
    try:
        return {
            "booking": await fresh.get_conversations("booking"),
            "user_data": await fresh.get_user_data(),
            "chat_data": await fresh.get_chat_data(),
            "bot_data": await fresh.get_bot_data(),
        }
    finally:
        await fresh.close()


def test_keys_round_trip() -> None:
    for key in [(42, 42), (-100123, 7), (5,), (1, 2, 3), ("a", 1)]:
        assert decode_key(encode_key(key)) == key
    assert encode_key((-100, 7)) == "[-100,7]"
    assert key_ids((-100, 7)) == (-100, 7)
    assert key_ids((7,)) == (7, 7)  # a private chat: the chat id is the user id
    assert key_ids((-100,)) == (-100, None)
    with pytest.raises(TypeError):
        encode_key((1.5, 2))  # type: ignore[arg-type]


async def test_is_a_ptb_persistence_without_callback_data(persistence: SQLitePersistence) -> None:
    assert isinstance(persistence, BasePersistence)
    assert persistence.store_data.callback_data is False
    assert persistence.store_data.user_data is True
    assert await persistence.get_callback_data() is None
    limited = SQLitePersistence(
        persistence.log.path, store_data=PersistenceInput(bot_data=False, chat_data=False)
    )
    try:
        assert limited.store_data == PersistenceInput(
            bot_data=False, chat_data=False, user_data=True, callback_data=False
        )
    finally:
        await limited.close()


async def test_save_now_is_read_back_by_a_new_persistence(
    persistence: SQLitePersistence, db_path: Path
) -> None:
    await persistence.save_now("booking", (42, 42), "ASK_DATE", 42, {"booking": {"course": "foundation"}})
    await persistence.save_now("booking", (-100, 7), 2, 7, {"n": 1}, chat_id=-100, chat_data={})
    loaded = await reopened(db_path)
    assert loaded["booking"] == {(42, 42): "ASK_DATE", (-100, 7): 2}
    assert loaded["user_data"] == {42: {"booking": {"course": "foundation"}}, 7: {"n": 1}}
    assert loaded["chat_data"] == {-100: {}}
    # Ending the conversation removes its state; the user data stays.
    await persistence.save_now("booking", (42, 42), ConversationHandler.END, 42, {})
    await persistence.save_now("booking", (-100, 7), None)
    loaded = await reopened(db_path)
    assert loaded["booking"] == {}
    assert loaded["user_data"][42] == {}


async def test_update_methods_commit_immediately(persistence: SQLitePersistence, db_path: Path) -> None:
    await persistence.update_conversation("booking", (42, 42), 1)
    await persistence.update_conversation("other", (42, 42), "X")
    await persistence.update_user_data(42, {"lang": "en"})
    await persistence.update_chat_data(42, {"seen": True})
    await persistence.update_bot_data({"version": 3})
    await persistence.update_callback_data(("ignored", {}))
    await persistence.refresh_user_data(42, {})
    await persistence.refresh_chat_data(42, {})
    await persistence.refresh_bot_data({})
    loaded = await reopened(db_path)  # the first persistence is still open
    assert loaded == {
        "booking": {(42, 42): 1},
        "user_data": {42: {"lang": "en"}},
        "chat_data": {42: {"seen": True}},
        "bot_data": {"version": 3},
    }
    await persistence.update_conversation("booking", (42, 42), 2)
    await persistence.update_conversation("other", (42, 42), None)
    await persistence.drop_user_data(42)
    await persistence.drop_chat_data(42)
    loaded = await reopened(db_path)
    assert loaded["booking"] == {(42, 42): 2}
    assert loaded["user_data"] == {} and loaded["chat_data"] == {}
    with EnquiryLog(db_path) as log:
        assert log.db.execute("SELECT count(*) FROM conversations").fetchone()[0] == 1


async def test_drop_stale_conversations(persistence: SQLitePersistence, db_path: Path) -> None:
    await persistence.save_now("booking", (42, 42), 1, 42, {"draft": True})
    await persistence.save_now("feedback", (43, 43), 1)
    now = datetime.now(UTC)
    assert await persistence.drop_stale_conversations(60, now=now) == 0
    assert (
        await persistence.drop_stale_conversations(60, now=now + timedelta(minutes=61), name="feedback") == 1
    )
    loaded = await reopened(db_path)
    assert loaded["booking"] == {(42, 42): 1}
    assert await persistence.drop_stale_conversations(60, now=now + timedelta(hours=2)) == 1
    loaded = await reopened(db_path)
    assert loaded["booking"] == {}
    assert loaded["user_data"] == {42: {"draft": True}}  # drafts go with /forget, not here


async def test_expire_after_minutes_on_load(db_path: Path) -> None:
    async with AsyncEnquiryLog(db_path) as log:
        persistence = SQLitePersistence(log)
        await persistence.save_now("booking", (42, 42), 1)
        await persistence.save_now("booking", (43, 43), 1)
        old = (datetime.now(UTC) - timedelta(hours=3)).isoformat(timespec="seconds")
        await log.call(
            lambda sync: sync.db.execute(
                "UPDATE conversations SET updated_at = ? WHERE key = ?", [old, "[43,43]"]
            )
        )
        expiring = SQLitePersistence(log, expire_after_minutes=60)
        assert await expiring.get_conversations("booking") == {(42, 42): 1}
        assert await persistence.get_conversations("booking") == {(42, 42): 1}
        await persistence.close()  # a shared log is left open for its owner
        assert not log.closed


async def test_shared_log_forget_user_removes_drafts(db_path: Path) -> None:
    async with AsyncEnquiryLog(db_path) as log:
        persistence = SQLitePersistence(log)
        await persistence.save_now(
            "booking", (42, 42), "ASK_DATE", 42, {"course": "x"}, chat_id=42, chat_data={"a": 1}
        )
        await persistence.save_now("booking", (43, 43), "ASK_DATE", 43, {"course": "y"})
        await log.record("booking", 42, 42, "Ann", None, "book", {})
        mine = await log.user_data(42)
        assert mine["conversations"][0]["state"] == "ASK_DATE"
        assert mine["user_data"] == {"course": "x"} and mine["chat_data"] == {"a": 1}
        assert await log.forget_user(42) == 4
        assert await persistence.get_conversations("booking") == {(43, 43): "ASK_DATE"}
        assert await persistence.get_user_data() == {43: {"course": "y"}}


async def test_flush_closes_an_owned_connection_and_reopens_on_use(db_path: Path) -> None:
    persistence = SQLitePersistence(db_path)
    try:
        await persistence.update_user_data(1, {"a": 1})
        await persistence.flush()
        assert persistence.log.closed
        assert await persistence.get_user_data() == {1: {"a": 1}}
        assert not persistence.log.closed
    finally:
        await persistence.close()


KILL_CHILD = """
import asyncio, os, signal, sys
from bot.persistence import SQLitePersistence

async def main():
    persistence = SQLitePersistence(sys.argv[1])
    await persistence.save_now(
        "booking", (42, 42), "ASK_DATE", 42, {"booking": {"course": "foundation"}}
    )
    print("OK", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(main())
"""


async def test_save_now_survives_kill_9(db_path: Path) -> None:
    child = run_and_kill(KILL_CHILD, str(db_path))
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert child.stdout == "OK\n"
    loaded = await reopened(db_path)
    assert loaded["booking"] == {(42, 42): "ASK_DATE"}
    assert loaded["user_data"] == {42: {"booking": {"course": "foundation"}}}


# --------------------------------------------------------------------------- with PTB


class FakeTelegram(BaseRequest):
    """Answers getMe and acknowledges everything else: no network."""

    @property
    def read_timeout(self) -> float | None:
        return None

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = None,
        write_timeout: Any = None,
        connect_timeout: Any = None,
        pool_timeout: Any = None,
    ) -> tuple[int, bytes]:
        result: Any = True
        if url.endswith("/getMe"):
            result = {"id": 1, "is_bot": True, "first_name": "Meso", "username": "mesobot"}
        return 200, json.dumps({"ok": True, "result": result}).encode()


ASK_COURSE, ASK_DATE = "ASK_COURSE", "ASK_DATE"


def booking_app(db_path: Path, seen: list[tuple[str, dict]]):
    persistence = SQLitePersistence(db_path)
    request = FakeTelegram()

    async def save(update: Update, context: ContextTypes.DEFAULT_TYPE, state: str) -> str:
        chat, user = update.effective_chat.id, update.effective_user.id
        await persistence.save_now("booking", (chat, user), state, user, dict(context.user_data))
        return state

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> str:
        seen.append(("start", dict(context.user_data)))
        return await save(update, context, ASK_COURSE)

    async def course(update: Update, context: ContextTypes.DEFAULT_TYPE) -> str:
        context.user_data["course"] = update.effective_message.text
        seen.append(("course", dict(context.user_data)))
        return await save(update, context, ASK_DATE)

    async def date(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        context.user_data["date"] = update.effective_message.text
        seen.append(("date", dict(context.user_data)))
        await save(update, context, ConversationHandler.END)
        return ConversationHandler.END

    text = filters.TEXT & ~filters.COMMAND
    application = (
        ApplicationBuilder()
        .token("123456789:" + "A" * 35)
        .request(request)
        .get_updates_request(request)
        .persistence(persistence)
        .build()
    )
    application.add_handler(
        ConversationHandler(
            entry_points=[CommandHandler("book", start)],
            states={
                ASK_COURSE: [MessageHandler(text, course)],
                ASK_DATE: [MessageHandler(text, date)],
            },
            fallbacks=[],
            name="booking",
            persistent=True,
        )
    )
    return application, persistence


def message(application, update_id: int, text: str) -> Update:
    data: dict[str, Any] = {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 1_700_000_000,
            "chat": {"id": 42, "type": "private", "first_name": "Ann"},
            "from": {"id": 42, "is_bot": False, "first_name": "Ann"},
            "text": text,
        },
    }
    if text.startswith("/"):
        data["message"]["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    return Update.de_json(data, application.bot)


async def test_conversation_resumes_after_a_crash(db_path: Path) -> None:
    seen: list[tuple[str, dict]] = []
    first, first_persistence = booking_app(db_path, seen)
    await first.initialize()
    await first.process_update(message(first, 1, "/book"))
    await first.process_update(message(first, 2, "Foundation"))
    # Crash: no shutdown, no update_persistence; only what save_now committed is on disk.
    await first_persistence.close()

    second, second_persistence = booking_app(db_path, seen)
    await second.initialize()
    try:
        await second.process_update(message(second, 3, "12 June"))
    finally:
        await second.shutdown()
        await second_persistence.close()
    assert seen == [
        ("start", {}),
        ("course", {"course": "Foundation"}),
        ("date", {"course": "Foundation", "date": "12 June"}),
    ]
    loaded = await reopened(db_path)
    assert loaded["booking"] == {}  # finished, and shutdown wrote the final state
    assert loaded["user_data"] == {42: {"course": "Foundation", "date": "12 June"}}
