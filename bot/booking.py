"""A booking request as staff need it, and the checks on what people type at each step.

Plain Python: the Telegram conversation (handlers/booking.py) and the tests use the same rules.
The documents hold no course dates, so the request carries the person's preferred dates as notes
and none are ever proposed.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace

MAX_NAME = 100
MAX_NOTES = 1000
BACKGROUNDS = {"medical": "Medical", "non-medical": "Non-medical"}

_EMAIL = re.compile(
    r"^[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}$"
)
_PHONE_CHARS = re.compile(r"^\+?[\d\s().-]+$")


class InvalidInput(ValueError):
    """What the person typed does not fit the step; the message says how to put it right."""


@dataclass(frozen=True)
class BookingDraft:
    """What has been collected so far; stored after every step so nothing is lost."""

    course_id: str | None = None
    course_name: str | None = None
    name: str | None = None
    contact: str | None = None
    contact_kind: str | None = None  # email | phone | telegram
    background: str | None = None
    notes: str | None = None
    consent: bool = False

    def with_(self, **changes: object) -> BookingDraft:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object] | None) -> BookingDraft:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in (data or {}).items() if k in known})

    def details(self) -> dict[str, object]:
        """What staff see and the enquiry log keeps."""
        return {
            "course": self.course_name,
            "name": self.name,
            "contact": self.contact,
            "contact_kind": self.contact_kind,
            "background": BACKGROUNDS.get(self.background or "", self.background),
            "notes": self.notes or "",
            "consent": self.consent,
        }


def clean_name(text: str) -> str:
    name = " ".join(text.split())
    if not name:
        raise InvalidInput("empty")
    if name.startswith("/") or not re.search(r"[^\W\d_]", name):
        raise InvalidInput("letters")
    if len(name) > MAX_NAME:
        raise InvalidInput("long")
    return name


def clean_contact(text: str) -> tuple[str, str]:
    """An email address or phone number, as (kind, value)."""
    value = text.strip()
    if "@" in value:
        if _EMAIL.match(value):
            return "email", value
        raise InvalidInput("email")
    digits = re.sub(r"\D", "", value)
    if value and _PHONE_CHARS.match(value) and 7 <= len(digits) <= 15:
        return "phone", " ".join(value.split())
    raise InvalidInput("contact")


def choose_course(text: str, courses: list[tuple[str, str]]) -> str | None:
    """The id of the one course whose distinctive name words the text uses ("the pain one")."""
    words = set(re.findall(r"[a-z]+", text.casefold()))
    names = {course_id: set(re.findall(r"[a-z]+", name.casefold())) for course_id, name in courses}
    matches = []
    for course_id, name_words in names.items():
        others = set().union(*(w for other, w in names.items() if other != course_id))
        if words & (name_words - others):
            matches.append(course_id)
    return matches[0] if len(matches) == 1 else None


def choose_background(text: str) -> str | None:
    """ "medical" or "non-medical" from what was typed ("I'm non medical", "Medical")."""
    words = re.findall(r"[a-z]+", text.casefold())
    if "non" in words or "nonmedical" in words:
        return "non-medical"
    if "medical" in words:
        return "medical"
    return None


_NO_NOTES = re.compile(
    r"^\W*(?:no|none|nope|nah|nothing|no notes?|n/?a|not really|nothing (?:else|to add)|all good)\W*$", re.I
)


def clean_notes(text: str) -> str:
    """The notes as typed; "no", "none" or "no notes" typed rather than tapped are no notes."""
    notes = text.strip()
    if len(notes) > MAX_NOTES:
        raise InvalidInput("long")
    return "" if _NO_NOTES.match(notes) else notes
