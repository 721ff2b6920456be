"""Fold a message into the words that carry its meaning, the same way for questions and the FAQ.

rapidfuzz normalises nothing by default, and people write "hrs", "anaesthetic", "£££" and "hi, quick
question..." around the few words that matter. Folding happens once per FAQ phrasing at load and
once per message, so matching compares meaning rather than spelling.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from knowledge.yamlfile import KnowledgeError, load_yaml

LANGUAGE_FILE = Path(__file__).with_name("language.yaml")
_WORD = re.compile(r"£|[a-z0-9]+(?:[.'][a-z0-9]+)*")
_SECTIONS = ("spellings", "abbreviations", "synonyms", "stopwords", "keep")


def stem(word: str) -> str:
    """A deliberately light stemmer: plurals and common verb endings, nothing clever."""
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
    """Spelling, abbreviation and synonym folding, and the words to ignore."""

    rewrites: dict[str, tuple[str, ...]]
    stopwords: frozenset[str]

    @classmethod
    def load(cls, path: Path = LANGUAGE_FILE) -> Language:
        data = load_yaml(path)
        if not isinstance(data, dict) or set(data) != set(_SECTIONS):
            raise KnowledgeError(f"{path}: expected exactly the sections {', '.join(_SECTIONS)}")
        rewrites: dict[str, tuple[str, ...]] = {}
        for section in ("spellings", "abbreviations"):
            for word, replacement in data[section].items():
                rewrites[str(word)] = tuple(str(replacement).split())
        for canonical, words in data["synonyms"].items():
            for word in words:
                if str(word) in rewrites:
                    raise KnowledgeError(f"{path}: {word!r} is folded twice (synonyms of {canonical})")
                rewrites[str(word)] = (str(canonical),)
        for word, targets in rewrites.items():  # a spelling fix may land on a synonym: follow it
            rewrites[word] = tuple(t for target in targets for t in rewrites.get(target, (target,)))
        keep = {str(word) for word in data["keep"]}
        stopwords = frozenset(str(word) for word in data["stopwords"]) - keep
        return cls(rewrites=rewrites, stopwords=stopwords)

    def raw_words(self, text: str) -> list[str]:
        """The words as typed, casefolded and with apostrophes dropped ("what's" -> "whats")."""
        folded = unicodedata.normalize("NFKC", text).casefold().replace("\u2019", "'")
        return [raw.replace("'", "") for raw in _WORD.findall(folded)]

    def fold(self, raw: str) -> tuple[str, ...]:
        """One typed word as the word(s) the FAQ uses for it."""
        return self.rewrites.get(raw) or self.rewrites.get(stem(raw)) or (raw,)

    def words(self, text: str) -> list[str]:
        """Every word, folded, in order: used where grammar words matter (splitting, intent)."""
        return [word for raw in self.raw_words(text) for word in self.fold(raw)]

    def terms(self, text: str) -> list[str]:
        """The meaningful words of a text: folded, stop words dropped, lightly stemmed."""
        return [stem(word) for word in self.words(text) if word not in self.stopwords]
