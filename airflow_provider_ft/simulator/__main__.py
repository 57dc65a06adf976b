"""Run the simulator as a process: ``python -m airflow_provider_ft.simulator --port 0``.

Prints exactly one line, ``FT_SIMULATOR_URL=http://HOST:PORT/v1`` (``.../openai/v1`` with
``--dialect azure``, whose dated API lives at ``.../openai``), then serves until SIGINT or
SIGTERM, so a parent process (a test fixture, a demo script) can read the URL and move on.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from types import FrameType

DEFAULT_API_KEY = "sk-simulator"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ft-simulator", description="Offline OpenAI fine-tuning API simulator.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--api-key",
        default=None,
        help=f"key clients must send (default: $FT_SIMULATOR_API_KEY or {DEFAULT_API_KEY})",
    )
    parser.add_argument("--seconds-per-step", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--organization", default="org-simulator")
    parser.add_argument(
        "--dialect",
        choices=("openai", "azure"),
        default="openai",
        help="openai: /v1 with Bearer auth; azure: /openai/v1 and the dated /openai API with an api-key header",
    )
    parser.add_argument("--faults", default=None, help='fault plan as JSON, e.g. \'{"rate_limit": 0.1, "seed": 1}\'')
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from airflow_provider_ft.simulator.faults import FaultPlan
    from airflow_provider_ft.simulator.server import Simulator

    api_key = args.api_key or os.environ.get("FT_SIMULATOR_API_KEY") or DEFAULT_API_KEY
    try:
        faults = FaultPlan.from_dict(json.loads(args.faults)) if args.faults else None
    except (ValueError, TypeError) as exc:
        print(f"ft-simulator: invalid --faults: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    sim = Simulator(
        api_key=api_key,
        seconds_per_step=args.seconds_per_step,
        host=args.host,
        port=args.port,
        seed=args.seed,
        organization=args.organization,
        faults=faults,
        dialect="azure" if args.dialect == "azure" else "openai",
    ).start()
    try:
        print(f"FT_SIMULATOR_URL={sim.base_url}", flush=True)
        # Short waits keep the main thread responsive to signals.
        while not stop.wait(0.5):
            pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
