"""`python -m airflow_provider_ft.simulator` as a separate process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]


def _start(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_ft.simulator", "--host", "127.0.0.1", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    return proc, line


def test_module_prints_url_serves_and_stops_on_sigterm() -> None:
    proc, line = _start("--api-key", "sk-cli", "--seconds-per-step", "0.05", "--seed", "3")
    try:
        assert line.startswith("FT_SIMULATOR_URL=http://127.0.0.1:")
        assert line.endswith("/v1\n")
        url = line.strip().split("=", 1)[1]
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        assert port > 0
        response = requests.get(url + "/fine_tuning/jobs", headers={"Authorization": "Bearer sk-cli"}, timeout=5)
        assert response.status_code == 200
        assert response.json() == {"object": "list", "data": [], "has_more": False}
        assert requests.get(url + "/files", timeout=5).status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert out == ""  # exactly one line was printed


def test_api_key_from_environment_and_sigint() -> None:
    proc, line = _start(env={"FT_SIMULATOR_API_KEY": "sk-from-env"})
    try:
        url = line.strip().split("=", 1)[1]
        assert (
            requests.get(url + "/files", headers={"Authorization": "Bearer sk-from-env"}, timeout=5).status_code == 200
        )
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)
    assert proc.returncode == 0


def test_main_is_callable_for_the_console_script() -> None:
    from airflow_provider_ft.simulator.__main__ import main

    assert main(["--faults", "{not json"]) == 2
