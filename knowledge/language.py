"""Fold a message into the words that carry its meaning, the same way for questions and the FAQ.

rapidfuzz normalises nothing by default, and people write "hrs", "anaesthetic", "£££", "up to date"
and "hi, quick question..." around the few words that matter. Folding happens once per FAQ phrasing
at load and once per message, so matching compares meaning rather than spelling: set phrases first
("money back" -> refund), then one word at a time (spellings, abbreviations, synonyms), then stop
words are dropped and what is left is lightly stemmed.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from knowledge.yamlfile import KnowledgeError, load_yaml

LANGUAGE_FILE = Path(__file__).with_name("language.yaml")
_WORD = re.compile(r"£|[a-z0-9]+(?:[.'][a-z0-9]+)*")
# An email or web address names no topic: "ada@example.com" is not a question about an example.
ADDRESS = re.compile(r"\S+@\S+|\bhttps?://\S+|\bwww\.\S+", re.I)
_SECTIONS = ("spellings", "abbreviations", "acronyms", "phrases", "synonyms", "focus", "stopwords", "keep")
_STRETCHED = re.compile(r"([a-z])\1{2,}")  # a letter typed three or more times
LONGEST_PHRASE = 4  # words in the longest set phrase


@functools.lru_cache(maxsize=8192)
def stem(word: str) -> str:
    """A deliberately light stemmer: plurals and common verb endings, nothing clever. Remembered:
    every message asks for the same few hundred words."""
    if len(word) <= 3 or not word.isalpha():
        return word
    for suffix, replacement, min_len in (
        ("ies", "y", 5),
        ("ing", "", 6),
        ("ed", "", 5),
        ("es", "", 6),
        ("s", "", 4),
    ):
        if word.endswith(suffix) and len(word) >= min_len:
            if suffix == "s" and word.endswith(("ss", "us", "is")):
                return word
            if suffix == "es" and not word.endswith(("ches", "shes", "sses", "xes")):
                continue
            return word[: -len(suffix)] + replacement
    return word


@dataclass(frozen=True)
class Language:
    """Phrase, spelling, abbreviation and synonym folding; the words to ignore; the words that name
    what a question asks for."""

    rewrites: dict[str, tuple[str, ...]]
    stopwords: frozenset[str]
    phrases: dict[tuple[str, ...], tuple[str, ...]]
    focus: frozenset[str]  # stemmed terms naming what is asked for: price, location, duration...
    acronyms: dict[str, str]  # as typed, in capitals: "IM" is intramuscular, "im" is I'm

    @functools.cached_property
    def _acronym(self) -> re.Pattern[str] | None:
        if not self.acronyms:
            return None
        return re.compile(r"\b(?:" + "|".join(map(re.escape, self.acronyms)) + r")\b")

    @functools.cached_property
    def _phrases_by_start(self) -> dict[str, list[tuple[tuple[str, ...], tuple[str, ...]]]]:
        """Phrases by their first word, longest first."""
        starts: dict[str, list[tuple[tuple[str, ...], tuple[str, ...]]]] = {}
        for phrase, meaning in sorted(self.phrases.items(), key=lambda item: -len(item[0])):
            starts.setdefault(phrase[0], []).append((phrase, meaning))
        return starts

    @classmethod
    def load(cls, path: Path = LANGUAGE_FILE) -> Language:
        data = load_yaml(path)
        if not isinstance(data, dict) or set(data) != set(_SECTIONS):
            raise KnowledgeError(f"{path}: expected exactly the sections {', '.join(_SECTIONS)}")
        rewrites: dict[str, tuple[str, ...]] = {}
        for section in ("spellings", "abbreviations"):
            for word, replacement in data[section].items():
                rewrites[_text(path, section, word)] = tuple(_text(path, section, replacement).split())
        for canonical, words in data["synonyms"].items():
            for word in _list(path, f"synonyms of {canonical}", words):
                if word in rewrites:
                    raise KnowledgeError(f"{path}: {word!r} is folded twice (synonyms of {canonical})")
                rewrites[word] = (_text(path, "synonyms", canonical),)
        for word, targets in rewrites.items():  # a spelling fix may land on a synonym: follow it
            rewrites[word] = tuple(t for target in targets for t in rewrites.get(target, (target,)))
        phrases = {
            tuple(_text(path, "phrases", phrase).split()): tuple(_text(path, "phrases", meaning).split())
            for phrase, meaning in data["phrases"].items()
        }
        for phrase in phrases:
            if not 2 <= len(phrase) <= LONGEST_PHRASE:
                words = " ".join(phrase)
                raise KnowledgeError(f"{path}: phrases: {words!r} is not 2 to {LONGEST_PHRASE} words")
        keep = set(_list(path, "keep", data["keep"]))
        stopwords = frozenset(_list(path, "stopwords", data["stopwords"])) - keep
        if not isinstance(data["acronyms"], dict):
            raise KnowledgeError(f"{path}: acronyms: expected ACRONYM: meaning pairs")
        acronyms = {}
        for acronym, meaning in data["acronyms"].items():
            acronym = _text(path, "acronyms", acronym)
            if not acronym.isupper():
                raise KnowledgeError(f"{path}: acronyms: {acronym!r} is not in capitals")
            acronyms[acronym] = _text(path, "acronyms", meaning)
        language = cls(rewrites, stopwords, phrases, frozenset(), acronyms)
        focus = frozenset(t for word in _list(path, "focus", data["focus"]) for t in language.terms(word))
        return cls(rewrites, stopwords, phrases, focus, acronyms)

    def raw_words(self, text: str) -> list[str]:
        """The words as typed, casefolded, apostrophes dropped ("what's" -> "whats"), numbers without
        leading zeros ("09:00" -> "9", "00" -> "0"), email and web addresses left out. Acronyms
        first, unless the whole message is in capitals (then "IM" is I'm shouted)."""
        text = unicodedata.normalize("NFKC", text)
        if self._acronym is not None and any(c.islower() for c in text):
            text = self._acronym.sub(lambda found: self.acronyms[found.group(0)], text)
        text = ADDRESS.sub(" ", text)
        folded = _STRETCHED.sub(r"\1", text.casefold().replace("\u2019", "'"))  # "sooo" -> "so"
        return [_number(raw.replace("'", "")) for raw in _WORD.findall(folded)]

    def join_phrases(self, raw: Sequence[str]) -> list[str]:
        """Set phrases replaced by what they mean, longest first: "up to date" -> "current"."""
        out: list[str] = []
        i = 0
        while i < len(raw):
            for phrase, meaning in self._phrases_by_start.get(raw[i], ()):
                if tuple(raw[i : i + len(phrase)]) == phrase:
                    out.extend(meaning)
                    i += len(phrase)
                    break
            else:
                out.append(raw[i])
                i += 1
        return out

    def fold(self, raw: str) -> tuple[str, ...]:
        """One typed word as the word(s) the FAQ uses for it."""
        return self.rewrites.get(raw) or self.rewrites.get(stem(raw)) or (raw,)

    def words(self, text: str) -> list[str]:
        """Every word, folded, in order: used where grammar words matter (splitting, intent)."""
        return [word for raw in self.join_phrases(self.raw_words(text)) for word in self.fold(raw)]

    def terms(self, text: str) -> list[str]:
        """The meaningful words of a text: folded, stop words dropped, lightly stemmed."""
        return [stem(word) for word in self.words(text) if word not in self.stopwords]


def _number(word: str) -> str:
    return (word.lstrip("0") or "0") if word.isdigit() else word


def _text(path: Path, section: str, value: Any) -> str:
    """A word from the file; YAML reads bare on/off/yes/no as booleans, which must be quoted."""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise KnowledgeError(f"{path}: {section}: {value!r} is not a word (quote on, off, yes, no)")
    return str(value)


def _list(path: Path, section: str, values: Any) -> list[str]:
    if not isinstance(values, list):
        raise KnowledgeError(f"{path}: {section}: expected a list")
    return [_text(path, section, value) for value in values]
