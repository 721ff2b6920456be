"""Load the curated knowledge (org.yaml, faq.yaml, courses.yaml) into typed, validated objects.

The YAML is edited by hand, so every mistake must surface at start-up rather than as a wrong
answer in a chat: each problem names the file, the line, the entry and what is wrong, and all of
them are reported together so one run is enough to fix a file.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, cast

from knowledge.model import AUDIENCES, Audience, Course, Entry, Gap, Knowledge, Source
from knowledge.yamlfile import KnowledgeError, LineDict, load_yaml

KNOWLEDGE_DIR = Path(__file__).resolve().parent
ORG_FILE = "org.yaml"
FAQ_FILE = "faq.yaml"
COURSES_FILE = "courses.yaml"
GAPS_FILE = "gaps.yaml"
MAX_ANSWER_CHARS = 1000  # Telegram allows 4096; anything near this is no longer a chat answer
MAX_RELATED = 3  # follow-up buttons under one answer

_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_FACT_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")

# Field name -> required? A name not listed is a typo ("phrasing:") and reported as unknown.
_ORG_FIELDS = dict.fromkeys(("sources", "facts"), True)
_SOURCE_FIELDS = dict.fromkeys(("title", "file"), True)
_ENTRY_FIELDS = dict.fromkeys(
    ("id", "audience", "question", "phrasings", "keywords", "answer", "source"), True
) | {"related": False}
_COURSE_FIELDS = dict.fromkeys(("id", "name", "summary", "facts", "source", "entry_id"), True) | {
    "after_booking": False
}
_GAP_FIELDS = {**dict.fromkeys(("id", "topic", "question", "phrasings", "keywords"), True), "personal": False}

Report = Callable[[str], None]


class _Problems:
    """Collects problems as `file:line: what: problem` lines, so all are reported at once.

    They are sorted by file (org, faq, courses) and line, whatever order the checks ran in.
    """

    _FILES = (ORG_FILE, FAQ_FILE, COURSES_FILE)

    def __init__(self) -> None:
        self._found: list[tuple[int, int, str]] = []

    def add(self, path: Path, line: int | None, text: str) -> None:
        order = self._FILES.index(path.name) if path.name in self._FILES else len(self._FILES)
        self._found.append((order, line or 0, text))

    def reporter(self, path: Path, line: int | None, what: str = "") -> Report:
        where = f"{path}:{line}" if line else str(path)
        prefix = f"{where}: {what}: " if what else f"{where}: "
        return lambda problem: self.add(path, line, prefix + problem)

    @property
    def lines(self) -> list[str]:
        return [text for _, _, text in sorted(self._found, key=lambda found: found[:2])]


def _line(node: Any) -> int | None:
    return node.line if isinstance(node, LineDict) else None


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _normal(text: str) -> str:
    """Phrasings that differ only in case, spacing or punctuation are duplicates."""
    return " ".join(re.sub(r"[^\w£%]+", " ", text.casefold()).split())


class _Renderer:
    """Fills {fact} placeholders and remembers which facts were used, so unused ones show up."""

    def __init__(self, facts: Mapping[str, str] | None) -> None:
        self.facts = facts  # None when org.yaml itself is broken: names cannot be checked then
        self.used: set[str] = set()

    def render(self, text: str, field: str, report: Report) -> str:
        for name in _PLACEHOLDER.findall(text):
            if not _FACT_NAME.match(name):
                report(f"{field}: malformed placeholder {{{name}}}: use {{fact_name}}")
            elif self.facts is not None and name not in self.facts:
                hint = _did_you_mean(name, self.facts)
                report(f"{field}: unknown fact {{{name}}}, not in {ORG_FILE} facts{hint}")
            else:
                self.used.add(name)
        rest = _PLACEHOLDER.sub("", text)
        if "{" in rest or "}" in rest:
            report(f"{field}: stray brace: only {{fact_name}} placeholders may use braces")
        if self.facts is None:
            return text
        facts = self.facts
        return _PLACEHOLDER.sub(lambda m: facts.get(m.group(1), m.group(0)), text)


def _check_fields(item: Mapping[Any, Any], fields: Mapping[str, bool], report: Report) -> None:
    for key in item:
        if key not in fields:
            report(f"unknown field {key!r}{_did_you_mean(str(key), fields)}")
    for key, required in fields.items():
        if required and key not in item:
            report(f"missing required field {key!r}")


def _text(item: Mapping[Any, Any], key: str, report: Report) -> str:
    """A required non-empty string ('' when missing, already reported by _check_fields)."""
    value = item.get(key)
    if value is None:
        if key in item:
            report(f"{key}: is empty")
        return ""
    if not isinstance(value, str):
        report(f"{key}: must be text, got {type(value).__name__} {value!r}")
        return ""
    if not value.strip():
        report(f"{key}: is empty")
    return value.strip()


def _texts(item: Mapping[Any, Any], key: str, report: Report, required: bool = True) -> list[str]:
    """A list of non-empty strings, with case- and punctuation-insensitive duplicates reported."""
    value = item.get(key)
    if value is None:
        if required and key in item:
            report(f"{key}: is empty")
        return []
    if not isinstance(value, list):
        report(f"{key}: must be a list, got {type(value).__name__}")
        return []
    if required and not value:
        report(f"{key}: is empty")
    out: list[str] = []
    seen: set[str] = set()
    for index, element in enumerate(value, 1):
        if not isinstance(element, str) or not element.strip():
            hint = "" if isinstance(element, str) else " (quote it: YAML reads it as a value)"
            report(f"{key}: item {index} must be non-empty text, got {element!r}{hint}")
            continue
        if _normal(element) in seen:
            report(f"{key}: duplicate {element!r}")
            continue
        seen.add(_normal(element))
        out.append(element.strip())
    return out


def _id(item: Mapping[Any, Any], report: Report) -> str:
    value = _text(item, "id", report)
    if value and not _ID.match(value):
        report(f"id: {value!r} must be kebab-case (lowercase words joined by '-')")
    return value


def _load_list(path: Path, problems: _Problems) -> list[Any]:
    try:
        data = load_yaml(path)
    except KnowledgeError as exc:
        problems.add(path, 0, str(exc))
        return []
    if data is None:
        return []
    if not isinstance(data, list):
        problems.reporter(path, _line(data))("must be a list of entries")
        return []
    return data


def _load_org(path: Path, problems: _Problems) -> tuple[dict[str, str], dict[str, Source], int | None] | None:
    """Facts, sources and the facts mapping's line; None when the file cannot be used at all."""
    try:
        data = load_yaml(path)
    except KnowledgeError as exc:
        problems.add(path, 0, str(exc))
        return None
    if not isinstance(data, LineDict):
        problems.reporter(path, None)("must be a mapping with 'sources' and 'facts'")
        return None
    _check_fields(data, _ORG_FIELDS, problems.reporter(path, data.line))

    sources: dict[str, Source] = {}
    raw_sources = data.get("sources")
    if raw_sources is not None and not isinstance(raw_sources, LineDict):
        problems.reporter(path, data.line)("sources: must be a mapping of id to {title, file}")
        raw_sources = None
    for source_id, raw in (raw_sources or {}).items():
        report = problems.reporter(path, _line(raw) or _line(raw_sources), f"source {source_id!r}")
        if not isinstance(source_id, str) or not _ID.match(source_id):
            report("id must be kebab-case")
            continue
        if not isinstance(raw, LineDict):
            report("must be a mapping with 'title' and 'file'")
            continue
        _check_fields(raw, _SOURCE_FIELDS, report)
        source = Source(source_id, _text(raw, "title", report), _text(raw, "file", report))
        if "/" in source.file or "\\" in source.file:
            report("file: give the file name only; the bot never reads the document")
        sources[source_id] = source

    facts: dict[str, str] = {}
    raw_facts = data.get("facts")
    facts_line = _line(raw_facts) or data.line
    if raw_facts is not None and not isinstance(raw_facts, LineDict):
        problems.reporter(path, data.line)("facts: must be a mapping of name to text")
        raw_facts = None
    for name, value in (raw_facts or {}).items():
        report = problems.reporter(path, facts_line, f"fact {name!r}")
        if not isinstance(name, str) or not _FACT_NAME.match(name):
            report("name must be snake_case (lowercase letters, digits, '_')")
        elif isinstance(value, bool) or not isinstance(value, str | int):
            report(f"must be text (quote it), got {type(value).__name__} {value!r}")
        elif not str(value).strip():
            report("is empty")
        elif "{" in str(value) or "}" in str(value):
            report("must not contain braces")
        else:
            facts[name] = str(value).strip()
    return facts, sources, facts_line


