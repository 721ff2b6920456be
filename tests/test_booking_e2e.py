"""A prospective delegate books a place with the real bot: every step, bad input at each, cancel."""

from __future__ import annotations

import json
import sqlite3

from bot import texts
from tests.conftest import LiveBot
from tests.telegram_server import User

PAIN = "v1:bk:c:pain-mesotherapy-masterclass"


def bookings(live: LiveBot) -> list[tuple[str, str, dict]]:
    with sqlite3.connect(live.db_path) as db:
        found = db.execute("select kind, status, details from enquiries where kind = 'booking'")
        return [(kind, status, json.loads(details)) for kind, status, details in found]


async def until_course_buttons(live: LiveBot, user: User, first: str = "/book") -> dict:
    prompt = await live.ask(user, first)
    if prompt["text"] == texts.BOOKING_START:
        prompt = await live.api.wait_for_message(user)
    assert prompt["text"] == texts.BOOK_COURSE
    return prompt


async def book_to_consent(live: LiveBot, user: User) -> dict:
    """Course, name, contact, background and notes: returns the consent prompt."""
    courses = await until_course_buttons(live, user)
    assert PAIN in [data for _, data in live.api.buttons(courses)]
    name_prompt = await live.press(user, courses, PAIN)
    assert name_prompt["text"] == texts.BOOK_NAME
    contact_prompt = await live.ask(user, "Ada Lovelace")
    assert contact_prompt["text"] == texts.BOOK_CONTACT
    keyboard = live.api.reply_keyboard(user)
    assert keyboard["keyboard"][0][0]["request_contact"] is True
    live.api.send_contact(user, "+447700900000")
    await live.api.wait_for_message(user)  # the acknowledgement that removes the keyboard
    background = await live.api.wait_for_message(user)
    assert background["text"] == texts.BOOK_BACKGROUND
    assert live.api.reply_keyboard(user) is None
    notes = await live.press(user, background, "v1:bk:b:non-medical")
    assert notes["text"] == texts.BOOK_NOTES
    consent = await live.ask(user, "Weekdays in March if possible")
    assert "UK GDPR" in consent["text"] and "/forgetme" in consent["text"]
    return consent


async def test_a_delegate_books_from_start_to_finish_and_staff_receive_it(live: LiveBot) -> None:
    user = live.api.add_user("Ada", username="ada")
    consent = await book_to_consent(live, user)
    summary = await live.press(user, consent, "v1:bk:agree")
    for expected in ("Ada Lovelace", "+447700900000", "Non-medical", "Weekdays in March"):
        assert expected in summary["text"]
    assert bookings(live) == []  # nothing is filed before the person confirms
    done = await live.press(user, summary, "v1:bk:confirm")
    assert "ENQ-000001" in done["text"] and "Learning Pack is sent to you by email" in done["text"]
    [(kind, status, details)] = bookings(live)
    assert (kind, status) == ("booking", "new")
    assert details["name"] == "Ada Lovelace" and details["contact"] == "+447700900000"
    assert details["course"] == "Pain Mesotherapy Masterclass" and details["consent"] is True
    post = await live.api.wait_for_message(live.staff_chat)
    assert "Booking request" in post["text"] and "ENQ-000001" in post["text"]
    assert "Ada Lovelace" in post["text"]
    assert live.api.unanswered_callbacks() == []
    live.api.assert_no_errors()


async def test_free_text_that_means_book_starts_the_flow(live: LiveBot) -> None:
    user = live.api.add_user("Bo")
    await until_course_buttons(live, user, first="how do I secure a place?")


async def test_a_question_asked_with_a_booking_is_answered_then_booking_offered(live: LiveBot) -> None:
    user = live.api.add_user("Cy")
    answer = await live.ask(user, "how much is it and can I book")
    assert "£600" in answer["text"]
    offer = await live.api.wait_for_message(user)
    assert offer["text"] == texts.BOOK_OFFER
    courses = await live.press(user, offer, "v1:bk:start")
    assert courses["text"] == texts.BOOK_COURSE


