"""Run every benchmark and write benchmarks/RESULTS.md: `python -m benchmarks` (what `make bench` runs).

Parts, each also runnable alone:
1-2. python -m benchmarks.matching    accuracy against baselines; the matcher at 100 to 10,000 entries
3.   python -m benchmarks.end_to_end  the real bot over the loopback Bot API, 50 users, 2,000 messages
4.   python -m benchmarks.startup     `python -m bot run` until it polls; `python -m bot ask`

The targets are judged from this run's figures; where one is missed the report says by how much and
points at the profile that explains it. Expect about 10 minutes on the 2-core machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks import end_to_end, matching, startup
from benchmarks.common import machine, median, ms, pct, percentile, table

SHIPPED = end_to_end.SHIPPED

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def progress(text: str) -> None:
    print(f"[benchmarks {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def e2e_metrics(results: end_to_end.Results) -> tuple[dict[str, float], str]:
    """The figures the targets are judged on, and the what-if with the best saturation throughput."""
    runs = {(r.variant, r.label.split(" ")[0]): r for r in results.runs}
    shipped_sat = runs[(SHIPPED, "saturation")]
    shipped_paced = runs[(SHIPPED, "paced")]
    out = {
        "throughput": shipped_sat.throughput,
        "cpu_per_update": shipped_sat.cpu_bot / shipped_sat.handled,
        "paced_throughput": shipped_paced.throughput,
        "paced_p95": percentile(shipped_paced.latencies(), 95),
        "paced_median": median(shipped_paced.latencies()),
    }
    # The what-if with the best p95 at the target rate (the harder of the two targets).
    paced = [
        (percentile(r.latencies(), 95), v) for (v, k), r in runs.items() if k == "paced" and v != SHIPPED
    ]
    variant = ""
    if paced:
        p95, variant = min(paced)
        saturation = runs[(variant, "saturation")]
        out |= {
            "best_throughput": saturation.throughput,
            "best_paced_p95": p95,
            "best_cpu_per_update": saturation.cpu_bot / saturation.handled,
        }
    if results.isolation:
        alone = results.isolation[0]
        slow = results.isolation[1]
        out["alone_p95"] = percentile(alone[1].latencies(alone[2]), 95)
        out["with_slow_p95"] = percentile(slow[1].latencies(slow[2]), 95)
    return out, variant.replace("what-if: ", "")


def verdict(met: bool) -> str:
    return "**met**" if met else "**missed**"


def targets(
    acc: dict[str, float], scale: dict[str, float], e2e: dict[str, float], best_variant: str
) -> tuple[str, list[str]]:
    """The targets table, and the explanation of each missed one."""
    rows: list[list[str]] = []
    why: list[str] = []
    if "emb_top1" in acc:
        gap = acc["ours_top1"] - acc["emb_top1"]
        rows.append(
            [
                "top-1 at least the embedding baseline's (held-out half)",
                f"{pct(acc['ours_top1'])} vs {pct(acc['emb_top1'])}",
                verdict(gap >= 0),
                f"{gap * 100:+.1f} points",
            ]
        )
        fa_gap = acc["ours_fa"] - acc["emb_fa"]
        rows.append(
            [
                "false answers at most the embedding baseline's (held-out half)",
                f"{pct(acc['ours_fa'])} vs {pct(acc['emb_fa'])}",
                verdict(fa_gap <= 0),
                f"{fa_gap * 100:+.1f} points",
            ]
        )
        speedup = acc["emb_median"] / acc["ours_median"]
        rows.append(
            [
                "at least 100× faster per query than the embedding baseline (median)",
                f"{ms(acc['emb_median'])} ms vs {ms(acc['ours_median'])} ms: {speedup:.0f}×",
                verdict(speedup >= 100),
                f"{speedup / 100:.2f} of the target" if speedup < 100 else f"{speedup / 100:.1f}× the target",
            ]
        )
        if speedup < 100:
            why.append(
                f"**100× faster than the embeddings: {speedup:.0f}×.** MiniLM costs "
                f"{ms(acc['emb_median'])} ms per message here (a batch of one on 2 CPU cores); 100× would "
                f"need our whole reply in {ms(acc['emb_median'] / 100)} ms. `Brain.reply` is "
                f"{ms(acc['ours_median'])} ms median, and the profile of section 2 shows it spread over "
                "pure-Python work per message (folding words, phrases and spelling, the safety gate's "
                "regexes, the first pass, the rapidfuzz rerank of 5 candidates), with no single hotspot "
                "to remove. Closing it would take a compiled tokeniser/first pass, or caching replies to "
                "repeated messages (most Telegram questions repeat)."
                + (" A 10× target would be met." if speedup >= 10 else "")
            )
    else:
        missing = ["accuracy and speed against the embedding baseline", "not run", "-", "no bench extra"]
        rows.append(missing)
    worst = max(scale["shipped_p99"], acc["ours_p99"])  # two measurements in this run: the worse
    shipped_ok = worst < 0.001
    rows.append(
        [
            f"p99 under 1 ms at the shipped size ({scale['shipped_size']:.0f} entries and gaps)",
            f"{ms(scale['shipped_p99'])} ms in section 2, {ms(acc['ours_p99'])} ms in section 1 "
            f"(per-message medians: {ms(scale['shipped_p99_messages'])} ms)",
            verdict(shipped_ok),
            f"{worst / 0.001:.2f}× the limit (the worse)"
            if not shipped_ok
            else f"{1 - worst / 0.001:.0%} under",
        ]
    )
    if not shipped_ok:
        why.append(
            f"**p99 under 1 ms at the shipped size: {ms(worst)} ms.** The median is "
            f"{ms(scale['shipped_median'])} ms; the tail is the messages that ask several things "
            '("does meso hurt and how long does it take"): the matcher ranks the whole message and then '
            "each part again, and each ranking reranks 5 candidates with rapidfuzz, so a two-part "
            "message costs about three single ones (the slowest messages in the profile below). The "
            "raw p99 also carries scheduler noise from the shared machine (the per-message figure "
            "leaves that out). What would close it: rank a part only when it brings new words, reuse "
            "the whole message's first pass for its parts, or skip the rerank of candidates that "
            "cannot reach the answer threshold; all in `knowledge/matcher.py`."
        )
    big_ok = scale["big_p99"] < 0.020
    rows.append(
        [
            f"p99 under 20 ms at {scale['big_size']:,.0f} entries",
            f"{ms(scale['big_p99'])} ms (per-message medians: {ms(scale['big_p99_messages'])} ms)",
            verdict(big_ok),
            f"{scale['big_p99'] / 0.020:.2f}× the limit" if not big_ok else "",
        ]
    )
    if not big_ok:
        why.append(
            f"**p99 under 20 ms at {scale['big_size']:,.0f} entries: {ms(scale['big_p99'])} ms** "
            f"(median {ms(scale['big_median'])} ms). The profile at 10,000 entries puts most of it in "
            "`Matcher._first_pass` (its own time, and the sorting and max() it calls). Its "
            "phrasing-overlap pass runs best bound first and stops once 5 "
            "entries are certain; but when fewer than 5 entries share a message's rare word "
            '("breastfeeding"), the rest of the top 5 come from the thousands that share only its '
            'commonest word ("mesotherapy" is in about two thirds of the entries, as in the real '
            "FAQ). Those all have the same bound, so the loop cannot stop and scores every phrasing of "
            "every one of them. What would close it: a tighter bound per entry (its lightest phrasing, "
            "precomputed), or stopping at the first entry whose bound ties the heap's minimum, or "
            "candidates only from the message's rarer words when they give any (MaxScore/WAND); all in "
            "`knowledge/matcher.py`. It matters end to end too: matching runs on the event loop, so a "
            "slow match holds every user up (section 3, the blocking row)."
        )
    rows.append(
        [
            "at least 200 updates/s end to end (saturation, as shipped)",
            f"{e2e['throughput']:.0f}/s",
            verdict(e2e["throughput"] >= 200),
            f"{e2e['throughput'] / 200:.0%} of the target" if e2e["throughput"] < 200 else "",
        ]
    )
    rows.append(
        [
            "p95 reply latency under 100 ms at 200 updates/s (paced, as shipped)",
            f"{ms(e2e['paced_p95'])} ms ({e2e['paced_throughput']:.0f}/s kept up)",
            verdict(e2e["paced_p95"] < 0.100),
            f"{e2e['paced_p95'] / 0.100:.2f}× the limit" if e2e["paced_p95"] >= 0.100 else "",
        ]
    )
    if "alone_p95" in e2e:
        rows.append(
            [
                "one user's slow conversation does not hold up the others",
                f"others' p95 {ms(e2e['alone_p95'])} ms alone, {ms(e2e['with_slow_p95'])} ms beside a "
                "stuck and a slow user",
                verdict(e2e["with_slow_p95"] < 0.100),
                "see the blocking row: only a handler that blocks the loop does",
            ]
        )
    if e2e["throughput"] < 200 or e2e["paced_p95"] >= 0.100:
        best = ""
        if "best_throughput" in e2e:
            both = e2e["best_throughput"] >= 200 and e2e["best_paced_p95"] < 0.100
            saving = 1 - e2e["best_cpu_per_update"] / e2e["cpu_per_update"]
            best = (
                f" Measured in the same run (the what-if rows), with {best_variant}: {saving:.0%} less CPU "
                f"per update ({ms(e2e['best_cpu_per_update'])} ms), {e2e['best_throughput']:.0f} updates/s "
                f"at saturation and a p95 of {ms(e2e['best_paced_p95'])} ms at 200/s: "
                + ("both targets met." if both else "better, but not both targets.")
            )
            if not both:
                best += (
                    " At about 5 ms of CPU per update the bot's ceiling is near 200/s, so offered 200/s it "
                    "runs close to 100% busy and its p95 swings widely with small changes in how fast "
                    "the shared CPU is. Profiled with both changes, the HTTP client (httpx, httpcore, "
                    "anyio: building, sending and reading each sendMessage) is still about half of the "
                    "bot's CPU and `Brain.reply` well under a tenth, so the next step for headroom is "
                    "a leaner Bot API transport for PTB (a custom `BaseRequest`), not the matcher."
                )
        why.append(
            f"**End to end: {e2e['throughput']:.0f} updates/s, p95 {ms(e2e['paced_p95'])} ms at 200/s.** "
            f"The bot is CPU-bound: one core at ~100%, {ms(e2e['cpu_per_update'])} ms of CPU per update, "
            "and a bot slower than the offered rate falls further behind for as long as the load lasts, "
            "which is what the paced p95 shows. The profile (section 3) puts `Brain.reply` at a few "
            "percent; most of the time is in sending the reply through httpx/httpcore: (a) httpcore's "
            "connection pool scans every open connection whenever a request starts or ends, and PTB "
            "opens up to 256 (about one per update in flight); (b) httpcore 1.0 runs "
            "`import sniffio` on every lock it sets up, and `sniffio` is not installed (anyio 4 no longer "
            "needs it), so every request pays for several failed imports (about 40 µs each)." + best + " "
            "What would close it, outside `benchmarks/`: add `sniffio` to the bot's dependencies "
            "(pyproject.toml) and set `.connection_pool_size(8)` (or 16) on the `ApplicationBuilder` "
            "in `bot/app.py` (with real Telegram's longer round trips, 16 leaves more room for "
            "requests in flight); then, for headroom, the transport."
        )
    return table(["target", "measured", "verdict", "by how much"], rows), why


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"default: {RESULTS}")
    parser.add_argument("--passes", type=int, default=5, help="timed passes over the eval set")
    parser.add_argument("--quick", action="store_true", help="fewer passes and runs, no what-ifs or profiles")
    args = parser.parse_args(argv)
    passes = 2 if args.quick else args.passes
    header = machine()
    started = time.monotonic()

    progress("1. accuracy against baselines")
    accuracy_md, acc = matching.accuracy(passes)
    progress("2. scale")
    scale_md, scale = matching.scale(max(1, passes // 2))
    profiles = [] if args.quick else [matching.profile(), matching.profile(10_000)]
    progress("3. end to end")
    results = end_to_end.run_all(50, 2000, 200.0, profile=not args.quick, variants=not args.quick)
    e2e, best_variant = e2e_metrics(results)
    progress("4. start-up")
    startup_md, _ = startup.startup(3 if args.quick else 5)
    summary, why = targets(acc, scale, e2e, best_variant)
    minutes = (time.monotonic() - started) / 60

    command = "python -m benchmarks" + (" --quick" if args.quick else "")
    report = "\n\n".join(
        [
            "# mesobot benchmarks",
            f"Written by `{command}`, which `make bench` runs after installing the optional `bench` "
            "extra (`pip install torch==2.13.0` first, the CPU build, then `pip install -e '.[bench]'`). "
            "Each part runs alone too: `python -m benchmarks.matching`, `python -m benchmarks.end_to_end`, "
            "`python -m benchmarks.startup`. Every comparison is made side by side in this one run, "
            f"which took {minutes:.0f} minutes. The machine is shared (other engineers' tests run "
            "on the same 2 cores), so absolute times move from run to run; ratios within a table hold "
            "better. Nothing here is asserted by the tests.",
            header,
            "## Targets",
            summary,
            *(["### Why the missed targets are missed, and what would close them", *why] if why else []),
            accuracy_md,
            scale_md,
            *profiles,
            end_to_end.render(results),
            startup_md,
        ]
    )
    args.out.write_text(report.rstrip() + "\n", encoding="utf-8")
    progress(f"wrote {args.out} ({minutes:.1f} min)")


if __name__ == "__main__":
    main()
