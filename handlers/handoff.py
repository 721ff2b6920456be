"""The hand-off: staff and a user talking through the bot, each in their own chat.

Staff -> user: a staff member replies (a Telegram reply) in the staff chat to an enquiry's post,
or to any message relayed for that enquiry; the bot copies the reply to the user (copyMessage,
which also works for people who hide their account from forwards) and links it with add_relay.
Every link is in SQLite, so a restart loses nothing.

User -> staff: while the user has an open enquiry a staff member took, the user's private
messages are copied into the staff chat as replies to the enquiry's thread, under a header that
names the enquiry. The safety gate runs first: urgent advice is never held back by a hand-off.
"""

from __future__ import annotations

import logging
import sqlite3

from telegram import Chat, Message, MessageEntity, ReplyParameters, Update
from telegram.error import Forbidden, TelegramError
from telegram.ext import Application, ApplicationHandlerStop, CallbackContext, ConversationHandler

from bot import texts
from bot.enquiries import AsyncEnquiryLog, Enquiry
from bot.replies import Kind
from bot.services import services
from handlers import booking, staff
from handlers.filing import post_buttons
from handlers.questions import deliver
from handlers.render import MAX_TEXT

log = logging.getLogger(__name__)

MAX_CAPTION = 1024
# Media whose copy can carry the relay header in its caption; anything else gets a header message.
CAPTIONED: tuple[str, ...] = ("photo", "video", "document", "audio", "voice", "animation")
# Formatting kept when a user's text is re-sent under the header (Telegram finds links itself).
FORMATTING: frozenset[str] = frozenset(
    {
        MessageEntity.BOLD,
        MessageEntity.ITALIC,
        MessageEntity.UNDERLINE,
        MessageEntity.STRIKETHROUGH,
        MessageEntity.SPOILER,
        MessageEntity.CODE,
        MessageEntity.PRE,
        MessageEntity.TEXT_LINK,
        MessageEntity.BLOCKQUOTE,
        MessageEntity.EXPANDABLE_BLOCKQUOTE,
    }
)


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


# -- the booking conversation, seen from outside ----------------------------------------------


def booking_conversation(application: Application) -> ConversationHandler | None:
    for handler in application.handlers.get(0, []):
        if isinstance(handler, ConversationHandler) and handler.name == booking.NAME_KEY:
            return handler
    return None


def booking_step(update: Update, context: CallbackContext) -> tuple[object, tuple] | None:
    """(state, key) if this update's chat and user are in the middle of a booking, else None.

    ConversationHandler.check_update is public and says which state it would handle the update
    in; None as the state means only an entry point matched (no booking under way)."""
    conversation = booking_conversation(context.application)
    checked = conversation.check_update(update) if conversation is not None else None
    if not checked or checked[0] is None:
        return None
    return checked[0], checked[1]


# -- staff -> user -----------------------------------------------------------------------------


async def _user_chat(enquiry_log: AsyncEnquiryLog, enquiry: Enquiry, chat_id: int, replied_id: int) -> int:
    """Where a reply to this staff-chat message goes: the chat of the relayed message it answers,
    else the chat the enquiry was made in."""
    for relay in await enquiry_log.relays_for(enquiry.id):
        if (relay["staff_chat_id"], relay["staff_message_id"]) == (chat_id, replied_id) and relay[
            "user_chat_id"
        ]:
            return relay["user_chat_id"]
    return enquiry.chat_id or 0


async def staff_chat_message(update: Update, context: CallbackContext) -> None:
    """Any non-command message in the staff chat. Replies to an enquiry's messages go to its
    user; everything else is staff talking among themselves, and the bot keeps out of it."""
    message = update.message  # an edited message is not sent again
    if message is None or message.reply_to_message is None or message.from_user is None:
        return
    replied = message.reply_to_message
    if message.is_topic_message and replied.message_id == message.message_thread_id:
        return  # in a forum topic every message "replies" to the topic's first message
    enquiry_log = services(context).log
    enquiry = await enquiry_log.enquiry_for_staff_message(message.chat.id, replied.message_id)
    if enquiry is None or await enquiry_log.was_relayed("to_user", message.chat.id, message.message_id):
        return
    settings = services(context).settings
    if settings.staff_ids and message.from_user.id not in settings.staff_ids:
        log.warning("refused relay of a reply to %s by user %s", enquiry.reference, message.from_user.id)
        await message.reply_text(texts.STAFF_RELAY_NOT_STAFF)
        return
    if enquiry.status == "done":
        await message.reply_text(
            texts.STAFF_RELAY_CLOSED.format(reference=enquiry.reference),
            reply_markup=post_buttons(enquiry, done=False),
        )
        return
    if enquiry.handled_by is None:  # answering a new enquiry takes it
        await staff.take(context, enquiry.id, message.from_user)
    name = enquiry.display_name or enquiry.reference
    target = await _user_chat(enquiry_log, enquiry, message.chat.id, replied.message_id)
    try:
        copied = await context.bot.copy_message(target, message.chat.id, message.message_id)
    except Forbidden:
        log.info("%s: user %s has blocked the bot; reply not delivered", enquiry.reference, enquiry.user_id)
        await message.reply_text(texts.STAFF_NOT_DELIVERED_BLOCKED.format(name=name))
        return
    except TelegramError as error:
        log.warning("%s: reply not delivered: %s", enquiry.reference, error)
        await message.reply_text(texts.STAFF_NOT_DELIVERED.format(name=name, error=error.message))
        return
    await enquiry_log.add_relay(
        enquiry.id,
        direction="to_user",
        staff_chat_id=message.chat.id,
        staff_message_id=message.message_id,
        user_chat_id=target,
        user_message_id=copied.message_id,
    )
    await message.reply_text(texts.STAFF_RELAYED.format(name=name))


