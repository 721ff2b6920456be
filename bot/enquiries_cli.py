"""`python -m bot enquiries`: the enquiry log from the shell (list, show, done, export).

Every failure is one line on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import csv
import getpass
import json
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from bot.enquiries import (
    STATUSES,
    Enquiry,
    EnquiryLog,
    EnquiryNotFound,
    format_reference,
    parse_reference,
)
from bot.settings import Settings, SettingsError

EXPORT_FIELDS: tuple[str, ...] = (
    "reference",
    "id",
    "created_at",
    "updated_at",
    "user_id",
    "chat_id",
    "display_name",
    "username",
    "kind",
    "status",
    "text",
    "details",
    "staff_notes",
    "handled_by",
    "handled_at",
    "staff_chat_id",
    "staff_message_id",
)
TEXT_WIDTH = 48


class CliError(Exception):
    """One line for stderr; the command exits 1."""


# --------------------------------------------------------------------------- parser


def _reference(text: str) -> int:
    try:
        return parse_reference(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return int(text)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `enquiries` (and its commands) on an argparse subparsers object."""
    db_option = argparse.ArgumentParser(add_help=False)
    db_option.add_argument(
        "--db",
        type=Path,
        default=argparse.SUPPRESS,
        metavar="PATH",
        help="the database file (default: $MESOBOT_DB or data/mesobot.sqlite3)",
    )
    parser = subparsers.add_parser(
        "enquiries",
        help="list, show, close and export the stored enquiries",
        description="The enquiry log. With no command: the open enquiries.",
        parents=[db_option],
    )
    parser.set_defaults(handler=run, enquiries_command="list", all=False, status=None, limit=20, page=1)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    listing = commands.add_parser(
        "list", help="open enquiries, newest first (--all for every one)", parents=[db_option]
    )
    listing.set_defaults(enquiries_command="list")
    which = listing.add_mutually_exclusive_group()
    which.add_argument("--all", action="store_true", help="closed ones too")
    which.add_argument("--status", choices=STATUSES, help="only this status")
    listing.add_argument("--limit", type=_positive, default=20, help="rows per page (20)")
    listing.add_argument("--page", type=_positive, default=1, help="page number (1)")

    show = commands.add_parser("show", help="one enquiry in full", parents=[db_option])
    show.set_defaults(enquiries_command="show")
    show.add_argument("reference", type=_reference, metavar="N", help="123 or ENQ-000123")

    done = commands.add_parser("done", help="mark an enquiry done", parents=[db_option])
    done.set_defaults(enquiries_command="done")
    done.add_argument("reference", type=_reference, metavar="N", help="123 or ENQ-000123")
    done.add_argument("--by", default=None, help="who closed it (default: cli:<login name>)")

    export = commands.add_parser("export", help="every enquiry as CSV or JSON", parents=[db_option])
    export.set_defaults(enquiries_command="export")
    export.add_argument("--format", choices=("csv", "json"), default="csv", help="csv (default)")
    export.add_argument(
        "--output", "-o", type=Path, default=None, metavar="FILE", help="write here, not stdout"
    )
    return parser


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse `enquiries ...` arguments the way `python -m bot` does (for tests and main)."""
    parser = argparse.ArgumentParser(prog="python -m bot")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(list(argv))


# --------------------------------------------------------------------------- run


def run(args: argparse.Namespace) -> int:
    """Run one `enquiries` command; returns the exit code."""
    try:
        path = _db_path(args)
        command = args.enquiries_command
        if command == "list":
            return _list(path, args)
        if command == "show":
            return _show(path, args.reference)
        if command == "done":
            return _done(path, args.reference, args.by or _login())
        if command == "export":
            return _export(path, args.format, args.output)
        raise CliError(f"unknown enquiries command {command!r}")
    except SettingsError as exc:
        print(f"mesobot: {exc}", file=sys.stderr)
        return 2
    except (CliError, EnquiryNotFound, ValueError) as exc:
        print(f"mesobot: {exc}", file=sys.stderr)
        return 1
    except (sqlite3.Error, OSError) as exc:
        print(f"mesobot: cannot use the enquiry database: {exc}", file=sys.stderr)
        return 1


def _db_path(args: argparse.Namespace) -> Path:
    path = getattr(args, "db", None)
    return Path(path) if path is not None else Settings.from_env().db_path


def _login() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no login name in some containers
        return "cli"


def _open(path: Path) -> EnquiryLog | None:
    """The log, or None if there is no database yet (a read never creates one)."""
    if not path.exists():
        return None
    return EnquiryLog(path)


def _list(path: Path, args: argparse.Namespace) -> int:
    log = _open(path)
    if log is None:
        print(f"no enquiries yet (no database at {path})")
        return 0
    status = None if args.all else (args.status or "open")
    label = {None: "enquiries", "open": "open enquiries"}.get(status, f"{status} enquiries")
    with log:
        total = log.count(status)
        offset = (args.page - 1) * args.limit
        page = log.list(status, limit=args.limit, offset=offset)
    if total == 0:
        print("no enquiries yet" if status is None else f"no {label}")
        return 0
    if not page:
        print(f"page {args.page} is empty: there are {total} {label}")
        return 0
    print(_table(page))
    print(f"\n{offset + 1}-{offset + len(page)} of {total} {label}")
    return 0


def _table(enquiries: Sequence[Enquiry]) -> str:
    header = ("REF", "CREATED (UTC)", "KIND", "STATUS", "FROM", "HANDLED BY", "TEXT")
    rows = [
        (
            enquiry.reference,
            _when(enquiry.created_at),
            enquiry.kind,
            enquiry.status,
            _clip(_who(enquiry), 24),
            _clip(enquiry.handled_by or "-", 16),
            _clip(enquiry.text, TEXT_WIDTH),
        )
        for enquiry in enquiries
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    )


def _show(path: Path, enquiry_id: int) -> int:
    log = _open(path)
    if log is None:
        raise CliError(f"no enquiry {format_reference(enquiry_id)} (no database at {path} yet)")
    with log:
        enquiry = log.get(enquiry_id)
        relays = log.relays_for(enquiry_id)
    lines = [
        f"{enquiry.reference}  {enquiry.kind}  {enquiry.status}",
        f"created     {_when(enquiry.created_at, seconds=True)}",
        f"updated     {_when(enquiry.updated_at, seconds=True)}",
        f"from        {_who(enquiry)}  (user {enquiry.user_id}, chat {enquiry.chat_id})",
        f"handled by  {enquiry.handled_by or '-'}"
        + (f"  ({_when(enquiry.handled_at)})" if enquiry.handled_at else ""),
        "text        " + _indent(enquiry.text or "-", 12),
    ]
    if enquiry.details:
        lines.append("details")
        lines.extend(
            f"  {key}: " + _indent(_plain(value), len(key) + 4) for key, value in enquiry.details.items()
        )
    if enquiry.staff_message_id is not None:
        chat = enquiry.staff_chat_id if enquiry.staff_chat_id is not None else "?"
        lines.append(f"staff post  chat {chat}, message {enquiry.staff_message_id}")
    if relays:
        lines.append(f"relayed     {len(relays)} message(s)")
    if enquiry.staff_notes:
        lines.append("notes")
        lines.extend(
            f"  {_when(note.get('at', ''))}  {note.get('by', '?')}: " + _indent(str(note.get("text", "")), 4)
            for note in enquiry.staff_notes
        )
    print("\n".join(lines))
    return 0


def _done(path: Path, enquiry_id: int, by: str) -> int:
    log = _open(path)
    if log is None:
        raise CliError(f"no enquiry {format_reference(enquiry_id)} (no database at {path} yet)")
    with log:
        before = log.get(enquiry_id)
        after = log.set_status(enquiry_id, "done", by)
    if before.status == "done":
        print(f"{after.reference} was already done ({after.handled_by or 'unknown'})")
    else:
        print(f"{after.reference} marked done by {after.handled_by}")
    return 0


def _export(path: Path, fmt: str, output: Path | None) -> int:
    log = _open(path)
    if log is None:
        print(f"no enquiries yet (no database at {path})", file=sys.stderr)
        rows: list[dict[str, Any]] = []
    else:
        with log:
            rows = log.export_rows()
    if output is None:
        _write_export(sys.stdout, rows, fmt)
    else:
        with output.open("w", encoding="utf-8", newline="") as stream:
            _write_export(stream, rows, fmt)
        print(f"{len(rows)} enquiries written to {output}", file=sys.stderr)
    return 0


def _write_export(stream: TextIO, rows: list[dict[str, Any]], fmt: str) -> None:
    if fmt == "json":
        json.dump(rows, stream, ensure_ascii=False, indent=2)
        stream.write("\n")
        return
    write_csv(stream, rows)


# A spreadsheet runs a cell that starts with one of these as a formula (CSV/formula injection):
# "=HYPERLINK(...)" typed by a user would become a live link in staff's Excel.
FORMULA_STARTS: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """One export cell: dicts and lists as JSON, None as empty, and any text a spreadsheet
    would run as a formula prefixed with an apostrophe so it is shown as text."""
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False)
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def write_csv(stream: TextIO, rows: list[dict[str, Any]]) -> None:
    """The enquiries as CSV (EXPORT_FIELDS columns), shared by the CLI and the bot's /export."""
    writer = csv.DictWriter(stream, fieldnames=EXPORT_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: csv_cell(value) for key, value in row.items()})


# --------------------------------------------------------------------------- formatting


def _when(stamp: str | None, *, seconds: bool = False) -> str:
    """2025-05-01T10:00:00+00:00 -> 2025-05-01 10:00 (stored times are UTC)."""
    if not stamp:
        return "-"
    text = stamp.replace("T", " ").removesuffix("+00:00")
    return (text + " UTC") if seconds else text[:16]


def _who(enquiry: Enquiry) -> str:
    name = enquiry.display_name or "(no name)"
    return f"{name} (@{enquiry.username})" if enquiry.username else name


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def _indent(text: str, by: int) -> str:
    return ("\n" + " " * by).join(text.splitlines() or [""])


def _plain(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(_plain(item) for item in value) or "-"
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return "-" if value is None else str(value)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m bot.enquiries_cli list` works too, without the rest of the bot."""
    return run(parse_args(["enquiries", *(sys.argv[1:] if argv is None else argv)]))


if __name__ == "__main__":
    raise SystemExit(main())
