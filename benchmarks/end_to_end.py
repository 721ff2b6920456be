"""End to end: the real bot, a `python -m bot run` subprocess, against the loopback Bot API server.

Why a subprocess: the bot gets its own interpreter (and GIL) as it has in production, and the
server and simulated users in this process do not steal its time slices; on 2 cores the bot has one
and the server the other. Simulated users react inside the server thread (a subclass hook on the
bot's sendMessage), so no client-side event loop sits between a reply and the next message.

Each message gets exactly one reply in its chat (the mix excludes booking requests, which get two),
so a user's k-th reply answers their k-th message: reply latency is the server's receipt of that
sendMessage minus the moment the message was queued, both on this process's monotonic clock.

Runs, each with 50 users and a realistic mix (FAQ questions from the eval set, out-of-scope ones
that file enquiries to SQLite and post to the staff chat, /start):
- saturation: every user sends their next message the moment they get a reply (no think time):
  the most updates per second the bot handles; latency there is queueing, by Little's law
  50 / throughput;
- paced at the target: the same 2,000 messages offered at 200 updates/s on a fixed timetable (open
  loop): the reply latency users see when the bot is asked for the target rate;
- the transports side by side: the same two runs with the same bot on PTB's default transport
  (httpx: `HTTPXRequest()`, as `ApplicationBuilder` builds it when given none), passed into
  `bot.app.build_application` by this benchmark's launcher, against the bot as shipped (aiohttp,
  bot/transport.py);
- isolation: one user stuck mid-booking and one whose every update is delayed 2 s by an extra
  async handler (added by the launcher), against the same paced load without them; and, for
  contrast, one user whose handler blocks the event loop.

Usage: python -m benchmarks.end_to_end [--users 50] [--messages 2000] [--rate 200] [--profile]
       [--no-variants]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import heapq
import os
import random
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, machine, median, ms, percentile, table
from benchmarks.evaluate import load_eval
from bot.brain import Brain
from bot.replies import Kind
from tests.telegram_server import TEST_TOKEN, Chat, TelegramServer, User

SLOW_SECONDS = 2.0  # the slow user's extra async delay per update
BLOCK_SECONDS = 0.2  # the blocking user's synchronous stall per update
READY_TIMEOUT = 60.0


def progress(text: str) -> None:
    """A line on stderr, so a long run shows where it is (stdout carries the report)."""
    print(f"[end_to_end {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


class TimedServer(TelegramServer):
    """The loopback server, noting when each bot message arrives, and letting a hook react to it
    (under the server's lock, in the request's thread): that is how closed-loop users answer."""

    def __init__(self) -> None:
        super().__init__(TEST_TOKEN)
        self.replies: dict[int, list[float]] = defaultdict(list)  # chat id -> arrival times
        self.on_reply: Callable[[int], None] | None = None
        self.polls: list[float] = []  # when each getUpdates arrived (the request log has them
        # only once answered, which for a long poll with nothing to deliver is its full timeout)

    def _get_updates(self, p: Any, client_gone: Callable[[], bool]) -> Any:
        self.polls.append(time.monotonic())
        return super()._get_updates(p, client_gone)

    def _store_bot_message(self, state: Any, content: Any, reply_to: Any = None) -> Any:
        message = super()._store_bot_message(state, content, reply_to)
        chat_id = state.chat.id
        self.replies[chat_id].append(time.monotonic())
        if self.on_reply is not None:
            self.on_reply(chat_id)
        return message

    def reset(self) -> None:
        with self._lock:
            self.replies.clear()
            self.on_reply = None


# --------------------------------------------------------------------------------------- the mix


def message_mix(total: int, seed: int = 11) -> list[str]:
    """FAQ questions (~85%), out-of-scope questions that file an enquiry (~8%), /start (~7%).

    Only messages the bot answers with exactly one message are used (a booking request gets two)."""
    brain = Brain.load()
    data = load_eval()
    faq = [i["q"] for i in data["answerable"] if brain.reply(i["q"]).kind in (Kind.ANSWER, Kind.SUGGEST)]
    enquiries = [q for q in data["unanswerable"] if brain.reply(q).kind is Kind.FALLBACK]
    rng = random.Random(seed)
    mix = []
    for _ in range(total):
        roll = rng.random()
        mix.append("/start" if roll < 0.07 else rng.choice(enquiries) if roll < 0.15 else rng.choice(faq))
    return mix


def scripts(users: Sequence[User], mix: Sequence[str]) -> dict[int, list[str]]:
    """Deal the mix round-robin: each user gets len(mix) / len(users) messages."""
    dealt: dict[int, list[str]] = {u.id: [] for u in users}
    for index, text in enumerate(mix):
        dealt[users[index % len(users)].id].append(text)
    return dealt


# ------------------------------------------------------------------------------------------ a bot


@dataclass
class BotProcess:
    process: subprocess.Popen[bytes]
    log_path: Path

    def cpu_seconds(self) -> float:
        """User + system CPU the bot process has used so far (Linux /proc)."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> int:
        """SIGINT, as Ctrl-C: PTB stops polling and shuts down cleanly."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def bot_env(server: TelegramServer, db_dir: Path, staff: User, staff_chat: Chat) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "MESOBOT_"))}
    env.update(
        TELEGRAM_BOT_TOKEN=server.token or TEST_TOKEN,
        TELEGRAM_API_BASE_URL=server.base_url,
        MESOBOT_DB=str(db_dir / "mesobot.sqlite3"),
        MESOBOT_STAFF_CHAT_ID=str(staff_chat.id),
        MESOBOT_STAFF_IDS=str(staff.id),
        PYTHONUNBUFFERED="1",
    )
    return env


def start_bot(server: TimedServer, command: list[str], env: dict[str, str], log_path: Path) -> BotProcess:
    """Start the bot and wait until its first getUpdates reaches the server."""
    before = len(server.polls)
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    bot = BotProcess(process, log_path)
    progress(f"started {' '.join(command[1:])}")
    try:
        server.wait_until(
            lambda: len(server.polls) > before or process.poll() is not None,
            timeout=READY_TIMEOUT,
            description="the bot's first getUpdates",
        )
    except Exception:
        bot.stop()
        raise
    if process.poll() is not None:
        raise RuntimeError(f"the bot exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
    return bot


# ------------------------------------------------------------------------------------------ loads


@dataclass
class Run:
    label: str
    sent: dict[int, list[float]]  # user id -> when each message was queued
    replies: dict[int, list[float]]  # user id -> when each reply arrived
    cpu_bot: float
    cpu_driver: float
    get_updates: int
    extra_replies: int = 0
    notes: list[str] = field(default_factory=list)
    variant: str = ""

    def latencies(self, users: set[int] | None = None) -> list[float]:
        out = []
        for user, sent in self.sent.items():
            if users is not None and user not in users:
                continue
            out.extend(reply - at for at, reply in zip(sent, self.replies.get(user, []), strict=False))
        return out

    @property
    def handled(self) -> int:
        return sum(min(len(s), len(self.replies.get(u, []))) for u, s in self.sent.items())

    @property
    def span(self) -> float:
        first = min(t for s in self.sent.values() for t in s[:1])
        last = max(t for r in self.replies.values() for t in r[-1:])
        return last - first

    @property
    def throughput(self) -> float:
        return self.handled / self.span


def _driver_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _finish(
    server: TimedServer,
    bot: BotProcess,
    label: str,
    plan: dict[int, list[str]],
    sent: dict[int, list[float]],
    timeout: float,
    cpu: tuple[float, float, int],
) -> Run:
    """Wait for every reply (or the timeout), then collect the figures."""
    want = {user: len(texts) for user, texts in plan.items()}
    notes = []
    try:
        server.wait_until(
            lambda: all(len(server.replies[u]) >= n for u, n in want.items()),
            timeout=timeout,
            description=f"{sum(want.values())} replies",
        )
    except AssertionError:
        notes.append(f"timed out after {timeout:.0f}s waiting for replies")
    time.sleep(0.2)  # a late second reply to one message would show here
    with server._lock:
        replies = {u: list(server.replies[u]) for u in plan}
    extra = sum(max(0, len(replies[u]) - n) for u, n in want.items())
    bot_cpu, driver_cpu, polls = cpu
    return Run(
        label,
        sent,
        replies,
        bot.cpu_seconds() - bot_cpu,
        _driver_cpu() - driver_cpu,
        server.request_count("getUpdates") - polls,
        extra,
        notes,
    )


def closed_loop(server: TimedServer, bot: BotProcess, plan: dict[int, list[str]], label: str) -> Run:
    """Every user sends their next message as soon as their reply arrives (zero think time)."""
    server.reset()
    sent: dict[int, list[float]] = {user: [] for user in plan}
    cpu = (bot.cpu_seconds(), _driver_cpu(), server.request_count("getUpdates"))

    def send(user: int) -> None:
        texts = plan[user]
        k = len(sent[user])
        if k < len(texts):
            sent[user].append(time.monotonic())
            server.send_text(user, texts[k])

    def on_reply(chat_id: int) -> None:
        if chat_id in plan and len(server.replies[chat_id]) == len(sent[chat_id]):
            send(chat_id)

    with server._cond:  # nobody's reply can interleave with the first round of messages
        server.on_reply = on_reply
        for user in plan:
            send(user)
    run = _finish(server, bot, label, plan, sent, timeout=120, cpu=cpu)
    server.reset()
    progress(f"{label}: {run.handled} updates in {run.span:.2f} s")
    return run


def open_loop(
    server: TimedServer,
    bot: BotProcess,
    plan: dict[int, list[str]],
    rate: float,
    label: str,
    extra: dict[int, list[tuple[float, str]]] | None = None,
) -> Run:
    """Messages on a fixed timetable, `rate` per second in all, users staggered; `extra` adds
    (offset seconds, text) messages for special users. A user may have several messages queued."""
    server.reset()
    timetable: list[tuple[float, int, str]] = []
    users = list(plan)
    per_user = len(users) / rate  # seconds between one user's messages
    for slot, user in enumerate(users):
        for k, text in enumerate(plan[user]):
            timetable.append((slot / rate + k * per_user, user, text))
    for user, items in (extra or {}).items():
        timetable.extend((offset, user, text) for offset, text in items)
    heapq.heapify(timetable)
    sent: dict[int, list[float]] = {user: [] for user in [*users, *(extra or {})]}
    cpu = (bot.cpu_seconds(), _driver_cpu(), server.request_count("getUpdates"))
    start = time.monotonic() + 0.05
    late = 0.0
    while timetable:
        offset, user, text = heapq.heappop(timetable)
        delay = start + offset - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            late = max(late, -delay)
        sent[user].append(time.monotonic())
        server.send_text(user, text)
    full_plan = {u: [""] * len(s) for u, s in sent.items()}
    run = _finish(server, bot, label, full_plan, sent, timeout=120, cpu=cpu)
    if late > 0.005:
        run.notes.append(f"the timetable ran up to {ms(late)} ms late (the driver was descheduled)")
    progress(f"{label}: {run.handled} updates in {run.span:.2f} s")
    return run


# ---------------------------------------------------------------------------- the variant launcher


def serve_variant() -> int:
    """`python -m bot run` as bot.app.run builds it, with what this benchmark varies, all from
    the environment and none of it a change to the bot:

    - BENCH_SLOW_USER / BENCH_BLOCKING_USER: one extra handler, first in line, that delays one
      user's updates (await asyncio.sleep: a slow network call) or stalls another's (time.sleep:
      CPU-bound work on the event loop);
    - BENCH_TRANSPORT=httpx: PTB's default transport instead of the bot's own (aiohttp): the
      `HTTPXRequest`s `ApplicationBuilder` builds when given none (256 connections for requests,
      1 for getUpdates), passed into `build_application`.
    """
    from telegram import Update
    from telegram.ext import TypeHandler
    from telegram.request import HTTPXRequest

    import bot.cli
    from bot.app import build_application
    from bot.settings import Settings

    configure_logging = getattr(bot.cli, "_configure_logging", None)  # as `python -m bot run` does
    if configure_logging is not None:
        configure_logging()
    slow_user = int(os.environ.get("BENCH_SLOW_USER", "0"))
    blocking_user = int(os.environ.get("BENCH_BLOCKING_USER", "0"))

    async def delay(update: Update, context: object) -> None:
        user = update.effective_user.id if update.effective_user else None
        if user == slow_user:
            await asyncio.sleep(SLOW_SECONDS)
        elif user == blocking_user:
            time.sleep(BLOCK_SECONDS)

    transport = os.environ.get("BENCH_TRANSPORT", "")
    if transport not in ("", "httpx"):
        raise SystemExit(f"BENCH_TRANSPORT={transport!r}: only httpx is known")
    request = updates_request = None
    if transport == "httpx":
        request = HTTPXRequest()  # PTB's defaults: 256 connections
        updates_request = HTTPXRequest(connection_pool_size=1)  # as ApplicationBuilder's for getUpdates
    application = build_application(
        Settings.from_env(), Brain.load(), request=request, updates_request=updates_request
    )
    if slow_user or blocking_user:
        application.add_handler(TypeHandler(Update, delay), group=-100)
    application.run_polling(allowed_updates=Update.ALL_TYPES)
    return 0


# ------------------------------------------------------------------------------------------- main


@dataclass
class Results:
    users: int
    messages: int
    rate: float
    mix: dict[str, int]
    runs: list[Run]
    isolation: list[tuple[str, Run, set[int], int | None]]
    profile: str = ""
    profile_shares: dict[str, float] = field(default_factory=dict)  # see bot_profile
    errors: list[str] = field(default_factory=list)


SHIPPED = "`python -m bot run`, as shipped (aiohttp)"
HTTPX = "the same bot on PTB's default transport (httpx)"
# Compared side by side with the bot as shipped (see serve_variant): none changes the bot's code.
VARIANTS: tuple[tuple[str, dict[str, str]], ...] = ((HTTPX, {"BENCH_TRANSPORT": "httpx"}),)


def run_all(
    users: int,
    messages: int,
    rate: float,
    profile: bool,
    profile_out: Path | None = None,
    variants: bool = True,
) -> Results:
    mix = message_mix(messages)
    out_of_scope = set(load_eval()["unanswerable"])
    enquiries = sum(text in out_of_scope for text in mix)
    counts = {
        "FAQ questions": len(mix) - enquiries - mix.count("/start"),
        "out-of-scope (an enquiry filed)": enquiries,
        "/start": mix.count("/start"),
    }
    results = Results(users, messages, rate, counts, [], [])
    with TimedServer() as server, tempfile.TemporaryDirectory(prefix="mesobot-bench-") as tmp:
        staff = server.add_user("Sam", username="sam_staff")
        staff_chat = server.add_group("Academy staff", members=[staff])
        plans = [(SHIPPED, {}), *(VARIANTS if variants else ())]
        for number, (variant, extra_env) in enumerate(plans):
            workdir = Path(tmp) / f"bot{number}"
            workdir.mkdir()
            env = bot_env(server, workdir, staff, staff_chat) | extra_env
            command = [sys.executable, "-m", "bot", "run"]
            if extra_env:
                command = [sys.executable, "-m", "benchmarks.end_to_end", "--serve-variant"]
            bot = start_bot(server, command, env, workdir / "bot.log")
            try:
                warm = [server.add_user(f"Warm{number}-{i}") for i in range(users)]
                closed_loop(server, bot, scripts(warm, mix[: users * 4]), "warm-up")  # connections, caches
                people = [server.add_user(f"User{number}-{i}") for i in range(users)]
                run = closed_loop(server, bot, scripts(people, mix), "saturation")
                run.variant = variant
                results.runs.append(run)
                people = [server.add_user(f"Paced{number}-{i}") for i in range(users)]
                run = open_loop(server, bot, scripts(people, mix), rate, f"paced at {rate:.0f}/s")
                run.variant = variant
                results.runs.append(run)
            finally:
                code = bot.stop()
            if code not in (0, -signal.SIGINT):
                results.errors.append(f"{variant}: the bot exited with {code}")
        results.errors.extend(f"{e.method} {e.status} {e.description}" for e in server.errors())
        results.isolation = isolation(server, Path(tmp), staff, staff_chat, mix, rate)
        if profile:
            env = bot_env(server, Path(tmp), staff, staff_chat)
            results.profile, results.profile_shares = profiled(
                server, Path(tmp), env, mix, users, profile_out
            )
    return results


def profiled(
    server: TimedServer, tmp: Path, env: dict[str, str], mix: list[str], users: int, out: Path | None
) -> tuple[str, dict[str, float]]:
    """A separate bot under cProfile, through the same saturation run: where its CPU goes. Kept
    apart so the profiler's overhead never touches the figures above."""
    out = out or tmp / "bot.prof"
    command = [sys.executable, "-m", "cProfile", "-o", str(out), "-m", "bot", "run"]
    env = env | {"MESOBOT_DB": str(tmp / "profiled.sqlite3")}
    bot = start_bot(server, command, env, tmp / "profiled-bot.log")
    try:
        people = [server.add_user(f"Profiled{i}") for i in range(users)]
        run = closed_loop(server, bot, scripts(people, mix), "profiled saturation")
    finally:
        bot.stop()
    return bot_profile(out, run)