def load_knowledge(directory: Path | None = None) -> Knowledge:
    """Read and validate the three YAML files; raise KnowledgeError listing every problem."""
    directory = KNOWLEDGE_DIR if directory is None else Path(directory)
    org_path = directory / ORG_FILE
    problems = _Problems()
    org = _load_org(org_path, problems)
    facts, sources, facts_line = org if org is not None else ({}, {}, None)
    context = _Context(problems, _Renderer(facts if org is not None else None), sources, org is not None)
    entries = _load_entries(directory / FAQ_FILE, context)
    courses = _load_courses(directory / COURSES_FILE, context, {entry.id for entry in entries})
    gaps = _load_gaps(directory / GAPS_FILE, context, {entry.id for entry in entries})
    if org is not None:
        for name in facts:
            if name not in context.renderer.used:
                problems.reporter(org_path, facts_line, f"fact {name!r}")(
                    "never used: no answer or course has this {placeholder}"
                )
    if problems.lines:
        raise KnowledgeError("\n".join(problems.lines))
    return Knowledge(
        facts=MappingProxyType(dict(facts)),
        sources=MappingProxyType(dict(sources)),
        entries=tuple(entries),
        courses=tuple(courses),
        gaps=tuple(gaps),
    )


class _Context:
    """What checking faq.yaml and courses.yaml needs from org.yaml, and where problems go."""

    def __init__(
        self, problems: _Problems, renderer: _Renderer, sources: Mapping[str, Source], org_ok: bool
    ) -> None:
        self.problems = problems
        self.renderer = renderer
        self.sources = sources
        self.org_ok = org_ok  # when org.yaml is broken, unknown sources would only be noise

    def items(self, path: Path, kind: str) -> Iterator[tuple[LineDict, Report]]:
        """Each mapping in the file's list, with a reporter naming its line and id."""
        for index, raw in enumerate(_load_list(path, self.problems), 1):
            if not isinstance(raw, LineDict):
                self.problems.reporter(path, _line(raw), f"{kind} #{index}")("must be a mapping")
                continue
            raw_id = raw.get("id")
            label = f"{kind} {raw_id!r}" if isinstance(raw_id, str) and raw_id else f"{kind} #{index}"
            yield raw, self.problems.reporter(path, raw.line, label)

    def source(self, item: Mapping[Any, Any], report: Report) -> str:
        source = _text(item, "source", report)
        if source and self.org_ok and source not in self.sources:
            report(f"source: unknown source {source!r}{_did_you_mean(source, self.sources)}")
        return source


