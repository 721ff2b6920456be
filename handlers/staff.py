"""Staff: the Take / Done buttons on enquiry posts, and the staff commands.

Who is staff: a user in MESOBOT_STAFF_IDS. For the buttons only, when that list is empty, anyone
pressing them in the staff chat (MESOBOT_STAFF_CHAT_ID) counts. The commands answer staff in a
private chat with the bot or in the staff chat; to anyone else they do not exist: the command
handlers' filter does not match, so the update goes on to the normal unknown-command reply (or
wherever an unknown command goes at that moment), and `refused` logs the attempt.
"""

from __future__ import annotations

import io
import logging
import math

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    MaybeInaccessibleMessage,
    Message,
    Update,
    User,
)
from telegram.error import Forbidden, TelegramError
from telegram.ext import CallbackContext, filters

from bot import texts
from bot.enquiries import Enquiry, EnquiryNotFound, format_reference, parse_reference, utc_now
from bot.enquiries_cli import write_csv
from bot.services import services
from bot.settings import Settings
from handlers.filing import DONE, TAKE, enquirer, post_buttons, post_text

log = logging.getLogger(__name__)

COMMANDS: tuple[str, ...] = ("enquiries", "enquiry", "done", "note", "export")
PAGE = "v1:enq:p:"  # + page number: the Prev / Next buttons of /enquiries
BUTTONS = f"^(?:{TAKE}|{DONE})\\d+$"
PAGES = f"^{PAGE}\\d+$"
PAGE_SIZE = 10
TEXT_WIDTH = 80


# -- who is staff ------------------------------------------------------------------------------


def command_filter(settings: Settings) -> filters.BaseFilter:
    """Staff ids, in a private chat or the staff chat: where the staff commands are answered."""
    where = filters.ChatType.PRIVATE
    if settings.staff_chat_id is not None:
        where = where | filters.Chat(chat_id=settings.staff_chat_id)
    return filters.User(user_id=settings.staff_ids) & where


def is_staff(settings: Settings, user: User | None) -> bool:
    return user is not None and user.id in settings.staff_ids


def may_press(settings: Settings, user: User | None, chat_id: int | None) -> bool:
    """Staff ids if there are any; else whoever presses in the staff chat."""
    if settings.staff_ids:
        return is_staff(settings, user)
    return settings.staff_chat_id is not None and chat_id == settings.staff_chat_id


def label(user: User) -> str:
    """How a staff member is recorded in handled_by and notes, and shown on posts."""
    return f"{user.full_name} (@{user.username})" if user.username else f"{user.full_name} (id {user.id})"


async def refused(update: Update, context: CallbackContext) -> None:
    """A staff command from someone else: logged here, answered as any unknown command is."""
    message, user = update.effective_message, update.effective_user
    command = (message.text or "").split()[0] if message and message.text else "?"
    log.warning(
        "refused staff command %s from user %s in chat %s",
        command,
        user.id if user else None,
        update.effective_chat.id if update.effective_chat else None,
    )


# -- taking and closing, shared by the buttons, /done and the relay ---------------------------


async def tell_user(context: CallbackContext, enquiry: Enquiry, text: str) -> bool:
    """Tell the enquirer (in the chat they asked in); False if they could not be reached."""
    if not enquiry.chat_id:
        return False
    try:
        await context.bot.send_message(enquiry.chat_id, text.format(reference=enquiry.reference))
    except Forbidden as error:
        log.info("could not tell user %s about %s: %s", enquiry.user_id, enquiry.reference, error)
        return False
    except TelegramError:
        log.warning("could not tell user %s about %s", enquiry.user_id, enquiry.reference, exc_info=True)
        return False
    return True