def isolation(
    server: TimedServer, tmp: Path, staff: User, staff_chat: Chat, mix: list[str], rate: float
) -> list[tuple[str, Run, set[int], int | None]]:
    """Others' reply latency with and without a stuck, a slow and a blocking user."""
    others_n = 20
    per_user = 10
    load_rate = min(rate, 100.0)
    slow = server.add_user("Slow", user_id=900_001)
    blocking = server.add_user("Blocking", user_id=900_002)
    stuck = server.add_user("Stuck", user_id=900_003)
    env = bot_env(server, tmp / "isolation", staff, staff_chat) | {
        "BENCH_SLOW_USER": str(slow.id),
        "BENCH_BLOCKING_USER": str(blocking.id),
    }
    (tmp / "isolation").mkdir()
    command = [sys.executable, "-m", "benchmarks.end_to_end", "--serve-variant"]
    bot = start_bot(server, command, env, tmp / "slow-bot.log")
    out: list[tuple[str, Run, set[int], int | None]] = []
    try:
        warm = [server.add_user(f"IsoWarm{i}") for i in range(others_n)]
        closed_loop(server, bot, scripts(warm, mix[: others_n * 4]), "warm-up")

        def load(name: str) -> tuple[dict[int, list[str]], set[int]]:
            people = [server.add_user(f"{name}{i}") for i in range(others_n)]
            return scripts(people, mix[: others_n * per_user]), {p.id for p in people}

        plan, ids = load("Base")
        out.append(("others, alone", open_loop(server, bot, plan, load_rate, "baseline"), ids, None))
        # One user starts a booking and never answers: the conversation waits at "which course?".
        server.send_text(stuck, "/book")
        server.wait_until(lambda: server.messages(stuck), timeout=10, description="the booking prompt")
        plan, ids = load("WithSlow")
        extra = {slow.id: [(0.1 + 0.2 * k, "how much is the course") for k in range(5)]}
        run = open_loop(server, bot, plan, load_rate, "slow", extra)
        label = f"others, with a user stuck mid-booking and one delayed {SLOW_SECONDS:.0f} s per update"
        out.append((label, run, ids, slow.id))
        plan, ids = load("WithBlocking")
        extra = {blocking.id: [(0.1 + 0.4 * k, "how much is the course") for k in range(5)]}
        run = open_loop(server, bot, plan, load_rate, "blocking", extra)
        label = f"others, with a user whose updates block the event loop {ms(BLOCK_SECONDS)} ms each"
        out.append((label, run, ids, blocking.id))
    finally:
        bot.stop()
    return out


