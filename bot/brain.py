"""The one road every message takes: safety first, then booking intent, then the FAQ.

The Telegram handlers, the terminal chat and `python -m bot ask` all call `Brain.reply`, so what
the CLI reports is what users get. The brain does no I/O and knows nothing of Telegram; recording
enquiries is the caller's job, because the CLI must not write to the log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from bot import texts
from bot.replies import Choice, Kind, Reply
from knowledge.intents import BookingIntent
from knowledge.language import Language
from knowledge.loader import load_knowledge
from knowledge.matcher import Matcher, Outcome, asks, only_tells, refuse_clashes, split_questions
from knowledge.model import Entry, Knowledge
from knowledge.safety import SafetyGate
from knowledge.yamlfile import KnowledgeError

MAX_MATCH_CHARS = 1000  # matching reads the start of a long message; the safety gate reads it all
_ABOUT_BOT = re.compile(
    r"\b(?:who|what) (?:are|r) (?:you|u)\b|\bare (?:you|u) (?:a |an )?(?:bot|robot|human|real|person|ai)\b",
    re.IGNORECASE,
)
# fmt: off
_THANKS = {
    "thanks", "thank", "thx", "ty", "cheers", "ta", "thankyou", "appreciated", "appreciate",
    "grazie", "merci", "danke", "gracias", "obrigado", "obrigada", "dziekuje", "spasibo",
}
# Words that only say an answer landed ("great 👍", "ok cool", "perfect, got it"): no question.
_GLAD = {
    "great", "perfect", "brilliant", "cool", "amazing", "awesome", "nice", "fab", "fabulous",
    "fantastic", "lovely", "ok", "okay", "k", "kk", "noted", "gotcha", "super", "excellent",
    "wonderful", "sweet", "ace", "good", "sound", "sounds", "got", "understood", "helpful", "clear",
    "fine", "right", "alright",
}
_BYE = {"bye", "goodbye", "byee", "cya", "ciao", "goodnight", "night", "see", "ya", "later", "speak", "talk"}
_ALONGSIDE = {"much", "many", "very", "lot", "loads", "no"}  # "thanks so much", "no thanks": never alone
# fmt: on
_GLAD_SIGNS = re.compile("[\U0001f44d\U0001f44c\U0001f64f]")  # 👍 👌 🙏 (a smile alone asks what to ask)
# A correction of the question before: "I meant of NSAIDs, not meso", "the treatment I mean".
_MEANT_FIRST = re.compile(
    r"^\W*(?:(?:no|sorry|oh)\b[\s,.!]*)*i?\s*(?:meant|mean)\b[\s,:]*(?P<what>.*)$", re.I
)
_MEANT_AFTER = re.compile(r"^(?P<what>.+?)(?<!what)[\s,]+i\s+(?:meant|mean)\b", re.I)
CORRECTION_WORDS = 6  # a correction names what was meant in a few words; more is a new question
_NOT_THAT = re.compile(r"[\s,;]*\b(?:not|rather than|instead of)\b.*$", re.I)


@dataclass(frozen=True)
class Before:
    """What came just before a message in the same chat: a follow-up leans on it ("and for
    members?" after the price; "it's spreading now" after "bit swollen since my meso")."""

    message: str = ""  # the person's previous message, unless it was routed as urgent
    topic: str | None = None  # the FAQ entry answered last

    def then(self, message: str, reply: Reply) -> Before:
        """What comes before the next message, once `message` got `reply`: after urgent advice,
        nothing (a message routed already must not route what follows it again)."""
        if reply.kind is Kind.URGENT:
            return Before()
        return Before(message, reply.topic or self.topic)


@dataclass(frozen=True)
class Brain:
    knowledge: Knowledge
    matcher: Matcher
    safety: SafetyGate
    booking: BookingIntent

    @classmethod
    def load(cls, directory: Path | None = None) -> Brain:
        """Load and validate all curated data; any problem raises KnowledgeError."""
        knowledge = load_knowledge(directory)
        language = Language.load(directory / "language.yaml") if directory else Language.load()
        safety = SafetyGate.load(directory / "red_flags.yaml") if directory else SafetyGate.load()
        booking = BookingIntent.load(directory / "intents.yaml") if directory else BookingIntent.load()
        known = {entry.id for entry in knowledge.entries}
        for entry_id in safety.signs_for:
            if entry_id not in known:
                raise KnowledgeError(f"red_flags.yaml: seek_help_signs: entries: no FAQ entry {entry_id!r}")
        refuse_clashes(knowledge.entries + knowledge.gaps, language)
        matcher = Matcher(knowledge.entries + knowledge.gaps, language)
        return cls(knowledge, matcher, safety, booking)

    def reply(self, text: str, before: Before | None = None) -> Reply:
        """Decide what to say to one message, read after what came `before` it in the chat."""
        question = text.strip()
        before = before or Before()
        finding = self.safety.check(question) or self.safety.check_follow_up(before.message, question)
        if finding is not None:
            text = f"{finding.advice}\n{texts.PASSED_ON}"
            return Reply(question, Kind.URGENT, text, red_flags=finding.flags, for_staff=True)
        advice = self.safety.advice_request(question)
        if advice is not None:
            return Reply(question, Kind.FALLBACK, f"{advice}\n{texts.PASSED_ON}", for_staff=True)
        if self.booking.wants_to_book(question[:MAX_MATCH_CHARS]):
            return self.watchful(self.book(question), before)
        if _ABOUT_BOT.search(question) or self.glad(question):
            return self.small_talk(question)
        if self.booking.puts_off(question) and not asks(question):
            return Reply(question, Kind.FALLBACK, texts.BOOK_LATER)
        if self.told_of_treatment(question):
            return self.offer_aftercare(question)
        topic, asked = self.topic(before), question[:MAX_MATCH_CHARS]
        outcome = self.matcher.follow_up(asked, topic) if topic else self.matcher.match(asked)
        restated = _restated(question, before.message)
        if restated:  # a correction is read as the question it corrects, when that settles it
            again = self.matcher.match(restated[:MAX_MATCH_CHARS])
            if again.kind == "answer" or (again.kind == "gap" and outcome.kind != "answer"):
                outcome = again
        # Only a message that matched nothing can be small talk: fold its words again just then.
        # Just after a reply, "why?" or "which one?" asks about it: a question for staff.
        if outcome.kind == "none" and not self.matcher.terms(asked) and not (before.message and asks(asked)):
            return self.small_talk(question)
        reply = self.answer(outcome, question)
        if outcome.kind == "none" and topic:  # "why?" just after an answer: what lies near it may help
            reply = replace(reply, related=self.related([topic]))
        return _offering(self.watchful(reply, before))

    def topic(self, before: Before) -> Entry | None:
        """The entry answered just before, if it is still in the FAQ (it may have changed since)."""
        try:
            return self.knowledge.entry(before.topic) if before.topic else None
        except KeyError:
            return None

    def watchful(self, reply: Reply, before: Before) -> Reply:
        """A message telling how someone is after a treatment, in words no red flag names, gets
        its reply with the warning signs after it: what to look out for, and where to go. Just
        after a message telling of a treatment had, or an answer about after-effects, "still
        itchy" is about the treatment too."""
        signs = self.safety.seek_help_signs
        # No complaint, or a course question: about no treatment, whatever came before.
        if signs in reply.text or not self.safety.after_treatment(reply.question, treated=True):
            return reply
        told = self.safety.after_treatment(reply.question)  # read while the gate has it parsed
        treated = (
            before.topic in self.safety.signs_for
            or self.safety.after_treatment(before.message)
            or self.safety.tells_of_treatment(before.message)
        )
        if not treated and not told:
            return reply
        if (
            treated
            and reply.kind is Kind.ANSWER
            and all(self.knowledge.entry(e).audience == "delegate" for e in reply.entry_ids)
        ):  # a course fact is no answer to "a small bump", just after the aftercare answer
            reply = Reply(reply.question, Kind.FALLBACK, texts.FALLBACK, score=reply.score, for_staff=True)
        return replace(reply, text=f"{reply.text}\n\n{signs}")

    def book(self, question: str) -> Reply:
        """The booking hand-off starts; a question asked alongside is answered first."""
        asked = [p for p in split_questions(question[:MAX_MATCH_CHARS]) if not self.booking.wants_to_book(p)]
        outcome = self.matcher.match(". ".join(asked)) if asked else Outcome("none")
        entries = [m.entry for m in outcome.matches] if outcome.kind == "answer" else []
        text = texts.BOOKING_START
        if entries:
            text = f"{self.render(entries)}\n\n{text}"
        return Reply(
            question,
            Kind.BOOKING,
            text,
            entry_ids=tuple(e.id for e in entries),
            score=outcome.score if entries else 1.0,
        )

    def told_of_treatment(self, question: str) -> bool:
        """A message only telling of a treatment had ("just had meso on my tummy 🙂"), asking
        nothing and telling of nothing wrong: matched as a question, its words picked an answer
        at random ("tummy" found the stomach troubles NSAIDs cause)."""
        return (  # cheapest first: most messages ask
            not asks(question)
            and self.safety.tells_of_treatment(question)
            and not self.safety.after_treatment(question)
            and only_tells(question[:MAX_MATCH_CHARS])
        )

    def offer_aftercare(self, question: str) -> Reply:
        """What someone just treated may want next: aftercare, what is normal, and what is not."""
        related = tuple(Choice(e, self.knowledge.entry(e).question) for e in self.safety.signs_for)
        return Reply(question, Kind.FALLBACK, texts.TOLD_OF_TREATMENT, related=related)

    def glad(self, question: str) -> bool:
        """Whether a message only thanks, says an answer landed, or says goodbye ("perfect, got it
        👍", "thanks so much", "ok bye"): matched as a question, "so much" asked a price."""
        if asks(question):
            return False
        words = set(self.matcher.language.raw_words(question))
        said = words & (_THANKS | _GLAD | _BYE)
        if not said and (words or not _GLAD_SIGNS.search(question)):
            return False
        return words <= said | _ALONGSIDE | self.matcher.language.stopwords

    def small_talk(self, question: str) -> Reply:
        """A message with no question in it ("hi", "thanks", "👍"): nothing for staff to follow up."""
        words = set(self.matcher.language.raw_words(question))
        replies = ((_BYE, texts.BYE), (_THANKS, texts.THANKS), (_GLAD, texts.GLAD))
        text = next((reply for said, reply in replies if words & said), texts.NO_QUESTION)
        if not words and _GLAD_SIGNS.search(question):
            text = texts.GLAD
        if _ABOUT_BOT.search(question):
            text = texts.ABOUT_BOT
        return Reply(question, Kind.FALLBACK, text)

    def answer(self, outcome: Outcome, question: str) -> Reply:
        """Render a matcher outcome as a reply."""
        if outcome.kind == "answer":
            entries = [m.entry for m in outcome.matches]
            return Reply(
                question,
                Kind.ANSWER,
                self.render(entries),
                entry_ids=tuple(e.id for e in entries),
                score=outcome.score,
                related=self.related(entries),
            )
        if outcome.kind == "suggest":
            return Reply(
                question,
                Kind.SUGGEST,
                texts.DID_YOU_MEAN,
                score=outcome.score,
                suggestions=tuple(Choice(m.entry.id, m.entry.question) for m in outcome.matches),
            )
        if outcome.kind == "gap":
            # What the documents do say nearby is offered too: "is it a weekend course?" gets no
            # date, but the course's length is one tap away.
            gap, *nearby = outcome.matches
            text = texts.GAP.format(topic=gap.entry.topic)
            related = tuple(Choice(m.entry.id, m.entry.question) for m in nearby)
            return Reply(question, Kind.FALLBACK, text, score=outcome.score, related=related, for_staff=True)
        return Reply(question, Kind.FALLBACK, texts.FALLBACK, score=outcome.score, for_staff=True)

    def answer_entries(self, entry_ids: list[str] | tuple[str, ...]) -> Reply:
        """Answer known entries (a button press, or the question asked alongside a booking)."""
        entries = [self.knowledge.entry(entry_id) for entry_id in entry_ids]
        return Reply(
            entries[0].question,
            Kind.ANSWER,
            self.render(entries),
            entry_ids=tuple(entry_ids),
            score=1.0,
            related=self.related(entries),
        )

    def render(self, entries: list[Entry]) -> str:
        """Answers as the user sees them; several are titled by the question they answer."""
        titled = len(entries) > 1
        parts = [f"▸ {e.question}\n{e.answer}" if titled else e.answer for e in entries]
        if any(e.id in self.safety.signs_for for e in entries):
            parts.append(self.safety.seek_help_signs)
        if any(e.audience == "patient" for e in entries):
            parts.append(self.safety.patient_note)
        return "\n\n".join(parts)

    def related(self, entries: list[Entry]) -> tuple[Choice, ...]:
        shown = {e.id for e in entries}
        choices: list[Choice] = []
        for entry in entries:
            for related_id in entry.related:
                if related_id not in shown:
                    shown.add(related_id)
                    choices.append(Choice(related_id, self.knowledge.entry(related_id).question))
        return tuple(choices[:3])


def _restated(question: str, before: str) -> str | None:
    """The question before, as a correction restates it: "what are the side effects?" then "I
    meant of NSAIDs, not meso" asks "what are the side effects of NSAIDs"."""
    found = _MEANT_FIRST.match(question) or _MEANT_AFTER.match(question)
    what = _NOT_THAT.sub("", found.group("what")).strip(" ,.?!") if found and before.strip() else ""
    if not what or len(what.split()) > CORRECTION_WORDS:
        return None
    return f"{before.strip().rstrip('?!. ')} {what}"


def _offering(reply: Reply) -> Reply:
    """An honest "I don't know" that offers nearby answers says so last, just above their buttons."""
    if reply.kind is not Kind.FALLBACK or not reply.related:
        return reply
    return replace(reply, text=f"{reply.text}\n\n{texts.MAY_HELP}")
