"""Nothing is lost across a restart or a crash (kill -9): mid-booking progress, and confirmed requests."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import texts
from tests.conftest import BOT_TOKEN, LiveBot, start_bot, stop_bot
from tests.telegram_server import TelegramServer, User

ROOT = Path(__file__).resolve().parents[1]
PAIN = "v1:bk:c:pain-mesotherapy-masterclass"


def booking_details(db_path: Path) -> list[dict]:
    with sqlite3.connect(db_path) as db:
        rows = db.execute("select details from enquiries where kind = 'booking'").fetchall()
    return [json.loads(details) for (details,) in rows]


async def test_a_restart_mid_booking_resumes_at_the_same_step(live: LiveBot, brain) -> None:
    user = live.api.add_user("Ada")
    courses = await live.ask(user, "/book")
    await live.press(user, courses, PAIN)
    assert (await live.ask(user, "Ada Lovelace"))["text"] == texts.BOOK_CONTACT
    await stop_bot(live.app)
    live.app = await start_bot(live.settings, brain)  # the fixture stops this one
    assert (await live.ask(user, "ada@example.com"))["text"] == "👍"
    background = await live.api.wait_for_message(user)
    assert background["text"] == texts.BOOK_BACKGROUND
    notes = await live.press(user, background, "v1:bk:b:medical")
    consent = await live.press(user, notes, "v1:bk:notes:none")
    summary = await live.press(user, consent, "v1:bk:agree")
    await live.press(user, summary, "v1:bk:confirm")
    [details] = booking_details(live.db_path)
    assert details["name"] == "Ada Lovelace" and details["contact"] == "ada@example.com"


class BotProcess:
    """`python -m bot run` in a subprocess, pointed at the loopback server; can be killed -9."""

    def __init__(self, api: TelegramServer, db_path: Path) -> None:
        self.api = api
        self.env = {
            **os.environ,
            "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
            "TELEGRAM_API_BASE_URL": api.base_url,
            "MESOBOT_DB": str(db_path),
        }
        self.process: subprocess.Popen | None = None

    async def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot", "run"],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        await self.api.wait_for(lambda: self.api.long_polls_waiting() > 0, timeout=30)

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process.stderr.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        if self.process is not None and not self.process.stderr.closed:
            self.process.stderr.close()


@pytest.fixture
def bot_process(bot_api: TelegramServer, tmp_path: Path) -> Iterator[BotProcess]:
    process = BotProcess(bot_api, tmp_path / "mesobot.sqlite3")
    try:
        yield process
    finally:
        process.stop()


async def ask(api: TelegramServer, user: User, text: str) -> dict:
    api.send_text(user, text)
    return await api.wait_for_message(user, timeout=15)


async def press(api: TelegramServer, user: User, message: dict, data: str) -> dict:
    api.press_button(user, message, data)
    return await api.wait_for_message(user, timeout=15)


async def test_kill_9_mid_booking_loses_no_progress(bot_process: BotProcess, tmp_path: Path) -> None:
    api = bot_process.api
    user = api.add_user("Bea")
    await bot_process.start()
    courses = await ask(api, user, "/book")
    await press(api, user, courses, PAIN)
    await ask(api, user, "Bea Arthur")
    bot_process.kill()  # right after the name was answered
    await bot_process.start()
    assert (await ask(api, user, "+44 20 7946 0000"))["text"] == "👍"
    background = await api.wait_for_message(user, timeout=15)
    assert background["text"] == texts.BOOK_BACKGROUND
    notes = await press(api, user, background, "v1:bk:b:medical")
    assert notes["text"] == texts.BOOK_NOTES
    bot_process.kill()  # and again, one step later
    await bot_process.start()
    consent = await ask(api, user, "Any Friday")
    assert "UK GDPR" in consent["text"]
    summary = await press(api, user, consent, "v1:bk:agree")
    assert "Bea Arthur" in summary["text"] and "Any Friday" in summary["text"]
    done = await press(api, user, summary, "v1:bk:confirm")
    bot_process.kill()  # right after the confirmation reached the user
    assert "ENQ-000001" in done["text"]
    [details] = booking_details(tmp_path / "mesobot.sqlite3")
    assert details["name"] == "Bea Arthur" and details["notes"] == "Any Friday"


async def test_a_missing_token_is_one_clear_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TELEGRAM_BOT_TOKEN"}
    result = subprocess.run(
        [sys.executable, "-m", "bot", "run"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "mesobot: TELEGRAM_BOT_TOKEN is not set: get a token from @BotFather and export it, "
        "or run `python -m bot chat` to try the bot in this terminal"
    ]


async def test_kill_9_after_a_message_was_confirmed_but_before_the_reply(
    bot_process: BotProcess, tmp_path: Path
) -> None:
    """PTB tells Telegram it has a batch (its next getUpdates) before handling it: killed in
    between, the message is gone from Telegram. The bot stored it first and answers on restart."""
    api = bot_process.api
    user = api.add_user("Cy")
    await bot_process.start()
    with api.hold("sendMessage") as replying:  # the reply is stuck on its way out
        api.send_text(user, "do you offer refunds if I can't come?")
        await api.wait_for(
            lambda: replying.waiting and not api.pending_updates() and api.long_polls_waiting(),
            timeout=15,
            description="the bot confirmed the message and is sending its reply",
        )
        bot_process.kill()
    assert api.messages(user) == []
    await bot_process.start()
    reply = await api.wait_for_message(user, timeout=15)
    assert "refunds" in reply["text"] and "our team" in reply["text"]
    await api.wait_until_consumed()
    bot_process.stop()
    assert len(api.messages(user)) == 1
    with sqlite3.connect(tmp_path / "mesobot.sqlite3") as db:
        # Filed once, although the update was handled twice; and the message is not kept.
        assert db.execute("select kind, text from enquiries").fetchall() == [
            ("fallback", "do you offer refunds if I can't come?")
        ]
        assert db.execute("select count(*) from inbox where payload is not null").fetchone() == (0,)


async def test_a_batch_stored_but_never_confirmed_is_handled_once(bot_process: BotProcess) -> None:
    """Killed after storing a message but before confirming it: on restart the bot replays it
    from its inbox AND Telegram sends it again. The user gets one answer, not two."""
    api = bot_process.api
    user = api.add_user("Di")
    await bot_process.start()
    confirming = api.hold("getUpdates", when=lambda params: params.integer("offset") > 0)
    with confirming, api.hold("sendMessage") as replying:
        api.send_text(user, "how much is the course?")
        await api.wait_for(lambda: replying.waiting and confirming.waiting, timeout=15)
        bot_process.kill()
    assert [u["message"]["text"] for u in api.pending_updates()] == ["how much is the course?"]
    await bot_process.start()
    reply = await api.wait_for_message(user, timeout=15)
    assert "£600" in reply["text"]
    await api.wait_until_consumed()
    bot_process.stop()
    assert len(api.messages(user)) == 1
