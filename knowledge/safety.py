"""The patient-safety gate: every message is checked for red flags before any FAQ matching.

What counts as a red flag, the cues that qualify one (negation, resolution, the distant past,
hypotheticals, general questions) and the advice texts all live in `red_flags.yaml`, which a
clinician reviews; this module only normalises text and applies those rules. It knows nothing of
Telegram. Everything is compiled once at load, so `check` costs tens of microseconds per message.

The rules lean towards routing: a finding is dropped only when a cue clearly applies to that very
symptom, and a message that negates one thing and reports another ("no fever but the redness is
spreading") is still routed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from rapidfuzz import fuzz, process

from knowledge import english
from knowledge.yamlfile import KnowledgeError, LineDict, load_yaml

DEFAULT_PATH = Path(__file__).with_name("red_flags.yaml")
FOLLOW_UP_JOIN = ", "  # a message and the one after it, read as one sentence: a flag may span them

Level = Literal["emergency", "urgent"]
LEVELS: tuple[str, ...] = ("emergency", "urgent")  # most serious first

_ID = re.compile(r"[a-z][a-z0-9_]*\Z")
_WORD = re.compile(r"[^\W_]+\Z")
_GAP = re.compile(r"~([1-9])\Z")
_MACRO = re.compile(r"\{([A-Z][A-Z0-9_]*)\}\Z")
_GAP_NAME = re.compile(r"_g\d+\Z")

# Words red-flag patterns use that do not name a symptom. Every other pattern word counts as a
# symptom word, which stops a negation or a "went down" reaching past it ("no fever my LIPS are
# swelling"): erring towards too many symptom words only errs towards routing.
_NOT_SYMPTOMS = frozenset(
    """
    after again ahead almost also anything arent around away bear became become becomes
    becoming been being beside better bits body book booking budg came cant caught change
    changed changing class clear clearly close come coming constantly cope could course date
    dates days definitely developed developing didnt difference different disappear does
    doesnt doing done dont down each ease entire every extremely face fade faded fading feel
    feeling feels felt fight form fortnight fortnights from gets getting goes going gone
    gonna good gotten handle have having help high hour improv improvement increasingly
    incredibly injected injection injections into isnt just keep keeping keeps kept labou
    last later like little loads look looking looks lots made make might mild mildly minute
    month months more morning much near nearly needle needles never next night nothing
    outside page pass passed passing plus point points probably properly quite really reduc
    resolv right room round running same seeing session settl severely shift shrink shrunk
    since site sites size skin slight slightly slot small some stand stop straight stuff
    stupidly subsid super surrounding suspect than that their them then there these they
    thing think this those thought through time tiny touch touching track treat turn twice
    unbelievably under very wake week weeks well went were what when where which while whole
    will with without woke wont words work working would wouldnt your
    """.split()  # noqa: SIM905 - a word list reads better as text
)

_APOSTROPHES = "'’‘`´ʼ"
_WILL = re.compile(rf"\b(i|you|we|they|he|she|it|that|there|who)[{_APOSTROPHES}]ll\b")
_APOSTROPHE = re.compile(f"[{_APOSTROPHES}]")
# "my tongue's gone fat" is "my tongue has gone fat", not "tongues"; "the calf's swollen" is
# "the calf is swollen". "It's", "that's" and the like stay one word ("its", "thats"), as the
# patterns spell them.
_NOUN_IS = re.compile(
    rf"\b(?!(?:it|he|she|that|there|what|who|where|how|let|here|when|why)[{_APOSTROPHES}])"
    rf"([a-z]+)[{_APOSTROPHES}]s\b"
)
_NOUN_HAS = re.compile(
    rf"\b(?!(?:it|he|she|that|there|what|who|where|how|let|here|when|why)[{_APOSTROPHES}])"
    rf"([a-z]+)[{_APOSTROPHES}]s(?= (?:been|got|gotten|gone|come|become|grown|had|[a-z]+ed)\b)"
)
_DECIMAL = re.compile(r"(\d+)[.,]\d+")
_DIGIT_LETTER = re.compile(r"(?<=\d)(?=[^\W\d_])|(?<=[^\W\d_])(?=\d)")
_STRONG = re.compile(r"[.!?;…\n\r]+|(?<!\d):(?!\d)")
_WEAK = re.compile(r"[,()\[\]{}\"“”«»]+|\s[-–—]+\s|[-–—]{2,}")
_JOINER = re.compile(r"[-‐‑/+*_=~]")
_SYMBOL = re.compile(r"[^\w\s.,]+")
_REPEAT3 = re.compile(r"(.)\1{2,}")
_REPEAT2 = re.compile(r"(.)\1+")

_FUZZY_MIN_LENGTH = 5
_FUZZY_CACHE_MAX = 20_000


@dataclass(frozen=True)
class SafetyFinding:
    """Red flags found in one message, and what to tell the person."""

    level: Level
    flags: tuple[str, ...]  # red flag ids found
    labels: tuple[str, ...]  # their human labels
    advice: str  # the text the user sees


@dataclass(frozen=True)
class _Pattern:
    source: str
    regex: re.Pattern[str]
    gaps: tuple[str, ...]
    unless: re.Pattern[str] | None = None
    unless_before: re.Pattern[str] | None = None


@dataclass(frozen=True)
class RedFlag:
    id: str
    level: Level
    label: str
    patterns: tuple[_Pattern, ...]


@dataclass(frozen=True)
class _Settings:
    fuzzy_cutoff: float = 90
    negation_window: int = 5
    resolution_window: int = 6
    hypothetical_window: int = 8
    first_person_before: int = 5
    first_person_after: int = 3


# --------------------------------------------------------------------------------------------
# Loading and validation


class _Problems:
    """Collects the file's problems so a curator sees all of them at once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.messages: list[str] = []

    def add(self, line: int, where: str, problem: str) -> None:
        self.messages.append(f"{self.path}:{line}: {where}: {problem}")

    def raise_if_any(self) -> None:
        if self.messages:
            raise KnowledgeError("\n".join(self.messages))