async def refresh_post(
    context: CallbackContext, enquiry: Enquiry, pressed: MaybeInaccessibleMessage | None = None
) -> None:
    """Show on the enquiry's staff post who has it (Done button kept) or who closed it (none).
    `pressed`, if another message (a "closed" notice's Take button), loses its button."""
    if enquiry.status == "in_progress":
        status = texts.STAFF_TAKEN_LINE.format(who=enquiry.handled_by)
        markup = post_buttons(enquiry, take=False)
    elif enquiry.status == "done":
        status, markup = texts.STAFF_CLOSED_LINE.format(who=enquiry.handled_by), None
    else:
        status, markup = None, post_buttons(enquiry)
    text = post_text(enquiry, status)
    chat_id = enquiry.staff_chat_id or services(context).settings.staff_chat_id
    post = (chat_id, enquiry.staff_message_id)
    pressed_key = (pressed.chat.id, pressed.message_id) if pressed is not None else None
    if enquiry.staff_message_id is not None and chat_id is not None:
        unchanged = (
            pressed_key == post
            and isinstance(pressed, Message)
            and pressed.text == text
            and pressed.reply_markup == markup
        )
        if not unchanged:
            try:
                await context.bot.edit_message_text(
                    text, chat_id=chat_id, message_id=enquiry.staff_message_id, reply_markup=markup
                )
            except TelegramError:
                log.warning("could not update the staff post of %s", enquiry.reference, exc_info=True)
    if isinstance(pressed, Message) and pressed_key != post and pressed.reply_markup:
        await _drop_buttons(pressed)


async def _drop_buttons(message: Message) -> None:
    try:
        await message.edit_reply_markup(None)
    except TelegramError:
        log.warning("could not remove the buttons of message %s", message.message_id, exc_info=True)


async def take(
    context: CallbackContext, enquiry_id: int, staff: User, pressed: MaybeInaccessibleMessage | None = None
) -> str:
    """Staff member takes (or reopens, or takes over) an enquiry; returns a line for them.
    The user is told when it was not already being handled. EnquiryNotFound if it is gone."""
    enquiry_log = services(context).log
    before = await enquiry_log.get(enquiry_id)
    who = label(staff)
    if before.status == "in_progress" and before.handled_by == who:
        if isinstance(pressed, Message) and (pressed.chat.id, pressed.message_id) != (
            before.staff_chat_id,
            before.staff_message_id,
        ):
            await _drop_buttons(pressed)
        return texts.STAFF_ALREADY_YOURS.format(reference=before.reference)
    after = await enquiry_log.take(enquiry_id, who)
    log.info("%s taken by %s", after.reference, who)
    await refresh_post(context, after, pressed)
    reply = texts.STAFF_TOOK.format(reference=after.reference)
    if before.status != "in_progress" and not await tell_user(context, after, texts.USER_TAKEN):
        reply += texts.STAFF_USER_NOT_TOLD
    return reply


async def close(
    context: CallbackContext, enquiry_id: int, staff: User, pressed: MaybeInaccessibleMessage | None = None
) -> str:
    """Mark an enquiry done, show it on the post and tell the user; returns a line for staff."""
    enquiry_log = services(context).log
    before = await enquiry_log.get(enquiry_id)
    if before.status == "done":
        return texts.STAFF_ALREADY_CLOSED.format(reference=before.reference, who=before.handled_by or "?")
    after = await enquiry_log.set_status(enquiry_id, "done", label(staff))
    log.info("%s closed by %s", after.reference, after.handled_by)
    await refresh_post(context, after, pressed)
    reply = texts.STAFF_CLOSED.format(reference=after.reference)
    if not await tell_user(context, after, texts.USER_CLOSED):
        reply += texts.STAFF_USER_NOT_TOLD
    return reply


async def take_or_done(update: Update, context: CallbackContext) -> None:
    """The Take / Done buttons (v1:take:<id>, v1:done:<id>)."""
    query = update.callback_query
    settings = services(context).settings
    action, _, number = query.data.removeprefix("v1:").partition(":")
    chat_id = query.message.chat.id if query.message else None
    if not may_press(settings, query.from_user, chat_id):
        log.warning(
            "refused %s of enquiry %s by user %s in chat %s", action, number, query.from_user.id, chat_id
        )
        await query.answer(texts.STAFF_ONLY, show_alert=True)
        return
    answer = None
    try:
        act = take if action == "take" else close
        answer = await act(context, int(number), query.from_user, query.message)
    except EnquiryNotFound:
        answer = texts.STAFF_GONE
        if isinstance(query.message, Message) and query.message.reply_markup:
            await _drop_buttons(query.message)
    finally:
        # Always answered, even if the work failed (the error handler then reports it).
        await query.answer(answer, show_alert=answer == texts.STAFF_GONE)


