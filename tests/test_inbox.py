"""The inbox keeps an update's text only until it is handled, and its id only for a day."""

from __future__ import annotations

import json
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


async def test_unhandled_updates_come_back_and_handled_ones_are_forgotten(tmp_path: Path) -> None:
    bot = Bot("123:abc")
    clock = Clock()
    path = tmp_path / "db.sqlite3"
    sent = [message_update(i, f"question {i}") for i in (1, 2)]
    first, second = (Update.de_json(data, bot) for data in sent)
    response = json.dumps({"ok": True, "result": sent}).encode()  # getUpdates' answer
    async with AsyncEnquiryLog(path, clock=clock) as log:
        inbox = Inbox(log)
        assert await inbox.recover(bot) == []
        assert inbox.admit([first, second], response) == (first, second)
        await inbox.stored()
        inbox.handled(first)
        await inbox.drain()
    with sqlite3.connect(path) as db:  # the text went with the handling
        assert db.execute("SELECT update_id, payload IS NULL FROM inbox").fetchall() == [(1, 1), (2, 0)]

    async with AsyncEnquiryLog(path, clock=clock) as log:  # the bot starts again
        inbox = Inbox(log)
        assert [u.message.text for u in await inbox.recover(bot)] == ["question 2"]
        assert inbox.admit([first, second], response) == ()  # Telegram sent them again: both known

        clock.advance(hours=23)
        assert await inbox.purge() == 0  # a redelivery is still recognised
        clock.advance(hours=2)
        assert await inbox.purge() == 1  # a day on, only the unhandled one stays
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT update_id FROM inbox").fetchall() == [(2,)]

    async with AsyncEnquiryLog(path, clock=clock) as log:
        assert [u.update_id for u in await Inbox(log).recover(bot)] == [2]
