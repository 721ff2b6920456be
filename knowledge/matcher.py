"""Match a message to FAQ entries: a confident answer, "did you mean" candidates, or nothing.

Each entry is indexed by the meaningful words of its question, phrasings and keywords, weighted by
how rare they are across entries (a word every entry shares says little). A message scores an entry
by how much of the message the entry explains and how closely it fits one phrasing; words the FAQ
has never seen count against every entry, which is what keeps "how much is botox?" from being
answered with the course price. Typos are corrected against the FAQ's own vocabulary only.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rapidfuzz import process
from rapidfuzz.distance import DamerauLevenshtein

from knowledge.language import Language, stem
from knowledge.model import Entry

# Thresholds, tuned on tests/data/faq_eval.yaml (see benchmarks/RESULTS.md for the figures).
CONFIDENT = 0.62  # at or above: answer
MARGIN = 0.06  # ...and ahead of the next entry by at least this, or it is a "did you mean"
SUGGEST = 0.34  # at or above: offer as "did you mean"
MAX_SUGGESTIONS = 3
MAX_ANSWERS = 3  # questions answered from one message
PHRASING_WEIGHT = 0.5  # the rest is how much of the message the entry's vocabulary explains
KEYWORD_BONUS = 0.08

# Where one message holds several questions: "price and where is it?"
_SPLIT = re.compile(r"[?;!\n]+|(?<!\d)[.,](?!\d)|&|\b(?:and|also|plus|as well as|then)\b", re.I)


@dataclass(frozen=True)
class Match:
    entry: Entry
    score: float


@dataclass(frozen=True)
class Outcome:
    """`answer`: matches are the entries answered, in the order asked; `suggest`: the candidates."""

    kind: Literal["answer", "suggest", "none"]
    matches: tuple[Match, ...] = ()

    @property
    def score(self) -> float:
        return self.matches[0].score if self.matches else 0.0


class Matcher:
    """An index over the FAQ, built once at start-up; matching does no I/O."""

    def __init__(self, entries: Sequence[Entry], language: Language) -> None:
        self.entries = tuple(entries)
        self.language = language
        docs: list[tuple[int, frozenset[str]]] = []
        bags: list[set[str]] = []
        self._keywords: list[list[frozenset[str]]] = []
        typed: set[str] = set()
        for index, entry in enumerate(self.entries):
            bag: set[str] = set()
            for text in (entry.question, *entry.phrasings):
                terms = frozenset(language.terms(text))
                typed.update(language.raw_words(text))
                if terms:
                    docs.append((index, terms))
                    bag |= terms
            keywords = [frozenset(language.terms(k)) for k in entry.keywords]
            self._keywords.append([k for k in keywords if k])
            for keyword in entry.keywords:
                typed.update(language.raw_words(keyword))
            bags.append(bag | set().union(*self._keywords[-1]))
        self._bags = [frozenset(bag) for bag in bags]
        df: dict[str, int] = defaultdict(int)
        for bag in self._bags:
            for term in bag:
                df[term] += 1
        n = len(self.entries)
        self._idf = {term: math.log(1 + n / count) for term, count in df.items()}
        # A word the FAQ never uses weighs like a rare one: it is probably what the question is about.
        self._unknown_idf = math.log(1 + n / 1.5)
        self._docs = docs
        self._doc_weight = [sum(self._idf[t] for t in terms) for _, terms in docs]
        self._postings: dict[str, list[int]] = defaultdict(list)
        for doc_index, (_, terms) in enumerate(docs):
            for term in terms:
                self._postings[term].append(doc_index)
        self._spellable = sorted(
            (typed | set(language.rewrites) | set(self._idf)) - language.stopwords
        )
        self._known = frozenset(self._spellable) | language.stopwords

    # -- words ----------------------------------------------------------------------------------

    def terms(self, text: str) -> list[str]:
        """The message's meaningful words, with typos corrected against the FAQ's vocabulary."""
        out: list[str] = []
        for raw in self.language.raw_words(text):
            if raw not in self._known and stem(raw) not in self._known:
                raw = self._correct(raw)
            out.extend(
                stem(word)
                for word in self.language.fold(raw)
                if word not in self.language.stopwords
            )
        return out

    def _correct(self, raw: str) -> str:
        if len(raw) < 4 or not raw.isalpha():
            return raw
        edits = 1 if len(raw) < 8 else 2
        best = process.extractOne(
            raw, self._spellable, scorer=DamerauLevenshtein.distance, score_cutoff=edits
        )
        return best[0] if best else raw

    # -- scoring --------------------------------------------------------------------------------

    def rank(self, text: str, limit: int = 5) -> list[Match]:
        """Entries by score, best first; at most one row per entry."""
        return self._rank(set(self.terms(text)), limit)

    def _rank(self, query: set[str], limit: int) -> list[Match]:
        if not query:
            return []
        weights = {t: self._idf.get(t, self._unknown_idf) for t in query}
        total = sum(weights.values())
        overlap: dict[int, float] = defaultdict(float)
        for term in query:
            for doc_index in self._postings.get(term, ()):
                overlap[doc_index] += weights[term]
        best_doc: dict[int, float] = {}
        for doc_index, shared in overlap.items():
            entry_index = self._docs[doc_index][0]
            dice = 2 * shared / (total + self._doc_weight[doc_index])
            if dice > best_doc.get(entry_index, 0.0):
                best_doc[entry_index] = dice
        scored: list[Match] = []
        for entry_index, dice in best_doc.items():
            bag = self._bags[entry_index]
            coverage = sum(w for t, w in weights.items() if t in bag) / total
            score = PHRASING_WEIGHT * dice + (1 - PHRASING_WEIGHT) * coverage
            if any(keyword <= query for keyword in self._keywords[entry_index]):
                score += KEYWORD_BONUS
            scored.append(Match(self.entries[entry_index], min(score, 1.0)))
        scored.sort(key=lambda m: m.score, reverse=True)
        return scored[:limit]

    # -- decisions ------------------------------------------------------------------------------

    def match(self, text: str) -> Outcome:
        """Decide: answer (one or several questions), suggest, or none."""
        ranked = self.rank(text)
        several = self._several(text)
        if len(several) >= 2:
            return Outcome("answer", tuple(several))
        if ranked and _confident(ranked):
            return Outcome("answer", (ranked[0],))
        candidates = [m for m in ranked if m.score >= SUGGEST][:MAX_SUGGESTIONS]
        if candidates:
            return Outcome("suggest", tuple(candidates))
        return Outcome("none")

    def _several(self, text: str) -> list[Match]:
        """Confident answers to distinct questions asked in one message, in the order asked."""
        found: list[Match] = []
        for part in _SPLIT.split(text):
            ranked = self.rank(part, limit=2)
            if (
                ranked
                and _confident(ranked)
                and all(m.entry.id != ranked[0].entry.id for m in found)
            ):
                found.append(ranked[0])
        return found[:MAX_ANSWERS]


def _confident(ranked: Sequence[Match]) -> bool:
    top = ranked[0].score
    runner_up = ranked[1].score if len(ranked) > 1 else 0.0
    return top >= CONFIDENT and top - runner_up >= MARGIN
