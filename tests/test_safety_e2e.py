"""A patient describing a possible complication is routed to care at once, and staff are alerted."""

from __future__ import annotations

import json
import sqlite3

from bot import texts
from tests.conftest import LiveBot


async def test_an_urgent_message_gets_urgent_advice_and_alerts_staff(live: LiveBot) -> None:
    patient = live.api.add_user("Pat", username="pat")
    message = "had meso on my face yesterday and now my lips are swelling and i cant breathe properly"
    reply = await live.ask(patient, message)
    assert reply["text"].startswith("This could be a medical emergency. Please call 999 now")
    assert reply["text"].endswith(texts.PASSED_ON)
    with sqlite3.connect(live.db_path) as db:
        [(kind, text, details)] = db.execute("select kind, text, details from enquiries").fetchall()
    assert (kind, text) == ("urgent", message)
    assert json.loads(details)["red_flags"]
    alert = await live.api.wait_for_message(live.staff_chat)
    assert alert["text"].startswith("🚨 URGENT") and message in alert["text"] and "@pat" in alert["text"]
    live.api.assert_no_errors()


async def test_an_infection_sign_gets_same_day_advice_not_an_faq_answer(live: LiveBot) -> None:
    patient = live.api.add_user("Quin")
    reply = await live.ask(patient, "the redness is spreading and its hot and there's some pus")
    assert "NHS 111" in reply["text"] and "999" in reply["text"]
    assert "URGENT" in (await live.api.wait_for_message(live.staff_chat))["text"]


async def test_expected_mild_effects_get_aftercare_with_the_signs_to_watch_for(live: LiveBot) -> None:
    patient = live.api.add_user("Rae")
    reply = await live.ask(patient, "a bit red and puffy tonight after my treatment, is that normal?")
    assert "999" not in reply["text"].split("Seek help now")[0]  # not an alarm...
    assert "Seek help now if you notice" in reply["text"]  # ...but always the signs that mean help
    assert reply["text"].endswith(live.app.bot_data["services"].brain.safety.patient_note)
    with sqlite3.connect(live.db_path) as db:
        assert db.execute("select count(*) from enquiries").fetchone() == (0,)


async def test_a_complication_told_across_two_messages_is_routed(live: LiveBot) -> None:
    """The second message alone names no treatment ("got them on my arms today"); the first did."""
    patient, other = live.api.add_user("Sol"), live.api.add_user("Tam")
    first, then = (
        "does meso ever cause hives? i had face done monday",
        "got them on my arms and legs today, itchy",
    )
    await live.ask(patient, first)
    await live.api.wait_for_message(live.staff_chat)  # an unanswered question, for staff
    reply = await live.ask(patient, then)
    assert reply["text"].startswith("This could be a medical emergency. Please call 999 now")
    alert = (await live.api.wait_for_message(live.staff_chat))["text"]
    assert "URGENT" in alert and f"said before: {first}" in alert  # what it refers to, for staff
    reply = await live.ask(other, then)  # someone else, with nothing said before
    assert "999 now" not in reply["text"]
    # After the alarm, the thread starts afresh: "thanks" is not routed again.
    assert "999" not in (await live.ask(patient, "thanks, calling them now"))["text"]
    live.api.assert_no_errors()


async def test_a_patient_asking_for_a_dose_is_told_a_practitioner_must_advise(live: LiveBot) -> None:
    patient = live.api.add_user("Sol")
    reply = await live.ask(patient, "how much ibuprofen can I take after my mesotherapy?")
    assert "can't diagnose or recommend medicines or doses" in reply["text"]
    assert "mg" not in reply["text"]
    post = await live.api.wait_for_message(live.staff_chat)
    assert "ibuprofen" in post["text"]


async def test_a_complaint_no_red_flag_names_still_gets_the_warning_signs(live: LiveBot) -> None:
    patient = live.api.add_user("Tam")
    reply = await live.ask(patient, "Still got the lumps from my session on the 2nd, it's now the 20th")
    assert not reply["text"].startswith("This could be a medical emergency")  # not read as an alarm...
    assert "Seek help now if you notice" in reply["text"]  # ...but told what would need help, and where
    assert reply["reply_markup"]["inline_keyboard"]  # the "did you mean" choices are still offered
    live.api.assert_no_errors()


async def test_urgent_advice_the_bot_fails_to_send_is_sent_again(live: LiveBot) -> None:
    patient = live.api.add_user("Uma")
    live.refuse_next_reply(patient)
    reply = await live.ask(
        patient, "my lips are swelling up since the injections and i cant breathe properly"
    )
    assert reply["text"].startswith("This could be a medical emergency. Please call 999 now")
    assert reply["text"].endswith(texts.PASSED_ON)
    with sqlite3.connect(live.db_path) as db:
        assert [kind for (kind,) in db.execute("select kind from enquiries")] == ["urgent"]  # filed once
    assert (await live.api.wait_for_message(live.staff_chat))["text"].startswith("🚨 URGENT")
