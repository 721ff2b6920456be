"""The answer each person got last, so that a follow-up ("and for members?") can lean on it.

It sits in chat_data, which is never written to disk (see bot.app): per person, for
FOLLOW_UP_MINUTES only, and gone on a restart or /forgetme. The brain decides what a follow-up
means; this module only remembers which answer came last.
"""

from __future__ import annotations

import time

from telegram import Update
from telegram.ext import CallbackContext

from bot.replies import Kind, Reply

FOLLOW_UP_MINUTES = 30  # a message this long after an answer is read on its own
LAST_ANSWER = "last_answer"  # chat_data key: {user id: (entry id, when, in seconds since the epoch)}


def topic(update: Update, context: CallbackContext) -> str | None:
    """The entry last answered to this person in this chat, if it is recent enough to follow up."""
    recent = _recent(update, context)
    user = update.effective_user
    last = recent.get(user.id) if recent is not None and user is not None else None
    return last[0] if last is not None else None


def remember(update: Update, context: CallbackContext, reply: Reply) -> None:
    """An answer becomes what a follow-up leans on; urgent advice ends the thread."""
    recent = _recent(update, context)
    user = update.effective_user
    if recent is None or user is None:
        return
    if reply.topic is not None:
        recent[user.id] = (reply.topic, time.time())
    elif reply.kind is Kind.URGENT:
        recent.pop(user.id, None)


def _recent(update: Update, context: CallbackContext) -> dict[int, tuple[str, float]] | None:
    """This chat's recent answers, the stale ones dropped."""
    if context.chat_data is None:
        return None
    recent = context.chat_data.setdefault(LAST_ANSWER, {})
    cutoff = time.time() - FOLLOW_UP_MINUTES * 60
    for user_id in [u for u, (_, at) in recent.items() if at < cutoff]:
        del recent[user_id]
    return recent
