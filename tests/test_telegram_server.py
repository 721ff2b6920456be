"""Tests of the loopback Telegram Bot API server the other tests drive the bot against."""

from __future__ import annotations

import asyncio
import io
import json
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeChat,
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, InvalidToken
from telegram.ext import (
    ApplicationBuilder,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from tests.telegram_server import (
    NOT_MODIFIED,
    QUERY_TOO_OLD,
    TEST_TOKEN,
    TelegramServer,
    WaitTimeout,
    parse_html,
)

JSON = dict[str, Any]


@pytest.fixture
async def api(bot_api: TelegramServer) -> AsyncIterator[httpx.AsyncClient]:
    """A raw HTTP client for ``<server>/bot<TOKEN>/<method>``."""
    async with httpx.AsyncClient(base_url=f"{bot_api.base_url}{TEST_TOKEN}/") as client:
        yield client


@pytest.fixture
async def bot(bot_api: TelegramServer) -> AsyncIterator[Bot]:
    """A real PTB Bot pointed at the server."""
    async with Bot(TEST_TOKEN, base_url=bot_api.base_url, base_file_url=bot_api.base_file_url) as b:
        yield b


async def call(client: httpx.AsyncClient, method: str, **params: Any) -> tuple[int, JSON]:
    response = await client.post(method, json=params)
    return response.status_code, response.json()


def bad(description: str) -> JSON:
    return {"ok": False, "error_code": 400, "description": description}


# --------------------------------------------------------------------------- raw protocol


async def test_get_me_has_telegram_shape(bot_api: TelegramServer, api: httpx.AsyncClient) -> None:
    status, body = await call(api, "getMe")
    assert status == 200
    assert body["ok"] is True
    me = body["result"]
    assert me["id"] == 123456789 and me["is_bot"] is True
    assert me["first_name"] == "Mesobot" and me["username"] == "mesobot_test_bot"
    for flag in ("can_join_groups", "can_read_all_group_messages", "supports_inline_queries"):
        assert isinstance(me[flag], bool)
    # method names are case-insensitive, GET works too
    response = await api.get("getme")
    assert response.json()["result"] == me


async def test_wrong_token_unknown_method_and_bad_path(bot_api: TelegramServer) -> None:
    async with httpx.AsyncClient(base_url=bot_api.url) as client:
        wrong = await client.post("/bot123456789:AAHsomeoneElsesToken000000000000000/getMe")
        assert wrong.status_code == 401
        assert wrong.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
        unknown = await client.post(f"/bot{TEST_TOKEN}/sendTelepathy")
        assert unknown.status_code == 404
        assert unknown.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
        malformed = await client.post("/botnot-a-token/getMe")
        assert malformed.status_code == 404
    assert [e.status for e in bot_api.errors()] == [401, 404, 404]


async def test_parameters_as_json_form_query_and_multipart(
    bot_api: TelegramServer, api: httpx.AsyncClient
) -> None:
    user = bot_api.add_user("Ann")
    markup = {"inline_keyboard": [[{"text": "Yes", "callback_data": "y"}]]}
    form = await api.post(
        "sendMessage",
        data={"chat_id": str(user.id), "text": "form", "reply_markup": json.dumps(markup)},
    )
    as_json = await api.post("sendMessage", json={"chat_id": user.id, "text": "json", "reply_markup": markup})
    query = await api.get("sendMessage", params={"chat_id": user.id, "text": "query"})
    multipart = await api.post(
        "sendMessage",
        data={"chat_id": str(user.id), "text": "multipart"},
        files={"unused": ("a.bin", b"\x00\x01", "application/octet-stream")},
    )
    for response in (form, as_json, query, multipart):
        assert response.status_code == 200, response.text
    assert form.json()["result"]["reply_markup"] == markup
    assert as_json.json()["result"]["reply_markup"] == markup
    assert [m["text"] for m in bot_api.messages(user)] == ["form", "json", "query", "multipart"]
    assert bot_api.request_count("sendMessage") == 4


async def test_sent_message_is_a_complete_telegram_message(
    bot_api: TelegramServer, api: httpx.AsyncClient
) -> None:
    user = bot_api.add_user("Ann", username="ann")
    question = bot_api.send_text(user, "hello")
    before = int(time.time())
    status, body = await call(
        api,
        "sendMessage",
        chat_id=user.id,
        text="Hi <b>Ann</b>",
        parse_mode="HTML",
        reply_parameters={"message_id": question["message_id"]},
    )
    assert status == 200
    message = body["result"]
    assert message["message_id"] == question["message_id"] + 1  # ids count per chat
    assert abs(message["date"] - before) <= 2  # seconds, not milliseconds
    assert message["from"] == {
        "id": 123456789,
        "is_bot": True,
        "first_name": "Mesobot",
        "username": "mesobot_test_bot",
    }
    assert message["chat"] == {
        "id": user.id,
        "username": "ann",
        "first_name": "Ann",
        "type": "private",
    }
    assert message["text"] == "Hi Ann"
    assert message["entities"] == [{"offset": 3, "length": 3, "type": "bold"}]
    assert message["reply_to_message"]["text"] == "hello"
    missing = await call(api, "sendMessage", chat_id=user.id, text="x", reply_parameters={"message_id": 999})
    assert missing == (400, bad("Bad Request: message to be replied not found"))


@pytest.mark.parametrize(
    ("params", "description"),
    [
        ({"text": ""}, "Bad Request: message text is empty"),
        ({"text": " \n\t "}, "Bad Request: message text is empty"),
        ({"text": "<b> </b>", "parse_mode": "HTML"}, "Bad Request: message text is empty"),
        ({}, "Bad Request: message text is empty"),
        ({"text": "x" * 4097}, "Bad Request: message is too long"),
        (
            {"text": "<b>" + "x" * 4097 + "</b>", "parse_mode": "HTML"},
            "Bad Request: message is too long",
        ),
        (
            {"text": "<p>hi</p>", "parse_mode": "HTML"},
            'Bad Request: can\'t parse entities: Unsupported start tag "p" at byte offset 0',
        ),
        (
            {"text": "<b>hi", "parse_mode": "HTML"},
            "Bad Request: can't parse entities: Can't find end tag corresponding to start tag \"b\"",
        ),
        (
            {"text": "<b><i>x</b></i>", "parse_mode": "HTML"},
            "Bad Request: can't parse entities: Unmatched end tag at byte offset 7, "
            'expected "</i>", found "</b>"',
        ),
        (
            {"text": "é < 2", "parse_mode": "HTML"},
            'Bad Request: can\'t parse entities: Unsupported start tag "" at byte offset 3',
        ),
        (
            {"text": "a</b>", "parse_mode": "HTML"},
            "Bad Request: can't parse entities: Unexpected end tag at byte offset 1",
        ),
        (
            {"text": "x <b", "parse_mode": "HTML"},
            "Bad Request: can't parse entities: Unclosed start tag at byte offset 2",
        ),
        (
            {"text": '<span class="big">x</span>', "parse_mode": "HTML"},
            'Bad Request: can\'t parse entities: Tag "span" must have class "tg-spoiler" at byte offset 0',
        ),
        (
            {"text": "Q&A", "parse_mode": "HTML"},
            'Bad Request: can\'t parse entities: Unescaped "&" at byte offset 1: write it as "&amp;"',
        ),
        (
            {"text": "1.5", "parse_mode": "MarkdownV2"},
            "Bad Request: can't parse entities: Character '.' is reserved and must be escaped with "
            "the preceding '\\'",
        ),
        (
            {"text": "*bold", "parse_mode": "MarkdownV2"},
            "Bad Request: can't parse entities: Can't find end of Bold entity at byte offset 0",
        ),
        (
            {"text": "a *b", "parse_mode": "Markdown"},
            "Bad Request: can't parse entities: Can't find end of the entity starting at byte offset 2",
        ),
    ],
)
async def test_text_validation_errors(
    bot_api: TelegramServer, api: httpx.AsyncClient, params: JSON, description: str
) -> None:
    user = bot_api.add_user()
    status, body = await call(api, "sendMessage", chat_id=user.id, **params)
    assert (status, body) == (400, bad(description))
    assert bot_api.messages(user) == []
    assert [e.description for e in bot_api.errors()] == [description]


async def test_longest_text_is_accepted(bot_api: TelegramServer, api: httpx.AsyncClient) -> None:
    user = bot_api.add_user()
    text = "<b>" + "x" * 4096 + "</b>"
    status, body = await call(api, "sendMessage", chat_id=user.id, text=text, parse_mode="HTML")
    assert status == 200 and len(body["result"]["text"]) == 4096


def test_html_parser_builds_telegram_entities() -> None:
    text, entities = parse_html(
        '<b>bold <i>both</i></b> 😀 <code>c</code> <pre><code class="language-python">p</code>'
        '</pre> <a href="https://example.com">l</a> <tg-spoiler>s</tg-spoiler> '
        "<blockquote expandable>q</blockquote> &lt;&gt;&amp;&quot;&#33;&#x21;"
    )
    assert text == 'bold both 😀 c p l s q <>&"!!'
    assert entities == [
        {"offset": 5, "length": 4, "type": "italic"},
        {"offset": 0, "length": 9, "type": "bold"},
        {"offset": 13, "length": 1, "type": "code"},  # after the emoji: 2 UTF-16 units
        {"offset": 15, "length": 1, "type": "pre", "language": "python"},
        {"offset": 17, "length": 1, "type": "text_link", "url": "https://example.com/"},
        {"offset": 19, "length": 1, "type": "spoiler"},
        {"offset": 21, "length": 1, "type": "expandable_blockquote"},
    ]
    assert parse_html("a & b", strict_ampersand=False) == ("a & b", [])


async def test_markdown_v2_and_auto_detected_entities(
    bot_api: TelegramServer, api: httpx.AsyncClient
) -> None:
    user = bot_api.add_user()
    status, body = await call(
        api,
        "sendMessage",
        chat_id=user.id,
        parse_mode="MarkdownV2",
        text="*Book* _now_ at [our site](https://academy.example.com) or email hi@academy\\.uk",
    )
    assert status == 200, body
    message = body["result"]
    assert message["text"] == "Book now at our site or email hi@academy.uk"
    assert message["entities"] == [
        {"offset": 0, "length": 4, "type": "bold"},
        {"offset": 5, "length": 3, "type": "italic"},
        {"offset": 12, "length": 8, "type": "text_link", "url": "https://academy.example.com/"},
        {"offset": 30, "length": 13, "type": "email"},
    ]


async def test_keyboards(bot_api: TelegramServer, api: httpx.AsyncClient) -> None:
    user = bot_api.add_user()

    async def send(markup: JSON) -> tuple[int, JSON]:
        return await call(api, "sendMessage", chat_id=user.id, text="pick", reply_markup=markup)

    def inline(**button: Any) -> JSON:
        return {"inline_keyboard": [[{"text": "B", **button}]]}

    assert (await send(inline(callback_data="é" * 32)))[0] == 200  # 64 bytes
    assert await send(inline(callback_data="é" * 33)) == (
        400,
        bad("Bad Request: BUTTON_DATA_INVALID"),
    )
    text_only = (
        "Bad Request: can't parse InlineKeyboardButton: Text buttons are not allowed in the inline keyboard"
    )
    assert await send(inline()) == (400, bad(text_only))
    assert await send(inline(callback_data="")) == (400, bad(text_only))
    assert await send({"inline_keyboard": [[{"text": "", "callback_data": "x"}]]}) == (
        400,
        bad("Bad Request: BUTTON_TEXT_INVALID"),
    )
    assert await send(inline(url="not a url")) == (400, bad("Bad Request: BUTTON_URL_INVALID"))
    assert await send({"inline_keyboard": [{"text": "row is not a list"}]}) == (
        400,
        bad('Bad Request: Field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays'),
    )
    status, body = await send(
        {
            "keyboard": [[{"text": "Share phone", "request_contact": True}], ["Cancel"]],
            "resize_keyboard": True,
            "one_time_keyboard": True,
        }
    )
    assert status == 200 and "reply_markup" not in body["result"]  # not part of a Message
    assert bot_api.reply_keyboard(user)["keyboard"][0][0]["request_contact"] is True
    assert (await send({"remove_keyboard": True}))[0] == 200
    assert bot_api.reply_keyboard(user) is None
    assert (await send({"force_reply": True, "input_field_placeholder": "Your name"}))[0] == 200
    assert (await call(api, "sendMessage", chat_id=user.id, text="x", reply_markup="{nope"))[1] == bad(
        "Bad Request: can't parse reply keyboard markup JSON object"
    )


async def test_edit_errors(bot_api: TelegramServer, api: httpx.AsyncClient) -> None:
    user = bot_api.add_user()
    markup = {"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}
    _, body = await call(api, "sendMessage", chat_id=user.id, text="Menu", reply_markup=markup)
    mid = body["result"]["message_id"]

    same = await call(
        api, "editMessageText", chat_id=user.id, message_id=mid, text="Menu", reply_markup=markup
    )
    assert same == (400, bad(NOT_MODIFIED))
    # Without reply_markup an edit removes the keyboard: that is a modification.
    status, body = await call(api, "editMessageText", chat_id=user.id, message_id=mid, text="Menu")
    assert status == 200 and "reply_markup" not in body["result"]
    assert "edit_date" in body["result"]
    assert await call(api, "editMessageReplyMarkup", chat_id=user.id, message_id=mid) == (
        400,
        bad(NOT_MODIFIED),
    )
    status, body = await call(
        api, "editMessageReplyMarkup", chat_id=user.id, message_id=mid, reply_markup=markup
    )
    assert status == 200 and body["result"]["reply_markup"] == markup
    assert bot_api.last_message(user)["reply_markup"] == markup

    assert await call(api, "editMessageText", chat_id=user.id, message_id=999, text="x") == (
        400,
        bad("Bad Request: message to edit not found"),
    )
    theirs = bot_api.send_text(user, "mine")
    assert await call(api, "editMessageText", chat_id=user.id, message_id=theirs["message_id"], text="x") == (
        400,
        bad("Bad Request: message can't be edited"),
    )
    assert await call(api, "editMessageText", chat_id=user.id, message_id=mid, text="x" * 4097) == (
        400,
        bad("Bad Request: MESSAGE_TOO_LONG"),
    )


async def test_callback_queries_are_answered_once(bot_api: TelegramServer, api: httpx.AsyncClient) -> None:
    user = bot_api.add_user()
    markup = {
        "inline_keyboard": [
            [
                {"text": "Yes", "callback_data": "yes"},
                {"text": "Site", "url": "https://example.com"},
            ]
        ]
    }
    _, body = await call(api, "sendMessage", chat_id=user.id, text="Sure?", reply_markup=markup)
    message = body["result"]
    assert bot_api.buttons(message) == [("Yes", "yes"), ("Site", None)]
    with pytest.raises(ValueError, match="no callback button"):
        bot_api.press_button(user, message, "no")
    query = bot_api.press_button(user, message, text="Yes")
    assert query["data"] == "yes" and query["message"]["message_id"] == message["message_id"]
    assert bot_api.unanswered_callbacks() == [query]

    assert await call(api, "answerCallbackQuery", callback_query_id=query["id"], text="x" * 201) == (
        400,
        bad("Bad Request: MESSAGE_TOO_LONG"),
    )
    assert await call(api, "answerCallbackQuery", callback_query_id=query["id"], text="Done") == (
        200,
        {"ok": True, "result": True},
    )
    assert await call(api, "answerCallbackQuery", callback_query_id=query["id"]) == (
        400,
        bad(QUERY_TOO_OLD),
    )
    assert await call(api, "answerCallbackQuery", callback_query_id="12345") == (
        400,
        bad(QUERY_TOO_OLD),
    )
    [answer] = bot_api.answered_callbacks()
    assert answer["id"] == query["id"] and answer["data"] == "yes" and answer["text"] == "Done"
    assert bot_api.unanswered_callbacks() == []


async def test_chat_not_found_blocked_and_kicked(bot_api: TelegramServer, api: httpx.AsyncClient) -> None:
    assert await call(api, "sendMessage", chat_id=424242, text="hi") == (
        400,
        bad("Bad Request: chat not found"),
    )
    assert await call(api, "sendMessage", chat_id="@nobody", text="hi") == (
        400,
        bad("Bad Request: chat not found"),
    )
    assert await call(api, "sendMessage", text="hi") == (400, bad("Bad Request: chat_id is empty"))
    user = bot_api.add_user()
    bot_api.block_bot(user)
    assert await call(api, "sendMessage", chat_id=user.id, text="hi") == (
        403,
        {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"},
    )
    stranger = bot_api.add_user(started=False)
    assert (await call(api, "sendMessage", chat_id=stranger.id, text="hi"))[1]["description"] == (
        "Forbidden: bot can't initiate conversation with a user"
    )
    staff = bot_api.add_group("Staff", [user])
    assert (await call(api, "sendMessage", chat_id=staff.id, text="hi"))[0] == 200
    bot_api.remove_bot(staff)
    assert (await call(api, "sendMessage", chat_id=staff.id, text="hi"))[1]["description"] == (
        "Forbidden: bot was kicked from the supergroup chat"
    )


async def test_commands(bot_api: TelegramServer, api: httpx.AsyncClient) -> None:
    good = [{"command": "start", "description": "Start"}, {"command": "faq_2", "description": "Q"}]
    assert await call(api, "setMyCommands", commands=good) == (200, {"ok": True, "result": True})
    assert bot_api.commands() == good
    assert (await call(api, "getMyCommands"))[1]["result"] == good
    scope = {"type": "chat", "chat_id": 5}
    assert (await call(api, "setMyCommands", commands=good[:1], scope=scope))[0] == 200
    assert bot_api.commands(scope) == good[:1] and bot_api.commands() == good

    for command, description in [
        ({"command": "Start", "description": "d"}, "Bad Request: BOT_COMMAND_INVALID"),
        ({"command": "x" * 33, "description": "d"}, "Bad Request: BOT_COMMAND_INVALID"),
        ({"command": "my-cmd", "description": "d"}, "Bad Request: BOT_COMMAND_INVALID"),
        ({"command": "", "description": "d"}, "Bad Request: BOT_COMMAND_INVALID"),
        (
            {"command": "ok", "description": " "},
            "Bad Request: command description must be non-empty",
        ),
        (
            {"command": "ok", "description": "d" * 257},
            "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID",
        ),
        (
            {"command": "ok"},
            "Bad Request: can't parse BotCommand: Can't find field \"description\"",
        ),
    ]:
        assert await call(api, "setMyCommands", commands=[command]) == (400, bad(description))
    assert bot_api.commands() == good
    assert (await call(api, "deleteMyCommands"))[0] == 200
    assert bot_api.commands() == []
    for method in ("setChatMenuButton", "deleteWebhook", "getWebhookInfo", "close", "logOut"):
        assert (await call(api, method))[0] == 200


# --------------------------------------------------------------------------- getUpdates


async def test_long_poll_returns_as_soon_as_an_update_arrives(
    bot_api: TelegramServer, api: httpx.AsyncClient
) -> None:
    user = bot_api.add_user()
    poll = asyncio.create_task(call(api, "getUpdates", timeout=10))
    await bot_api.wait_for(bot_api.long_polls_waiting)
    started = time.monotonic()
    message = bot_api.send_text(user, "hello")
    status, body = await poll
    assert time.monotonic() - started < 0.5
    assert status == 200
    [update] = body["result"]
    assert update["message"] == message


async def test_long_poll_times_out_with_no_updates(bot_api: TelegramServer, api: httpx.AsyncClient) -> None:
    started = time.monotonic()
    assert await call(api, "getUpdates", timeout=1) == (200, {"ok": True, "result": []})
    assert 0.9 <= time.monotonic() - started < 1.5


async def test_offset_confirms_updates(bot_api: TelegramServer, api: httpx.AsyncClient) -> None:
    user = bot_api.add_user()
    for text in ("one", "two", "three"):
        bot_api.send_text(user, text)

    async def texts(**params: Any) -> list[str]:
        _, body = await call(api, "getUpdates", **params)
        return [u["message"]["text"] for u in body["result"]]

    assert await texts() == ["one", "two", "three"]
    assert await texts() == ["one", "two", "three"]  # not confirmed yet
    assert await texts(limit=1) == ["one"]
    first_id = bot_api.pending_updates()[0]["update_id"]
    assert await texts(offset=first_id + 1) == ["two", "three"]
    assert await texts() == ["two", "three"]  # "one" is gone for good
    assert await texts(offset=-1) == ["three"]
    assert await texts(offset=first_id + 3) == []
    assert bot_api.pending_updates() == []
    bot_api.send_text(user, "four")
    assert await texts(allowed_updates=["callback_query"]) == []  # dropped, like Telegram
    assert await texts(allowed_updates=[]) == []
    bot_api.send_text(user, "five")
    assert await texts() == ["five"]


async def test_a_second_poller_terminates_the_first(bot_api: TelegramServer, api: httpx.AsyncClient) -> None:
    first = asyncio.create_task(call(api, "getUpdates", timeout=10))
    await bot_api.wait_for(bot_api.long_polls_waiting)
    async with httpx.AsyncClient(base_url=f"{bot_api.base_url}{TEST_TOKEN}/") as other:
        second = asyncio.create_task(call(other, "getUpdates", timeout=10))
        status, body = await first
        assert status == 409
        assert body["description"] == (
            "Conflict: terminated by other getUpdates request; make sure that only one bot "
            "instance is running"
        )
        bot_api.send_text(bot_api.add_user(), "hi")
        assert len((await second)[1]["result"]) == 1


async def test_a_killed_poller_loses_nothing(bot_api: TelegramServer) -> None:
    """kill -9 a process mid long poll: no error, the update waits for the next poller."""
    user = bot_api.add_user()
    url = f"{bot_api.base_url}{TEST_TOKEN}/getUpdates"
    script = f"import httpx; httpx.post({url!r}, json={{'timeout': 30}}, timeout=60)"
    process = subprocess.Popen([sys.executable, "-c", script])
    try:
        await bot_api.wait_for(bot_api.long_polls_waiting, timeout=10)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    bot_api.send_text(user, "while you were out")
    async with httpx.AsyncClient(base_url=f"{bot_api.base_url}{TEST_TOKEN}/") as client:
        _, body = await call(client, "getUpdates", timeout=5)
    assert [u["message"]["text"] for u in body["result"]] == ["while you were out"]
    bot_api.assert_no_errors()


async def test_stop_releases_a_waiting_long_poll() -> None:
    server = TelegramServer().start()
    try:
        async with httpx.AsyncClient(base_url=f"{server.base_url}{TEST_TOKEN}/") as client:
            poll = asyncio.create_task(call(client, "getUpdates", timeout=30))
            await server.wait_for(server.long_polls_waiting)
            started = time.monotonic()
            await asyncio.to_thread(server.stop)
            assert await poll == (200, {"ok": True, "result": []})
            assert time.monotonic() - started < 1
    finally:
        server.stop()


async def test_webhook_blocks_get_updates(bot_api: TelegramServer, api: httpx.AsyncClient) -> None:
    assert (await call(api, "setWebhook", url="https://example.com/hook"))[0] == 200
    status, body = await call(api, "getUpdates")
    assert status == 409 and body["description"].startswith("Conflict: can't use getUpdates")
    assert await call(api, "deleteWebhook") == (
        200,
        {"ok": True, "result": True, "description": "Webhook was deleted"},
    )


# --------------------------------------------------------------------------- driver


async def test_user_updates_parse_in_ptb(bot_api: TelegramServer, bot: Bot) -> None:
    ann = bot_api.add_user("Ann", username="ann")
    staff = bot_api.add_group("Staff", [ann])
    bot_api.send_text(ann, "/start@mesobot_test_bot now")
    bot_api.send_sticker(ann)
    bot_api.send_photo(ann, caption="my skin")
    bot_api.send_voice(ann)
    bot_api.send_contact(ann, "+447700900123")
    bot_api.send_location(ann, 51.5, -0.12)
    bot_api.send_document(ann, "notes.pdf", b"%PDF-1.4", "application/pdf")
    edited = bot_api.edit_text(bot_api.send_text(ann, "typo"), "fixed")
    bot_api.mention_bot(ann, staff, "help")
    raw = bot_api.pending_updates()
    updates = [Update.de_json(u, bot) for u in raw]
    message = updates[0].message
    assert message.text == "/start@mesobot_test_bot now"
    assert message.entities[0].type == "bot_command" and message.entities[0].length == 23
    assert updates[1].message.sticker.emoji == "👍"
    assert updates[2].message.photo[-1].width == 1280 and updates[2].message.caption == "my skin"
    # reading Voice.duration warns in PTB 22 (PTB_TIMEDELTA), so check the wire format
    assert updates[3].message.voice.mime_type == "audio/ogg"
    assert raw[3]["message"]["voice"]["duration"] == 3
    assert updates[4].message.contact.user_id == ann.id
    assert updates[5].message.location.latitude == 51.5
    assert updates[6].message.document.file_name == "notes.pdf"
    assert updates[8].edited_message.text == "fixed" == edited["text"]
    assert updates[8].edited_message.edit_date is not None
    mention = updates[9].message
    assert mention.chat.type == "supergroup" and mention.parse_entities(["mention"]) == {
        mention.entities[0]: "@mesobot_test_bot"
    }
    photo = await bot.get_file(updates[2].message.photo[-1].file_id)
    assert bytes(await photo.download_as_bytearray()) == b"\xff\xd8\xff\xe0fake-jpeg"


async def test_privacy_mode_hides_plain_group_chatter() -> None:
    with TelegramServer(privacy_mode=True) as server:
        ann = server.add_user("Ann")
        staff = server.add_group("Staff", [ann])
        server.send_text(ann, "just chatting", chat=staff)
        server.send_text(ann, "/list", chat=staff)
        server.send_text(ann, "/list@other_bot", chat=staff)
        server.mention_bot(ann, staff, "hi")
        server.send_text(ann, "private is always delivered")
        delivered = [u["message"]["text"] for u in server.pending_updates()]
        assert delivered == ["/list", "@mesobot_test_bot hi", "private is always delivered"]
        assert len(server.undelivered_updates()) == 2


async def test_wait_for_message(bot_api: TelegramServer, api: httpx.AsyncClient) -> None:
    user = bot_api.add_user()

    async def later() -> None:
        await asyncio.sleep(0.05)
        for text in ("one", "two", "three"):
            await call(api, "sendMessage", chat_id=user.id, text=text)

    task = asyncio.create_task(later())
    assert (await bot_api.wait_for_message(user))["text"] == "one"
    assert (await bot_api.wait_for_message(user, lambda m: m["text"] == "three"))["text"] == "three"
    await task
    with pytest.raises(WaitTimeout, match="a new bot message"):
        await bot_api.wait_for_message(user, timeout=0.05)  # "two" was passed over
    assert [m["text"] for m in bot_api.messages(user)] == ["one", "two", "three"]
    assert bot_api.last_message(user)["text"] == "three"


# --------------------------------------------------------------------------- PTB


async def test_ptb_bot_round_trip(bot_api: TelegramServer, bot: Bot) -> None:
    ann = bot_api.add_user("Ann")
    staff = bot_api.add_group("Staff", [ann])
    me = await bot.get_me()
    assert me.is_bot and me.username == "mesobot_test_bot"

    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Book", callback_data="book:1")]])
    sent = await bot.send_message(
        ann.id, "<b>Hello</b> &lt;Ann&gt;", parse_mode=ParseMode.HTML, reply_markup=keyboard
    )
    assert sent.text == "Hello <Ann>" and sent.entities[0].type == "bold"
    assert sent.reply_markup == keyboard
    edited = await bot.edit_message_text("Booked", ann.id, sent.message_id)
    assert edited.text == "Booked" and edited.reply_markup is None
    await bot.edit_message_reply_markup(ann.id, sent.message_id, reply_markup=keyboard)

    query = bot_api.press_button(ann, bot_api.last_message(ann), "book:1")
    assert await bot.answer_callback_query(query["id"], text="OK")
    assert bot_api.answered_callbacks()[0]["text"] == "OK"

    document = await bot.send_document(
        ann.id, io.BytesIO(b"a,b\n1,2\n"), filename="export.csv", caption="Your export"
    )
    assert document.document.file_name == "export.csv"
    [stored] = bot_api.documents(ann)
    assert (stored.filename, stored.content, stored.caption) == (
        "export.csv",
        b"a,b\n1,2\n",
        "Your export",
    )

    question = bot_api.send_text(ann, "Is it safe?")
    copied = await bot.copy_message(staff.id, ann.id, question["message_id"])
    assert bot_api.message(staff, copied.message_id)["text"] == "Is it safe?"
    forwarded = await bot.forward_message(staff.id, ann.id, question["message_id"])
    assert forwarded.forward_origin.sender_user.id == ann.id
    assert await bot.send_chat_action(ann.id, "typing")
    assert bot_api.chat_actions(ann) == ["typing"]
    assert await bot.delete_message(staff.id, forwarded.message_id)
    assert [m["message_id"] for m in bot_api.messages(staff)] == [copied.message_id]
    chat = await bot.get_chat(staff.id)
    assert chat.title == "Staff" and chat.type == "supergroup"
    await bot.set_my_commands([BotCommand("start", "Start over")])
    await bot.set_my_commands([BotCommand("staff", "Staff help")], scope=BotCommandScopeChat(staff.id))
    assert [c.command for c in await bot.get_my_commands()] == ["start"]
    assert bot_api.commands({"type": "chat", "chat_id": staff.id})[0]["command"] == "staff"
    await bot.send_message(
        ann.id,
        "Share?",
        reply_markup=ReplyKeyboardMarkup(
            [[KeyboardButton("Share phone", request_contact=True)]], one_time_keyboard=True
        ),
    )
    await bot.send_message(ann.id, "Thanks", reply_markup=ReplyKeyboardRemove())
    await bot.send_message(ann.id, "Name?", reply_markup=ForceReply())
    bot_api.assert_no_errors()


async def test_ptb_raises_telegrams_errors(bot_api: TelegramServer, bot: Bot) -> None:
    """PTB strips "Bad Request: " and capitalize()s the rest (which lowercases it)."""
    ann = bot_api.add_user("Ann")
    sent = await bot.send_message(ann.id, "Hi")
    cases = [
        (bot.send_message(ann.id, " "), BadRequest, "Message text is empty"),
        (bot.send_message(ann.id, "x" * 4097), BadRequest, "Message is too long"),
        (
            bot.send_message(ann.id, "<p>", parse_mode="HTML"),
            BadRequest,
            'Can\'t parse entities: unsupported start tag "p" at byte offset 0',
        ),
        (bot.send_message(424242, "Hi"), BadRequest, "Chat not found"),
        (
            bot.edit_message_text("Hi", ann.id, sent.message_id),
            BadRequest,
            NOT_MODIFIED.removeprefix("Bad Request: ").capitalize(),
        ),
        (bot.edit_message_text("x", ann.id, 999), BadRequest, "Message to edit not found"),
        (
            bot.send_message(
                ann.id,
                "x",
                reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="x" * 65)]]),
            ),
            BadRequest,
            "Button_data_invalid",
        ),
        (
            bot.answer_callback_query("1"),
            BadRequest,
            QUERY_TOO_OLD.removeprefix("Bad Request: ").capitalize(),
        ),
    ]
    for coroutine, error, message in cases:
        with pytest.raises(error) as raised:
            await coroutine
        assert raised.value.message == message
    bot_api.block_bot(ann)
    with pytest.raises(Forbidden, match="^Forbidden: bot was blocked by the user$"):
        await bot.send_message(ann.id, "Hi")
    stranger = Bot("123456789:AAHsomeoneElsesToken000000000000000", base_url=bot_api.base_url)
    with pytest.raises(InvalidToken, match="was rejected by the server"):
        async with stranger:  # initialize() calls getMe
            pass


