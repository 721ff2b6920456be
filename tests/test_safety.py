"""The patient-safety gate: the labelled set, the shipped texts, validation and robustness."""

from __future__ import annotations

import random
import re
import statistics
import time
from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest
import yaml

from bot import texts
from bot.brain import Before, Brain
from bot.replies import Kind, Reply
from knowledge.safety import DEFAULT_PATH, LEVELS, SafetyFinding, SafetyGate
from knowledge.yamlfile import KnowledgeError

EVAL_PATH = Path(__file__).parent / "data" / "safety_eval.yaml"
EVAL = yaml.safe_load(EVAL_PATH.read_text(encoding="utf-8"))
URGENT = EVAL["urgent"]
MILD = EVAL["mild"]
ADVICE = EVAL["advice"]
NOT_ADVICE = EVAL["not_advice"]
MAX_FALSE_ALARM_RATE = 1 / 20
# Batches written blind to the gate (see the file's header): what the gate routes of them (1,052
# of 1,058 now) must not fall below the floor; what it misses is listed by the test.
BLIND = yaml.safe_load((Path(__file__).parent / "data" / "safety_blind.yaml").read_text(encoding="utf-8"))
BLIND_RECALL_FLOOR = 0.99
# Two-message conversations (see the file's header), each second message read after the first as
# the bot reads it: 322 of 330 urgent ones routed now (the rest get the warning signs); batches 2
# and 3, written blind, routed 92 of 110 and 91 of 100 before the changes they prompted.
CONVERSATIONS = yaml.safe_load(
    (Path(__file__).parent / "data" / "safety_conversations.yaml").read_text(encoding="utf-8")
)
CONVERSATION_RECALL_FLOOR = 0.97

# the red flags the brief names, each of which the labelled set must exercise several ways
CORE_FLAGS = (
    "allergic_reaction",
    "infection",
    "fever_or_unwell",
    "severe_pain",
    "lasting_effects",
    "skin_colour_change",
    "vision_change",
    "numbness_weakness",
    "collapse",
    "chest_pain",
)


def _id(text: str) -> str:
    return " ".join(text.split())[:70]


@pytest.fixture(scope="module")
def gate() -> SafetyGate:
    return SafetyGate.load()


# ---- the labelled set itself


def test_labelled_set_is_big_enough_and_well_formed() -> None:
    assert len(URGENT) >= 70
    assert len(MILD) >= 50
    assert len(ADVICE) >= 15
    assert len(NOT_ADVICE) >= 10
    for item in URGENT:
        assert set(item) == {"text", "level"}, item
        assert item["level"] in LEVELS, item
    urgent_texts = [item["text"] for item in URGENT]
    everything = urgent_texts + MILD + ADVICE + NOT_ADVICE
    assert all(isinstance(text, str) and text.strip() for text in everything)
    assert len(set(everything)) == len(everything), "an item appears twice"


def test_labelled_set_covers_every_red_flag(gate: SafetyGate) -> None:
    seen: dict[str, int] = {flag.id: 0 for flag in gate.flags}
    for item in URGENT:
        finding = gate.check(item["text"])
        for flag_id in finding.flags if finding else ():
            seen[flag_id] += 1
    unused = [flag_id for flag_id, count in seen.items() if count == 0]
    assert not unused, f"no labelled urgent message raises: {unused}"
    thin = [flag_id for flag_id in CORE_FLAGS if seen.get(flag_id, 0) < 3]
    assert not thin, f"fewer than 3 labelled urgent messages raise: {thin}"


# ---- recall: every urgent message is routed, at the right level


@pytest.mark.parametrize("item", URGENT, ids=[_id(item["text"]) for item in URGENT])
def test_urgent_message_is_routed(gate: SafetyGate, item: dict[str, str]) -> None:
    finding = gate.check(item["text"])
    assert finding is not None, f"MISSED: {item['text']!r}"
    assert finding.level == item["level"], (
        f"{item['text']!r}: level {finding.level} (flags {finding.flags}), want {item['level']}"
    )


