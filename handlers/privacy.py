"""Privacy: /privacy (what is kept, why, how long), /mydata (a copy), /forgetme (delete it all),
and the daily retention purge of enquiries closed longer ago than MESOBOT_RETENTION_DAYS."""

from __future__ import annotations

import json
import logging
from typing import Any

from telegram import Chat, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.error import TelegramError
from telegram.ext import Application, CallbackContext, ConversationHandler, TypeHandler

from bot import texts
from bot.services import services
from handlers import handoff
from handlers.filing import CHOICE_WAIT_MINUTES
from handlers.follow_up import FOLLOW_UP_MINUTES
from handlers.render import MAX_TEXT

log = logging.getLogger(__name__)

FORGET = "v1:forget:"  # + "yes" / "no"
FORGET_BUTTONS = f"^{FORGET}(?:yes|no)$"


async def purge_expired(context: CallbackContext | Application) -> int:
    """The daily retention job: delete enquiries closed more than retention_days ago (open ones
    are kept until handled), and the inbox's ids of updates handled over a day ago. Returns how
    many enquiries were deleted."""
    days = services(context).settings.retention_days
    purged = await services(context).log.purge_done_older_than(days)
    log.info("retention: deleted %d enquiries closed more than %d days ago", purged, days)
    await services(context).inbox.purge()
    return purged


async def privacy(update: Update, context: CallbackContext) -> None:
    """/privacy: what is stored, why, for how long, and the user's rights."""
    settings = services(context).settings
    await update.effective_message.reply_text(
        texts.PRIVACY.format(
            days=settings.retention_days,
            booking_minutes=settings.booking_timeout_minutes,
            follow_up_minutes=FOLLOW_UP_MINUTES,
            choice_minutes=CHOICE_WAIT_MINUTES,
        )
    )


async def _private(update: Update, context: CallbackContext, command: str) -> bool:
    """Personal data is shown and deleted in private chats only; elsewhere, point there."""
    if update.effective_chat.type == Chat.PRIVATE:
        return True
    link = f"https://t.me/{context.bot.username}"
    await update.effective_message.reply_text(texts.PRIVATE_ONLY.format(command=command, link=link))
    return False


# -- /mydata -----------------------------------------------------------------------------------


def _when(stamp: str | None) -> str:
    return stamp.replace("T", " ")[:16] + " UTC" if stamp else "-"


def _plain(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(_plain(item) for item in value) or "-"
    if isinstance(value, dict):
        return "; ".join(f"{key.replace('_', ' ')}: {_plain(item)}" for key, item in value.items()) or "-"
    return "-" if value is None or value == "" else str(value)


def has_data(data: dict[str, Any]) -> bool:
    return bool(
        data["enquiries"]
        or data["relays"]
        or data["awaiting_choice"]
        or data["conversations"]
        or data["user_data"]
        or data["chat_data"]
    )


def readable(data: dict[str, Any]) -> str:
    """log.user_data() as a message a person can read."""
    lines = [texts.MYDATA_HEADER.format(user_id=data["user_id"])]
    enquiries = data["enquiries"]
    if enquiries:
        lines += ["", texts.MYDATA_ENQUIRIES.format(count=len(enquiries))]
        for enquiry in enquiries:
            lines.append(
                texts.MYDATA_ENQUIRY.format(
                    reference=enquiry["reference"],
                    kind=texts.MYDATA_KIND.get(enquiry["kind"], enquiry["kind"]),
                    status=texts.MYDATA_STATUS.get(enquiry["status"], enquiry["status"]),
                    created=_when(enquiry["created_at"]),
                    text=enquiry["text"] or "-",
                )
            )
            lines.extend(
                texts.MYDATA_FIELD.format(label=key.replace("_", " "), value=_plain(value))
                for key, value in enquiry["details"].items()
            )
            lines.extend(
                texts.MYDATA_NOTE.format(at=_when(note.get("at")), text=note.get("text", ""))
                for note in enquiry["staff_notes"]
            )
    relayed = [relay for relay in data["relays"] if relay["direction"] != "staff_post"]
    if relayed:
        lines += ["", texts.MYDATA_RELAYS.format(count=len(relayed))]
    for question in data["awaiting_choice"]:
        lines += ["", texts.MYDATA_AWAITING.format(asked=_when(question["asked_at"]), text=question["text"])]
    for conversation in data["conversations"]:
        lines += ["", texts.MYDATA_CONVERSATION.format(updated=_when(conversation["updated_at"]))]
    saved = {**(data["chat_data"] or {}), **(data["user_data"] or {})}
    if saved:
        lines += ["", texts.MYDATA_SAVED.format(data=_plain(saved))]
    lines += ["", texts.MYDATA_FOOTER]
    return "\n".join(lines)


async def mydata(update: Update, context: CallbackContext) -> None:
    """/mydata: everything stored about the user, as a message, or a JSON file when long."""
    if not await _private(update, context, "/mydata"):
        return
    user, message = update.effective_user, update.effective_message
    data = await services(context).log.user_data(user.id)
    if not has_data(data):
        await message.reply_text(texts.MYDATA_NOTHING)
        return
    text = readable(data)
    if len(text) <= MAX_TEXT:
        await message.reply_text(text)
        return
    await message.reply_document(
        document=json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8"),
        filename=f"mydata-{user.id}.json",
        caption=texts.MYDATA_DOCUMENT,
    )


# -- /forgetme ---------------------------------------------------------------------------------


async def forgetme(update: Update, context: CallbackContext) -> None:
    """/forgetme: ask first; the buttons do the rest."""
    if not await _private(update, context, "/forgetme"):
        return
    buttons = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(texts.FORGET_YES, callback_data=FORGET + "yes"),
                InlineKeyboardButton(texts.FORGET_NO, callback_data=FORGET + "no"),
            ]
        ]
    )
    await update.effective_message.reply_text(texts.FORGET_CONFIRM, reply_markup=buttons)


