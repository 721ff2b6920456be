"""A person asks questions of the real bot over the loopback Bot API: what they see, and what is stored."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta

from bot import texts
from bot.enquiries import utc_now
from handlers.filing import CHOICE_WAIT_MINUTES, file_unchosen
from tests.conftest import LiveBot


def rows(live: LiveBot, sql: str) -> list[tuple]:
    with sqlite3.connect(live.db_path) as db:
        return db.execute(sql).fetchall()


async def test_start_greets_with_the_menu_and_registers_commands(live: LiveBot) -> None:
    user = live.api.add_user("Ada")
    reply = await live.ask(user, "/start")
    assert reply["text"].startswith("Hello, Ada!")
    labels = [label for label, _ in live.api.buttons(reply)]
    assert labels == [texts.MENU_COURSES, texts.MENU_BOOK, texts.MENU_AFTERCARE, texts.MENU_ASK]
    names = [c["command"] for c in live.api.commands()]
    assert {"start", "help", "courses", "book", "cancel"} <= set(names)
    live.api.assert_no_errors()


async def test_a_question_gets_its_answer_with_follow_ups(live: LiveBot) -> None:
    user = live.api.add_user("Ben")
    reply = await live.ask(user, "hi, quick question - how much is the pain course??")
    assert "£600" in reply["text"]
    *follow_up, disown = live.api.buttons(reply)
    assert follow_up and all(data.startswith("v1:faq:") for _, data in follow_up)
    assert disown == (texts.NOT_WHAT_I_ASKED, "v1:miss")
    answer = await live.press(user, reply, follow_up[0][1])
    assert answer["text"] != reply["text"]
    assert live.api.unanswered_callbacks() == []
    assert rows(live, "select entry_id, count from answer_counts where entry_id = 'pain-course-price'") == [
        ("pain-course-price", 1)
    ]
    live.api.assert_no_errors()


async def test_two_questions_in_one_message_are_both_answered(live: LiveBot) -> None:
    user = live.api.add_user("Cy")
    reply = await live.ask(user, "price and where is it?")
    assert "£600" in reply["text"] and "Harley Street" in reply["text"]


async def test_a_follow_up_is_read_after_the_answer_before_it(live: LiveBot, monkeypatch) -> None:
    follow_up = "and for non-medical people?"
    eve, fay, gus = (live.api.add_user(name) for name in ("Eve", "Fay", "Gus"))
    await live.ask(eve, "how much is membership?")
    reply = await live.ask(eve, follow_up)
    assert "£100 (Non-Medical)" in reply["text"]  # the membership price, not who may train
    reply = await live.ask(fay, follow_up)  # another person, with no answer before it
    assert "£100" not in reply["text"] and "non-medical backgrounds" in reply["text"]
    # After the answer to a button pressed, too...
    price = await live.ask(gus, "how much is the course?")
    await live.press(gus, price, dict(live.api.buttons(price))["How much does SoMUK membership cost?"])
    reply = await live.ask(gus, follow_up)
    assert "£100 (Non-Medical)" in reply["text"]
    # ...but not once the moment has passed: then the message is read on its own.
    monkeypatch.setattr("handlers.follow_up.FOLLOW_UP_MINUTES", 0)
    reply = await live.ask(gus, follow_up)
    assert "£100" not in reply["text"]
    live.api.assert_no_errors()


async def test_what_people_said_is_forgotten_once_too_old_to_follow_up(live: LiveBot, monkeypatch) -> None:
    """Kept in memory for reading a follow-up, it is swept away after that, even for people who
    never write again (the sweep runs every few minutes)."""
    from handlers.follow_up import RECENT, forget_stale

    assert live.app.job_queue.get_jobs_by_name("follow-up-forget")  # the sweep is scheduled
    hal = live.api.add_user("Hal")
    await live.ask(hal, "how much is membership?")
    assert await forget_stale(live.app) == 0  # recent: kept
    assert live.app.chat_data[hal.id][RECENT]
    monkeypatch.setattr("handlers.follow_up.FOLLOW_UP_MINUTES", 0)
    assert await forget_stale(live.app) == 1
    assert not live.app.chat_data[hal.id][RECENT]


async def test_did_you_mean_buttons_answer_the_chosen_question(live: LiveBot, brain) -> None:
    question = "how long?"
    assert brain.reply(question).kind.value == "suggest"  # the premise of this test
    user = live.api.add_user("Di")
    reply = await live.ask(user, question)
    assert reply["text"] == texts.DID_YOU_MEAN
    assert reply["reply_to_message"]["text"] == question
    choices = live.api.buttons(reply)
    assert choices[-1] == (texts.NONE_OF_THESE, "v1:none")
    label, data = choices[0]
    answer = await live.press(user, reply, data)
    entry = brain.knowledge.entry(data.removeprefix("v1:faq:"))
    assert answer["text"].startswith(entry.answer)
    assert live.api.unanswered_callbacks() == []


async def test_a_choice_pressed_long_before_the_bot_reads_it_is_still_answered(live: LiveBot, brain) -> None:
    user = live.api.add_user("Dot")
    reply = await live.ask(user, "how long?")
    live.api.callback_query_ttl = 0  # the bot was down: Telegram no longer takes an answer to the press
    label, data = live.api.buttons(reply)[0]
    answer = await live.press(user, reply, data)
    assert answer["text"].startswith(brain.knowledge.entry(data.removeprefix("v1:faq:")).answer)


async def test_none_of_these_passes_the_question_to_staff(live: LiveBot) -> None:
    user = live.api.add_user("Ed")
    reply = await live.ask(user, "how long?")
    thanks = await live.press(user, reply, "v1:none")
    assert thanks["text"] == texts.NONE_OF_THESE_REPLY
    assert rows(live, "select kind, text, user_id from enquiries") == [("fallback", "how long?", user.id)]
    post = await live.api.wait_for_message(live.staff_chat)
    assert "how long?" in post["text"] and "ENQ-" in post["text"]


async def test_a_double_tap_on_none_of_these_passes_the_question_on_once(live: LiveBot) -> None:
    user = live.api.add_user("Em")
    reply = await live.ask(user, "how long?")
    live.api.press_button(user, reply, "v1:none")
    live.api.press_button(user, reply, "v1:none")  # before the bot has taken the button away
    for _ in range(2):
        assert (await live.api.wait_for_message(user))["text"] == texts.NONE_OF_THESE_REPLY
    assert rows(live, "select kind, text from enquiries") == [("fallback", "how long?")]


def _after(minutes: float):
    return utc_now() + timedelta(minutes=minutes)


async def test_a_suggestion_nobody_picks_still_reaches_staff(live: LiveBot) -> None:
    user = live.api.add_user("Eve", username="eve")
    reply = await live.ask(user, "how long?")
    suggested = [data.removeprefix("v1:faq:") for _, data in live.api.buttons(reply)[:-1]]
    assert await file_unchosen(live.app, now=_after(CHOICE_WAIT_MINUTES - 1)) == 0
    assert rows(live, "select count(*) from enquiries") == [(0,)]
    assert await file_unchosen(live.app, now=_after(CHOICE_WAIT_MINUTES + 1)) == 1
    [(kind, text, username, details)] = rows(live, "select kind, text, username, details from enquiries")
    assert (kind, text, username) == ("fallback", "how long?", "eve")
    assert json.loads(details)["suggested"] == suggested
    post = await live.api.wait_for_message(live.staff_chat)
    assert "how long?" in post["text"] and "@eve" in post["text"] and "not chosen" in post["text"]
    assert await file_unchosen(live.app, now=_after(CHOICE_WAIT_MINUTES * 2)) == 0
    live.api.assert_no_errors()


async def test_a_suggestion_picked_or_passed_on_is_not_filed_again(live: LiveBot) -> None:
    picker, passer = live.api.add_user("Eva"), live.api.add_user("Ezra")
    reply = await live.ask(picker, "how long?")
    await live.press(picker, reply, live.api.buttons(reply)[0][1])
    reply = await live.ask(passer, "how long?")
    await live.press(passer, reply, "v1:none")
    assert await file_unchosen(live.app, now=_after(CHOICE_WAIT_MINUTES * 2)) == 0
    assert rows(live, "select user_id from enquiries") == [(passer.id,)]


async def test_an_answer_that_missed_can_be_passed_to_staff_with_one_tap(live: LiveBot, brain) -> None:
    question = "does the pack include the slides from the day"
    assert brain.reply(question).kind.value == "answer"  # the premise: a confident answer...
    user = live.api.add_user("Eli", username="eli")
    reply = await live.ask(user, question)
    assert reply["reply_to_message"]["text"] == question  # ...which quotes what it answers
    thanks = await live.press(user, reply, "v1:miss")
    assert thanks["text"] == texts.NONE_OF_THESE_REPLY
    [(kind, text, username, details)] = rows(live, "select kind, text, username, details from enquiries")
    answered = reply["text"].split("\n", 1)[0]
    assert (kind, text, username, json.loads(details)) == (
        "fallback",
        question,
        "eli",
        {"bot_answered": answered},
    )
    post = await live.api.wait_for_message(live.staff_chat)
    assert question in post["text"] and f"bot answered: {answered}" in post["text"]
    # The follow-ups stay; the button that has done its work goes.
    left = live.api.buttons(reply)
    assert left and all(data.startswith("v1:faq:") for _, data in left)
    assert live.api.unanswered_callbacks() == []
    live.api.assert_no_errors()


async def test_unanswerable_question_is_recorded_before_the_user_is_told(live: LiveBot) -> None:
    user = live.api.add_user("Flo", username="flo")
    reply = await live.ask(user, "do you offer refunds if I can't make it?")
    assert "passed your question to our team" in reply["text"]
    stored = rows(live, "select kind, text, username, status from enquiries")
    assert stored == [("fallback", "do you offer refunds if I can't make it?", "flo", "new")]
    post = await live.api.wait_for_message(live.staff_chat)
    assert "Unanswered question" in post["text"] and "@flo" in post["text"]
    assert [label for label, _ in live.api.buttons(post)] == [texts.STAFF_TAKE, texts.STAFF_DONE]


async def test_an_unanswered_question_offers_the_nearby_answer_as_a_button(live: LiveBot, brain) -> None:
    user = live.api.add_user("Fay")
    question = "how long is the pain course? is it a weekend thing?"
    reply = await live.ask(user, question)
    assert "course dates" in reply["text"] and texts.MAY_HELP in reply["text"]
    assert rows(live, "select kind, text from enquiries") == [("fallback", question)]
    buttons = dict(live.api.buttons(reply))
    duration = brain.knowledge.entry("pain-course-duration")
    answer = await live.press(user, reply, buttons[duration.question])
    assert answer["text"].startswith(duration.answer)
    assert live.api.unanswered_callbacks() == []
    live.api.assert_no_errors()


async def test_when_storing_fails_the_reply_says_so_and_keeps_the_signs_and_buttons(
    live: LiveBot, brain
) -> None:
    with sqlite3.connect(live.db_path) as db:  # the log breaks under the running bot
        db.execute("alter table enquiries rename to enquiries_elsewhere")
    user = live.api.add_user("Gil")
    question = (
        "had meso yesterday and the spot feels a bit odd. how long is the pain course, is it a weekend thing?"
    )
    reply = await live.ask(user, question)
    assert reply["text"].startswith(texts.FALLBACK_NOT_SAVED)
    assert "passed your question to our team" not in reply["text"]
    assert brain.safety.seek_help_signs in reply["text"]
    assert reply["text"].endswith(texts.MAY_HELP)
    duration = brain.knowledge.entry("pain-course-duration")
    assert duration.question in dict(live.api.buttons(reply))
    urgent = await live.ask(user, "my lips are swelling and I can't breathe, had meso an hour ago")
    assert "999" in urgent["text"] and urgent["text"].endswith(texts.NOT_PASSED_ON)


async def test_answers_still_arrive_when_they_cannot_be_counted(live: LiveBot) -> None:
    with sqlite3.connect(live.db_path) as db:
        db.execute("alter table answer_counts rename to counts_elsewhere")
    user = live.api.add_user("Hal")
    reply = await live.ask(user, "how much is the pain course?")
    assert "£600" in reply["text"]
    follow_up = live.api.buttons(reply)[0][1]
    answer = await live.press(user, reply, follow_up)
    assert answer["text"] not in (reply["text"], texts.ERROR)
    assert live.api.unanswered_callbacks() == []


async def test_courses_lists_each_course_with_key_facts(live: LiveBot) -> None:
    user = live.api.add_user("Gus")
    reply = await live.ask(user, "/courses")
    assert "Pain Mesotherapy" in reply["text"] and "£600" in reply["text"]
    assert "22 Harley Street" in reply["text"]
    assert texts.MENU_BOOK in [label for label, _ in live.api.buttons(reply)]


async def test_stickers_photos_and_voice_get_a_friendly_reply(live: LiveBot) -> None:
    user = live.api.add_user("Hal")
    live.api.send_sticker(user)
    assert "can't open stickers" in (await live.api.wait_for_message(user))["text"]
    live.api.send_photo(user)
    assert "can't open photos" in (await live.api.wait_for_message(user))["text"]
    live.api.send_voice(user)
    assert "can't open voice messages" in (await live.api.wait_for_message(user))["text"]


async def test_unknown_command_points_to_help(live: LiveBot) -> None:
    user = live.api.add_user("Ivy")
    reply = await live.ask(user, "/teleport now")
    assert reply["text"] == texts.UNKNOWN_COMMAND.format(command="/teleport")


async def test_very_long_and_emoji_only_messages_get_a_reply(live: LiveBot) -> None:
    user = live.api.add_user("Jo")
    reply = await live.ask(user, "where is the course held? " + "blah " * 800)
    assert reply["text"]
    reply = await live.ask(user, "🙂🙂🙂")
    assert reply["text"] == texts.NO_QUESTION
    assert rows(live, "select count(*) from enquiries where text = '🙂🙂🙂'") == [(0,)]
    live.api.assert_no_errors()


async def test_an_edited_question_is_answered_again(live: LiveBot) -> None:
    user = live.api.add_user("Kit")
    sent = live.api.send_text(user, "what time does it start")
    await live.api.wait_for_message(user)
    live.api.edit_text(sent, "how much is it")
    assert (await live.api.wait_for_message(user))["text"] == texts.EDITED
    assert "£600" in (await live.api.wait_for_message(user))["text"]


async def test_a_question_edited_into_one_answered_no_longer_waits_for_a_choice(live: LiveBot) -> None:
    user = live.api.add_user("Kim")
    sent = live.api.send_text(user, "how long?")
    assert (await live.api.wait_for_message(user))["text"] == texts.DID_YOU_MEAN
    live.api.edit_text(sent, "how much is the pain course")
    await live.api.wait_for_message(user)  # "I've read your edit"
    assert "£600" in (await live.api.wait_for_message(user))["text"]
    assert await file_unchosen(live.app, now=_after(CHOICE_WAIT_MINUTES * 2)) == 0
    assert rows(live, "select count(*) from enquiries") == [(0,)]


async def test_in_groups_the_bot_answers_only_when_addressed(live: LiveBot) -> None:
    user = live.api.add_user("Lee")
    group = live.api.add_group("Delegates", members=[user])
    live.api.send_text(user, "how much is the course", chat=group)
    live.api.mention_bot(user, group, "how much is the course")
    reply = await live.api.wait_for_message(group)
    assert "£600" in reply["text"]
    assert reply["reply_to_message"]["text"].endswith("how much is the course")
    assert texts.NOT_WHAT_I_ASKED not in [label for label, _ in live.api.buttons(reply)]  # whose question?
    await live.api.wait_until_consumed()
    assert len(live.api.messages(group)) == 1


async def test_a_question_deleted_before_its_answer_is_still_answered(live: LiveBot) -> None:
    user = live.api.add_user("Mo")
    with live.api.hold("sendMessage") as replying:  # the answer (it quotes the question) is on its way
        sent = live.api.send_text(user, "how much is the pain course?")
        await live.api.wait_for(lambda: replying.waiting, description="the answer being sent")
        live.api.delete_own(sent)
    reply = await live.api.wait_for_message(user)
    assert "£600" in reply["text"] and "reply_to_message" not in reply
    live.api.assert_no_errors()


async def test_a_question_the_bot_fails_to_answer_is_kept_for_staff(live: LiveBot) -> None:
    user = live.api.add_user("Ned")
    live.refuse_next_reply(user)  # the handler fails sending the answer
    reply = await live.ask(user, "how much is the pain course?")
    [(number, kind, text, details)] = rows(live, "select id, kind, text, details from enquiries")
    assert (kind, text, json.loads(details)) == (
        "fallback",
        "how much is the pain course?",
        {"bot_error": "BadRequest"},
    )
    assert reply["text"] == texts.ERROR_PASSED_ON.format(reference=f"ENQ-{number:06d}")
    post = await live.api.wait_for_message(live.staff_chat)
    assert "how much is the pain course?" in post["text"] and "bot error: BadRequest" in post["text"]
