"""Telegram handlers: one module per feature, assembled here in the order they must be tried."""

from __future__ import annotations

from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from bot.services import services
from handlers import booking, courses, errors, other_input, questions, render, start


def register(application: Application) -> None:
    """Add every handler. Within a group only the first handler that matches an update runs,
    so the order below is the order of precedence."""
    settings = services(application).settings
    application.add_handlers(
        [
            # The booking conversation first: mid-booking, what people type belongs to it. Its
            # entry points also take every free-text question (see handlers.booking).
            booking.conversation(settings.booking_timeout_minutes),
            CommandHandler("start", start.start),
            CommandHandler("help", start.help_command),
            CommandHandler("courses", courses.courses),
            CallbackQueryHandler(start.menu_choice, pattern=f"^{render.MENU}"),
            CallbackQueryHandler(questions.choose_entry, pattern=f"^{render.FAQ}"),
            CallbackQueryHandler(questions.none_of_these, pattern=f"^{render.NONE_OF_THESE}$"),
            CallbackQueryHandler(questions.stale_button),
            MessageHandler(filters.COMMAND, other_input.unknown_command),
            MessageHandler(filters.UpdateType.MESSAGE & ~filters.StatusUpdate.ALL, other_input.not_text),
        ]
    )
    application.add_error_handler(errors.on_error)
