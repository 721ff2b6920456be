"""Recognise a message that means "I want a place", however it is worded.

Many people never say "book": they ask how to pay, apply, enrol, hold or secure a place. Others
use those words while only asking about them ("what do I get once I've paid?"); those framings win.
The patterns live in intents.yaml so the academy can extend them without code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from knowledge.yamlfile import KnowledgeError, load_yaml

INTENTS_FILE = Path(__file__).with_name("intents.yaml")


@dataclass(frozen=True)
class BookingIntent:
    wants: tuple[re.Pattern[str], ...]
    only_asking: tuple[re.Pattern[str], ...]
    later: tuple[re.Pattern[str], ...]
    stop: tuple[re.Pattern[str], ...]
    agree: tuple[re.Pattern[str], ...]

    @classmethod
    def load(cls, path: Path = INTENTS_FILE) -> BookingIntent:
        data = load_yaml(path)
        try:
            booking = data["booking"]
            fill = {
                "desire": _alternatives(booking["desire"]),
                "action": _alternatives(booking["action"]),
            }
            wants = tuple(_compile(_fill(p, fill), path) for p in booking["wants"])
            only_asking = tuple(_compile(p, path) for p in booking["only_asking"])
            later = tuple(_compile(p, path) for p in booking["later"])
            stop = tuple(_compile(p, path) for p in booking["stop"])
            agree = tuple(_compile(p, path) for p in booking["agree"])
        except (KeyError, TypeError) as exc:
            raise KnowledgeError(
                f"{path}: booking needs desire, action, wants, only_asking, later, stop, agree ({exc})"
            ) from None
        return cls(wants, only_asking, later, stop, agree)

    def wants_to_book(self, text: str) -> bool:
        folded = _fold(text)
        if any(p.search(folded) for p in self.only_asking) or self.puts_off(text):
            return False
        return any(p.search(folded) for p in self.wants)

    def puts_off(self, text: str) -> bool:
        """Whether a message puts booking off ("ok I'll book later")."""
        return any(p.search(_fold(text)) for p in self.later)

    def wants_to_stop(self, text: str) -> bool:
        """Mid-booking, whether a message means to stop it ("never mind", "cancel")."""
        return any(p.search(_fold(text)) for p in self.stop)

    def agrees(self, text: str) -> bool:
        """Mid-booking, whether a message says yes to what was just asked ("ok send it")."""
        return any(p.search(_fold(text)) for p in self.agree)


def _fold(text: str) -> str:
    return text.casefold().replace("\u2019", "'")


def _alternatives(text: str) -> str:
    """A folded YAML list of alternatives as one: the spaces line folding leaves around its
    top-level "|" go; those inside a group ("get (?:a |one )?place") stay."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        escaped = i > 0 and text[i - 1] == "\\"
        if char == "(" and not escaped:
            depth += 1
        elif char == ")" and not escaped:
            depth -= 1
        elif char == "|" and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return "|".join(part.strip() for part in parts if part.strip())


def _compile(pattern: str, path: Path) -> re.Pattern[str]:
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise KnowledgeError(f"{path}: bad pattern {pattern!r}: {exc}") from None


def _fill(pattern: str, fill: dict[str, str]) -> str:
    """Put the shared lists in; plain replace, because regex braces like {0,40} are not fields."""
    for name, value in fill.items():
        pattern = pattern.replace("{" + name + "}", value)
    return pattern