async def test_bad_input_at_each_step_asks_again_and_keeps_what_was_collected(live: LiveBot) -> None:
    user = live.api.add_user("Di")
    await until_course_buttons(live, user)
    # A sticker where a button is expected; then the course typed rather than tapped.
    live.api.send_sticker(user)
    assert (await live.api.wait_for_message(user))["text"] == texts.BOOK_IN_PROGRESS
    assert (await live.api.wait_for_message(user))["text"] == texts.BOOK_COURSE
    assert (await live.ask(user, "the pain one please"))["text"] == texts.BOOK_NAME
    # A name of digits, then /start in the middle: asked again, nothing lost.
    assert (await live.ask(user, "12345"))["text"] == texts.BOOK_RETRY["letters"]
    assert (await live.ask(user, "/start"))["text"] == texts.BOOK_IN_PROGRESS
    assert (await live.api.wait_for_message(user))["text"] == texts.BOOK_NAME
    await live.ask(user, "Di Prince")
    # A phone number of letters, a broken email, then a real email.
    assert (await live.ask(user, "call me maybe"))["text"] == texts.BOOK_RETRY["contact"]
    assert (await live.ask(user, "di@@example"))["text"] == texts.BOOK_RETRY["email"]
    await live.ask(user, "di@example.com")
    assert (await live.api.wait_for_message(user))["text"] == texts.BOOK_BACKGROUND
    assert (await live.ask(user, "I'm medical, a GP"))["text"] == texts.BOOK_NOTES
    too_long = await live.ask(user, "x" * 1200)
    assert too_long["text"] == texts.BOOK_RETRY["long"].format(limit=1000)
    consent = await live.ask(user, "Mornings suit me")
    summary = await live.press(user, consent, "v1:bk:agree")
    for expected in ("Di Prince", "di@example.com", "Medical", "Mornings suit me"):
        assert expected in summary["text"]
    live.api.assert_no_errors()


async def test_a_question_at_the_name_step_is_answered_and_the_step_kept(live: LiveBot) -> None:
    user = live.api.add_user("Ez")
    courses = await until_course_buttons(live, user)
    await live.press(user, courses, PAIN)
    answer = await live.ask(user, "sorry, how much is it again?")
    assert "£600" in answer["text"]
    assert (await live.api.wait_for_message(user))["text"] == texts.BOOK_IN_PROGRESS
    assert (await live.api.wait_for_message(user))["text"] == texts.BOOK_NAME
    assert (await live.ask(user, "Ez Ra"))["text"] == texts.BOOK_CONTACT


async def test_edit_changes_one_answer_and_returns_to_the_summary(live: LiveBot) -> None:
    user = live.api.add_user("Ed")
    consent = await book_to_consent(live, user)
    summary = await live.press(user, consent, "v1:bk:agree")
    which = await live.press(user, summary, "v1:bk:edit")
    name_prompt = await live.press(user, which, "v1:bk:e:name")
    assert name_prompt["text"] == texts.BOOK_NAME
    summary = await live.ask(user, "Edmund Hillary")
    assert summary["text"].startswith("Please check your request")
    assert "Edmund Hillary" in summary["text"] and "Weekdays in March" in summary["text"]


async def test_cancel_works_at_every_step_and_sends_nothing(live: LiveBot) -> None:
    user = live.api.add_user("Flo")
    await until_course_buttons(live, user)
    assert (await live.ask(user, "/cancel"))["text"] == texts.BOOK_CANCELLED
    consent = await book_to_consent(live, user)
    declined = await live.press(user, consent, "v1:bk:cancel")
    assert declined["text"] == texts.BOOK_DECLINED
    assert bookings(live) == []
    # After cancelling, questions get answers again.
    assert "£600" in (await live.ask(user, "price?"))["text"]


async def test_an_urgent_message_mid_booking_gets_safety_advice_and_keeps_the_step(live: LiveBot) -> None:
    user = live.api.add_user("Gil")
    courses = await until_course_buttons(live, user)
    await live.press(user, courses, PAIN)
    advice = await live.ask(user, "sorry my lips are swelling up and my throat feels tight")
    assert "999" in advice["text"]
    assert (await live.api.wait_for_message(user))["text"] == texts.BOOK_IN_PROGRESS
    assert (await live.api.wait_for_message(user))["text"] == texts.BOOK_NAME
    alert = await live.api.wait_for_message(live.staff_chat)
    assert "URGENT" in alert["text"]


