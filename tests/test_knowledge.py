"""The curated knowledge: the shipped YAML loads, states only what the academy's documents say, and
the loader catches every kind of curator mistake, naming the file, line and entry."""

from __future__ import annotations

import copy
import functools
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.brain import Brain
from knowledge.loader import KNOWLEDGE_DIR, load_knowledge, summary
from knowledge.model import Knowledge
from knowledge.yamlfile import KnowledgeError

REQUIRED_IDS = [
    "pain-course-overview",
    "pain-course-duration",
    "pain-course-price",
    "pain-course-class-size",
    "pain-course-location",
    "pain-course-hours",
    "pain-course-format",
    "pain-course-whats-included",
    "pain-course-learning-pack-contents",
    "pain-course-learning-pack-delivery",
    "pain-course-certificate",
    "pain-course-evidence",
    "pain-course-audience",
    "membership-discount",
    "membership-price",
    "training-overview",
    "training-backgrounds",
    "training-format",
    "training-syllabus",
    "what-is-mesotherapy",
    "mesotherapy-history",
    "mesotherapy-ingredients",
    "mesotherapy-uses",
    "treatment-consultation",
    "treatment-duration",
    "treatment-procedure",
    "treatment-pain",
    "aftercare",
    "side-effects",
    "results-timing",
    "sessions-maintenance",
    "pain-definition",
    "acute-vs-chronic-pain",
    "nociceptive-vs-neuropathic",
    "pain-standard-of-care",
    "nsaids-first-line",
    "nsaid-risks",
    "mesotherapy-vs-nsaids",
    "technique-needle",
    "technique-angle",
    "technique-volume",
    "technique-spacing",
    "intradermal-vs-intramuscular",
    "intradermal-vs-subcutaneous",
    "corticosteroid-comparison",
    "pain-protocol-indications",
]

PATIENT_TOPICS = [
    "what-is-mesotherapy",
    "mesotherapy-history",
    "mesotherapy-ingredients",
    "mesotherapy-uses",
    "treatment-consultation",
    "treatment-duration",
    "treatment-procedure",
    "treatment-pain",
    "aftercare",
    "side-effects",
    "results-timing",
    "sessions-maintenance",
]

# Every number the two source documents state ("GBP600", "Max 4 delegates", "22 Harley Street",
# "Suite 8", "W1G 9PL", "09:00-17:00", "20%", "GBP150", "GBP100", "GBP120", "2025", "2026",
# "1950s", "30 minutes", "30-45 degree", "0.10-0.20 mL", "2 or 3 cm", "4 mm (27 gauge)",
# "13 mm (30 or 32 gauge)", "10 mm", "1 full day"). A number in an answer that is not here was
# invented.
SOURCE_NUMBERS = {
    "1", "4", "600", "22", "8", "9", "09:00", "17:00", "20", "150", "100", "120", "2025", "2026",
    "1950", "30", "45", "0.10", "0.20", "2", "3", "13", "27", "32", "10",
}  # fmt: skip
NUMBER_WORDS = {
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "twenty", "thirty", "forty", "fifty",
    "hundred", "thousand", "million", "dozen",
}  # fmt: skip
SOURCE_NUMBER_WORDS = {"one", "three", "six", "twelve", "hundred"}
SOURCES_DIR = Path("/work/shared/sources")  # only to re-check SOURCE_NUMBERS where available


@pytest.fixture(scope="module")
def knowledge() -> Knowledge:
    return load_knowledge()


def _displayed(knowledge: Knowledge) -> list[str]:
    """Every text a user can see: questions, answers, and the courses /courses lists."""
    texts = [text for entry in knowledge.entries for text in (entry.question, entry.answer)]
    for course in knowledge.courses:
        texts += [course.name, course.summary]
        texts += [f"{label}: {value}" for label, value in course.facts]
    return texts


# -- the shipped knowledge ------------------------------------------------------------------------


def test_shipped_knowledge_has_every_required_entry(knowledge: Knowledge) -> None:
    ids = [entry.id for entry in knowledge.entries]
    assert set(REQUIRED_IDS) <= set(ids)
    assert len(ids) == len(set(ids))