def _line(node: Any, default: int = 1) -> int:
    return node.line if isinstance(node, LineDict) else default


def _check_keys(
    problems: _Problems,
    node: Any,
    where: str,
    required: Iterable[str],
    optional: Iterable[str] = (),
    line: int = 1,
) -> bool:
    if not isinstance(node, dict):
        problems.add(line, where, f"must be a mapping, not {type(node).__name__}")
        return False
    required = tuple(required)
    allowed = set(required) | set(optional)
    line = _line(node, line)
    ok = True
    for key in node:
        if key not in allowed:
            problems.add(line, where, f"unknown field {key!r} (allowed: {', '.join(sorted(allowed))})")
            ok = False
    for key in required:
        if key not in node:
            problems.add(line, where, f"missing field {key!r}")
            ok = False
    return ok


def _text(problems: _Problems, node: Any, key: str, where: str, line: int) -> str:
    value = node.get(key) if isinstance(node, dict) else None
    if not isinstance(value, str) or not value.strip():
        problems.add(line, where, f"{key!r} must be non-empty text")
        return ""
    return value.strip()


def _str_list(problems: _Problems, value: Any, where: str, line: int) -> list[str]:
    if not isinstance(value, list) or not value:
        problems.add(line, where, "must be a non-empty list")
        return []
    out = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            problems.add(line, where, f"entries must be text, not {item!r}")
            continue
        if not str(item).strip():
            problems.add(line, where, "entries must not be empty")
            continue
        out.append(str(item).strip())
    return out


class _Compiler:
    """Turns the pattern language of red_flags.yaml into regular expressions.

    The text a pattern runs on is the normalised message: " word word . word , word " (every token
    preceded by one space, and one trailing space). A compiled phrase starts with the space before
    its first word, so phrases concatenate and a match is always aligned to whole words.
    """

    def __init__(self, problems: _Problems, macros: Mapping[str, Any], spellings: Mapping[str, str]):
        self.problems = problems
        self.macro_sources = macros
        self.rewritten = {key: value for key, value in spellings.items() if " " not in key}
        self.macros: dict[str, str] = {}
        self.building: set[str] = set()
        self.words: set[str] = set()  # literal words patterns use
        self.stems: set[str] = set()  # word* prefixes patterns use
        # what the red-flag patterns themselves use (directly or through macros): symptom words
        self.macro_words: dict[str, set[str]] = {}
        self.macro_refs: dict[str, set[str]] = {}
        self.sink: set[str] | None = None
        self.sink_refs: set[str] | None = None
        self.line = 1
        self.where = "macros"

    def macro(self, name: str) -> str | None:
        if self.sink_refs is not None:
            self.sink_refs.add(name)
        if name in self.macros:
            return self.macros[name]
        if name not in self.macro_sources:
            self.problems.add(self.line, self.where, f"unknown macro {{{name}}}")
            return None
        if name in self.building:
            self.problems.add(self.line, self.where, f"macro {{{name}}} refers to itself")
            return None
        entries = self.macro_sources[name]
        self.building.add(name)
        outer = self.sink, self.sink_refs
        self.sink = self.macro_words.setdefault(name, set())
        self.sink_refs = self.macro_refs.setdefault(name, set())
        try:
            phrases = [self.phrase(str(e), capture=False) for e in entries]
        finally:
            self.building.discard(name)
            self.sink, self.sink_refs = outer
        if any(p is None for p in phrases):
            return None
        self.macros[name] = "(?:" + "|".join(p for p in phrases if p) + ")"
        return self.macros[name]

    def word(self, raw: str, source: str) -> str | None:
        word = _APOSTROPHE.sub("", unicodedata.normalize("NFKC", raw).casefold())
        prefix = word.endswith("*")
        word = word.rstrip("*")
        if not _WORD.match(word):
            self.problems.add(
                self.line,
                self.where,
                f"pattern {source!r}: {raw!r} is not a word (write words as the normaliser sees "
                "them: lower case, no punctuation, e.g. cant not can't)",
            )
            return None
        if word in self.rewritten:
            self.problems.add(
                self.line,
                self.where,
                f"pattern {source!r}: {word!r} is rewritten to {self.rewritten[word]!r} before "
                f"matching (see spellings), so it can never match; write {self.rewritten[word]!r}",
            )
            return None
        if self.sink is not None:
            self.sink.add(word + "*" if prefix else word)
        if prefix:
            self.stems.add(word)
            return re.escape(word) + "[^ ]*"
        self.words.add(word)
        return re.escape(word)

    def collected(self, words: set[str], refs: set[str]) -> set[str]:
        """Words collected into a sink, with those of every macro it refers to, transitively."""
        out = set(words)
        todo, seen = list(refs), set()
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            out |= self.macro_words.get(name, set())
            todo.extend(self.macro_refs.get(name, set()))
        return out

    def phrase(self, source: str, capture: bool, gaps: list[str] | None = None) -> str | None:
        """One phrase as a regex fragment starting with a space; None (and a problem) if invalid."""
        source = source.strip()
        if source.startswith("re:"):
            raw = source[3:].strip()
            try:
                compiled = re.compile(raw)
            except re.error as exc:
                self.problems.add(self.line, self.where, f"bad regex {raw!r}: {exc}")
                return None
            if any(_GAP_NAME.match(name) for name in compiled.groupindex):
                self.problems.add(self.line, self.where, f"regex {raw!r}: group names _gN are reserved")
                return None
            return f" (?:{raw})"
        elements = source.split()
        if not elements:
            self.problems.add(self.line, self.where, "empty pattern")
            return None
        out: list[str] = []
        ok = True
        for index, element in enumerate(elements):
            gap = _GAP.match(element)
            if gap:
                if index in (0, len(elements) - 1) or _GAP.match(elements[index - 1]):
                    self.problems.add(
                        self.line,
                        self.where,
                        f"pattern {source!r}: a gap {element} must sit between two words",
                    )
                    ok = False
                    continue
                body = f"(?: [^ .]+){{0,{gap.group(1)}}}?"
                if capture and gaps is not None:
                    name = f"_g{len(gaps)}"
                    gaps.append(name)
                    out.append(f"(?P<{name}>{body})")
                else:
                    out.append(f"(?:{body})")
                continue
            if element.startswith("~"):
                self.problems.add(
                    self.line, self.where, f"pattern {source!r}: bad gap {element!r} (use ~1 to ~9)"
                )
                ok = False
                continue
            alternatives = []
            for alternative in element.split("|"):
                macro = _MACRO.match(alternative)
                if macro:
                    fragment = self.macro(macro.group(1))
                    if fragment is None:
                        ok = False
                        continue
                    alternatives.append(fragment)
                elif alternative.startswith("{") or alternative.endswith("}"):
                    self.problems.add(
                        self.line,
                        self.where,
                        f"pattern {source!r}: bad macro reference {alternative!r} (use {{NAME}})",
                    )
                    ok = False
                else:
                    fragment = self.word(alternative, source)
                    if fragment is None:
                        ok = False
                        continue
                    alternatives.append(" " + fragment)
            if alternatives:
                out.append("(?:" + "|".join(alternatives) + ")")
        return "".join(out) if ok else None

    def anchors(self, source: str, depth: int = 0) -> tuple[set[str], set[str]] | None:
        """The words and word* stems a phrase can start with; None if it can start anywhere."""
        source = source.strip()
        if source.startswith("re:") or not source.split() or depth > 20:
            return None
        words: set[str] = set()
        stems: set[str] = set()
        for alternative in source.split()[0].split("|"):
            macro = _MACRO.match(alternative)
            if macro:
                for entry in self.macro_sources.get(macro.group(1), []):
                    found = self.anchors(str(entry), depth + 1)
                    if found is None:
                        return None
                    words |= found[0]
                    stems |= found[1]
                continue
            word = _APOSTROPHE.sub("", unicodedata.normalize("NFKC", alternative).casefold())
            if word.endswith("*"):
                stems.add(word.rstrip("*"))
            else:
                words.add(word)
        return words, stems

    def regex(self, fragment: str, where: str) -> re.Pattern[str] | None:
        try:
            return re.compile(fragment + "(?= )")
        except re.error as exc:  # a raw re: fragment that only fails in context
            self.problems.add(self.line, where, f"bad pattern: {exc}")
            return None

    def pattern(self, source: str) -> _Pattern | None:
        gaps: list[str] = []
        fragment = self.phrase(source, capture=True, gaps=gaps)
        if fragment is None:
            return None
        regex = self.regex(fragment, self.where)
        return _Pattern(source, regex, tuple(gaps)) if regex else None

    def alternation(self, sources: Iterable[str]) -> re.Pattern[str] | None:
        fragments = [self.phrase(s, capture=False) for s in sources]
        if not fragments or any(f is None for f in fragments):
            return None
        return self.regex("(?:" + "|".join(f for f in fragments if f) + ")", self.where)


