"""Shared fixtures: a loopback Telegram Bot API server per test (see tests/telegram_server.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from telegram.ext import Application

from bot.app import build_application
from bot.brain import Brain
from bot.settings import Settings
from tests.telegram_server import TEST_TOKEN, Chat, TelegramServer, User

#: The bot token every test uses; the server answers 401 to any other.
BOT_TOKEN = TEST_TOKEN


@pytest.fixture
def bot_api() -> Iterator[TelegramServer]:
    """A started Bot API server on 127.0.0.1; stopped (threads joined) after the test."""
    with TelegramServer(BOT_TOKEN) as server:
        yield server


# -- the real bot, polling the loopback server -------------------------------------------------


@pytest.fixture(scope="session")
def brain() -> Brain:
    """The shipped knowledge, loaded once: loading is what start-up does, not what tests test."""
    return Brain.load()


@dataclass
class LiveBot:
    """The real Application polling `api`, with a staff group and one staff member."""

    api: TelegramServer
    app: Application
    settings: Settings
    staff: User
    staff_chat: Chat

    @property
    def db_path(self) -> Path:
        return self.settings.db_path

    async def ask(self, user: User, text: str) -> dict:
        """The user sends `text`; returns the bot's next message to them."""
        self.api.send_text(user, text)
        return await self.api.wait_for_message(user)

    def refuse_next_reply(self, user: User) -> None:
        """Telegram refuses the bot's next message to `user` with a bad request the bot does not
        expect, so the handler sending it fails."""
        self.api.fail_next(
            "sendMessage",
            "Bad Request: something new",
            error_code=400,
            when=lambda p: p.integer("chat_id") == user.id,
        )

    async def press(self, user: User, message: dict, data: str) -> dict:
        """The user presses a button; returns the bot's next message to them."""
        self.api.press_button(user, message, data)
        return await self.api.wait_for_message(user)


def live_settings(api: TelegramServer, db_path: Path, staff: User, staff_chat: Chat) -> Settings:
    return Settings(
        token=BOT_TOKEN,
        api_base_url=api.base_url,
        db_path=db_path,
        staff_chat_id=staff_chat.id,
        staff_ids=frozenset({staff.id}),
    )


async def start_bot(settings: Settings, brain: Brain) -> Application:
    """Start the bot as `run_polling` does (initialise, post_init, poll), in this event loop."""
    app = build_application(settings, brain)
    await app.initialize()
    await app.post_init(app)
    await app.start()
    await app.updater.start_polling(poll_interval=0, timeout=1)
    return app


async def stop_bot(app: Application) -> None:
    await app.updater.stop()
    await app.stop()
    await app.shutdown()
    await app.post_shutdown(app)


@pytest.fixture
async def live(bot_api: TelegramServer, brain: Brain, tmp_path: Path) -> AsyncIterator[LiveBot]:
    staff = bot_api.add_user("Sam", username="sam_staff")
    staff_chat = bot_api.add_group("Academy staff", members=[staff])
    settings = live_settings(bot_api, tmp_path / "mesobot.sqlite3", staff, staff_chat)
    bot = LiveBot(bot_api, await start_bot(settings, brain), settings, staff, staff_chat)
    try:
        yield bot
    finally:
        await stop_bot(bot.app)  # the app running at the end: a test may have restarted it
        await asyncio.sleep(0)
