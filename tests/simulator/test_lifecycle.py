"""Job lifecycle on a fake clock (1 s per step): statuses, events, checkpoints, failure, cancel,
pause/resume, listing."""

from __future__ import annotations

import time
from typing import Any

from airflow_provider_ft.simulator import Simulator
from tests.simulator.conftest import START, Client, FakeClock, chat_jsonl, preference_jsonl

JOBS = "/fine_tuning/jobs"


def _create(client: Client, training_file: str, **extra: Any) -> dict[str, Any]:
    job: dict[str, Any] = client.post(
        JOBS, json={"model": "gpt-4o-mini-2024-07-18", "training_file": training_file, **extra}
    )
    return job


def _status(client: Client, job_id: str) -> str:
    status: str = client.get(f"{JOBS}/{job_id}")["status"]
    return status


def _all_events(client: Client, job_id: str, limit: int = 7) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    after = None
    while True:
        params: dict[str, Any] = {"limit": limit}
        if after:
            params["after"] = after
        page = client.get(f"{JOBS}/{job_id}/events", params=params)
        events += page["data"]
        if not page["has_more"]:
            return events
        after = page["data"][-1]["id"]


def test_full_lifecycle(client: Client, training_file: str, clock: FakeClock, sim: Simulator) -> None:
    # 10 examples, auto -> 3 epochs x batch 1 = 30 steps; 2 s validating, 2 s queued.
    job = _create(client, training_file, suffix="helper")
    job_id = job["id"]
    seen: list[str] = []
    for _ in range(36):
        body = client.get(f"{JOBS}/{job_id}")
        if not seen or seen[-1] != body["status"]:
            seen.append(body["status"])
        if body["status"] == "running":
            assert body["estimated_finish"] == int(START) + 34
            assert body["hyperparameters"] == {"batch_size": 1, "learning_rate_multiplier": 1.8, "n_epochs": 3}
            assert body["method"]["supervised"]["hyperparameters"] == body["hyperparameters"]
        else:
            assert body["estimated_finish"] is None
        clock.advance(1)
    assert seen == ["validating_files", "queued", "running", "succeeded"]

    done = client.get(f"{JOBS}/{job_id}")
    model_id = done["fine_tuned_model"].rsplit(":", 1)[1]
    assert done["fine_tuned_model"] == f"ft:gpt-4o-mini-2024-07-18:simulator:helper:{model_id}"
    assert len(model_id) == 8 and model_id.isalnum()
    assert done["finished_at"] == int(START) + 34
    assert done["trained_tokens"] == 3 * sim.state.files[training_file].tokens
    assert done["trained_tokens"] > 0
    assert done["error"] is None
    [result_id] = done["result_files"]
    result = client.get(f"/files/{result_id}")
    assert result["purpose"] == "fine-tune-results"
    assert result["status"] == "processed"
    assert result["bytes"] > 0
    assert result["created_at"] == done["finished_at"]

    events = _all_events(client, job_id)
    messages = [e["message"] for e in reversed(events)]
    assert messages[:4] == [
        f"Created fine-tuning job: {job_id}",
        f"Validating training file: {training_file}",
        "Files validated, moving job to queued state",
        "Fine-tuning job started",
    ]
    assert messages[-2:] == [
        f"New fine-tuned model created: {done['fine_tuned_model']}",
        "The job has successfully completed",
    ]
    assert "Checkpoint created at step 10" in messages and "Checkpoint created at step 20" in messages
    metrics = [e for e in reversed(events) if e["type"] == "metrics"]
    assert [m["data"]["step"] for m in metrics] == list(range(1, 31))
    assert all(m["data"]["total_steps"] == 30 for m in metrics)
    assert metrics[2]["message"] == f"Step 3/30: training loss={metrics[2]['data']['train_loss']:.2f}"
    assert set(metrics[0]["data"]) == {"step", "train_loss", "train_mean_token_accuracy", "total_steps"}
    assert metrics[0]["created_at"] == int(START) + 5
    # Newest first, unique ids that sort like the events.
    ids = [e["id"] for e in events]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)
    assert [e["created_at"] for e in events] == sorted((e["created_at"] for e in events), reverse=True)

    # Stable: reading later gives the very same events.
    clock.advance(500)
    assert _all_events(client, job_id, limit=100) == events

    checkpoints = client.get(f"{JOBS}/{job_id}/checkpoints")
    assert [c["step_number"] for c in checkpoints["data"]] == [30, 20, 10]
    assert [c["fine_tuned_model_checkpoint"] for c in checkpoints["data"]] == [
        done["fine_tuned_model"],
        done["fine_tuned_model"] + ":ckpt-step-20",
        done["fine_tuned_model"] + ":ckpt-step-10",
    ]
    assert checkpoints["data"][0]["created_at"] == int(START) + 34
    assert set(checkpoints["data"][0]["metrics"]) == {
        "step",
        "train_loss",
        "train_mean_token_accuracy",
        "valid_loss",
        "valid_mean_token_accuracy",
        "full_valid_loss",
        "full_valid_mean_token_accuracy",
    }
    page = client.get(f"{JOBS}/{job_id}/checkpoints", params={"limit": 2})
    assert page["has_more"] is True and page["last_id"] == checkpoints["data"][1]["id"]
    page = client.get(f"{JOBS}/{job_id}/checkpoints", params={"after": page["last_id"]})
    assert [c["step_number"] for c in page["data"]] == [10] and page["has_more"] is False