def test_default_directory_is_the_package(knowledge: Knowledge) -> None:
    assert load_knowledge(KNOWLEDGE_DIR) == knowledge


def test_sources_are_named_by_id_with_a_bare_file_name(knowledge: Knowledge) -> None:
    assert {sid: s.file for sid, s in knowledge.sources.items()} == {
        "pain-course-page": "000_86b6d91744af825e.txt",
        "mesotherapy-guide": "001_1b314664f1088be6.txt",
    }
    for item in (*knowledge.entries, *knowledge.courses):
        assert item.source in knowledge.sources, item.id


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("pain_course_price", "£600"),
        ("pain_course_max_delegates", "4"),
        ("venue_street", "22 Harley Street"),
        ("venue_suite", "Suite 8"),
        ("venue_postcode", "W1G 9PL"),
        ("day_start", "09:00"),
        ("day_end", "17:00"),
        ("member_discount", "20%"),
        ("membership_price_medical", "£150"),
        ("membership_price_non_medical", "£100"),
        ("member_saving", "£120"),
        ("training_provider", "The Centre for Medical Sciences & Research"),
    ],
)
def test_org_facts(knowledge: Knowledge, name: str, value: str) -> None:
    assert knowledge.facts[name] == value


@pytest.mark.parametrize(
    ("entry_id", "expected"),
    [
        ("pain-course-price", ["£600"]),
        ("pain-course-location", ["22 Harley Street", "Suite 8", "London", "W1G 9PL"]),
        ("pain-course-hours", ["09:00", "17:00"]),
        ("pain-course-duration", ["one full day"]),
        ("pain-course-class-size", ["maximum of 4 delegates"]),
        ("pain-course-format", ["Morning", "Afternoon", "hands-on"]),
        ("pain-course-learning-pack-delivery", ["email", "payment is confirmed"]),
        ("pain-course-learning-pack-contents", ["osteoarthritis", "Product guidance"]),
        ("pain-course-certificate", ["certificate of completion"]),
        ("pain-course-evidence", ["2025", "2026", "Radiology"]),
        ("membership-price", ["£150", "£100"]),
        ("membership-discount", ["20%", "£120"]),
        ("training-overview", ["The Centre for Medical Sciences & Research", "London"]),
        ("training-backgrounds", ["medical and non-medical"]),
        ("training-format", ["online", "hands-on"]),
        ("mesotherapy-history", ["1950s", "Michel Pistor"]),
        ("treatment-duration", ["30 minutes to an hour"]),
        ("treatment-pain", ["numbing cream"]),
        ("aftercare", ["sun", "soothing cream", "strenuous", "follow"]),
        ("side-effects", ["redness", "swelling", "bruising", "few hours to a few days"]),
        ("sessions-maintenance", ["six to twelve months"]),
        ("acute-vs-chronic-pain", ["three months"]),
        ("technique-needle", ["4 mm (27 gauge)", "13 mm (30 or 32 gauge)"]),
        ("technique-angle", ["30–45 degrees"]),
        ("technique-volume", ["0.10–0.20 mL"]),
        ("technique-spacing", ["2 or 3 cm", "diluted"]),
        ("intradermal-vs-intramuscular", ["10 mm", "4 mm"]),
    ],
)
def test_answers_state_the_facts_people_ask_for(
    knowledge: Knowledge, entry_id: str, expected: list[str]
) -> None:
    answer = knowledge.entry(entry_id).answer
    for text in expected:
        assert text in answer, f"{entry_id}: {text!r} missing from {answer!r}"


def test_no_placeholder_left_unrendered(knowledge: Knowledge) -> None:
    for text in _displayed(knowledge):
        assert "{" not in text and "}" not in text, text


def test_every_number_comes_from_the_sources(knowledge: Knowledge) -> None:
    for text in _displayed(knowledge):
        for number in re.findall(r"\d+(?:[.:]\d+)*", text):
            assert number in SOURCE_NUMBERS, f"{number!r} is not in the sources: {text!r}"
        for word in re.findall(r"[a-z]+", text.casefold()):
            if word in NUMBER_WORDS:
                assert word in SOURCE_NUMBER_WORDS, f"{word!r} is not in the sources: {text!r}"


