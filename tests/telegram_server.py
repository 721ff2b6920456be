"""A small Telegram Bot API server of our own, for tests, on loopback.

Why it exists: tests drive the real python-telegram-bot ``Application`` over real HTTP,
against a server the test starts, never the internet and never mocks. The npm emulator
(telegram-test-api) does not work with PTB v22 (its getMe lacks ``is_bot``, its dates are in
milliseconds, it has no long poll), so we keep this one. It answers the methods the bot uses
with Telegram's own JSON shapes, long-polls ``getUpdates`` and returns Telegram's own errors
where real Telegram would, so tests catch what production would catch: unescaped HTML,
over-long texts and ``callback_data``, editing a message into itself, unanswered or
twice-answered callback queries, sending to unknown chats. Error descriptions are the real
Bot API's wherever we know them; a few rare ones (malformed keyboards, an empty button text,
a bare ``&``) are our best guess, and tests should not pin those.

The server runs in background threads on 127.0.0.1 (OS-chosen port), so a bot can talk to it
from the test's own event loop (``ApplicationBuilder().base_url(server.base_url)``) or from a
subprocess (``TELEGRAM_API_BASE_URL=server.base_url``). Its state (pending updates, offsets,
sent messages) belongs to the server, not to a connection, so it survives a ``kill -9`` of the
bot. The test side drives it through the synchronous, thread-safe driver methods (``add_user``,
``send_text``, ``press_button``, ``messages`` ...) and awaits through ``wait_for_message`` and
``wait_for``, which never block the event loop.

Where this deliberately differs from real Telegram: an ``&`` that is not an HTML entity is
rejected in HTML parse mode (real Telegram keeps it as text, but its docs require escaping it;
pass ``strict_html_ampersand=False`` to get Telegram's leniency), and group privacy mode is
off unless ``privacy_mode=True``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import re
import select
import socket
import threading
import time
import traceback
import zlib
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

T = TypeVar("T")
JSONDict = dict[str, Any]

#: A token shaped like BotFather's (it also passes bot.settings' token check).
TEST_TOKEN = "123456789:AAHmesobotLoopbackTestToken0123456789"

_TOKEN_RE = re.compile(r"^\d+:[A-Za-z0-9_-]+$")
_PATH_RE = re.compile(r"^/bot(?P<token>[^/]*)/(?P<method>[^/]*)$")
_FILE_PATH_RE = re.compile(r"^/file/bot(?P<token>[^/]*)/(?P<path>.+)$")

MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64
MAX_CALLBACK_ANSWER_LENGTH = 200

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)
QUERY_TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"
POLL_CONFLICT = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
)
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
#: Update types delivered when ``allowed_updates`` is an empty list (Telegram's default).
DEFAULT_UPDATE_TYPES = frozenset(
    {
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "business_connection",
        "business_message",
        "edited_business_message",
        "deleted_business_messages",
        "inline_query",
        "chosen_inline_result",
        "callback_query",
        "shipping_query",
        "pre_checkout_query",
        "purchased_paid_media",
        "poll",
        "poll_answer",
        "my_chat_member",
        "chat_join_request",
        "chat_boost",
        "removed_chat_boost",
    }
)


class ApiError(Exception):
    """An error answer: ``{"ok": false, "error_code": status, "description": ...}``."""

    def __init__(self, status: int, description: str, parameters: JSONDict | None = None):
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters


def bad_request(description: str) -> ApiError:
    """A 400 whose description gets Telegram's ``Bad Request: `` prefix."""
    return ApiError(400, f"Bad Request: {description}")


class EntityParseError(ValueError):
    """Formatted text Telegram cannot parse; the message is Telegram's own wording."""


class _DropConnection(Exception):
    """The client went away while we waited: answer nothing, close the connection."""


# --------------------------------------------------------------------------- text & entities


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of Telegram's entity offsets and lengths."""
    return len(text.encode("utf-16-le")) // 2


def _u16c(char: str) -> int:
    return 2 if ord(char) > 0xFFFF else 1


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


def _entity(type_: str, offset: int, length: int, **extra: Any) -> JSONDict:
    ent: JSONDict = {"offset": offset, "length": length, "type": type_}
    ent.update({k: v for k, v in extra.items() if v not in (None, "")})
    return ent


_HTML_TAGS = frozenset(
    {
        "a",
        "b",
        "strong",
        "i",
        "em",
        "s",
        "strike",
        "del",
        "u",
        "ins",
        "tg-spoiler",
        "tg-emoji",
        "span",
        "pre",
        "code",
        "blockquote",
    }
)
_HTML_SPACE = frozenset(" \t\r\n\0\v\f")
_HTML_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_TG_USER_LINK = re.compile(r"^tg://user\?id=(\d+)$")


def _decode_html_entity(s: str, pos: int) -> tuple[str, int] | None:
    """Decode ``&lt;``/``&#60;``/``&#x3c;`` at ``s[pos]`` like tdlib; ``s`` ends with NUL."""
    end = pos + 1
    if s[end] == "#":
        end += 1
        if s[end] == "x":
            end += 1
            start = end
            while s[end] in "0123456789abcdefABCDEF" and s[end] != "\0":
                end += 1
            value = int(s[start:end], 16) if end > start else 0
        else:
            start = end
            while "0" <= s[end] <= "9":
                end += 1
            value = int(s[start:end]) if end > start else 0
        if value == 0 or value >= 0x10FFFF or end - pos >= 10 or 0xD800 <= value <= 0xDFFF:
            return None
        char = chr(value)
    else:
        while s[end].isascii() and s[end].isalpha():
            end += 1
        named = _HTML_NAMED.get(s[pos + 1 : end])
        if named is None:
            return None
        char = named
    if s[end] == ";":
        end += 1
    return char, end


def normalize_link(url: str) -> str | None:
    """Telegram's idea of a valid link (roughly tdlib's check_link), normalized, or None."""
    url = url.strip()
    if not url or any(c.isspace() for c in url):
        return None
    if "://" not in url and not url.lower().startswith(("tg:", "mailto:", "ton:")):
        url = "http://" + url
    scheme, _, rest = url.partition(":")
    scheme = scheme.lower()
    if scheme in {"tg", "ton", "tonsite", "mailto"}:
        return f"{scheme}:{rest}" if rest.strip("/") else None
    if scheme not in {"http", "https", "ftp"}:
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return None
    if "." not in host.strip(".") or host.startswith(".") or ".." in host:
        return None
    if not re.fullmatch(r"[A-Za-z0-9.\-_\u00a1-\uffff]+", host):
        return None
    if not parts.path and not parts.query and not parts.fragment:
        url += "/"
    return scheme + url[len(scheme) :]


