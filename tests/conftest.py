"""Shared fixtures: a loopback Telegram Bot API server per test (see tests/telegram_server.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.telegram_server import TEST_TOKEN, TelegramServer

#: The bot token every test uses; the server answers 401 to any other.
BOT_TOKEN = TEST_TOKEN


@pytest.fixture
def bot_api() -> Iterator[TelegramServer]:
    """A started Bot API server on 127.0.0.1; stopped (threads joined) after the test."""
    with TelegramServer(BOT_TOKEN) as server:
        yield server