@pytest.mark.skipif(not SOURCES_DIR.is_dir(), reason="the source documents are not on this machine")
def test_source_numbers_list_is_honest() -> None:
    numbers: set[str] = set()
    for path in SOURCES_DIR.glob("*.txt"):
        numbers |= set(re.findall(r"\d+(?:[.:]\d+)*", path.read_text(encoding="utf-8")))
    assert numbers >= SOURCE_NUMBERS


def test_nothing_the_sources_are_silent_on(knowledge: Knowledge) -> None:
    silent = ["refund", "parking", "cpd", "accredit", "http", "www", "@", "+44", "instalment"]
    for text in _displayed(knowledge):
        for word in silent:
            assert word not in text.casefold(), f"{word!r} in {text!r}"


def test_answers_are_short_plain_telegram_text(knowledge: Knowledge) -> None:
    for entry in knowledge.entries:
        assert len(entry.answer) <= 600, entry.id
        assert len(entry.answer.splitlines()) <= 7, entry.id
        assert not re.search(r"[<>*_`\[\]#]", entry.answer), entry.id


def test_entries_are_well_curated(knowledge: Knowledge) -> None:
    for entry in knowledge.entries:
        assert 8 <= len(entry.phrasings) <= 30, entry.id
        assert 3 <= len(entry.keywords) <= 10, entry.id
        assert len(entry.related) <= 3, entry.id
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", entry.id)


def test_audiences(knowledge: Knowledge) -> None:
    for entry in knowledge.entries:
        if entry.id in PATIENT_TOPICS:
            assert entry.audience in ("patient", "both"), entry.id
        else:
            assert entry.audience == "delegate", entry.id


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("pain-course-learning-pack-contents", "pain-course-learning-pack-delivery"),
        ("pain-course-duration", "treatment-duration"),
        ("pain-course-duration", "pain-course-hours"),
        ("pain-course-price", "membership-price"),
        ("membership-price", "membership-discount"),
        ("pain-course-whats-included", "pain-course-learning-pack-contents"),
        ("pain-course-format", "training-format"),
        ("intradermal-vs-intramuscular", "intradermal-vs-subcutaneous"),
        ("side-effects", "aftercare"),
        ("results-timing", "sessions-maintenance"),
    ],
)
def test_siblings_are_separable(knowledge: Knowledge, first: str, second: str) -> None:
    a, b = knowledge.entry(first), knowledge.entry(second)
    assert not {k.casefold() for k in a.keywords} & {k.casefold() for k in b.keywords}
    assert not {p.casefold() for p in a.phrasings} & {p.casefold() for p in b.phrasings}
    assert a.question != b.question


def test_courses(knowledge: Knowledge) -> None:
    courses = {course.id: course for course in knowledge.courses}
    assert set(courses) == {"pain-mesotherapy-masterclass", "mesotherapy-training"}
    masterclass = dict(courses["pain-mesotherapy-masterclass"].facts)
    assert masterclass["Price"] == "£600"
    assert masterclass["Venue"] == "22 Harley Street, Suite 8, London W1G 9PL"
    assert masterclass["Times"] == "09:00–17:00"
    general = courses["mesotherapy-training"]
    # The guide gives no price, date or duration for the general training: none may appear.
    assert not re.search(r"[£\d]", " ".join(v for _, v in general.facts) + general.summary)
    for course in courses.values():
        knowledge.entry(course.entry_id)


def test_summary(knowledge: Knowledge) -> None:
    text = summary(knowledge)
    assert f"entries:   {len(knowledge.entries)} (delegate " in text
    assert "courses:   2" in text
    assert "sources:   2" in text
    assert f"facts:     {len(knowledge.facts)}" in text


# -- the loader's checks, on broken copies --------------------------------------------------------

Data = Any
Mutation = Callable[[Data, Data, Data], None]  # (org, faq, courses), edited in place


FILES = ("org.yaml", "faq.yaml", "courses.yaml")
_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: fast tests
_FAST_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


