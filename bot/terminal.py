"""`python -m bot chat`: the real bot, every flow included, with this terminal playing Telegram.

The PTB Application runs exactly as in production; only its request layer is replaced by
`TerminalTelegram`, which answers the Bot API methods the bot calls, prints the bot's messages
and turns typed lines into updates. Buttons are numbered: type the number to press one.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from telegram.ext import Application
from telegram.request import BaseRequest, RequestData

from bot.app import build_application
from bot.brain import Brain
from bot.settings import Settings

USER_ID = 1
BOT = {"id": 42, "is_bot": True, "first_name": "mesobot", "username": "mesobot_terminal_bot"}
TERMINAL_TOKEN = "42:terminal-chat-not-a-real-telegram-token"


class TerminalTelegram:
    """A one-person Telegram: the bot's requests arrive here, the person's lines become updates."""

    def __init__(self, write: Callable[[str], None] = print) -> None:
        self.write = write
        self.user = {"id": USER_ID, "is_bot": False, "first_name": "Guest"}
        self.chat = {"id": USER_ID, "type": "private", "first_name": self.user["first_name"]}
        self.updates: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.messages: dict[int, dict[str, Any]] = {}
        self.buttons: list[dict[str, Any]] = []  # of the latest message that has any
        self._buttons_message: dict[str, Any] | None = None
        # Ids go on rising from one chat to the next, as Telegram's do: the inbox takes an update
        # id it has seen (within a day) for one Telegram sent again, and drops it.
        first = time.time_ns() // 1_000_000
        self._ids = itertools.count(first)
        self._update_ids = itertools.count(first)

    # -- the person's side ----------------------------------------------------------------------

    def type_line(self, line: str) -> None:
        """Turn a typed line into an update: a button press (its number) or a message."""
        line = line.strip()
        if line.isdigit() and 1 <= int(line) <= len(self.buttons):
            button = self.buttons[int(line) - 1]
            if "callback_data" in button:
                self._push(
                    callback_query={
                        "id": str(next(self._update_ids)),
                        "from": self.user,
                        "chat_instance": "terminal",
                        "message": self._buttons_message,
                        "data": button["callback_data"],
                    }
                )
                return
            if button.get("request_contact"):
                phone = input("Phone number to share with the bot: ").strip()
                contact = {
                    "phone_number": phone,
                    "first_name": self.user["first_name"],
                    "user_id": USER_ID,
                }
                self._push(message=self._message(self.user, contact=contact))
                return
            line = button["text"]
        entities = []
        if line.startswith("/"):
            entities = [{"type": "bot_command", "offset": 0, "length": len(line.split()[0])}]
        self._push(message=self._message(self.user, text=line, entities=entities))

    def _push(self, **update: Any) -> None:
        self.updates.put_nowait({"update_id": next(self._update_ids), **update})

    def _message(self, sender: dict[str, Any], **content: Any) -> dict[str, Any]:
        message = {
            "message_id": next(self._ids),
            "date": int(time.time()),
            "chat": self.chat,
            "from": sender,
            **{k: v for k, v in content.items() if v},
        }
        self.messages[message["message_id"]] = message
        return message

    # -- the bot's side -------------------------------------------------------------------------

    async def call(self, method: str, params: dict[str, Any]) -> Any:
        """Answer one Bot API method as Telegram would (for the methods this bot uses)."""
        if method == "getUpdates":
            return await self._get_updates(params)
        if method in ("sendMessage", "copyMessage", "sendDocument"):
            return self._send(method, params)
        if method in ("editMessageText", "editMessageReplyMarkup"):
            message = self.messages[int(params["message_id"])]
            if "text" in params:
                message["text"] = params["text"]
                self.write(f"bot (edited)> {params['text']}")
            self._show_buttons(message, params.get("reply_markup"))
            return message
        if method == "answerCallbackQuery":
            if params.get("text"):
                self.write(f"bot (pop-up)> {params['text']}")
            return True
        if method == "getMe":
            return BOT
        if method == "getChat":
            return self.chat
        return True  # setMyCommands, deleteWebhook, sendChatAction, deleteMessage...

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        try:
            update = await asyncio.wait_for(self.updates.get(), float(params.get("timeout", 0)))
        except TimeoutError:
            return []
        return [update]

    def _send(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if method == "copyMessage":
            original = self.messages.get(int(params["message_id"]), {})
            text = original.get("text", "(a message)")
        elif method == "sendDocument":
            text = f"[a document: {params.get('caption') or 'file'}]"
        else:
            text = params["text"]
        if int(params.get("chat_id", USER_ID)) != USER_ID:
            self.write(f"(to staff chat {params['chat_id']})> {text}")
            return self._message(BOT, text=text)
        # Buttons that act on the question ("None of these") read it from the reply's quote.
        quoted = params.get("reply_parameters")
        if isinstance(quoted, str):
            quoted = json.loads(quoted)
        message = self._message(
            BOT, text=text, reply_to_message=self.messages.get(int(quoted["message_id"])) if quoted else None
        )
        self.write(f"bot> {text}")
        self._show_buttons(message, params.get("reply_markup"))
        return {"message_id": message["message_id"]} if method == "copyMessage" else message

    def _show_buttons(self, message: dict[str, Any], markup: Any) -> None:
        if isinstance(markup, str):
            markup = json.loads(markup)
        if not markup:
            return
        rows = markup.get("inline_keyboard") or markup.get("keyboard") or []
        buttons = [b if isinstance(b, dict) else {"text": b} for row in rows for b in row]
        if not buttons:
            return
        if "inline_keyboard" in markup:  # Telegram echoes only an inline keyboard on the message
            message["reply_markup"] = markup
        self.buttons, self._buttons_message = buttons, message
        for number, button in enumerate(buttons, 1):
            self.write(f"   [{number}] {button['text']}")


class TerminalRequest(BaseRequest):
    """PTB's request layer, answered by TerminalTelegram instead of HTTP."""

    def __init__(self, telegram: TerminalTelegram) -> None:
        self.telegram = telegram

    @property
    def read_timeout(self) -> float | None:
        return None

    async def initialize(self) -> None:
        """Nothing to open."""

    async def shutdown(self) -> None:
        """Nothing to close."""

    async def do_request(
        self, url: str, method: str, request_data: RequestData | None = None, **_: Any
    ) -> tuple[int, bytes]:
        params = dict(request_data.parameters) if request_data else {}
        result = await self.telegram.call(url.rsplit("/", 1)[-1], params)
        return 200, json.dumps({"ok": True, "result": result}).encode()