def test_event_pagination(client: Client, training_file: str, clock: FakeClock) -> None:
    job_id = _create(client, training_file)["id"]
    clock.advance(100)
    first = client.get(f"{JOBS}/{job_id}/events")
    assert len(first["data"]) == 20 and first["has_more"] is True  # default limit 20
    second = client.get(f"{JOBS}/{job_id}/events", params={"after": first["data"][-1]["id"], "limit": 100})
    total = 4 + 30 + 2 + 2  # lifecycle messages, metrics, 2 checkpoints, model + completed
    assert len(second["data"]) == total - 20 and second["has_more"] is False
    assert second["data"][0]["id"] < first["data"][-1]["id"]
    assert client.error("GET", f"{JOBS}/{job_id}/events", 400, params={"after": "ft-event-x"})["param"] == "after"


def test_validation_file_adds_valid_metrics(client: Client, training_file: str, clock: FakeClock) -> None:
    job_id = _create(client, training_file, validation_file=training_file)["id"]
    clock.advance(6)
    events = client.get(f"{JOBS}/{job_id}/events")["data"]
    metrics = [e for e in events if e["type"] == "metrics"]
    assert [m["data"]["step"] for m in metrics] == [2, 1]
    assert {"valid_loss", "valid_mean_token_accuracy"} <= set(metrics[0]["data"])
    assert "validation loss=" in metrics[0]["message"]
    assert events[-2]["message"] == f"Validating training file: {training_file} and validation file: {training_file}"


def test_losses_are_deterministic_per_seed() -> None:
    def run() -> list[Any]:
        clock = FakeClock()
        with Simulator(api_key="sk-x", seconds_per_step=1.0, clock=clock, seed=7) as sim:
            client = Client(sim.base_url, "sk-x")
            file_id = client.upload(chat_jsonl(10))["id"]
            job_id = _create(client, file_id)["id"]
            clock.advance(40)
            return [job_id, client.get(f"{JOBS}/{job_id}/events", params={"limit": 100})["data"]]

    assert run() == run()


def test_fail_via_metadata(client: Client, training_file: str, clock: FakeClock) -> None:
    job_id = _create(client, training_file, metadata={"simulator_outcome": "fail"})["id"]
    clock.advance(4 + 14)
    assert _status(client, job_id) == "running"
    clock.advance(1)  # step 15 of 30 completes, then the job fails
    job = client.get(f"{JOBS}/{job_id}")
    assert job["status"] == "failed"
    assert job["error"]["code"] == "server_error"
    assert job["error"]["param"] is None
    assert job["finished_at"] == int(START) + 19
    assert (job["fine_tuned_model"], job["trained_tokens"], job["result_files"]) == (None, None, [])
    events = client.get(f"{JOBS}/{job_id}/events")["data"]
    assert events[0]["level"] == "error" and events[0]["message"] == job["error"]["message"]
    assert events[1]["data"]["step"] == 15
    clock.advance(100)
    assert client.get(f"{JOBS}/{job_id}/events")["data"][0]["id"] == events[0]["id"]


def test_bad_training_file_fails_during_validation(client: Client, clock: FakeClock) -> None:
    bad = client.upload(b'{"prompt": "only a prompt"}\n' * 10)
    assert bad["status"] == "error"
    job_id = _create(client, bad["id"])["id"]
    assert _status(client, job_id) == "validating_files"
    clock.advance(2)
    job = client.get(f"{JOBS}/{job_id}")
    assert job["status"] == "failed"
    assert job["error"] == {"code": "invalid_training_file", "message": bad["status_details"], "param": "training_file"}
    assert "line 1, field completion: is missing" in job["error"]["message"]
    assert job["hyperparameters"]["n_epochs"] == "auto"  # training never started
    assert client.get(f"{JOBS}/{job_id}/checkpoints")["data"] == []