def parse_html(
    text: str,
    *,
    strict_ampersand: bool = True,
    users: Mapping[int, JSONDict] | None = None,
) -> tuple[str, list[JSONDict]]:
    """Parse Telegram HTML (tdlib's algorithm and error messages) into plain text + entities.

    Raises EntityParseError with Telegram's description (without the "can't parse entities: "
    prefix) for unsupported, unclosed or mismatched tags and stray ``<``; with
    ``strict_ampersand`` also for an ``&`` that is not an entity.
    """
    s = text + "\0"
    n = len(text)
    out: list[str] = []
    u16 = 0
    entities: list[JSONDict] = []
    stack: list[tuple[str, str, int, int]] = []  # tag, argument, utf16 start, len(out) start
    i = 0
    while i < n:
        c = s[i]
        if c == "&":
            decoded = _decode_html_entity(s, i)
            if decoded is not None:
                char, i = decoded
                out.append(char)
                u16 += _u16c(char)
                continue
            if strict_ampersand:
                raise EntityParseError(
                    f'Unescaped "&" at byte offset {_byte_offset(text, i)}: write it as "&amp;"'
                )
        if c != "<":
            out.append(c)
            u16 += _u16c(c)
            i += 1
            continue
        begin = i
        i += 1
        if s[i] != "/":
            while s[i] not in _HTML_SPACE and s[i] != ">":
                i += 1
            if s[i] == "\0":
                raise EntityParseError(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
            tag = s[begin + 1 : i].lower()
            if tag not in _HTML_TAGS:
                raise EntityParseError(
                    f'Unsupported start tag "{tag}" at byte offset {_byte_offset(text, begin)}'
                )
            argument = ""
            while s[i] != ">":
                while s[i] != "\0" and s[i] in _HTML_SPACE:
                    i += 1
                if s[i] == ">":
                    break
                if s[i] == "\0":
                    raise EntityParseError(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
                attr_begin = i
                while s[i] not in _HTML_SPACE and s[i] not in "=>":
                    i += 1
                attr_name = s[attr_begin:i].lower()
                if not attr_name:
                    raise EntityParseError(
                        f'Empty attribute name in the tag "{tag}" at byte offset {_byte_offset(text, begin)}'
                    )
                while s[i] != "\0" and s[i] in _HTML_SPACE:
                    i += 1
                if s[i] != "=":
                    if tag == "blockquote" and attr_name == "expandable":
                        argument = "1"
                    continue
                i += 1
                while s[i] != "\0" and s[i] in _HTML_SPACE:
                    i += 1
                if s[i] == "\0":
                    raise EntityParseError(
                        f'Unclosed start tag "{tag}" at byte offset {_byte_offset(text, begin)}'
                    )
                if s[i] not in "'\"":
                    token_begin = i
                    while s[i].isascii() and (s[i].isalnum() or s[i] in ".-"):
                        i += 1
                    value = s[token_begin:i].lower()
                    if s[i] not in _HTML_SPACE and s[i] != ">":
                        raise EntityParseError(
                            f"Unexpected end of name token at byte offset {_byte_offset(text, token_begin)}"
                        )
                else:
                    quote = s[i]
                    i += 1
                    chars: list[str] = []
                    while s[i] != quote and s[i] != "\0":
                        if s[i] == "&":
                            decoded = _decode_html_entity(s, i)
                            if decoded is not None:
                                chars.append(decoded[0])
                                i = decoded[1]
                                continue
                        chars.append(s[i])
                        i += 1
                    if s[i] == quote:
                        i += 1
                    value = "".join(chars)
                if s[i] == "\0":
                    raise EntityParseError(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
                if tag == "a" and attr_name == "href":
                    argument = value
                elif tag == "code" and attr_name == "class" and value.startswith("language-"):
                    argument = value[len("language-") :]
                elif tag == "span" and attr_name == "class" and value.startswith("tg-"):
                    argument = value[len("tg-") :]
                elif tag == "tg-emoji" and attr_name == "emoji-id":
                    argument = value
                elif tag == "blockquote" and attr_name == "expandable":
                    argument = "1"
            i += 1  # past '>'
            if tag == "span" and argument != "spoiler":
                raise EntityParseError(
                    f'Tag "span" must have class "tg-spoiler" at byte offset {_byte_offset(text, begin)}'
                )
            stack.append((tag, argument, u16, len(out)))
            continue
        # an end tag
        if not stack:
            raise EntityParseError(f"Unexpected end tag at byte offset {_byte_offset(text, begin)}")
        while s[i] not in _HTML_SPACE and s[i] != ">":
            i += 1
        end_name = s[begin + 2 : i]
        while s[i] != "\0" and s[i] in _HTML_SPACE:
            i += 1
        if s[i] != ">":
            raise EntityParseError(f"Unclosed end tag at byte offset {_byte_offset(text, begin)}")
        i += 1
        tag, argument, start16, start_out = stack.pop()
        if end_name and end_name != tag:
            raise EntityParseError(
                f"Unmatched end tag at byte offset {_byte_offset(text, begin)}, "
                f'expected "</{tag}>", found "</{end_name}>"'
            )
        length = u16 - start16
        if length <= 0:
            continue
        _html_entity(entities, tag, argument, start16, length, "".join(out[start_out:]), users)
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    for ent in entities:
        if ent["type"] == "code":
            ent.pop("language", None)
    return "".join(out), entities


def _html_entity(
    entities: list[JSONDict],
    tag: str,
    argument: str,
    offset: int,
    length: int,
    inner_text: str,
    users: Mapping[int, JSONDict] | None,
) -> None:
    simple = {
        "b": "bold",
        "strong": "bold",
        "i": "italic",
        "em": "italic",
        "u": "underline",
        "ins": "underline",
        "s": "strikethrough",
        "strike": "strikethrough",
        "del": "strikethrough",
        "tg-spoiler": "spoiler",
        "span": "spoiler",
    }
    last = entities[-1] if entities else None
    same_span = last is not None and last["offset"] == offset and last["length"] == length
    if tag in simple:
        entities.append(_entity(simple[tag], offset, length))
    elif tag == "a":
        url = argument or inner_text
        user_link = _TG_USER_LINK.match(url)
        if user_link and users is not None and int(user_link.group(1)) in users:
            entities.append(_entity("text_mention", offset, length, user=users[int(user_link.group(1))]))
        else:
            normalized = normalize_link(url)
            if normalized is not None:
                entities.append(_entity("text_link", offset, length, url=normalized))
    elif tag == "pre":
        if same_span and last is not None and last["type"] == "code":
            language = last.get("language")
            entities[-1] = _entity("pre", offset, length, language=language)
        else:
            entities.append(_entity("pre", offset, length))
    elif tag == "code":
        if same_span and last is not None and last["type"] == "pre":
            entities[-1] = _entity("pre", offset, length, language=argument)
        else:
            # "language" is kept only so an enclosing <pre> can pick it up
            entities.append(_entity("code", offset, length, language=argument))
    elif tag == "tg-emoji":
        if not argument.isdigit() or int(argument) == 0:
            raise EntityParseError("Invalid custom emoji identifier specified")
        entities.append(_entity("custom_emoji", offset, length, custom_emoji_id=argument))
    elif tag == "blockquote":
        kind = "expandable_blockquote" if argument else "blockquote"
        entities.append(_entity(kind, offset, length))


_MD2_RESERVED = frozenset("_*[]()~`>#+-=|{}.!")
_MD2_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "code": "Code",
    "pre": "Pre",
    "text_link": "TextUrl",
    "custom_emoji": "CustomEmoji",
}


def parse_markdown_v2(text: str) -> tuple[str, list[JSONDict]]:
    """Parse MarkdownV2 like tdlib: unescaped reserved characters and unclosed entities fail."""
    n = len(text)
    out: list[str] = []
    u16 = 0
    entities: list[JSONDict] = []
    stack: list[tuple[str, int, int, str]] = []  # type, utf16 start, byte offset, language
    quote_start: int | None = None
    i = 0

    def reserved(char: str) -> EntityParseError:
        return EntityParseError(f"Character '{char}' is reserved and must be escaped with the preceding '\\'")

    while i < n:
        c = text[i]
        top = stack[-1][0] if stack else None
        if c == "\\" and i + 1 < n and 0 < ord(text[i + 1]) <= 126:
            out.append(text[i + 1])
            u16 += 1
            i += 2
            continue
        if top in ("code", "pre"):
            closes = text.startswith("```", i) if top == "pre" else c == "`"
            if not closes:
                out.append(c)
                u16 += _u16c(c)
                i += 1
                continue
        elif c == ">" and (i == 0 or text[i - 1] == "\n") and not stack:
            if quote_start is None:
                quote_start = u16
            i += 1
            continue
        elif c == "\n" and quote_start is not None and not text.startswith(">", i + 1):
            if u16 > quote_start:
                entities.append(_entity("blockquote", quote_start, u16 - quote_start))
            quote_start = None
        if c not in _MD2_RESERVED:
            out.append(c)
            u16 += _u16c(c)
            i += 1
            continue
        closing = {
            "bold": c == "*",
            "italic": c == "_" and not text.startswith("__", i),
            "underline": text.startswith("__", i),
            "strikethrough": c == "~",
            "spoiler": text.startswith("||", i),
            "code": c == "`",
            "pre": text.startswith("```", i),
            "text_link": c == "]",
            "custom_emoji": c == "]",
        }
        if top is not None and closing[top]:
            kind, start16, _, language = stack.pop()
            i += {"underline": 2, "spoiler": 2, "pre": 3}.get(kind, 1)
            extra: JSONDict = {}
            if kind in ("text_link", "custom_emoji"):
                url = ""
                if text.startswith("(", i):
                    url_chars: list[str] = []
                    j = i + 1
                    while j < n and text[j] != ")":
                        if text[j] == "\\" and j + 1 < n and text[j + 1] in ")\\":
                            j += 1
                        url_chars.append(text[j])
                        j += 1
                    if j >= n:
                        raise EntityParseError(
                            f"Can't find end of a URL at byte offset {_byte_offset(text, i)}"
                        )
                    url = "".join(url_chars)
                    i = j + 1
                if kind == "custom_emoji":
                    match = re.fullmatch(r"tg://emoji\?id=(\d+)", url)
                    if not match:
                        raise EntityParseError("Custom emoji URL must have an emoji identifier")
                    extra["custom_emoji_id"] = match.group(1)
                else:
                    normalized = normalize_link(url or "".join(out)[-(u16 - start16) :])
                    if normalized is None:
                        continue
                    extra["url"] = normalized
            if kind == "pre":
                extra["language"] = language
            if u16 > start16:
                entities.append(_entity(kind, start16, u16 - start16, **extra))
            continue
        begin = i
        language = ""
        if c == "_":
            kind = "underline" if text.startswith("__", i) else "italic"
            i += 2 if kind == "underline" else 1
        elif c == "*":
            kind, i = "bold", i + 1
        elif c == "~":
            kind, i = "strikethrough", i + 1
        elif c == "|" and text.startswith("||", i):
            kind, i = "spoiler", i + 2
        elif c == "[":
            kind, i = "text_link", i + 1
        elif c == "!" and text.startswith("![", i):
            kind, i = "custom_emoji", i + 2
        elif c == "`" and text.startswith("```", i):
            kind, i = "pre", i + 3
            line_end = text.find("\n", i)
            if line_end != -1 and not any(ch.isspace() for ch in text[i:line_end]):
                language = text[i:line_end]
                i = line_end + 1
        elif c == "`":
            kind, i = "code", i + 1
        else:
            raise reserved(c)
        stack.append((kind, u16, _byte_offset(text, begin), language))
    if quote_start is not None and u16 > quote_start:
        entities.append(_entity("blockquote", quote_start, u16 - quote_start))
    if stack:
        kind, _, byte_offset, _ = stack[-1]
        raise EntityParseError(f"Can't find end of {_MD2_NAMES[kind]} entity at byte offset {byte_offset}")
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def parse_markdown(text: str) -> tuple[str, list[JSONDict]]:
    """Parse legacy Markdown (``*bold*``, ``_italic_``, `` `code` ``, ``[text](url)``)."""
    n = len(text)
    out: list[str] = []
    u16 = 0
    entities: list[JSONDict] = []
    i = 0
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n and text[i + 1] in "_*`[":
            out.append(text[i + 1])
            u16 += 1
            i += 2
            continue
        if c not in "_*`[":
            out.append(c)
            u16 += _u16c(c)
            i += 1
            continue
        begin = i
        end_char = "]" if c == "[" else c
        i += 1
        is_pre = False
        language = ""
        if c == "`" and text.startswith("``", i):
            is_pre = True
            i += 2
            line_end = text.find("\n", i)
            if line_end != -1 and "`" not in text[i:line_end] and " " not in text[i:line_end]:
                language = text[i:line_end]
                i = line_end + 1
        start16 = u16
        while i < n and not (text[i] == end_char and (not is_pre or text.startswith("```", i))):
            out.append(text[i])
            u16 += _u16c(text[i])
            i += 1
        if i >= n:
            raise EntityParseError(
                f"Can't find end of the entity starting at byte offset {_byte_offset(text, begin)}"
            )
        i += 3 if is_pre else 1
        length = u16 - start16
        kind = {"*": "bold", "_": "italic", "`": "pre" if is_pre else "code", "[": "text_link"}[c]
        extra: JSONDict = {}
        if c == "[":
            url = ""
            if text.startswith("(", i):
                close = text.find(")", i)
                if close != -1:
                    url = text[i + 1 : close]
                    i = close + 1
            normalized = normalize_link(url)
            if normalized is None:
                continue
            extra["url"] = normalized
        if is_pre:
            extra["language"] = language
        if length > 0:
            entities.append(_entity(kind, start16, length, **extra))
    return "".join(out), entities


_TLDS = (
    "com|org|net|edu|gov|io|co|uk|me|info|biz|app|dev|ai|ru|de|fr|es|it|nl|eu|us|ca|au|in|"
    "ly|gl|gg|tv|xyz|online|site|shop|store|academy|london|health|clinic|beauty|page|link|to"
)
_AUTO_ENTITY_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "email",
        re.compile(r"(?<![\w.+\-])[A-Za-z0-9._%+\-]+@(?:[A-Za-z0-9\-]+\.)+[A-Za-z]{2,}(?![\w@])"),
    ),
    (
        "url",
        re.compile(
            r"(?<![\w@.\-/])(?:(?:https?|ftp|tg)://[^\s<>\"]+|(?:[A-Za-z0-9](?:[A-Za-z0-9\-]"
            rf"{{0,61}}[A-Za-z0-9])?\.)+(?:{_TLDS})\b(?::\d{{1,5}})?(?:/[^\s<>\"]*)?)",
            re.IGNORECASE,
        ),
    ),
    ("mention", re.compile(r"(?<![\w@])@[A-Za-z0-9_]{3,32}(?![\w@])")),
    ("bot_command", re.compile(r"(?<![\w/@])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![\w/])")),
    ("hashtag", re.compile(r"(?<![\w#])#(?=\w*[^\W\d_])\w{1,256}")),
)
_NO_AUTO_INSIDE = frozenset({"code", "pre", "text_link", "url", "email", "custom_emoji"})


def _utf16_index(text: str) -> Callable[[int], int]:
    """Map a str index to a UTF-16 offset, cheaply when the text is all BMP."""
    if all(ord(c) <= 0xFFFF for c in text):
        return lambda index: index
    prefix = [0]
    for c in text:
        prefix.append(prefix[-1] + _u16c(c))
    return prefix.__getitem__