def test_recall_on_the_urgent_set_is_100_percent(gate: SafetyGate) -> None:
    missed = [item["text"] for item in URGENT if gate.check(item["text"]) is None]
    assert not missed, f"recall {1 - len(missed) / len(URGENT):.1%}; missed: {missed}"


# ---- false alarms: at most 1 in 20 expected effects / questions


def test_false_alarm_rate_on_the_mild_set(gate: SafetyGate) -> None:
    offenders = []
    for text in MILD:
        finding = gate.check(text)
        if finding is not None:
            offenders.append(f"{text!r} -> {finding.level} {finding.flags}")
    rate = len(offenders) / len(MILD)
    assert rate <= MAX_FALSE_ALARM_RATE, (
        f"false-alarm rate {rate:.1%} > {MAX_FALSE_ALARM_RATE:.0%}:\n" + "\n".join(offenders)
    )


# ---- batches written blind to the gate


def test_blind_batches_route_nearly_every_urgent_message(gate: SafetyGate) -> None:
    missed = [item["text"] for item in BLIND["urgent"] if gate.check(item["text"]) is None]
    recall = 1 - len(missed) / len(BLIND["urgent"])
    assert recall >= BLIND_RECALL_FLOOR, f"recall {recall:.1%}; missed:\n" + "\n".join(missed)


def test_every_blind_urgent_message_gets_urgent_advice_or_at_least_the_warning_signs() -> None:
    brain = Brain.load()
    unguarded = []
    for item in BLIND["urgent"]:
        reply = brain.reply(item["text"])
        if reply.kind is not Kind.URGENT and brain.safety.seek_help_signs not in reply.text:
            unguarded.append(f"{reply.kind.value}: {item['text']!r}")
    assert not unguarded, "\n".join(unguarded)


def test_blind_requests_for_medicine_or_a_diagnosis_are_referred_or_routed(gate: SafetyGate) -> None:
    unanswered = [
        item["text"]
        for item in BLIND["advice"]
        if gate.check(item["text"]) is None and gate.advice_request(item["text"]) is None
    ]
    assert not unanswered, "\n".join(unanswered)


def test_blind_batches_never_tell_an_emergency_it_can_wait(gate: SafetyGate) -> None:
    downgraded = []
    for item in BLIND["urgent"]:
        finding = gate.check(item["text"])
        if item["level"] == "emergency" and finding is not None and finding.level != "emergency":
            downgraded.append(f"{item['text']!r}: {finding.flags}")
    assert not downgraded, "\n".join(downgraded)


def test_false_alarm_rate_on_the_blind_mild_messages(gate: SafetyGate) -> None:
    offenders = [item["text"] for item in BLIND["mild"] if gate.check(item["text"]) is not None]
    rate = len(offenders) / len(BLIND["mild"])
    assert rate <= MAX_FALSE_ALARM_RATE, f"false-alarm rate {rate:.1%}:\n" + "\n".join(offenders)


# ---- conversations: a complication told across two messages


def _conversation(brain: Brain, item: dict) -> tuple[Reply, Reply]:
    """The replies to the first message and to the second, read after the first."""
    first = brain.reply(item["first"])
    return first, brain.reply(item["then"], Before().then(item["first"], first))


@pytest.fixture(scope="module")
def brain() -> Brain:
    return Brain.load()


def test_a_complication_told_across_two_messages_is_routed(brain: Brain) -> None:
    missed, unguarded, downgraded = [], [], []
    for item in CONVERSATIONS["urgent"]:
        replies = _conversation(brain, item)
        routed = [reply for reply in replies if reply.kind is Kind.URGENT]
        if not routed:
            missed.append(f"{item['first']!r} / {item['then']!r}")
            if brain.safety.seek_help_signs not in replies[1].text:
                unguarded.append(missed[-1])
        elif item["level"] == "emergency" and not any(
            reply.text.startswith(brain.safety.advice_texts["emergency"]) for reply in routed
        ):
            downgraded.append(f"{item['first']!r} / {item['then']!r}")
    recall = 1 - len(missed) / len(CONVERSATIONS["urgent"])
    assert recall >= CONVERSATION_RECALL_FLOOR, f"routed {recall:.1%}; missed:\n" + "\n".join(missed)
    assert not unguarded, "neither urgent advice nor the warning signs:\n" + "\n".join(unguarded)
    assert not downgraded, "an emergency told it can wait:\n" + "\n".join(downgraded)