@functools.cache
def _shipped() -> tuple[Data, ...]:
    """The shipped files as plain data, parsed once; each test edits a deep copy."""
    return tuple(
        yaml.load((KNOWLEDGE_DIR / name).read_text(encoding="utf-8"), Loader=_FAST_LOADER) for name in FILES
    )


@pytest.fixture
def copy_dir(tmp_path: Path) -> Path:
    for name in (*FILES, "gaps.yaml"):
        shutil.copy(KNOWLEDGE_DIR / name, tmp_path / name)
    return tmp_path


def _mutate(directory: Path, mutation: Mutation) -> None:
    """Rewrite the copies in `directory` from the shipped data, edited by `mutation`."""
    org, faq, courses = copy.deepcopy(_shipped())
    mutation(org, faq, courses)
    for name, item in zip(FILES, (org, faq, courses), strict=True):
        text = yaml.dump(item, Dumper=_FAST_DUMPER, allow_unicode=True, sort_keys=False, width=1000)
        (directory / name).write_text(text, encoding="utf-8")


def _problems(directory: Path) -> str:
    with pytest.raises(KnowledgeError) as caught:
        load_knowledge(directory)
    return str(caught.value)


def _entry(faq: Data, entry_id: str) -> dict[str, Any]:
    return next(entry for entry in faq if entry["id"] == entry_id)


def _rename(entry: dict[str, Any], old: str, new: str) -> None:
    entry[new] = entry.pop(old)


def _set(entry_id: str, field: str, value: Any) -> Mutation:
    return lambda org, faq, courses: _entry(faq, entry_id).__setitem__(field, value)