# Where the bot's serving time goes, by inclusive time: (key, what, file suffix, function names,
# depth). The DISJOINT rows do not overlap; a deeper row is part of the row above it.
PROFILE_ROWS: tuple[tuple[str, str, str, tuple[str, ...], int], ...] = (
    ("brain", "`Brain.reply` (safety gate, booking intent, matcher)", "bot/brain.py", ("reply",), 0),
    ("match", "`Matcher.match`", "knowledge/matcher.py", ("match",), 1),
    ("safety", "`SafetyGate.check`", "knowledge/safety.py", ("check",), 1),
    (
        "send",
        "sendMessage (`Bot._send_message`: the parameters, the HTTP exchange, the returned Message)",
        "telegram/_bot.py",
        ("_send_message",),
        0,
    ),
    (
        "updates",
        "getUpdates (`Bot.get_updates`: asking for updates, parsing them)",
        "telegram/_bot.py",
        ("get_updates",),
        0,
    ),
    ("parse", "`Update.de_json` (PTB parsing each incoming update)", "telegram/_update.py", ("de_json",), 1),
    (
        "transport",
        "the transport under all Bot API calls, within the two rows above (`AiohttpRequest.do_request`)",
        "bot/transport.py",
        ("do_request",),
        0,
    ),
    (
        "aiohttp",
        "aiohttp `ClientSession._request` (building, sending, reading the response head)",
        "aiohttp/client.py",
        ("_request",),
        1,
    ),
    (
        "form",
        "aiohttp `ClientRequest.update_body_from_data` (form-encoding the parameters)",
        "aiohttp/client_reqrep.py",
        ("update_body_from_data",),
        2,
    ),
    ("read", "aiohttp `ClientResponse.read` (the response body)", "aiohttp/client_reqrep.py", ("read",), 1),
    ("httpx", "httpx `AsyncClient.send` (not used by the bot as shipped)", "httpx/_client.py", ("send",), 1),
    ("json", "json loads / dumps", "json/__init__.py", ("loads", "dumps"), 0),
)
DISJOINT = ("brain", "send", "updates")


