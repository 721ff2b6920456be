"""The curated knowledge as typed, immutable objects: what the loader builds and the matcher reads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Audience = Literal["delegate", "patient", "both"]
AUDIENCES: tuple[str, ...] = ("delegate", "patient", "both")


@dataclass(frozen=True)
class Source:
    """One of the academy's documents; every entry names the one its facts come from."""

    id: str
    title: str
    file: str


@dataclass(frozen=True)
class Entry:
    """One FAQ entry. `answer` is rendered: organisation facts are already filled in."""

    id: str
    audience: Audience
    question: str
    phrasings: tuple[str, ...]
    answer: str
    source: str
    related: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True)
class Gap:
    """Something people ask that the documents do not answer. It is matched like an entry, so the
    bot says plainly that it does not know rather than answering a near neighbour."""

    id: str
    topic: str
    question: str
    phrasings: tuple[str, ...]
    keywords: tuple[str, ...] = ()
    # About the sender's own health or body ("my husband has diabetes, can he have it?"): its
    # keywords make a question about it even in what the sender tells about themselves.
    personal: bool = False


@dataclass(frozen=True)
class Course:
    """A course people can book, with the key facts /courses lists."""

    id: str
    name: str
    summary: str
    facts: tuple[tuple[str, str], ...]
    source: str
    entry_id: str
    after_booking: str = ""  # what happens once a place is booked, where the source says


@dataclass(frozen=True)
class Knowledge:
    facts: Mapping[str, str]
    sources: Mapping[str, Source]
    entries: tuple[Entry, ...]
    courses: tuple[Course, ...]
    gaps: tuple[Gap, ...] = ()

    def entry(self, entry_id: str) -> Entry:
        for entry in self.entries:
            if entry.id == entry_id:
                return entry
        raise KeyError(entry_id)
