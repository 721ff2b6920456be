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
from handlers import (
    booking,
    courses,
    errors,
    handoff,
    other_input,
    privacy,
    questions,
    render,
    staff,
    start,
)

# Groups run in ascending order; a handler in an earlier group that raises ApplicationHandlerStop
# stops the later ones, otherwise the next group is tried as well.
AUDIT = -2  # logs refused staff commands, then lets them be answered as any unknown command
HANDOFF = -1  # a user's messages during a hand-off go to staff (and stop there)


def register(application: Application) -> None:
    """Add every handler. Within a group only the first handler that matches an update runs,
    so the order below is the order of precedence."""
    settings = services(application).settings
    staff_only = staff.command_filter(settings)
    application.add_handler(CommandHandler(staff.COMMANDS, staff.refused, ~staff_only), group=AUDIT)
    application.add_handler(
        MessageHandler(
            filters.ChatType.PRIVATE & ~filters.COMMAND & ~filters.StatusUpdate.ALL, handoff.user_message
        ),
        group=HANDOFF,
    )
    staff_chat = []
    if settings.staff_chat_id is not None:
        # Every non-command message in the staff chat: replies to enquiries are relayed to the
        # user, the rest is staff talk the bot must not answer (so before the FAQ/booking).
        staff_chat.append(
            MessageHandler(
                filters.Chat(chat_id=settings.staff_chat_id) & ~filters.COMMAND, handoff.staff_chat_message
            )
        )
    application.add_handlers(
        [
            # Before the booking conversation: mid-booking it takes every button and command
            # (its fallbacks), and its entry points take every free-text message.
            CallbackQueryHandler(staff.take_or_done, pattern=staff.BUTTONS),
            CallbackQueryHandler(staff.turn_page, pattern=staff.PAGES),
            CallbackQueryHandler(privacy.forget_answer, pattern=privacy.FORGET_BUTTONS),
            *staff_chat,
            CommandHandler("enquiries", staff.list_enquiries, staff_only),
            CommandHandler("enquiry", staff.show_enquiry, staff_only),
            CommandHandler("done", staff.done, staff_only),
            CommandHandler("note", staff.note, staff_only),
            CommandHandler("export", staff.export, staff_only),
            CommandHandler("privacy", privacy.privacy),
            CommandHandler("mydata", privacy.mydata),
            CommandHandler("forgetme", privacy.forgetme),
            # The booking conversation: mid-booking, what people type belongs to it. Its
            # entry points also take every free-text question (see handlers.booking).
            booking.conversation(settings.booking_timeout_minutes, services(application).brain.booking),
            CommandHandler("start", start.start),
            CommandHandler("help", start.help_command),
            CommandHandler("courses", courses.courses),
            CallbackQueryHandler(start.menu_choice, pattern=f"^{render.MENU}"),
            CallbackQueryHandler(questions.choose_entry, pattern=f"^{render.FAQ}"),
            CallbackQueryHandler(questions.none_of_these, pattern=f"^{render.NONE_OF_THESE}$"),
            CallbackQueryHandler(questions.not_what_i_asked, pattern=f"^{render.NOT_ANSWERED}$"),
            CallbackQueryHandler(questions.stale_button),
            MessageHandler(filters.COMMAND, other_input.unknown_command),
            MessageHandler(filters.UpdateType.MESSAGE & ~filters.StatusUpdate.ALL, other_input.not_text),
        ]
    )
    application.add_error_handler(errors.on_error)