def bot_profile(path: Path, run: Run) -> tuple[str, dict[str, float]]:
    """Where the bot process's serving time went (cProfile of the whole process; start-up, before
    `Application.run_polling`, is left out of the shares), and those shares by key."""
    import pstats

    stats = pstats.Stats(str(path))
    entries = stats.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in entries.values())
    handled = run.handled

    def cumulative(suffix: str, name: str) -> float:
        """Inclusive time of the function (the largest, if several match)."""
        found = [v[3] for (f, _, n), v in entries.items() if f.endswith(suffix) and n == name]
        return max(found, default=0.0)

    # cProfile times by the wall clock, so the event loop's wait for sockets (epoll) is time the bot
    # was idle, not working: it is left out of the shares too.
    idle = sum(v[2] for (f, _, n), v in entries.items() if f == "~" and "of 'select.epoll'" in n)
    serving = (cumulative("telegram/ext/_application.py", "run_polling") or total) - idle
    shares: dict[str, float] = {}
    rows = []
    for key, name, suffix, names, depth in PROFILE_ROWS:
        seconds = sum(cumulative(suffix, function) for function in names)
        if key == "httpx" and not seconds:
            continue  # the shipped bot does not use httpx: no row, unless it shows up
        shares[key] = seconds / serving
        rows.append(["... " * depth + name, f"{seconds:.2f}", f"{seconds / serving:.0%}"])
    shares["rest"] = max(0.0, 1 - sum(shares[key] for key in DISJOINT))
    rows.append(
        [
            "everything else: PTB's dispatch and handlers' own work, conversation state, persistence "
            "(SQLite), the event loop, other Bot API calls",
            f"{serving * shares['rest']:.2f}",
            f"{shares['rest']:.0%}",
        ]
    )
    busy = [kv for kv in entries.items() if not (kv[0][0] == "~" and "of 'select.epoll'" in kv[0][2])]
    top = sorted(busy, key=lambda kv: -kv[1][2])[:10]
    own = [
        [f"`{Path(f).name}:{line} {n}`", f"{v[2]:.2f}", f"{v[2] / serving:.0%}"] for (f, line, n), v in top
    ]
    return "\n\n".join(
        [
            "### Where the bot's CPU goes (as shipped)",
            f"A separate bot process (`python -m bot run`, as shipped) under cProfile through the same "
            f"saturation run ({handled:,} updates, {run.throughput:.0f}/s under the profiler). "
            f"{total:.1f} s of profiled time, of which start-up (imports, `Brain.load`, building the "
            f"application) {total - serving - idle:.1f} s and waiting for the sockets (epoll, idle) "
            f"{idle:.1f} s; the shares below are of the other {serving:.1f} s, the bot serving from "
            "`Application.run_polling` on. cProfile slows Python code, so read the shares, not the "
            "seconds. Indented rows are part of the row above them:",
            table(["inclusive time in", "s", "share of serving"], rows),
            table(["own time (top functions)", "s", "share of serving"], own),
        ]
    ), shares