def detect_entities(text: str, existing: Sequence[JSONDict] = ()) -> list[JSONDict]:
    """Entities Telegram finds on its own: urls, emails, @mentions, /commands, #hashtags."""
    to16 = _utf16_index(text)
    taken: list[tuple[int, int]] = [
        (e["offset"], e["offset"] + e["length"]) for e in existing if e["type"] in _NO_AUTO_INSIDE
    ]
    found: list[JSONDict] = []
    for kind, pattern in _AUTO_ENTITY_PATTERNS:
        for match in pattern.finditer(text):
            start, end = match.span()
            if kind == "url":
                while end > start and text[end - 1] in ".,:;!?'\"":
                    end -= 1
                if text[end - 1 : end] == ")" and text.count("(", start, end) < text.count(")", start, end):
                    end -= 1
            s16, e16 = to16(start), to16(end)
            if e16 <= s16 or any(s16 < b and a < e16 for a, b in taken):
                continue
            taken.append((s16, e16))
            found.append(_entity(kind, s16, e16 - s16))
    return found


def _sort_entities(entities: Iterable[JSONDict]) -> list[JSONDict]:
    return sorted(entities, key=lambda e: (e["offset"], -e["length"]))


def _trim(text: str, entities: list[JSONDict]) -> tuple[str, list[JSONDict]]:
    """Strip surrounding whitespace like Telegram and shift/clip entities to match."""
    stripped = text.lstrip(" \t\r\n\v\f")
    left = utf16_len(text[: len(text) - len(stripped)])
    stripped = stripped.rstrip(" \t\r\n\v\f")
    total = utf16_len(stripped)
    result = []
    for ent in entities:
        start = max(ent["offset"] - left, 0)
        end = min(ent["offset"] + ent["length"] - left, total)
        if end > start:
            result.append({**ent, "offset": start, "length": end - start})
    return stripped, result


# --------------------------------------------------------------------------- keyboards

_INLINE_ACTIONS = (
    "url",
    "callback_data",
    "callback_game",
    "pay",
    "switch_inline_query",
    "switch_inline_query_chosen_chat",
    "switch_inline_query_current_chat",
    "login_url",
    "web_app",
    "copy_text",
)


def _inline_button(button: Any) -> JSONDict:
    if not isinstance(button, dict):
        raise bad_request("can't parse inline keyboard button: InlineKeyboardButton must be an Object")
    text = button.get("text")
    if text is None:
        raise bad_request("can't parse inline keyboard button: Can't find field \"text\"")
    if not isinstance(text, str):
        raise bad_request('can\'t parse inline keyboard button: Field "text" must be of type String')
    if not text.strip():
        raise bad_request("BUTTON_TEXT_INVALID")
    for action in _INLINE_ACTIONS:
        if action not in button or button[action] is None:
            continue
        value = button[action]
        if action in ("url", "callback_data"):
            if not isinstance(value, str):
                raise bad_request(
                    f'can\'t parse inline keyboard button: Field "{action}" must be of type String'
                )
            if not value:
                continue  # Telegram treats an empty string as absent
            if action == "callback_data" and len(value.encode()) > MAX_CALLBACK_DATA_BYTES:
                raise bad_request("BUTTON_DATA_INVALID")
            if action == "url" and normalize_link(value) is None:
                raise bad_request("BUTTON_URL_INVALID")
        return {"text": text, action: value}
    raise bad_request("can't parse InlineKeyboardButton: Text buttons are not allowed in the inline keyboard")


def _reply_button(button: Any) -> JSONDict:
    if isinstance(button, str):
        button = {"text": button}
    if not isinstance(button, dict):
        raise bad_request("can't parse keyboard button: KeyboardButton must be a String or an Object")
    text = button.get("text")
    if not isinstance(text, str):
        raise bad_request("can't parse keyboard button: Can't find field \"text\"")
    if not text.strip():
        raise bad_request("BUTTON_TEXT_INVALID")
    return {k: v for k, v in button.items() if v is not None}


def _rows(markup: JSONDict, key: str, kind: str) -> list[list[Any]]:
    rows = markup.get(key)
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request(f'Field "{key}" of the {kind} must be an Array of Arrays')
    if sum(len(row) for row in rows) > 100:
        raise bad_request("reply markup is too long")
    return rows


def parse_reply_markup(raw: Any) -> JSONDict | None:
    """Validate ``reply_markup`` (an object, or a JSON string in form data) like Telegram."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise bad_request("can't parse reply keyboard markup JSON object") from None
    if not isinstance(raw, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in raw:
        rows = _rows(raw, "inline_keyboard", "InlineKeyboardMarkup")
        return {"inline_keyboard": [[_inline_button(b) for b in row] for row in rows]}
    if "keyboard" in raw:
        rows = _rows(raw, "keyboard", "ReplyKeyboardMarkup")
        markup = {k: v for k, v in raw.items() if k != "keyboard" and v is not None}
        return {"keyboard": [[_reply_button(b) for b in row] for row in rows], **markup}
    if raw.get("remove_keyboard") or raw.get("hide_keyboard"):
        return {"remove_keyboard": True, **({"selective": True} if raw.get("selective") else {})}
    if raw.get("force_reply"):
        return {k: v for k, v in raw.items() if v is not None}
    raise bad_request("can't parse reply keyboard markup JSON object")


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class User:
    """A Telegram user the test created; ``to_dict()`` is Telegram's User object."""

    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = "en"
    is_bot: bool = False

    def to_dict(self) -> JSONDict:
        data: JSONDict = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        return data


@dataclass(frozen=True)
class Chat:
    """A chat the server knows; ``to_dict()`` is Telegram's Chat object."""

    id: int
    type: str  # "private", "group", "supergroup" or "channel"
    title: str | None = None
    username: str | None = None
    first_name: str | None = None
    last_name: str | None = None

    def to_dict(self) -> JSONDict:
        data: JSONDict = {"id": self.id}
        for key in ("title", "username", "first_name", "last_name"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        data["type"] = self.type
        return data


@dataclass(frozen=True)
class SentDocument:
    """A document the bot sent with sendDocument."""

    chat_id: int
    message_id: int
    filename: str
    content: bytes
    mime_type: str
    caption: str | None
    file_id: str


@dataclass(frozen=True)
class ApiErrorRecord:
    """An error the server answered the bot with."""

    method: str
    status: int
    description: str
    params: JSONDict


@dataclass(frozen=True)
class RequestRecord:
    """One API request: method, HTTP status, when it started and how long it took (seconds)."""

    method: str
    status: int
    started: float
    duration: float


@dataclass(frozen=True)
class Upload:
    """A file part of a multipart/form-data request."""

    filename: str
    content: bytes
    content_type: str


@dataclass
class _StoredFile:
    file_id: str
    file_unique_id: str
    content: bytes
    file_path: str
    mime_type: str


@dataclass
class _Callback:
    query: JSONDict
    created: float
    answer: JSONDict | None = None


@dataclass
class _ChatState:
    chat: Chat
    members: set[int] = field(default_factory=set)
    next_message_id: int = 1
    message_ids: list[int] = field(default_factory=list)
    bot_message_ids: list[int] = field(default_factory=list)
    wait_cursor: int = 0
    bot_is_member: bool = True
    bot_is_admin: bool = False
    bot_was_kicked: bool = False
    blocked: bool = False  # private chats: the user blocked the bot
    started: bool = True  # private chats: the user pressed Start
    actions: list[str] = field(default_factory=list)
    reply_keyboard: JSONDict | None = None


class WaitTimeout(AssertionError):
    """A driver wait ran out of time; the message says what was expected and what was seen."""


class Params:
    """Request parameters from a query string, JSON, urlencoded or multipart body.

    Form values are strings (PTB JSON-encodes objects into them); JSON bodies are typed.
    Parsing is as lenient as the Bot API's: a malformed number reads as 0.
    """

    def __init__(self, values: Mapping[str, Any], files: Mapping[str, Upload] | None = None):
        self.values = dict(values)
        self.files = dict(files or {})

    def has(self, name: str) -> bool:
        return self.values.get(name) not in (None, "") or name in self.files

    def text(self, name: str) -> str | None:
        value = self.values.get(name)
        if value is None:
            return None
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (dict, list)):
            return json.dumps(value)
        return str(value)

    def integer(self, name: str, default: int = 0) -> int:
        value = self.values.get(name)
        if value in (None, ""):
            return default
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, (int, float)):
            return int(value)
        match = re.match(r"^\s*(-?\d+)", str(value))
        return int(match.group(1)) if match else 0

    def boolean(self, name: str) -> bool:
        value = self.values.get(name)
        if isinstance(value, str):
            return value.strip().lower() in ("true", "1")
        return bool(value)

    def obj(self, name: str, what: str | None = None) -> Any:
        value = self.values.get(name)
        if isinstance(value, str):
            if value == "":
                return None
            try:
                return json.loads(value)
            except ValueError:
                raise bad_request(f"can't parse {what or name} JSON object") from None
        return value

    def loggable(self) -> JSONDict:
        data = dict(self.values)
        for name, upload in self.files.items():
            data[name] = f"<file {upload.filename!r}, {len(upload.content)} bytes>"
        return data


class _Described:
    """A successful result that also carries Telegram's ``description`` (deleteWebhook)."""

    def __init__(self, result: Any, description: str):
        self.result = result
        self.description = description


class _AsyncWaiter:
    __slots__ = ("event", "loop", "pending")

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.event = asyncio.Event()
        self.pending = False

    def wake(self) -> None:
        self.pending = False
        self.event.set()


# --------------------------------------------------------------------------- the server


UserLike = User | int
ChatLike = Chat | User | int


