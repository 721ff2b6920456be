"""Turn a Reply into Telegram messages: text within Telegram's limits, and inline buttons."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message

from bot import texts
from bot.replies import Choice, Kind, Reply

MAX_TEXT = 4096  # Telegram rejects longer messages ("message is too long")
MAX_BUTTON = 60  # longer button labels are cut by Telegram clients anyway

# Callback data is versioned so buttons sent before a deploy still parse after it, and stays
# well under Telegram's 64-byte limit.
FAQ = "v1:faq:"
NONE_OF_THESE = "v1:none"
NOT_ANSWERED = "v1:miss"
MENU = "v1:menu:"


def callback_for(choice: Choice) -> str:
    data = FAQ + choice.entry_id
    if len(data.encode()) > 64:
        raise ValueError(f"entry id {choice.entry_id!r} is too long for a button")
    return data


def _label(text: str) -> str:
    return text if len(text) <= MAX_BUTTON else text[: MAX_BUTTON - 1] + "…"


def keyboard(reply: Reply, disown: bool = False) -> InlineKeyboardMarkup | None:
    """Suggestions as "did you mean" buttons; related questions as follow-ups; and, when
    `disown`, a way to say an answer missed the question (which then goes to staff)."""
    if reply.kind is Kind.SUGGEST:
        rows = [
            [InlineKeyboardButton(_label(c.question), callback_data=callback_for(c))]
            for c in reply.suggestions
        ]
        rows.append([InlineKeyboardButton(texts.NONE_OF_THESE, callback_data=NONE_OF_THESE)])
        return InlineKeyboardMarkup(rows)
    rows = [[InlineKeyboardButton(_label(c.question), callback_data=callback_for(c))] for c in reply.related]
    if disown:
        rows.append([InlineKeyboardButton(texts.NOT_WHAT_I_ASKED, callback_data=NOT_ANSWERED)])
    return InlineKeyboardMarkup(rows) if rows else None


def without_disown(markup: InlineKeyboardMarkup | None) -> InlineKeyboardMarkup | None:
    """The same buttons less "Not what I asked": once pressed, it has done its work."""
    rows = [row for row in (markup.inline_keyboard if markup else ()) if row[0].callback_data != NOT_ANSWERED]
    return InlineKeyboardMarkup(rows) if rows else None


def chunks(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Split a long text at paragraph or line breaks so each piece fits one message."""
    pieces: list[str] = []
    while len(text) > limit:
        cut = max(text.rfind("\n\n", 0, limit), text.rfind("\n", 0, limit), text.rfind(" ", 0, limit))
        cut = cut if cut > 0 else limit
        pieces.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    if text:
        pieces.append(text)
    return pieces or [texts.ERROR]


async def send(message: Message, reply: Reply, quote: bool = False, disown: bool = False) -> Message:
    """Send a reply under `message`; buttons go on the last piece. Plain text: nothing to escape.

    A quoted reply quotes the question on its first piece and on the one with the buttons, whose
    handlers read the question from it."""
    pieces = chunks(reply.text)
    sent = message
    for number, piece in enumerate(pieces, 1):
        last = number == len(pieces)
        markup = keyboard(reply, disown) if last else None
        # None keeps Telegram's default: quote in groups (whose question is answered), not in private.
        do_quote = True if quote and (number == 1 or last) else None
        sent = await message.reply_text(piece, reply_markup=markup, do_quote=do_quote)
    return sent
