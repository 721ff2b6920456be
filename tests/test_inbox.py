"""The inbox keeps an update's text only until it is handled, and its id only for a day."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from telegram import Bot, Update

from bot.enquiries import AsyncEnquiryLog
from bot.inbox import Inbox
from tests.test_enquiries import Clock


def message_update(update_id: int, text: str) -> dict:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 0,
            "chat": {"id": 7, "type": "private"},
            "from": {"id": 7, "is_bot": False, "first_name": "Eve"},
            "text": text,
        },
    }


async def test_pending_updates_come_back_and_handled_ones_are_forgotten(tmp_path: Path) -> None:
    bot = Bot("123:abc")
    clock = Clock()
    async with AsyncEnquiryLog(tmp_path / "db.sqlite3", clock=clock) as log:
        inbox = Inbox(log)
        first, second = (Update.de_json(message_update(i, f"question {i}"), bot) for i in (1, 2))
        assert await inbox.admit([first, second]) == (first, second)
        assert await inbox.admit([second]) == ()  # Telegram sent it again: already here
        inbox.handled(first)
        await inbox.drain()
        assert [u.message.text for u in await inbox.pending(bot)] == ["question 2"]
        with sqlite3.connect(tmp_path / "db.sqlite3") as db:  # the text went with the handling
            assert db.execute("SELECT payload FROM inbox WHERE update_id = 1").fetchall() == [(None,)]

        clock.advance(hours=23)
        assert await inbox.purge() == 0
        assert await inbox.admit([first]) == ()  # still recognised within the day
        clock.advance(hours=2)
        assert await inbox.purge() == 1  # only the handled one; the pending one is kept
        assert [u.update_id for u in await inbox.pending(bot)] == [2]