# -- the commands ------------------------------------------------------------------------------


def _clip(text: str, width: int = TEXT_WIDTH) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _when(stamp: str | None) -> str:
    """2025-05-01T10:00:00+00:00 -> 2025-05-01 10:00 UTC (stored times are UTC)."""
    return stamp.replace("T", " ")[:16] + " UTC" if stamp else "-"


def _reference(text: str) -> int | str:
    """The enquiry id in `text`, or the line to answer when it is not a reference."""
    try:
        return parse_reference(text)
    except ValueError:
        return texts.STAFF_BAD_REFERENCE.format(text=_clip(text, 30))


async def _page(context: CallbackContext, page: int) -> tuple[str, InlineKeyboardMarkup | None]:
    """A page of open enquiries, newest first, with Prev / Next buttons."""
    enquiry_log = services(context).log
    total = await enquiry_log.count("open")
    if total == 0:
        return texts.STAFF_LIST_EMPTY, None
    pages = math.ceil(total / PAGE_SIZE)
    page = min(max(page, 1), pages)
    lines = [texts.STAFF_LIST_HEADER.format(page=page, pages=pages, total=total)]
    for enquiry in await enquiry_log.list("open", limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE):
        handler = texts.STAFF_LIST_HANDLER.format(who=enquiry.handled_by) if enquiry.handled_by else ""
        lines.append(
            texts.STAFF_LIST_ITEM.format(
                reference=enquiry.reference,
                kind=texts.STAFF_KIND_SHORT.get(enquiry.kind, enquiry.kind),
                status=texts.STAFF_STATUS.get(enquiry.status, enquiry.status),
                handler=handler,
                who=_clip(enquirer(enquiry), 40),
                text=_clip(enquiry.text or "-"),
            )
        )
    row = []
    if page > 1:
        row.append(InlineKeyboardButton(texts.STAFF_PREV, callback_data=f"{PAGE}{page - 1}"))
    if page < pages:
        row.append(InlineKeyboardButton(texts.STAFF_NEXT, callback_data=f"{PAGE}{page + 1}"))
    return "\n\n".join(lines)[:4096], InlineKeyboardMarkup([row]) if row else None


async def list_enquiries(update: Update, context: CallbackContext) -> None:
    """/enquiries [page]: the open enquiries, newest first, 10 a page."""
    args = context.args or []
    if len(args) > 1 or (args and (not args[0].isdigit() or int(args[0]) == 0)):
        await update.effective_message.reply_text(texts.STAFF_USAGE["enquiries"])
        return
    text, markup = await _page(context, int(args[0]) if args else 1)
    await update.effective_message.reply_text(text, reply_markup=markup)


async def turn_page(update: Update, context: CallbackContext) -> None:
    """The Prev / Next buttons of /enquiries: the message is edited to the asked page."""
    query = update.callback_query
    if not is_staff(services(context).settings, query.from_user):
        log.warning("refused enquiries page button for user %s", query.from_user.id)
        await query.answer(texts.STAFF_ONLY, show_alert=True)
        return
    try:
        text, markup = await _page(context, int(query.data.removeprefix(PAGE)))
        if isinstance(query.message, Message) and (query.message.text, query.message.reply_markup) != (
            text,
            markup,
        ):
            await query.edit_message_text(text, reply_markup=markup)
    finally:
        await query.answer()