def test_few_mild_second_messages_raise_an_alarm(brain: Brain) -> None:
    """A first message alarming on its own ("I literally passed out", before "...on the sofa")
    is the single-message sets' business: here, what reading the second after it adds."""
    alarmed = [
        f"{item['first']!r} / {item['then']!r}"
        for item in CONVERSATIONS["mild"]
        for first, then in [_conversation(brain, item)]
        if first.kind is not Kind.URGENT and then.kind is Kind.URGENT
    ]
    rate = len(alarmed) / len(CONVERSATIONS["mild"])
    assert rate <= MAX_FALSE_ALARM_RATE, f"false-alarm rate {rate:.1%}:\n" + "\n".join(alarmed)


def test_a_message_routed_already_does_not_route_what_follows(brain: Brain) -> None:
    urgent = "my lips are swelling up and I can't breathe properly"
    first = brain.reply(urgent)
    assert first.kind is Kind.URGENT  # the premise
    assert brain.reply("ok calling them now", Before().then(urgent, first)).kind is not Kind.URGENT
    assert brain.safety.check_follow_up(urgent, "ok calling them now, a bit sore") is None


@pytest.mark.parametrize(
    "text",
    ["Just had mesotherapy on my stomach 🙂", "had meso on my face this arvo", "just had my first session!"],
)
def test_a_treatment_told_of_with_nothing_asked_is_offered_aftercare(brain: Brain, text: str) -> None:
    """Not an answer picked by a stray word ("stomach": the stomach troubles NSAIDs cause)."""
    reply = brain.reply(text)
    assert (reply.kind, reply.entry_ids, reply.text) == (Kind.FALLBACK, (), texts.TOLD_OF_TREATMENT)
    assert [choice.entry_id for choice in reply.related] == ["aftercare", "side-effects", "treatment-pain"]


@pytest.mark.parametrize(
    "text",
    [
        "had meso today can i wash my face",
        "had meso yesterday and my face is a bit red",
        # no question word, but no story either: questions put as statements
        "ketoprofen levels after intradermal injection",
        "As a physio I'd like to know whether you cover recognising infection at injection sites",
    ],
)
def test_a_treatment_told_of_with_a_question_or_a_complaint_is_read_as_one(brain: Brain, text: str) -> None:
    assert brain.reply(text).text != texts.TOLD_OF_TREATMENT


# ---- advice requests


@pytest.mark.parametrize("text", ADVICE, ids=[_id(t) for t in ADVICE])
def test_advice_request_is_answered_by_a_practitioner_referral(gate: SafetyGate, text: str) -> None:
    reply = gate.advice_request(text)
    assert reply is not None, f"not recognised as a request for a diagnosis, drug or dose: {text!r}"
    assert reply == gate.advice_texts["advice_request"]


@pytest.mark.parametrize("text", NOT_ADVICE, ids=[_id(t) for t in NOT_ADVICE])
def test_technique_question_is_left_to_the_faq(gate: SafetyGate, text: str) -> None:
    assert gate.advice_request(text) is None, f"technique question taken as advice: {text!r}"
    assert gate.check(text) is None, f"technique question raised an alarm: {text!r}"


# ---- behaviour the brief spells out


