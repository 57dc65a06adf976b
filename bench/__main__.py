"""``python -m bench [--quick] [triggerer|parse|requests|simulator ...]``: run the benchmarks.

Each benchmark prints its figures next to their targets (PASS/MISS) and writes them to
``bench/results/<name>.json``. With no names, all four run (about 9 minutes on 2 cores; ``--quick``
about 4). ``--max-in-flight`` / ``--what-if-shards`` re-run the triggerer benchmark with the
provider's transport patched in this process only (results in ``triggerer-whatif.json``), to try a
fix before making it.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

from bench.common import Report

BENCHMARKS = ("triggerer", "parse", "requests", "simulator")


def _runner(name: str, what_if: list[str]) -> Callable[[bool], Report]:
    if name == "triggerer":
        from bench import triggerer

        return lambda quick: triggerer.run(quick, what_if)
    if name == "parse":
        from bench import parse

        return parse.run
    if name == "requests":
        from bench import economy

        return economy.run
    from bench import simulator_load

    return simulator_load.run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("benchmarks", nargs="*", metavar="|".join(BENCHMARKS), help="which to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="smaller N and shorter jobs")
    parser.add_argument(
        "--max-in-flight",
        type=int,
        help="triggerer what-if: run the trigger with transport.MAX_IN_FLIGHT patched to this (pool size and bound)",
    )
    parser.add_argument(
        "--what-if-shards",
        type=int,
        help="triggerer what-if: split the per-loop httpx pool into this many smaller clients",
    )
    parser.add_argument(
        "--what-if-events-every",
        type=float,
        help="triggerer what-if: the trigger fetches job events at most every this many seconds (and at the end)",
    )
    args = parser.parse_args(argv)
    what_if = [f"--max-in-flight={args.max_in_flight}"] if args.max_in_flight else []
    what_if += [f"--what-if-events-every={args.what_if_events_every}"] if args.what_if_events_every else []
    what_if += [f"--what-if-shards={args.what_if_shards}"] if args.what_if_shards else []
    names = args.benchmarks or list(BENCHMARKS)
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    started = time.perf_counter()
    missed: list[str] = []
    for name in names:
        report = _runner(name, what_if)(args.quick)
        path = report.write()
        print(f"\n  -> {path.relative_to(path.parents[2])}")
        missed += [f"{name}: {c.name}" for c in report.missed]
    print(f"\nbench finished in {time.perf_counter() - started:.0f} s; {len(missed)} target(s) missed")
    for line in missed:
        print(f"  MISS {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
