"""Staff and a user talk through the real bot over the loopback Bot API: Take / Done, replies
relayed both ways (surviving a restart), the staff commands, and what non-staff get (nothing)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from bot import texts
from bot.brain import Brain
from bot.enquiries import EnquiryLog, format_reference
from bot.enquiries_cli import main as enquiries_cli
from handlers import render
from tests.conftest import LiveBot, live_settings, start_bot, stop_bot
from tests.telegram_server import TelegramServer

QUESTION = "do you offer refunds if I can't make it?"
SAM = "Sam (@sam_staff)"  # how the fixture's staff member is recorded and shown


def rows(db_path: Path, sql: str, params: tuple = ()) -> list[tuple]:
    with sqlite3.connect(db_path) as db:
        return db.execute(sql, params).fetchall()


async def ask_staff(live: LiveBot, user, text: str = QUESTION) -> tuple[dict, int]:
    """The user asks something the FAQ cannot answer; returns the staff post and enquiry id."""
    live.api.send_text(user, text)
    reply = await live.api.wait_for_message(user)
    assert "passed your question to our team" in reply["text"]
    post = await live.api.wait_for_message(live.staff_chat)
    (enquiry_id,) = rows(live.db_path, "select max(id) from enquiries")[0]
    assert format_reference(enquiry_id) in post["text"]
    # The post is sent in the background, after the user's reply; its link is stored just after.
    for _ in range(200):
        if rows(live.db_path, f"select staff_message_id from enquiries where id = {enquiry_id}")[0][0]:
            break
        await asyncio.sleep(0.01)
    return post, enquiry_id


async def take(live: LiveBot, post: dict, enquiry_id: int, user) -> None:
    query = live.api.press_button(live.staff, post, f"v1:take:{enquiry_id}")
    told = await live.api.wait_for_message(user)
    assert told["text"] == texts.USER_TAKEN.format(reference=format_reference(enquiry_id))
    await live.api.wait_for_callback_answer(query)


async def settled(api: TelegramServer, user) -> None:
    """Wait until the bot finished handling what the user sent: a chat's updates are handled in
    order, so once /privacy is answered, the relays of earlier messages are stored. (A person
    never replies within the milliseconds between a relayed message appearing and its link
    being stored; a test can.)"""
    api.send_text(user, "/privacy")
    await api.wait_for_message(user, lambda m: m.get("text", "").startswith("Your privacy"))


def reply_with_photo(api: TelegramServer, user, message: dict, caption: str) -> dict:
    """A photo sent as a reply (the driver's send_photo cannot reply): reuse its photo sizes."""
    photo = api.send_photo(user, caption="(not a reply)", chat=message["chat"]["id"])
    content = {"photo": photo["photo"], "caption": caption}
    return api._user_message(user, message["chat"]["id"], content, reply_to=message)


async def test_take_reply_both_ways_and_done(live: LiveBot) -> None:
    user = live.api.add_user("Ada", username="ada")
    post, enquiry_id = await ask_staff(live, user)
    reference = format_reference(enquiry_id)
    assert live.api.buttons(post) == [
        (texts.STAFF_TAKE, f"v1:take:{enquiry_id}"),
        (texts.STAFF_DONE, f"v1:done:{enquiry_id}"),
    ]

    # Take: the post shows who has it (Done kept), the user is told, the row says so.
    await take(live, post, enquiry_id, user)
    taken = live.api.message(live.staff_chat, post["message_id"])
    assert taken["text"].endswith(texts.STAFF_TAKEN_LINE.format(who=SAM))
    assert QUESTION in taken["text"]
    assert live.api.buttons(taken) == [(texts.STAFF_DONE, f"v1:done:{enquiry_id}")]
    assert rows(live.db_path, "select status, handled_by from enquiries") == [("in_progress", SAM)]

    # Staff reply to the post: copied (not forwarded) to the user; staff get a short ack.
    live.api.reply_to(live.staff, post, "Hi Ada, yes: a full refund up to 14 days before.")
    answer = await live.api.wait_for_message(user)
    assert answer["text"] == "Hi Ada, yes: a full refund up to 14 days before."
    assert "forward_origin" not in answer
    ack = await live.api.wait_for_message(live.staff_chat)
    assert ack["text"] == texts.STAFF_RELAYED.format(name="Ada")
    assert live.api.request_count("copyMessage") == 1 and live.api.request_count("forwardMessage") == 0

    # The user answers: it goes to the staff thread, under a header, and the bot says nothing.
    live.api.send_text(user, "Great. Could I move to a later date instead?")
    relayed = await live.api.wait_for_message(live.staff_chat)
    assert relayed["reply_to_message"]["message_id"] == post["message_id"]
    header = texts.RELAY_HEADER.format(name="Ada", reference=reference)
    assert relayed["text"] == header + "\nGreat. Could I move to a later date instead?"

    # A photo from the user is copied with the header as its caption.
    live.api.send_photo(user, caption="my booking confirmation")
    photo = await live.api.wait_for_message(live.staff_chat)
    assert photo["photo"] and photo["caption"] == header + "\nmy booking confirmation"
    assert photo["reply_to_message"]["message_id"] == post["message_id"]

    # A staff reply to THAT relayed message reaches the user too; and so does a photo.
    await settled(live.api, user)
    live.api.reply_to(live.staff, relayed, "Yes, once, free of charge.")
    assert (await live.api.wait_for_message(user))["text"] == "Yes, once, free of charge."
    await live.api.wait_for_message(live.staff_chat)  # the ack
    reply_with_photo(live.api, live.staff, photo, "Here's the new timetable")
    copied = await live.api.wait_for_message(user)
    assert copied["photo"] and copied["caption"] == "Here's the new timetable"
    await live.api.wait_for_message(live.staff_chat)  # the ack

    directions = rows(
        live.db_path, "select direction from relays where enquiry_id = ? order by id", (enquiry_id,)
    )
    assert [d for (d,) in directions] == [
        "staff_post",
        "to_user",
        "to_staff",
        "to_staff",
        "to_user",
        "to_user",
    ]

    # Done: the post says who closed it, no buttons; the user is told.
    query = live.api.press_button(live.staff, post, f"v1:done:{enquiry_id}")
    closed = await live.api.wait_for_message(user)
    assert closed["text"] == texts.USER_CLOSED.format(reference=reference)
    await live.api.wait_for_callback_answer(query)
    done = live.api.message(live.staff_chat, post["message_id"])
    assert done["text"].endswith(texts.STAFF_CLOSED_LINE.format(who=SAM))
    assert live.api.buttons(done) == []
    assert rows(live.db_path, "select status, handled_by from enquiries") == [("done", SAM)]

    # After Done the bot answers the user itself again.
    reply = await live.ask(user, "how much is the pain course")
    assert "£600" in reply["text"]
    assert live.api.unanswered_callbacks() == []
    live.api.assert_no_errors()


async def test_the_relay_survives_a_restart(bot_api: TelegramServer, brain: Brain, tmp_path: Path) -> None:
    staff = bot_api.add_user("Sam", username="sam_staff")
    staff_chat = bot_api.add_group("Academy staff", members=[staff])
    settings = live_settings(bot_api, tmp_path / "mesobot.sqlite3", staff, staff_chat)
    user = bot_api.add_user("Bea")
    app = await start_bot(settings, brain)
    try:
        bot_api.send_text(user, QUESTION)
        await bot_api.wait_for_message(user)
        post = await bot_api.wait_for_message(staff_chat)
    finally:
        await stop_bot(app)

    app = await start_bot(settings, brain)  # a new process, as far as the bot can tell
    try:
        # Replying to a new enquiry's post takes it: the user is told, then gets the reply.
        bot_api.reply_to(staff, post, "Hello Bea, let me check that for you.")
        told = await bot_api.wait_for_message(user)
        assert told["text"] == texts.USER_TAKEN.format(reference=format_reference(1))
        assert (await bot_api.wait_for_message(user))["text"] == "Hello Bea, let me check that for you."
        assert (await bot_api.wait_for_message(staff_chat))["text"] == texts.STAFF_RELAYED.format(name="Bea")
        assert rows(settings.db_path, "select status, handled_by from enquiries") == [("in_progress", SAM)]
        assert bot_api.message(staff_chat, post["message_id"])["text"].endswith(
            texts.STAFF_TAKEN_LINE.format(who=SAM)
        )
    finally:
        await stop_bot(app)

    app = await start_bot(settings, brain)
    try:
        bot_api.send_text(user, "Thank you!")
        relayed = await bot_api.wait_for_message(staff_chat)
        assert relayed["reply_to_message"]["message_id"] == post["message_id"]
        assert relayed["text"].endswith("\nThank you!")
        await settled(bot_api, user)
        bot_api.reply_to(staff, relayed, "You're welcome.")
        assert (await bot_api.wait_for_message(user))["text"] == "You're welcome."
    finally:
        await stop_bot(app)
    bot_api.assert_no_errors()


async def test_urgent_message_during_a_hand_off_gets_the_safety_advice(live: LiveBot, brain: Brain) -> None:
    urgent = "help my tongue is swollen"
    assert brain.reply(urgent).kind.value == "urgent"  # the premise of this test
    user = live.api.add_user("Cat")
    post, enquiry_id = await ask_staff(live, user)
    await take(live, post, enquiry_id, user)

    live.api.send_text(user, urgent)
    advice = await live.api.wait_for_message(user)
    assert advice["text"] == render.chunks(brain.reply(urgent).text)[0]

    # The urgent alert and the relay into the hand-off thread are sent independently: either may
    # reach the staff chat first.
    def alert_and_relay() -> tuple[dict, dict] | None:
        staff = live.api.messages(live.staff_chat)
        alerts = [m for m in staff if "URGENT" in m.get("text", "")]
        relays = [m for m in staff if m.get("reply_to_message", {}).get("message_id") == post["message_id"]]
        return (alerts[0], relays[0]) if alerts and relays else None

    alert, relayed = await live.api.wait_for(alert_and_relay, description="the urgent alert and the relay")
    assert urgent in alert["text"]
    assert relayed["text"].endswith(urgent)
    assert rows(live.db_path, "select kind, status from enquiries order by id") == [
        ("fallback", "in_progress"),
        ("urgent", "new"),
    ]
    live.api.assert_no_errors()


async def test_commands_keep_working_during_a_hand_off(live: LiveBot) -> None:
    user = live.api.add_user("Dee")
    post, enquiry_id = await ask_staff(live, user)
    await take(live, post, enquiry_id, user)
    assert (await live.ask(user, "/start")).get("text", "").startswith("Hello, Dee!")
    assert (await live.ask(user, "/book"))["text"] == texts.BOOK_COURSE
    # Mid-booking, what the user types is the booking's, not relayed.
    assert (await live.ask(user, "the pain one"))["text"] == texts.BOOK_NAME
    reply = await live.ask(user, "/cancel")
    assert reply["text"] == texts.BOOK_CANCELLED
    sent = live.api.send_text(user, "still there?")
    relayed = await live.api.wait_for_message(live.staff_chat)
    assert relayed["text"].endswith("\nstill there?")
    # An edit during the hand-off goes to staff too, marked as such (not answered by the FAQ).
    live.api.edit_text(sent, "still there? I'm free after 5pm")
    edited = await live.api.wait_for_message(live.staff_chat)
    header = texts.RELAY_HEADER_EDITED.format(name="Dee", reference=format_reference(enquiry_id))
    assert edited["text"] == header + "\nstill there? I'm free after 5pm"
    await settled(live.api, user)
    assert [m["text"] for m in live.api.messages(user)][-2:] == [
        texts.BOOK_CANCELLED,
        texts.PRIVACY.format(days=365, booking_minutes=60, follow_up_minutes=30, choice_minutes=30),
    ]
    live.api.assert_no_errors()


async def test_staff_chat_chatter_is_ignored(live: LiveBot) -> None:
    user = live.api.add_user("Eve")
    post, _ = await ask_staff(live, user)
    live.api.send_text(live.staff, "who's on the phones today?", chat=live.staff_chat)
    live.api.mention_bot(live.staff, live.staff_chat, "how much is the pain course")
    live.api.reply_to(live.staff, post, "/enquiry")  # a command, not a reply to relay
    # Messages in one chat are handled in order: once /enquiries answers, the rest are done.
    live.api.send_text(live.staff, "/enquiries", chat=live.staff_chat)
    usage = await live.api.wait_for_message(live.staff_chat)
    assert usage["text"] == texts.STAFF_USAGE["enquiry"]
    listing = await live.api.wait_for_message(live.staff_chat)
    assert listing["text"].startswith(texts.STAFF_LIST_HEADER.format(page=1, pages=1, total=1))
    assert len(live.api.messages(live.staff_chat)) == 3  # the post, the usage line, the list
    assert len(live.api.messages(user)) == 1  # only the "passed to our team" reply
    live.api.assert_no_errors()


async def test_reply_to_a_closed_enquiry_offers_take_which_reopens_it(live: LiveBot) -> None:
    user = live.api.add_user("Fay")
    post, enquiry_id = await ask_staff(live, user)
    query = live.api.press_button(live.staff, post, f"v1:done:{enquiry_id}")
    await live.api.wait_for_message(user)  # closed
    await live.api.wait_for_callback_answer(query)

    live.api.reply_to(live.staff, post, "One more thing...")
    notice = await live.api.wait_for_message(live.staff_chat)
    assert notice["text"] == texts.STAFF_RELAY_CLOSED.format(reference=format_reference(enquiry_id))
    assert live.api.buttons(notice) == [(texts.STAFF_TAKE, f"v1:take:{enquiry_id}")]

    await take(live, notice, enquiry_id, user)
    assert live.api.buttons(live.api.message(live.staff_chat, notice["message_id"])) == []
    reopened = live.api.message(live.staff_chat, post["message_id"])
    assert reopened["text"].endswith(texts.STAFF_TAKEN_LINE.format(who=SAM))
    assert rows(live.db_path, "select status from enquiries") == [("in_progress",)]
    live.api.reply_to(live.staff, post, "One more thing...")
    assert (await live.api.wait_for_message(user))["text"] == "One more thing..."
    live.api.assert_no_errors()


async def test_a_user_who_blocked_the_bot_is_reported_to_staff(live: LiveBot) -> None:
    user = live.api.add_user("Gil")
    post, enquiry_id = await ask_staff(live, user)
    await take(live, post, enquiry_id, user)
    live.api.block_bot(user)
    live.api.reply_to(live.staff, post, "Are you still interested?")
    report = await live.api.wait_for_message(live.staff_chat)
    assert report["text"] == texts.STAFF_NOT_DELIVERED_BLOCKED.format(name="Gil")
    assert rows(live.db_path, "select count(*) from relays where direction = 'to_user'") == [(0,)]
    assert {(e.method, e.status) for e in live.api.errors()} == {("copyMessage", 403)}


async def test_non_staff_learn_nothing_and_change_nothing(
    live: LiveBot, caplog: pytest.LogCaptureFixture
) -> None:
    user = live.api.add_user("Hana")
    post, enquiry_id = await ask_staff(live, user)
    outsider = live.api.add_user("Olly")
    live.api.add_member(live.staff_chat, outsider)
    before = rows(live.db_path, "select * from enquiries")

    for data in (f"v1:take:{enquiry_id}", f"v1:done:{enquiry_id}"):
        query = live.api.press_button(outsider, post, data)
        answer = await live.api.wait_for_callback_answer(query)
        assert answer["text"] == texts.STAFF_ONLY and answer["show_alert"] is True
    assert live.api.message(live.staff_chat, post["message_id"]) == post

    caplog.set_level(logging.WARNING, logger="handlers.staff")
    for command in ("/enquiries", "/export", "/enquiry 1", "/done 1", "/note 1 x"):
        reply = await live.ask(outsider, command)
        assert reply["text"] == texts.UNKNOWN_COMMAND.format(command=command.split()[0])
    assert live.api.documents(outsider) == []
    refused = [r.getMessage() for r in caplog.records if r.name == "handlers.staff"]
    assert f"refused staff command /export from user {outsider.id} in chat {outsider.id}" in refused
    assert any(f"refused take of enquiry {enquiry_id} by user {outsider.id}" in r for r in refused)

    # Mid-booking too, a staff command is just an unknown command (the booking asks again).
    await live.ask(outsider, "/book")
    teleport = await live.ask(outsider, "/teleport")
    await live.api.wait_for_message(outsider)  # the step asked again
    export = await live.ask(outsider, "/export")
    assert export["text"] == teleport["text"] == texts.BOOK_IN_PROGRESS
    await live.api.wait_for_message(outsider)

    # A non-staff member of the staff chat replying to a post does not reach the user.
    live.api.reply_to(outsider, post, "hello from a stranger")
    assert (await live.api.wait_for_message(live.staff_chat))["text"] == texts.STAFF_RELAY_NOT_STAFF
    assert len(live.api.messages(user)) == 1

    assert rows(live.db_path, "select * from enquiries") == before
    assert rows(live.db_path, "select direction from relays") == [("staff_post",)]
    assert live.api.unanswered_callbacks() == []
    live.api.assert_no_errors()


async def test_without_staff_ids_the_staff_chat_members_may_press(
    bot_api: TelegramServer, brain: Brain, tmp_path: Path
) -> None:
    staff = bot_api.add_user("Sam", username="sam_staff")
    staff_chat = bot_api.add_group("Academy staff", members=[staff])
    settings = replace(
        live_settings(bot_api, tmp_path / "mesobot.sqlite3", staff, staff_chat), staff_ids=frozenset()
    )
    app = await start_bot(settings, brain)
    try:
        user = bot_api.add_user("Ivo")
        bot_api.send_text(user, QUESTION)
        await bot_api.wait_for_message(user)
        post = await bot_api.wait_for_message(staff_chat)
        query = bot_api.press_button(staff, post, "v1:take:1")
        assert (await bot_api.wait_for_message(user))["text"] == texts.USER_TAKEN.format(
            reference=format_reference(1)
        )
        assert (await bot_api.wait_for_callback_answer(query))["text"] == texts.STAFF_TOOK.format(
            reference=format_reference(1)
        )
        # ... but nobody gets the staff commands: the list of staff ids is empty.
        bot_api.send_text(staff, "/enquiries")
        reply = await bot_api.wait_for_message(staff)
        assert reply["text"] == texts.UNKNOWN_COMMAND.format(command="/enquiries")
    finally:
        await stop_bot(app)
    bot_api.assert_no_errors()


def _seed(db_path: Path, user_id: int, count: int) -> None:
    """`count` enquiries from one user, straight into the log (as the CLI or a crash-restart
    would leave them); the last one's text looks like a spreadsheet formula."""
    with EnquiryLog(db_path) as log:
        for number in range(1, count + 1):
            text = f"question number {number}" if number < count else '=HYPERLINK("http://evil.example")'
            log.record("fallback", user_id, user_id, "Jo", "jo", text, {"suggested": ["a", "b"]})


async def test_staff_commands(live: LiveBot) -> None:
    jo = live.api.add_user("Jo", username="jo")
    _seed(live.db_path, jo.id, 12)
    staff = live.staff

    first = await live.ask(staff, "/enquiries")
    assert first["text"].startswith(texts.STAFF_LIST_HEADER.format(page=1, pages=2, total=12))
    assert first["text"].index("ENQ-000012") < first["text"].index("ENQ-000003")
    assert "ENQ-000002" not in first["text"] and "question number 3" in first["text"]
    assert live.api.buttons(first) == [(texts.STAFF_NEXT, "v1:enq:p:2")]

    query = live.api.press_button(staff, first, "v1:enq:p:2")
    await live.api.wait_for_callback_answer(query)
    second = live.api.message(staff, first["message_id"])
    assert second["text"].startswith(texts.STAFF_LIST_HEADER.format(page=2, pages=2, total=12))
    assert "ENQ-000002" in second["text"] and "ENQ-000001" in second["text"]
    assert live.api.buttons(second) == [(texts.STAFF_PREV, "v1:enq:p:1")]
    assert (await live.ask(staff, "/enquiries 2"))["text"] == second["text"]
    assert (await live.ask(staff, "/enquiries two"))["text"] == texts.STAFF_USAGE["enquiries"]

    detail = await live.ask(staff, "/enquiry 3")
    assert detail["text"].startswith("ENQ-000003 · ❓ question · new\nFrom: Jo @jo (id ")
    assert "Handled by: nobody yet" in detail["text"] and "question number 3" in detail["text"]
    assert "Relayed: 0 to the user, 0 from the user" in detail["text"]
    assert (await live.ask(staff, "/enquiry #3"))["text"] == detail["text"]
    assert (await live.ask(staff, "/enquiry ENQ-000003"))["text"] == detail["text"]
    assert (await live.ask(staff, "/enquiry abc"))["text"] == texts.STAFF_BAD_REFERENCE.format(text="abc")
    assert (await live.ask(staff, "/enquiry 99999"))["text"] == texts.STAFF_NOT_FOUND.format(
        reference="ENQ-099999"
    )
    assert (await live.ask(staff, "/enquiry"))["text"] == texts.STAFF_USAGE["enquiry"]

    assert (await live.ask(staff, "/note 3 Called back,  left a voicemail"))["text"] == (
        texts.STAFF_NOTE_ADDED.format(reference="ENQ-000003")
    )
    assert (await live.ask(staff, "/note 3"))["text"] == texts.STAFF_USAGE["note"]
    assert (await live.ask(staff, "/note 99999 hello"))["text"] == texts.STAFF_NOT_FOUND.format(
        reference="ENQ-099999"
    )
    (notes,) = rows(live.db_path, "select staff_notes from enquiries where id = 3")[0]
    [stored] = json.loads(notes)
    assert stored["by"] == SAM and stored["text"] == "Called back,  left a voicemail" and stored["at"]
    assert "Called back,  left a voicemail" in (await live.ask(staff, "/enquiry 3"))["text"]

    assert (await live.ask(staff, "/done 3"))["text"] == texts.STAFF_CLOSED.format(reference="ENQ-000003")
    assert (await live.api.wait_for_message(jo))["text"] == texts.USER_CLOSED.format(reference="ENQ-000003")
    assert rows(live.db_path, "select status, handled_by from enquiries where id = 3") == [("done", SAM)]
    assert (await live.ask(staff, "/done 3"))["text"] == texts.STAFF_ALREADY_CLOSED.format(
        reference="ENQ-000003", who=SAM
    )
    assert (await live.ask(staff, "/done x"))["text"] == texts.STAFF_BAD_REFERENCE.format(text="x")
    assert (await live.ask(staff, "/enquiries"))["text"].startswith(
        texts.STAFF_LIST_HEADER.format(page=1, pages=2, total=11)
    )

    # /export: the whole log as CSV, rows parse back, a formula is shown as text.
    export = await live.ask(staff, "/export")
    assert export["document"]["file_name"].startswith("enquiries-") and export["caption"].startswith("12 ")
    [document] = live.api.documents(staff)
    assert document.filename == export["document"]["file_name"] and document.filename.endswith(".csv")
    parsed = list(csv.DictReader(io.StringIO(document.content.decode("utf-8-sig"))))
    assert [row["reference"] for row in parsed] == [format_reference(n) for n in range(1, 13)]
    assert parsed[2]["status"] == "done" and json.loads(parsed[2]["staff_notes"])[0]["by"] == SAM
    assert parsed[11]["text"] == '\'=HYPERLINK("http://evil.example")'
    assert parsed[0]["details"] == '{"suggested": ["a", "b"]}'

    # The same commands work in the staff chat.
    live.api.send_text(staff, "/enquiry 3", chat=live.staff_chat)
    assert (await live.api.wait_for_message(live.staff_chat))["text"].startswith(
        "ENQ-000003 · ❓ question · done"
    )
    assert live.api.unanswered_callbacks() == []
    live.api.assert_no_errors()


def test_cli_export_neutralises_formulas(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    db_path = tmp_path / "mesobot.sqlite3"
    with EnquiryLog(db_path) as log:
        for text in ("=1+2", "+44 7700 900123", "-rf", "@SUM(A1)", "\tx", "plain", "a=b"):
            log.record("fallback", -1001, -1001, "@name", None, text)
    assert enquiries_cli(["--db", str(db_path), "export"]) == 0
    parsed = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [row["text"] for row in parsed] == [
        "'=1+2",
        "'+44 7700 900123",
        "'-rf",
        "'@SUM(A1)",
        "'\tx",
        "plain",
        "a=b",
    ]
    assert parsed[0]["display_name"] == "'@name"
    assert parsed[0]["user_id"] == "-1001"  # numbers are numbers, not formulas