def test_format_not_matching_method_fails(client: Client, clock: FakeClock) -> None:
    pref = client.upload(preference_jsonl(), filename="pref.jsonl")
    assert pref["status"] == "processed"
    job_id = _create(client, pref["id"])["id"]  # supervised job on DPO data
    clock.advance(2)
    job = client.get(f"{JOBS}/{job_id}")
    assert job["status"] == "failed"
    assert job["error"]["code"] == "invalid_training_file"
    assert "preference examples, but method 'supervised' needs chat or completion" in job["error"]["message"]


def test_fail_job_from_python(client: Client, training_file: str, clock: FakeClock, sim: Simulator) -> None:
    job_id = _create(client, training_file)["id"]
    clock.advance(10)
    sim.state.fail_job(job_id, "quota_exceeded", "Out of training quota.")
    job = client.get(f"{JOBS}/{job_id}")
    assert job["status"] == "failed"
    assert job["error"] == {"code": "quota_exceeded", "message": "Out of training quota.", "param": None}
    assert job["finished_at"] == int(START) + 10
    clock.advance(100)
    assert _status(client, job_id) == "failed"
    assert client.get(f"{JOBS}/{job_id}/events")["data"][0]["message"] == "Out of training quota."


def test_cancel_and_cancel_after_end(client: Client, training_file: str, clock: FakeClock) -> None:
    job_id = _create(client, training_file)["id"]
    clock.advance(6)
    job = client.post(f"{JOBS}/{job_id}/cancel")
    assert job["status"] == "cancelled"
    assert job["finished_at"] == int(START) + 6
    clock.advance(100)
    assert _status(client, job_id) == "cancelled"
    events = client.get(f"{JOBS}/{job_id}/events")["data"]
    assert events[0]["message"] == "Fine-tuning job cancelled"
    assert events[1]["data"]["step"] == 2
    error = client.error("POST", f"{JOBS}/{job_id}/cancel", 400)
    assert "already ended" in error["message"]

    done_id = _create(client, training_file)["id"]
    clock.advance(100)
    assert _status(client, done_id) == "succeeded"
    assert "already ended with status 'succeeded'" in client.error("POST", f"{JOBS}/{done_id}/cancel", 400)["message"]
    assert client.error("POST", f"{JOBS}/ftjob-nope/cancel", 404)["param"] == "fine_tuning_job_id"


def test_pause_and_resume_shift_the_timeline(client: Client, training_file: str, clock: FakeClock) -> None:
    job_id = _create(client, training_file)["id"]
    assert client.error("POST", f"{JOBS}/{job_id}/pause", 400)["message"].startswith(
        f"Fine-tuning job {job_id} cannot be paused while it is 'validating_files'"
    )
    clock.advance(10)  # step 6 done
    paused = client.post(f"{JOBS}/{job_id}/pause")
    assert paused["status"] == "paused"  # not in the spec's enum, but what the real API returns
    assert paused["estimated_finish"] is None
    clock.advance(1000)
    assert _status(client, job_id) == "paused"
    steps = [e["data"]["step"] for e in client.get(f"{JOBS}/{job_id}/events")["data"] if e["type"] == "metrics"]
    assert max(steps) == 6  # progress froze
    assert client.error("POST", f"{JOBS}/{job_id}/pause", 400)["code"] == "invalid_job_state"
    resumed = client.post(f"{JOBS}/{job_id}/resume")
    assert resumed["status"] == "running"
    assert resumed["estimated_finish"] == int(START) + 34 + 1000
    assert client.error("POST", f"{JOBS}/{job_id}/resume", 400)["code"] == "invalid_job_state"
    clock.advance(23)
    assert _status(client, job_id) == "running"
    clock.advance(1)
    done = client.get(f"{JOBS}/{job_id}")
    assert done["status"] == "succeeded"
    assert done["finished_at"] == int(START) + 1034
    events = list(reversed(_all_events(client, job_id, limit=100)))
    messages = [e["message"] for e in events]
    i = messages.index("Fine-tuning job paused")
    assert messages[i + 1] == "Fine-tuning job resumed"
    assert events[i - 1]["data"]["step"] == 6 and events[i + 2]["data"]["step"] == 7
    assert events[i + 2]["created_at"] == int(START) + 1011


