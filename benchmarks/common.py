"""Small helpers every benchmark shares: percentiles, markdown tables, the machine's description.

The machine is shared (2 cores, other engineers' tests), so every figure is printed with how it was
obtained, and comparisons are made side by side in one run rather than against old numbers.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def percentile(samples: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100): an observed value, no interpolation."""
    ordered = sorted(samples)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples) if samples else math.nan


def ms(seconds: float) -> str:
    """Seconds as milliseconds with sensible precision."""
    value = seconds * 1000
    if math.isnan(value):
        return "-"
    if value < 1:
        return f"{value:.3f}"
    if value < 10:
        return f"{value:.2f}"
    if value < 100:
        return f"{value:.1f}"
    return f"{value:.0f}"


def pct(rate: float) -> str:
    return "-" if math.isnan(rate) else f"{rate:.1%}"


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines.extend("| " + " | ".join(str(cell) for cell in row) + " |" for row in rows)
    return "\n".join(lines)


def rss_bytes() -> int:
    """This process's resident set size now (Linux /proc; 0 where unavailable)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> str:
    """What the figures were measured on, including how busy the machine already was."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3
    return table(
        ["what", "value"],
        [
            ["date (UTC)", datetime.now(UTC).strftime("%Y-%m-%d %H:%M")],
            ["cores", f"{os.cpu_count()} ({cpu_model()})"],
            ["load average at start (1/5/15 min)", " / ".join(f"{x:.2f}" for x in load)],
            ["Python", f"{platform.python_implementation()} {platform.python_version()}"],
            ["OS", platform.platform()],
            ["command", f"`{command()}`"],
            ["code", code_state()],
        ],
    )


def code_state() -> str:
    """The commit measured, and any uncommitted changes to the code outside benchmarks/."""
    import subprocess

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.rstrip() if done.returncode == 0 else ""  # porcelain lines start with a space

    commit = git("rev-parse", "--short", "HEAD").strip()
    if not commit:
        return "unknown (not a git checkout)"
    changed = [
        line[3:]
        for line in git("status", "--porcelain", "--untracked-files=no").splitlines()
        if not line[3:].startswith("benchmarks/")
    ]
    subject = git("log", "-1", "--format=%s").strip().replace("|", "\\|")
    state = f"commit {commit} ({subject})"
    return state + (
        f"; uncommitted changes outside benchmarks/: {', '.join(f'`{c}`' for c in changed)}"
        if changed
        else ""
    )


def command() -> str:
    """How this process was started, as typed: `python -m benchmarks.matching --passes 3`."""
    script = Path(sys.argv[0]).resolve()
    try:
        module = ".".join(script.relative_to(ROOT).with_suffix("").parts)
    except ValueError:
        return " ".join(["python", *sys.argv])
    module = module.removesuffix(".__main__")
    return " ".join(["python", "-m", module, *sys.argv[1:]])


class Stopwatch:
    """perf_counter in a `with` block: `with Stopwatch() as sw: ...; sw.seconds`."""

    def __enter__(self) -> Stopwatch:
        self.seconds = 0.0
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.seconds = time.perf_counter() - self._start