def _load_entries(path: Path, context: _Context) -> list[Entry]:
    entries: list[Entry] = []
    reporters: list[Report] = []
    seen_ids: set[str] = set()
    phrasing_owner: dict[str, str] = {}
    render = context.renderer.render
    for raw, report in context.items(path, "entry"):
        _check_fields(raw, _ENTRY_FIELDS, report)
        entry_id = _id(raw, report)
        if entry_id in seen_ids:
            report(f"duplicate id {entry_id!r}")
        seen_ids.add(entry_id)
        audience = _text(raw, "audience", report)
        if audience and audience not in AUDIENCES:
            report(f"audience: unknown audience {audience!r}, use one of {', '.join(AUDIENCES)}")
        question = render(_text(raw, "question", report), "question", report)
        phrasings = [render(text, "phrasings", report) for text in _texts(raw, "phrasings", report)]
        for phrasing in phrasings:
            key = _normal(phrasing)
            if key == _normal(question):
                report(f"phrasings: {phrasing!r} repeats the question")
            elif phrasing_owner.setdefault(key, entry_id) != entry_id:
                owner = phrasing_owner[key]
                report(f"phrasings: {phrasing!r} is also a phrasing of entry {owner!r}")
        keywords = _texts(raw, "keywords", report)
        answer = render(_text(raw, "answer", report), "answer", report)
        if len(answer) > MAX_ANSWER_CHARS:
            report(f"answer: {len(answer)} characters, more than {MAX_ANSWER_CHARS}")
        source = context.source(raw, report)
        related = _texts(raw, "related", report, required=False)
        if len(related) > MAX_RELATED:
            report(f"related: {len(related)} ids, at most {MAX_RELATED} follow-up buttons fit")
        audience_ = cast(Audience, audience)  # checked above; a problem fails the load
        entries.append(
            Entry(
                id=entry_id,
                audience=audience_,
                question=question,
                phrasings=tuple(phrasings),
                answer=answer,
                source=source,
                related=tuple(related),
                keywords=tuple(keywords),
            )
        )
        reporters.append(report)
    for entry, report in zip(entries, reporters, strict=True):
        for target in entry.related:
            if target == entry.id:
                report(f"related: {target!r} is the entry itself")
            elif target not in seen_ids:
                report(f"related: no entry {target!r}{_did_you_mean(target, seen_ids)}")
    return entries


