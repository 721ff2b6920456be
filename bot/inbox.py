"""The inbox: every update from Telegram is on disk before Telegram is told the bot has it.

PTB confirms a batch of updates (with the offset of its next getUpdates) as soon as it has
queued them, before any is handled, so a crash in between would lose those messages for good:
Telegram never sends them again. Here each batch is committed to SQLite while it is being
handled, and the next getUpdates (the confirmation) waits for that commit. An update is marked
handled once the bot has processed it; whatever was stored but not handled is replayed when
the bot starts again. Delivery is at least once: a replayed update may have been half
handled, so what it writes is safe to repeat (one enquiry per update and kind, a relay once,
a booking step marks its update handled in the same commit as the step).

The payload (the user's message) is cleared as soon as the update is handled; the bare update
id is kept for a day so that a batch Telegram sends again after a crash is recognised.

The inbox commits without waiting for the disk (WAL, synchronous=NORMAL): that survives any crash
or kill of the bot, which is what it is for, but not a power cut in the moment after a batch
arrived. Waiting for the disk here would put every disk hiccup in front of every message, as
getUpdates waits for this commit; enquiries themselves are still committed with a full fsync.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from telegram import Bot, Update
from telegram.ext import ExtBot
from telegram.request import BaseRequest

from bot.enquiries import AsyncEnquiryLog, EnquiryLog, iso

log = logging.getLogger(__name__)

KEEP_HANDLED = timedelta(days=1)  # longer than Telegram keeps an unconfirmed update


def _store(log_: EnquiryLog, response: bytes, update_ids: frozenset[int]) -> None:
    # The updates as Telegram sent them, picked out of the getUpdates response here, on the
    # worker thread: re-serialising PTB's objects would cost the event loop far more.
    now = log_.now()
    rows = [
        (data["update_id"], now, json.dumps(data, ensure_ascii=False, separators=(",", ":")))
        for data in json.loads(response)["result"]
        if data["update_id"] in update_ids
    ]
    with log_.write(fsync=False) as db:  # see the module docstring
        db.conn.executemany(
            "INSERT OR IGNORE INTO inbox (update_id, received_at, payload) VALUES (?, ?, ?)", rows
        )


def mark_handled(log_: EnquiryLog, update_ids: Sequence[int]) -> None:
    """Mark updates handled, inside the caller's write transaction (bot/persistence.py marks a
    booking step's update in the same commit as the step, so it is never applied twice)."""
    now = log_.now()
    log_.db.conn.executemany(
        "UPDATE inbox SET handled_at = ?, payload = NULL WHERE update_id = ?",
        [(now, update_id) for update_id in update_ids],
    )


def _mark_handled(log_: EnquiryLog, update_ids: Sequence[int]) -> None:
    # A mark lost to a power cut only means the update is handled again.
    with log_.write(fsync=False):
        mark_handled(log_, update_ids)


def _purge(log_: EnquiryLog) -> int:
    cutoff = iso(log_.clock() - KEEP_HANDLED)
    with log_.write() as db:
        return db.execute(
            "DELETE FROM inbox WHERE handled_at IS NOT NULL AND handled_at < ?", [cutoff]
        ).rowcount


def _recover(log_: EnquiryLog) -> tuple[set[int], list[dict[str, Any]]]:
    """Forget ids handled more than a day ago; return the ids kept and the unhandled payloads."""
    _purge(log_)
    known = {row["update_id"] for row in log_.db.query("SELECT update_id FROM inbox")}
    pending = [
        json.loads(row["payload"])
        for row in log_.db.query("SELECT payload FROM inbox WHERE handled_at IS NULL ORDER BY update_id")
    ]
    return known, pending