# --------------------------------------------------------------------------------------------
# Normalisation


class _Normaliser:
    def __init__(
        self,
        spellings: Mapping[str, str],
        vocabulary: Iterable[str],
        known: Iterable[str],
        stems: Iterable[str],
        cutoff: float,
    ) -> None:
        self.single = {k: tuple(v.split()) for k, v in spellings.items() if " " not in k}
        self.multi: dict[tuple[str, ...], tuple[str, ...]] = {
            tuple(k.split()): tuple(v.split()) for k, v in spellings.items() if " " in k
        }
        self.multi_firsts = {key[0] for key in self.multi}
        self.multi_lengths = sorted({len(key) for key in self.multi}, reverse=True)
        self.known = frozenset(known)
        stem_list = sorted(set(stems), key=len, reverse=True)
        self.stem_re = re.compile("(?:" + "|".join(map(re.escape, stem_list)) + ")") if stem_list else None
        self.buckets: dict[str, list[str]] = {}
        for word in sorted(set(vocabulary)):
            if len(word) >= _FUZZY_MIN_LENGTH - 1 and word.isalpha():
                self.buckets.setdefault(word[0], []).append(word)
        self.cutoff = cutoff
        self.cache: dict[str, tuple[str, ...]] = {}

    def is_known(self, token: str) -> bool:
        """Known words are never corrected: the gate's own, and everyday English ("sleeping" is
        not a slip for "seeping", nor "plate" for "palate")."""
        return (
            token in self.known
            or bool(self.stem_re and self.stem_re.match(token))
            or english.is_english(token)
        )

    def correct(self, token: str) -> tuple[str, ...]:
        cached = self.cache.get(token)
        if cached is not None:
            return cached
        result = self._correct(token)
        if len(self.cache) >= _FUZZY_CACHE_MAX:
            self.cache.clear()
        self.cache[token] = result
        return result

    def _correct(self, token: str) -> tuple[str, ...]:
        candidates = [token]
        squeezed = _REPEAT3.sub(r"\1\1", token)
        if squeezed != token:
            candidates.append(squeezed)
            single = _REPEAT2.sub(r"\1", squeezed)
            if single != squeezed:
                candidates.append(single)
        for candidate in candidates:
            if candidate in self.single:
                return self.single[candidate]
            if self.is_known(candidate):
                return (candidate,)
        best = squeezed
        if len(best) < _FUZZY_MIN_LENGTH or not best.isalpha():
            return (best,)
        bucket = self.buckets.get(best[0])
        if not bucket:
            return (best,)
        found = process.extractOne(best, bucket, scorer=fuzz.ratio, score_cutoff=self.cutoff)
        return (found[0],) if found else (best,)

    def tokens(self, text: str) -> list[str]:
        text = unicodedata.normalize("NFKC", text).casefold()
        if not text.isascii():
            text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
        text = _WILL.sub(r"\1 will", text)
        text = _NOUN_HAS.sub(r"\1 has", text)
        text = _NOUN_IS.sub(r"\1 is", text)
        text = _APOSTROPHE.sub("", text)
        text = _DECIMAL.sub(r"\1", text)
        text = text.replace("&", " and ")
        text = _DIGIT_LETTER.sub(" ", text)
        text = _WEAK.sub(" , ", text)
        text = _STRONG.sub(" . ", text)
        text = _JOINER.sub(" ", text)
        text = _SYMBOL.sub(" , ", text)  # emoji and other symbols separate like a comma
        out: list[str] = []
        for token in text.split():
            if token in (".", ","):
                if not out:
                    continue
                if out[-1] in (".", ","):
                    if token == ".":
                        out[-1] = "."
                    continue
                out.append(token)
                continue
            out.extend(self.correct(token))
        if self.multi:
            out = self._join_phrases(out)
        return out

    def _join_phrases(self, tokens: list[str]) -> list[str]:
        out: list[str] = []
        i = 0
        while i < len(tokens):
            if tokens[i] in self.multi_firsts:
                for length in self.multi_lengths:
                    key = tuple(tokens[i : i + length])
                    if key in self.multi:
                        out.extend(self.multi[key])
                        i += length
                        break
                else:
                    out.append(tokens[i])
                    i += 1
            else:
                out.append(tokens[i])
                i += 1
        return out


