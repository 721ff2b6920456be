"""What came just before each person's message, so that a follow-up can lean on it: "and for
members?" after the price, "it's spreading now" after "bit swollen since my meso".

It sits in chat_data, which is never written to disk (see bot.app): per person, for
FOLLOW_UP_MINUTES only (a job sweeps older ones away), and gone on a restart or /forgetme.
The brain decides what a follow-up means (bot.brain.Before); this module only keeps it.
"""

from __future__ import annotations

import time
from dataclasses import replace

from telegram import Update
from telegram.ext import Application, CallbackContext

from bot.brain import Before
from bot.replies import Reply

FOLLOW_UP_MINUTES = 30  # a message this long after the one before is read on its own
RECENT = "recent"  # chat_data key: {user id: (Before, when, in seconds since the epoch)}


def before(update: Update, context: CallbackContext) -> Before:
    """What this person said and was answered just before, in this chat, if recent enough."""
    recent = _recent(update, context)
    user = update.effective_user
    kept = recent.get(user.id) if recent is not None and user is not None else None
    return kept[0] if kept is not None else Before()


def said(update: Update, context: CallbackContext, earlier: Before, message: str, reply: Reply) -> None:
    """A message the person typed after `earlier`, and the brain's reply to it."""
    _keep(update, context, earlier.then(message, reply))


def answered(update: Update, context: CallbackContext, reply: Reply) -> None:
    """An answer given without a message typed (a button pressed): a follow-up leans on it."""
    _keep(update, context, replace(before(update, context), topic=reply.topic))


def _keep(update: Update, context: CallbackContext, kept: Before) -> None:
    recent = _recent(update, context)
    user = update.effective_user
    if recent is not None and user is not None:
        recent[user.id] = (kept, time.time())


async def forget_stale(context: CallbackContext | Application) -> int:
    """A job: drop what people said more than FOLLOW_UP_MINUTES ago in every chat, also where
    nobody has written since. Returns how many were dropped."""
    application = context if isinstance(context, Application) else context.application
    return sum(_drop_stale(data.get(RECENT, {})) for data in application.chat_data.values())


def _recent(update: Update, context: CallbackContext) -> dict[int, tuple[Before, float]] | None:
    """This chat's recent messages, the stale ones dropped."""
    if context.chat_data is None:
        return None
    recent = context.chat_data.setdefault(RECENT, {})
    _drop_stale(recent)
    return recent


def _drop_stale(recent: dict[int, tuple[Before, float]]) -> int:
    cutoff = time.time() - FOLLOW_UP_MINUTES * 60
    stale = [user_id for user_id, (_, at) in recent.items() if at < cutoff]
    for user_id in stale:
        del recent[user_id]
    return len(stale)
