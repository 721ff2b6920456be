"""Messages the bot cannot read (photos, stickers, voice...) and commands it does not know."""

from __future__ import annotations

from telegram import Chat, Message, Update
from telegram.ext import CallbackContext

from bot import texts
from handlers.groups import is_addressed

# What the user sent, as named in the reply ("I can't open a photo").
_KINDS = (
    ("sticker", "stickers"),
    ("photo", "photos"),
    ("voice", "voice messages"),
    ("video_note", "video messages"),
    ("video", "videos"),
    ("audio", "audio files"),
    ("animation", "GIFs"),
    ("document", "files"),
    ("location", "locations"),
    ("poll", "polls"),
    ("contact", "contacts"),
)


def describe(message: Message) -> str:
    for attribute, name in _KINDS:
        if getattr(message, attribute, None):
            return name
    return "that kind of message"


async def not_text(update: Update, context: CallbackContext) -> None:
    """Ask for a typed question instead of a photo, sticker, voice note..."""
    message = update.effective_message
    if is_addressed(message, context.bot):
        await message.reply_text(texts.NOT_TEXT.format(what=describe(message)))


async def unknown_command(update: Update, context: CallbackContext) -> None:
    """Point to /help for a command the bot does not know."""
    message = update.effective_message
    command, _, target = (message.text or "").split()[0].partition("@")
    if message.chat.type != Chat.PRIVATE and target.casefold() != (context.bot.username or "").casefold():
        return  # in a group, another bot's command or one sent to every bot: not ours to answer
    await message.reply_text(texts.UNKNOWN_COMMAND.format(command=command))
