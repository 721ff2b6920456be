"""/courses: each course with its key facts, and buttons to read more or book."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import CallbackContext

from bot import texts
from bot.replies import Choice
from bot.services import services
from handlers import render


async def courses(update: Update, context: CallbackContext) -> None:
    """List the courses with their key facts."""
    knowledge = services(context).brain.knowledge
    parts = [texts.COURSES_HEADER]
    buttons = []
    for course in knowledge.courses:
        facts = "\n".join(f"• {label}: {value}" for label, value in course.facts)
        parts.append(f"{course.name}\n{course.summary}\n{facts}")
        buttons.append(
            [
                InlineKeyboardButton(
                    render._label(course.name),
                    callback_data=render.callback_for(Choice(course.entry_id, course.name)),
                )
            ]
        )
    parts.append(texts.COURSES_FOOTER)
    buttons.append([InlineKeyboardButton(texts.MENU_BOOK, callback_data=render.MENU + "book")])
    await update.effective_message.reply_text("\n\n".join(parts), reply_markup=InlineKeyboardMarkup(buttons))
