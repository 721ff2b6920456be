"""`python -m bot`: ask, chat, run, check-knowledge and enquiries, with one clear line on bad input."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Iterable, Sequence

from bot import enquiries_cli
from bot.settings import Settings, SettingsError
from knowledge.yamlfile import KnowledgeError


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except (SettingsError, KnowledgeError) as exc:
        print(f"mesobot: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (`... | head`): nothing more to say to it
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so exit's flush is quiet
        return 141


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description="mesobot: the academy's enquiry assistant. With no command: the Telegram bot "
        "if TELEGRAM_BOT_TOKEN is set, otherwise a chat in this terminal.",
    )
    parser.set_defaults(handler=_start)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    ask = commands.add_parser("ask", help="answer questions (arguments, or one per line on stdin)")
    ask.add_argument("questions", nargs="*", help="questions; read from stdin when none are given")
    ask.add_argument("--json", action="store_true", help="one JSON object per question")
    ask.set_defaults(handler=_ask)

    chat = commands.add_parser("chat", help="chat with the bot in this terminal")
    chat.set_defaults(handler=_chat)

    run = commands.add_parser("run", help="run the Telegram bot (long polling)")
    run.set_defaults(handler=_run)

    check = commands.add_parser("check-knowledge", help="validate knowledge/ and summarise it")
    check.set_defaults(handler=_check_knowledge)

    enquiries_cli.add_parser(commands)
    return parser


def _questions(args: argparse.Namespace) -> Iterable[str]:
    if args.questions:
        yield from args.questions
        return
    for line in sys.stdin:
        if line.strip():
            yield line.rstrip("\n")


def _ask(args: argparse.Namespace) -> int:
    from bot.brain import Brain

    brain = Brain.load()
    for question in _questions(args):
        reply = brain.reply(question)
        if args.json:
            print(json.dumps(reply.to_json(), ensure_ascii=False), flush=True)
            continue
        print(f"? {question}\n[{reply.kind.value}] {reply.text}")
        for number, choice in enumerate(reply.suggestions, 1):
            print(f"  {number}. {choice.question}")
        for choice in reply.related:
            print(f"  → {choice.question}")
        print(flush=True)
    return 0


def _check_knowledge(args: argparse.Namespace) -> int:
    from bot.brain import Brain
    from knowledge.loader import summary

    brain = Brain.load()
    print(summary(brain.knowledge))
    print(f"red flags: {len(brain.safety.flags)}")
    print("knowledge OK")
    return 0


def _chat(args: argparse.Namespace) -> int:
    from bot.terminal import chat

    return chat(Settings.from_env())


def _run(args: argparse.Namespace) -> int:
    from bot.app import run

    settings = Settings.from_env()
    settings.require_token()
    _configure_logging()
    return run(settings)


def _start(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    if settings.token is None:
        print("No TELEGRAM_BOT_TOKEN set: starting a chat in this terminal instead.\n")
        return _chat(args)
    return _run(args)


def _configure_logging() -> None:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    # httpx logs every request URL at INFO, and the URL carries the bot token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
