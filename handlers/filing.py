"""File an enquiry: store it first, then tell the staff chat. Storing is what must never fail silently."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update, User
from telegram.error import TelegramError
from telegram.ext import Application, CallbackContext

from bot import texts
from bot.enquiries import Enquiry
from bot.services import services
from handlers.render import MAX_TEXT

log = logging.getLogger(__name__)

# A "did you mean" left this long without a choice is filed for staff: by then the person has
# moved on, and the follow-up window (handlers.follow_up) has closed too.
CHOICE_WAIT_MINUTES = 30
TAKE = "v1:take:"
DONE = "v1:done:"


def who(user: User | None) -> str:
    if user is None:
        return "unknown user"
    handle = f" @{user.username}" if user.username else ""
    return f"{user.full_name}{handle} (id {user.id})"


def enquirer(enquiry: Enquiry) -> str:
    """Who sent the enquiry, as who() shows a live user: name, @handle and id."""
    handle = f" @{enquiry.username}" if enquiry.username else ""
    return f"{enquiry.display_name or '?'}{handle} (id {enquiry.user_id})"


def post_text(enquiry: Enquiry, status: str | None = None) -> str:
    """The enquiry's post in the staff chat; `status` (who has it, who closed it) goes last."""
    lines = [
        texts.STAFF_POST.format(
            title=texts.STAFF_KIND.get(enquiry.kind, enquiry.kind),
            reference=enquiry.reference,
            who=enquirer(enquiry),
            text=enquiry.text,
        )
    ]
    for label, value in enquiry.details.items():
        if isinstance(value, list):
            value = ", ".join(map(str, value))
        lines.append(f"{label.replace('_', ' ')}: {value}")
    lines.append(texts.STAFF_POST_HINT)
    body = "\n".join(lines)
    if status is None:
        return body[:MAX_TEXT]
    tail = "\n\n" + status
    return body[: MAX_TEXT - len(tail)] + tail


def post_buttons(enquiry: Enquiry, *, take: bool = True, done: bool = True) -> InlineKeyboardMarkup | None:
    """The post's Take / Done buttons (None when neither is wanted)."""
    row = []
    if take:
        row.append(InlineKeyboardButton(texts.STAFF_TAKE, callback_data=f"{TAKE}{enquiry.id}"))
    if done:
        row.append(InlineKeyboardButton(texts.STAFF_DONE, callback_data=f"{DONE}{enquiry.id}"))
    return InlineKeyboardMarkup([row]) if row else None


async def file_enquiry(
    update: Update,
    context: CallbackContext,
    kind: str,
    text: str,
    details: dict[str, Any],
    message_id: int | None = None,
) -> Enquiry | None:
    """Store the enquiry (committed), then post it to staff; None if it could not be stored.
    `message_id`: the person's message it passes on, when a button files it (see record).

    The post runs as a task of its own: the person's reply, above all urgent safety advice,
    must never wait on the staff chat (PTB awaits such tasks when the application stops).
    An update handled again after a crash gets its stored enquiry back, posted only once."""
    user, chat = update.effective_user, update.effective_chat
    try:
        enquiry = await services(context).log.record(
            kind=kind,
            user_id=user.id if user else 0,
            chat_id=chat.id if chat else 0,
            display_name=user.full_name if user else "",
            username=user.username if user else None,
            text=text,
            details=details,
            update_id=update.update_id,
            message_id=message_id,
        )
    except Exception:
        log.exception("could not store a %s enquiry", kind)
        return None
    if enquiry.staff_message_id is None:
        context.application.create_task(announce(context, enquiry, user), update=update)
    return enquiry


async def announce(
    context: CallbackContext | Application, enquiry: Enquiry, user: User | None = None
) -> None:
    """Post a stored enquiry to the staff chat, with take/done buttons. Failure is logged only:
    the enquiry is safe in the log, and staff see it in /enquiries."""
    staff_chat = services(context).settings.staff_chat_id
    if staff_chat is None:
        return
    try:
        post = await context.bot.send_message(
            staff_chat, post_text(enquiry), reply_markup=post_buttons(enquiry)
        )
        await services(context).log.set_staff_message(enquiry.id, post.message_id, staff_chat)
    except TelegramError:
        log.exception("could not post %s to the staff chat", enquiry.reference)


async def await_choice(
    update: Update, context: CallbackContext, asked: Message, details: dict[str, Any]
) -> None:
    """Keep a question answered with "did you mean" until the person chooses, so that one left
    unchosen still reaches staff (file_unchosen). The suggestions go out even if this fails."""
    user = update.effective_user
    try:
        await services(context).log.await_choice(
            user.id if user else None,
            asked.chat_id,
            asked.message_id,
            user.full_name if user else "",
            user.username if user else None,
            asked.text or asked.caption or "",
            details,
        )
    except Exception:
        log.exception("could not keep a question awaiting a choice")


async def choice_made(context: CallbackContext, asked: Message | None) -> None:
    """The person chose for the question `asked` (the message the suggestions quote)."""
    if asked is None:
        return
    try:
        await services(context).log.choice_made(asked.chat_id, asked.message_id)
    except Exception:
        log.exception("could not mark a choice as made")


async def file_unchosen(context: CallbackContext | Application, now: datetime | None = None) -> int:
    """A job: file for staff the questions whose suggestions nobody picked within
    CHOICE_WAIT_MINUTES, and post them to the staff chat. Returns how many were filed."""
    application = context if isinstance(context, Application) else context.application
    filed = await services(application).log.file_unchosen(timedelta(minutes=CHOICE_WAIT_MINUTES), now)
    for enquiry in filed:
        if enquiry.staff_message_id is None:
            await announce(application, enquiry)
    return len(filed)