# Bare "quit" too: someone trying the bot types what ends most terminal programs, not a question.
QUIT_WORDS = frozenset({"/quit", "/exit", "quit", "exit", "q"})


def chat(settings: Settings) -> int:
    """Chat with the bot in this terminal until /quit (or quit, exit) or end of input."""
    return asyncio.run(_chat(settings))


async def _chat(settings: Settings) -> int:
    telegram = TerminalTelegram()
    request = TerminalRequest(telegram)
    application = build_application(
        settings, Brain.load(), token=TERMINAL_TOKEN, request=request, updates_request=request
    )
    print("Chatting with mesobot. Type a question; a number presses a button; /quit leaves.\n")
    async with application:  # started and stopped as run_polling does it
        await application.post_init(application)
        await application.start()
        await application.updater.start_polling(poll_interval=0, timeout=1)
        telegram.type_line("/start")
        loop = asyncio.get_running_loop()
        while True:
            await _settle(application, telegram)  # the bot answers before the next prompt
            line = await loop.run_in_executor(None, _read_line)
            if line is None or line.strip().lower() in QUIT_WORDS:
                break
            telegram.type_line(line)
        await _settle(application, telegram)
        await application.updater.stop()
        await application.stop()
    await application.post_shutdown(application)
    return 0


async def _settle(application: Application, telegram: TerminalTelegram) -> None:
    """Wait until every typed line has been fetched and handled (a few seconds at most)."""
    for _ in range(500):
        await asyncio.sleep(0.01)
        if (
            telegram.updates.empty()
            and application.update_queue.empty()
            and application.update_processor.current_concurrent_updates == 0
        ):
            return


def _read_line() -> str | None:
    try:
        return input("you> ")
    except EOFError:
        return None
    finally:
        sys.stdout.flush()
