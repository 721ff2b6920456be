"""The FAQ matcher as users meet it, through Brain.reply: the labelled evaluation set, then focused
behaviours with literal inputs (typos, spellings, one-word questions, preambles, two questions in
one, sibling entries, and questions the documents do not answer)."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from benchmarks.evaluate import Scores, load_eval, score, split
from bot import texts
from bot.brain import Brain
from bot.replies import Reply
from knowledge.language import LANGUAGE_FILE, Language
from knowledge.matcher import split_questions
from knowledge.yamlfile import KnowledgeError

# The brief's targets, top-1 >= 90% and false answers <= 3%, are asserted on the whole set. Its first
# three batches met them early (91.8%, 1.2%); batches 4 and 5, in styles the first lacked
# (voice-note transcripts, non-native English, questions buried in a story or asked for someone
# else), scored 46.8% and 70.2% top-1 on their own before any tuning on them, and batch 6, written
# in the mix a real bot sees, 82.5% / 5.6%. The whole set now reaches 90.6% / 2.6%
# (benchmarks/RESULTS.md has the figures per half).
TOP1_FLOOR = 0.90  # answered with exactly the expected entries
FALSE_ANSWER_LIMIT = 0.03  # confident answers to questions the documents do not cover
SUGGEST_RECALL_FLOOR = 0.94  # the right entry answered or offered as "did you mean" (aim: 95%)


@pytest.fixture(scope="module")
def brain() -> Brain:
    return Brain.load()


@pytest.fixture(scope="module")
def scores(brain: Brain) -> Scores:
    def decide(question: str) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
        reply = brain.reply(question)
        return reply.kind.value, reply.entry_ids, tuple(c.entry_id for c in reply.suggestions)

    return score(decide, split(load_eval(), "all"))


def _misses(scores: Scores) -> str:
    lines = [f"  {q!r}: expected {want}, got {got}" for q, want, got in scores.wrong_answers]
    lines += [f"  {q!r}: expected {want}, only suggested {got}" for q, want, got in scores.suggested_only]
    return "\n".join(lines)


# -- the evaluation set ---------------------------------------------------------------------------


def test_top1_accuracy(scores: Scores) -> None:
    assert scores.top1_rate >= TOP1_FLOOR, f"top-1 {scores.top1_rate:.1%}; misses:\n{_misses(scores)}"


def test_false_answers_to_unanswerable_questions(scores: Scores) -> None:
    false = "\n".join(f"  {q!r}: answered {got}" for q, got in scores.false_answers)
    assert scores.false_answer_rate <= FALSE_ANSWER_LIMIT, (
        f"{scores.false_answer_rate:.1%} answered confidently:\n{false}"
    )


def test_did_you_mean_recall(scores: Scores) -> None:
    wrong = "\n".join(f"  {q!r}: expected {want}, got {got}" for q, want, got in scores.wrong_answers)
    assert scores.suggest_recall >= SUGGEST_RECALL_FLOOR, f"{scores.suggest_recall:.1%}; misses:\n{wrong}"


def test_wanting_a_place_starts_the_booking_hand_off(brain: Brain) -> None:
    data = load_eval()
    missed = [q for q in data["booking"] if brain.reply(q).kind.value != "booking"]
    assert not missed, f"not taken as booking: {missed}"


def test_asking_about_booking_is_not_booking(brain: Brain) -> None:
    data = load_eval()
    booked = [q for q in data["not_booking"] if brain.reply(q).kind.value == "booking"]
    assert not booked, f"taken as booking: {booked}"


# -- focused behaviours ---------------------------------------------------------------------------


def _answered(reply: Reply) -> list[str]:
    return list(reply.entry_ids) if reply.kind.value == "answer" else []


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        # typos
        ("how mcuh is the corse", "pain-course-price"),
        ("adress?", "pain-course-location"),
        ("waht time does it strat", "pain-course-hours"),
        ("certifcate?", "pain-course-certificate"),
        ("side efects", "side-effects"),
        # UK and US spellings
        ("is there anaesthetic cream", "treatment-procedure"),
        ("is there anesthetic cream", "treatment-procedure"),
        ("can it help with facial ageing", "mesotherapy-uses"),
        ("can it help with facial aging", "mesotherapy-uses"),
        ("is the certificate recognised", "pain-course-certificate"),
        ("is the certificate recognized", "pain-course-certificate"),
        ("tell me about the Centre for Medical Sciences", "training-overview"),
        ("tell me about the Center for Medical Sciences", "training-overview"),
        # casing, punctuation, emoji
        ("HOW MUCH IS IT???", "pain-course-price"),
        ("   Where Is It?   ", "pain-course-location"),
        ("where's it held 📍", "pain-course-location"),
        # letters stretched for emphasis, and spoken fillers
        ("hmm sooo how muuuch is the masterclass pleeease", "pain-course-price"),
        ("erm idk what the aftercare is tbh", "aftercare"),
        # ...while a past course, told before the question, is only context
        ("I did a botox course last year. Is the pain masterclass hands on?", "pain-course-format"),
        # a comparison names no topic of its own; "do you numb it" is not "which numbing cream"
        ("are the results instant like fillers", "results-timing"),
        ("do u use numbing cream", "treatment-procedure"),
        # "getting my ears pierced" is told, not what the question names; gym training is not the course
        ("I hate needles, getting my ears pierced was awful. Does mesotherapy hurt?", "treatment-pain"),
        ("I go to the gym a lot. After mesotherapy do I need to take a break from training?", "aftercare"),
        ("does it hurt 😬😬", "treatment-pain"),
        # one word
        ("cost", "pain-course-price"),
        ("venue", "pain-course-location"),
        ("timings", "pain-course-hours"),
        ("aftercare", "aftercare"),
        ("bruising", "side-effects"),
        ("gauge", "technique-needle"),
        ("membership", "membership-price"),
        ("curriculum", "training-syllabus"),
        ("osteoarthritis", "pain-protocol-indications"),
        # a long preamble before the question
        (
            "Hi there! I've been looking at your website for a while and I'm a physiotherapist working in "
            "sports rehab. I was wondering how much the pain mesotherapy course costs?",
            "pain-course-price",
        ),
        (
            "hello, hope you are well. my friend recommended you and i have a quick question: where "
            "exactly is the masterclass held?",
            "pain-course-location",
        ),
        ("hi, quick question - how much is the pain course??", "pain-course-price"),
        # everyday words for clinical terms
        ("is it injected under the skin", "intradermal-vs-subcutaneous"),
        ("does it help with a bad back", "pain-protocol-indications"),
        ("is meso better than taking ibuprofen", "mesotherapy-vs-nsaids"),
        ("steroid jab vs meso", "corticosteroid-comparison"),
        ("can i go on a sunbed after meso", "aftercare"),
        ("what's actually in the jab", "mesotherapy-ingredients"),
        # chat short forms; a pronoun for the person asked about says nothing
        ("hw much 4 the pain course", "pain-course-price"),
        (
            "my dad is 78 and on loads of meds, is it risky for him to keep taking anti inflammatory pills",
            "nsaid-risks",
        ),
        # "start injecting" is no start time; "forever" is permanent; tendons
        ("do they assess you before they start injecting", "treatment-consultation"),
        ("do the results last forever?", "sessions-maintenance"),
        ("do you cover tendon problems", "pain-protocol-indications"),
        # a greeting before telling of a treatment keeps it a story; "2 hrs ago" is no course hours
        ("hi i just had meso on my face today, its a bit red", "side-effects"),
        ("just had mesotherapy 2 hrs ago what should i avoid?", "aftercare"),
        # a year of study is not how old mesotherapy is
        ("im a student nurse, 2nd year, can i come?", "training-backgrounds"),
        # Google Maps is where to go, not Google reviews
        ("whats the address, want to put it in google maps", "pain-course-location"),
        ("postcode for the satnav?", "pain-course-location"),
        # what the sender tells runs on into the question, with no comma between
        ("my mum is having hers next week what aftercare will she need", "aftercare"),
        ("i have to get my kids at half 5 so what time does the day finish", "pain-course-hours"),
        # ...where "what" after "about" asks nothing
        (
            "my wife is really careful about what goes in her body, whats actually in the mix they inject",
            "mesotherapy-ingredients",
        ),
        # a face and a body treated are not the Save Face register or an accrediting body
        ("is it only for wrinkles and ageing or can it do body stuff too", "mesotherapy-uses"),
        # a price per person is no class size
        ("is it 600 per person", "pain-course-price"),
        # a statement about the sender tells, all of it, even the part after "and can..."
        (
            "I work in a really busy office and can only slip out at lunchtime. "
            "Roughly how long would an appointment last?",
            "treatment-duration",
        ),
        # one question that merely mentions two things
        ("what is the centre for medical sciences and research?", "training-overview"),
        ("whats the difference between acute and chronic pain", "acute-vs-chronic-pain"),
    ],
)
def test_answers(brain: Brain, question: str, expected: str) -> None:
    reply = brain.reply(question)
    assert _answered(reply) == [expected], (reply.kind.value, reply.entry_ids, reply.suggestions)


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("price and where is it?", ["pain-course-price", "pain-course-location"]),
        ("how much is it and where is it held?", ["pain-course-price", "pain-course-location"]),
        ("what's the address and what time does it start?", ["pain-course-location", "pain-course-hours"]),
        ("whats the address n what time does it start", ["pain-course-location", "pain-course-hours"]),
        # a part that only points back asks about what the part before it named
        (
            "when do I get the learning pack and what's in it?",
            ["pain-course-learning-pack-delivery", "pain-course-learning-pack-contents"],
        ),
        ("does it hurt? are there any side effects?", ["treatment-pain", "side-effects"]),
        ("what needle size and how many ml per point?", ["technique-needle", "technique-volume"]),
        (
            "how many people per class, and do i get a certificate",
            ["pain-course-class-size", "pain-course-certificate"],
        ),
        # an apology before a question does not make it a story told around the question
        (
            "hi sorry if this is a silly question but do i get a certificate and whats in the learning pack",
            ["pain-course-certificate", "pain-course-learning-pack-contents"],
        ),
        # a later part asks about what the first did: the course's length, or a treatment's
        ("how much is it and how long does it last", ["pain-course-price", "pain-course-duration"]),
        ("does it hurt and how long does it last", ["treatment-pain", "treatment-duration"]),
        # ...even when the other audience's entry comes a close second: "it" is still the course
        ("price and how long is it?", ["pain-course-price", "pain-course-duration"]),
        ("where is it and what time shd i get there", ["pain-course-location", "pain-course-hours"]),
    ],
)
def test_two_questions_in_one_message_are_both_answered_in_order(
    brain: Brain, question: str, expected: list[str]
) -> None:
    reply = brain.reply(question)
    assert _answered(reply) == expected, (reply.kind.value, reply.entry_ids, reply.suggestions)
    assert all(f"▸ {brain.knowledge.entry(entry_id).question}" in reply.text for entry_id in expected)


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("what's inside the learning pack", "pain-course-learning-pack-contents"),
        ("when will the learning pack be emailed to me", "pain-course-learning-pack-delivery"),
        ("how long is the masterclass", "pain-course-duration"),
        ("how long does a meso session take", "treatment-duration"),
        ("how much is the masterclass", "pain-course-price"),
        ("how much does it cost to join somuk", "membership-price"),
        ("is the masterclass hands on or theory", "pain-course-format"),
        ("is the general training online or face to face", "training-format"),
        ("intradermal or intramuscular, which is better", "intradermal-vs-intramuscular"),
        ("how many treatments will i need", "sessions-maintenance"),
        ("when will i notice results", "results-timing"),
        # the end of the course is not a time of day; the end of the day is
        ("what time does the training day end", "pain-course-hours"),
        ("what hour start the training and what hour finish?", "pain-course-hours"),
        ("do i get a cert at the end", "pain-course-certificate"),
    ],
)
def test_siblings_are_told_apart(brain: Brain, question: str, expected: str) -> None:
    reply = brain.reply(question)
    assert _answered(reply) == [expected], (reply.kind.value, reply.entry_ids, reply.suggestions)


@pytest.mark.parametrize(
    ("question", "topic"),
    [
        ("parking?", "parking"),
        ("is there parking nearby?", "parking"),
        ("do you offer refunds if I can't make it?", "refunds"),
        ("can I get my money back?", "refunds"),
        ("dates?", "course dates"),
        ("what are the next dates?", "course dates"),
        ("how much is the general mesotherapy training?", "price of the general mesotherapy training"),
        ("how long is the general mesotherapy course", "how long the general mesotherapy training lasts"),
        ("do you do botox training?", "Botox"),
        ("how much is botox", "Botox"),
        ("how much for a session on my face", "treatment prices"),
        ("can i pay monthly", "instalments"),
        ("is the price plus vat", "VAT"),
        ("is lunch provided", "lunch"),
        ("who are the trainers", "trainers"),
        ("can you do it under ultrasound?", "ultrasound"),
        ("is Pistor alive today?", "Dr Pistor's life"),
        ("is your mesotherapy article out of date?", "last updated"),
        ("when's the next pain masterclass?", "course dates"),
        ("do i have to be member to do the course", "membership terms"),
        ("what should i wear", "what to bring or wear"),
        ("is there a deposit", "deposits"),
    ],
)
def test_questions_the_documents_do_not_answer_get_an_honest_fallback(
    brain: Brain, question: str, topic: str
) -> None:
    reply = brain.reply(question)
    assert reply.kind.value == "fallback", (reply.kind.value, reply.entry_ids)
    assert topic in reply.text


def test_an_unanswered_question_is_offered_what_the_documents_say_nearby(brain: Brain) -> None:
    reply = brain.reply("how long is the pain course? is it a weekend thing?")
    assert reply.kind.value == "fallback" and "course dates" in reply.text
    assert texts.MAY_HELP in reply.text
    offered = [choice.entry_id for choice in reply.related]
    assert "pain-course-duration" in offered
    assert not set(offered) & {gap.id for gap in brain.knowledge.gaps}
    nothing_near = brain.reply("is there parking?")
    assert nothing_near.related == () and texts.MAY_HELP not in nothing_near.text


@pytest.mark.parametrize(
    "question",
    [
        "can my dog come",
        "what's the weather",
        "does meso help acne scars",
        "is it safe",
        "tell me a joke",
        # the sender's own health, told before the question, is what the question is about
        "My husband has type 2 diabetes. Can he have mesotherapy for his back pain?",
        "I get keloid scars easily. Will the needle marks scar?",
        # someone's age is not how old mesotherapy is
        "can my 16 year old son come on the course with me",
        # example answers offered after a question are not questions of their own
        "how long do we get post-course support for? a month, a year?",
    ],
)
def test_near_misses_get_no_confident_answer(brain: Brain, question: str) -> None:
    assert brain.reply(question).kind.value != "answer"


@pytest.mark.parametrize(("typed", "kept"), [("dates", "date"), ("later", "later"), ("lectures", "theory")])
def test_typo_correction_keeps_real_words(brain: Brain, typed: str, kept: str) -> None:
    assert brain.matcher.terms(typed) in ([kept], [])
    assert "pain-course-price" not in brain.reply(f"{typed}?").entry_ids


def test_dates_is_not_read_as_rates(brain: Brain) -> None:
    assert brain.reply("dates?").kind.value == "fallback"
    assert _answered(brain.reply("rates?")) == ["pain-course-price"]


def test_an_email_or_web_address_is_no_question(brain: Brain) -> None:
    # "ada@example.com", typed at the booking's contact step, was answered as "the glucose example"
    for address in ("ada@example.com", "www.example.com", "https://example.com/pain-course"):
        assert brain.reply(address).kind.value == "fallback", address
    assert _answered(brain.reply("my email is ada@example.com, is the pack emailed?")) == [
        "pain-course-learning-pack-delivery"
    ]


@pytest.mark.parametrize("question", ["how long?", "duration?", "what's included in the price", "how much?!"])
def test_suggestions_are_few_and_never_gaps(brain: Brain, question: str) -> None:
    reply = brain.reply(question)
    gap_ids = {gap.id for gap in brain.knowledge.gaps}
    assert len(reply.suggestions) <= 3
    assert not {choice.entry_id for choice in reply.suggestions} & gap_ids


def test_a_vague_question_offers_several_candidates(brain: Brain) -> None:
    reply = brain.reply("how long?")
    assert reply.kind.value == "suggest"
    assert len(reply.suggestions) >= 2
    assert {"pain-course-duration", "treatment-duration"} <= {c.entry_id for c in reply.suggestions}


@pytest.mark.parametrize(
    ("message", "parts"),
    [
        ("price and where is it?", ["price", "where is it"]),
        (
            "I'm a physio, which conditions are the protocols for?",
            ["I'm a physio which conditions are the protocols for"],
        ),
        ("do you teach aftercare and treatment plans?", ["do you teach aftercare treatment plans"]),
        ("hi, quick question - how much is it?", ["hi", "quick question - how much is it"]),
    ],
)
def test_messages_are_split_into_questions(message: str, parts: list[str]) -> None:
    assert split_questions(message) == parts


def test_language_folds_phrases_spellings_and_chat_words() -> None:
    language = Language.load()
    assert language.terms("is the content up to date?") == ["content", "current"]
    assert language.terms("anaesthetic") == language.terms("anesthetic")
    assert language.terms("how long is it, approx 9 to 5?") == ["duration", "9", "5"]  # approx: filler
    assert language.terms("how many hrs, pls?") == ["many", "hour"]
    classed, called = language.terms("is that classed as chronic"), language.terms("is that called chronic")
    assert classed == called  # a name, not a class
    assert language.terms("does it wear off") == ["fade"]  # not money off
    assert "discount" not in language.terms("I can't take days off")
    assert "hours" not in language.terms("my skin is starting to sag")  # not a start time
    assert "duration" not in language.terms("last course I went on was huge")
    assert {"price", "location"} <= language.focus


def test_language_refuses_bare_yaml_booleans(tmp_path: Path) -> None:
    text = LANGUAGE_FILE.read_text(encoding="utf-8").replace('"off"]', "off]")
    (tmp_path / "language.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(KnowledgeError, match="quote on, off, yes, no"):
        Language.load(tmp_path / "language.yaml")


def test_the_dev_and_test_halves_partition_the_set() -> None:
    data = load_eval()
    dev, test = split(data, "dev"), split(data, "test")
    for section in ("answerable", "unanswerable"):
        assert len(dev[section]) + len(test[section]) == len(data[section])
        assert dev[section][0] == data[section][0] and test[section][0] == data[section][1]


def test_pruning_gives_exactly_the_full_ranking_on_a_large_faq(brain: Brain) -> None:
    """The first pass skips entries that cannot make the top; on a FAQ large enough for that to
    happen (common words in hundreds of entries) it must decide exactly as scoring everything."""
    from dataclasses import replace

    from knowledge.matcher import Matcher

    knowledge = brain.knowledge
    copies = [
        replace(entry, id=f"{entry.id}-{n}", phrasings=entry.phrasings[n % 3 :], keywords=())
        for n in range(12)
        for entry in knowledge.entries
    ]
    big = Matcher([*knowledge.entries, *copies, *knowledge.gaps], brain.matcher.language)

    def everything(self, query, asked, context, context_weight):
        message = self._scoring(query, asked, context, context_weight)
        return [row[1:] for row in self._best(self._coverage(message.weights, None), message)]

    data = load_eval()
    questions = [item["q"] for item in data["answerable"]] + list(data["unanswerable"])

    def decisions() -> list:
        # Copies of one entry score alike: which of them wins a tie is not a difference.
        return [
            (o.kind, [(re.sub(r"-\d+$", "", m.entry.id), round(m.score, 9)) for m in o.matches])
            for o in map(big.match, questions)
        ]

    pruned = decisions()
    original = Matcher._first_pass
    Matcher._first_pass = everything
    try:
        assert decisions() == pruned
    finally:
        Matcher._first_pass = original


def test_any_mix_of_questions_and_follow_on_fragments_gets_a_reply(brain: Brain) -> None:
    """People join questions with fragments that point back and name nothing ("what are the
    hours? is it today?"). Thousands of such mixes, built from the labelled questions, must each
    get a reply: a crash here loses the message."""
    data = load_eval()
    questions = [item["q"] for item in data["answerable"]] + list(data["unanswerable"])
    fragments = [
        "is it today",
        "and is it any good",
        "its worse today",
        "is that it",
        "and them?",
        "or this",
        "lol",
        "👍",
        "...",
        "and",
        "it is",
        "what about that",
        ", , ,",
        "is it on",
    ]
    joins = ["? ", ", ", " and ", ". ", "\n", " - ", "; "]
    rng = random.Random(7)
    for _ in range(3000):
        pieces = [
            rng.choice(questions) if rng.random() < 0.5 else rng.choice(fragments)
            for _ in range(rng.randint(2, 4))
        ]
        message = "".join(piece + rng.choice(joins) for piece in pieces)
        reply = brain.reply(message)
        assert reply.text, message