class Hold:
    """Requests to one method stall until released (a stuck network call): see TelegramServer.hold."""

    def __init__(self, server: TelegramServer, method: str, when: Callable[[Params], bool] | None) -> None:
        self._server = server
        self.method = method
        self.when = when
        self._released = threading.Event()
        self.waiting = 0  # requests stalled right now

    def stall(self, client_gone: Callable[[], bool]) -> None:
        """Block the calling server thread until released; drop it if the client went away."""
        with self._server._lock:
            self.waiting += 1
            self._server._notify()
        try:
            while True:
                released = self._released.wait(0.02)
                if client_gone():  # a client killed while stalled never gets its request through
                    raise _DropConnection
                if released:
                    return
        finally:
            with self._server._lock:
                self.waiting -= 1
                self._server._notify()

    def release(self) -> None:
        with self._server._lock:
            if self._server._holds.get(self.method) is self:
                del self._server._holds[self.method]
        self._released.set()

    def __enter__(self) -> Hold:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class TelegramServer:
    """A Bot API server on 127.0.0.1 plus the test-side driver; see the module docstring."""

    def __init__(
        self,
        token: str | None = TEST_TOKEN,
        *,
        bot_username: str = "mesobot_test_bot",
        bot_first_name: str = "Mesobot",
        host: str = "127.0.0.1",
        port: int = 0,
        strict_html_ampersand: bool = True,
        privacy_mode: bool = False,
        callback_query_ttl: float | None = None,
    ) -> None:
        if token is not None and not _TOKEN_RE.match(token):
            raise ValueError(f"not a bot token: {token!r}")
        self.token = token
        bot_id = int(token.split(":", 1)[0]) if token else 123456789
        self.bot = User(bot_id, bot_first_name, username=bot_username, language_code=None, is_bot=True)
        self.strict_html_ampersand = strict_html_ampersand
        self.privacy_mode = privacy_mode
        self.callback_query_ttl = callback_query_ttl
        self._host = host
        self._port = port
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._async_waiters: set[_AsyncWaiter] = set()
        self._httpd: _HTTPServer | None = None
        self._serve_thread: threading.Thread | None = None
        self._stopping = False
        self._clock_offset = 0.0
        # directory
        self._users: dict[int, User] = {}
        self._chats: dict[int, _ChatState] = {}
        self._usernames: dict[str, int] = {}
        self._next_user_id = 100_001
        self._next_group_id = 1
        # messages
        self._messages: dict[tuple[int, int], JSONDict] = {}
        self._deleted: set[tuple[int, int]] = set()
        self._files: dict[str, _StoredFile] = {}
        self._file_paths: dict[str, _StoredFile] = {}
        self._documents: dict[int, list[SentDocument]] = defaultdict(list)
        # updates
        self._updates: deque[JSONDict] = deque()
        self._next_update_id = 700_000_001
        self._allowed_updates: frozenset[str] = DEFAULT_UPDATE_TYPES
        self._poll_generation = 0
        self._polls_waiting = 0
        self._undelivered: list[JSONDict] = []
        self._webhook_url = ""
        # callbacks, commands, bookkeeping
        self._callbacks: dict[str, _Callback] = {}
        self._answered: list[JSONDict] = []
        self._next_callback_id = 4_611_686_018_427_387_001
        self._commands: dict[tuple[str, str], list[JSONDict]] = {}
        self._bot_settings: dict[str, Any] = {}
        self._errors: list[ApiErrorRecord] = []
        self._exceptions: list[str] = []
        self._requests: list[RequestRecord] = []
        self._request_counts: Counter[str] = Counter()
        self._injected: dict[str, deque[tuple[ApiError, Callable[[Params], bool] | None]]] = defaultdict(
            deque
        )
        self._holds: dict[str, Hold] = {}
        self._methods: dict[str, Callable[[Params], Any]] = {
            name[len("_m_") :]: getattr(self, name) for name in dir(self) if name.startswith("_m_")
        }

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        """Bind 127.0.0.1 on a free port and serve in a background thread."""
        if self._httpd is not None:
            return self
        self._stopping = False
        self._httpd = _HTTPServer((self._host, self._port), self)
        self._port = self._httpd.server_address[1]
        self._serve_thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.02},
            name=f"telegram-server:{self._port}",
            daemon=True,
        )
        self._serve_thread.start()
        return self

    def stop(self) -> None:
        """Release long polls, close every connection and join the server's threads."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        with self._cond:
            self._stopping = True
            self._notify()
        httpd.shutdown()
        httpd.wait_idle(timeout=2.0)  # let released long polls write their answers
        httpd.close_connections()
        httpd.join_threads(timeout=5.0)
        httpd.server_close()
        if self._serve_thread is not None:
            self._serve_thread.join(timeout=5.0)
            self._serve_thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self._host}:{self._port}"

    @property
    def base_url(self) -> str:
        """For PTB's ``base_url`` and TELEGRAM_API_BASE_URL: PTB appends ``<token>/<method>``."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        return f"{self.url}/file/bot"

    # ------------------------------------------------------------------ helpers

    def _now(self) -> int:
        return int(time.time() + self._clock_offset)

    def advance_clock(self, seconds: float) -> None:
        """Move the server's clock (message and update dates) forward."""
        with self._lock:
            self._clock_offset += seconds

    def _notify(self) -> None:
        """Wake everyone waiting on state: long polls, sync and async driver waits."""
        self._cond.notify_all()
        for waiter in list(self._async_waiters):
            if waiter.pending:
                continue
            waiter.pending = True
            try:
                waiter.loop.call_soon_threadsafe(waiter.wake)
            except RuntimeError:  # that loop is closed
                self._async_waiters.discard(waiter)

    @staticmethod
    def _chat_id(chat: ChatLike | JSONDict) -> int:
        if isinstance(chat, dict):
            return int(chat["chat"]["id"] if "chat" in chat else chat["id"])
        return chat if isinstance(chat, int) else chat.id

    @staticmethod
    def _user_id(user: UserLike) -> int:
        return user if isinstance(user, int) else user.id

    def _user(self, user: UserLike) -> User:
        user_id = self._user_id(user)
        if user_id not in self._users:
            raise KeyError(f"unknown user {user_id}: create it with add_user()")
        return self._users[user_id]

    def _state(self, chat: ChatLike | JSONDict) -> _ChatState:
        chat_id = self._chat_id(chat)
        if chat_id not in self._chats:
            raise KeyError(f"unknown chat {chat_id}: create it with add_user()/add_group()")
        return self._chats[chat_id]

    def _new_file(self, content: bytes, kind: str, ext: str, mime_type: str) -> _StoredFile:
        number = len(self._files) + 1
        file_id = f"{kind[:4].upper()}AgADAgAD{number:08d}{zlib.crc32(content):010d}"
        stored = _StoredFile(
            file_id=file_id,
            file_unique_id=f"AgAD{number:08d}",
            content=content,
            file_path=f"{kind}/file_{number}{ext}",
            mime_type=mime_type,
        )
        self._files[file_id] = stored
        self._file_paths[stored.file_path] = stored
        return stored

    # ------------------------------------------------------------------ driver: setup

    def add_user(
        self,
        first_name: str = "Test",
        *,
        user_id: int | None = None,
        username: str | None = None,
        last_name: str | None = None,
        language_code: str | None = "en",
        started: bool = True,
    ) -> User:
        """Create a user and their private chat (chat id == user id), as if they pressed Start."""
        with self._lock:
            if user_id is None:
                while self._next_user_id in self._users:
                    self._next_user_id += 1
                user_id = self._next_user_id
                self._next_user_id += 1
            user = User(user_id, first_name, last_name, username, language_code)
            self._users[user_id] = user
            chat = Chat(user_id, "private", username=username, first_name=first_name, last_name=last_name)
            state = self._chats.get(user_id) or _ChatState(chat)
            state.chat, state.started = chat, started
            state.members.update({user_id, self.bot.id})
            self._chats[user_id] = state
            if username:
                self._usernames[username.lower()] = user_id
            return user

    def add_group(
        self,
        title: str = "Test group",
        members: Iterable[UserLike] = (),
        *,
        chat_id: int | None = None,
        supergroup: bool = True,
        username: str | None = None,
        bot_is_admin: bool = False,
    ) -> Chat:
        """Create a group (default: a supergroup, id -100...) with the bot and ``members`` in it."""
        with self._lock:
            if chat_id is None:
                base = -1_001_000_000_000 if supergroup else -4_000_000_000
                chat_id = base - self._next_group_id
                self._next_group_id += 1
            kind = "supergroup" if supergroup else "group"
            chat = Chat(chat_id, kind, title=title, username=username)
            state = _ChatState(chat, bot_is_admin=bot_is_admin)
            state.members.add(self.bot.id)
            state.members.update(self._user(m).id for m in members)
            self._chats[chat_id] = state
            if username:
                self._usernames[username.lower()] = chat_id
            return chat

    def add_member(self, chat: ChatLike, user: UserLike) -> None:
        with self._lock:
            self._state(chat).members.add(self._user(user).id)

    def block_bot(self, user: UserLike, blocked: bool = True) -> None:
        """The user blocks (or unblocks) the bot: sends to them get 403."""
        with self._lock:
            self._state(self._user_id(user)).blocked = blocked

    def remove_bot(self, chat: ChatLike, *, kicked: bool = True) -> None:
        """Take the bot out of a group: sends there get 403."""
        with self._lock:
            state = self._state(chat)
            state.bot_is_member = False
            state.bot_was_kicked = kicked

    def fail_next(
        self,
        method: str,
        description: str = "Bad Gateway",
        *,
        error_code: int = 502,
        retry_after: int | None = None,
        times: int = 1,
        when: Callable[[Params], bool] | None = None,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` (whose parameters pass ``when``, if given)
        with this error (not counted in errors()).

        For flood control: ``fail_next("sendMessage", "Too Many Requests: retry after 3",
        error_code=429, retry_after=3)``.
        """
        params = {"retry_after": retry_after} if retry_after is not None else None
        with self._lock:
            for _ in range(times):
                self._injected[method.lower()].append((ApiError(error_code, description, params), when))

    def hold(self, method: str, when: Callable[[Params], bool] | None = None) -> Hold:
        """Stall every call of ``method`` (whose parameters pass ``when``, if given) until the
        returned Hold is released, or its client disconnects (a bot killed -9):
        ``with api.hold("sendMessage") as held: ...``."""
        hold = Hold(self, method.lower(), when)
        with self._lock:
            self._holds[hold.method] = hold
        return hold

    # ------------------------------------------------------------------ driver: user actions

    def enqueue_update(self, payload: JSONDict) -> JSONDict:
        """Queue any update (``{"message": {...}}`` etc.); assigns and returns its update_id."""
        with self._cond:
            return self._enqueue(payload)

    def _enqueue(self, payload: JSONDict, deliver: bool = True) -> JSONDict:
        update = {"update_id": self._next_update_id, **copy.deepcopy(payload)}
        self._next_update_id += 1
        kind = next((k for k in update if k != "update_id"), "")
        if deliver and kind in self._allowed_updates:
            self._updates.append(update)
        else:
            self._undelivered.append(update)
        self._notify()
        return update

    def _user_message(
        self,
        user: UserLike,
        chat: ChatLike | None,
        content: JSONDict,
        reply_to: JSONDict | int | None = None,
    ) -> JSONDict:
        with self._cond:
            sender = self._user(user)
            state = self._state(chat if chat is not None else sender.id)
            state.members.add(sender.id)
            if state.chat.type == "private":
                state.started = True
            message: JSONDict = {
                "message_id": state.next_message_id,
                "from": sender.to_dict(),
                "chat": state.chat.to_dict(),
                "date": self._now(),
            }
            state.next_message_id += 1
            if reply_to is not None:
                reply_id = reply_to if isinstance(reply_to, int) else reply_to["message_id"]
                target = self._messages.get((state.chat.id, reply_id))
                if target is None:
                    raise KeyError(f"no message {reply_id} in chat {state.chat.id} to reply to")
                message["reply_to_message"] = self._snapshot(target)
            message.update(content)
            key = (state.chat.id, message["message_id"])
            self._messages[key] = message
            state.message_ids.append(message["message_id"])
            self._enqueue({"message": message}, deliver=self._delivered(state, message))
            return copy.deepcopy(message)

    def _delivered(self, state: _ChatState, message: JSONDict) -> bool:
        """Group privacy mode: what a non-admin bot in privacy mode gets to see."""
        if not state.bot_is_member:
            return False
        if not self.privacy_mode or state.chat.type == "private" or state.bot_is_admin:
            return True
        reply = message.get("reply_to_message")
        if reply and reply.get("from", {}).get("id") == self.bot.id:
            return True
        text = message.get("text") or message.get("caption") or ""
        me = f"@{self.bot.username}".lower()
        for ent in message.get("entities") or message.get("caption_entities") or []:
            piece = text[ent["offset"] : ent["offset"] + ent["length"]].lower()
            if ent["type"] == "mention" and piece == me:
                return True
            if ent["type"] == "bot_command" and ent["offset"] == 0:
                return "@" not in piece or piece.endswith(me)
        return False

    def send_text(
        self,
        user: UserLike,
        text: str,
        chat: ChatLike | None = None,
        reply_to: JSONDict | int | None = None,
        entities: Sequence[JSONDict] | None = None,
    ) -> JSONDict:
        """The user sends ``text`` (to their private chat unless ``chat``); returns the message.

        Entities are detected like a Telegram client does (``/command``, ``/cmd@bot``,
        ``@mention``, urls...) unless given.
        """
        content: JSONDict = {"text": text}
        found = list(entities) if entities is not None else detect_entities(text)
        if found:
            content["entities"] = _sort_entities(found)
        return self._user_message(user, chat, content, reply_to)

    def mention_bot(self, user: UserLike, chat: ChatLike, text: str = "") -> JSONDict:
        """A group message that @mentions the bot: ``@botname text``."""
        return self.send_text(user, f"@{self.bot.username} {text}".rstrip(), chat=chat)

    def reply_to(self, user: UserLike, message: JSONDict, text: str) -> JSONDict:
        """The user replies to ``message`` (e.g. staff replying to a bot post) in its chat."""
        return self.send_text(user, text, chat=message["chat"]["id"], reply_to=message)

    def send_sticker(self, user: UserLike, emoji: str = "👍", chat: ChatLike | None = None) -> JSONDict:
        with self._lock:
            stored = self._new_file(b"RIFF\x00sticker", "stickers", ".webp", "image/webp")
        sticker = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
            "file_size": len(stored.content),
        }
        return self._user_message(user, chat, {"sticker": sticker})

    def send_photo(
        self,
        user: UserLike,
        caption: str | None = None,
        chat: ChatLike | None = None,
        content: bytes = b"\xff\xd8\xff\xe0fake-jpeg",
    ) -> JSONDict:
        with self._lock:
            small = self._new_file(content[:8], "photos", ".jpg", "image/jpeg")
            large = self._new_file(content, "photos", ".jpg", "image/jpeg")
        sizes = [
            {
                "file_id": f.file_id,
                "file_unique_id": f.file_unique_id,
                "file_size": len(f.content),
                "width": w,
                "height": h,
            }
            for f, w, h in ((small, 90, 67), (large, 1280, 960))
        ]
        return self._user_message(user, chat, {"photo": sizes, **self._user_caption(caption)})

    def send_voice(
        self,
        user: UserLike,
        duration: int = 3,
        chat: ChatLike | None = None,
        content: bytes = b"OggS\x00fake-voice",
    ) -> JSONDict:
        with self._lock:
            stored = self._new_file(content, "voice", ".oga", "audio/ogg")
        voice = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "duration": duration,
            "mime_type": "audio/ogg",
            "file_size": len(content),
        }
        return self._user_message(user, chat, {"voice": voice})

    def send_contact(
        self,
        user: UserLike,
        phone_number: str,
        first_name: str | None = None,
        user_id: int | None = None,
        *,
        last_name: str | None = None,
        chat: ChatLike | None = None,
    ) -> JSONDict:
        """Share a contact. By default the user's own (what a request_contact button sends:
        ``user_id`` is the sender's id); pass ``user_id=0`` for a contact without a user id."""
        with self._lock:
            sender = self._user(user)
        contact: JSONDict = {
            "phone_number": phone_number,
            "first_name": first_name if first_name is not None else sender.first_name,
        }
        if last_name is not None:
            contact["last_name"] = last_name
        contact_user_id = sender.id if user_id is None else user_id
        if contact_user_id:
            contact["user_id"] = contact_user_id
        return self._user_message(user, chat, {"contact": contact})

    def send_location(
        self, user: UserLike, latitude: float, longitude: float, chat: ChatLike | None = None
    ) -> JSONDict:
        location = {"latitude": latitude, "longitude": longitude}
        return self._user_message(user, chat, {"location": location})

    def send_document(
        self,
        user: UserLike,
        filename: str,
        content: bytes,
        mime_type: str | None = None,
        caption: str | None = None,
        chat: ChatLike | None = None,
    ) -> JSONDict:
        mime = mime_type or "application/octet-stream"
        with self._lock:
            stored = self._new_file(content, "documents", "." + filename.rpartition(".")[2], mime)
        document = {
            "file_name": filename,
            "mime_type": mime,
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(content),
        }
        return self._user_message(user, chat, {"document": document, **self._user_caption(caption)})

    @staticmethod
    def _user_caption(caption: str | None) -> JSONDict:
        if caption is None:
            return {}
        found = detect_entities(caption)
        return {"caption": caption, **({"caption_entities": found} if found else {})}

    def edit_text(
        self, message: JSONDict, new_text: str, entities: Sequence[JSONDict] | None = None
    ) -> JSONDict:
        """The user edits their text message: an ``edited_message`` update."""
        with self._cond:
            key = (message["chat"]["id"], message["message_id"])
            current = self._messages.get(key)
            if current is None or key in self._deleted:
                raise KeyError(f"no message {key[1]} in chat {key[0]}")
            if current["from"]["id"] == self.bot.id:
                raise ValueError("users can only edit their own messages")
            edited = {k: v for k, v in current.items() if k != "entities"}
            edited["text"] = new_text
            found = list(entities) if entities is not None else detect_entities(new_text)
            if found:
                edited["entities"] = _sort_entities(found)
            edited["edit_date"] = self._now()
            self._messages[key] = edited
            self._enqueue({"edited_message": edited}, deliver=self._delivered(self._state(key[0]), edited))
            return copy.deepcopy(edited)

    def delete_own(self, message: JSONDict) -> None:
        """The user deletes their own message. Telegram tells a bot nothing of it; the bot finds
        out only when it quotes or edits the message."""
        with self._cond:
            key = (message["chat"]["id"], message["message_id"])
            if key not in self._messages or self._messages[key]["from"]["id"] == self.bot.id:
                raise KeyError(f"no user message {key[1]} in chat {key[0]}")
            self._deleted.add(key)

    def press_button(
        self,
        user: UserLike,
        message: JSONDict,
        callback_data: str | None = None,
        *,
        text: str | None = None,
    ) -> JSONDict:
        """The user presses an inline button (by callback_data or by its text) of the message's
        *current* keyboard; queues a ``callback_query`` update and returns the query."""
        with self._cond:
            sender = self._user(user)
            key = (message["chat"]["id"], message["message_id"])
            current = self._messages.get(key)
            if current is None or key in self._deleted:
                raise KeyError(f"message {key[1]} in chat {key[0]} does not exist (deleted?)")
            pressable = [(label, data) for label, data in self._buttons_of(current) if data is not None]
            chosen = next(
                (
                    data
                    for label, data in pressable
                    if (callback_data is None or data == callback_data) and (text is None or label == text)
                ),
                None,
            )
            if chosen is None:
                raise ValueError(
                    f"no callback button data={callback_data!r} text={text!r} on message "
                    f"{key[1]}; its buttons: {pressable}"
                )
            query_id = str(self._next_callback_id)
            self._next_callback_id += 1
            query = {
                "id": query_id,
                "from": sender.to_dict(),
                "message": copy.deepcopy(current),
                "chat_instance": str((key[0] * 2_654_435_761) % 2**63),
                "data": chosen,
            }
            self._callbacks[query_id] = _Callback(query, time.monotonic())
            self._enqueue({"callback_query": query})
            return copy.deepcopy(query)

    # ------------------------------------------------------------------ driver: inspection

    def messages(self, chat: ChatLike) -> list[JSONDict]:
        """The bot's messages in the chat, current state (edits applied), oldest first."""
        return self._current(chat, bots_only=True)

    def history(self, chat: ChatLike) -> list[JSONDict]:
        """Every message in the chat, users' and the bot's, current state, oldest first."""
        return self._current(chat, bots_only=False)

    def _current(self, chat: ChatLike, *, bots_only: bool) -> list[JSONDict]:
        with self._lock:
            state = self._state(chat)
            cid = state.chat.id
            ids = state.bot_message_ids if bots_only else state.message_ids
            return [
                copy.deepcopy(self._messages[(cid, mid)]) for mid in ids if (cid, mid) not in self._deleted
            ]

    def message(self, chat: ChatLike, message_id: int) -> JSONDict | None:
        with self._lock:
            found = self._messages.get((self._chat_id(chat), message_id))
            return copy.deepcopy(found) if found is not None else None

    def last_message(self, chat: ChatLike) -> JSONDict | None:
        """The bot's latest (not deleted) message in the chat, or None."""
        with self._lock:
            found = self.messages(chat)
            return found[-1] if found else None

    def deleted_messages(self, chat: ChatLike) -> list[JSONDict]:
        with self._lock:
            cid = self._state(chat).chat.id
            return [copy.deepcopy(self._messages[k]) for k in sorted(self._deleted) if k[0] == cid]

    def documents(self, chat: ChatLike) -> list[SentDocument]:
        """Documents the bot sent to the chat: filename, bytes, mime type, caption."""
        with self._lock:
            return list(self._documents.get(self._chat_id(chat), []))

    def chat_actions(self, chat: ChatLike) -> list[str]:
        with self._lock:
            return list(self._state(chat).actions)

    def reply_keyboard(self, chat: ChatLike) -> JSONDict | None:
        """The reply keyboard the bot last showed in the chat (None after ReplyKeyboardRemove)."""
        with self._lock:
            return copy.deepcopy(self._state(chat).reply_keyboard)

    def commands(self, scope: JSONDict | None = None, language_code: str = "") -> list[JSONDict]:
        """What setMyCommands registered for that scope (default scope) and language."""
        with self._lock:
            return copy.deepcopy(self._commands.get((self._scope_key(scope), language_code), []))

    def bot_settings(self) -> JSONDict:
        """Menu button, description etc. set by setChatMenuButton, setMyDescription..."""
        with self._lock:
            return copy.deepcopy(self._bot_settings)

    def answered_callbacks(self) -> list[JSONDict]:
        """Answers to callback queries: id, data, text, show_alert, url, cache_time."""
        with self._lock:
            return copy.deepcopy(self._answered)

    def unanswered_callbacks(self) -> list[JSONDict]:
        """Button presses the bot has not answered (yet)."""
        with self._lock:
            return [copy.deepcopy(c.query) for c in self._callbacks.values() if c.answer is None]

    def long_polls_waiting(self) -> int:
        """How many getUpdates requests are parked waiting for an update right now."""
        with self._lock:
            return self._polls_waiting

    def pending_updates(self) -> list[JSONDict]:
        """Updates not yet confirmed by the bot (through getUpdates' offset)."""
        with self._lock:
            return copy.deepcopy(list(self._updates))

    def undelivered_updates(self) -> list[JSONDict]:
        """Updates the bot will never get (privacy mode, allowed_updates, not a member)."""
        with self._lock:
            return copy.deepcopy(self._undelivered)

    def errors(self) -> list[ApiErrorRecord]:
        """Every error answer the server gave (4xx, and 500 for a server bug); injected
        failures (fail_next) are not included."""
        with self._lock:
            return list(self._errors)

    def assert_no_errors(self) -> None:
        errors = self.errors()
        assert not errors, "the bot caused Bot API errors:\n" + "\n".join(
            f"  {e.method} -> {e.status} {e.description} {e.params}" for e in errors
        )

    def server_exceptions(self) -> list[str]:
        """Tracebacks of bugs in this server (each also answered 500 and is in errors())."""
        with self._lock:
            return list(self._exceptions)

    def request_count(self, method: str | None = None) -> int:
        """How many times the bot called ``method`` (case-insensitive), or any method."""
        with self._lock:
            if method is None:
                return sum(self._request_counts.values())
            return self._request_counts[method.lower()]

    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._requests)

    def buttons(self, message: JSONDict) -> list[tuple[str, str | None]]:
        """Flat (text, callback_data) list of the message's inline keyboard, current state
        if the server knows the message; url buttons have callback_data None."""
        with self._lock:
            key = (message.get("chat", {}).get("id"), message.get("message_id"))
            current = self._messages.get(key, message)  # type: ignore[arg-type]
            return self._buttons_of(current)

    @staticmethod
    def _buttons_of(message: JSONDict) -> list[tuple[str, str | None]]:
        rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
        return [(b["text"], b.get("callback_data")) for row in rows for b in row]

    # ------------------------------------------------------------------ driver: waiting

    async def wait_for(self, condition: Callable[[], T], timeout: float = 5.0, *, description: str = "") -> T:
        """Await until ``condition()`` (run under the server lock) returns something truthy.

        Re-checked on every state change (no sleeping loop), without blocking the event loop.
        """
        loop = asyncio.get_running_loop()
        waiter = _AsyncWaiter(loop)
        with self._lock:
            self._async_waiters.add(waiter)
        try:
            deadline = loop.time() + timeout
            while True:
                waiter.event.clear()
                with self._lock:
                    result = condition()
                if result:
                    return result
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise WaitTimeout(self._timeout_report(description or repr(condition), timeout))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await waiter.event.wait()
        finally:
            with self._lock:
                self._async_waiters.discard(waiter)

    def wait_until(self, condition: Callable[[], T], timeout: float = 5.0, *, description: str = "") -> T:
        """Blocking twin of wait_for, for code outside an event loop."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                result = condition()
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise WaitTimeout(self._timeout_report(description or repr(condition), timeout))
                self._cond.wait(remaining)

    def _next_bot_message(
        self, chat: ChatLike, predicate: Callable[[JSONDict], bool] | None
    ) -> Callable[[], JSONDict | None]:
        def check() -> JSONDict | None:
            state = self._state(chat)
            cid = state.chat.id
            ids = state.bot_message_ids
            for index in range(state.wait_cursor, len(ids)):
                key = (cid, ids[index])
                if key in self._deleted:
                    continue
                candidate = copy.deepcopy(self._messages[key])
                if predicate is None or predicate(candidate):
                    state.wait_cursor = index + 1
                    return candidate
            return None

        return check

    async def wait_for_message(
        self,
        chat: ChatLike,
        predicate: Callable[[JSONDict], bool] | None = None,
        timeout: float = 5.0,
    ) -> JSONDict:
        """Await the next bot message in the chat not yet returned by a wait (matching
        ``predicate`` if given; non-matching ones before it are passed over for good)."""
        return await self.wait_for(
            self._next_bot_message(chat, predicate),
            timeout,
            description=f"a new bot message in chat {self._chat_id(chat)}",
        )

    def wait_for_message_sync(
        self,
        chat: ChatLike,
        predicate: Callable[[JSONDict], bool] | None = None,
        timeout: float = 5.0,
    ) -> JSONDict:
        return self.wait_until(
            self._next_bot_message(chat, predicate),
            timeout,
            description=f"a new bot message in chat {self._chat_id(chat)}",
        )

    async def wait_for_edit(
        self,
        message: JSONDict,
        predicate: Callable[[JSONDict], bool] | None = None,
        timeout: float = 5.0,
    ) -> JSONDict:
        """Await until the message differs from ``message`` (and matches ``predicate``)."""
        key = (message["chat"]["id"], message["message_id"])

        def check() -> JSONDict | None:
            current = self._messages.get(key)
            if current is None or current == message:
                return None
            if predicate is not None and not predicate(copy.deepcopy(current)):
                return None
            return copy.deepcopy(current)

        return await self.wait_for(check, timeout, description=f"an edit of message {key}")

    async def wait_for_callback_answer(self, query: JSONDict, timeout: float = 5.0) -> JSONDict:
        """Await the bot's answerCallbackQuery for the query press_button returned."""

        def check() -> JSONDict | None:
            found = self._callbacks.get(query["id"])
            return copy.deepcopy(found.answer) if found and found.answer else None

        return await self.wait_for(check, timeout, description=f"an answer to query {query['id']}")

    async def wait_until_consumed(self, timeout: float = 5.0) -> None:
        """Await until the bot confirmed every queued update (it polled past them)."""
        await self.wait_for(lambda: not self._updates, timeout, description="no pending updates")

    def _timeout_report(self, description: str, timeout: float) -> str:
        lines = [f"timed out after {timeout}s waiting for {description}"]
        recent = sorted(
            (k for k, m in self._messages.items() if m["from"]["id"] == self.bot.id),
            key=lambda k: self._messages[k]["date"],
        )[-5:]
        for key in recent:
            msg = self._messages[key]
            lines.append(f"  bot message {key}: {msg.get('text') or msg.get('caption')!r}")
        lines.append(f"  pending updates: {len(self._updates)}")
        lines.extend(f"  error: {e.method} {e.status} {e.description}" for e in self._errors[-5:])
        return "\n".join(lines)

    # ------------------------------------------------------------------ HTTP entry point

    def handle_http(
        self,
        http_method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes,
        client_gone: Callable[[], bool] = lambda: False,
    ) -> tuple[int, bytes, str]:
        """Answer one HTTP request: (status, body, content type)."""
        parts = urlsplit(path)
        file_match = _FILE_PATH_RE.match(parts.path)
        if file_match and self._token_ok(unquote(file_match.group("token"))):
            with self._lock:
                stored = self._file_paths.get(unquote(file_match.group("path")))
            if stored is not None:
                return 200, stored.content, stored.mime_type
        match = _PATH_RE.match(parts.path)
        token = unquote(match.group("token")) if match else ""
        if match is None or not _TOKEN_RE.match(token):
            return self._error_response("", ApiError(404, "Not Found"), {})
        if not self._token_ok(token):
            return self._error_response("", ApiError(401, "Unauthorized"), {})
        name = match.group("method")
        started = time.monotonic()
        try:
            params = self._parse_params(parts.query, headers, body)
        except ApiError as error:
            return self._error_response(name, error, {})
        except Exception:
            with self._lock:
                self._exceptions.append(traceback.format_exc())
            return self._error_response(name, ApiError(500, "Internal Server Error"), {})
        status, payload, ctype = self._call(name, params, client_gone)
        with self._lock:
            self._request_counts[name.lower()] += 1
            self._requests.append(RequestRecord(name, status, started, time.monotonic() - started))
        return status, payload, ctype

    def _token_ok(self, token: str) -> bool:
        return self.token is None or token == self.token

    def _call(self, name: str, params: Params, client_gone: Callable[[], bool]) -> tuple[int, bytes, str]:
        lowered = name.lower()
        with self._lock:
            injected = self._injected.get(lowered, ())
            for error, when in injected:
                if when is None or when(params):
                    injected.remove((error, when))
                    return self._encode(error.status, self._error_body(error))
            hold = self._holds.get(lowered)
        if hold is not None and (hold.when is None or hold.when(params)):
            hold.stall(client_gone)
        try:
            if lowered == "getupdates":
                result: Any = self._get_updates(params, client_gone)
            else:
                method = self._methods.get(lowered)
                if method is None:
                    raise ApiError(404, "Not Found")
                with self._cond:
                    result = method(params)
        except _DropConnection:
            raise
        except ApiError as error:
            return self._error_response(name, error, params.loggable())
        except Exception:  # a bug in this server: make it loud in errors()
            with self._lock:
                self._exceptions.append(traceback.format_exc())
            return self._error_response(name, ApiError(500, "Internal Server Error"), params.loggable())
        if isinstance(result, _Described):
            return self._encode(200, {"ok": True, "result": result.result, "description": result.description})
        return self._encode(200, {"ok": True, "result": result})

    @staticmethod
    def _error_body(error: ApiError) -> JSONDict:
        body: JSONDict = {"ok": False, "error_code": error.status, "description": error.description}
        if error.parameters:
            body["parameters"] = error.parameters
        return body

    def _error_response(self, method: str, error: ApiError, params: JSONDict) -> tuple[int, bytes, str]:
        with self._lock:
            self._errors.append(ApiErrorRecord(method, error.status, error.description, params))
        return self._encode(error.status, self._error_body(error))

    @staticmethod
    def _encode(status: int, payload: JSONDict) -> tuple[int, bytes, str]:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        return status, body, "application/json"

    @staticmethod
    def _parse_params(query: str, headers: Mapping[str, str], body: bytes) -> Params:
        values: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
        files: dict[str, Upload] = {}
        ctype_header = headers.get("Content-Type") or ""
        ctype = ctype_header.split(";", 1)[0].strip().lower()
        if body and ctype == "application/json":
            try:
                decoded = json.loads(body)
            except ValueError:
                raise bad_request("can't parse JSON encoded request parameters") from None
            if not isinstance(decoded, dict):
                raise bad_request("JSON encoded request parameters must be an Object")
            values.update(decoded)
        elif body and ctype == "multipart/form-data":
            match = re.search(r'boundary="?([^";]+)"?', ctype_header)
            if match is None:
                raise bad_request("multipart/form-data without a boundary")
            fields, files = _parse_multipart(body, match.group(1))
            values.update(fields)
        elif body:
            values.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        return Params(values, files)

    # ------------------------------------------------------------------ method helpers

    def _target_chat(self, p: Params, name: str = "chat_id", *, sending: bool = True) -> _ChatState:
        raw = p.values.get(name)
        if raw in (None, ""):
            raise bad_request(f"{name} is empty")
        if isinstance(raw, str) and raw.startswith("@"):
            chat_id = self._usernames.get(raw[1:].lower())
        else:
            chat_id = p.integer(name)
        state = self._chats.get(chat_id) if chat_id is not None else None
        if state is None:
            raise bad_request("chat not found")
        if sending:
            if state.chat.type == "private":
                if state.blocked:
                    raise ApiError(403, "Forbidden: bot was blocked by the user")
                if not state.started:
                    raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
            elif not state.bot_is_member:
                kind = "supergroup chat" if state.chat.type == "supergroup" else "group chat"
                if state.bot_was_kicked:
                    raise ApiError(403, f"Forbidden: bot was kicked from the {kind}")
                raise ApiError(403, f"Forbidden: bot is not a member of the {kind}")
        return state

    def _formatted(
        self,
        text: str | None,
        parse_mode: str | None,
        entities: Any,
        *,
        max_length: int,
        too_long: str,
        empty: str | None,
    ) -> tuple[str, list[JSONDict]]:
        """Parse text/caption like Telegram: parse_mode or entities, trim, length, auto-links."""
        text = text or ""
        if entities not in (None, []):
            if not isinstance(entities, list) or not all(
                isinstance(e, dict) and {"type", "offset", "length"} <= e.keys() for e in entities
            ):
                raise bad_request("can't parse entities JSON object")
            plain, found = text, [dict(e) for e in entities]
        else:
            mode = (parse_mode or "").strip().lower()
            try:
                if mode == "html":
                    plain, found = parse_html(
                        text,
                        strict_ampersand=self.strict_html_ampersand,
                        users={uid: u.to_dict() for uid, u in self._users.items()},
                    )
                elif mode == "markdownv2":
                    plain, found = parse_markdown_v2(text)
                elif mode == "markdown":
                    plain, found = parse_markdown(text)
                elif mode == "":
                    plain, found = text, []
                else:
                    raise bad_request(f"unsupported parse_mode {parse_mode!r}")
            except EntityParseError as error:
                raise bad_request(f"can't parse entities: {error}") from None
        plain, found = _trim(plain, found)
        if not plain and empty is not None:
            raise bad_request(empty)
        if len(plain) > max_length:
            raise bad_request(too_long)
        found.extend(detect_entities(plain, found))
        return plain, _sort_entities(found)

    def _markup(self, p: Params, state: _ChatState | None) -> JSONDict | None:
        """Validate reply_markup; track reply keyboards; return what the Message carries."""
        markup = parse_reply_markup(p.obj("reply_markup", "reply keyboard markup"))
        if markup is None:
            return None
        if "inline_keyboard" in markup:
            return markup
        if state is not None:
            if "keyboard" in markup:
                state.reply_keyboard = markup
            elif "remove_keyboard" in markup:
                state.reply_keyboard = None
        return None  # reply keyboards and force_reply are not part of the Message object

    def _reply_target(self, p: Params, state: _ChatState) -> JSONDict | None:
        params = p.obj("reply_parameters", "reply parameters") or {}
        if not isinstance(params, dict):
            raise bad_request("can't parse reply parameters JSON object")
        message_id = params.get("message_id") or p.integer("reply_to_message_id")
        if not message_id:
            return None
        chat_id = state.chat.id
        if params.get("chat_id") not in (None, ""):
            chat_id = Params({"c": params["chat_id"]}).integer("c")
        key = (chat_id, int(message_id))
        target = self._messages.get(key)
        if target is None or key in self._deleted:
            lenient = params.get("allow_sending_without_reply")
            if lenient or p.boolean("allow_sending_without_reply"):
                return None
            raise bad_request("message to be replied not found")
        return self._snapshot(target)

    @staticmethod
    def _snapshot(message: JSONDict) -> JSONDict:
        return copy.deepcopy({k: v for k, v in message.items() if k != "reply_to_message"})

    def _store_bot_message(
        self, state: _ChatState, content: JSONDict, reply_to: JSONDict | None = None
    ) -> JSONDict:
        message: JSONDict = {
            "message_id": state.next_message_id,
            "from": self.bot.to_dict(),
            "chat": state.chat.to_dict(),
            "date": self._now(),
        }
        state.next_message_id += 1
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        message.update({k: v for k, v in content.items() if v not in (None, [])})
        self._messages[(state.chat.id, message["message_id"])] = message
        state.message_ids.append(message["message_id"])
        state.bot_message_ids.append(message["message_id"])
        self._notify()
        return message

    def _find_message(self, p: Params, not_found: str) -> tuple[_ChatState, JSONDict]:
        if p.has("inline_message_id") and not p.has("chat_id"):
            raise bad_request("MESSAGE_ID_INVALID")
        state = self._target_chat(p, sending=False)
        key = (state.chat.id, p.integer("message_id"))
        message = self._messages.get(key)
        if message is None or key in self._deleted:
            raise bad_request(not_found)
        return state, message

    def _editable(self, p: Params) -> tuple[_ChatState, JSONDict]:
        state, message = self._find_message(p, "message to edit not found")
        if message["from"]["id"] != self.bot.id or "forward_origin" in message:
            raise bad_request("message can't be edited")
        return state, message

    def _replace(self, state: _ChatState, old: JSONDict, changes: JSONDict) -> JSONDict:
        new = {k: v for k, v in old.items() if k not in changes}
        new.update({k: v for k, v in changes.items() if v not in (None, [])})
        new["edit_date"] = self._now()
        self._messages[(state.chat.id, old["message_id"])] = new
        self._notify()
        return new

    @staticmethod
    def _scope_key(scope: Any) -> str:
        if not scope or (isinstance(scope, dict) and scope.get("type") == "default"):
            return "default"
        return json.dumps(scope, sort_keys=True)

    # ------------------------------------------------------------------ Bot API methods
    # Each _m_<lowercase name> runs under the server lock and returns the "result".

    def _m_getme(self, p: Params) -> JSONDict:
        return {
            **self.bot.to_dict(),
            "can_join_groups": True,
            "can_read_all_group_messages": not self.privacy_mode,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def _m_logout(self, p: Params) -> bool:
        return True

    def _m_close(self, p: Params) -> bool:
        return True

    def _get_updates(self, p: Params, client_gone: Callable[[], bool]) -> list[JSONDict]:
        offset = p.integer("offset")
        limit = min(max(p.integer("limit", 100), 1), 100)
        timeout = max(p.integer("timeout"), 0)
        allowed = p.obj("allowed_updates", "allowed updates")
        with self._cond:
            if self._webhook_url:
                raise ApiError(
                    409,
                    "Conflict: can't use getUpdates method while webhook is active; "
                    "use deleteWebhook to delete the webhook first",
                )
            self._poll_generation += 1
            generation = self._poll_generation
            self._notify()  # an older long poll still waiting gets terminated
            if isinstance(allowed, list):
                self._allowed_updates = frozenset(allowed) or DEFAULT_UPDATE_TYPES
                if any(
                    next(iter(u.keys() - {"update_id"})) not in self._allowed_updates for u in self._updates
                ):
                    kept = [
                        u
                        for u in self._updates
                        if next(iter(u.keys() - {"update_id"})) in self._allowed_updates
                    ]
                    self._updates = deque(kept)
            if offset < 0:
                while len(self._updates) > -offset:
                    self._updates.popleft()
            else:
                while self._updates and self._updates[0]["update_id"] < offset:
                    self._updates.popleft()
            self._notify()
            deadline = time.monotonic() + timeout
            while True:
                if generation != self._poll_generation:
                    if client_gone():
                        raise _DropConnection
                    raise ApiError(409, POLL_CONFLICT)
                if self._updates:
                    if client_gone():
                        raise _DropConnection
                    return [self._updates[i] for i in range(min(limit, len(self._updates)))]
                remaining = deadline - time.monotonic()
                if self._stopping or remaining <= 0:
                    return []
                self._polls_waiting += 1
                self._notify()
                try:
                    self._cond.wait(remaining)
                finally:
                    self._polls_waiting -= 1

    def _m_deletewebhook(self, p: Params) -> _Described:
        if p.boolean("drop_pending_updates"):
            self._updates.clear()
            self._notify()
        had, self._webhook_url = self._webhook_url, ""
        return _Described(True, "Webhook was deleted" if had else "Webhook is already deleted")

    def _m_setwebhook(self, p: Params) -> _Described:
        url = p.text("url") or ""
        if url and (normalize_link(url) is None or not url.startswith("https://")):
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        if p.boolean("drop_pending_updates"):
            self._updates.clear()
        had, self._webhook_url = self._webhook_url, url
        if not url:
            return _Described(True, "Webhook was deleted" if had else "Webhook is already deleted")
        return _Described(True, "Webhook was set")

    def _m_getwebhookinfo(self, p: Params) -> JSONDict:
        return {
            "url": self._webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }

    def _m_setmycommands(self, p: Params) -> bool:
        commands = p.obj("commands", "commands") or []
        if not isinstance(commands, list):
            raise bad_request('Field "commands" must be an Array')
        if len(commands) > 100:
            raise bad_request("BOT_COMMANDS_TOO_MUCH")
        clean: list[JSONDict] = []
        for command in commands:
            if not isinstance(command, dict):
                raise bad_request("can't parse BotCommand: BotCommand must be an Object")
            for name in ("command", "description"):
                if name not in command:
                    raise bad_request(f"can't parse BotCommand: Can't find field \"{name}\"")
                if not isinstance(command[name], str):
                    raise bad_request(f'can\'t parse BotCommand: Field "{name}" must be of type String')
            if not re.fullmatch(r"[a-z0-9_]{1,32}", command["command"]):
                raise bad_request("BOT_COMMAND_INVALID")
            description = command["description"].strip()
            if not description:
                raise bad_request("command description must be non-empty")
            if len(description) > 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
            clean.append({"command": command["command"], "description": description})
        scope = p.obj("scope", "BotCommandScope")
        self._commands[(self._scope_key(scope), p.text("language_code") or "")] = clean
        return True

    def _m_getmycommands(self, p: Params) -> list[JSONDict]:
        key = (self._scope_key(p.obj("scope", "BotCommandScope")), p.text("language_code") or "")
        return copy.deepcopy(self._commands.get(key, []))

    def _m_deletemycommands(self, p: Params) -> bool:
        key = (self._scope_key(p.obj("scope", "BotCommandScope")), p.text("language_code") or "")
        self._commands.pop(key, None)
        return True

    def _m_setchatmenubutton(self, p: Params) -> bool:
        if p.has("chat_id"):
            self._target_chat(p, sending=False)
        button = p.obj("menu_button", "menu button") or {"type": "default"}
        self._bot_settings[f"menu_button:{p.text('chat_id') or ''}"] = button
        return True

    def _m_getchatmenubutton(self, p: Params) -> JSONDict:
        key = f"menu_button:{p.text('chat_id') or ''}"
        return self._bot_settings.get(key) or self._bot_settings.get("menu_button:") or {"type": "commands"}

    def _set_setting(self, p: Params, name: str, limit: int) -> bool:
        value = p.text(name) or ""
        if len(value) > limit:
            raise bad_request(f"{name} is too long")
        self._bot_settings[f"{name}:{p.text('language_code') or ''}"] = value
        return True

    def _m_setmydescription(self, p: Params) -> bool:
        return self._set_setting(p, "description", 512)

    def _m_setmyshortdescription(self, p: Params) -> bool:
        return self._set_setting(p, "short_description", 120)

    def _m_setmyname(self, p: Params) -> bool:
        return self._set_setting(p, "name", 64)

    def _m_getmydescription(self, p: Params) -> JSONDict:
        key = f"description:{p.text('language_code') or ''}"
        return {"description": self._bot_settings.get(key, "")}

    def _m_getmyshortdescription(self, p: Params) -> JSONDict:
        key = f"short_description:{p.text('language_code') or ''}"
        return {"short_description": self._bot_settings.get(key, "")}

    def _m_getmyname(self, p: Params) -> JSONDict:
        key = f"name:{p.text('language_code') or ''}"
        return {"name": self._bot_settings.get(key) or self.bot.first_name}

    def _m_sendmessage(self, p: Params) -> JSONDict:
        state = self._target_chat(p)
        text, entities = self._formatted(
            p.text("text"),
            p.text("parse_mode"),
            p.obj("entities", "entities"),
            max_length=MAX_TEXT_LENGTH,
            too_long="message is too long",
            empty="message text is empty",
        )
        reply_to = self._reply_target(p, state)
        markup = self._markup(p, state)
        content: JSONDict = {"text": text, "entities": entities, "reply_markup": markup}
        preview = p.obj("link_preview_options", "link preview options")
        if isinstance(preview, dict) and preview and any(e["type"] in ("url", "text_link") for e in entities):
            content["link_preview_options"] = preview
        return self._store_bot_message(state, content, reply_to)

    def _m_editmessagetext(self, p: Params) -> JSONDict:
        state, message = self._editable(p)
        if "text" not in message:
            raise bad_request("there is no text in the message to edit")
        text, entities = self._formatted(
            p.text("text"),
            p.text("parse_mode"),
            p.obj("entities", "entities"),
            max_length=MAX_TEXT_LENGTH,
            too_long="MESSAGE_TOO_LONG",
            empty="message text is empty",
        )
        markup = self._markup(p, None)
        if (
            text == message["text"]
            and entities == message.get("entities", [])
            and markup == message.get("reply_markup")
        ):
            raise bad_request(NOT_MODIFIED[len("Bad Request: ") :])
        return self._replace(state, message, {"text": text, "entities": entities, "reply_markup": markup})

    def _m_editmessagecaption(self, p: Params) -> JSONDict:
        state, message = self._editable(p)
        if "text" in message:
            raise bad_request("there is no caption in the message to edit")
        caption, entities = self._formatted(
            p.text("caption"),
            p.text("parse_mode"),
            p.obj("caption_entities", "entities"),
            max_length=MAX_CAPTION_LENGTH,
            too_long="message caption is too long",
            empty=None,
        )
        markup = self._markup(p, None)
        if (
            caption == message.get("caption", "")
            and entities == message.get("caption_entities", [])
            and markup == message.get("reply_markup")
        ):
            raise bad_request(NOT_MODIFIED[len("Bad Request: ") :])
        changes = {"caption": caption, "caption_entities": entities, "reply_markup": markup}
        return self._replace(state, message, changes)

    def _m_editmessagereplymarkup(self, p: Params) -> JSONDict:
        state, message = self._editable(p)
        markup = self._markup(p, None)
        if markup == message.get("reply_markup"):
            raise bad_request(NOT_MODIFIED[len("Bad Request: ") :])
        return self._replace(state, message, {"reply_markup": markup})

    def _m_answercallbackquery(self, p: Params) -> bool:
        query_id = p.text("callback_query_id") or ""
        callback = self._callbacks.get(query_id)
        expired = (
            callback is not None
            and self.callback_query_ttl is not None
            and time.monotonic() - callback.created > self.callback_query_ttl
        )
        if callback is None or callback.answer is not None or expired:
            raise ApiError(400, QUERY_TOO_OLD)
        text = p.text("text")
        if text is not None and len(text) > MAX_CALLBACK_ANSWER_LENGTH:
            raise bad_request("MESSAGE_TOO_LONG")
        answer: JSONDict = {
            "id": query_id,
            "data": callback.query.get("data"),
            "user_id": callback.query["from"]["id"],
            "text": text,
            "show_alert": p.boolean("show_alert"),
            "url": p.text("url"),
            "cache_time": p.integer("cache_time"),
        }
        callback.answer = answer
        self._answered.append(answer)
        self._notify()
        return True

    def _m_senddocument(self, p: Params) -> JSONDict:
        state = self._target_chat(p)
        raw = p.files.get("document") or p.values.get("document")
        if isinstance(raw, str) and raw.startswith("attach://"):
            raw = p.files.get(raw[len("attach://") :])
        if raw in (None, ""):
            raise bad_request("there is no document in the request")
        if isinstance(raw, Upload):
            if not raw.content:
                raise bad_request("file must be non-empty")
            if len(raw.content) > 50 * 1024 * 1024:
                raise ApiError(413, "Request Entity Too Large")
            ext = "." + raw.filename.rpartition(".")[2] if "." in raw.filename else ""
            stored = self._new_file(raw.content, "documents", ext, raw.content_type)
            filename, mime = raw.filename, raw.content_type
        else:
            stored_or_none = self._files.get(str(raw))
            if stored_or_none is None:
                if str(raw).startswith(("http://", "https://")):
                    raise bad_request("failed to get HTTP URL content")
                raise bad_request("wrong file identifier/HTTP URL specified")
            stored = stored_or_none
            filename, mime = stored.file_path.rpartition("/")[2], stored.mime_type
        caption, entities = self._formatted(
            p.text("caption"),
            p.text("parse_mode"),
            p.obj("caption_entities", "entities"),
            max_length=MAX_CAPTION_LENGTH,
            too_long="message caption is too long",
            empty=None,
        )
        reply_to = self._reply_target(p, state)
        markup = self._markup(p, state)
        document = {
            "file_name": filename,
            "mime_type": mime,
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.content),
        }
        message = self._store_bot_message(
            state,
            {
                "document": document,
                "caption": caption or None,
                "caption_entities": entities,
                "reply_markup": markup,
            },
            reply_to,
        )
        self._documents[state.chat.id].append(
            SentDocument(
                state.chat.id,
                message["message_id"],
                filename,
                stored.content,
                mime,
                caption or None,
                stored.file_id,
            )
        )
        return message

    _CONTENT_KEYS = (
        "text",
        "entities",
        "caption",
        "caption_entities",
        "document",
        "photo",
        "sticker",
        "voice",
        "audio",
        "video",
        "animation",
        "contact",
        "location",
        "venue",
        "poll",
    )

    def _source_message(self, p: Params, not_found: str) -> JSONDict:
        source_state = self._target_chat(p, "from_chat_id", sending=False)
        key = (source_state.chat.id, p.integer("message_id"))
        source = self._messages.get(key)
        if source is None or key in self._deleted:
            raise bad_request(not_found)
        return source

    def _m_copymessage(self, p: Params) -> JSONDict:
        source = self._source_message(p, "message to copy not found")
        state = self._target_chat(p)
        content = {k: copy.deepcopy(source[k]) for k in self._CONTENT_KEYS if k in source}
        if p.values.get("caption") is not None and "text" not in source:
            caption, entities = self._formatted(
                p.text("caption"),
                p.text("parse_mode"),
                p.obj("caption_entities", "entities"),
                max_length=MAX_CAPTION_LENGTH,
                too_long="message caption is too long",
                empty=None,
            )
            content["caption"], content["caption_entities"] = caption or None, entities
        reply_to = self._reply_target(p, state)
        content["reply_markup"] = self._markup(p, state)
        message = self._store_bot_message(state, content, reply_to)
        return {"message_id": message["message_id"]}

    def _m_forwardmessage(self, p: Params) -> JSONDict:
        source = self._source_message(p, "message to forward not found")
        state = self._target_chat(p)
        content = {k: copy.deepcopy(source[k]) for k in self._CONTENT_KEYS if k in source}
        origin = source.get("forward_origin") or {
            "type": "user",
            "sender_user": source["from"],
            "date": source["date"],
        }
        return self._store_bot_message(state, {"forward_origin": origin, **content})

    def _m_sendchataction(self, p: Params) -> bool:
        state = self._target_chat(p)
        action = p.text("action") or ""
        if action not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        state.actions.append(action)
        return True

    def _m_deletemessage(self, p: Params) -> bool:
        state, message = self._find_message(p, "message to delete not found")
        own = message["from"]["id"] == self.bot.id
        if not own and state.chat.type != "private" and not state.bot_is_admin:
            raise bad_request("message can't be deleted")
        self._deleted.add((state.chat.id, message["message_id"]))
        self._notify()
        return True

    def _m_deletemessages(self, p: Params) -> bool:
        state = self._target_chat(p, sending=False)
        ids = p.obj("message_ids", "message identifiers") or []
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise bad_request("message identifiers are not specified")
        for message_id in ids:
            key = (state.chat.id, int(message_id))
            message = self._messages.get(key)
            if message is None:
                continue
            if message["from"]["id"] == self.bot.id or state.chat.type == "private":
                self._deleted.add(key)
        self._notify()
        return True

    def _m_getchat(self, p: Params) -> JSONDict:
        state = self._target_chat(p, sending=False)
        return {
            **state.chat.to_dict(),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }

    def _m_getfile(self, p: Params) -> JSONDict:
        stored = self._files.get(p.text("file_id") or "")
        if stored is None:
            raise bad_request("wrong file_id or the file is temporarily unavailable")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.content),
            "file_path": stored.file_path,
        }


# --------------------------------------------------------------------------- HTTP plumbing


def _disposition_param(disposition: str, name: str) -> str | None:
    star = re.search(rf"(?:^|;)\s*{name}\*\s*=\s*([^;]+)", disposition)
    if star:
        value = star.group(1).strip()
        return unquote(value.split("''", 1)[1] if "''" in value else value)
    plain = re.search(rf'(?:^|;)\s*{name}\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]*))', disposition)
    if plain is None:
        return None
    value = plain.group(1) if plain.group(1) is not None else plain.group(2).strip()
    return value.replace("%22", '"').replace('\\"', '"').replace("\\\\", "\\")


def _parse_multipart(body: bytes, boundary: str) -> tuple[dict[str, str], dict[str, Upload]]:
    fields: dict[str, str] = {}
    files: dict[str, Upload] = {}
    for part in body.split(b"--" + boundary.encode("latin-1"))[1:]:
        if part.startswith(b"--"):
            break
        part = part.removeprefix(b"\r\n")
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        content = content.removesuffix(b"\r\n")
        headers: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition", "")
        name = _disposition_param(disposition, "name")
        filename = _disposition_param(disposition, "filename")
        if name is None:
            continue
        if filename is not None:
            files[name] = Upload(filename, content, headers.get("content-type") or "application/octet-stream")
        else:
            fields[name] = content.decode("utf-8", "replace")
    return fields, files


def _peer_closed(sock: socket.socket) -> bool:
    """True if the client has closed its end (a killed bot, a cancelled request)."""
    try:
        poller = select.poll()
        poller.register(sock, select.POLLIN | select.POLLHUP | select.POLLERR)
        if not poller.poll(0):
            return False
        return sock.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _HTTPServer

    def do_POST(self) -> None:
        self._serve()

    do_GET = do_POST

    def _serve(self) -> None:
        with self.server.in_flight():
            self._answer()

    def _answer(self) -> None:
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        try:
            status, payload, ctype = self.server.api.handle_http(
                self.command,
                self.path,
                self.headers,
                body,
                client_gone=lambda: _peer_closed(self.connection),
            )
        except _DropConnection:
            self.close_connection = True
            return
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = ""
        head = (
            f"HTTP/1.1 {status} {phrase}\r\n"
            f"Server: mesobot-test-telegram\r\n"
            f"Content-Type: {ctype}\r\n"
            f"Content-Length: {len(payload)}\r\n"
            f"Connection: {'close' if self.close_connection else 'keep-alive'}\r\n\r\n"
        )
        self.wfile.write(head.encode("latin-1") + payload)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline(65537).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _HTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that tracks its connections so stop() can close and join them."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], api: TelegramServer):
        self.api = api
        self._conn_lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._conn_threads: set[threading.Thread] = set()
        self._idle = threading.Condition(self._conn_lock)
        self._requests_in_flight = 0
        super().__init__(address, _Handler)

    @contextlib.contextmanager
    def in_flight(self) -> Iterator[None]:
        with self._conn_lock:
            self._requests_in_flight += 1
        try:
            yield
        finally:
            with self._conn_lock:
                self._requests_in_flight -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout: float) -> None:
        with self._idle:
            self._idle.wait_for(lambda: self._requests_in_flight == 0, timeout)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address),
            name="telegram-server-connection",
            daemon=True,
        )
        with self._conn_lock:
            self._connections.add(request)
            self._conn_threads.add(thread)
        thread.start()

    def _serve_connection(self, request: socket.socket, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            with self._conn_lock:
                self._connections.discard(request)
                self._conn_threads.discard(threading.current_thread())

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hung up mid-answer is not news

    def close_connections(self) -> None:
        with self._conn_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def join_threads(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with self._conn_lock:
                threads = list(self._conn_threads)
            if not threads:
                return
            for thread in threads:
                thread.join(max(deadline - time.monotonic(), 0))
            if time.monotonic() >= deadline:
                return
