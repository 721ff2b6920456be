"""Assemble the PTB Application: services, persistence, handlers; and run it with long polling."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from telegram import BotCommand, Update
from telegram.error import BadRequest
from telegram.ext import Application, ApplicationBuilder, Defaults, PersistenceInput
from telegram.request import BaseRequest

import handlers
from bot import texts
from bot.brain import Brain
from bot.enquiries import AsyncEnquiryLog
from bot.inbox import Inbox, InboxBot
from bot.persistence import SQLitePersistence
from bot.services import Services, services
from bot.settings import Settings
from bot.transport import AiohttpRequest
from bot.updates import PerChatUpdateProcessor
from handlers import filing, follow_up
from handlers.privacy import purge_expired
from knowledge import english

log = logging.getLogger(__name__)


class MesobotBot(InboxBot):
    """The inbox's bot, which also handles a button pressed long ago (the bot was down, or
    busy): Telegram then refuses the press's answer, and the bot goes on with the reply."""

    __slots__ = ()

    async def answer_callback_query(self, *args: Any, **kwargs: Any) -> bool:
        try:
            return await super().answer_callback_query(*args, **kwargs)
        except BadRequest as error:
            if "query is too old" not in error.message.lower():
                raise
            log.info("a button press too old to answer: handled all the same")
            return False


def build_application(
    settings: Settings,
    brain: Brain,
    *,
    token: str | None = None,
    request: BaseRequest | None = None,
    updates_request: BaseRequest | None = None,
) -> Application:
    """The bot, ready to initialise; `request`s replace HTTP (the terminal chat plays Telegram)."""
    enquiry_log = AsyncEnquiryLog(settings.db_path)
    persistence = SQLitePersistence(
        enquiry_log,  # one connection and one thread for all of SQLite
        # bot_data carries the live services; conversations and user data survive restarts.
        store_data=PersistenceInput(bot_data=False, chat_data=False, callback_data=False),
        expire_after_minutes=settings.booking_timeout_minutes,
    )
    if request is None:
        # 16 connections cover what Telegram lets a bot send (~30 messages/s); when all are busy a
        # reply waits for one (up to 30 s) rather than failing. getUpdates has its own.
        request, updates_request = AiohttpRequest(connections=16), AiohttpRequest(connections=1)
    inbox = Inbox(enquiry_log)
    bot = MesobotBot(
        token=token or settings.require_token(),
        request=request,
        get_updates_request=updates_request or request,
        inbox=inbox,
        # A reply still goes out when the message it quotes was deleted in the meantime.
        defaults=Defaults(allow_sending_without_reply=True),
        **({"base_url": settings.api_base_url} if settings.api_base_url else {}),
    )
    builder = (
        ApplicationBuilder()
        .bot(bot)
        .concurrent_updates(PerChatUpdateProcessor(on_handled=inbox.handled))
        .persistence(persistence)
        .post_init(_post_init)
        .post_shutdown(_post_shutdown)
    )
    application = builder.build()
    Services(settings, brain, enquiry_log, inbox).attach(application)
    handlers.register(application)
    return application


async def _post_init(application: Application) -> None:
    english.load()  # ~0.2 s now, not while the first person waits
    replayed = await services(application).inbox.recover(application.bot)
    for update in replayed:  # stored before a crash or stop, never handled: they go first
        await application.update_queue.put(update)
    if replayed:
        log.warning("replaying %d update(s) stored but not handled before the last stop", len(replayed))
    await application.bot.set_my_commands(
        [BotCommand(name, description) for name, description in texts.COMMANDS]
    )
    if application.job_queue is not None:
        # Retention: enquiries closed more than MESOBOT_RETENTION_DAYS ago are deleted daily.
        application.job_queue.run_repeating(
            purge_expired, interval=timedelta(days=1), first=timedelta(minutes=1), name="retention-purge"
        )
        # What people said, kept in memory to read a follow-up, goes once it is too old for that.
        application.job_queue.run_repeating(
            follow_up.forget_stale, interval=timedelta(minutes=5), name="follow-up-forget"
        )
        # A "did you mean" nobody answered goes to staff; the first run files those that went
        # unanswered while the bot was down.
        application.job_queue.run_repeating(
            filing.file_unchosen, interval=timedelta(minutes=1), first=timedelta(seconds=5), name="unchosen"
        )
    else:
        log.warning(
            "no job queue: the retention purge, the follow-up sweep and the filing of unchosen"
            " suggestions will not run"
        )
    log.info("mesobot is up as @%s", application.bot.username)


async def _post_shutdown(application: Application) -> None:
    await services(application).inbox.drain()
    await services(application).log.close()


def run(settings: Settings) -> int:
    """Run the Telegram bot until interrupted."""
    application = build_application(settings, Brain.load())
    application.run_polling(allowed_updates=Update.ALL_TYPES)
    return 0
