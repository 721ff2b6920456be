"""Free-text questions, edited questions and the FAQ's buttons: parse, ask the brain, render."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import replace

from telegram import InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatType
from telegram.error import BadRequest
from telegram.ext import CallbackContext

from bot import texts
from bot.replies import Kind, Reply
from bot.services import services
from handlers import follow_up, render
from handlers.filing import await_choice, choice_made, file_enquiry
from handlers.groups import addressed_text

log = logging.getLogger(__name__)

DISOWNED_EXCERPT = 200  # characters of a disowned answer shown to staff beside the question
SAID_BEFORE_EXCERPT = 300  # characters of the message before an enquiry, shown with it


async def answer_message(update: Update, context: CallbackContext) -> Reply | None:
    """Answer a question typed in a private chat, or addressed to the bot in a group.

    A booking request is returned undelivered: the booking conversation takes it from there."""
    message = update.effective_message
    text = addressed_text(message, context.bot)
    if text is None:
        return None
    if update.edited_message is not None:
        await message.reply_text(texts.EDITED)
    earlier = follow_up.before(update, context)
    reply = services(context).brain.reply(text, earlier)
    follow_up.said(update, context, earlier, text, reply)
    if reply.kind is not Kind.BOOKING:
        await deliver(update, context, message, reply, said_before=earlier.message)
    return reply


async def deliver(
    update: Update, context: CallbackContext, message: Message, reply: Reply, *, said_before: str = ""
) -> None:
    """Send a reply; enquiries are stored before the user is told they were passed on. What the
    person `said_before` goes with an enquiry: "and is there parking?" means little alone."""
    if reply.for_staff:
        details = _details(reply, said_before)
        enquiry = await file_enquiry(update, context, reply.kind.value, reply.question, details)
        if enquiry is None:
            reply = _not_saved(reply)
    if reply.kind is Kind.SUGGEST:  # never for staff at once: only if no choice is made
        await await_choice(update, context, message, _details(reply, said_before))
    elif update.edited_message is not None:  # the question as first sent may be waiting
        await choice_made(context, message)
    # An answer to a question typed in private can be disowned ("Not what I asked"): a confident
    # answer that missed the point then reaches staff like any unanswered question.
    disown = reply.kind is Kind.ANSWER and message.chat.type == ChatType.PRIVATE
    await render.send(message, reply, quote=reply.kind is Kind.SUGGEST or disown, disown=disown)
    if reply.kind is Kind.ANSWER:
        await _count(context, reply.entry_ids)


async def choose_entry(update: Update, context: CallbackContext) -> None:
    """Answer the FAQ entry behind a "did you mean" or follow-up button."""
    query = update.callback_query
    entry_id = query.data.removeprefix(render.FAQ)
    brain = services(context).brain
    try:
        reply = brain.answer_entries([entry_id])
    except KeyError:  # a button from an older FAQ whose entry has since gone
        await query.answer()
        await query.message.reply_text(texts.NO_QUESTION)
        return
    follow_up.answered(update, context, reply)
    # Callback queries must be answered, even when there is nothing to show in the pop-up.
    await query.answer()
    await choice_made(context, query.message.reply_to_message)
    await render.send(query.message, reply)
    await _count(context, [entry_id])


async def none_of_these(update: Update, context: CallbackContext) -> None:
    """None of the suggestions fit: the original question goes to staff."""
    await _pass_on(update, context, {}, None)


async def not_what_i_asked(update: Update, context: CallbackContext) -> None:
    """The answer missed the question: it goes to staff, with the answer it got."""
    message = update.callback_query.message
    answered = (message.text or "").split("\n", 1)[0]
    details = {"bot_answered": answered[:DISOWNED_EXCERPT]}
    await _pass_on(update, context, details, render.without_disown(message.reply_markup))


async def _pass_on(
    update: Update, context: CallbackContext, details: dict, buttons_left: InlineKeyboardMarkup | None
) -> None:
    """File the question the pressed message answers (it quotes it) for staff, and say so.
    Once it is stored, the pressed message keeps only `buttons_left`; until then, the button
    stays for another try."""
    query = update.callback_query
    await query.answer()
    asked = query.message.reply_to_message
    question = (asked.text or asked.caption or "") if asked else ""
    if not question:
        await query.message.reply_text(texts.ASK_PROMPT)
        return
    enquiry = await file_enquiry(update, context, Kind.FALLBACK.value, question, details, asked.message_id)
    if enquiry is not None:
        await choice_made(context, asked)
        try:
            await query.edit_message_reply_markup(buttons_left)
        except BadRequest:  # a double tap: the first tap took the button away already
            log.info("the pressed message's buttons were already updated")
    await query.message.reply_text(texts.NONE_OF_THESE_REPLY if enquiry else texts.FALLBACK_NOT_SAVED)


async def _count(context: CallbackContext, entry_ids: Sequence[str]) -> None:
    """Count answers for the curators, after the answer is sent: a log that cannot be written
    never keeps an answer from the person who asked."""
    try:
        for entry_id in entry_ids:
            await services(context).log.count_answer(entry_id)
    except sqlite3.Error:
        log.exception("could not count answers from %s", ", ".join(entry_ids))


def _details(reply: Reply, said_before: str) -> dict:
    details: dict = {}
    if reply.red_flags:
        details["red_flags"] = list(reply.red_flags)
    if reply.suggestions:
        details["suggested"] = [c.entry_id for c in reply.suggestions]
    if said_before:
        details["said_before"] = said_before[:SAID_BEFORE_EXCERPT]
    return details


def _not_saved(reply: Reply) -> Reply:
    """Storing failed: say so honestly. Safety advice is still given in full, and so is what
    follows an "I don't know" (the warning signs, the nearby answers and their buttons)."""
    if reply.text.endswith(texts.PASSED_ON):
        text = reply.text.removesuffix(texts.PASSED_ON) + texts.NOT_PASSED_ON
    else:
        _, _, rest = reply.text.partition("\n\n")
        text = f"{texts.FALLBACK_NOT_SAVED}\n\n{rest}" if rest else texts.FALLBACK_NOT_SAVED
    return replace(reply, text=text)


async def stale_button(update: Update, context: CallbackContext) -> None:
    """A button this version does not know (sent before a deploy): say so instead of spinning."""
    await update.callback_query.answer(texts.STALE_BUTTON, show_alert=True)
