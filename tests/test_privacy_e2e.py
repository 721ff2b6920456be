"""Privacy over the real bot: /privacy, /mydata, /forgetme, and the daily retention purge."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path

from telegram.ext import CallbackContext

from bot import texts
from bot.enquiries import EnquiryLog, iso, utc_now
from handlers.privacy import purge_expired
from tests.conftest import LiveBot

QUESTION = "do you offer refunds if I can't make it?"


def rows(db_path: Path, sql: str, params: tuple = ()) -> list[tuple]:
    with sqlite3.connect(db_path) as db:
        return db.execute(sql, params).fetchall()


def count(db_path: Path, table: str, user_id: int) -> int:
    column = "user_chat_id" if table == "relays" else "user_id"
    return rows(db_path, f"select count(*) from {table} where {column} = ?", (user_id,))[0][0]


async def hand_off(live: LiveBot, user, question: str = QUESTION) -> dict:
    """The user's question goes to staff, who take it and reply; the user answers back."""
    live.api.send_text(user, question)
    await live.api.wait_for_message(user)
    post = await live.api.wait_for_message(live.staff_chat)
    (enquiry_id,) = rows(live.db_path, "select max(id) from enquiries")[0]
    live.api.press_button(live.staff, post, f"v1:take:{enquiry_id}")
    await live.api.wait_for_message(user)  # "a member of our team is looking"
    live.api.reply_to(live.staff, post, "Hello, yes we do.")
    await live.api.wait_for_message(user)
    await live.api.wait_for_message(live.staff_chat)  # the ack
    live.api.send_text(user, "thanks!")
    await live.api.wait_for_message(live.staff_chat)  # relayed
    await live.ask(user, "/privacy")  # a chat's updates are handled in order: the relay is stored
    return post


async def test_privacy_says_what_is_kept_why_and_for_how_long(live: LiveBot) -> None:
    user = live.api.add_user("Ana")
    reply = await live.ask(user, "/privacy")
    assert reply["text"] == texts.PRIVACY.format(
        days=365, booking_minutes=60, follow_up_minutes=30, choice_minutes=30
    )
    assert "365 more days" in reply["text"] and "for 30 minutes" in reply["text"]
    assert "/mydata" in reply["text"] and "/forgetme" in reply["text"]
    live.api.assert_no_errors()


async def test_mydata_shows_the_users_data_and_no_one_elses(live: LiveBot) -> None:
    ann = live.api.add_user("Ann", username="ann")
    bob = live.api.add_user("Bob")
    nobody = live.api.add_user("Nia")
    await hand_off(live, ann)
    bob_question = "can I pay in instalments?"
    await live.ask(bob, bob_question)
    await live.api.wait_for_message(live.staff_chat)

    mine = await live.ask(ann, "/mydata")
    text = mine["text"]
    assert text.startswith(texts.MYDATA_HEADER.format(user_id=ann.id))
    assert "ENQ-000001" in text and QUESTION in text and "with our team" in text
    assert texts.MYDATA_RELAYS.format(count=2) in text  # the staff reply and the user's answer
    assert bob_question not in text and "ENQ-000002" not in text and str(bob.id) not in text
    assert text.endswith(texts.MYDATA_FOOTER)

    assert (await live.ask(nobody, "/mydata"))["text"] == texts.MYDATA_NOTHING
    group = live.api.add_group("Delegates", members=[ann])
    live.api.send_text(ann, "/mydata", chat=group)
    assert (await live.api.wait_for_message(group))["text"] == texts.PRIVATE_ONLY.format(
        command="/mydata", link="https://t.me/mesobot_test_bot"
    )
    live.api.assert_no_errors()


async def test_mydata_shows_a_question_awaiting_a_choice(live: LiveBot) -> None:
    gil = live.api.add_user("Gil")
    await live.ask(gil, "how long?")
    text = (await live.ask(gil, "/mydata"))["text"]
    assert "how long?" in text and "If you don't pick one, it goes to our team." in text


async def test_mydata_sends_a_file_when_there_is_a_lot(live: LiveBot) -> None:
    cy = live.api.add_user("Cy")
    with EnquiryLog(live.db_path) as log:
        for number in range(30):
            log.record("fallback", cy.id, cy.id, "Cy", None, f"question {number}: " + "words " * 40)
    reply = await live.ask(cy, "/mydata")
    assert reply["caption"] == texts.MYDATA_DOCUMENT
    [document] = live.api.documents(cy)
    data = json.loads(document.content)
    assert document.filename == f"mydata-{cy.id}.json"
    assert data["user_id"] == cy.id and len(data["enquiries"]) == 30
    assert {enquiry["user_id"] for enquiry in data["enquiries"]} == {cy.id}


