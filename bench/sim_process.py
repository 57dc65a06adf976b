"""The provider's simulator as a separate process, with counters for the benchmarks.

``python -m bench.sim_process --api-key K --seconds-per-step S`` runs the unmodified
``airflow_provider_ft.simulator.Simulator`` (same HTTP server, same handlers) and prints
``FT_SIMULATOR_URL=...`` like ``python -m airflow_provider_ft.simulator``. It adds, from outside:

* a count of TCP connections the server accepted (a wrapper around the server's ``process_request``,
  which the accept loop calls once per accepted socket);
* a count of /v1 requests by endpoint (the state's request log is replaced by a counting one that
  keeps no records, so tens of thousands of polls cost no memory);
* ``GET /__simulator__/bench/stats`` and ``GET /__simulator__/bench/job_ends`` (each job's exact
  terminal time, ``JobRecord.natural_end_wall()``, a float, where the API only shows whole seconds).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections import Counter
from types import FrameType
from typing import Any

from airflow_provider_ft.simulator.server import ADMIN_PREFIX, Simulator
from airflow_provider_ft.simulator.state import RecordedRequest, RequestLog
from bench.common import endpoint_of


class CountingLog(RequestLog):
    """Counts requests by endpoint instead of keeping them."""

    def __init__(self) -> None:
        super().__init__(maxlen=1)
        self.counts: Counter[str] = Counter()
        self._count_lock = threading.Lock()

    def append(self, item: RecordedRequest) -> None:
        name = endpoint_of(item.method, item.path)
        with self._count_lock:
            self.counts[name] += 1

    def snapshot_counts(self) -> dict[str, int]:
        with self._count_lock:
            return dict(self.counts)


class BenchSimulator(Simulator):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.counting = CountingLog()
        self.state.requests = self.counting
        self.accepted = 0
        self._accepted_lock = threading.Lock()

    def start(self) -> BenchSimulator:
        super().start()
        server = self._server
        assert server is not None
        original = server.process_request

        def counting_process_request(request: Any, client_address: Any) -> None:
            with self._accepted_lock:
                self.accepted += 1
            original(request, client_address)

        server.process_request = counting_process_request  # type: ignore[method-assign]
        return self

    def admin(self, req: Any, auth_error: Any) -> dict[str, Any]:
        prefix = ADMIN_PREFIX + "/bench/"
        if not req.path.startswith(prefix):
            return super().admin(req, auth_error)
        if auth_error is not None:
            raise auth_error
        what = req.path[len(prefix) :]
        if what == "stats":
            server = self._server
            open_connections = len(server._open) if server is not None else 0
            return {
                "connections_accepted": self.accepted,
                "connections_open": open_connections,
                "requests": self.counting.snapshot_counts(),
                "threads": threading.active_count(),
            }
        if what == "job_ends":
            with self.state.lock:
                return {
                    job_id: {"end": job.natural_end_wall(), "created": job.created, "status": job.natural_end()[1]}
                    for job_id, job in self.state.jobs.items()
                }
        return super().admin(req, auth_error)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.sim_process")
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--seconds-per-step", type=float, default=1.0)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    sim = BenchSimulator(api_key=args.api_key, seconds_per_step=args.seconds_per_step, port=args.port, seed=7)
    sim.start()
    try:
        print(f"FT_SIMULATOR_URL={sim.base_url}", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
