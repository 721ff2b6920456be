"""Match a message to FAQ entries: a confident answer, "did you mean" candidates, or nothing.

Words first (knowledge/language.py): typos are corrected against the FAQ's own vocabulary, set
phrases, spellings, abbreviations and synonyms folded, stop words dropped, the rest lightly stemmed,
the same way for messages and for the FAQ.

Each entry is indexed by the meaningful words of its question, phrasings and keywords (and the
figures of its answer: "is it £600?"), weighted by how rare they are across entries: a word every
entry shares says little. A message scores an entry by how much of the message the entry explains
(coverage) and how closely it fits one phrasing (a weighted Dice overlap); the few best are compared
again as whole sentences, grammar words kept, with rapidfuzz, because "what's in the pack" and
"when do I get the pack" differ only in those.

Honesty rules sit on top of the score, because a confident wrong answer is worse than none:
- a word the FAQ has never seen counts against every entry ("how much is a hydrafacial?"), an
  everyday one ("my sister says...") half as much;
- what a message asks for must be answered: a price, a place, a time or a length (language.yaml
  `focus`), the thing it names ("how many injections", "do I get a certificate"), or a thing only a
  known gap knows ("parking", "refund", "Botox": the gap's one-word keywords no entry uses);
- known gaps (gaps.yaml) are matched like entries, so a question the documents do not answer gets
  an honest "I don't know", and a gap about a price only catches questions about a price;
- an answer needs a clear lead over the next entry and must explain most of the message.

A message may hold several questions ("price and where is it?"): it is cut into clauses at ? ! ; :
full stops, "lol" and emoji, and at commas and conjunctions that do not merely go on with what a
question asks ("do you teach aftercare and treatment plans?" is one question). Each part is matched
alone. What the sender tells around the question ("I'm a physio, ...", "going on holiday next week,
is sun ok?") is context: read with it, weighed less, asking nothing, unless it is about their own
health ("my husband has diabetes, can he have it?") or the question points back to it ("that
microglia thing, is it proven?"). When the whole message only earns a "did you mean", the question
read without that story may still settle it. A short message sent just after an answer may lean
on it ("and for non-medical people?" after the membership price): `follow_up`. Matching is fast:
postings, a bounded first pass, rapidfuzz on a few only.
"""

from __future__ import annotations

import gc
import heapq
import math
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

from rapidfuzz import fuzz, process
from rapidfuzz.distance import DamerauLevenshtein

from knowledge.english import frequency, is_english
from knowledge.language import ADDRESS, Language, stem
from knowledge.model import Entry, Gap
from knowledge.yamlfile import KnowledgeError

# Thresholds, tuned on the dev half of tests/data/faq_eval.yaml (python -m benchmarks.evaluate --split dev).
CONFIDENT = 0.55  # at or above: answer
MARGIN = 0.03  # ...and ahead of the next entry by at least this, or it is a "did you mean"
MIN_COVERAGE = 0.5  # ...and the entry explains at least this much of the message
CLEAR_COVERAGE, CLEAR_LEAD = 0.25, 0.12  # ...or less of it, when no other entry comes close
PART_CONFIDENT = 0.5  # one part of a several-question message: the rest of it says "several"
SAME_SUBJECT = 0.05  # ...a later part keeps to the first answer's audience when this close
SUGGEST = 0.34  # at or above: offer as "did you mean"
NEARBY = 0.2  # a question the documents do not answer is offered entries this close to its gap
MAX_SUGGESTIONS = 3
MAX_ANSWERS = 3  # questions answered from one message
MAX_PARTS = 6  # ...from among its first this many parts: matching stays fast on a wall of text
PHRASING_WEIGHT = 0.3  # the rest is how much of the message the entry explains
KEYWORD_BONUS = 0.08  # every word of one of the entry's keywords is in the message
RERANK = 4  # candidates compared again, whole sentence against each phrasing they share words with
RERANK_PHRASINGS = 5  # ...against this many of its phrasings, those sharing the most words
RERANK_WEIGHT = 0.5  # share of the final score that is that sentence closeness
RERANK_SCORER = fuzz.WRatio  # robust to extra words around a phrasing, and to word order
UNKNOWN_DF = 3.0  # a word the FAQ never uses weighs like one found in this many entries
FOCUS_PENALTY = 0.15  # an entry that misses what the message asks for (or a gap about another thing)
PREAMBLE_WEIGHT = 0.25  # words only in what the sender says about themselves ("I'm a physio, ...")
FOLLOW_UP_TERMS = 3  # a message this short may lean on the question answered just before it
TOPIC_WEIGHT = 0.8  # ...whose words then weigh this much beside the message's own
COMMON_FREQUENCY, COMMON_WEIGHT = 30_000, 0.5  # an unknown everyday word ("sister", "gym") weighs less
SPELL_CACHE = 20_000  # typed words remembered with their correction