async def _end(update: Update, context: CallbackContext) -> int:
    return ConversationHandler.END


async def end_booking(update: Update, context: CallbackContext) -> None:
    """End the user's booking conversation in memory too (its stored state is deleted with the
    rest), through the ConversationHandler's public check_update/handle_update: the step's
    timeout job is cancelled and the conversation's persistence entry removed."""
    conversation = handoff.booking_conversation(context.application)
    step = handoff.booking_step(update, context)
    if conversation is None or step is None:
        return
    state, key = step
    ender = TypeHandler(Update, _end)
    await conversation.handle_update(update, context.application, (state, key, ender, True), context)


async def _clear_staff_chat(context: CallbackContext, data: dict[str, Any]) -> None:
    """Best effort: blank the user's enquiry posts in the staff chat and delete the copies of
    their messages there. Staff's own messages stay (the bot cannot delete them)."""
    bot = context.bot
    for enquiry in data["enquiries"]:
        if enquiry["staff_message_id"] is None or enquiry["staff_chat_id"] is None:
            continue
        try:
            await bot.edit_message_text(
                texts.STAFF_POST_FORGOTTEN.format(reference=enquiry["reference"]),
                chat_id=enquiry["staff_chat_id"],
                message_id=enquiry["staff_message_id"],
                reply_markup=None,
            )
        except TelegramError:
            log.warning("could not blank the staff post of %s", enquiry["reference"], exc_info=True)
    copies = [relay for relay in data["relays"] if relay["direction"] == "to_staff"]
    for relay in copies:
        try:
            await bot.delete_message(relay["staff_chat_id"], relay["staff_message_id"])
        except TelegramError:
            log.warning("could not delete relayed message %s", relay["staff_message_id"], exc_info=True)


async def forget_answer(update: Update, context: CallbackContext) -> None:
    """Yes: delete everything about the user (log rows, user data, booking state). No: nothing."""
    query = update.callback_query
    user = query.from_user
    message = query.message
    try:
        if not isinstance(message, Message) or message.chat.id != user.id:
            return  # only the person in their own private chat can answer this
        if query.data != FORGET + "yes":
            await query.edit_message_text(texts.FORGET_KEPT)
            return
        enquiry_log = services(context).log
        before = await enquiry_log.user_data(user.id)
        await end_booking(update, context)
        deleted = await enquiry_log.forget_user(user.id)
        context.application.drop_user_data(user.id)
        context.application.drop_chat_data(message.chat.id)
        log.info("forgot user %s at their request: %d rows", user.id, deleted)
        await _clear_staff_chat(context, before)
        if deleted:
            done = texts.FORGET_DONE.format(enquiries=len(before["enquiries"]), records=deleted)
        else:
            done = texts.FORGET_NOTHING
        await query.edit_message_text(done)
    finally:
        await query.answer()
