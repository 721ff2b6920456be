"""The booking hand-off: a conversation that collects what staff need, with consent, then files it.

States (see booking.mmd): COURSE -> NAME -> CONTACT -> BACKGROUND -> NOTES -> CONSENT -> CONFIRM,
and EDIT back to any of them. Every answer is stored in SQLite before the next prompt, so a restart
or a crash resumes where the person was. Whatever does not fit a step re-asks it; nothing collected
is lost. The safety gate still runs on everything typed here.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

from telegram import (
    Chat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.ext import (
    CallbackContext,
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    TypeHandler,
    filters,
)
from telegram.warnings import PTBUserWarning

from bot import texts
from bot.booking import (
    BACKGROUNDS,
    BookingDraft,
    InvalidInput,
    choose_background,
    choose_course,
    clean_contact,
    clean_name,
    clean_notes,
)
from bot.replies import Kind
from bot.services import services
from handlers import render
from handlers.filing import file_enquiry
from handlers.questions import answer_message, deliver
from knowledge.intents import BookingIntent

COURSE, NAME, CONTACT, BACKGROUND, NOTES, CONSENT, CONFIRM, EDIT = range(8)
NAME_KEY = "booking"  # the conversation's name in persistence
DRAFT = "booking_draft"  # user_data keys
STEP = "booking_step"
EDITING = "booking_editing"
P = "v1:bk:"  # callback data prefix


def _draft(context: CallbackContext) -> BookingDraft:
    return BookingDraft.from_dict(context.user_data.get(DRAFT))


async def _remember(update: Update, context: CallbackContext, draft: BookingDraft, state: int) -> int:
    """Store the draft and the next state, committed, before the person sees the next prompt."""
    context.user_data[DRAFT] = draft.to_dict()
    context.user_data[STEP] = state
    chat, user = update.effective_chat, update.effective_user
    await context.application.persistence.save_now(
        NAME_KEY,
        (chat.id, user.id),
        state,
        user_id=user.id,
        user_data=context.user_data,
        update_id=update.update_id,
    )
    return state


def _buttons(*rows: list[tuple[str, str]]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(label, callback_data=P + data) for label, data in row] for row in rows]
    )


async def _say(update: Update, text: str, markup=None) -> None:
    await update.effective_message.reply_text(text, reply_markup=markup)


async def prompt(update: Update, context: CallbackContext, state: int) -> int:
    """Ask the question of `state` (again)."""
    draft = _draft(context)
    if state == COURSE:
        courses = services(context).brain.knowledge.courses
        await _say(update, texts.BOOK_COURSE, _buttons(*[[(c.name, "c:" + c.id)] for c in courses]))
    elif state == NAME:
        user = update.effective_user
        markup = (
            _buttons([(texts.BOOK_NAME_USE.format(name=user.full_name)[:60], "n:tg")])
            if user.full_name
            else None
        )
        await _say(update, texts.BOOK_NAME, markup)
    elif state == CONTACT:
        keyboard = ReplyKeyboardMarkup(
            [[KeyboardButton(texts.BOOK_SHARE_CONTACT, request_contact=True)]],
            resize_keyboard=True,
            one_time_keyboard=True,
        )
        await _say(update, texts.BOOK_CONTACT, keyboard)
    elif state == BACKGROUND:
        await _say(
            update,
            texts.BOOK_BACKGROUND,
            _buttons([(texts.BOOK_MEDICAL, "b:medical"), (texts.BOOK_NON_MEDICAL, "b:non-medical")]),
        )
    elif state == NOTES:
        await _say(update, texts.BOOK_NOTES, _buttons([(texts.BOOK_NO_NOTES, "notes:none")]))
    elif state == CONSENT:
        await _say(
            update,
            texts.BOOK_CONSENT.format(days=services(context).settings.retention_days),
            _buttons([(texts.BOOK_AGREE, "agree"), (texts.BOOK_DISAGREE, "cancel")]),
        )
    elif state == CONFIRM:
        await _say(
            update,
            texts.BOOK_SUMMARY.format(
                course=draft.course_name,
                name=draft.name,
                contact=draft.contact,
                background=BACKGROUNDS.get(draft.background or "", "-"),
                notes=draft.notes or "-",
            ),
            _buttons(
                [(texts.BOOK_CONFIRM, "confirm")],
                [(texts.BOOK_EDIT, "edit"), (texts.BOOK_CANCEL, "cancel")],
            ),
        )
    elif state == EDIT:
        await _say(
            update,
            texts.BOOK_EDIT_WHICH,
            _buttons(*[[(label, "e:" + field)] for field, label in texts.BOOK_FIELD_LABELS.items()]),
        )
    return state


async def _next(update: Update, context: CallbackContext, draft: BookingDraft, state: int) -> int:
    """Move on: back to the summary when editing one field, else to `state`."""
    if context.user_data.pop(EDITING, False) and draft.consent:
        state = CONFIRM
    await _remember(update, context, draft, state)
    return await prompt(update, context, state)


# -- entry -----------------------------------------------------------------------------------------


async def start(update: Update, context: CallbackContext) -> int:
    """Start a booking request (from /book, the menu, or a message that means "book me in")."""
    if update.callback_query:
        await update.callback_query.answer()
    if update.effective_chat.type != Chat.PRIVATE:
        link = f"https://t.me/{context.bot.username}?start=book"
        await _say(update, texts.BOOK_PRIVATELY.format(link=link))
        return ConversationHandler.END
    context.user_data.pop(EDITING, None)
    await _remember(update, context, BookingDraft(), COURSE)
    return await prompt(update, context, COURSE)


async def from_text(update: Update, context: CallbackContext) -> int | None:
    """Every free-text message passes here: most are questions; some start a booking."""
    reply = await answer_message(update, context)
    if reply is None or reply.kind is not Kind.BOOKING:
        return ConversationHandler.END
    if reply.entry_ids:  # a question came with it: answer that, then offer to book
        answers = services(context).brain.answer_entries(reply.entry_ids)
        await deliver(update, context, update.effective_message, answers)
        await _say(update, texts.BOOK_OFFER, _buttons([(texts.MENU_BOOK, "start")]))
        return ConversationHandler.END
    await _say(update, reply.text)  # the hand-off's opening, and any warning signs the brain added
    return await start(update, context)


# -- steps -----------------------------------------------------------------------------------------


async def chose_course(update: Update, context: CallbackContext) -> int:
    query = update.callback_query
    await query.answer()
    course_id = query.data.removeprefix(P + "c:")
    course = next((c for c in services(context).brain.knowledge.courses if c.id == course_id), None)
    if course is None:
        return await prompt(update, context, COURSE)
    return await _next(
        update, context, _draft(context).with_(course_id=course.id, course_name=course.name), NAME
    )


async def _not_an_answer(update: Update, context: CallbackContext, step: int) -> bool:
    """What was typed at a text step is not an answer to it: a possible complication (the safety
    gate runs mid-booking too) or, at the name and contact steps, a question. Reply to that, keep
    the step, and say so; True if it was handled here."""
    text = update.effective_message.text or ""
    reply = services(context).brain.reply(text) if text else None
    if reply is None:
        return False
    asked = step in (NAME, CONTACT) and ("?" in text or reply.kind is Kind.ANSWER)
    if reply.kind is not Kind.URGENT and not asked:
        return False
    if reply.kind is not Kind.BOOKING:
        await deliver(update, context, update.effective_message, reply)
    await _say(update, texts.BOOK_IN_PROGRESS)
    return True


async def typed_course(update: Update, context: CallbackContext) -> int | None:
    """A course typed rather than tapped ("the pain one"): taken if it names exactly one course."""
    courses = services(context).brain.knowledge.courses
    chosen = choose_course(update.effective_message.text or "", [(c.id, c.name) for c in courses])
    if chosen is None:
        return await off_script(update, context)
    course = next(c for c in courses if c.id == chosen)
    return await _next(
        update, context, _draft(context).with_(course_id=course.id, course_name=course.name), NAME
    )


async def typed_background(update: Update, context: CallbackContext) -> int | None:
    """ "Medical" or "non-medical" typed rather than tapped."""
    background = choose_background(update.effective_message.text or "")
    if background is None:
        return await off_script(update, context)
    return await _next(update, context, _draft(context).with_(background=background), NOTES)


async def _typed(
    update: Update, context: CallbackContext, step: int, parse: Callable[[str], dict[str, str]]
) -> dict[str, str] | int:
    """A text step: the fields parsed from what was typed, or the state to stay in (the step was
    asked again, after answering a question or safety advice, or saying how to put it right)."""
    if await _not_an_answer(update, context, step):
        return await prompt(update, context, step)
    try:
        return parse(update.effective_message.text or "")
    except InvalidInput as problem:
        return await _retry(update, context, problem, step)


async def typed_name(update: Update, context: CallbackContext) -> int:
    fields = await _typed(update, context, NAME, lambda text: {"name": clean_name(text)})
    if isinstance(fields, int):
        return fields
    return await _next(update, context, _draft(context).with_(**fields), CONTACT)


async def telegram_name(update: Update, context: CallbackContext) -> int:
    await update.callback_query.answer()
    name = clean_name(update.effective_user.full_name)
    return await _next(update, context, _draft(context).with_(name=name), CONTACT)


async def typed_contact(update: Update, context: CallbackContext) -> int:
    def parse(text: str) -> dict[str, str]:
        kind, value = clean_contact(text)
        return {"contact_kind": kind, "contact": value}

    fields = await _typed(update, context, CONTACT, parse)
    if isinstance(fields, int):
        return fields
    return await _contact(update, context, fields["contact_kind"], fields["contact"])


async def shared_contact(update: Update, context: CallbackContext) -> int:
    contact = update.effective_message.contact
    if contact.user_id != update.effective_user.id:
        return await _retry(update, context, InvalidInput("not_own_contact"), CONTACT)
    return await _contact(update, context, "telegram", contact.phone_number)


async def _contact(update: Update, context: CallbackContext, kind: str, value: str) -> int:
    await update.effective_message.reply_text("👍", reply_markup=ReplyKeyboardRemove())
    return await _next(update, context, _draft(context).with_(contact=value, contact_kind=kind), BACKGROUND)


async def chose_background(update: Update, context: CallbackContext) -> int:
    await update.callback_query.answer()
    background = update.callback_query.data.removeprefix(P + "b:")
    return await _next(update, context, _draft(context).with_(background=background), NOTES)


async def typed_notes(update: Update, context: CallbackContext) -> int:
    fields = await _typed(update, context, NOTES, lambda text: {"notes": clean_notes(text)})
    if isinstance(fields, int):
        return fields
    return await _next(update, context, _draft(context).with_(**fields), CONSENT)


async def no_notes(update: Update, context: CallbackContext) -> int:
    await update.callback_query.answer()
    return await _next(update, context, _draft(context).with_(notes=""), CONSENT)


async def agreed(update: Update, context: CallbackContext) -> int:
    """The consent given: tapped, or typed ("yes", "I agree")."""
    if update.callback_query:
        await update.callback_query.answer()
    return await _next(update, context, _draft(context).with_(consent=True), CONFIRM)


async def edit(update: Update, context: CallbackContext) -> int:
    await update.callback_query.answer()
    await _remember(update, context, _draft(context), EDIT)
    return await prompt(update, context, EDIT)


async def edit_field(update: Update, context: CallbackContext) -> int:
    await update.callback_query.answer()
    field = update.callback_query.data.removeprefix(P + "e:")
    state = {"course": COURSE, "name": NAME, "contact": CONTACT, "background": BACKGROUND}.get(field, NOTES)
    context.user_data[EDITING] = True
    await _remember(update, context, _draft(context), state)
    return await prompt(update, context, state)


async def confirm(update: Update, context: CallbackContext) -> int:
    """File the request: stored first; only then is the person told it was sent. Tapped, or typed
    ("yes send it")."""
    if update.callback_query:
        await update.callback_query.answer()
    draft = _draft(context)
    summary = f"Booking request: {draft.course_name}"
    enquiry = await file_enquiry(update, context, Kind.BOOKING.value, summary, draft.details())
    if enquiry is None:
        await _say(update, texts.BOOK_NOT_SAVED)
        return CONFIRM
    kind = {"email": "email", "phone": "phone", "telegram": "phone"}.get(draft.contact_kind or "", "message")
    courses = services(context).brain.knowledge.courses
    after = next((f" {c.after_booking}" for c in courses if c.id == draft.course_id and c.after_booking), "")
    done = texts.BOOK_DONE.format(
        name=draft.name, reference=enquiry.reference, contact_kind=kind, after_booking=after
    )
    await _say(update, done)
    return await _finish(update, context)


async def cancel(update: Update, context: CallbackContext) -> int:
    """Stop the booking; nothing is sent."""
    if update.callback_query:
        await update.callback_query.answer()
    declined = (
        update.callback_query is not None
        and not _draft(context).consent
        and update.callback_query.data == P + "cancel"
    )
    await _say(update, texts.BOOK_DECLINED if declined else texts.BOOK_CANCELLED, ReplyKeyboardRemove())
    return await _finish(update, context)


async def _finish(update: Update, context: CallbackContext) -> int:
    context.user_data.pop(DRAFT, None)
    context.user_data.pop(EDITING, None)
    await context.application.persistence.save_now(
        NAME_KEY,
        (update.effective_chat.id, update.effective_user.id),
        None,
        user_id=update.effective_user.id,
        user_data=context.user_data,
        update_id=update.update_id,
    )
    return ConversationHandler.END


async def expired(update: Update, context: CallbackContext) -> None:
    """The person walked away: close politely, and forget the unfinished draft."""
    await _finish(update, context)
    await context.bot.send_message(
        update.effective_chat.id, texts.BOOK_EXPIRED, reply_markup=ReplyKeyboardRemove()
    )


async def _retry(update: Update, context: CallbackContext, problem: InvalidInput, state: int) -> int:
    limit = 100 if state == NAME else 1000
    await _say(update, texts.BOOK_RETRY.get(str(problem), texts.BOOK_RETRY["text"]).format(limit=limit))
    return state


async def off_script(update: Update, context: CallbackContext) -> int | None:
    """Anything that does not fit the step (a sticker, /start, a stray button): ask it again."""
    message = update.effective_message
    state = context.user_data.get(STEP)
    if update.callback_query:
        await update.callback_query.answer(texts.BOOK_RETRY["choose"])
    elif (
        message is not None
        and message.text
        and not message.text.startswith("/")  # a command mid-flow is not a question
        and await _not_an_answer(update, context, NAME)
    ):
        pass  # answered (safety advice, or the question asked); the step is asked again below
    elif message is not None:
        await _say(update, texts.BOOK_IN_PROGRESS)
    return await prompt(update, context, state) if isinstance(state, int) else None


class _Means(filters.MessageFilter):
    """A text message that `means` holds for ("never mind" means stop)."""

    def __init__(self, means: Callable[[str], bool]) -> None:
        super().__init__()
        self.means = means

    def filter(self, message: Message) -> bool:
        return bool(message.text) and self.means(message.text)


def conversation(timeout_minutes: int, intent: BookingIntent) -> ConversationHandler:
    """The booking ConversationHandler. Its entry points see every free-text message, because a
    question may turn out to be a booking request; those that are not end at once. At any step,
    a message meaning "stop" cancels it; at the consent and the summary, one meaning "yes" is
    taken as the button."""
    text = filters.TEXT & ~filters.COMMAND
    stop = MessageHandler(text & _Means(intent.wants_to_stop), cancel)
    yes = text & _Means(intent.agrees)
    states = {
        COURSE: [
            CallbackQueryHandler(chose_course, pattern=f"^{P}c:"),
            stop,
            MessageHandler(text, typed_course),
        ],
        NAME: [
            stop,
            MessageHandler(text, typed_name),
            CallbackQueryHandler(telegram_name, pattern=f"^{P}n:tg$"),
        ],
        CONTACT: [
            MessageHandler(filters.CONTACT, shared_contact),
            stop,
            MessageHandler(text, typed_contact),
        ],
        BACKGROUND: [
            CallbackQueryHandler(chose_background, pattern=f"^{P}b:"),
            stop,
            MessageHandler(text, typed_background),
        ],
        NOTES: [
            stop,
            MessageHandler(text, typed_notes),
            CallbackQueryHandler(no_notes, pattern=f"^{P}notes:none$"),
        ],
        CONSENT: [CallbackQueryHandler(agreed, pattern=f"^{P}agree$"), MessageHandler(yes, agreed)],
        CONFIRM: [
            CallbackQueryHandler(confirm, pattern=f"^{P}confirm$"),
            MessageHandler(yes, confirm),
            CallbackQueryHandler(edit, pattern=f"^{P}edit$"),
        ],
        EDIT: [CallbackQueryHandler(edit_field, pattern=f"^{P}e:")],
        ConversationHandler.TIMEOUT: [TypeHandler(Update, expired)],
    }
    with warnings.catch_warnings():
        # per_message=False is deliberate: a person has one booking at a time, tracked per chat.
        warnings.filterwarnings("ignore", message="If 'per_message=False'", category=PTBUserWarning)
        return ConversationHandler(
            entry_points=[
                CommandHandler("book", start),
                CommandHandler("start", start, filters.Regex(r"^/start book$")),
                CallbackQueryHandler(start, pattern=f"^(?:{render.MENU}book|{P}start)$"),
                MessageHandler(text, from_text),
            ],
            states=states,
            fallbacks=[
                CommandHandler("cancel", cancel),
                stop,
                CallbackQueryHandler(cancel, pattern=f"^{P}cancel$"),
                MessageHandler(filters.ALL, off_script),
                CallbackQueryHandler(off_script),
            ],
            name=NAME_KEY,
            persistent=True,
            allow_reentry=False,
            conversation_timeout=timeout_minutes * 60,
        )
