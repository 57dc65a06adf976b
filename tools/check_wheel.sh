#!/usr/bin/env bash
# Builds the wheel, installs it into a clean venv (pinned by the constraints) and checks that
# `airflow providers` shows the provider with its hook, connection type and extra link.
set -euo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-$(command -v uv || echo .bootstrap/bin/uv)}
PYTHON=${PYTHON:-python3}
CONSTRAINTS=${CONSTRAINTS:-constraints/airflow-3.3.txt}
AIRFLOW_SPEC=${AIRFLOW_SPEC:-apache-airflow==3.3.2}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$UV" build -q --wheel -o "$work/dist" .
wheel=$(ls "$work"/dist/airflow_provider_ft-*.whl)
"$PYTHON" -c 'import sys, zipfile; names = zipfile.ZipFile(sys.argv[1]).namelist(); sys.exit(0 if "airflow_provider_ft/py.typed" in names else "py.typed missing from the wheel")' "$wheel"
"$UV" venv -q -p "$PYTHON" "$work/venv"
VIRTUAL_ENV="$work/venv" UV_COMPILE_BYTECODE=1 "$UV" pip install -q -c "$CONSTRAINTS" "$AIRFLOW_SPEC" "$wheel"

export AIRFLOW_HOME="$work/home"
airflow="$work/venv/bin/airflow"
"$airflow" providers list -o json > "$work/providers.json"
"$airflow" providers hooks -o json > "$work/hooks.json"
"$airflow" providers links -o json > "$work/links.json"
"$work/venv/bin/python" - "$work" <<'PY'
import json, sys
work = sys.argv[1]
providers = {p["package_name"]: p for p in json.load(open(f"{work}/providers.json"))}
hooks = json.load(open(f"{work}/hooks.json"))
links = json.load(open(f"{work}/links.json"))
assert "airflow-provider-ft" in providers, f"provider not listed: {sorted(providers)}"
conn = [h for h in hooks if h.get("connection_type") == "openai_fine_tuning"]
assert conn and conn[0]["class"] == "airflow_provider_ft.hooks.fine_tuning.FineTuningHook", hooks
assert any("airflow_provider_ft.links.FineTuningJobLink" in json.dumps(link) for link in links), links
print(f"wheel OK: airflow-provider-ft {providers['airflow-provider-ft']['version']} lists hook "
      f"{conn[0]['class']} for connection type openai_fine_tuning and the extra link")
PY
