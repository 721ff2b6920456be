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

from rapidfuzz import fuzz, process
from rapidfuzz.distance import DamerauLevenshtein

from knowledge.language import Language, stem
from knowledge.model import Entry, Gap

# Thresholds, tuned on tests/data/faq_eval.yaml (see benchmarks/RESULTS.md for the figures).
CONFIDENT = 0.55  # at or above: answer
MARGIN = 0.03  # ...and ahead of the next entry by at least this, or it is a "did you mean"
PART_CONFIDENT = 0.5  # one part of a several-question message: the rest of it says "several"
SUGGEST = 0.34  # at or above: offer as "did you mean"
MAX_SUGGESTIONS = 3
MAX_ANSWERS = 3  # questions answered from one message
PHRASING_WEIGHT = 0.3  # the rest is how much of the message the entry explains
KEYWORD_BONUS = 0.08
RERANK = 5  # candidates compared again, whole sentence against each phrasing
RERANK_WEIGHT = 0.5
RERANK_SCORER = fuzz.WRatio
UNKNOWN_DF = 3.0  # a word the FAQ never uses weighs like one found in this many entries
MIN_COVERAGE = 0.5  # an answer must explain at least this much of the message

# Where one message holds several questions: "price and where is it?"
_SPLIT = re.compile(r"[?;!\n]+|(?<!\d)[.,](?!\d)|&|\b(?:and|also|plus|as well as|then)\b", re.I)


@dataclass(frozen=True)
class Match:
    entry: Entry | Gap
    score: float
    fit: float = 0.0  # how closely the message fits the entry's best phrasing
    coverage: float = 0.0  # how much of the message the entry's vocabulary explains

    @property
    def is_gap(self) -> bool:
        return isinstance(self.entry, Gap)


@dataclass(frozen=True)
class Outcome:
    """`answer`: matches are the entries answered, in the order asked; `suggest`: the candidates;
    `gap`: the first match is a topic the documents do not answer."""

    kind: Literal["answer", "suggest", "gap", "none"]
    matches: tuple[Match, ...] = ()

    @property
    def score(self) -> float:
        return self.matches[0].score if self.matches else 0.0


