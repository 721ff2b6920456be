"""In group chats the bot speaks only when spoken to: a mention, or a reply to one of its messages."""

from __future__ import annotations

from telegram import Bot, Chat, Message, MessageEntity


def addressed_text(message: Message, bot: Bot) -> str | None:
    """The text meant for the bot, without the @mention; None when it was not meant for the bot."""
    text = message.text or ""
    if message.chat.type == Chat.PRIVATE:
        return text
    replied = message.reply_to_message
    if replied is not None and replied.from_user is not None and replied.from_user.id == bot.id:
        return text
    mention = f"@{bot.username}".casefold()
    for entity, value in message.parse_entities([MessageEntity.MENTION]).items():
        if value.casefold() == mention:
            return (text[: entity.offset] + text[entity.offset + entity.length :]).strip()
    return None


def is_addressed(message: Message, bot: Bot) -> bool:
    return addressed_text(message, bot) is not None