def test_list_jobs_with_metadata_filter_and_pagination(client: Client, training_file: str, clock: FakeClock) -> None:
    ids = []
    for i in range(5):
        ids.append(_create(client, training_file, metadata={"team": "a" if i % 2 == 0 else "b", "n": str(i)})["id"])
        clock.advance(1)
    page = client.get(JOBS, params={"limit": 2})
    assert [j["id"] for j in page["data"]] == [ids[4], ids[3]] and page["has_more"] is True
    page = client.get(JOBS, params={"limit": 2, "after": ids[3]})
    assert [j["id"] for j in page["data"]] == [ids[2], ids[1]] and page["has_more"] is True
    page = client.get(JOBS, params={"after": ids[1]})
    assert [j["id"] for j in page["data"]] == [ids[0]] and page["has_more"] is False
    team_a = client.get(JOBS, params={"metadata[team]": "a"})
    assert [j["id"] for j in team_a["data"]] == [ids[4], ids[2], ids[0]]
    both = client.get(JOBS, params={"metadata[team]": "a", "metadata[n]": "2"})
    assert [j["id"] for j in both["data"]] == [ids[2]]
    assert client.get(JOBS, params={"metadata[team]": "c"})["data"] == []
    assert client.error("GET", JOBS, 400, params={"limit": 101})["param"] == "limit"
    assert client.error("GET", JOBS, 400, params={"after": "ftjob-unknown"})["param"] == "after"
    assert len(client.get(JOBS)["data"]) == 5


def test_step_boundaries_survive_float_rounding() -> None:
    clock = FakeClock(START + 0.3)
    with Simulator(api_key="sk-x", seconds_per_step=0.02, clock=clock, seed=1) as sim:
        client = Client(sim.base_url, "sk-x")
        job_id = _create(client, client.upload(chat_jsonl(10))["id"])["id"]
        for tick in range(1, 40):
            clock.advance(0.02)  # accumulates rounding error on purpose
            steps = [e["data"]["step"] for e in client.get(f"{JOBS}/{job_id}/events")["data"] if e["type"] == "metrics"]
            assert max(steps, default=0) == min(max(tick - 4, 0), 30), tick
        assert _status(client, job_id) == "succeeded"


def test_real_clock_lifecycle() -> None:
    with Simulator(api_key="sk-x", seconds_per_step=0.005, seed=2) as sim:
        client = Client(sim.base_url, "sk-x")
        job_id = _create(client, client.upload(chat_jsonl(10))["id"])["id"]
        seen: list[str] = []
        deadline = time.monotonic() + 5
        while not seen or seen[-1] != "succeeded":
            assert time.monotonic() < deadline
            status = _status(client, job_id)
            if not seen or seen[-1] != status:
                seen.append(status)
            time.sleep(0.01)
        assert seen[-1] == "succeeded"
        assert set(seen) <= {"validating_files", "queued", "running", "succeeded"}
        assert len(client.get(f"{JOBS}/{job_id}/events", params={"limit": 100})["data"]) == 38


def test_dpo_and_reinforcement_resolve_their_hyperparameters(client: Client, clock: FakeClock) -> None:
    pref = client.upload(preference_jsonl(10), filename="pref.jsonl")["id"]
    dpo = client.post(
        JOBS,
        json={"model": "gpt-4.1-nano", "training_file": pref, "method": {"type": "dpo", "dpo": {}}},
    )
    rft_file = client.upload(b'{"messages": [{"role": "user", "content": "q"}], "answer": "a"}\n' * 10, "rft.jsonl")
    grader = {"type": "python", "name": "g", "source": "def grade(sample, item): return 1.0"}
    rft = client.post(
        JOBS,
        json={
            "model": "o4-mini-2025-04-16",
            "training_file": rft_file["id"],
            "method": {
                "type": "reinforcement",
                "reinforcement": {"grader": grader, "hyperparameters": {"n_epochs": 1}},
            },
        },
    )
    clock.advance(1000)
    dpo_done = client.get(f"{JOBS}/{dpo['id']}")
    assert dpo_done["status"] == "succeeded"
    assert dpo_done["hyperparameters"] == {}
    assert dpo_done["method"]["dpo"]["hyperparameters"] == {
        "batch_size": 1,
        "learning_rate_multiplier": 1.8,
        "n_epochs": 3,
        "beta": 0.1,
    }
    rft_done = client.get(f"{JOBS}/{rft['id']}")
    assert rft_done["status"] == "succeeded"
    assert rft_done["fine_tuned_model"].startswith("ft:o4-mini-2025-04-16:simulator::")
    hp = rft_done["method"]["reinforcement"]["hyperparameters"]
    assert (hp["n_epochs"], hp["reasoning_effort"], hp["compute_multiplier"]) == (1, "medium", 1.0)
    assert [c["step_number"] for c in client.get(f"{JOBS}/{rft['id']}/checkpoints")["data"]] == [10]
