"""The one result type every door (Telegram, terminal chat, `ask --json`) renders."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    """What the brain decided; the values are the `ask --json` contract."""

    ANSWER = "answer"
    SUGGEST = "suggest"
    FALLBACK = "fallback"
    BOOKING = "booking"
    URGENT = "urgent"


@dataclass(frozen=True)
class Choice:
    """A question the user can pick: a "did you mean" candidate or a related follow-up."""

    entry_id: str
    question: str


@dataclass(frozen=True)
class Reply:
    """What the bot says to one message, and why."""

    question: str
    kind: Kind
    text: str
    entry_ids: tuple[str, ...] = ()
    score: float = 0.0
    suggestions: tuple[Choice, ...] = ()
    related: tuple[Choice, ...] = ()
    red_flags: tuple[str, ...] = field(default=())
    for_staff: bool = False  # an enquiry staff must see: recorded by the doors that keep a log

    @property
    def entry_id(self) -> str | None:
        return self.entry_ids[0] if self.entry_ids else None

    @property
    def topic(self) -> str | None:
        """The entry a follow-up to this reply may lean on ("and for members?"): the first answered."""
        return self.entry_ids[0] if self.kind is Kind.ANSWER and self.entry_ids else None

    def to_json(self) -> dict[str, Any]:
        """The `python -m bot ask --json` object: these six fields, exactly."""
        return {
            "question": self.question,
            "kind": self.kind.value,
            "answer": self.text,
            "entry_id": self.entry_id,
            "score": round(self.score, 3),
            "suggestions": [choice.question for choice in self.suggestions],
        }
