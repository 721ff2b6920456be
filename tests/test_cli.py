"""`python -m bot ...` as other tools and people use it: the ask --json contract, check-knowledge, chat."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bot import texts

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = {"question", "kind", "answer", "entry_id", "score", "suggestions"}


def run(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "MESOBOT_"))}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env={**environment, **(env or {})},
    )


def test_ask_json_writes_one_object_per_question_line_with_exactly_the_contract_fields() -> None:
    questions = [
        "how much is the course",
        "how long?",
        "xyzzy plugh",
        "I'd like to book a place",
        "my lips are swelling and I can't breathe",
    ]
    result = run("ask", "--json", stdin="\n".join(questions) + "\n\n")
    assert result.returncode == 0, result.stderr
    objects = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["question"] for o in objects] == questions  # blank lines are skipped
    assert all(set(o) == CONTRACT for o in objects)
    kinds = [o["kind"] for o in objects]
    assert kinds == ["answer", "suggest", "fallback", "booking", "urgent"]
    price, did_you_mean, unknown, booking, urgent = objects
    assert price["entry_id"] == "pain-course-price" and "£600" in price["answer"]
    assert isinstance(price["score"], float) and 0 < price["score"] <= 1
    assert price["suggestions"] == []
    assert did_you_mean["entry_id"] is None and 2 <= len(did_you_mean["suggestions"]) <= 3
    assert all(isinstance(s, str) for s in did_you_mean["suggestions"])
    assert unknown["entry_id"] is None and "team" in unknown["answer"]
    assert "999" in urgent["answer"]


def test_ask_takes_questions_as_arguments_and_prints_readably() -> None:
    result = run("ask", "where is it held?")
    assert result.returncode == 0
    assert "22 Harley Street" in result.stdout and "[answer]" in result.stdout


def test_ask_piped_into_a_reader_that_stops_early_ends_without_a_traceback() -> None:
    """`python -m bot ask ... | head -1`: the reader goes away; the bot says nothing more."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "MESOBOT_"))}
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "ask", *["where is it held?"] * 2000],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment,
    )
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline().startswith(b"?")
    process.stdout.close()
    with process.stderr:
        stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141
    assert "Traceback" not in stderr


def test_check_knowledge_summarises_and_a_broken_file_is_one_clear_error(tmp_path: Path) -> None:
    result = run("check-knowledge")
    assert result.returncode == 0 and "knowledge OK" in result.stdout
    assert "entries:" in result.stdout


def test_chat_runs_the_real_bot_in_the_terminal(tmp_path: Path) -> None:
    lines = "how long?\n4\nhow much is the course\nhow long?\n/quit\n"
    result = run("chat", stdin=lines, env={"MESOBOT_DB": str(tmp_path / "chat.sqlite3")})
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Hello" in out  # /start is sent for you
    assert "Did you mean" in out and "[4] None of these" in out  # the course's, or a treatment's?
    assert texts.NONE_OF_THESE_REPLY in out  # the button reads the question the reply quotes
    price, length = out.split("£600", 1)
    assert "one full day" in length  # after the price, "how long?" asks about the course
    assert "Traceback" not in result.stderr


def test_a_booking_can_be_made_to_the_end_in_the_terminal(tmp_path: Path) -> None:
    """The contact step sends a reply keyboard (share my phone number), which Telegram does not
    echo on the message: echoed, PTB read it as an inline keyboard and the booking broke there."""
    db = str(tmp_path / "chat.sqlite3")
    steps = [
        "id like to book the pain course pls",
        "1",
        "Dr Priya Patel",
        "priya@example.com",
        "1",
        "1",
        "1",
        "1",
    ]
    result = run("chat", stdin="\n".join(steps) + "\n", env={"MESOBOT_DB": db})
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "went wrong" not in result.stdout
    assert "Thank you, Dr Priya Patel! Your booking request is saved as ENQ-000001" in result.stdout
    assert "Learning Pack is sent to you by email" in result.stdout  # the pain course's, by its source
    filed = run("enquiries", "--db", db, "export", "--format", "json")
    assert [e["kind"] for e in json.loads(filed.stdout)] == ["booking"]
    # A second chat on the same database: the general mesotherapy training, whose source has no
    # Learning Pack. (Its messages once reused the first chat's update ids and were dropped.)
    steps[1] = "2"
    result = run("chat", stdin="\n".join(steps) + "\n", env={"MESOBOT_DB": db})
    assert "saved as ENQ-000002" in result.stdout and "Learning Pack" not in result.stdout


def test_chat_ends_at_a_bare_quit_without_filing_it(tmp_path: Path) -> None:
    db = str(tmp_path / "chat.sqlite3")
    result = run("chat", stdin="where is it held?\nquit\nhow much is parking?\n", env={"MESOBOT_DB": db})
    assert result.returncode == 0, result.stderr
    assert "22 Harley Street" in result.stdout
    assert "parking" not in result.stdout  # the chat ended at "quit"
    filed = run("enquiries", "--db", db, "export", "--format", "json")
    assert filed.returncode == 0, filed.stderr
    assert [e["text"] for e in json.loads(filed.stdout)] == []  # nothing for staff


def test_bad_settings_stop_with_one_line() -> None:
    result = run("run", env={"TELEGRAM_BOT_TOKEN": "not-a-token"})
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "mesobot: TELEGRAM_BOT_TOKEN is malformed: "
        "expected the token BotFather gave you, like 123456789:AAH..."
    )
    result = run("run", env={"TELEGRAM_BOT_TOKEN": "123456789:" + "A" * 35, "MESOBOT_STAFF_IDS": "12,abc"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "mesobot: MESOBOT_STAFF_IDS must be Telegram user ids separated by commas, got '12,abc'"
    ]