async def show_enquiry(update: Update, context: CallbackContext) -> None:
    """/enquiry N: one enquiry in full."""
    message = update.effective_message
    if len(context.args or []) != 1:
        await message.reply_text(texts.STAFF_USAGE["enquiry"])
        return
    enquiry_id = _reference(context.args[0])
    if isinstance(enquiry_id, str):
        await message.reply_text(enquiry_id)
        return
    enquiry_log = services(context).log
    enquiry = await enquiry_log.find(enquiry_id)
    if enquiry is None:
        await message.reply_text(texts.STAFF_NOT_FOUND.format(reference=format_reference(enquiry_id)))
        return
    relays = await enquiry_log.relays_for(enquiry.id)
    handled = texts.STAFF_NOBODY
    if enquiry.handled_by:
        handled = f"{enquiry.handled_by}, {_when(enquiry.handled_at)}"
    lines = [
        texts.STAFF_DETAIL.format(
            reference=enquiry.reference,
            kind=texts.STAFF_KIND_SHORT.get(enquiry.kind, enquiry.kind),
            status=texts.STAFF_STATUS.get(enquiry.status, enquiry.status),
            who=enquirer(enquiry),
            created=_when(enquiry.created_at),
            handled=handled,
            to_user=sum(r["direction"] == "to_user" for r in relays),
            to_staff=sum(r["direction"] == "to_staff" for r in relays),
            text=enquiry.text or "-",
        )
    ]
    if enquiry.details:
        lines.append("\n" + texts.STAFF_DETAIL_DETAILS)
        for key, value in enquiry.details.items():
            shown = ", ".join(map(str, value)) if isinstance(value, list) else value
            lines.append(f"• {key.replace('_', ' ')}: {shown}")
    if enquiry.staff_notes:
        lines.append("\n" + texts.STAFF_DETAIL_NOTES)
        lines.extend(
            texts.STAFF_DETAIL_NOTE.format(
                at=_when(note.get("at")), by=note.get("by", "?"), text=note.get("text", "")
            )
            for note in enquiry.staff_notes
        )
    text = "\n".join(lines)
    await message.reply_text(text if len(text) <= 4096 else text[:4095] + "…")


async def done(update: Update, context: CallbackContext) -> None:
    """/done N: close an enquiry, as its Done button does."""
    message = update.effective_message
    if len(context.args or []) != 1:
        await message.reply_text(texts.STAFF_USAGE["done"])
        return
    enquiry_id = _reference(context.args[0])
    if isinstance(enquiry_id, str):
        await message.reply_text(enquiry_id)
        return
    try:
        reply = await close(context, enquiry_id, update.effective_user)
    except EnquiryNotFound:
        reply = texts.STAFF_NOT_FOUND.format(reference=format_reference(enquiry_id))
    await message.reply_text(reply)


async def note(update: Update, context: CallbackContext) -> None:
    """/note N text: a staff note on the enquiry, stored with who and when."""
    message = update.effective_message
    parts = (message.text or "").split(maxsplit=2)
    if len(parts) < 3 or not parts[2].strip():
        await message.reply_text(texts.STAFF_USAGE["note"])
        return
    enquiry_id = _reference(parts[1])
    if isinstance(enquiry_id, str):
        await message.reply_text(enquiry_id)
        return
    try:
        enquiry = await services(context).log.add_note(enquiry_id, label(update.effective_user), parts[2])
    except EnquiryNotFound:
        await message.reply_text(texts.STAFF_NOT_FOUND.format(reference=format_reference(enquiry_id)))
        return
    await message.reply_text(texts.STAFF_NOTE_ADDED.format(reference=enquiry.reference))


async def export(update: Update, context: CallbackContext) -> None:
    """/export: every enquiry as a CSV document (the CLI's writer, formula-safe)."""
    rows = await services(context).log.export_rows()
    buffer = io.StringIO(newline="")
    write_csv(buffer, rows)
    now = utc_now()
    log.info("enquiry log exported by user %s (%d rows)", update.effective_user.id, len(rows))
    await update.effective_message.reply_document(
        # utf-8-sig: Excel then shows £ and accents right; csv readers skip the BOM.
        document=buffer.getvalue().encode("utf-8-sig"),
        filename=f"enquiries-{now:%Y-%m-%d}.csv",
        caption=texts.STAFF_EXPORT_CAPTION.format(count=len(rows), when=f"{now:%Y-%m-%d %H:%M}"),
    )