@pytest.mark.parametrize(
    "text",
    [
        "no fever",
        "not swollen anymore",
        "the swelling went down",
        "no pus",
        "isn't hot",
        "my friend had a rash years ago",
        "last year I had a bad reaction to filler",
        "what are the signs of infection?",
        "what should I watch out for?",
        "can mesotherapy cause an allergic reaction?",
    ],
)
def test_negated_past_and_general_mentions_are_not_alarms(gate: SafetyGate, text: str) -> None:
    assert gate.check(text) is None


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("no fever but the redness is spreading and hot", "urgent"),
        ("is it normal that my lips are swelling up and I can't breathe", "emergency"),
        ("what are the signs of infection? mine is hot and oozing pus", "urgent"),
        ("not dizzy but my lips are huge", "emergency"),
        ("i dont have a temperature but my face is swelling up", "emergency"),
    ],
)
def test_a_negation_never_hides_another_red_flag(gate: SafetyGate, text: str, level: str) -> None:
    finding = gate.check(text)
    assert finding is not None and finding.level == level


# regression cases found while probing with messages outside the labelled set
@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("the pain is unbearable, will it help if i take paracetamol", "urgent"),
        ("is the pain supposed to be this severe", "urgent"),
        ("my knee pain is severe since the injections", "urgent"),
        ("not sure if its normal my lips are swelling", "emergency"),
        ("how do i know if its infected its red hot and theres pus coming out", "urgent"),
        ("can mesotherapy cause an allergic reaction? I cant breathe", "emergency"),
        ("is this covered in the training? my lips are swelling right now", "emergency"),
        ("no fever my lips are swelling", "emergency"),
        ("the swelling went down, but the redness is spreading and its hot", "urgent"),
        ("my client's lips are swelling after meso what do i do", "emergency"),
        ("my mum had a bad reaction after her meso and collapsed", "emergency"),
        ("lips swelled up but now my throat feels tight", "emergency"),
        ("there's a boil on my cheek since the meso", "urgent"),
        ("i think its anaphylaxis, my throat is closing", "emergency"),
        ("anaphylaxis after the injections, help", "emergency"),
        ("i nearly fainted after the meso injections", "emergency"),
        ("i fainted after the injections", "emergency"),
        ("anaphylaxis after the training session injections, help", "emergency"),
        ("throat closing after the demo injections at the training. please help!!", "emergency"),
        ("are the injections very painful? mine are, 2 days on", "urgent"),
        # a condition someone wants treated does not hide a complication of a treatment had
        ("my arthritis knee is agony since the injections, can you see me today?", "urgent"),
        ("my knee with arthritis is suddenly red hot and swollen, can I get an appointment?", "urgent"),
        ("my lip feels dead since the injections", "emergency"),
    ],
)
def test_edge_cases_that_must_route(gate: SafetyGate, text: str, level: str) -> None:
    finding = gate.check(text)
    assert finding is not None and finding.level == level, text


@pytest.mark.parametrize(
    "text",
    [
        "i have terrible back pain, would pain meso help",
        "is the pain awful during treatment?",
        "will my lips be swollen after lip meso",
        "can mesotherapy make my lips bigger",
        "does meso work on dark skin",
        "can meso help with pigmentation and dark patches",
        "can it help sagging skin on my face",
        "will it tighten my skin",
        "i have hay fever, can i still have treatment?",
        "im off work tomorrow can i book in",
        "do you cover anaphylaxis in the training",
        "do i need to bring an epipen to the training",
        "face was puffy yesterday but its gone down now",
        "i had a reaction to filler years ago, can i still have meso?",
        "can i go to the gym, will sweating affect it",
        "how long do I boil an egg for a runny yolk",
        "Do I need first aid or anaphylaxis training before I start, or is it included?",
        "does the course cover anaphylaxis and do I need basic life support before coming",
        "I'm a wimp, I nearly fainted getting my ears pierced. Does mesotherapy hurt?",
        "does the training cover anaphylaxis? it would really help",
        "Treatment is very painful? I am scared a little",
        "Are the injections very painful?",
        "is the treatment painful? mine was fine",
        # pain or illness that is why someone wants to be seen, or comes before any treatment
        "Tennis elbow is killing me, it's been months. Do you treat that?",
        "I've got a fever and the flu at the moment, should I move my appointment on Thursday?",
        "Feeling under the weather so I'm cancelling my Thursday appointment, haven't had any treatment yet",
        "my legs feel dead after the gym, can I still have meso tomorrow?",
        "Do you treat patients too or only train practitioners? my knee is killing me",
        "I'm a physio. Will the course teach me how to recognise vascular occlusion and skin necrosis?",
    ],
)
def test_edge_cases_that_must_not_alarm(gate: SafetyGate, text: str) -> None:
    assert gate.check(text) is None


