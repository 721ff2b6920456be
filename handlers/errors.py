"""The last line of defence: log the error, keep the person's message for staff, and tell them
something useful, never a traceback."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import BadRequest, Forbidden, NetworkError
from telegram.ext import CallbackContext

from bot import texts
from bot.enquiries import Enquiry
from bot.replies import Kind
from bot.services import services
from handlers.filing import file_enquiry
from handlers.groups import addressed_text
from knowledge.safety import SafetyFinding

log = logging.getLogger(__name__)


async def on_error(update: object, context: CallbackContext) -> None:
    """Log the error and answer the person, if there is one to answer.

    PTB marks the update handled once this returns, so a message the bot failed on would be gone
    for good: it is filed for staff first, and the apology says so. A message describing a
    complication still gets its safety advice, whatever went wrong on the way."""
    error = context.error
    if isinstance(error, Forbidden):
        log.warning("Telegram: %s", error)  # the user blocked the bot: nothing can reach them
        return
    if isinstance(error, BadRequest) and "message is not modified" in error.message.lower():
        log.info("Telegram: %s", error)  # a double tap editing what the first tap already changed
        return
    if isinstance(error, NetworkError) and not isinstance(error, BadRequest):
        log.warning("Telegram: %s", error)  # a connection that failed or timed out, not a bug
    else:
        log.error("error while handling an update", exc_info=error)
    if not isinstance(update, Update) or update.effective_chat is None:
        return
    text = _their_text(update, context)
    finding = _red_flags(context, text)
    enquiry = await _keep(update, context, text, finding, error) if text else None
    if finding is not None:
        reply = f"{finding.advice}\n{texts.PASSED_ON if enquiry else texts.NOT_PASSED_ON}"
    elif enquiry is not None:
        reply = texts.ERROR_PASSED_ON.format(reference=enquiry.reference)
    else:
        reply = texts.ERROR
    try:
        await context.bot.send_message(update.effective_chat.id, reply)
    except Exception:  # noqa: BLE001 - nothing more can be done; it is logged above
        log.warning("could not tell the user about the error", exc_info=True)


def _their_text(update: Update, context: CallbackContext) -> str | None:
    """The text a person sent the bot: not a button, a photo, group chatter or the staff chat's own."""
    message = update.message or update.edited_message
    if message is None or update.effective_chat.id == services(context).settings.staff_chat_id:
        return None
    text = addressed_text(message, context.bot)
    return text.strip() if text and text.strip() else None


def _red_flags(context: CallbackContext, text: str | None) -> SafetyFinding | None:
    if text is None:
        return None
    try:
        return services(context).brain.safety.check(text)
    except Exception:  # noqa: BLE001 - the error being handled may be this very one
        log.exception("the safety gate failed on a message")
        return None


async def _keep(
    update: Update, context: CallbackContext, text: str, finding: SafetyFinding | None, error: object
) -> Enquiry | None:
    """The enquiry holding the message: the one its handler filed before failing, or a new one.
    None when the log cannot be reached."""
    try:
        filed = await services(context).log.for_update(update.update_id)
    except Exception:  # noqa: BLE001 - the person must still get an answer
        log.exception("could not look up the enquiry log")
        return None
    if filed is not None:
        return filed
    details: dict = {"bot_error": type(error).__name__}
    if finding is not None:
        details["red_flags"] = list(finding.flags)
    kind = Kind.URGENT if finding is not None else Kind.FALLBACK
    return await file_enquiry(update, context, kind.value, text, details)