def transports_note() -> str:
    """How the two transports were set up, and whether httpx had `sniffio` to import."""
    import importlib.metadata
    import importlib.util
    import re

    installed = importlib.util.find_spec("sniffio") is not None  # the bots run on this interpreter
    needs = sorted(
        {
            dist.metadata["Name"]
            for dist in importlib.metadata.distributions()
            if any(re.match(r"sniffio\b", r) and "extra ==" not in r for r in dist.requires or ())
        }
    )
    if not installed:
        sniffio = (
            "`sniffio` is not installed here, as on a fresh install of the bot: httpcore, under httpx, "
            "tries to import it for every lock it sets up, and pays for the failed import."
        )
    elif needs:
        sniffio = f"`sniffio` is installed here, required by {', '.join(needs)}."
    else:
        sniffio = (
            "`sniffio` is installed in this environment though nothing installed requires it any more "
            "(left from an earlier install): httpcore, under httpx, imports it for every lock it sets up, "
            "so on a fresh install of the bot, without it, httpx would also pay for those failed imports."
        )
    return (
        f'Transports side by side: "{HTTPX}" is this benchmark\'s launcher '
        "(`python -m benchmarks.end_to_end --serve-variant`, `BENCH_TRANSPORT=httpx`) calling "
        "`bot.app.build_application` with `HTTPXRequest()` for requests and "
        "`HTTPXRequest(connection_pool_size=1)` for getUpdates, which is what PTB's `ApplicationBuilder` "
        "builds when given none; the bot as shipped gets `AiohttpRequest` (bot/transport.py: 16 "
        "connections for requests, 1 for getUpdates). Nothing else differs; the two bots run one after "
        "the other in this one run, each with its own warm-up. " + sniffio
    )


