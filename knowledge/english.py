"""Which words are everyday English, so that typo correction leaves them alone.

The matcher corrects a word it does not know to a close word the FAQ uses ("pirce" -> price).
Without a dictionary it also "corrected" real words that merely look like FAQ words: "feels"
became fees (a price question), "heard" became heart, "speaking" became spacing. pyspellchecker
ships an English word list with corpus frequencies; its rarest entries (the floor count) include
misspellings, so only words seen more often than that count as English here.

The same counts tell the matcher how everyday a word the FAQ never uses is: "acupuncture" or
"saturdays" is probably what a question is about, "sister" or "friend" probably chat around it.
"""

from __future__ import annotations

import functools

from spellchecker import SpellChecker

MIN_FREQUENCY = 100  # the list's floor is 50, where misspellings such as "corse" sit


@functools.cache
def _counts() -> dict[str, int]:
    # Loaded on first use (~0.2 s): a message whose words the FAQ all knows never needs it.
    counts = SpellChecker(language="en", distance=1).word_frequency.dictionary
    return {word: count for word, count in counts.items() if count >= MIN_FREQUENCY}


def frequency(word: str) -> int:
    """How often `word` occurs in the list's corpus (0: not a common English word)."""
    return _counts().get(word, 0)


def load() -> None:
    """Load the word list now (the bot does at start-up, so no one's first message waits)."""
    _counts()


def is_english(word: str) -> bool:
    """Whether `word` (lower case) is a common English word."""
    return word in _counts()