def test_finding_carries_ids_labels_and_the_advice_for_its_level(gate: SafetyGate) -> None:
    finding = gate.check("my lips are swelling and the area is hot to touch")
    assert isinstance(finding, SafetyFinding)
    assert finding.level == "emergency"  # the most serious flag sets the level
    assert finding.flags == ("allergic_reaction", "infection")
    labels = {flag.id: flag.label for flag in gate.flags}
    assert finding.labels == tuple(labels[f] for f in finding.flags)
    assert finding.advice == gate.advice_texts["emergency"]
    with pytest.raises(FrozenInstanceError):
        finding.level = "urgent"  # type: ignore[misc]
    urgent = gate.check("theres pus coming out")
    assert urgent is not None and urgent.advice == gate.advice_texts["urgent"]


# ---- the shipped texts


def test_shipped_file_loads() -> None:
    gate = SafetyGate.load(DEFAULT_PATH)
    assert gate.flags and gate.seek_help_signs and gate.patient_note
    assert {"aftercare", "side-effects"} <= set(gate.signs_for)
    assert {flag.level for flag in gate.flags} == set(LEVELS)


def _all_texts(gate: SafetyGate) -> dict[str, str]:
    return {
        **gate.advice_texts,
        "seek_help_signs": gate.seek_help_signs,
        "patient_note": gate.patient_note,
    }


def test_emergency_advice_says_999_or_a_and_e(gate: SafetyGate) -> None:
    text = gate.advice_texts["emergency"]
    assert "999" in text and "A&E" in text


@pytest.mark.parametrize("key", ["urgent", "advice_request"])
def test_other_advice_names_111_and_999(gate: SafetyGate, key: str) -> None:
    text = gate.advice_texts[key]
    assert "999" in text and "111" in text and "111.nhs.uk" in text
    assert "practitioner who treated you" in text


@pytest.mark.parametrize("key", ["emergency", "urgent"])
def test_urgent_advice_does_not_assess(gate: SafetyGate, key: str) -> None:
    # Whether the message reached the team is said by the bot, which knows (test_safety_e2e.py).
    assert "can't assess symptoms" in gate.advice_texts[key]


def test_texts_contain_no_phone_number_but_999_and_111(gate: SafetyGate) -> None:
    for key, text in _all_texts(gate).items():
        numbers = set(re.findall(r"\d[\d ()+-]*\d|\d", text))
        assert numbers <= {"999", "111"}, f"{key}: unexpected number(s) {numbers - {'999', '111'}}"
        assert "@" not in text, f"{key}: looks like an email address"


def test_texts_never_reassure_rank_or_diagnose(gate: SafetyGate) -> None:
    forbidden = re.compile(
        r"\b(normal|fine|nothing to worry|don't worry|not serious|mild|score|severity|"
        r"probably|likely|diagnos(?:is|e)d? (?:you|as))\b",
        re.IGNORECASE,
    )
    for key in ("emergency", "urgent"):
        found = forbidden.findall(gate.advice_texts[key])
        assert not found, f"{key} text says {found}"


def test_texts_fit_one_telegram_message(gate: SafetyGate) -> None:
    for key, text in _all_texts(gate).items():
        assert 0 < len(text) <= 1000, f"{key} is {len(text)} characters"


@pytest.mark.parametrize(
    ("text", "after_treatment"),
    [
        ("Still got the lumps from my session on the 2nd, it's now the 20th", True),
        ("day 9 and the spot where she injected still looks odd", True),
        ("my mum had her meso on friday and her knee feels weird", True),
        ("does the course cover bruising after injections?", False),
        ("how much is the course?", False),
        ("my knee has hurt for months, can meso help?", False),
    ],
)
def test_a_complaint_after_treatment_is_noticed_in_any_words(
    gate: SafetyGate, text: str, after_treatment: bool
) -> None:
    assert gate.after_treatment(text) is after_treatment


