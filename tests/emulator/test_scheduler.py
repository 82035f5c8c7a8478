"""Conformance of the emulated Cloud Scheduler v1, driven only through the official clients."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from google.api_core import exceptions
from google.cloud import logging_v2, run_v2, scheduler_v1
from google.iam.v1 import policy_pb2
from google.logging.type import log_severity_pb2
from google.protobuf import field_mask_pb2

from govctl.emulator.scheduler.service import next_run
from govctl.emulator.scheduler.targets import parse_run_uri
from govctl.emulator.server import Emulator
from govctl.gcp import clients
from tests.emulator.run_support import create, job_spec

PROJECT = "demo-project"
REGION = "europe-west2"
PARENT = f"projects/{PROJECT}/locations/{REGION}"
RUN_JOB = f"projects/{PROJECT}/locations/{REGION}/jobs/ingest"
RUN_URI = f"https://run.googleapis.com/v2/{RUN_JOB}:run"
SA_ID = "scheduler-caller"
SA = f"{SA_ID}@{PROJECT}.iam.gserviceaccount.com"


def sched_job(
    job_id: str = "nightly",
    *,
    schedule: str = "0 2 * * *",
    time_zone: str = "Europe/London",
    uri: str = RUN_URI,
    email: str = SA,
) -> scheduler_v1.Job:
    return scheduler_v1.Job(
        name=f"{PARENT}/jobs/{job_id}",
        description="daily ingestion",
        schedule=schedule,
        time_zone=time_zone,
        http_target=scheduler_v1.HttpTarget(
            uri=uri,
            http_method=scheduler_v1.HttpMethod.POST,
            oauth_token=scheduler_v1.OAuthToken(service_account_email=email),
        ),
    )


@pytest.fixture
def sched(emulator: Emulator) -> scheduler_v1.CloudSchedulerClient:
    return clients.scheduler()


def wait_for(predicate: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


# --- CRUD ------------------------------------------------------------------------------------


def test_create_fills_state_and_the_next_schedule_time(
    emulator: Emulator, sched: scheduler_v1.CloudSchedulerClient
) -> None:
    before = emulator.cloud.clock.now()
    job = sched.create_job(parent=PARENT, job=sched_job())
    assert job.state == scheduler_v1.Job.State.ENABLED
    assert job.user_update_time >= before - timedelta(seconds=1)
    # 02:00 London time, the first one after now.
    local = job.schedule_time.astimezone(ZoneInfo("Europe/London"))
    assert (local.hour, local.minute) == (2, 0)
    assert before < job.schedule_time <= before + timedelta(days=1)
    assert not job.status.code and "last_attempt_time" not in job
    assert job.retry_config.max_doublings == 5  # server defaults filled
    assert job.attempt_deadline == timedelta(minutes=3)
    assert sched.get_job(name=job.name) == job


def test_create_rejects_duplicates_and_bad_fields(sched: scheduler_v1.CloudSchedulerClient) -> None:
    sched.create_job(parent=PARENT, job=sched_job())
    with pytest.raises(exceptions.AlreadyExists):
        sched.create_job(parent=PARENT, job=sched_job())
    bad = [
        sched_job("cron", schedule="every 5 minutes"),
        sched_job("cron6", schedule="0 0 2 * * *"),
        sched_job("cron-range", schedule="61 * * * *"),
        sched_job("tz", time_zone="Mars/Olympus_Mons"),
        sched_job("bad name!"),
        sched_job("oauth-elsewhere", uri="https://example.com/hook"),
        scheduler_v1.Job(name=f"{PARENT}/jobs/no-target", schedule="* * * * *"),
    ]
    for job in bad:
        with pytest.raises(exceptions.InvalidArgument):
            sched.create_job(parent=PARENT, job=job)
    other_parent = sched_job()
    other_parent.name = "projects/demo-project/locations/us-central1/jobs/x"
    with pytest.raises(exceptions.InvalidArgument):
        sched.create_job(parent=PARENT, job=other_parent)


def test_get_and_delete_unknown_job_is_not_found(sched: scheduler_v1.CloudSchedulerClient) -> None:
    with pytest.raises(exceptions.NotFound):
        sched.get_job(name=f"{PARENT}/jobs/missing")
    with pytest.raises(exceptions.NotFound):
        sched.delete_job(name=f"{PARENT}/jobs/missing")
    with pytest.raises(exceptions.InvalidArgument):
        sched.get_job(name="projects/p/jobs/missing")


def test_list_pages_one_by_one(sched: scheduler_v1.CloudSchedulerClient) -> None:
    for job_id in ("c", "a", "b"):
        sched.create_job(parent=PARENT, job=sched_job(job_id))
    sched.create_job(
        parent="projects/demo-project/locations/us-central1",
        job=scheduler_v1.Job(
            name="projects/demo-project/locations/us-central1/jobs/elsewhere",
            schedule="* * * * *",
            http_target=scheduler_v1.HttpTarget(uri="https://example.com/"),
        ),
    )
    pages = list(sched.list_jobs(request={"parent": PARENT, "page_size": 1}).pages)
    assert [[j.name.rsplit("/", 1)[1] for j in p.jobs] for p in pages] == [["a"], ["b"], ["c"]]


def test_update_with_mask_changes_only_masked_fields(
    sched: scheduler_v1.CloudSchedulerClient,
) -> None:
    job = sched.create_job(parent=PARENT, job=sched_job())
    change = scheduler_v1.Job(name=job.name, schedule="30 6 * * 1-5", description="ignored")
    updated = sched.update_job(job=change, update_mask=field_mask_pb2.FieldMask(paths=["schedule"]))
    assert updated.schedule == "30 6 * * 1-5"
    assert updated.description == "daily ingestion"
    assert updated.http_target.uri == RUN_URI
    local = updated.schedule_time.astimezone(ZoneInfo("Europe/London"))
    assert (local.hour, local.minute, local.weekday() < 5) == (6, 30, True)
    assert updated.user_update_time >= job.user_update_time
    with pytest.raises(exceptions.InvalidArgument):
        sched.update_job(
            job=scheduler_v1.Job(name=job.name, schedule="not cron"),
            update_mask=field_mask_pb2.FieldMask(paths=["schedule"]),
        )
    with pytest.raises(exceptions.InvalidArgument):
        sched.update_job(job=change, update_mask=field_mask_pb2.FieldMask(paths=["no_such"]))
    with pytest.raises(exceptions.NotFound):
        sched.update_job(
            job=scheduler_v1.Job(name=f"{PARENT}/jobs/missing", schedule="* * * * *"),
            update_mask=field_mask_pb2.FieldMask(paths=["schedule"]),
        )
    assert sched.get_job(name=job.name).schedule == "30 6 * * 1-5"


def test_pause_resume_delete(sched: scheduler_v1.CloudSchedulerClient) -> None:
    job = sched.create_job(parent=PARENT, job=sched_job())
    paused = sched.pause_job(name=job.name)
    assert paused.state == scheduler_v1.Job.State.PAUSED
    with pytest.raises(exceptions.FailedPrecondition):
        sched.pause_job(name=job.name)
    resumed = sched.resume_job(name=job.name)
    assert resumed.state == scheduler_v1.Job.State.ENABLED and "schedule_time" in resumed
    with pytest.raises(exceptions.FailedPrecondition):
        sched.resume_job(name=job.name)
    sched.delete_job(name=job.name)
    with pytest.raises(exceptions.NotFound):
        sched.get_job(name=job.name)


def test_next_run_follows_the_time_zone_across_dst() -> None:
    # London leaves summer time on 2026-10-25: 02:00 local is 01:00 UTC before, 02:00 after.
    before = next_run("0 2 * * *", "Europe/London", datetime(2026, 10, 20, 12, tzinfo=UTC))
    after = next_run("0 2 * * *", "Europe/London", datetime(2026, 10, 27, 12, tzinfo=UTC))
    assert (before.hour, after.hour) == (1, 2)


def test_run_uri_forms_are_recognized() -> None:
    v2 = parse_run_uri(RUN_URI)
    assert v2 is not None and v2.job_name == RUN_JOB
    v1 = parse_run_uri(
        f"https://{REGION}-run.googleapis.com/apis/run.googleapis.com/v1/"
        f"namespaces/{PROJECT}/jobs/ingest:run"
    )
    assert v1 == v2
    assert parse_run_uri("https://run.googleapis.com/v2/" + RUN_JOB) is None
    assert parse_run_uri("https://example.com/run") is None


# --- attempts --------------------------------------------------------------------------------


def _setup_run_job_and_sa(emulator: Emulator) -> run_v2.Job:
    run_job = create(clients.jobs(), "ingest", job_spec())
    clients.iam().create_service_account(
        request={"name": f"projects/{PROJECT}", "account_id": SA_ID}
    )
    return run_job


def _executions() -> list[run_v2.Execution]:
    return list(clients.executions().list_executions(parent=RUN_JOB))


def _grant_on_job(role: str = "roles/run.invoker") -> None:
    jobs = clients.jobs()
    policy = jobs.get_iam_policy(request={"resource": RUN_JOB})
    policy.bindings.append(policy_pb2.Binding(role=role, members=[f"serviceAccount:{SA}"]))
    jobs.set_iam_policy(request={"resource": RUN_JOB, "policy": policy})


def _grant_on_project(role: str) -> None:
    rm = clients.projects()
    policy = rm.get_iam_policy(resource=f"projects/{PROJECT}")
    policy.bindings.append(policy_pb2.Binding(role=role, members=[f"serviceAccount:{SA}"]))
    rm.set_iam_policy(request={"resource": f"projects/{PROJECT}", "policy": policy})


def _attempt_logs(job_id: str) -> list[logging_v2.types.LogEntry]:
    return list(
        clients.logging().list_log_entries(
            resource_names=[f"projects/{PROJECT}"],
            filter=f'resource.type="cloud_scheduler_job" AND resource.labels.job_id="{job_id}"',
            order_by="timestamp asc",
        )
    )


def _severity(entry: logging_v2.types.LogEntry) -> str:
    return log_severity_pb2.LogSeverity.Name(entry.severity)  # type: ignore[arg-type]


def test_run_job_is_refused_without_invoker_then_allowed_on_the_job(
    emulator: Emulator, sched: scheduler_v1.CloudSchedulerClient
) -> None:
    _setup_run_job_and_sa(emulator)
    job = sched.create_job(parent=PARENT, job=sched_job())
    refused = sched.run_job(name=job.name)
    assert refused.status.code == 7  # PERMISSION_DENIED
    assert "run.jobs.run" in refused.status.message
    assert "last_attempt_time" in refused
    assert _executions() == []

    _grant_on_job()
    ran = sched.run_job(name=job.name)
    assert ran.status.code == 0
    assert ran.last_attempt_time >= refused.last_attempt_time
    assert len(_executions()) == 1

    logs = _attempt_logs("nightly")
    payloads = [(e.json_payload["@type"].rsplit(".", 1)[1], _severity(e)) for e in logs]
    assert payloads == [
        ("AttemptStarted", "INFO"),
        ("AttemptFinished", "ERROR"),
        ("AttemptStarted", "INFO"),
        ("AttemptFinished", "INFO"),
    ]
    failed = logs[1]
    assert failed.log_name == f"projects/{PROJECT}/logs/cloudscheduler.googleapis.com%2Fexecutions"
    assert dict(failed.resource.labels) == {
        "project_id": PROJECT,
        "job_id": "nightly",
        "location": REGION,
    }
    assert failed.json_payload["status"] == "PERMISSION_DENIED"
    assert failed.json_payload["jobName"] == job.name
    assert failed.json_payload["targetType"] == "HTTP"
    assert failed.json_payload["url"] == RUN_URI
    assert failed.http_request.status == 403
    assert "status" not in logs[3].json_payload and logs[3].http_request.status == 200


def test_project_level_grant_also_allows(
    emulator: Emulator, sched: scheduler_v1.CloudSchedulerClient
) -> None:
    _setup_run_job_and_sa(emulator)
    job = sched.create_job(parent=PARENT, job=sched_job())
    _grant_on_project("roles/run.viewer")  # reads, but cannot run
    assert sched.run_job(name=job.name).status.code == 7
    _grant_on_project("roles/run.developer")  # contains run.jobs.run
    assert sched.run_job(name=job.name).status.code == 0
    assert len(_executions()) == 1


def test_overrides_in_the_body_need_run_with_overrides(
    emulator: Emulator, sched: scheduler_v1.CloudSchedulerClient
) -> None:
    _setup_run_job_and_sa(emulator)
    spec = sched_job()
    spec.http_target.body = b'{"overrides": {"taskCount": 2}}'
    job = sched.create_job(parent=PARENT, job=spec)
    _grant_on_job("roles/run.invoker")
    assert sched.run_job(name=job.name).status.code == 7
    _grant_on_job("roles/run.developer")
    assert sched.run_job(name=job.name).status.code == 0
    [execution] = _executions()
    assert execution.task_count == 2


def test_attempts_that_the_emulator_cannot_serve_fail(
    emulator: Emulator, sched: scheduler_v1.CloudSchedulerClient
) -> None:
    _setup_run_job_and_sa(emulator)
    _grant_on_project("roles/run.invoker")
    cases = {
        "missing-run-job": (RUN_URI.replace("/jobs/ingest", "/jobs/absent"), 5),  # NOT_FOUND
        "other-api": ("https://storage.googleapis.com/storage/v1/b", 5),
        "unknown-sa": (RUN_URI, 16),  # UNAUTHENTICATED: no token can be minted
    }
    for job_id, (uri, code) in cases.items():
        email = "ghost@demo-project.iam.gserviceaccount.com" if job_id == "unknown-sa" else SA
        job = sched.create_job(parent=PARENT, job=sched_job(job_id, uri=uri, email=email))
        assert sched.run_job(name=job.name).status.code == code, job_id
    outside = scheduler_v1.Job(
        name=f"{PARENT}/jobs/outside",
        schedule="* * * * *",
        http_target=scheduler_v1.HttpTarget(uri="https://example.com/hook"),
    )
    sched.create_job(parent=PARENT, job=outside)
    assert sched.run_job(name=outside.name).status.code == 14  # UNAVAILABLE
    assert _executions() == []


def test_enabled_job_fires_on_its_cron_and_paused_does_not(
    emulator: Emulator, sched: scheduler_v1.CloudSchedulerClient
) -> None:
    _setup_run_job_and_sa(emulator)
    _grant_on_job()
    job = sched.create_job(parent=PARENT, job=sched_job(schedule="*/5 * * * *"))
    paused = sched.create_job(parent=PARENT, job=sched_job("paused", schedule="*/5 * * * *"))
    sched.pause_job(name=paused.name)
    first_time = job.schedule_time
    clock = emulator.cloud.clock
    clock.advance(first_time - clock.now() + timedelta(seconds=1))
    wait_for(lambda: "last_attempt_time" in sched.get_job(name=job.name))
    fired = sched.get_job(name=job.name)
    assert fired.status.code == 0
    assert fired.schedule_time == first_time + timedelta(minutes=5)
    wait_for(lambda: len(_executions()) == 1)
    assert "last_attempt_time" not in sched.get_job(name=paused.name)
    # A day later: one catch-up attempt, not 288. Once the next time is after now, nothing is
    # due until the clock moves again: the count is final.
    clock.advance(timedelta(days=1))
    wait_for(lambda: len(_executions()) >= 2)
    wait_for(lambda: sched.get_job(name=job.name).schedule_time > clock.now())
    assert len(_executions()) == 2


def test_scheduler_state_survives_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    with Emulator(state_dir=state) as emu:
        for k, v in emu.env().items():
            monkeypatch.setenv(k, v)
        sched = clients.scheduler()
        sched.create_job(parent=PARENT, job=sched_job())
        paused = sched.pause_job(name=sched.create_job(parent=PARENT, job=sched_job("p")).name)
        ran = sched.run_job(name=f"{PARENT}/jobs/nightly")
        assert ran.status.code != 0
    with Emulator(state_dir=state) as emu:
        for k, v in emu.env().items():
            monkeypatch.setenv(k, v)
        sched = clients.scheduler()
        assert sched.get_job(name=ran.name) == ran
        assert sched.get_job(name=paused.name) == paused


def test_list_jobs_pages_by_the_maximum_unless_asked(
    sched: scheduler_v1.CloudSchedulerClient,
) -> None:
    """ListJobsRequest.page_size: "The maximum page size is 500. If unspecified, the page size
    will be the maximum." (google/cloud/scheduler/v1/cloudscheduler.proto)"""
    for i in range(101):
        sched.create_job(parent=PARENT, job=sched_job(f"job-{i:03}"))
    first = sched.list_jobs(parent=PARENT)
    assert len(first.jobs) == 101 and not first.next_page_token
    capped = sched.list_jobs(request={"parent": PARENT, "page_size": 100})
    assert len(capped.jobs) == 100 and capped.next_page_token