def _load_gaps(path: Path, context: _Context, entry_ids: set[str]) -> list[Gap]:
    gaps: list[Gap] = []
    seen: set[str] = set()
    for raw, report in context.items(path, "gap"):
        _check_fields(raw, _GAP_FIELDS, report)
        gap_id = _id(raw, report)
        if gap_id in seen or gap_id in entry_ids:
            report(f"duplicate id {gap_id!r} (ids are shared with faq.yaml)")
        seen.add(gap_id)
        gaps.append(
            Gap(
                id=gap_id,
                topic=_text(raw, "topic", report),
                question=_text(raw, "question", report),
                phrasings=tuple(_texts(raw, "phrasings", report)),
                keywords=tuple(_texts(raw, "keywords", report)),
                personal=_flag(raw, "personal", report),
            )
        )
    return gaps


def _flag(item: Mapping[Any, Any], key: str, report: Report) -> bool:
    value = item.get(key, False)
    if not isinstance(value, bool):
        report(f"{key}: must be true or false")
        return False
    return value


def _load_courses(path: Path, context: _Context, entry_ids: set[str]) -> list[Course]:
    courses: list[Course] = []
    seen_ids: set[str] = set()
    render = context.renderer.render
    for raw, report in context.items(path, "course"):
        _check_fields(raw, _COURSE_FIELDS, report)
        course_id = _id(raw, report)
        if course_id in seen_ids:
            report(f"duplicate id {course_id!r}")
        seen_ids.add(course_id)
        name = render(_text(raw, "name", report), "name", report)
        blurb = render(_text(raw, "summary", report), "summary", report)
        if "\n" in blurb:
            report("summary: must be one line")
        facts: list[tuple[str, str]] = []
        raw_facts = raw.get("facts")
        if not isinstance(raw_facts, dict) or not raw_facts:
            if "facts" in raw:
                report("facts: must be a non-empty mapping of label to value")
            raw_facts = {}
        for label, value in raw_facts.items():
            if not isinstance(label, str) or not isinstance(value, str) or not value.strip():
                report(f"facts: {label!r} must map a text label to non-empty text")
                continue
            facts.append((label, render(value.strip(), f"facts: {label}", report)))
        source = context.source(raw, report)
        entry_ref = _text(raw, "entry_id", report)
        if entry_ref and entry_ref not in entry_ids:
            report(f"entry_id: no entry {entry_ref!r}{_did_you_mean(entry_ref, entry_ids)}")
        after = (
            render(_text(raw, "after_booking", report), "after_booking", report)
            if "after_booking" in raw
            else ""
        )
        courses.append(Course(course_id, name, blurb, tuple(facts), source, entry_ref, after))
    return courses


def summary(knowledge: Knowledge) -> str:
    """What `python -m bot check-knowledge` prints: enough to see an edit landed."""
    by_audience = Counter(entry.audience for entry in knowledge.entries)
    audiences = ", ".join(f"{name} {by_audience[name]}" for name in AUDIENCES)
    phrasings = sum(len(entry.phrasings) for entry in knowledge.entries)
    return "\n".join(
        [
            f"entries:   {len(knowledge.entries)} ({audiences})",
            f"phrasings: {phrasings}",
            f"courses:   {len(knowledge.courses)}",
            f"sources:   {len(knowledge.sources)}",
            f"facts:     {len(knowledge.facts)}",
            f"gaps:      {len(knowledge.gaps)} topics the documents do not answer",
        ]
    )