async def test_booking_in_a_group_is_moved_to_a_private_chat(live: LiveBot) -> None:
    user = live.api.add_user("Hal")
    group = live.api.add_group("Delegates", members=[user])
    live.api.send_text(user, f"/book@{live.api.bot.username}", chat=group)
    reply = await live.api.wait_for_message(group)
    assert f"https://t.me/{live.api.bot.username}?start=book" in reply["text"]


async def test_an_abandoned_booking_expires_politely(bot_api, brain, tmp_path) -> None:
    from dataclasses import replace

    from tests.conftest import live_settings, start_bot, stop_bot

    staff = bot_api.add_user("Sam")
    settings = live_settings(bot_api, tmp_path / "db.sqlite3", staff, bot_api.add_group("Staff"))
    app = await start_bot(replace(settings, booking_timeout_minutes=0.02), brain)  # 1.2 seconds
    try:
        user = bot_api.add_user("Ivo")
        bot_api.send_text(user, "/book")
        await bot_api.wait_for_message(user)
        expired = await bot_api.wait_for_message(user, timeout=10)
        assert expired["text"] == texts.BOOK_EXPIRED
        bot_api.send_text(user, "where is it held?")  # a question again, not a step of a booking
        assert "Harley Street" in (await bot_api.wait_for_message(user))["text"]
    finally:
        await stop_bot(app)


async def test_a_booking_that_mentions_a_complaint_after_treatment_starts_with_the_warning_signs(
    live: LiveBot,
) -> None:
    user = live.api.add_user("Bo")
    opening = await live.ask(
        user, "can I book another session? the spot where she injected still feels a bit odd"
    )
    assert opening["text"].startswith(texts.BOOKING_START)
    assert "Seek help now if you notice" in opening["text"]
    assert (await live.api.wait_for_message(user))["text"] == texts.BOOK_COURSE  # the hand-off goes on
    live.api.assert_no_errors()


async def test_stop_in_words_cancels_and_yes_in_words_answers_the_buttons(live: LiveBot) -> None:
    """People type what the buttons say: "never mind" stops; "yes" agrees and sends."""
    user = live.api.add_user("Hal")
    courses = await until_course_buttons(live, user)
    await live.press(user, courses, PAIN)
    stopped = await live.ask(user, "actually no dont want to book anymore")  # not taken for a name
    assert stopped["text"] == texts.BOOK_CANCELLED
    await until_course_buttons(live, user)
    assert (await live.ask(user, "never mind"))["text"] == texts.BOOK_CANCELLED
    assert bookings(live) == []
    await book_to_consent(live, user)
    summary = await live.ask(user, "yes")
    assert summary["text"].startswith("Please check your request")
    done = await live.ask(user, "ok send it")
    assert "ENQ-000001" in done["text"]
    assert [details["name"] for _, _, details in bookings(live)] == ["Ada Lovelace"]
    live.api.assert_no_errors()


async def test_no_typed_at_the_notes_step_is_no_notes(live: LiveBot) -> None:
    user = live.api.add_user("Ivy")
    courses = await until_course_buttons(live, user)
    await live.press(user, courses, PAIN)
    await live.ask(user, "Ivy Green")
    await live.ask(user, "ivy@example.com")
    background = await live.api.wait_for_message(user)
    await live.press(user, background, "v1:bk:b:medical")
    consent = await live.ask(user, "no")
    summary = await live.press(user, consent, "v1:bk:agree")
    assert "Notes: -" in summary["text"]


async def test_putting_booking_off_or_asking_for_a_treatment_starts_no_booking(live: LiveBot) -> None:
    user = live.api.add_user("Jon")
    assert (await live.ask(user, "ok ill book later, thanks"))["text"] == texts.BOOK_LATER
    treatment = await live.ask(user, "can i book a treatment with you? i want meso for my face")
    assert treatment["text"] != texts.BOOKING_START and "team" in treatment["text"]  # passed to staff
    assert bookings(live) == []
    live.api.assert_no_errors()