class Inbox:
    """The durable side of receiving updates; shares the enquiry log's connection and thread,
    whose calls run in the order they were submitted: a batch is stored before it is marked."""

    def __init__(self, enquiry_log: AsyncEnquiryLog) -> None:
        self._log = enquiry_log
        self._known: set[int] = set()  # ids stored before this start: a redelivery is skipped
        self._storing: asyncio.Future[None] | None = None
        self._handled: list[int] = []
        self._flushing: asyncio.Task[None] | None = None

    async def recover(self, bot: Bot) -> list[Update]:
        """At start-up: the updates stored but never handled (the bot stopped or crashed
        first), oldest first, to be handled before new ones."""
        self._known, pending = await self._log.call(_recover)
        return [Update.de_json(data, bot) for data in pending]

    async def purge(self) -> int:
        """Forget the ids of updates handled more than a day ago (daily, with the retention job)."""
        return await self._log.call(_purge)

    def admit(self, updates: Sequence[Update], response: bytes) -> tuple[Update, ...]:
        """Start committing a fetched batch (`response`: getUpdates' raw answer) and return the
        updates to handle: all but those already stored before this start (Telegram sending
        a batch again after a crash)."""
        fresh = tuple(update for update in updates if update.update_id not in self._known)
        if fresh:
            ids = frozenset(update.update_id for update in fresh)
            self._storing = self._log.submit(_store, response, ids)
        return fresh

    async def stored(self) -> None:
        """Wait until the last batch is committed: call before confirming it to Telegram."""
        storing, self._storing = self._storing, None
        if storing is None:
            return
        try:
            await asyncio.shield(storing)
        except Exception:  # handled all the same; only a crash right now could lose it
            log.exception("could not store a batch of updates in the inbox")

    def handled(self, update: object) -> None:
        """Mark an update handled. Marks are written together, a batch per write, so a busy bot
        does one commit for many updates; losing the last marks to a crash only replays those."""
        if not isinstance(update, Update):
            return
        self._handled.append(update.update_id)
        if self._flushing is None:
            self._flushing = asyncio.create_task(self._flush(), name="inbox-handled")

    async def _flush(self) -> None:
        try:
            while self._handled:
                batch, self._handled = self._handled, []
                try:
                    await self._log.call(_mark_handled, batch)
                except Exception:  # the updates are only replayed; nothing is lost
                    log.exception("could not mark %d updates handled", len(batch))
        finally:
            self._flushing = None

    async def drain(self) -> None:
        """Finish the writes still under way (at shutdown)."""
        await self.stored()
        while self._flushing is not None:
            await asyncio.shield(self._flushing)


class RawResponse(BaseRequest):
    """The getUpdates request, keeping its last raw answer for the inbox (PTB hands on only
    the parsed objects)."""

    __slots__ = ("_inner", "last")

    def __init__(self, inner: BaseRequest) -> None:
        self._inner = inner
        self.last = b""

    @property
    def read_timeout(self) -> float | None:
        return self._inner.read_timeout

    async def initialize(self) -> None:
        await self._inner.initialize()

    async def shutdown(self) -> None:
        await self._inner.shutdown()

    async def do_request(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        status, self.last = await self._inner.do_request(*args, **kwargs)
        return status, self.last


class InboxBot(ExtBot):
    """An ExtBot whose getUpdates hands each batch to the inbox, and confirms a batch to
    Telegram (its next call) only once the inbox has committed it.

    It also keeps the offset itself: when a whole batch was already known (a redelivery),
    PTB is handed nothing and would otherwise ask for the same batch again."""

    __slots__ = ("_inbox", "_next_offset", "_raw")

    def __init__(self, *args: Any, inbox: Inbox, get_updates_request: BaseRequest, **kwargs: Any) -> None:
        self._raw = RawResponse(get_updates_request)
        super().__init__(*args, get_updates_request=self._raw, **kwargs)
        self._inbox = inbox
        self._next_offset = 0

    async def get_updates(self, offset: int | None = None, *args: Any, **kwargs: Any) -> tuple[Update, ...]:
        await self._inbox.stored()
        if self._next_offset and (offset is None or 0 <= offset < self._next_offset):
            offset = self._next_offset
        updates = await super().get_updates(offset, *args, **kwargs)
        if updates:
            self._next_offset = updates[-1].update_id + 1
        return self._inbox.admit(updates, self._raw.last)