PRICE = "pain-course-price"
CASES: dict[str, tuple[Mutation, list[str]]] = {
    "unknown field": (
        lambda org, faq, courses: _rename(_entry(faq, PRICE), "phrasings", "phrasing"),
        ["faq.yaml:", "entry 'pain-course-price'", "unknown field 'phrasing'",
         "did you mean 'phrasings'", "missing required field 'phrasings'"],
    ),
    "missing field": (
        lambda org, faq, courses: _entry(faq, PRICE).pop("answer"),
        ["entry 'pain-course-price'", "missing required field 'answer'"],
    ),
    "empty field": (
        _set(PRICE, "question", " "),
        ["entry 'pain-course-price'", "question: is empty"],
    ),
    "wrong type, text": (_set(PRICE, "answer", 600), ["answer: must be text, got int 600"]),
    "wrong type, list": (_set(PRICE, "phrasings", "price?"), ["phrasings: must be a list"]),
    "wrong type, list item": (_set(PRICE, "keywords", ["price", False]), ["quote it"]),
    "duplicate id": (
        _set("pain-course-hours", "id", PRICE),
        ["entry 'pain-course-price'", "duplicate id 'pain-course-price'"],
    ),
    "duplicate phrasing": (
        lambda org, faq, courses: _entry(faq, PRICE)["phrasings"].append("PRICE ?"),
        ["entry 'pain-course-price'", "phrasings: duplicate 'PRICE ?'"],
    ),
    "phrasing of another entry": (
        lambda org, faq, courses: _entry(faq, PRICE)["phrasings"].append("pain masterclass"),
        ["'pain masterclass' is also a phrasing of entry 'pain-course-overview'"],
    ),
    "dangling related": (
        _set(PRICE, "related", ["pain-course-prise"]),
        ["entry 'pain-course-price'", "related: no entry 'pain-course-prise'",
         "did you mean 'pain-course-price'"],
    ),
    "related to itself": (_set(PRICE, "related", [PRICE]), ["is the entry itself"]),
    "too many related": (
        _set(PRICE, "related", ["aftercare", "side-effects", "results-timing", "treatment-pain"]),
        ["related: 4 ids, at most 3"],
    ),
    "unknown source": (
        _set(PRICE, "source", "brochure"),
        ["entry 'pain-course-price'", "unknown source 'brochure'"],
    ),
    "unknown audience": (
        _set(PRICE, "audience", "students"),
        ["entry 'pain-course-price'", "unknown audience 'students'"],
    ),
    "bad id": (_set(PRICE, "id", "Pain_Course_Price"), ["must be kebab-case"]),
    "unknown placeholder": (
        _set(PRICE, "answer", "It costs {pain_course_prise}."),
        ["entry 'pain-course-price'", "answer: unknown fact {pain_course_prise}",
         "did you mean 'pain_course_price'"],
    ),
    "unknown placeholder in a phrasing": (
        _set(PRICE, "phrasings", ["is it {pain_course_prise}"]),
        ["entry 'pain-course-price'", "phrasings: unknown fact {pain_course_prise}"],
    ),
    "stray brace": (
        _set(PRICE, "answer", "It costs {pain_course_price} {per day."),
        ["entry 'pain-course-price'", "answer: stray brace"],
    ),
    "malformed placeholder": (
        _set(PRICE, "answer", "It costs {pain_course_price!r}."),
        ["answer: malformed placeholder"],
    ),
    "answer too long": (
        _set(PRICE, "answer", "Costs {pain_course_price}. " + "x" * 1000),
        ["entry 'pain-course-price'", "more than 1000"],
    ),
    "unused fact": (
        lambda org, faq, courses: org["facts"].__setitem__("parking", "free"),
        ["org.yaml:", "fact 'parking'", "never used"],
    ),
    "fact not text": (
        lambda org, faq, courses: org["facts"].__setitem__("society", True),
        ["org.yaml:", "fact 'society'", "must be text"],
    ),
    "source file with a path": (
        lambda org, faq, courses: org["sources"]["pain-course-page"].__setitem__(
            "file", "/work/shared/sources/000_86b6d91744af825e.txt"
        ),
        ["org.yaml:", "source 'pain-course-page'", "file name only"],
    ),
    "unknown source field": (
        lambda org, faq, courses: _rename(org["sources"]["pain-course-page"], "title", "titel"),
        ["source 'pain-course-page'", "unknown field 'titel'", "missing required field 'title'"],
    ),
    "course entry_id": (
        lambda org, faq, courses: courses[0].__setitem__("entry_id", "no-such-entry"),
        ["courses.yaml:", "course 'pain-mesotherapy-masterclass'", "entry_id: no entry"],
    ),
    "course unknown placeholder": (
        lambda org, faq, courses: courses[0]["facts"].__setitem__("Price", "{price}"),
        ["courses.yaml:", "facts: Price: unknown fact {price}"],
    ),
    "course unknown field": (
        lambda org, faq, courses: courses[1].__setitem__("price", "£1"),
        ["course 'mesotherapy-training'", "unknown field 'price'"],
    ),
    "course duplicate id": (
        lambda org, faq, courses: courses[1].__setitem__("id", courses[0]["id"]),
        ["duplicate id 'pain-mesotherapy-masterclass'"],
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_loader_names_file_entry_and_problem(copy_dir: Path, case: str) -> None:
    mutation, expected = CASES[case]
    _mutate(copy_dir, mutation)
    message = _problems(copy_dir)
    for text in expected:
        assert text in message, f"{text!r} not in:\n{message}"
    assert re.search(r"\.yaml:\d+: ", message), message


def test_loader_gives_the_entry_line(copy_dir: Path) -> None:
    _mutate(copy_dir, _set(PRICE, "source", "brochure"))
    lines = (copy_dir / "faq.yaml").read_text(encoding="utf-8").splitlines()
    line = lines.index("- id: pain-course-price") + 1
    assert f"faq.yaml:{line}: entry 'pain-course-price': source:" in _problems(copy_dir)


def test_loader_reports_every_problem_at_once(copy_dir: Path) -> None:
    def many(org: Data, faq: Data, courses: Data) -> None:
        _entry(faq, PRICE)["audience"] = "students"
        _entry(faq, "aftercare")["related"] = ["nowhere"]
        org["facts"]["unused"] = "x"
        courses[0]["entry_id"] = "nowhere"

    _mutate(copy_dir, many)
    lines = _problems(copy_dir).splitlines()
    assert len(lines) == 4
    assert [line.split(":")[0].rsplit("/", 1)[-1] for line in lines] == [
        "org.yaml", "faq.yaml", "faq.yaml", "courses.yaml",
    ]  # fmt: skip


def test_broken_yaml_names_file_and_line(copy_dir: Path) -> None:
    (copy_dir / "faq.yaml").write_text("- id: a\n  question: [unclosed\n", encoding="utf-8")
    message = _problems(copy_dir)
    assert "faq.yaml:" in message and "not valid YAML" in message


def test_broken_yaml_in_one_file_still_checks_the_others(copy_dir: Path) -> None:
    (copy_dir / "org.yaml").write_text("facts: {\n", encoding="utf-8")
    _mutate_courses = (copy_dir / "courses.yaml").read_text(encoding="utf-8")
    (copy_dir / "courses.yaml").write_text(_mutate_courses + "  colour: red\n", encoding="utf-8")
    message = _problems(copy_dir)
    assert "org.yaml" in message and "not valid YAML" in message
    assert "course 'mesotherapy-training': unknown field 'colour'" in message
    assert "unknown source" not in message  # without org.yaml that would only be noise


def test_duplicate_key_names_file_and_line(copy_dir: Path) -> None:
    text = (copy_dir / "faq.yaml").read_text(encoding="utf-8")
    (copy_dir / "faq.yaml").write_text(text + "  source: pain-course-page\n", encoding="utf-8")
    message = _problems(copy_dir)
    assert re.search(r"faq\.yaml:\d+: duplicate key 'source'", message), message


def test_gaps_are_loaded_and_share_the_id_space(copy_dir: Path) -> None:
    knowledge = load_knowledge(copy_dir)
    assert {"refunds-cancellation", "course-dates", "general-training-price"} <= {
        gap.id for gap in knowledge.gaps
    }
    gaps = (copy_dir / "gaps.yaml").read_text(encoding="utf-8")
    (copy_dir / "gaps.yaml").write_text(gaps.replace("id: course-dates", "id: aftercare"))
    with pytest.raises(KnowledgeError, match=r"gaps.yaml:\d+: gap 'aftercare': duplicate id"):
        load_knowledge(copy_dir)


@pytest.mark.parametrize(
    ("find", "replace", "problem"),
    [
        # Folded, "what r the risks" is the side-effects entry's "risks": answered and not answered.
        (
            "phrasings: [",
            "phrasings: [what r the risks, ",
            r"'what r the risks' reads the same as .* 'side-effects'",
        ),
        # "practise on" folds to the bare word practice: it would claim "is there hands on practice?"
        (
            "keywords: [",
            "keywords: [practise on, ",
            r"keyword 'practise on' is all in .* 'pain-course-format'",
        ),
    ],
    ids=["phrasing", "keyword"],
)
def test_a_gap_that_would_claim_an_entrys_question_stops_start_up(
    tmp_path: Path, find: str, replace: str, problem: str
) -> None:
    for path in KNOWLEDGE_DIR.glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    gaps = (tmp_path / "gaps.yaml").read_text(encoding="utf-8")
    (tmp_path / "gaps.yaml").write_text(gaps.replace(find, replace, 1))
    with pytest.raises(KnowledgeError, match=r"gaps.yaml: gap '[a-z-]+': " + problem):
        Brain.load(tmp_path)


def test_warning_signs_for_an_entry_not_in_the_faq_stop_start_up(tmp_path: Path) -> None:
    for path in KNOWLEDGE_DIR.glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    flags = (tmp_path / "red_flags.yaml").read_text(encoding="utf-8")
    (tmp_path / "red_flags.yaml").write_text(
        flags.replace("entries: [aftercare,", "entries: [after-care,", 1)
    )
    with pytest.raises(
        KnowledgeError, match="red_flags.yaml: seek_help_signs: entries: no FAQ entry 'after-care'"
    ):
        Brain.load(tmp_path)


def test_a_gap_flag_must_be_true_or_false(copy_dir: Path) -> None:
    gaps = (copy_dir / "gaps.yaml").read_text(encoding="utf-8")
    (copy_dir / "gaps.yaml").write_text(gaps.replace("  personal: true", '  personal: "yes"', 1))
    with pytest.raises(
        KnowledgeError, match=r"gaps.yaml:\d+: gap 'suitability': personal: must be true or false"
    ):
        load_knowledge(copy_dir)
