"""Conformance of the emulated Cloud Monitoring alerting (policies, notification channels), and
its evaluation on other services' events, driven only through the official clients."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import monitoring_v3, scheduler_v1

from govctl.emulator.monitoring.conditions import read_mailbox
from govctl.emulator.server import Emulator
from govctl.gcp import clients
from tests.emulator.run_support import PARENT, create, job_spec, wait_execution
from tests.support.cloud import Completions, check_absence

PROJECT = "demo-project"
REGION = "europe-west2"
Cond = monitoring_v3.AlertPolicy.Condition
FAILED_RUNS = (
    'resource.type = "cloud_run_job" AND resource.labels.job_name = "{job}" AND '
    'metric.type = "run.googleapis.com/job/completed_execution_count" AND '
    'metric.labels.result = "failed"'
)


def _channel(email: str = "ops@example.org", **kw: Any) -> monitoring_v3.NotificationChannel:
    return clients.notification_channels().create_notification_channel(
        name=f"projects/{PROJECT}",
        notification_channel=monitoring_v3.NotificationChannel(
            type_="email", display_name=f"to {email}", labels={"email_address": email}, **kw
        ),
    )


def _threshold(job: str) -> Cond:
    return Cond(
        display_name=f"{job} failed",
        condition_threshold=Cond.MetricThreshold(
            filter=FAILED_RUNS.format(job=job),
            comparison=monitoring_v3.ComparisonType.COMPARISON_GT,
            threshold_value=0,
        ),
    )


def _policy(*conditions: Cond, channels: list[str], **kw: Any) -> monitoring_v3.AlertPolicy:
    return clients.alert_policies().create_alert_policy(
        name=f"projects/{PROJECT}",
        alert_policy=monitoring_v3.AlertPolicy(
            display_name=kw.pop("display_name", "job failed"),
            conditions=list(conditions),
            combiner=monitoring_v3.AlertPolicy.ConditionCombinerType.OR,
            notification_channels=channels,
            documentation={"content": "Run `govctl doctor`."},
            **kw,
        ),
    )


def _mail(emu: Emulator) -> list[dict[str, Any]]:
    """The mailbox now. Callers first make sure that what they expect has been evaluated:
    the executions' completions handled (Completions), the absence check run at the clock's
    time (check_absence), or a scheduler attempt returned (it logs, and Monitoring reads the
    entry, before RunJob returns)."""
    assert emu.state_dir is not None
    return read_mailbox(emu.state_dir)


def _run(name: str) -> None:
    op = clients.jobs().run_job(name=f"{PARENT}/jobs/{name}")
    wait_execution(clients.executions(), op.metadata.name)


def test_a_failed_execution_mails_matching_enabled_policies_only(emulator: Emulator) -> None:
    completions = Completions(emulator)
    ops, off = _channel(), _channel("off@example.org", enabled=False)
    create(clients.jobs(), "ingest", job_spec("import sys; sys.exit(3)"))
    create(clients.jobs(), "other", job_spec("import sys; sys.exit(3)"))
    create(clients.jobs(), "fine", job_spec("print('ok')"))
    mine = _policy(_threshold("ingest"), channels=[ops.name, off.name])
    _policy(_threshold("fine"), channels=[ops.name], display_name="fine failed")
    _policy(_threshold("other"), channels=[ops.name], enabled=False, display_name="off")

    _run("fine")
    _run("other")
    _run("ingest")

    completions.wait(3)
    (message,) = _mail(emulator)
    assert message["to"] == "ops@example.org"  # the disabled channel gets nothing
    assert message["policy"] == mine.name
    assert message["subject"].startswith("[ALERT - No severity] job failed on cloud_run_job")
    assert "Run `govctl doctor`." in message["body"]
    assert message["execution"].startswith(f"{PARENT}/jobs/ingest/executions/ingest-")


def test_scheduler_error_entries_fire_log_policies_at_most_once_per_period(
    emulator: Emulator,
) -> None:
    ops = _channel()
    _policy(
        Cond(
            display_name="attempt failed",
            condition_matched_log=Cond.LogMatch(
                filter='resource.type="cloud_scheduler_job" AND '
                'resource.labels.job_id="nightly" AND severity>=ERROR'
            ),
        ),
        channels=[ops.name],
        display_name="scheduler failed",
        alert_strategy={"notification_rate_limit": {"period": timedelta(minutes=5)}},
    )
    sched = clients.scheduler()
    job = sched.create_job(
        parent=f"projects/{PROJECT}/locations/{REGION}",
        job=scheduler_v1.Job(
            name=f"projects/{PROJECT}/locations/{REGION}/jobs/nightly",
            schedule="0 2 * * *",
            http_target=scheduler_v1.HttpTarget(
                # no such job, no such service account: the attempt fails, logged at ERROR
                uri=f"https://run.googleapis.com/v2/{PARENT}/jobs/missing:run",
                oauth_token=scheduler_v1.OAuthToken(
                    service_account_email="x@y.iam.gserviceaccount.com"
                ),
            ),
        ),
    )
    sched.run_job(name=job.name)
    (message,) = _mail(emulator)
    assert message["subject"].startswith(
        "[ALERT - No severity] scheduler failed on cloud_scheduler_job"
    )
    assert "UNAUTHENTICATED" in message["body"]

    sched.run_job(name=job.name)  # within the rate limit: no second e-mail
    assert len(_mail(emulator)) == 1
    emulator.cloud.clock.advance(timedelta(minutes=6))
    sched.run_job(name=job.name)
    assert len(_mail(emulator)) == 2


def test_policies_are_validated_as_monitoring_does(emulator: Emulator) -> None:
    ops = _channel()
    policies = clients.alert_policies()
    absent = {"filter": FAILED_RUNS.format(job="j"), "duration": timedelta(seconds=90)}
    too_long = {"filter": FAILED_RUNS.format(job="j"), "duration": timedelta(hours=24, minutes=31)}
    no_channel = f"projects/{PROJECT}/notificationChannels/9"
    log = Cond(condition_matched_log={"filter": "severity>=ERROR"})  # needs a rate limit
    no_resource = Cond(condition_threshold={"filter": 'metric.type = "x"'})
    cases: list[tuple[type[Exception], dict[str, Any]]] = [
        (exceptions.InvalidArgument, {"conditions": []}),
        (exceptions.NotFound, {"notification_channels": [no_channel]}),
        (exceptions.InvalidArgument, {"conditions": [log]}),
        (exceptions.InvalidArgument, {"conditions": [Cond(condition_absent=absent)]}),
        (exceptions.InvalidArgument, {"conditions": [Cond(condition_absent=too_long)]}),
        (exceptions.InvalidArgument, {"conditions": [no_resource]}),
        (exceptions.InvalidArgument, {"user_labels": {"Managed-By": "govctl"}}),
    ]
    for error, fields in cases:
        policy = monitoring_v3.AlertPolicy(
            display_name="p", conditions=[_threshold("j")], notification_channels=[ops.name]
        )
        for key, value in fields.items():
            setattr(policy, key, value)
        with pytest.raises(error):
            policies.create_alert_policy(name=f"projects/{PROJECT}", alert_policy=policy)
    with pytest.raises(exceptions.InvalidArgument):
        _channel("not-an-address")


def test_update_delete_list_and_a_channel_in_use(emulator: Emulator, tmp_path: Path) -> None:
    ops = _channel()
    policy = _policy(_threshold("ingest"), channels=[ops.name])
    assert policy.enabled is True and policy.conditions[0].name.startswith(policy.name + "/")
    policies, channels = clients.alert_policies(), clients.notification_channels()

    policy.display_name = "renamed"
    policy.enabled = False
    updated = policies.update_alert_policy(
        alert_policy=policy, update_mask={"paths": ["display_name"]}
    )
    assert updated.display_name == "renamed" and updated.enabled is True  # only the mask
    assert updated.conditions[0].name == policy.conditions[0].name

    with pytest.raises(exceptions.FailedPrecondition):
        channels.delete_notification_channel(name=ops.name)
    channels.delete_notification_channel(name=ops.name, force=True)
    assert list(policies.get_alert_policy(name=policy.name).notification_channels) == []

    for i in range(3):
        _policy(_threshold("ingest"), channels=[], display_name=f"p{i}", user_labels={"n": str(i)})
    listed = policies.list_alert_policies(request={"name": f"projects/{PROJECT}", "page_size": 2})
    assert len(list(listed)) == 4  # the pager follows page tokens
    found = policies.list_alert_policies(
        request={"name": f"projects/{PROJECT}", "filter": 'user_labels.n = "1"'}
    )
    assert [p.display_name for p in found] == ["p1"]

    policies.delete_alert_policy(name=policy.name)
    with pytest.raises(exceptions.NotFound):
        policies.get_alert_policy(name=policy.name)


def test_policies_and_channels_outlive_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    with Emulator(state_dir=state, storage=False) as emu:
        monkeypatch.setenv("GOVCTL_EMULATOR_HOST", emu.grpc_address)
        made = _policy(_threshold("ingest"), channels=[_channel().name])
    with Emulator(state_dir=state, storage=False) as emu:
        monkeypatch.setenv("GOVCTL_EMULATOR_HOST", emu.grpc_address)
        assert clients.alert_policies().get_alert_policy(name=made.name) == made


def test_an_absence_condition_fires_once_per_gap_after_a_first_point(emulator: Emulator) -> None:
    completions = Completions(emulator)
    ops = _channel()
    create(clients.jobs(), "ingest", job_spec("print('ok')"))
    succeeded = FAILED_RUNS.format(job="ingest").replace('"failed"', '"succeeded"')
    _policy(
        Cond(
            display_name="no success in 1h",
            condition_absent=Cond.MetricAbsence(filter=succeeded, duration=timedelta(hours=1)),
        ),
        channels=[ops.name],
        display_name="stale",
    )
    clock = emulator.cloud.clock
    clock.advance(timedelta(hours=2))  # no point yet: nothing is absent
    check_absence(emulator)
    assert _mail(emulator) == []

    _run("ingest")
    completions.wait(1)  # Monitoring has the point
    clock.advance(timedelta(minutes=59))
    check_absence(emulator)
    assert _mail(emulator) == []
    clock.advance(timedelta(minutes=2))
    # The ticker finds the gap by itself.
    deadline = time.monotonic() + 10
    while not _mail(emulator):
        assert time.monotonic() < deadline, "no e-mail for the gap"
        time.sleep(0.05)
    (message,) = _mail(emulator)
    assert message["subject"].startswith("[ALERT - No severity] stale on cloud_run_job")
    assert "No data for no success in 1h in 60 minutes" in message["body"]
    clock.advance(timedelta(hours=3))  # the same gap is reported once
    check_absence(emulator)
    assert len(_mail(emulator)) == 1

    _run("ingest")  # a new point, then a new gap
    completions.wait(2)
    clock.advance(timedelta(minutes=61))
    check_absence(emulator)
    assert len(_mail(emulator)) == 2
