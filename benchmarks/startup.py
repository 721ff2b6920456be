"""Start-up: how long until the bot serves, and how long one CLI answer takes, as a user runs them.

- `python -m bot run`: from launching the subprocess until its first getUpdates reaches the
  loopback Bot API server (TELEGRAM_BOT_TOKEN = the server's token, MESOBOT_DB in a temporary
  directory), split at its first request (getMe): before it, interpreter start, imports, loading
  and validating the knowledge, building the application; after it, PTB's initialise (getMe,
  setMyCommands, deleteWebhook), persistence and the job queue.
- `python -m bot ask "how much is the course"`: wall time of the whole subprocess.
- For reference: a bare `python -c pass`; and, timed inside one fresh interpreter, importing the
  bot's modules, then `Brain.load()`.

Each is the median of a few runs (default 5), with min and max, run one after another.

Usage: python -m benchmarks.startup [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, machine, median, ms, table
from benchmarks.end_to_end import TimedServer

QUESTION = "how much is the course"


class StartServer(TimedServer):
    """Also notes when the first request of any kind arrives."""

    def __init__(self) -> None:
        super().__init__()
        self.first_request: float | None = None

    def handle_http(self, *args: Any, **kwargs: Any) -> tuple[int, bytes, str]:
        if self.first_request is None:
            self.first_request = time.monotonic()
        return super().handle_http(*args, **kwargs)


def time_run() -> tuple[float, float]:
    """Seconds from launch to the first request, and to the first getUpdates."""
    with StartServer() as server, tempfile.TemporaryDirectory(prefix="mesobot-start-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "MESOBOT_"))}
        env |= {
            "TELEGRAM_BOT_TOKEN": server.token or "",
            "TELEGRAM_API_BASE_URL": server.base_url,
            "MESOBOT_DB": str(Path(tmp) / "mesobot.sqlite3"),
        }
        start = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "run"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            server.wait_until(
                lambda: server.polls or process.poll() is not None, timeout=60, description="getUpdates"
            )
            if not server.polls:
                raise RuntimeError(f"`python -m bot run` exited with {process.returncode} before polling")
            return (server.first_request or server.polls[0]) - start, server.polls[0] - start
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def time_command(command: list[str]) -> float:
    """Wall time of a subprocess, launch to exit."""
    start = time.monotonic()
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - start


# In one fresh interpreter: how long the bot's imports take, then loading the knowledge.
PROBE = (
    "import time; t0 = time.perf_counter(); import bot.app, bot.cli, handlers; "
    "t1 = time.perf_counter(); from bot.brain import Brain; Brain.load(); "
    "print(t1 - t0, time.perf_counter() - t1)"
)


def probe() -> tuple[float, float]:
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, check=True, capture_output=True, text=True)
    imports, load = done.stdout.split()
    return float(imports), float(load)


def repeat(fn: Callable[[], float], runs: int) -> list[float]:
    fn()  # one unmeasured run: the page cache and .pyc files are warm for all that follow
    return [fn() for _ in range(runs)]


def startup(runs: int) -> tuple[str, dict[str, float]]:
    """Part 4: the markdown section, and the medians."""
    python = sys.executable
    launches = [time_run() for _ in range(runs + 1)][1:]
    first_request = [a for a, _ in launches]
    polling = [b for _, b in launches]
    ask = repeat(lambda: time_command([python, "-m", "bot", "ask", QUESTION]), runs)
    bare = repeat(lambda: time_command([python, "-c", "pass"]), runs)
    probes = [probe() for _ in range(runs + 1)][1:]
    imports = [a for a, _ in probes]
    load = [b for _, b in probes]

    def row(name: str, values: list[float], target: str = "") -> list[str]:
        return [name, f"**{ms(median(values))}**", ms(min(values)), ms(max(values)), target]

    metrics = {"run_median": median(polling), "ask_median": median(ask)}
    return "\n\n".join(
        [
            "## 4. Start-up",
            f"Wall time, median of {runs} runs after one unmeasured run (so the OS file cache and "
            ".pyc files are warm, as on a server restarting the bot), runs one after another.",
            table(
                ["what", "median ms", "min ms", "max ms", "note"],
                [
                    row("`python -m bot run` until its first getUpdates", polling),
                    row("... of which: until its first request (getMe)", first_request),
                    row(
                        "... of which: first request to first getUpdates",
                        [b - a for a, b in launches],
                        "getMe, setMyCommands, deleteWebhook, persistence, job queue",
                    ),
                    row(f'`python -m bot ask "{QUESTION}"` (whole process)', ask),
                    row("reference: `python -c pass`", bare),
                    row("reference, in one process: `import bot.app, bot.cli, handlers`", imports),
                    row(
                        "reference, in the same process: `Brain.load()`",
                        load,
                        "read and validate knowledge/, build the matcher and safety gate",
                    ),
                ],
            ),
        ]
    ), metrics


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.startup",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    print(machine())
    print()
    print(startup(args.runs)[0])


if __name__ == "__main__":
    main()