def test_seek_help_signs_and_patient_note(gate: SafetyGate) -> None:
    assert gate.seek_help_signs.startswith("Seek help now if you notice")
    assert "999" in gate.seek_help_signs and "111" in gate.seek_help_signs
    note = gate.patient_note
    assert "not medical advice" in note and "practitioner" in note and "111" in note


def test_the_domain_knows_nothing_of_telegram() -> None:
    source = (Path(__file__).parents[1] / "knowledge" / "safety.py").read_text(encoding="utf-8")
    assert not re.search(r"^\s*(from|import)\s+(telegram|bot|handlers)\b", source, re.MULTILINE)


# ---- robustness and speed


@pytest.mark.parametrize(
    "text", ["", "   ", "\n\t", "😭😭😭", "👍", "🙏🏻✨", "...", "?!", "\u200b", "\x00", "½ ²"]
)
def test_empty_and_symbol_only_messages(gate: SafetyGate, text: str) -> None:
    assert gate.check(text) is None
    assert gate.advice_request(text) is None


def test_a_5000_character_message(gate: SafetyGate) -> None:
    rng = random.Random(7)
    words = "my lips are a bit red and the swelling went down but i wanted to ask about the course"
    mild = " ".join(rng.choice(words.split()) for _ in range(1200))[:5000]
    assert len(mild) == 5000
    gate.check(mild)  # must not crash (random word salad may or may not look alarming)
    gate.advice_request(mild)
    benign = ("I loved the course and the clinic was lovely. " * 120)[:5000]
    assert gate.check(benign) is None
    buried = benign[:4950] + " now my throat is closing up"
    finding = gate.check(buried)
    assert finding is not None and finding.level == "emergency"  # the gate reads all of it
    noise = "".join(chr(rng.randint(32, 0x2FFF)) for _ in range(5000))
    gate.check(noise)
    gate.advice_request(noise)
    started = time.perf_counter()
    gate.check(buried)
    assert time.perf_counter() - started < 0.5


def test_unicode_and_typing_variants(gate: SafetyGate) -> None:
    variants = (
        "CAN’T BREATHE",
        "ｃａｎ＇ｔ ｂｒｅａｔｈｅ",
        "lipsss swellingggg",
        "sweling lips n tounge",
    )
    for text in variants:
        finding = gate.check(text)
        assert finding is not None and finding.level == "emergency", text


def test_checking_is_fast(gate: SafetyGate) -> None:
    texts = [item["text"] for item in URGENT] + MILD
    for text in texts:  # warm the typo cache, as a running bot would be
        gate.check(text)
    times = []
    for text in texts:
        gate._last = None
        started = time.perf_counter()
        gate.check(text)
        times.append(time.perf_counter() - started)
    # the target is well under 0.2 ms; the bound is loose so a slow CI machine does not flake
    assert statistics.median(times) < 0.002


# ---- validation of red_flags.yaml


def _broken(tmp_path: Path, old: str, new: str) -> Path:
    text = DEFAULT_PATH.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"fixture text not found exactly once: {old!r}"
    path = tmp_path / "red_flags.yaml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


def _line_of(path: Path, fragment: str) -> int:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if fragment in line:
            return number
    raise AssertionError(f"{fragment!r} not in {path}")


def _error(path: Path) -> str:
    with pytest.raises(KnowledgeError) as caught:
        SafetyGate.load(path)
    return str(caught.value)


def test_unknown_field_is_an_error(tmp_path: Path) -> None:
    path = _broken(tmp_path, "  - id: infection\n", "  - id: infection\n    colour: red\n")
    message = _error(path)
    line = _line_of(path, "- id: infection")
    assert f"{path}:{line}: infection: unknown field 'colour'" in message


