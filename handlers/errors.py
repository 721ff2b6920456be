"""The last line of defence: log the error, and tell the user something friendly, never a traceback."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import Forbidden, NetworkError
from telegram.ext import CallbackContext

from bot import texts

log = logging.getLogger(__name__)


async def on_error(update: object, context: CallbackContext) -> None:
    """Log the error and apologise to the user, if there is one to apologise to."""
    error = context.error
    if isinstance(error, NetworkError | Forbidden):
        log.warning("Telegram: %s", error)  # transient, or the user blocked the bot
        return
    log.error("error while handling an update", exc_info=error)
    if isinstance(update, Update) and update.effective_chat is not None:
        try:
            await context.bot.send_message(update.effective_chat.id, texts.ERROR)
        except Exception:  # noqa: BLE001 - nothing more can be done; it is logged above
            log.warning("could not tell the user about the error", exc_info=True)
