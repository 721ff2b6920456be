"""Process updates concurrently across chats but one at a time within a chat.

ConversationHandler needs a chat's updates in order, one by one; PTB's sequential default would
also make every user wait behind the slowest one. Serialising per chat gives both. Each update
that was processed is reported to `on_handled` (the inbox marks it, so it is not replayed).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor


class PerChatUpdateProcessor(BaseUpdateProcessor):
    __slots__ = ("_locks", "_on_handled", "_waiting")

    def __init__(
        self, max_concurrent_updates: int = 256, on_handled: Callable[[object], None] | None = None
    ) -> None:
        super().__init__(max_concurrent_updates)
        self._on_handled = on_handled
        self._locks: dict[int | None, asyncio.Lock] = {}
        self._waiting: dict[int | None, int] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        key = _chat_key(update)
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            async with lock:
                await coroutine
            if self._on_handled is not None:
                self._on_handled(update)
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:  # forget idle chats so the table does not grow forever
                del self._waiting[key], self._locks[key]

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to tear down."""


def _chat_key(update: object) -> int | None:
    if isinstance(update, Update):
        if update.effective_chat is not None:
            return update.effective_chat.id
        if update.effective_user is not None:
            return update.effective_user.id
    return None
