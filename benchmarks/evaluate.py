"""Score the matcher on the labelled evaluation set: the figures the tests assert and the README reports.

Usage: python -m benchmarks.evaluate [--split dev|test|all] [--show-misses] [--timing] [--pools]
                                     [--conversations]

The set is split in two so that tuning stays honest: the dev half (items at even positions of
`answerable` and of `unanswerable`) is the one to tune on and to read misses from; the test half
(odd positions) is only ever scored. `--show-misses` therefore refuses the test half.
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import yaml

if TYPE_CHECKING:
    from bot.brain import Brain

EVAL_FILE = Path(__file__).resolve().parent.parent / "tests" / "data" / "faq_eval.yaml"
POOLS_FILE = Path(__file__).resolve().parent / "data" / "out_of_scope_pools.yaml"
ANSWERABLE_POOL_FILE = Path(__file__).resolve().parent / "data" / "answerable_pool.yaml"
CONVERSATIONS_FILE = EVAL_FILE.parent / "conversations.yaml"
Split = Literal["dev", "test", "all"]
SPLITS: tuple[Split, ...] = ("dev", "test", "all")


@dataclass
class Scores:
    answerable: int = 0
    top1: int = 0  # answered, with exactly the expected entries
    in_suggestions: int = 0  # not answered, but every expected entry offered as "did you mean"
    suggested_only: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = field(default_factory=list)
    wrong_answers: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = field(default_factory=list)
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

    def summary(self) -> str:
        return (
            f"top-1 {self.top1_rate:.1%} ({self.top1}/{self.answerable}), "
            f"answered or suggested {self.suggest_recall:.1%}, "
            f"false answers {self.false_answer_rate:.1%} ({len(self.false_answers)}/{self.unanswerable})"
        )


def load_eval(path: Path = EVAL_FILE) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def split(data: dict, which: Split) -> dict:
    """The dev half (even positions), the held-out test half (odd positions) or everything."""
    if which == "all":
        return {"answerable": data["answerable"], "unanswerable": data["unanswerable"]}
    start = 0 if which == "dev" else 1
    return {"answerable": data["answerable"][start::2], "unanswerable": data["unanswerable"][start::2]}


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
            scores.suggested_only.append((item["q"], want, suggested))
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


def conversation_scores(brain: Brain, follow: bool, batch: str | None = None) -> dict[str, Scores]:
    """Per kind of second message (follow-up, new-topic): how it is answered when read after the
    first message and its reply (`follow`), as the bot reads it, or on its own."""
    from bot.brain import Before

    conversations = yaml.safe_load(CONVERSATIONS_FILE.read_text(encoding="utf-8"))["conversations"]
    by_kind: dict[str, dict[str, list]] = {}
    answers: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {}
    for item in conversations:
        if batch is not None and item["batch"] != batch:
            continue
        before = Before().then(item["first"], brain.reply(item["first"])) if follow else None
        reply = brain.reply(item["then"], before)
        key = f"{len(answers)}: {item['first']} / {item['then']}"  # a second message may recur
        answers[key] = (reply.kind.value, reply.entry_ids, tuple(c.entry_id for c in reply.suggestions))
        data = by_kind.setdefault(item["kind"], {"answerable": [], "unanswerable": []})
        if item["expect"] == "none":
            data["unanswerable"].append(key)
        else:
            data["answerable"].append({"q": key, "expect": item["expect"]})
    return {kind: score(answers.__getitem__, data) for kind, data in by_kind.items()}


def unseen(data: dict) -> dict:
    """The set without questions that are also, word for word, FAQ phrasings."""
    faq = yaml.safe_load((EVAL_FILE.parents[2] / "knowledge" / "faq.yaml").read_text())
    plain = lambda s: re.sub(r"[^a-z0-9 ]", "", s.casefold()).strip()  # noqa: E731
    known = {plain(p) for e in faq for p in (e["question"], *e["phrasings"])}
    return {
        "answerable": [i for i in data["answerable"] if plain(i["q"]) not in known],
        "unanswerable": [q for q in data["unanswerable"] if plain(q) not in known],
    }


def pool_rates(decide: Decide, path: Path = POOLS_FILE) -> dict[str, tuple[int, int]]:
    """Per out-of-scope pool: how many of its questions are answered confidently, of how many."""
    pools = yaml.safe_load(path.read_text(encoding="utf-8"))
    return {
        name: (sum(decide(q)[0] == "answer" for q in questions), len(questions))
        for name, questions in pools.items()
    }


def latency(data: dict, rounds: int = 5) -> tuple[float, float]:
    """Median and p99 milliseconds of one `Matcher.match` call, over every question of the set
    (`rounds` times each, after one warm-up pass), timed with time.perf_counter."""
    from bot.brain import Brain

    matcher = Brain.load().matcher
    questions = [item["q"] for item in data["answerable"]] + list(data["unanswerable"])
    for question in questions:
        matcher.match(question)
    timings: list[float] = []
    for _ in range(rounds):
        for question in questions:
            start = time.perf_counter()
            matcher.match(question)
            timings.append((time.perf_counter() - start) * 1000)
    timings.sort()
    return statistics.median(timings), timings[min(len(timings) - 1, int(0.99 * len(timings)))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--split", choices=SPLITS, default="all", help="which half to score (default: all)")
    parser.add_argument("--show-misses", action="store_true", help="list misses (dev or all only)")
    parser.add_argument("--timing", action="store_true", help="also time the matcher (median, p99)")
    parser.add_argument("--pools", action="store_true", help="also score the out-of-scope pools (tuned on)")
    parser.add_argument(
        "--conversations", action="store_true", help="also score second messages, alone and as follow-ups"
    )
    args = parser.parse_args()
    data = split(load_eval(), args.split)
    decide = brain_decide()
    scores = score(decide, data)
    print(f"{args.split}: {scores.summary()}")
    print(f"{args.split}, unseen by the FAQ: {score(decide, unseen(data)).summary()}")
    if args.pools:
        for name, (answered, total) in pool_rates(decide).items():
            print(
                f"{name} out-of-scope pool: answered confidently {answered / total:.1%} ({answered}/{total})"
            )
        pool = yaml.safe_load(ANSWERABLE_POOL_FILE.read_text(encoding="utf-8"))["answerable"]
        found = score(decide, {"answerable": pool, "unanswerable": []})
        print(
            f"answerable pool: top-1 {found.top1_rate:.1%} ({found.top1}/{found.answerable}), "
            f"answered or suggested {found.suggest_recall:.1%}"
        )
    if args.conversations:
        from bot.brain import Brain

        brain = Brain.load()
        for batch in ("M", "N", "O", None):
            for follow in (False, True):
                for kind, found in conversation_scores(brain, follow, batch).items():
                    read = "after the first" if follow else "alone"
                    print(f"conversations {batch or 'all'}, {kind}, read {read}: {found.summary()}")
    if args.timing:
        median, p99 = latency(data)
        print(f"matcher latency: median {median:.3f} ms, p99 {p99:.3f} ms")
    if args.show_misses:
        if args.split == "test":
            parser.error("misses are for the dev half: the test half is held out")
        for q, want, got in scores.suggested_only:
            print(f"  SUGGEST {q!r}: want {want}, offered {got}")
        for q, want, got in scores.wrong_answers:
            print(f"  MISS {q!r}: want {want}, got {got}")
        for q, got in scores.false_answers:
            print(f"  FALSE {q!r}: answered {got}")


if __name__ == "__main__":
    main()