# Where one message holds several questions: "price and where is it?". A full stop, ? ! ; or a line
# break always ends a clause; a comma or a conjunction only where it does not join two things asked
# in one question ("do you teach aftercare and treatment plans?", "between acute and chronic pain").
_BREAK = re.compile(
    r"[?;!\n]+|(?<!\d)[.:](?!\d)|[\U0001F300-\U0001FAFF\u2600-\u27BF]+|\b(?:lol|lmao|haha+)\b", re.I
)
_JOIN = re.compile(
    r"(?<!\d),(?!\d)|&|\+|\b(?:and|n|also|plus|as well as|then)\b"
    # "my manager wants to know | if the course is a full day": the question inside
    r"|(?<=\bknow)\s+(?=(?:if|whether)\b)|(?<=\basking)\s+(?=(?:if|whether)\b)|(?<=\bwondering)\s+(?=(?:if|whether)\b)",
    re.I,
)
_QUESTION = re.compile(
    r"^\s*(?:what|whats|how|hows|where|wheres|when|whens|who|whos|why|which|is|are|do|does|did|can|"
    r"could|will|would|should|shall|may|am|was|were|have|has|any|if|whether)\b",
    re.I,
)
# What people say before a question without asking anything: "sorry if silly question but do we...".
_OPENER = re.compile(
    r"^\s*(?:(?:hi|hello|hey|hiya|ok|okay|so|sorry|um+|erm+|uh+|well|right|yeah|and|but|oh|ah)\b[\s,!.]*"
    r"|if (?:this is |its |it's )?(?:a )?(?:silly|stupid|dumb|daft|basic) question\b[\s,]*)+",
    re.I,
)
# Words before the name of the thing a question wants ("do I get a certificate?").
_GETTING = frozenset({"get", "gets", "getting", "got", "receive", "receives", "receiving"})
_DETERMINERS = frozenset({"a", "an", "the", "my", "your", "any", "some", "our"})
# ...and words that only say how much of it ("do I get proper feedback?"): the thing comes after.
_DEGREE = frozenset({"proper", "real", "decent", "enough", "plenty", "lots", "loads", "more", "extra"})
# "how much", "how many (days)": asking for an amount, naming nothing it is the amount of.
_AMOUNT = frozenset({"much", "many", "minute", "hour", "day", "week", "month", "year"})
# A clause that tells something about the sender rather than asking: read with the next one.
_PREAMBLE = re.compile(
    r"^\s*(?:(?:hi|hello|hey|hiya)\b[\s,!.]*)?"
    r"(?:i['’]?m|i am|i work|i['’]?ve|i have|i (?:just )?had|had|just had|my|asking for|forwarding"
    r"|on behalf)\b",
    re.I,
)
# A clause that asks without a question word: "tell me about the pack", "wondering how long it is".
_REQUEST = re.compile(
    r"^\s*(?:tell|explain|describe|show|send|give|let me know|please|pls|plz|need|want|wondering|curious|"
    r"interested|looking|any|info|details)\b",
    re.I,
)
# A question by its first words: a question word, or a verb before its subject ("do I pay").
_INVERTED = (
    r"(?:is|are|do|does|did|can|could|will|would|should|shall|may|am|was|were|have|has)\s+"
    r"(?:i|you|u|we|they|it|he|she|there|this|that|my|your|the)\b"
)
_ASKS_FIRST = re.compile(
    rf"^\s*(?:(?:what|whats|how|hows|where|wheres|when|whens|who|whos|why|which)\b|{_INVERTED})", re.I
)
# ...and inside a clause about the sender, where "where", "who" and "which" relate ("a clinic
# where nobody asked"), as "what" does after a preposition ("careful about what goes in").
_ASKS_WITHIN = re.compile(
    r"(?<!\babout )(?<!\bof )(?<!\bin )(?<!\bon )(?<!\bfor )(?<!\bwith )(?<!\bto )"
    rf"\b(?:(?:what|whats|how|hows)\b|{_INVERTED})",
    re.I,
)
TOLD_WORDS = 4  # a clause this long that neither asks nor requests, beside one that does, tells
_BACK = re.compile(r"\b(?:that|this|those|these)\b", re.I)  # a question referring back to what was said
_POINTS_BACK = frozenset({"it", "its", "them", "they", "this", "that", "those", "these"})
_NAMING = re.compile(r"^\s*(?:that|this|those|these|the)\b", re.I)  # "that microglia thing, is it proven?"
_ASKING_WORD = re.compile(r"\b(?:what|whats|how|hows|where|wheres|when|whens|who|whos|why|which)\b", re.I)
# A message with none of these asks with no verb or question word of its own ("and for members?",
# "per course?"): what it asks is in the question before it.
_ASKS_ITSELF = re.compile(
    r"\b(?:what|whats|wat|wot|how|hows|where|wheres|when|who|why|which|is|isnt|are|do|does|did|can|"
    r"could|will|would|should|was|has|have|any|anything|tell|explain|define)\b",
    re.I,
)


# What a clause does: asks; tells (about the sender, or a story around the question: context,
# weighed less); or leads into the question after it ("that microglia thing, is it proven?").
Role = Literal["asks", "tells", "leads"]


class _Scoring(NamedTuple):
    """One message as the first pass scores it."""

    query: set[str]  # its meaningful words
    asked: set[str]  # what it asks for: a focus word, a thing only a gap knows, the thing it names
    weights: dict[str, float]  # how much each word says
    total: float  # the weight of the whole message
    keyed: set[int]  # the entries one of whose keywords it asks with


@dataclass(frozen=True)
class Match:
    entry: Entry | Gap
    score: float
    fit: float = 0.0  # how closely the message fits the entry's best phrasing
    coverage: float = 0.0  # how much of the message the entry's vocabulary explains
    focused: bool = True  # False: the message asks for something (a price, a place...) it does not give

    @property
    def is_gap(self) -> bool:
        return isinstance(self.entry, Gap)


@dataclass(frozen=True)
class Outcome:
    """`answer`: matches are the entries answered, in the order asked; `suggest`: the candidates;
    `gap`: the first match is a topic the documents do not answer, the rest FAQ entries close to
    the message, which may still help."""

    kind: Literal["answer", "suggest", "gap", "none"]
    matches: tuple[Match, ...] = ()

    @property
    def score(self) -> float:
        """The best match's confidence, 0 to 1 (rankings run past 1 to keep exact fits apart)."""
        return min(self.matches[0].score, 1.0) if self.matches else 0.0


