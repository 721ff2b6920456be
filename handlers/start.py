"""/start, /help and the main menu."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import CallbackContext

from bot import texts
from bot.services import services
from handlers import render

AFTERCARE_ENTRY = "aftercare"


def menu() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(texts.MENU_COURSES, callback_data=render.MENU + "courses"),
                InlineKeyboardButton(texts.MENU_BOOK, callback_data=render.MENU + "book"),
            ],
            [
                InlineKeyboardButton(texts.MENU_AFTERCARE, callback_data=render.MENU + "aftercare"),
                InlineKeyboardButton(texts.MENU_ASK, callback_data=render.MENU + "ask"),
            ],
        ]
    )


async def start(update: Update, context: CallbackContext) -> None:
    """Greet the user and show the menu."""
    user = update.effective_user
    name = f", {user.first_name}" if user and user.first_name else ""
    await update.effective_message.reply_text(texts.GREETING.format(name=name), reply_markup=menu())


async def help_command(update: Update, context: CallbackContext) -> None:
    """Say what the bot can do."""
    commands = "\n".join(f"/{name} - {description}" for name, description in texts.COMMANDS)
    await update.effective_message.reply_text(texts.HELP.format(commands=commands))


async def menu_choice(update: Update, context: CallbackContext) -> None:
    """Act on a main-menu button (booking is handled by the booking conversation)."""
    from handlers.courses import courses

    query = update.callback_query
    await query.answer()
    choice = query.data.removeprefix(render.MENU)
    if choice == "courses":
        await courses(update, context)
    elif choice == "aftercare":
        await render.send(query.message, services(context).brain.answer_entries([AFTERCARE_ENTRY]))
    else:
        await query.message.reply_text(texts.ASK_PROMPT)
