"""What the handlers need, built once at start-up and handed to them through the application."""

from __future__ import annotations

from dataclasses import dataclass

from telegram.ext import Application, CallbackContext

from bot.brain import Brain
from bot.enquiries import AsyncEnquiryLog
from bot.inbox import Inbox
from bot.settings import Settings

_KEY = "services"


@dataclass(frozen=True)
class Services:
    settings: Settings
    brain: Brain
    log: AsyncEnquiryLog
    inbox: Inbox

    def attach(self, application: Application) -> None:
        # bot_data is not persisted (see bot.app), so live objects may sit there.
        application.bot_data[_KEY] = self


def services(holder: CallbackContext | Application) -> Services:
    """The services, from a handler's context or from the application itself."""
    return holder.bot_data[_KEY]