# -- user -> staff -----------------------------------------------------------------------------


async def user_message(update: Update, context: CallbackContext) -> None:
    """A private message (not a command). During a hand-off it goes to the staff thread and
    nothing else handles it (ApplicationHandlerStop); otherwise this returns and the normal
    handlers answer it. Registered in a group before the other handlers."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None or message.chat.type != Chat.PRIVATE:
        return
    enquiry_log = services(context).log
    try:
        enquiry = await enquiry_log.open_handoff_for_user(user.id)
    except sqlite3.Error:
        # An unreadable log must not stop the message being answered (urgent advice above all).
        log.exception("could not look up a hand-off for user %s", user.id)
        return
    if enquiry is None or enquiry.chat_id != message.chat.id:
        return
    if booking_step(update, context) is not None:
        return  # mid-booking, what they type is the booking's
    if update.edited_message is None and await enquiry_log.was_relayed(
        "to_staff", message.chat.id, message.message_id
    ):
        raise ApplicationHandlerStop  # handled before a crash: already with staff
    thread = await enquiry_log.staff_thread_for(enquiry.id)
    staff_chat = (thread[0] if thread else None) or services(context).settings.staff_chat_id
    if thread is None or staff_chat is None:
        return
    # The safety gate first: urgent advice (and the urgent alert to staff) as without a hand-off.
    said = message.text or message.caption
    if said:
        reply = services(context).brain.reply(said)
        if reply.kind is Kind.URGENT:
            await deliver(update, context, message, reply)
    try:
        relayed = await _relay(
            context, message, enquiry, staff_chat, thread[1], update.edited_message is not None
        )
    except TelegramError:
        log.warning("%s: could not relay a message from user %s", enquiry.reference, user.id, exc_info=True)
        await message.reply_text(texts.RELAY_FAILED)
        raise ApplicationHandlerStop from None
    for staff_message_id in relayed:
        await enquiry_log.add_relay(
            enquiry.id,
            direction="to_staff",
            staff_chat_id=staff_chat,
            staff_message_id=staff_message_id,
            user_chat_id=message.chat.id,
            user_message_id=message.message_id,
        )
    raise ApplicationHandlerStop


async def _relay(
    context: CallbackContext,
    message: Message,
    enquiry: Enquiry,
    staff_chat: int,
    thread_id: int,
    edited: bool,
) -> list[int]:
    """Copy the user's message into the staff thread under a header; the staff-chat message ids.

    Text is sent as one message (header + text, formatting kept); captioned media are copied with
    the header in the caption; anything else (stickers, locations...) gets a header message with
    the copy as a reply to it."""
    bot = context.bot
    header = (texts.RELAY_HEADER_EDITED if edited else texts.RELAY_HEADER).format(
        name=enquiry.display_name or enquiry.reference, reference=enquiry.reference
    )
    in_thread = ReplyParameters(message_id=thread_id, allow_sending_without_reply=True)
    if message.text:
        kept = [e for e in message.entities if e.type in FORMATTING]
        text, entities = MessageEntity.concatenate((header + "\n", []), (message.text, kept))
        if _utf16(text) <= MAX_TEXT:
            sent = await bot.send_message(staff_chat, text, entities=entities, reply_parameters=in_thread)
            return [sent.message_id]
    elif any(getattr(message, kind) for kind in CAPTIONED):
        kept = [e for e in message.caption_entities if e.type in FORMATTING]
        caption, entities = MessageEntity.concatenate(
            (header + ("\n" if message.caption else ""), []), (message.caption or "", kept)
        )
        if _utf16(caption) <= MAX_CAPTION:
            copied = await bot.copy_message(
                staff_chat,
                message.chat.id,
                message.message_id,
                caption=caption,
                caption_entities=entities,
                reply_parameters=in_thread,
            )
            return [copied.message_id]
    head = await bot.send_message(staff_chat, header, reply_parameters=in_thread)
    copied = await bot.copy_message(
        staff_chat,
        message.chat.id,
        message.message_id,
        reply_parameters=ReplyParameters(message_id=head.message_id, allow_sending_without_reply=True),
    )
    return [head.message_id, copied.message_id]