class Matcher:
    """An index over the FAQ, built once at start-up; matching does no I/O."""

    def __init__(self, entries: Sequence[Entry | Gap], language: Language) -> None:
        self.entries = tuple(entries)
        self.language = language
        docs: list[tuple[int, frozenset[str]]] = []
        self._phrasings: list[list[str]] = []  # per entry: phrasings folded, grammar kept
        bags: list[set[str]] = []
        self._keywords: list[list[frozenset[str]]] = []
        typed: set[str] = set()
        for index, entry in enumerate(self.entries):
            bag: set[str] = set()
            self._phrasings.append([self._sentence(text) for text in (entry.question, *entry.phrasings)])
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
        self._index = {entry.id: index for index, entry in enumerate(self.entries)}
        df: dict[str, int] = defaultdict(int)
        for bag in self._bags:
            for term in bag:
                df[term] += 1
        n = len(self.entries)
        self._idf = {term: math.log(1 + n / count) for term, count in df.items()}
        # A word the FAQ never uses weighs like a rare one: it is probably what the question is about.
        self._unknown_idf = math.log(1 + n / UNKNOWN_DF)
        self._docs = docs
        self._doc_weight = [sum(self._idf[t] for t in terms) for _, terms in docs]
        self._postings: dict[str, list[int]] = defaultdict(list)
        for doc_index, (_, terms) in enumerate(docs):
            for term in terms:
                self._postings[term].append(doc_index)
        self._spellable = sorted((typed | set(language.rewrites) | set(self._idf)) - language.stopwords)
        self._known = frozenset(self._spellable) | language.stopwords

    # -- words ----------------------------------------------------------------------------------

    def terms(self, text: str) -> list[str]:
        """The message's meaningful words, with typos corrected against the FAQ's vocabulary."""
        out: list[str] = []
        for raw in self.language.raw_words(text):
            if raw not in self._known and stem(raw) not in self._known:
                raw = self._correct(raw)
            out.extend(stem(word) for word in self.language.fold(raw) if word not in self.language.stopwords)
        return out

    def _correct(self, raw: str) -> str:
        """A typo of a word the FAQ uses, or the word unchanged. Real words that merely look like
        FAQ words ("dates"/"rates", "safe"/"save") must survive, so: the first letter must match
        (typos rarely hit it), short words only get swapped letters fixed, and longer ones allow
        one edit (two from eight letters)."""
        if len(raw) < 4 or not raw.isalpha():
            return raw
        edits = 1 if len(raw) < 8 else 2
        for candidate, distance, _ in process.extract(
            raw, self._spellable, scorer=DamerauLevenshtein.distance, score_cutoff=edits, limit=5
        ):
            if candidate[0] != raw[0]:
                continue
            if len(raw) <= 4 and (distance > 1 or sorted(candidate) != sorted(raw)):
                continue
            return candidate
        return raw

    # -- scoring --------------------------------------------------------------------------------

    def _sentence(self, text: str) -> str:
        """The whole text folded with its grammar words: "what's in" and "why" tell siblings apart."""
        return " ".join(stem(word) for word in self.language.words(text))

    def rank(self, text: str, limit: int = 5) -> list[Match]:
        """Entries by score, best first; at most one row per entry."""
        query = set(self.terms(text))
        if not query:
            return []
        first = self._rank(query, max(limit, RERANK))
        sentence = self._sentence(text)
        reranked = []
        for match in first[:RERANK]:
            index = self._index[match.entry.id]
            closeness = process.extractOne(sentence, self._phrasings[index], scorer=RERANK_SCORER)[1] / 100
            score = (1 - RERANK_WEIGHT) * match.score + RERANK_WEIGHT * closeness
            reranked.append(Match(match.entry, score, match.fit, match.coverage))
        reranked.sort(key=lambda m: m.score, reverse=True)
        return reranked[:limit]

    def _rank(self, query: set[str], limit: int) -> list[Match]:
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
            scored.append(Match(self.entries[entry_index], min(score, 1.0), dice, coverage))
        scored.sort(key=lambda m: m.score, reverse=True)
        return scored[:limit]

    # -- decisions ------------------------------------------------------------------------------

    def match(self, text: str) -> Outcome:
        """Decide: answer (one or several questions), a known gap, suggest, or none."""
        ranked = self.rank(text, limit=RERANK)
        several = self._several(text)
        # Several questions only if the message as a whole points at each of them too: "Centre
        # for Medical Sciences and Research" is one name, not a question about research.
        near = {m.entry.id for m in ranked}
        if len(several) >= 2 and all(m.entry.id in near for m in several):
            return Outcome("answer", tuple(several))
        if ranked and ranked[0].is_gap and ranked[0].score >= SUGGEST:
            return Outcome("gap", (ranked[0],))
        if ranked and _confident(ranked):
            return Outcome("answer", (ranked[0],))
        candidates = [m for m in ranked if m.score >= SUGGEST and not m.is_gap][:MAX_SUGGESTIONS]
        if candidates:
            return Outcome("suggest", tuple(candidates))
        return Outcome("none")

    def _several(self, text: str) -> list[Match]:
        """Confident answers to distinct questions asked in one message, in the order asked."""
        found: list[Match] = []
        for part in split_questions(text):
            ranked = self.rank(part, limit=2)
            if (
                ranked
                and _confident(ranked, PART_CONFIDENT)
                and not ranked[0].is_gap
                and all(m.entry.id != ranked[0].entry.id for m in found)
            ):
                found.append(ranked[0])
        return found[:MAX_ANSWERS]


def split_questions(text: str) -> list[str]:
    """The parts of a message that may each be a question ("price and where is it?")."""
    return [part for part in _SPLIT.split(text) if part and part.strip()]


def _confident(ranked: Sequence[Match], threshold: float = CONFIDENT) -> bool:
    top = ranked[0]
    runner_up = ranked[1].score if len(ranked) > 1 else 0.0
    return top.score >= threshold and top.score - runner_up >= MARGIN and top.coverage >= MIN_COVERAGE