async def test_ptb_application_polls_and_answers(bot_api: TelegramServer) -> None:
    ann = bot_api.add_user("Ann")

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Again", callback_data="again")]])
        await update.message.reply_text(f"echo: {update.message.text}", reply_markup=keyboard)

    async def pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.callback_query.answer("pressed")
        await update.callback_query.edit_message_text(f"{update.callback_query.data}!")

    app = ApplicationBuilder().token(TEST_TOKEN).base_url(bot_api.base_url).build()
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    app.add_handler(CallbackQueryHandler(pressed))
    async with app:
        await app.start()
        await app.updater.start_polling(poll_interval=0, timeout=5)
        try:
            bot_api.send_text(ann, "hello")
            reply = await bot_api.wait_for_message(ann)
            assert reply["text"] == "echo: hello"
            assert "reply_to_message" not in reply  # PTB 22 reply_text quotes only in groups
            query = bot_api.press_button(ann, reply, "again")
            assert (await bot_api.wait_for_callback_answer(query))["text"] == "pressed"
            assert (await bot_api.wait_for_edit(reply))["text"] == "again!"
        finally:
            started = time.monotonic()
            await app.updater.stop()
            await app.stop()
            assert time.monotonic() - started < 2  # the open long poll did not hold us up
    assert bot_api.pending_updates() == []  # the final getUpdates confirmed everything
    assert bot_api.unanswered_callbacks() == []
    bot_api.assert_no_errors()