class _Message:
    """One normalised message, with the positions of its cues worked out on demand."""

    def __init__(self, gate: SafetyGate, tokens: list[str]) -> None:
        self.gate = gate
        self.tokens = tokens
        self.text = " " + " ".join(tokens) + " "
        self.token_at: dict[int, int] = {}
        position = 1
        sentence = 0
        self.sentence: list[int] = []  # the sentence number of each token
        for index, token in enumerate(tokens):
            self.token_at[position] = index
            position += len(token) + 1
            self.sentence.append(sentence)
            if token == ".":
                sentence += 1
        self._cues: dict[str, list[tuple[int, int]]] = {}

    # prefix counts (worked out only for messages that match something), so "is there a
    # breaker between a and b" is O(1)

    @cached_property
    def _breaks(self) -> list[int]:
        scope_end = self.gate.scope_end
        return _prefix(self.tokens, lambda t: t in (".", ",") or t in scope_end)

    @cached_property
    def _hard(self) -> list[int]:
        hard_end = self.gate.hard_end
        return _prefix(self.tokens, lambda t: t == "." or t in hard_end)

    @cached_property
    def _clause(self) -> list[int]:
        return _prefix(self.tokens, lambda t: t in (".", ",", "but"))

    @cached_property
    def _symptom(self) -> list[int]:
        return _prefix(self.tokens, self.gate.is_symptom_word)

    @cached_property
    def _or(self) -> list[int]:
        return _prefix(self.tokens, lambda t: t in ("or", "nor"))

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Token range [first, last+1) of a regex match span on self.text."""
        first = self.token_at[start + 1]
        return first, first + self.text.count(" ", start, end)

    def cues(self, name: str) -> list[tuple[int, int]]:
        found = self._cues.get(name)
        if found is None:
            regex = self.gate.cue_regex[name]
            found = [self.span(*m.span()) for m in regex.finditer(self.text)]
            self._cues[name] = found
        return found

    def negations(self) -> list[tuple[int, int]]:
        found = self._cues.get("_negations")
        if found is None:
            pseudo = {start for start, _ in self.cues("pseudo_negation")}
            found = [(s, e) for s, e in self.cues("negation") if s not in pseudo]
            self._cues["_negations"] = found
        return found

    def breaks(self, start: int, end: int) -> bool:
        return self._breaks[max(end, start)] - self._breaks[start] > 0

    def negated_before(self, start: int, window: int, through_symptoms: bool = False) -> bool:
        """A negation ends within `window` words before token `start`, in the same clause, and
        no other symptom comes between them (unless joined by "or": "no fever or chills"), or
        `through_symptoms`: a cue word is negated whatever stands between ("not like a normal
        bruise")."""
        for neg_start, neg_end in self.negations():
            if neg_end <= start and start - neg_end <= window and not self.breaks(neg_end, start):
                between_symptom = self._symptom[start] - self._symptom[neg_end] > 0
                if between_symptom and not through_symptoms and self._or[start] - self._or[neg_end] == 0:
                    continue
                return True
            if neg_start >= start:
                break
        return False

    def negated_in_gap(self, gap_start: int, gap_end: int) -> bool:
        """A negation inside a gap, right before the next word of the pattern ("lips aren't
        swelling", "face isnt really swollen")."""
        for neg_start, neg_end in self.negations():
            in_gap = gap_start <= neg_start < gap_end and gap_end - neg_end <= 2
            if in_gap and not self.breaks(neg_end, gap_end):
                return True
        return False

    def resolved_after(self, end: int, window: int) -> bool:
        for res_start, _ in self.cues("resolved"):
            if res_start < end or res_start - end > window:
                continue
            if self._hard[res_start] - self._hard[end] > 0:
                continue
            if self._symptom[res_start] - self._symptom[end] > 0:
                continue  # "redness spreading and the SWELLING has gone down"
            if any(n_end <= res_start and res_start - n_end <= 1 for _, n_end in self.negations()):
                continue  # "hasn't gone down"
            return True
        return False

    def present(self) -> list[tuple[int, int]]:
        """Present-time cues, without "can I still..." (which asks about the future)."""
        found = self._cues.get("_present")
        if found is None:
            pseudo = [(s, e) for s, e in self.cues("pseudo_present")]
            found = [(s, e) for s, e in self.cues("present") if not any(ps <= s < pe for ps, pe in pseudo)]
            self._cues["_present"] = found
        return found

    def present_in(self, sentence: int) -> bool:
        return any(self.sentence[s] == sentence for s, _ in self.present())

    def in_sentence(self, name: str, sentence: int) -> bool:
        return any(self.sentence[s] == sentence for s, _ in self.cues(name))

    def sentence_of(self, index: int) -> int:
        return self.sentence[min(index, len(self.sentence) - 1)]


class _AnchorIndex:
    """Patterns indexed by the words (or word* stems) they can start with.

    Running a couple of hundred regexes over every message would cost far more than looking up
    each of its words here; a pattern that can start anywhere (re:) is always run.
    """

    def __init__(self, compiler: _Compiler, patterns: list[tuple[int, _Pattern]]) -> None:
        self.patterns = patterns
        self.words: dict[str, list[int]] = {}
        self.stems: dict[str, list[int]] = {}
        self.always: list[int] = []
        for position, (_, pattern) in enumerate(patterns):
            anchors = compiler.anchors(pattern.source)
            if anchors is None:
                self.always.append(position)
                continue
            for word in anchors[0]:
                self.words.setdefault(word, []).append(position)
            for stem in anchors[1]:
                self.stems.setdefault(stem, []).append(position)
        self.stem_lengths = sorted({len(stem) for stem in self.stems})

    def candidates(self, tokens: list[str]) -> list[tuple[int, _Pattern]]:
        """The patterns that could match, in file order."""
        positions = set(self.always)
        words, stems, lengths = self.words, self.stems, self.stem_lengths
        for token in set(tokens):
            found = words.get(token)
            if found:
                positions.update(found)
            for length in lengths:
                if length > len(token):
                    break
                found = stems.get(token[:length])
                if found:
                    positions.update(found)
        return [self.patterns[p] for p in sorted(positions)]


def _prefix(tokens: list[str], test: Any) -> list[int]:
    counts = [0]
    for token in tokens:
        counts.append(counts[-1] + (1 if test(token) else 0))
    return counts


# --------------------------------------------------------------------------------------------
# The gate


_CUE_NAMES = (
    "negation",
    "pseudo_negation",
    "resolved",
    "past_time",
    "present",
    "hypothetical",
    "pseudo_hypothetical",
    "general_question",
    "course_question",
    "pseudo_present",
    "treated",
    "complaint",
    "untreated",
    "seeking",
)
# Flags that can describe why someone wants treatment (pain, a cold before an appointment) rather
# than a complication of it. Signs of infection, and every emergency, are routed regardless.
_REASONS_TO_BE_SEEN = frozenset({"severe_pain", "fever_or_unwell", "getting_worse"})
_CUE_WORD_LISTS = (
    "scope_end",
    "hypothetical_end",
    "first_person",
    "first_person_in_match",
    "other_people",
    "taught",
    "learning",
)
_TOP = (
    "advice",
    "seek_help_signs",
    "patient_note",
    "settings",
    "spellings",
    "macros",
    "cues",
    "red_flags",
    "advice_requests",
)
_TOP_OPTIONAL = ("vocabulary", "not_typos")


class SafetyGate:
    """Red-flag detection and the fixed safety texts, loaded from red_flags.yaml."""

    flags: tuple[RedFlag, ...]
    seek_help_signs: str
    signs_for: tuple[str, ...]  # FAQ entry ids whose answers end with seek_help_signs
    patient_note: str

    def __init__(self) -> None:  # use SafetyGate.load()
        self._last: tuple[str, _Message] | None = None

    # ---- loading

    @classmethod
    def load(cls, path: Path | None = None) -> SafetyGate:
        """Load and validate red_flags.yaml; any problem raises KnowledgeError naming file:line."""
        path = Path(path) if path is not None else DEFAULT_PATH
        data = load_yaml(path)
        problems = _Problems(path)
        gate = cls()
        gate._build(data, problems)
        problems.raise_if_any()
        return gate

    def _build(self, data: Any, problems: _Problems) -> None:
        if not _check_keys(problems, data, "file", _TOP, _TOP_OPTIONAL):
            problems.raise_if_any()
        # texts
        advice = data["advice"]
        self.advice_texts: dict[str, str] = {}
        if _check_keys(problems, advice, "advice", ("emergency", "urgent", "advice_request"), line=1):
            line = _line(advice)
            for key in ("emergency", "urgent", "advice_request"):
                self.advice_texts[key] = _text(problems, advice, key, f"advice.{key}", line)
        signs = data["seek_help_signs"]
        self.seek_help_signs = ""
        self.signs_for = ()
        if _check_keys(problems, signs, "seek_help_signs", ("text", "entries")):
            self.seek_help_signs = _text(problems, signs, "text", "seek_help_signs", _line(signs))
            entries = _str_list(problems, signs.get("entries"), "seek_help_signs.entries", _line(signs))
            self.signs_for = tuple(entries)
        note = data["patient_note"]
        if not isinstance(note, str) or not note.strip():
            problems.add(1, "patient_note", "must be non-empty text")
            note = ""
        self.patient_note = note.strip()

        # settings
        settings = data["settings"]
        defaults = _Settings()
        values: dict[str, Any] = {}
        if _check_keys(problems, settings, "settings", (), tuple(defaults.__dataclass_fields__)):
            for key, value in settings.items():
                if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                    problems.add(_line(settings), f"settings.{key}", "must be a non-negative number")
                elif key == "fuzzy_cutoff" and not 50 <= value <= 100:
                    problems.add(_line(settings), f"settings.{key}", "must be between 50 and 100")
                else:
                    values[key] = value if key == "fuzzy_cutoff" else int(value)
        self.settings = _Settings(**values)

        # spellings, vocabulary
        spellings: dict[str, str] = {}
        raw_spellings = data["spellings"]
        if not isinstance(raw_spellings, dict):
            problems.add(1, "spellings", "must be a mapping of word: replacement")
        else:
            for key, value in raw_spellings.items():
                k = " ".join(_APOSTROPHE.sub("", str(key).casefold()).split())
                v = " ".join(_APOSTROPHE.sub("", str(value).casefold()).split())
                if not k or not v or not all(_WORD.match(w) for w in (k + " " + v).split()):
                    problems.add(_line(raw_spellings), f"spellings.{key}", "must map words to words")
                    continue
                if k == v:
                    problems.add(_line(raw_spellings), f"spellings.{key}", "maps a word to itself")
                    continue
                spellings[k] = v
        vocabulary = _word_list(problems, data.get("vocabulary", []), "vocabulary", allow_empty=True)
        not_typos = _word_list(problems, data.get("not_typos", []), "not_typos", allow_empty=True)

        # macros
        macros = data["macros"]
        if not isinstance(macros, dict):
            problems.add(1, "macros", "must be a mapping of NAME: [phrases]")
            macros = {}
        for name, entries in macros.items():
            if not re.match(r"[A-Z][A-Z0-9_]*\Z", str(name)):
                problems.add(_line(macros), f"macros.{name}", "macro names are UPPER_CASE")
            _str_list(problems, entries, f"macros.{name}", _line(macros))
        compiler = _Compiler(problems, {k: v for k, v in macros.items() if isinstance(v, list)}, spellings)
        compiler.line = _line(macros)
        for name in macros:
            if isinstance(macros[name], list):
                compiler.where = f"macros.{name}"
                compiler.macro(str(name))

        # cues
        cues = data["cues"]
        self.cue_regex: dict[str, re.Pattern[str]] = {}
        cue_words: dict[str, frozenset[str]] = {}
        if _check_keys(problems, cues, "cues", _CUE_NAMES + _CUE_WORD_LISTS):
            compiler.line = _line(cues)
            for name in _CUE_NAMES:
                compiler.where = f"cues.{name}"
                entries = _str_list(problems, cues[name], f"cues.{name}", _line(cues))
                regex = compiler.alternation(entries) if entries else None
                if regex is not None:
                    self.cue_regex[name] = regex
            for name in _CUE_WORD_LISTS:
                cue_words[name] = frozenset(
                    _word_list(problems, cues[name], f"cues.{name}", line=_line(cues))
                )
        self.scope_end = cue_words.get("scope_end", frozenset())
        # what a "went down" after the symptom may not reach across (besides a full stop and
        # another symptom word): "lips swelled up, but it's gone down now" is resolved
        self.hard_end = self.scope_end - {"and", "now", "then", "so", "also", "plus", "but"}
        self.hypothetical_end = cue_words.get("hypothetical_end", frozenset())
        self.first_person = cue_words.get("first_person", frozenset())
        self.first_person_in_match = cue_words.get("first_person_in_match", frozenset())
        self.other_people = cue_words.get("other_people", frozenset())
        self.taught = cue_words.get("taught", frozenset())
        self.learning = cue_words.get("learning", frozenset())

        # red flags
        flags: list[RedFlag] = []
        raw_flags = data["red_flags"]
        if not isinstance(raw_flags, list) or not raw_flags:
            problems.add(1, "red_flags", "must be a non-empty list")
            raw_flags = []
        seen: dict[str, int] = {}
        flag_words: set[str] = set()
        flag_refs: set[str] = set()
        for index, raw in enumerate(raw_flags):
            where = f"red_flags[{index}]"
            line = _line(raw)
            flag_id = raw.get("id") if isinstance(raw, dict) else None
            if isinstance(flag_id, str) and flag_id:
                where = flag_id
            if not _check_keys(problems, raw, where, ("id", "level", "label", "patterns"), ("note",)):
                continue
            if not isinstance(flag_id, str) or not _ID.match(flag_id):
                problems.add(line, where, f"id {flag_id!r} must be lower_snake_case")
                continue
            if flag_id in seen:
                problems.add(line, where, f"duplicate id (first defined at line {seen[flag_id]})")
                continue
            seen[flag_id] = line
            level = raw["level"]
            if level not in LEVELS:
                problems.add(line, where, f"level {level!r} must be one of {', '.join(LEVELS)}")
            label = _text(problems, raw, "label", where, line)
            compiler.sink, compiler.sink_refs = flag_words, flag_refs
            patterns = self._patterns(problems, compiler, raw["patterns"], where, line)
            compiler.sink = compiler.sink_refs = None
            if level in LEVELS and label and patterns:
                flags.append(RedFlag(flag_id, level, label, patterns))
        self.flags = tuple(flags)

        # advice requests
        requests: list[_Pattern] = []
        raw_requests = data["advice_requests"]
        if not isinstance(raw_requests, list) or not raw_requests:
            problems.add(1, "advice_requests", "must be a non-empty list")
            raw_requests = []
        seen = {}
        for index, raw in enumerate(raw_requests):
            where = f"advice_requests[{index}]"
            line = _line(raw)
            request_id = raw.get("id") if isinstance(raw, dict) else None
            if isinstance(request_id, str) and request_id:
                where = request_id
            if not _check_keys(problems, raw, where, ("id", "patterns"), ("label", "unless")):
                continue
            if not isinstance(request_id, str) or not _ID.match(request_id):
                problems.add(line, where, f"id {request_id!r} must be lower_snake_case")
                continue
            if request_id in seen:
                problems.add(line, where, f"duplicate id (first defined at line {seen[request_id]})")
                continue
            seen[request_id] = line
            unless = None
            if "unless" in raw:
                compiler.line, compiler.where = line, where
                entries = _str_list(problems, raw["unless"], f"{where}.unless", line)
                unless = compiler.alternation(entries) if entries else None
            for pattern in self._patterns(problems, compiler, raw["patterns"], where, line):
                requests.append(
                    _Pattern(pattern.source, pattern.regex, pattern.gaps, unless or pattern.unless)
                )
        self.requests = tuple(requests)

        # the quick test: which patterns could match, given the words a message contains?
        self._flag_index = _AnchorIndex(
            compiler, [(i, p) for i, flag in enumerate(self.flags) for p in flag.patterns]
        )
        self._request_index = _AnchorIndex(compiler, [(0, p) for p in self.requests])

        # words for the normaliser
        cue_vocab = set().union(*cue_words.values()) if cue_words else set()
        used = compiler.collected(flag_words, flag_refs)
        self.symptom_words = frozenset(
            w for w in used if len(w) >= 4 and w.isalpha() and w not in _NOT_SYMPTOMS
        )
        self.symptom_stems = tuple(
            sorted(w[:-1] for w in used if w.endswith("*") and len(w) >= 5 and w[:-1] not in _NOT_SYMPTOMS)
        )
        self._symptom_stem_re = (
            re.compile("(?:" + "|".join(map(re.escape, self.symptom_stems)) + ")")
            if self.symptom_stems
            else None
        )
        targets = {w for w in compiler.words | compiler.stems if w.isalpha()} | set(vocabulary)
        targets |= {w for v in spellings.values() for w in v.split()}
        known = targets | set(not_typos) | cue_vocab | set(spellings)
        self.normaliser = _Normaliser(spellings, targets, known, compiler.stems, self.settings.fuzzy_cutoff)

    def _patterns(
        self, problems: _Problems, compiler: _Compiler, raw: Any, where: str, line: int
    ) -> tuple[_Pattern, ...]:
        if not isinstance(raw, list) or not raw:
            problems.add(line, where, "patterns must be a non-empty list")
            return ()
        compiler.line, compiler.where = line, where
        out: list[_Pattern] = []
        for item in raw:
            unless = unless_before = None
            if isinstance(item, dict):
                item_line = _line(item, line)
                if not _check_keys(problems, item, where, ("match",), ("unless", "unless_before"), item_line):
                    continue
                compiler.line = item_line
                source = item["match"]
                sinks = compiler.sink, compiler.sink_refs
                compiler.sink = compiler.sink_refs = None  # unless words are not symptom words
                for key in ("unless", "unless_before"):
                    if key in item:
                        entries = _str_list(problems, item[key], f"{where}.{key}", item_line)
                        compiled = compiler.alternation(entries) if entries else None
                        if key == "unless":
                            unless = compiled
                        else:
                            unless_before = compiled
                compiler.sink, compiler.sink_refs = sinks
            else:
                source = item
                compiler.line = line
            if not isinstance(source, str) or not source.strip():
                problems.add(compiler.line, where, f"pattern {source!r} must be non-empty text")
                continue
            pattern = compiler.pattern(source)
            if pattern is not None:
                out.append(_Pattern(source, pattern.regex, pattern.gaps, unless, unless_before))
        compiler.line = line
        return tuple(out)

    def is_symptom_word(self, token: str) -> bool:
        if token in self.symptom_words:
            return True
        return bool(self._symptom_stem_re and self._symptom_stem_re.match(token))

    # ---- checking

    def _message(self, text: str) -> _Message:
        last = self._last
        if last is not None and last[0] == text:
            return last[1]
        message = _Message(self, self.normaliser.tokens(text))
        self._last = (text, message)
        return message

    def check(self, text: str) -> SafetyFinding | None:
        """The red flags in one message, or None when there are none."""
        if not text or not text.strip():
            return None
        message = self._message(text)
        if not message.tokens:
            return None
        present: set[int] = set()
        for flag_index, pattern in self._flag_index.candidates(message.tokens):
            if flag_index in present:
                continue
            for match in pattern.regex.finditer(message.text):
                if self._counts(message, pattern, match):
                    present.add(flag_index)
                    break
        if not present:
            return None
        found = [flag for index, flag in enumerate(self.flags) if index in present]
        level: Level = "emergency" if any(f.level == "emergency" for f in found) else "urgent"
        if {f.id for f in found} <= _REASONS_TO_BE_SEEN and self._reason_for_treatment(message):
            return None
        return SafetyFinding(
            level=level,
            flags=tuple(f.id for f in found),
            labels=tuple(f.label for f in found),
            advice=self.advice_texts[level],
        )

    def check_follow_up(self, before: str, text: str) -> SafetyFinding | None:
        """The red flags of a message read after the person's message before it ("does meso
        cause hives? I had my face done monday" then "got them on my arms now, itchy"), when
        neither has any alone. The first must tell of a treatment had, and the later one of a
        complaint, not ask about the course: "thanks, booking in now" after "does it cause
        swelling of the lips?" reports nothing. A message routed already is not routed again by
        what follows it."""
        if not before.strip() or not text.strip():
            return None
        later = self._message(text)
        if not later.cues("complaint") or later.cues("course_question"):
            return None
        if not self._treated(self._message(before)) or self.check(before) is not None:
            return None
        return self.check(f"{before}{FOLLOW_UP_JOIN}{text}")

    def tells_of_treatment(self, text: str) -> bool:
        """Whether a message tells of a treatment had ("had scalp meso 3 weeks ago") rather than
        asks about one ("how far apart are the injection points?")."""
        return bool(text.strip()) and "?" not in text and self._treated(self._message(text))

    def _reason_for_treatment(self, message: _Message) -> bool:
        """Pain or illness someone wants treated, or that comes before any treatment ("tennis elbow
        is killing me, it's been months, do you treat that?"), is not a complication: no treatment
        is mentioned, a long-standing condition or a treatment still to come is, and they ask to
        be seen. Only for the flags in _REASONS_TO_BE_SEEN."""
        return bool(message.cues("untreated") and message.cues("seeking") and not self._treated(message))

    def _treated(self, message: _Message) -> bool:
        """Whether the message refers to a treatment already had ("haven't had any treatment yet"
        does not)."""
        return any(not message.negated_before(start, 2) for start, _ in message.cues("treated"))

    def after_treatment(self, text: str, treated: bool = False) -> bool:
        """Whether a message tells how someone is after a treatment ("day 9 and the spot where she
        injected still feels odd"), in whatever words: the net under the red flags. Fresh messages
        describe symptoms in ways no pattern list foresees, so a reply that is not urgent advice
        still ends with the warning signs when this holds. Course questions are left alone.
        `treated`: the conversation is already about a treatment had ("still itchy", just after
        the aftercare answer), so the message need not say so again."""
        if not text or not text.strip():
            return False
        message = self._message(text)
        return bool(
            message.tokens
            and (treated or self._treated(message))
            and message.cues("complaint")
            and not message.cues("course_question")
        )

    def advice_request(self, text: str) -> str | None:
        """The "a practitioner must advise" reply to a request for a diagnosis, drug or dose."""
        if not text or not text.strip():
            return None
        message = self._message(text)
        if not message.tokens:
            return None
        for _, pattern in self._request_index.candidates(message.tokens):
            for match in pattern.regex.finditer(message.text):
                start, end = message.span(*match.span())
                if message.negated_before(start, self.settings.negation_window):
                    continue
                if pattern.unless and self._cancelled(message, pattern.unless, start, anywhere=True):
                    continue
                return self.advice_texts["advice_request"]
        return None

    def _counts(self, message: _Message, pattern: _Pattern, match: re.Match[str]) -> bool:
        """Whether this occurrence of a symptom is a present, first-hand report."""
        settings = self.settings
        start, end = message.span(*match.span())
        gaps = []
        for name in pattern.gaps:
            if match.group(name):
                gaps.append(message.span(*match.span(name)))
        if message.negated_before(start, settings.negation_window):
            return False
        if any(message.negated_in_gap(s, e) for s, e in gaps):
            return False
        if message.resolved_after(end, settings.resolution_window):
            return False
        if pattern.unless and self._cancelled(message, pattern.unless, start, anywhere=True):
            return False
        if pattern.unless_before and self._cancelled(message, pattern.unless_before, start, anywhere=False):
            return False
        sentence = message.sentence_of(start)
        if message.in_sentence("past_time", sentence) and not message.present_in(sentence):
            return False
        if self._hypothetical(message, start, sentence):
            return False
        return not self._general_question(message, start, end, gaps, sentence)

    def _cancelled(self, message: _Message, regex: re.Pattern[str], start: int, anywhere: bool) -> bool:
        sentence = message.sentence_of(start)
        for m in regex.finditer(message.text):
            cue_start, cue_end = message.span(*m.span())
            if message.sentence_of(cue_start) != sentence:
                continue
            if not anywhere and cue_end > start:
                continue
            if message.negated_before(cue_start, 3, through_symptoms=True):
                continue  # "not like a bruise"
            return True
        return False

    def _hypothetical(self, message: _Message, start: int, sentence: int) -> bool:
        pseudo = {s for s, _ in message.cues("pseudo_hypothetical")}
        pseudo |= {s + 1 for s in pseudo}  # "as if": the cue "if" starts one word later
        tokens = message.tokens
        for cue_start, cue_end in message.cues("hypothetical"):
            if cue_start in pseudo or cue_start >= start:
                continue
            if start - cue_end > self.settings.hypothetical_window:
                continue
            if message.sentence_of(cue_start) != sentence:
                continue
            if message._clause[start] - message._clause[cue_end] > 0:
                continue
            if any(t in self.hypothetical_end for t in tokens[cue_end + 2 : start]):
                continue
            return True
        return False

    def _general_question(
        self,
        message: _Message,
        start: int,
        end: int,
        gaps: list[tuple[int, int]],
        sentence: int,
    ) -> bool:
        general = message.cues("general_question")
        # A course word makes only its own sentence a question about the course: in "Delegate,
        # week 2 of practising. Model went floppy", the second sentence reports.
        course = [cue for cue in message.cues("course_question") if message.sentence_of(cue[0]) == sentence]
        if (not general or general[0][0] >= start) and not course:
            return False
        if message.present():
            return False  # "...signs of infection? it's oozing now"
        tokens = message.tokens
        for s, e in gaps:
            if any(t in self.first_person_in_match for t in tokens[s:e]):
                return False  # "lips ARE swelling"
        first = max(start - self.settings.first_person_before, 0)
        last = min(end + self.settings.first_person_after, len(tokens))
        # "could meso on MY neck cause numbness?": a word inside the question names where, not who
        asking = {index for s, e in general if s < start for index in range(s, e)}
        for index in range(first, last):
            token = tokens[index]
            if message.sentence[index] != sentence or token not in self.first_person or index in asking:
                continue
            if token == "my" and index + 1 < len(tokens) and tokens[index + 1] in self.other_people:
                continue
            if token == "me" and index and tokens[index - 1] in self.taught:
                continue  # "will the course teach me how to recognise occlusion"
            if token == "i" and index + 1 < len(tokens) and tokens[index + 1] in self.learning:
                continue  # "how do I recognise occlusion early?"
            return False
        return True


def _word_list(
    problems: _Problems, value: Any, where: str, line: int = 1, allow_empty: bool = False
) -> list[str]:
    if allow_empty and value == []:
        return []
    words = []
    for item in _str_list(problems, value, where, line):
        word = _APOSTROPHE.sub("", item.casefold())
        if not _WORD.match(word):
            problems.add(line, where, f"{item!r} must be a single word")
            continue
        words.append(word)
    return words
