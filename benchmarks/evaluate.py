"""Score the matcher on the labelled evaluation set: the figures the tests assert and RESULTS.md reports.

Usage: python -m benchmarks.evaluate [--show-misses]
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

EVAL_FILE = Path(__file__).resolve().parent.parent / "tests" / "data" / "faq_eval.yaml"


@dataclass
class Scores:
    answerable: int = 0
    top1: int = 0  # answered, with exactly the expected entries
    in_suggestions: int = 0  # not answered, but every expected entry offered as "did you mean"
    wrong_answers: list[tuple[str, object, tuple[str, ...]]] = field(default_factory=list)
    unanswerable: int = 0
    false_answers: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)

    @property
    def top1_rate(self) -> float:
        return self.top1 / self.answerable

    @property
    def suggest_recall(self) -> float:
        """Right entry answered or among the suggestions."""
        return (self.top1 + self.in_suggestions) / self.answerable

    @property
    def false_answer_rate(self) -> float:
        return len(self.false_answers) / self.unanswerable


def load_eval(path: Path = EVAL_FILE) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def expected(item: dict) -> tuple[str, ...]:
    value = item["expect"]
    return tuple(value) if isinstance(value, list) else (value,)


# decide(question) -> (kind, answered entry ids, suggested entry ids)
Decide = Callable[[str], tuple[str, tuple[str, ...], tuple[str, ...]]]


def score(decide: Decide, data: dict) -> Scores:
    scores = Scores()
    for item in data["answerable"]:
        want = expected(item)
        kind, answered, suggested = decide(item["q"])
        scores.answerable += 1
        if kind == "answer" and set(answered) == set(want):
            scores.top1 += 1
        elif kind == "suggest" and set(want) <= set(suggested):
            scores.in_suggestions += 1
        else:
            scores.wrong_answers.append((item["q"], want, answered or suggested))
    for question in data["unanswerable"]:
        scores.unanswerable += 1
        kind, answered, _ = decide(question)
        if kind == "answer":
            scores.false_answers.append((question, answered))
    return scores


def brain_decide() -> Decide:
    from bot.brain import Brain

    brain = Brain.load()

    def decide(question: str) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
        reply = brain.reply(question)
        return (
            reply.kind.value,
            reply.entry_ids,
            tuple(c.entry_id for c in reply.suggestions),
        )

    return decide


def unseen(data: dict) -> dict:
    """The set without questions that are also, word for word, FAQ phrasings."""
    faq = yaml.safe_load((EVAL_FILE.parents[2] / "knowledge" / "faq.yaml").read_text())
    plain = lambda s: re.sub(r"[^a-z0-9 ]", "", s.casefold()).strip()  # noqa: E731
    known = {plain(p) for e in faq for p in (e["question"], *e["phrasings"])}
    return {
        "answerable": [i for i in data["answerable"] if plain(i["q"]) not in known],
        "unanswerable": [q for q in data["unanswerable"] if plain(q) not in known],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--show-misses", action="store_true")
    args = parser.parse_args()
    data = load_eval()
    decide = brain_decide()
    for label, subset in (("all", data), ("unseen by the FAQ", unseen(data))):
        s = score(decide, subset)
        print(
            f"{label}: top-1 {s.top1_rate:.1%} ({s.top1}/{s.answerable}), "
            f"answered or suggested {s.suggest_recall:.1%}, "
            f"false answers {s.false_answer_rate:.1%} ({len(s.false_answers)}/{s.unanswerable})"
        )
    if args.show_misses:
        s = score(decide, data)
        for q, want, got in s.wrong_answers:
            print(f"  MISS {q!r}: want {want}, got {got}")
        for q, got in s.false_answers:
            print(f"  FALSE {q!r}: answered {got}")


if __name__ == "__main__":
    main()