async def test_forgetme_no_keeps_everything_yes_deletes_only_theirs(live: LiveBot) -> None:
    dan = live.api.add_user("Dan")
    eve = live.api.add_user("Eve")
    dan_post = await hand_off(live, dan)
    await hand_off(live, eve, "is there parking near the clinic?")
    dan_before = [count(live.db_path, table, dan.id) for table in ("enquiries", "relays")]
    assert dan_before == [1, 2]
    everything = rows(live.db_path, "select * from enquiries order by id")

    ask = await live.ask(dan, "/forgetme")
    assert ask["text"] == texts.FORGET_CONFIRM
    assert live.api.buttons(ask) == [(texts.FORGET_YES, "v1:forget:yes"), (texts.FORGET_NO, "v1:forget:no")]
    query = live.api.press_button(dan, ask, "v1:forget:no")
    await live.api.wait_for_callback_answer(query)
    kept = live.api.message(dan, ask["message_id"])
    assert kept["text"] == texts.FORGET_KEPT and live.api.buttons(kept) == []
    assert rows(live.db_path, "select * from enquiries order by id") == everything

    ask = await live.ask(dan, "/forgetme")
    query = live.api.press_button(dan, ask, "v1:forget:yes")
    await live.api.wait_for_callback_answer(query)
    done = live.api.message(dan, ask["message_id"])
    assert done["text"].startswith("Done: I've deleted everything I held about you (1 enquiries;")
    for table in ("enquiries", "relays", "conversations", "user_data"):
        assert count(live.db_path, table, dan.id) == 0, table
    assert rows(live.db_path, "select count(*) from relays where enquiry_id = 1") == [(0,)]
    # Eve's enquiry and relays are untouched.
    assert count(live.db_path, "enquiries", eve.id) == 1 and count(live.db_path, "relays", eve.id) == 2
    # The staff chat no longer shows Dan's question, and his relayed message is gone.
    blanked = live.api.message(live.staff_chat, dan_post["message_id"])
    assert blanked["text"] == texts.STAFF_POST_FORGOTTEN.format(reference="ENQ-000001")
    assert live.api.buttons(blanked) == []
    assert not any("Dan ·" in (m.get("text") or "") for m in live.api.messages(live.staff_chat))

    # The hand-off is over: Dan's next question is answered by the bot, not relayed.
    assert "£600" in (await live.ask(dan, "how much is the pain course"))["text"]
    assert (await live.ask(dan, "/mydata"))["text"] == texts.MYDATA_NOTHING
    assert live.api.unanswered_callbacks() == []
    live.api.assert_no_errors()


async def test_a_double_tap_on_keep_my_data_gets_no_error(live: LiveBot) -> None:
    dan = live.api.add_user("Dan")
    ask = await live.ask(dan, "/forgetme")
    first = live.api.press_button(dan, ask, "v1:forget:no")
    second = live.api.press_button(dan, ask, "v1:forget:no")  # before the first took the buttons away
    for query in (first, second):
        await live.api.wait_for_callback_answer(query)
    assert (await live.ask(dan, "/mydata"))["text"] == texts.MYDATA_NOTHING  # handled after both taps
    assert [m["text"] for m in live.api.messages(dan)] == [texts.FORGET_KEPT, texts.MYDATA_NOTHING]


async def test_forgetme_mid_booking_drops_the_booking_too(live: LiveBot) -> None:
    fay = live.api.add_user("Fay")
    assert (await live.ask(fay, "/book"))["text"] == texts.BOOK_COURSE
    assert (await live.ask(fay, "the pain one"))["text"] == texts.BOOK_NAME
    assert (await live.ask(fay, "Fay Wray"))["text"] == texts.BOOK_CONTACT
    assert count(live.db_path, "conversations", fay.id) == 1
    assert "Fay Wray" in rows(live.db_path, "select data from user_data where user_id = ?", (fay.id,))[0][0]
    mydata = await live.ask(fay, "/mydata")  # mid-booking, the command is answered
    assert "Fay Wray" in mydata["text"] and "booking request you haven't finished" in mydata["text"]

    ask = await live.ask(fay, "/forgetme")
    query = live.api.press_button(fay, ask, "v1:forget:yes")
    await live.api.wait_for_callback_answer(query)
    assert live.api.message(fay, ask["message_id"])["text"].startswith("Done: I've deleted")
    assert count(live.db_path, "conversations", fay.id) == 0
    assert count(live.db_path, "user_data", fay.id) == 0
    assert not live.app.user_data.get(fay.id)

    # The booking is gone: what she types now is not taken as her contact details.
    reply = await live.ask(fay, "fay@example.com")
    assert reply["text"] != texts.BOOK_BACKGROUND
    assert (await live.ask(fay, "/book"))["text"] == texts.BOOK_COURSE  # a fresh start
    live.api.assert_no_errors()


async def test_the_retention_purge_deletes_old_closed_enquiries_only(live: LiveBot) -> None:
    jobs = live.app.job_queue.get_jobs_by_name("retention-purge")
    assert len(jobs) == 1 and jobs[0].trigger.interval == timedelta(days=1)

    long_ago = iso(utc_now() - timedelta(days=400))
    with EnquiryLog(live.db_path) as log:
        old_done = log.record("fallback", 1, 1, "Old", None, "closed long ago")
        log.set_status(old_done.id, "done", "Sam")
        recent_done = log.record("fallback", 2, 2, "New", None, "closed yesterday")
        log.set_status(recent_done.id, "done", "Sam")
        old_open = log.record("booking", 3, 3, "Open", None, "never handled")
        log.add_relay(old_done.id, direction="staff_post", staff_chat_id=-1, staff_message_id=7)
    with sqlite3.connect(live.db_path) as db:
        db.execute(
            "update enquiries set handled_at = ?, updated_at = ? where id = ?", (long_ago, long_ago, 1)
        )
        db.execute(
            "update enquiries set created_at = ?, updated_at = ? where id = ?", (long_ago, long_ago, 3)
        )

    assert await purge_expired(CallbackContext(live.app)) == 1
    assert rows(live.db_path, "select id, status from enquiries order by id") == [
        (recent_done.id, "done"),
        (old_open.id, "new"),
    ]
    assert rows(live.db_path, "select count(*) from relays") == [(0,)]
    assert await purge_expired(CallbackContext(live.app)) == 0