class Matcher:
    """An index over the FAQ, built once at start-up; matching does no I/O."""

    def __init__(self, entries: Sequence[Entry | Gap], language: Language) -> None:
        self.entries = tuple(entries)
        self.language = language
        # Documents: an entry's question and each phrasing, as terms and as a sentence for the rerank.
        doc_terms: list[list[tuple[int, frozenset[str]]]] = []  # per entry: (document, its terms)
        self._doc_sentence: list[str] = []
        self._sentences: list[list[str]] = []  # per entry: its documents' sentences
        self._keywords: list[list[frozenset[str]]] = []
        self._is_gap = [isinstance(entry, Gap) for entry in self.entries]
        self._gaps = [index for index, is_gap in enumerate(self._is_gap) if is_gap]
        self._gap_asks: list[frozenset[str]] = []  # per gap: the focus words its question asks about
        bags: list[frozenset[str]] = []
        typed: set[str] = set()
        for entry in self.entries:
            asks = frozenset(language.terms(entry.question)) & language.focus
            self._gap_asks.append(asks if isinstance(entry, Gap) else frozenset())
            bag: set[str] = set()
            doc_terms.append([])
            self._sentences.append([])
            for text in (entry.question, *entry.phrasings):
                typed.update(language.raw_words(text))
                terms = frozenset(language.terms(text))
                if terms:
                    doc_terms[-1].append((len(self._doc_sentence), terms))
                    self._doc_sentence.append(_sentence(language.words(text)))
                    self._sentences[-1].append(self._doc_sentence[-1])
                    bag |= terms
            keywords = [frozenset(language.terms(k)) for k in entry.keywords]
            self._keywords.append([k for k in keywords if k])
            for keyword in entry.keywords:
                typed.update(language.raw_words(keyword))
            bag.update(*self._keywords[-1])
            if isinstance(entry, Entry):  # the answer's figures: "is it £600?", "is it 9 to 5?"
                bag.update(word for word in language.raw_words(entry.answer) if not word.isalpha())
            bags.append(frozenset(bag))
        self._bags = bags
        df: dict[str, int] = defaultdict(int)
        for bag in bags:
            for term in bag:
                df[term] += 1
        n = len(self.entries)
        self._idf = {term: math.log(1 + n / count) for term, count in df.items()}
        # A word the FAQ never uses weighs like a rare one: it is probably what the question is about.
        self._unknown_idf = math.log(1 + n / UNKNOWN_DF)
        self._entry_docs = [
            [(doc, terms, sum(self._idf[t] for t in terms)) for doc, terms in docs] for docs in doc_terms
        ]
        self._doc_weight = [0.0] * len(self._doc_sentence)
        # Per entry: term -> its documents holding it, so a message's few words find them directly.
        self._term_docs: list[dict[str, list[int]]] = []
        for docs in self._entry_docs:
            by_term: dict[str, list[int]] = defaultdict(list)
            for doc, terms, weight in docs:
                self._doc_weight[doc] = weight
                for term in terms:
                    by_term[term].append(doc)
            self._term_docs.append(dict(by_term))
        # Postings: term -> (entry whose vocabulary has it, the weight of the entry's lightest
        # document holding it: inf if only a keyword or a figure of the answer has it), which
        # bounds how well any of the entry's documents can fit a message with that term.
        self._entry_postings: dict[str, list[tuple[int, float]]] = defaultdict(list)
        self._entry_terms: list[dict[str, float]] = []  # the same, entry by entry
        for index, bag in enumerate(bags):
            lightest: dict[str, float] = {}
            for _, terms, weight in self._entry_docs[index]:
                for term in terms:
                    lightest[term] = min(weight, lightest.get(term, math.inf))
            self._entry_terms.append({term: lightest.get(term, math.inf) for term in bag})
            for term in bag:
                self._entry_postings[term].append((index, self._entry_terms[index][term]))
        for postings in self._entry_postings.values():  # best possible fit first (see _fill)
            postings.sort(key=lambda posting: posting[1])
        # Words in more entries than this are "common": entries holding only those are scored last.
        self._common_df = max(50, n // 20)
        self._keyword_postings: dict[str, list[tuple[int, frozenset[str]]]] = defaultdict(list)
        for index, keywords in enumerate(self._keywords):
            for keyword in keywords:
                self._keyword_postings[min(keyword)].append((index, keyword))
        phrase_words = {word for phrase in language.phrases for word in phrase}
        self._spellable = sorted(
            (typed | set(language.rewrites) | set(self._idf) | phrase_words) - language.stopwords
        )
        self._known = frozenset(self._spellable) | language.stopwords
        self._spelled: dict[str, str] = {}
        # A gap's one-word keyword that no entry uses ("parking", "refund") names what the FAQ
        # cannot answer: a message holding one is asking it.
        answerable = set().union(
            *(bag for entry, bag in zip(self.entries, bags, strict=True) if isinstance(entry, Entry))
        )
        self._unanswerable = frozenset(self._gap_words(personal_only=False) - answerable)
        self._askable = language.focus | self._unanswerable
        # ...and one about the sender's health asks it even where they tell ("I get keloid scars").
        self._personal = self._unanswerable & self._gap_words(personal_only=True)
        # The index lives as long as the process and never changes: keep the garbage collector
        # from scanning it again and again (full collections over a large FAQ cost 100+ ms).
        gc.freeze()

    def _gap_words(self, personal_only: bool) -> set[str]:
        """The one-word keywords of the gaps (of those marked personal only, if asked)."""
        return {
            term
            for entry, keywords in zip(self.entries, self._keywords, strict=True)
            if isinstance(entry, Gap) and (entry.personal or not personal_only)
            for keyword in keywords
            if len(keyword) == 1
            for term in keyword
        }

    # -- words ----------------------------------------------------------------------------------

    def words(self, text: str) -> list[str]:
        """Every word of a message, typos corrected, phrases and words folded, grammar kept."""
        raw = [self._spell(word) for word in self.language.raw_words(text)]
        return [word for typed in self.language.join_phrases(raw) for word in self.language.fold(typed)]

    def terms(self, text: str) -> list[str]:
        """The message's meaningful words, with typos corrected against the FAQ's vocabulary."""
        return [stem(word) for word in self.words(text) if word not in self.language.stopwords]

    def _spell(self, raw: str) -> str:
        if raw in self._known or stem(raw) in self._known:
            return raw
        corrected = self._spelled.get(raw)
        if corrected is None:
            corrected = self._correct(raw)
            if len(self._spelled) < SPELL_CACHE:
                self._spelled[raw] = corrected
        return corrected

    def _correct(self, raw: str) -> str:
        """A typo of a word the FAQ uses, or the word unchanged. Real words that merely look like
        FAQ words ("feels"/"fees", "heard"/"heart") must survive, so: an English word is never
        corrected, the first letter must match (typos rarely hit it), short words only get
        swapped letters fixed, and longer ones allow one edit (two from eight letters)."""
        if len(raw) < 4 or not raw.isalpha() or is_english(raw):
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

    def rank(self, text: str) -> list[Match]:
        """The best few entries for the whole message (RERANK of them), best first: what `match`
        decides from, for diagnostics and benchmarks."""
        clauses = self._clause_words(text)
        return self._rank(_whole(clauses), self._context(clauses), _asking(clauses))

    def _clause_words(self, text: str) -> list[tuple[list[str], Role]]:
        """The words of each clause, marked True where the clause tells about the sender."""
        return [(self.words(clause), role) for clause, role in _clauses(text)]

    def _context(self, clauses: Sequence[tuple[list[str], Role]]) -> frozenset[str]:
        """Terms found only in what the sender says about themselves ("I'm a physio, I work in
        sports rehab, how much is it?"): context, weighed less than the question."""
        told: set[str] = set()
        asked: set[str] = set()
        for words, role in clauses:
            (told if role == "tells" else asked).update(
                stem(w) for w in words if w not in self.language.stopwords
            )
        return frozenset(told - asked) if asked else frozenset()  # all told: nothing to weigh against

    def _rank(
        self,
        words: Sequence[str],
        context: frozenset[str],
        asking: Sequence[str] | None = None,
        context_weight: float = PREAMBLE_WEIGHT,
    ) -> list[Match]:
        """The best few entries for `words`, compared again as a sentence with `asking` (the
        clauses that ask, when a story is told around them: a short phrasing found inside the
        story says nothing) or with all of them. The words of `context` weigh `context_weight`."""
        query = {stem(word) for word in words if word not in self.language.stopwords}
        if not query:
            return []
        # Told words ask nothing ("where it needs to go"), except the sender's health: "my husband
        # has diabetes, can he have it?" asks about diabetes.
        asked = (query - context) & self._askable | query & self._personal | self._named(asking or words)
        asked -= self._likened(words)
        sentence = _sentence(asking or words)
        ranked: list[Match] = []
        for index, match, docs in self._first_pass(query, asked, context, context_weight):
            phrasings = [self._doc_sentence[doc] for doc in docs] or self._sentences[index]
            closeness = process.extractOne(sentence, phrasings, scorer=RERANK_SCORER)[1] / 100
            score = (1 - RERANK_WEIGHT) * match.score + RERANK_WEIGHT * closeness
            score = score if match.focused else score - FOCUS_PENALTY
            ranked.append(Match(match.entry, score, match.fit, match.coverage, match.focused))
        ranked.sort(key=lambda m: m.score, reverse=True)
        return ranked

    def _likened(self, words: Sequence[str]) -> set[str]:
        """What a question compares with rather than asks about: "is it like Botox?" asks what
        mesotherapy is; "is it better than Botox?" still asks about Botox."""
        likened = {stem(after) for word, after in zip(words, words[1:], strict=False) if word == "like"}
        return likened & self._unanswerable

    def _named(self, words: Sequence[str]) -> set[str]:
        """What a question names as the thing it wants: "how many injections" is not answered by
        how many sessions, nor "when do I get the certificate" by when the pack is sent."""
        named: set[str] = set()
        for i, word in enumerate(words[:-1]):
            if word in _GETTING or (word in ("many", "much") and i and words[i - 1] == "how"):
                after = [w for w in words[i + 1 : i + 4] if w not in _DETERMINERS | _DEGREE][:1]
                named.update(stem(w) for w in after if w not in self.language.stopwords)
        return named

    def _first_pass(
        self, query: set[str], asked: set[str], context: frozenset[str], context_weight: float
    ) -> list[tuple[int, Match, list[int]]]:
        """The RERANK best entries by weighted coverage and phrasing overlap, each with its index
        and the documents (phrasings) it shares words with.

        Entries holding one of the message's rarer words are scored first. Those holding only its
        common words (in a large FAQ, "mesotherapy" is in most entries) are skipped when even a
        perfect fit on those words could not beat the best found (MaxScore): the result is the
        same, without a pass over thousands of entries."""
        message = self._scoring(query, asked, context, context_weight)
        weights, total = message.weights, message.total
        # Rarest words first; entries holding any of the first k are candidates. k grows until the
        # remaining (commonest) words could not lift any other entry above the fourth best.
        order = sorted(weights, key=lambda t: len(self._entry_postings.get(t, ())))
        k = max(1, sum(len(self._entry_postings.get(t, ())) <= self._common_df for t in order))
        while k < len(order):
            candidates = {index for t in order[:k] for index, _ in self._entry_postings.get(t, ())}
            top = self._best(self._coverage(weights, candidates), message)
            held = sum(weights[t] for t in order[k:])
            if len(top) == RERANK and self._ceiling(held, total, math.inf) < top[-1][0]:
                return [row[1:] for row in top]
            if k == len(order) - 1:  # one common word left: fill the top from its best entries
                return [row[1:] for row in self._fill(top, order[-1], candidates, message)]
            k += 1
        top = self._best(self._coverage(weights, None), message)
        return [row[1:] for row in top]

    def _scoring(
        self, query: set[str], asked: set[str], context: frozenset[str], context_weight: float
    ) -> _Scoring:
        weights = self._weights(query, context, context_weight)
        return _Scoring(query, asked, weights, sum(weights.values()), self._keyed(query, context))

    def _keyed(self, query: set[str], context: frozenset[str]) -> set[int]:
        """The entries one of whose keywords is wholly in what the message asks (not in what the
        sender tells about themselves: "I had Botox last year..." names no topic)."""
        stated = query - context
        return {
            index
            for term in stated
            for index, keyword in self._keyword_postings.get(term, ())
            if keyword <= stated
        }

    def _weights(self, query: set[str], context: frozenset[str], context_weight: float) -> dict[str, float]:
        """How much each of the message's words says: rare across the FAQ says more; a word the
        FAQ never uses weighs like a rare one (half as much if it is everyday English), and
        what the sender tells about themselves weighs less than what they ask."""
        return {
            term: self._idf.get(term, self._unknown(term)) * (context_weight if term in context else 1.0)
            for term in query
        }

    def _unknown(self, term: str) -> float:
        return self._unknown_idf * (COMMON_WEIGHT if frequency(term) >= COMMON_FREQUENCY else 1.0)

    @staticmethod
    def _ceiling(held: float, total: float, light: float) -> float:
        """The highest ranking an entry can reach holding words of weight `held` and no others,
        its lightest document holding one of them weighing `light` (inf: it holds none there)."""
        fits = 2 * held / (total + held) if light == math.inf else 2 * held / (total + max(held, light))
        return (1 - PHRASING_WEIGHT) * held / total + KEYWORD_BONUS + PHRASING_WEIGHT * fits

    def _fill(
        self,
        top: list[tuple[float, int, Match, list[int]]],
        term: str,
        scored: set[int],
        message: _Scoring,
    ) -> list[tuple[float, int, Match, list[int]]]:
        """Complete the top with entries holding only `term` of the message's words.

        They all cover the same weight, and their best phrasing is their lightest one holding the
        word, by which postings are sorted: so, apart from the few that earn a keyword bonus
        (scored first), the first entry that cannot beat the fourth best ends the search."""
        weight = message.weights[term]
        # Scored first, as their ceilings are not like the rest: those earning a keyword bonus, and
        # gaps (whose focus depends on more than the message's words).
        special = message.keyed - scored
        special.update(index for index in self._gaps if term in self._bags[index] and index not in scored)
        rows = list(top)
        for index in special:
            light = min((w for _, terms, w in self._entry_docs[index] if term in terms), default=math.inf)
            rows.extend(self._best({index: (weight, light)}, message))
        rows = sorted(rows, reverse=True)[:RERANK]
        # An entry (not a gap) holding only `term` answers what is asked only if that is `term`.
        unfocused = FOCUS_PENALTY * (not message.asked <= {term})
        for index, light in self._entry_postings[term]:
            if index in scored or index in special:
                continue
            ceiling = self._ceiling(weight, message.total, light) - KEYWORD_BONUS - unfocused
            if len(rows) >= RERANK and ceiling < rows[-1][0]:
                break
            rows.extend(self._best({index: (weight, light)}, message))
            rows = sorted(rows, reverse=True)[:RERANK]
        return rows

    def _coverage(self, weights: dict[str, float], only: set[int] | None) -> dict[int, tuple[float, float]]:
        """Per entry (all, or `only` these): the weight of the message's words it holds, and the
        weight of its lightest document holding one of them (inf: only keywords or figures do).

        A few candidates are looked up entry by entry rather than by walking the postings of the
        message's words, which for a common word in a large FAQ run to thousands; both ways add
        the weights in the same order, so they give the same sums."""
        if only is not None and len(only) * len(weights) < sum(
            len(self._entry_postings.get(term, ())) for term in weights
        ):
            return self._coverage_of(weights, only)
        covered: dict[int, list[float]] = {}
        for term, weight in weights.items():
            for index, light in self._entry_postings.get(term, ()):
                if only is not None and index not in only:
                    continue
                row = covered.get(index)
                if row is None:
                    covered[index] = [weight, light]
                else:
                    row[0] += weight
                    if light < row[1]:
                        row[1] = light
        return {index: (cover, light) for index, (cover, light) in covered.items()}

    def _coverage_of(self, weights: dict[str, float], only: set[int]) -> dict[int, tuple[float, float]]:
        found: dict[int, tuple[float, float]] = {}
        for index in only:
            terms = self._entry_terms[index]
            cover, light, holds = 0.0, math.inf, False
            for term, weight in weights.items():
                lightest = terms.get(term)
                if lightest is not None:
                    holds = True
                    cover += weight
                    if lightest < light:
                        light = lightest
            if holds:
                found[index] = (cover, light)
        return found

    def _best(
        self,
        covered: dict[int, tuple[float, float]],
        message: _Scoring,
    ) -> list[tuple[float, int, Match, list[int]]]:
        """The RERANK best of the covered entries, best first, as (ranking, index, match, docs).

        The phrasing overlap (a Dice coefficient) costs a pass over an entry's documents, so it is
        computed best-bound first and only while an entry could still make the top: an entry
        covering words of weight C (of the message's `total`) overlaps none of its documents by
        more than 2C / (total + max(C, w)), w being the weight of its lightest document that holds
        one of the message's words."""
        # What is asked must be answered: a price, a place, or a thing only a gap knows ("parking").
        # A gap holding that thing is focused whatever else is asked ("how much is Botox?"), and a
        # gap about a price only catches questions about a price.
        query, asked, weights, total, keyed = message
        unanswerable = asked & self._unanswerable
        bounds = []
        for index, (cover, light) in covered.items():
            coverage = cover / total
            best_case = (1 - PHRASING_WEIGHT) * coverage + KEYWORD_BONUS * (index in keyed)
            fits = 0.0 if light == math.inf else 2 * cover / (total + max(cover, light))
            bounds.append((best_case + PHRASING_WEIGHT * fits, index, best_case, fits, coverage))
        # Ties are broken by index, here and in the pruned passes alike, so that pruning never
        # changes which of two equal entries goes on to the rerank. Bounds assume the entry is
        # focused; whether it is, is only worked out for those that could make the top.
        bounds.sort(reverse=True)
        top: list[tuple[float, int, Match, list[int]]] = []  # a min-heap of the best so far
        for bound, index, best_case, fits, coverage in bounds:
            if len(top) == RERANK and (bound < top[0][0] or (bound == top[0][0] and index < top[0][1])):
                break
            gap_asks = self._gap_asks[index]
            required = unanswerable or asked if self._is_gap[index] else asked
            focused = required <= self._bags[index] and not (
                gap_asks and not gap_asks <= query and index not in keyed
            )
            base = best_case - FOCUS_PENALTY * (not focused)
            if not focused and len(top) == RERANK:
                bound = base + PHRASING_WEIGHT * fits
                if bound < top[0][0] or (bound == top[0][0] and index < top[0][1]):
                    continue
            shared: dict[int, float] = {}
            term_docs = self._term_docs[index]
            for term in query:
                for doc in term_docs.get(term, ()):
                    shared[doc] = shared.get(doc, 0.0) + weights[term]
            overlaps = sorted(
                ((2 * weight / (total + self._doc_weight[doc]), doc) for doc, weight in shared.items()),
                reverse=True,
            )
            fit = overlaps[0][0] if overlaps else 0.0
            ranking = base + PHRASING_WEIGHT * fit  # the focus penalty decides the top too
            score = ranking + FOCUS_PENALTY * (not focused)
            row = (
                ranking,
                index,
                Match(self.entries[index], score, fit, coverage, focused),
                [doc for _, doc in overlaps[:RERANK_PHRASINGS]],
            )
            if len(top) < RERANK:
                heapq.heappush(top, row)
            elif ranking > top[0][0] or (ranking == top[0][0] and index > top[0][1]):
                heapq.heapreplace(top, row)
        return sorted(top, reverse=True)

    # -- decisions ------------------------------------------------------------------------------

    def match(self, text: str) -> Outcome:
        """Decide: answer (one or several questions), a known gap, suggest, or none."""
        clauses = self._clause_words(text)
        context = self._context(clauses)
        parts = self._questions(_parts(clauses))
        several = self._several(parts[:MAX_PARTS], context)
        if several:
            return Outcome("answer", tuple(several))
        ranked = self._rank(_whole(clauses), context, _asking(clauses))
        if ranked and ranked[0].is_gap and ranked[0].score >= SUGGEST:
            gap = ranked[0]
            floor = max(SUGGEST, gap.score - NEARBY)
            nearby = [m for m in ranked[1:] if not m.is_gap and m.score >= floor][:MAX_SUGGESTIONS]
            return Outcome("gap", (gap, *nearby))
        if ranked and _confident(ranked):
            return Outcome("answer", (ranked[0],))
        if (
            ranked
            and ranked[0].focused
            and not ranked[0].is_gap
            and self._asked_alone_agrees(clauses, ranked[0])
        ):
            return Outcome("answer", (ranked[0],))
        candidates = [m for m in ranked if m.score >= SUGGEST and not m.is_gap][:MAX_SUGGESTIONS]
        if candidates:
            return Outcome("suggest", tuple(candidates))
        return Outcome("none")

    def follow_up(self, text: str, topic: Entry) -> Outcome:
        """Match a message sent just after `topic` was answered. Read alone, "and for non-medical
        people?" after the membership price asks who may train; it asks that price again.

        A short message that alone earns no confident answer, or a fragment asking with no word of
        its own, is read again after the topic's question, whose words weigh a little less. That
        reading is kept only when it is confident, every word of the message is one the FAQ knows,
        and a word of it naming a thing (not only a price or a length) belongs to the entry picked:
        "tell me a joke" or "can I take ibuprofen after?" after the certificate stay as they were.
        A question the documents do not answer ("and is there parking?") stays one. A short
        message whose own answer strays from the topic is only suggested, unless that reading
        confirms it or lands on the topic or on a gap."""
        alone = self.match(text)
        words = _whole(self._clause_words(text))
        own = [word for word in words if word not in self.language.stopwords]
        if alone.kind == "gap" or not own or len(own) > FOLLOW_UP_TERMS:
            return alone
        strays = alone.kind == "answer" and self._strays(alone, topic, words)
        if strays:
            alone = Outcome("suggest", alone.matches)
        if alone.kind == "answer" and _ASKS_ITSELF.search(text):
            return alone
        terms = {stem(word) for word in own}
        before = self.words(topic.question)
        context = frozenset(stem(w) for w in before if w not in self.language.stopwords) - terms
        ranked = self._rank([*before, *words], context, words, TOPIC_WEIGHT)
        if not ranked or not _confident(ranked) or not terms <= self._idf.keys():
            return alone
        named = terms - self.language.focus - _AMOUNT  # "medical" in "and for medical people?"
        if not (named or terms) & self._bags[self.entries.index(ranked[0].entry)]:
            return alone
        if (
            strays
            and not ranked[0].is_gap
            and ranked[0].entry.id not in (topic.id, alone.matches[0].entry.id)
        ):
            return alone
        return Outcome("gap" if ranked[0].is_gap else "answer", (ranked[0],))

    def _strays(self, alone: Outcome, topic: Entry, words: Sequence[str]) -> bool:
        """Whether a short message's own confident answer strays from the topic just answered: to
        the other audience while naming nothing the topic does not, beyond what it asks for ("how
        much is each one?" after how many sessions: not the course fee); or to another entry while
        it points back at the topic ("is that per year?" after the membership fee: not
        mesotherapy's history)."""
        picked = [m.entry for m in alone.matches]
        if self._points_back(words, topic, picked) and all(entry.id != topic.id for entry in picked):
            return True
        other = {"patient": "delegate", "delegate": "patient"}.get(topic.audience)
        if not other or all(getattr(entry, "audience", None) != other for entry in picked):
            return False
        named = {stem(w) for w in words if w not in self.language.stopwords and not _ASKING_WORD.fullmatch(w)}
        return named <= self.language.focus | _AMOUNT | self._bags[self.entries.index(topic)]

    def _points_back(self, words: Sequence[str], topic: Entry, picked: Sequence[Entry | Gap]) -> bool:
        """Whether "that" or "this" stands for the topic ("is that per year?", "what did that study
        find?"), rather than naming a thing of the entry picked, not of the topic: "is this course
        for GPs?" after the intradermal answer asks who the course is for."""
        bag = self._bags[self.entries.index(topic)]
        own = set().union(*(self._bags[self.entries.index(entry)] for entry in picked)) - bag
        return any(
            _BACK.fullmatch(word) and stem(following or "") not in own
            for word, following in zip(words, [*words[1:], None], strict=True)
        )

    def _asked_alone_agrees(self, clauses: Sequence[tuple[list[str], Role]], top: Match) -> bool:
        """Whether the clauses that ask, read without the story told around them, confidently
        pick the same entry as the whole message."""
        asking = _asking(clauses)
        if len(asking) == len(_whole(clauses)) or not self._meaningful(asking):
            return False
        alone = self._rank(asking, frozenset())
        return bool(alone) and alone[0].entry.id == top.entry.id and _confident(alone)

    def _questions(self, parts: Sequence[list[str]]) -> list[list[str]]:
        """The parts that ask something. One that only points back ("when do I get the pack, and
        what's in it?") asks about what the part before it named."""
        questions: list[list[str]] = []
        for part in parts:
            if questions and self._example(part) and _ASKING_WORD.search(" ".join(questions[-1])):
                questions[-1] = [*questions[-1], *part]  # "how long for? a month, a year?"
            elif self._meaningful(part):
                questions.append(list(part))
            elif questions and _POINTS_BACK.intersection(part):
                named = [w for w in questions[-1] if w not in self.language.stopwords]
                named = [w for w in named if stem(w) not in self.language.focus and not _ASKING_WORD.match(w)]
                if self._meaningful(named):  # "is it today?" after "what are the hours?" names nothing
                    questions.append([*part, *named])
        return questions

    def _example(self, words: Sequence[str]) -> bool:
        """A fragment offered as an example answer ("a month", "weekly"): not put as a question,
        and one or two words that name nothing asked for."""
        terms = [stem(w) for w in words if w not in self.language.stopwords]
        return (
            0 < len(terms) <= 2
            and not _ASKING_WORD.search(" ".join(words))
            and not _QUESTION.match(" ".join(words))
            and not set(terms) & self._askable
        )

    def _several(self, parts: Sequence[list[str]], context: frozenset[str]) -> list[Match]:
        """Confident answers to the questions of a several-part message, in the order asked, or
        nothing. Parts that all point at the same entry are one question asked twice ("what time
        do I arrive and when does it end?")."""
        if len(parts) < 2:
            return []
        found: list[Match] = []
        tops: set[str] = set()
        for words in parts:
            ranked = self._rank(words, context)
            if found:
                ranked = _same_subject(ranked, found[0], bool(_POINTS_BACK.intersection(words)))
            top = ranked[0]
            tops.add(top.entry.id)
            new = all(m.entry.id != top.entry.id for m in found)
            if new and not top.is_gap and _confident(ranked, PART_CONFIDENT):
                found.append(top)
        if len(found) >= 2 or (found and tops == {found[0].entry.id}):
            return found[:MAX_ANSWERS]
        return []

    def _meaningful(self, words: Sequence[str]) -> bool:
        """Has a word the FAQ or its gaps use: "hi there" and "hope you're well" ask nothing."""
        return any(stem(word) in self._idf for word in words if word not in self.language.stopwords)


def refuse_clashes(entries: Sequence[Entry | Gap], language: Language) -> None:
    """Refuse to start where a known gap would claim a question an entry answers: a gap phrasing
    that reads, once folded, exactly like an entry's question or phrasing; or a gap keyword all of
    whose words are in one ("practise on" is just "practice" once folded: every question about
    hands-on practice would be about the gap). Run on the curated knowledge at load."""
    entry_docs: dict[frozenset[str], tuple[Entry, str]] = {}
    for entry in entries:
        if isinstance(entry, Entry):
            for text in (entry.question, *entry.phrasings):
                terms = frozenset(language.terms(text))
                if terms:
                    entry_docs.setdefault(terms, (entry, text))
    problems = []
    for gap in entries:
        if not isinstance(gap, Gap):
            continue
        for text in (gap.question, *gap.phrasings):
            twin = entry_docs.get(frozenset(language.terms(text)))
            if twin is not None:
                problems.append(
                    f"gaps.yaml: gap {gap.id!r}: {text!r} reads the same as {twin[1]!r} of entry "
                    f"{twin[0].id!r} in faq.yaml once folded: reword or remove one"
                )
        for keyword in gap.keywords:
            words = frozenset(language.terms(keyword))
            clash = next((owner for terms, owner in entry_docs.items() if words and words <= terms), None)
            if clash is not None:
                entry, text = clash
                problems.append(
                    f"gaps.yaml: gap {gap.id!r}: keyword {keyword!r} is all in {text!r} "
                    f"of entry {entry.id!r} in faq.yaml once folded: it would claim that question"
                )
    if problems:
        raise KnowledgeError("\n".join(problems))


def asks(text: str) -> bool:
    """Whether a message puts a question, with a question mark or a word that asks: "why?" and
    "had meso today can i wash my face" do; "just had meso on my tummy" and "ok thanks" do not."""
    return "?" in text or _ASKS_ITSELF.search(text) is not None


def only_tells(text: str) -> bool:
    """Whether every clause of a message tells rather than asks ("had meso on my face this arvo");
    "ketoprofen levels after intradermal injection" asks, with no question word."""
    return all(role == "tells" for _, role in _clauses(text))


def split_questions(text: str) -> list[str]:
    """The parts of a message that may each be a question ("price and where is it?"). What the
    sender says about themselves ("I'm a physio, ...") stays with the part after it."""
    return [" ".join(part) for part in _parts([([clause], role) for clause, role in _clauses(text)])]


def _whole(clauses: Sequence[tuple[list[str], Role]]) -> list[str]:
    """The words of the whole message, from its clauses."""
    return [word for words, _ in clauses for word in words]


def _asking(clauses: Sequence[tuple[list[str], Role]]) -> list[str]:
    """The words of the clauses that ask, without those that tell."""
    return [word for words, role in clauses if role != "tells" for word in words]


def _parts(clauses: Sequence[tuple[list[str], Role]]) -> list[list[str]]:
    """Clauses (as words) gathered into questions: one that tells joins the next question, or the
    last one when none follows."""
    parts: list[list[str]] = []
    told: list[str] = []
    for words, role in clauses:
        if role != "asks":
            told = told + words
        else:
            parts.append(told + words)
            told = []
    if told:
        if parts:
            parts[-1] = parts[-1] + told
        else:
            parts.append(told)
    return parts


def _clauses(text: str) -> list[tuple[str, Role]]:
    """The clauses of a message, each with its role (see Role). A clause tells when it is about
    the sender ("I'm a physio"); in a message that asks with a question mark, when its sentence
    does not ("Feels a bit weird tbh"); and when it states something beside a question ("going
    on holiday next week after my meso, is sun ok?"), unless that question refers back to it
    ("that microglia thing, is it proven?"): then it leads into the question, as its subject.
    A new clause starts at ? ! ; : or a line break; at a comma or a conjunction too, unless a
    question goes on with more of what it asks ("do you teach aftercare and treatment plans", "do
    I get it on the day, or posted later"): "price and where is it" is two, "the centre for ...
    and research" one."""
    text = ADDRESS.sub(" ", text)  # its full stops end no sentence: "www.example.com"
    sentences: list[tuple[str, bool]] = []  # (sentence, ends with a question mark)
    last = 0
    for found in _BREAK.finditer(text):
        sentences.append((text[last : found.start()], "?" in found.group(0)))
        last = found.end()
    sentences.append((text[last:], False))
    questioning = any(asks for _, asks in sentences)
    # ...or, with no question mark anywhere, one sentence opens like a question ("...she doesnt
    # want surgery. is meso the kind of thing for that")
    opens_asking = questioning or any(_QUESTION.match(_OPENER.sub("", s)) for s, _ in sentences)
    clauses: list[tuple[str, bool]] = []  # (clause, its sentence ends with a question mark)
    about_sender: set[int] = set()  # clauses of a statement that opens about the sender
    for sentence, asks in sentences:
        start = len(clauses)
        for piece in (p.strip() for p in _JOIN.split(sentence) for p in _told_then_asked(p)):
            if not piece:
                continue
            if len(clauses) > start and _QUESTION.match(clauses[-1][0]) and not _QUESTION.match(piece):
                clauses[-1] = (f"{clauses[-1][0]} {piece}", asks)
            else:
                clauses.append((piece, asks))
        # "I work in a busy office and can only slip out at lunch." tells, all of it.
        # "...im a physio, do I pay the 150" still asks.
        if opens_asking and not asks and len(clauses) > start and _PREAMBLE.match(clauses[start][0]):
            about_sender.update(i for i in range(start, len(clauses)) if not _ASKS_FIRST.match(clauses[i][0]))
    # Greetings and apologies set aside ("sorry if silly question but do we..."), once per clause.
    opened = [_OPENER.sub("", clause) for clause, _ in clauses]
    questions = [i for i, text in enumerate(opened) if _QUESTION.match(text)]
    marked = []
    for i, (clause, asks) in enumerate(clauses):
        role: Role = "asks"
        if _PREAMBLE.match(clause) or i in about_sender or (questioning and not asks and i not in questions):
            role = "tells"
        elif questions and _states(clause, opened[i]):
            # ...unless the question after it asks about it: "that microglia thing, is it proven?"
            after = next((clauses[j][0] for j in questions if j > i), "")
            role = "leads" if _BACK.search(after) or (after and _NAMING.match(clause)) else "tells"
        marked.append((clause, role))
    return marked


def _told_then_asked(piece: str) -> list[str]:
    """A clause about the sender that runs on into a question ("my mum is having hers next week
    what aftercare will she need"): the two, cut where the question starts."""
    found = _ASKS_WITHIN.search(piece) if _PREAMBLE.match(piece) else None
    if found is None or len(piece[: found.start()].split()) < TOLD_WORDS:
        return [piece]
    return [piece[: found.start()], piece[found.start() :]]


def _states(clause: str, opened: str) -> bool:
    """A clause that neither asks nor requests (`opened`: without its greetings and apologies),
    and is long enough to be telling something."""
    return (
        not (_QUESTION.match(opened) or _REQUEST.match(opened) or _ASKING_WORD.search(clause))
        and len(clause.split()) >= TOLD_WORDS
    )


def _sentence(words: Sequence[str]) -> str:
    """Folded words with their grammar: "what's in" and "when" tell siblings apart."""
    return " ".join(stem(word) for word in words)


def _same_subject(ranked: list[Match], first: Match, points_back: bool) -> list[Match]:
    """A later part of a message asks about what its first answered part did: in "how much is it
    and how long does it last?", the course's length, not a treatment's, when the two are close.
    The entries for the other audience are left out; anything else stays as ranked. A part that
    points back ("price and how long is it?") loses them even when it would pick the right one
    anyway, so that a close one for the other audience no longer makes it unsure."""
    audience = getattr(first.entry, "audience", "both")
    if audience == "both":
        return ranked

    def fits(m: Match) -> bool:
        return m.is_gap or m.entry.audience in (audience, "both")

    top = ranked[0]
    same = next((m for m in ranked if fits(m)), None)
    if (fits(top) and not points_back) or same is None or top.score - same.score > SAME_SUBJECT:
        return ranked
    return [m for m in ranked if fits(m)]


def _confident(ranked: Sequence[Match], threshold: float = CONFIDENT) -> bool:
    top = ranked[0]
    runner_up = ranked[1].score if len(ranked) > 1 else 0.0
    lead = top.score - runner_up
    return (
        top.score >= threshold
        and lead >= MARGIN
        and (top.coverage >= MIN_COVERAGE or (top.coverage >= CLEAR_COVERAGE and lead >= CLEAR_LEAD))
        and top.focused
    )