def test_missing_field_is_an_error(tmp_path: Path) -> None:
    path = _broken(tmp_path, "    label: Bleeding that won't stop\n", "")
    message = _error(path)
    assert f"{path}:{_line_of(path, '- id: bleeding')}: bleeding: missing field 'label'" in message


def test_duplicate_id_is_an_error(tmp_path: Path) -> None:
    path = _broken(tmp_path, "  - id: bleeding\n", "  - id: infection\n")
    message = _error(path)
    first = _line_of(path, "- id: infection")
    lines = path.read_text(encoding="utf-8").splitlines()
    second = next(n for n, line in enumerate(lines, 1) if n > first and "- id: infection" in line)
    assert f"{path}:{second}: infection: duplicate id (first defined at line {first})" in message


def test_empty_pattern_list_is_an_error(tmp_path: Path) -> None:
    text = DEFAULT_PATH.read_text(encoding="utf-8")
    start = text.index("  - id: bleeding\n")
    block_start = text.index("    patterns:\n", start)
    block_end = text.index("\n\n", block_start)
    path = tmp_path / "red_flags.yaml"
    path.write_text(text[:block_start] + "    patterns: []" + text[block_end:], encoding="utf-8")
    message = _error(path)
    line = _line_of(path, "- id: bleeding")
    assert f"{path}:{line}: bleeding: patterns must be a non-empty list" in message


def test_bad_regex_is_an_error(tmp_path: Path) -> None:
    path = _broken(tmp_path, '      - "re:(?:i )?cant see(?= [.,]| *$)"\n', '      - "re:cant see(("\n')
    message = _error(path)
    line = _line_of(path, "- id: vision_change")
    assert f"{path}:{line}: vision_change: bad regex 'cant see(('" in message


def test_bad_level_is_an_error(tmp_path: Path) -> None:
    path = _broken(tmp_path, "  - id: bleeding\n    level: urgent\n", "  - id: bleeding\n    level: soon\n")
    message = _error(path)
    assert f"{path}:{_line_of(path, '- id: bleeding')}: bleeding: level 'soon'" in message


def test_unknown_macro_and_unmatchable_word_are_errors(tmp_path: Path) -> None:
    path = _broken(tmp_path, "      - cellulitis\n", '      - "{NOPE} ~2 color"\n')
    message = _error(path)
    line = _line_of(path, "- id: infection")
    assert f"{path}:{line}: infection: unknown macro {{NOPE}}" in message
    assert "'color' is rewritten to 'colour'" in message


def test_bad_gap_is_an_error(tmp_path: Path) -> None:
    path = _broken(tmp_path, "      - cellulitis\n", '      - "~2 cellulitis"\n')
    assert "a gap ~2 must sit between two words" in _error(path)


def test_missing_advice_text_is_an_error(tmp_path: Path) -> None:
    text = DEFAULT_PATH.read_text(encoding="utf-8")
    start = text.index("  advice_request: |-\n")
    end = text.index("\n\n", start)
    path = tmp_path / "red_flags.yaml"
    path.write_text(text[:start] + text[end + 1 :], encoding="utf-8")
    message = _error(path)
    line = _line_of(path, "  emergency: |-")  # a mapping's line is that of its first key
    assert f"{path}:{line}: advice: missing field 'advice_request'" in message


def test_unknown_top_level_section_is_an_error(tmp_path: Path) -> None:
    path = _broken(tmp_path, "patient_note: |-\n", "extras: 1\npatient_note: |-\n")
    line = _line_of(path, "advice:")  # the file's mapping starts at its first key
    assert f"{path}:{line}: file: unknown field 'extras'" in _error(path)


def test_duplicate_yaml_key_is_an_error(tmp_path: Path) -> None:
    old = "  - id: bleeding\n    level: urgent\n"
    path = _broken(tmp_path, old, old + "    level: urgent\n")
    message = _error(path)
    assert str(path) in message and "duplicate key 'level'" in message


def test_unreadable_file_is_an_error(tmp_path: Path) -> None:
    assert "cannot read" in _error(tmp_path / "missing.yaml")