def render(results: Results) -> str:
    mix = ", ".join(f"{name} {count}" for name, count in results.mix.items())
    rows = []
    for run in results.runs:
        lat = run.latencies()
        rows.append(
            [
                run.variant,
                run.label,
                f"{run.handled:,}",
                f"{run.span:.2f}",
                f"**{run.throughput:.0f}**",
                ms(median(lat)),
                f"**{ms(percentile(lat, 95))}**",
                ms(percentile(lat, 99)),
                ms(max(lat)),
                f"{run.cpu_bot / run.handled * 1000:.2f}",
                f"{run.cpu_bot / run.span:.0%}",
                f"{run.cpu_driver / run.span:.0%}",
                f"{run.handled / max(run.get_updates, 1):.1f}",
            ]
        )
    main = table(
        [
            "bot",
            "run",
            "updates",
            "s",
            "updates/s",
            "median ms",
            "p95 ms",
            "p99 ms",
            "max ms",
            "bot CPU ms / update",
            "bot CPU use",
            "server + users CPU use",
            "updates per getUpdates",
        ],
        rows,
    )
    iso_rows = []
    for label, run, ids, special in results.isolation:
        lat = run.latencies(ids)
        own = run.latencies({special}) if special else []
        iso_rows.append(
            [
                label,
                f"{len(lat)}",
                ms(median(lat)),
                ms(percentile(lat, 95)),
                ms(max(lat)),
                ", ".join(f"{x:.2f}" for x in own) if own else "-",
            ]
        )
    iso = table(
        ["others' replies", "replies", "median ms", "p95 ms", "max ms", "the special user's latencies (s)"],
        iso_rows,
    )
    notes = [f"{run.variant}, {run.label}: {note}" for run in results.runs for note in run.notes]
    notes += [f"{run.label}: {note}" for _, run, _, _ in results.isolation for note in run.notes]
    extra = sum(run.extra_replies for run in results.runs)
    if extra:
        notes.append(f"{extra} messages got more than one reply (latency pairing is off for those users)")
    if results.errors:
        notes.append("Bot API errors or exit problems: " + "; ".join(results.errors[:5]))
    return "\n\n".join(
        [
            "## 3. End to end: the real bot over the loopback Bot API",
            f"`python -m bot run` in a subprocess, polling `tests/telegram_server.py` in this process over "
            f"HTTP on 127.0.0.1; SQLite in a temporary directory; a staff group where enquiries are "
            f"posted. {results.users} users send {results.messages:,} messages ({mix}; eval-set "
            "questions, each answered with one message). Updates/s: messages handled from the first "
            "queued to the last reply. Reply latency: the server's receipt of the bot's sendMessage to "
            "that user minus the moment the message was queued. Saturation: each user sends their next "
            "message the moment their reply arrives (no think time), so 50 messages are always in "
            "flight and latency is queueing (Little's law: about 50 / throughput). Paced: the same "
            f"messages offered at {results.rate:.0f}/s on a fixed timetable, whatever the bot does: the "
            "latency users see when asked for the target rate; a bot slower than that falls behind and "
            "its latency grows for as long as the run lasts. Each bot gets a warm-up round first. Bot "
            "CPU: the subprocess's user + system time over the run (100% = one core); the server and "
            "the simulated users run in this process, on the other core. A bot CPU use well below 100% "
            "at saturation means the bot waited, for the server or for its core (which something else "
            "on the shared machine took for a while), and that row understates the bot; CPU per update "
            "is the steadier comparison.",
            *([transports_note()] if any(run.variant == HTTPX for run in results.runs) else []),
            main,
            f"Isolation: a fresh bot (this benchmark's launcher: `python -m bot run` plus one handler "
            f"that delays or stalls one user's updates), 20 other users sending 200 messages at "
            f"{min(results.rate, 100):.0f}/s, first alone, then with a user stuck mid-booking (sent "
            f"/book, never chose a course) and a user whose 5 updates each wait {SLOW_SECONDS:.0f} s "
            "(await, like a slow network call), then with a user whose 5 updates each block the event "
            f"loop for {ms(BLOCK_SECONDS)} ms (time.sleep, like CPU-heavy matching).",
            iso,
            *(["Notes: " + "; ".join(notes)] if notes else []),
            *([results.profile] if results.profile else []),
        ]
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.end_to_end",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=200.0, help="paced run: updates/s offered")
    parser.add_argument("--profile", action="store_true", help="also profile a bot through saturation")
    parser.add_argument("--profile-out", type=Path, help="keep that profile (pstats file) here")
    parser.add_argument("--no-variants", action="store_true", help="only the bot as shipped")
    parser.add_argument("--serve-variant", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_variant:
        with contextlib.suppress(KeyboardInterrupt):
            raise SystemExit(serve_variant())
        return
    print(machine())
    print()
    profile = args.profile or args.profile_out is not None
    results = run_all(
        args.users, args.messages, args.rate, profile, args.profile_out, variants=not args.no_variants
    )
    print(render(results))


if __name__ == "__main__":
    main()
