"""The inbox: every update from Telegram is committed to SQLite before Telegram is told we have it.

PTB confirms a batch of updates (the next getUpdates offset) as soon as it has queued them,
before any is handled, so a crash in between would lose those messages for good: Telegram
never sends them again. Here each batch is stored (one commit) before getUpdates returns it;
an update is marked handled once the bot has processed it, and whatever was stored but not
handled is replayed when the bot starts again. Delivery is at least once: a replayed update
may have been half handled, so what it files (bot/enquiries.py: one enquiry per update and
kind) is written to be safe to repeat.

The payload (the user's message) is cleared as soon as the update is handled; the bare update
id is kept for a day so a batch Telegram sends again after a crash is recognised and skipped.
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

from bot.enquiries import AsyncEnquiryLog, EnquiryLog, iso

log = logging.getLogger(__name__)

KEEP_HANDLED = timedelta(days=1)  # longer than Telegram keeps an unconfirmed update


def _admit(log_: EnquiryLog, payloads: Sequence[tuple[int, str]]) -> list[int]:
    """Store the updates not seen before, in one commit; their ids, in order."""
    fresh = []
    now = log_.now()
    with log_.write() as db:
        for update_id, payload in payloads:
            cursor = db.execute(
                "INSERT OR IGNORE INTO inbox (update_id, received_at, payload) VALUES (?, ?, ?)",
                [update_id, now, payload],
            )
            if cursor.rowcount:
                fresh.append(update_id)
    return fresh


def mark_handled(log_: EnquiryLog, update_ids: Sequence[int]) -> None:
    """Mark updates handled, inside the caller's write transaction (bot/persistence.py marks a
    booking step's update in the same commit as the step, so it is never replayed)."""
    now = log_.now()
    log_.db.conn.executemany(
        "UPDATE inbox SET handled_at = ?, payload = NULL WHERE update_id = ?",
        [(now, update_id) for update_id in update_ids],
    )


def _mark_handled(log_: EnquiryLog, update_ids: Sequence[int]) -> None:
    with log_.write():
        mark_handled(log_, update_ids)


def _pending(log_: EnquiryLog) -> list[dict[str, Any]]:
    return [
        json.loads(row["payload"])
        for row in log_.db.query("SELECT payload FROM inbox WHERE handled_at IS NULL ORDER BY update_id")
    ]


def _purge(log_: EnquiryLog) -> int:
    cutoff = iso(log_.clock() - KEEP_HANDLED)
    with log_.write() as db:
        return db.execute(
            "DELETE FROM inbox WHERE handled_at IS NOT NULL AND handled_at < ?", [cutoff]
        ).rowcount


class Inbox:
    """The durable side of receiving updates; shares the enquiry log's connection and thread."""

    def __init__(self, enquiry_log: AsyncEnquiryLog) -> None:
        self._log = enquiry_log
        self._handled: list[int] = []
        self._flushing: asyncio.Task[None] | None = None

    async def admit(self, updates: Sequence[Update]) -> tuple[Update, ...]:
        """Commit a fetched batch; return the updates not stored before (a redelivery after a
        crash holds some the bot already has, handled or waiting to be replayed)."""
        if not updates:
            return ()
        payloads = [(update.update_id, update.to_json()) for update in updates]
        fresh = set(await self._log.call(_admit, payloads))
        return tuple(update for update in updates if update.update_id in fresh)

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
        """Write any handled marks still waiting (at shutdown)."""
        while self._flushing is not None:
            await asyncio.shield(self._flushing)

    async def pending(self, bot: Bot) -> list[Update]:
        """Stored but never handled (the bot stopped or crashed first), oldest first."""
        return [Update.de_json(data, bot) for data in await self._log.call(_pending)]

    async def purge(self) -> int:
        """Forget the ids of updates handled more than a day ago."""
        return await self._log.call(_purge)


class InboxBot(ExtBot):
    """An ExtBot whose getUpdates stores each batch in the inbox before handing it to PTB.

    It also keeps the offset itself: when a whole batch was already known (a redelivery),
    PTB is handed nothing, and would otherwise ask for the same batch again."""

    __slots__ = ("_inbox", "_next_offset")

    def __init__(self, *args: Any, inbox: Inbox, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._inbox = inbox
        self._next_offset = 0

    async def get_updates(self, offset: int | None = None, *args: Any, **kwargs: Any) -> tuple[Update, ...]:
        if self._next_offset and (offset is None or 0 <= offset < self._next_offset):
            offset = self._next_offset
        updates = await super().get_updates(offset, *args, **kwargs)
        if updates:
            self._next_offset = updates[-1].update_id + 1
        return await self._inbox.admit(updates)
