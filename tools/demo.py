"""`make demo`: run the example DAG end to end through real Airflow against the embedded simulator.

Starts the simulator on a free loopback port (or uses FT_BASE_URL/FT_API_KEY, or an
AIRFLOW_CONN_OPENAI_DEFAULT that is already set), runs ``example_fine_tuning`` with ``dag.test()``
(the sensor really defers; its trigger runs in Airflow's in-process triggerer loop), prints the
fine-tuned model and its checkpoints from XCom, and exits non-zero if anything failed.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _prepare_environment() -> None:
    home = Path(tempfile.mkdtemp(prefix="ft-demo-airflow-"))
    os.environ["AIRFLOW_HOME"] = str(home)
    os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{home / 'airflow.db'}"
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ.setdefault("FT_POLL_INTERVAL", "1")


def main() -> int:
    _prepare_environment()
    from airflow_provider_ft.testing import api_server, migrate_metadata_db, read_xcoms

    print("Preparing an Airflow metadata DB ...", flush=True)
    migrate_metadata_db()
    sys.path.insert(0, str(ROOT / "dags"))
    with api_server(seconds_per_step=0.02) as server:
        where = f"the embedded simulator at {server.base_url}" if server.is_simulated else "the configured API"
        print(f"Running DAG example_fine_tuning against {where} ...", flush=True)
        import example_fine_tuning

        started = time.monotonic()
        run = example_fine_tuning.dag.test()
        elapsed = time.monotonic() - started
        xcoms = read_xcoms("example_fine_tuning", run.run_id)
        record = server.simulator.state.jobs if server.simulator else {}

    state = str(getattr(run.state, "value", run.state))
    print()
    print(f"DAG run {run.run_id}: {state} in {elapsed:.1f}s")
    model = xcoms.get(("wait_for_job", -1, "fine_tuned_model"))
    checkpoints = xcoms.get(("wait_for_job", -1, "checkpoints")) or []
    job_id = xcoms.get(("create_job", -1, "return_value"))
    print(f"Fine-tuning job:   {job_id}")
    print(f"Fine-tuned model:  {model}")
    print(f"Trained tokens:    {xcoms.get(('wait_for_job', -1, 'trained_tokens'))}")
    print()
    print(f"{'step':>6}  {'train_loss':>10}  {'valid_loss':>10}  {'valid_acc':>9}  checkpoint")
    for ckpt in checkpoints:
        m = ckpt.get("metrics", {})
        print(
            f"{ckpt['step_number']:>6}  {m.get('train_loss', float('nan')):>10.4f}  "
            f"{m.get('valid_loss', float('nan')):>10.4f}  {m.get('valid_mean_token_accuracy', float('nan')):>9.4f}  "
            f"{ckpt['fine_tuned_model_checkpoint']}"
        )
    if record:
        print(f"\nSimulator: {len(record)} job(s) created")
    ok = state == "success" and bool(model) and bool(checkpoints) and (not record or len(record) == 1)
    print("\nDEMO OK" if ok else "\nDEMO FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
