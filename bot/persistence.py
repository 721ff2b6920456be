"""Conversation state that survives a restart and kill -9: PTB persistence in SQLite.

PTB only hands data to a persistence every `update_interval` seconds and at shutdown, so a
kill -9 would lose a half-filled booking. Here every update_* call commits at once, and a
conversation callback can call `save_now()` to commit its next state and the collected
data BEFORE replying. The tables live in the enquiry database (migration 004_persistence in
bot/enquiries.py) and every query runs on one AsyncEnquiryLog worker thread: the bot's own
log when it is passed in (one connection, one thread), or a private one opened from a path.

Conversation keys are PTB tuples, stored as compact JSON arrays ("[chat_id,user_id]"),
which keeps ints ints and strs strs. With ConversationHandler's default per_chat+per_user
keys the user id is the second element; a one-element key of a positive id (a private
chat) is taken as that user's. That user id is kept in its own column so /forget can
delete a user's drafts. Data is stored as JSON: dict keys come back as strings and tuples
as lists, so keep user_data/chat_data/bot_data to JSON types.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from telegram.ext import BasePersistence, ConversationHandler, PersistenceInput

from bot.enquiries import AsyncEnquiryLog, EnquiryLog, iso
from bot.inbox import mark_handled

T = TypeVar("T")
Data = dict[Any, Any]
ConversationKey = tuple[int | str, ...]
ConversationDict = dict[ConversationKey, object]
CDCData = Any  # callback data is never stored here


def encode_key(key: ConversationKey) -> str:
    """A conversation key as a stable JSON array; the inverse of decode_key."""
    for part in key:
        if not isinstance(part, int | str) or isinstance(part, bool):
            raise TypeError(f"conversation key parts must be int or str, got {key!r}")
    return json.dumps(list(key), separators=(",", ":"), ensure_ascii=False)


def decode_key(text: str) -> ConversationKey:
    return tuple(json.loads(text))


def key_ids(key: ConversationKey) -> tuple[int | None, int | None]:
    """(chat_id, user_id) of a default per_chat+per_user key; see the module docstring."""
    ints = [part if isinstance(part, int) else None for part in key]
    if len(ints) >= 2:
        return ints[0], ints[1]
    if len(ints) == 1 and ints[0] is not None:
        return ints[0], ints[0] if ints[0] > 0 else None
    return None, None


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _conversation_row(
    name: str, key: ConversationKey, state: object, user_id: int | None
) -> tuple[str, str, str | None, int | None, int | None]:
    """(name, key, state JSON or None to delete, chat_id, user_id), built in the caller's
    thread: the worker then never reads a dict the event loop may be changing."""
    chat_id, key_user = key_ids(key)
    ended = state is None or state == ConversationHandler.END
    return (
        name,
        encode_key(key),
        None if ended else _dump(state),
        chat_id,
        user_id if user_id is not None else key_user,
    )


# The SQL, as plain functions of the sync log: each runs whole on the worker thread.


def _write_conversation(log: EnquiryLog, row: tuple[str, str, str | None, int | None, int | None]) -> None:
    name, key, state, chat_id, user_id = row
    if state is None:
        log.db.execute("DELETE FROM conversations WHERE name = ? AND key = ?", [name, key])
        return
    log.db.execute(
        "INSERT INTO conversations (name, key, state, chat_id, user_id, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name, key) DO UPDATE SET"
        " state = excluded.state, chat_id = excluded.chat_id, user_id = excluded.user_id,"
        " updated_at = excluded.updated_at",
        [name, key, state, chat_id, user_id, log.now()],
    )


def _write_data(log: EnquiryLog, table: str, column: str, row_id: int, data: str) -> None:
    log.db.execute(
        f"INSERT INTO {table} ({column}, data, updated_at) VALUES (?, ?, ?)"
        f" ON CONFLICT ({column}) DO UPDATE SET data = excluded.data,"
        " updated_at = excluded.updated_at",
        [row_id, data, log.now()],
    )


def _save(
    log: EnquiryLog,
    conversation: tuple[str, str, str | None, int | None, int | None],
    user_id: int | None,
    user_data: str | None,
    chat_id: int | None,
    chat_data: str | None,
    update_id: int | None,
) -> None:
    with log.write():
        _write_conversation(log, conversation)
        if user_id is not None and user_data is not None:
            _write_data(log, "user_data", "user_id", user_id, user_data)
        if chat_id is not None and chat_data is not None:
            _write_data(log, "chat_data", "chat_id", chat_id, chat_data)
        if update_id is not None:
            mark_handled(log, [update_id])


def _update_conversation(
    log: EnquiryLog, conversation: tuple[str, str, str | None, int | None, int | None]
) -> None:
    with log.write():
        _write_conversation(log, conversation)


def _update_data(log: EnquiryLog, table: str, column: str, row_id: int, data: str) -> None:
    with log.write():
        _write_data(log, table, column, row_id, data)


def _delete_data(log: EnquiryLog, table: str, column: str, row_id: int) -> None:
    with log.write() as db:
        db.execute(f"DELETE FROM {table} WHERE {column} = ?", [row_id])


def _read_data(log: EnquiryLog, table: str, column: str) -> dict[int, Data]:
    return {
        row[column]: json.loads(row["data"]) for row in log.db.query(f"SELECT {column}, data FROM {table}")
    }


def _read_bot_data(log: EnquiryLog) -> Data:
    row = log.db.execute("SELECT data FROM bot_data WHERE id = 1").fetchone()
    return json.loads(row[0]) if row else {}


def _drop_stale(log: EnquiryLog, older_than_minutes: float, now: datetime | None, name: str | None) -> int:
    cutoff = iso((now or log.clock()) - timedelta(minutes=older_than_minutes))
    sql, params = "DELETE FROM conversations WHERE updated_at < ?", [cutoff]
    if name is not None:
        sql, params = sql + " AND name = ?", [cutoff, name]
    with log.write() as db:
        return db.execute(sql, params).rowcount


def _read_conversations(log: EnquiryLog, name: str, expire_after_minutes: float | None) -> ConversationDict:
    if expire_after_minutes is not None:
        _drop_stale(log, expire_after_minutes, None, name)
    return {
        decode_key(row["key"]): json.loads(row["state"])
        for row in log.db.query("SELECT key, state FROM conversations WHERE name = ?", [name])
    }


class SQLitePersistence(BasePersistence[Data, Data, Data]):
    """PTB persistence in the enquiry database; every write is committed before it returns.

    Pass the bot's AsyncEnquiryLog to share its connection and worker thread (the normal
    case; close the log yourself), or a path to open a private one (closed by close()).
    store_data: which of user/chat/bot data to keep (callback_data is always off).
    expire_after_minutes: conversations untouched for longer are dropped when PTB loads
    them at startup, so nobody resumes a booking from last week.
    """

    __slots__ = ("_expire_after_minutes", "_log", "_owns_log")

    def __init__(
        self,
        store: AsyncEnquiryLog | str | Path,
        *,
        store_data: PersistenceInput | None = None,
        expire_after_minutes: float | None = None,
        update_interval: float = 60,
    ) -> None:
        # callback_data is never stored (it holds arbitrary Python objects).
        store_data = (store_data or PersistenceInput())._replace(callback_data=False)
        super().__init__(store_data=store_data, update_interval=update_interval)
        self._owns_log = not isinstance(store, AsyncEnquiryLog)
        self._log = store if isinstance(store, AsyncEnquiryLog) else AsyncEnquiryLog(store)
        self._expire_after_minutes = expire_after_minutes

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        if self._owns_log and self._log.closed:
            # flush() closed our private connection; PTB is using us again (re-initialised).
            self._log = AsyncEnquiryLog(self._log.path)
        return await self._log.call(fn, *args)

    @property
    def log(self) -> AsyncEnquiryLog:
        return self._log

    async def close(self) -> None:
        """Close the database if this persistence opened it (not a shared log)."""
        if self._owns_log:
            await self._log.close()

    # -- explicit saves for conversation callbacks

    async def save_now(
        self,
        name: str,
        key: ConversationKey,
        state: object,
        user_id: int | None = None,
        user_data: Data | None = None,
        *,
        chat_id: int | None = None,
        chat_data: Data | None = None,
        update_id: int | None = None,
    ) -> None:
        """Commit a conversation's next state (None/END ends it) together with the data it
        collected, in one transaction, BEFORE the callback replies; a kill -9 after the
        reply then resumes exactly there. `update_id`, the update that made the step, is
        marked handled in the same commit (bot/inbox.py), so it is never applied twice."""
        await self._call(
            _save,
            _conversation_row(name, key, state, user_id),
            user_id,
            None if user_data is None else _dump(user_data),
            chat_id,
            None if chat_data is None else _dump(chat_data),
            update_id,
        )

    async def drop_stale_conversations(
        self, older_than_minutes: float, now: datetime | None = None, name: str | None = None
    ) -> int:
        """Delete conversations not updated for older_than_minutes (all handlers, or one
        name); returns how many. Call before Application.initialize() to expire at start."""
        return await self._call(_drop_stale, older_than_minutes, now, name)

    # -- BasePersistence: reads at startup

    async def get_user_data(self) -> dict[int, Data]:
        return await self._call(_read_data, "user_data", "user_id")

    async def get_chat_data(self) -> dict[int, Data]:
        return await self._call(_read_data, "chat_data", "chat_id")

    async def get_bot_data(self) -> Data:
        return await self._call(_read_bot_data)

    async def get_callback_data(self) -> CDCData | None:
        return None  # callback_data is not stored (store_data.callback_data is False)

    async def get_conversations(self, name: str) -> ConversationDict:
        return await self._call(_read_conversations, name, self._expire_after_minutes)

    # -- BasePersistence: writes, each committed immediately

    async def update_conversation(self, name: str, key: ConversationKey, new_state: object | None) -> None:
        await self._call(_update_conversation, _conversation_row(name, key, new_state, None))

    async def update_user_data(self, user_id: int, data: Data) -> None:
        await self._call(_update_data, "user_data", "user_id", user_id, _dump(data))

    async def update_chat_data(self, chat_id: int, data: Data) -> None:
        await self._call(_update_data, "chat_data", "chat_id", chat_id, _dump(data))

    async def update_bot_data(self, data: Data) -> None:
        await self._call(_update_data, "bot_data", "id", 1, _dump(data))

    async def update_callback_data(self, data: CDCData) -> None:
        return None

    async def drop_chat_data(self, chat_id: int) -> None:
        await self._call(_delete_data, "chat_data", "chat_id", chat_id)

    async def drop_user_data(self, user_id: int) -> None:
        await self._call(_delete_data, "user_data", "user_id", user_id)

    # The database is only written by this process through PTB, so there is nothing newer
    # to refresh from.

    async def refresh_user_data(self, user_id: int, user_data: Data) -> None:
        return None

    async def refresh_chat_data(self, chat_id: int, chat_data: Data) -> None:
        return None

    async def refresh_bot_data(self, bot_data: Data) -> None:
        return None

    async def flush(self) -> None:
        """Called by Application.stop() after its last update: nothing is buffered (every
        write was committed when made), so just close a connection this persistence opened
        itself (it reopens if PTB uses it again). A shared log is left to its owner."""
        await self.close()


__all__ = ["ConversationKey", "SQLitePersistence", "decode_key", "encode_key", "key_ids"]
