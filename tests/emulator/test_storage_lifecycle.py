"""Bucket lifecycle configuration in the loopback cloud: kept, shown and applied.

fake-gcs-server alone accepts ``lifecycle`` on insert and patch and forgets it (a later GET has
none); the emulator keeps it beside fake-gcs-server and applies its Delete rules
(https://cloud.google.com/storage/docs/lifecycle: every condition of a rule must hold, ``age``
in days since creation, ``matchesPrefix`` any of the prefixes).
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions

from govctl.emulator.server import Emulator
from govctl.gcp import clients

PROJECT = "demo-project"


def rules_of(bucket_name: str) -> list[dict[str, Any]]:
    return list(clients.storage_client(PROJECT).get_bucket(bucket_name).lifecycle_rules)


def test_a_patched_rule_is_kept_and_shown(emulator: Emulator) -> None:
    client = clients.storage_client(PROJECT)
    bucket = client.create_bucket("digests")
    assert rules_of("digests") == []
    bucket.add_lifecycle_delete_rule(age=30, matches_prefix=["_runs/"])
    bucket.patch()
    expected = [{"action": {"type": "Delete"},
                 "condition": {"age": 30, "matchesPrefix": ["_runs/"]}}]  # fmt: skip
    assert rules_of("digests") == expected
    listed = {b.name: list(b.lifecycle_rules) for b in client.list_buckets()}
    assert listed == {"digests": expected}
    # A patch of something else keeps it; clearing the rules removes it.
    bucket.labels = {"team": "x"}
    bucket.patch()
    assert rules_of("digests") == expected
    bucket.clear_lifecycle_rules()
    bucket.patch()
    assert rules_of("digests") == []


def test_a_rule_given_at_creation_is_kept(emulator: Emulator) -> None:
    client = clients.storage_client(PROJECT)
    bucket = client.bucket("made-with-rule")
    bucket.add_lifecycle_delete_rule(age=7)
    bucket.create()
    assert rules_of("made-with-rule") == [{"action": {"type": "Delete"}, "condition": {"age": 7}}]
    bucket.delete()
    client.create_bucket("made-with-rule")
    assert rules_of("made-with-rule") == []  # a new bucket of the same name starts without


def test_an_unknown_action_is_refused(emulator: Emulator) -> None:
    bucket = clients.storage_client(PROJECT).create_bucket("rules")
    bucket._properties["lifecycle"] = {"rule": [{"action": {"type": "Shred"},
                                                 "condition": {"age": 1}}]}  # fmt: skip
    bucket._changes.add("lifecycle")
    with pytest.raises(exceptions.BadRequest, match="Shred"):
        bucket.patch()


def test_delete_rules_expire_matching_objects_only(emulator: Emulator) -> None:
    client = clients.storage_client(PROJECT)
    bucket = client.create_bucket("digests")
    for name in ("_runs/ex-1/task-0.json", "_runs/feeds/abc.json.gz", "_state/summary.json",
                 "alphagov/notify.md"):  # fmt: skip
        bucket.blob(name).upload_from_string("x")
    bucket.add_lifecycle_delete_rule(age=30, matches_prefix=["_runs/"])
    bucket.patch()
    service = emulator.service("storage")
    assert service.run_lifecycle() == []  # nothing is 30 days old yet
    emulator.cloud.clock.advance(timedelta(days=31))
    assert sorted(service.run_lifecycle()) == [
        "digests/_runs/ex-1/task-0.json",
        "digests/_runs/feeds/abc.json.gz",
    ]
    assert sorted(b.name for b in client.list_blobs("digests")) == [
        "_state/summary.json",
        "alphagov/notify.md",
    ]


def test_rules_apply_as_the_clock_moves(emulator: Emulator) -> None:
    client = clients.storage_client(PROJECT)
    bucket = client.create_bucket("digests")
    bucket.blob("_runs/old.json").upload_from_string("x")
    bucket.add_lifecycle_delete_rule(age=30, matches_prefix=["_runs/"])
    bucket.patch()
    emulator.cloud.clock.advance(timedelta(days=31))
    deadline = time.monotonic() + 10
    while list(client.list_blobs("digests")):
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_a_rule_with_a_condition_the_emulator_does_not_evaluate_deletes_nothing(
    emulator: Emulator,
) -> None:
    client = clients.storage_client(PROJECT)
    bucket = client.create_bucket("digests")
    bucket.blob("_runs/old.json").upload_from_string("x")
    bucket.add_lifecycle_delete_rule(age=1, days_since_custom_time=1)
    bucket.patch()
    emulator.cloud.clock.advance(timedelta(days=5))
    assert emulator.service("storage").run_lifecycle() == []
    assert rules_of("digests")[0]["condition"] == {"age": 1, "daysSinceCustomTime": 1}


def test_rules_survive_a_restart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = tmp_path / "state"
    for first in (True, False):
        with Emulator(state_dir=state) as emu:
            for key, value in emu.env().items():
                monkeypatch.setenv(key, value)
            if first:
                bucket = clients.storage_client(PROJECT).create_bucket("digests")
                bucket.add_lifecycle_delete_rule(age=30, matches_prefix=["_runs/"])
                bucket.patch()
            else:
                assert rules_of("digests")[0]["condition"]["age"] == 30
