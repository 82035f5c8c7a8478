"""The run-prefix lifecycle rule and the image cleanup policies, planned and applied through the
official clients against the loopback cloud, which keeps and applies both."""

from __future__ import annotations

from datetime import timedelta

from google.cloud import artifactregistry_v1 as ar

from govctl.emulator.server import Emulator
from govctl.gcp import clients
from govctl.gcp.artifacts import parse_image
from govctl.services import retention
from govctl.services.plan import CREATE, UNCHANGED, UPDATE
from tests.support.cloud import enable_apis

PROJECT = "demo-project"
BUCKET = "demo-digests"
REGION = "europe-west2"
IMAGE = f"{REGION}-docker.pkg.dev/{PROJECT}/govreposcrape/ingestion"
REF = parse_image(IMAGE)


def make_repo() -> None:
    enable_apis(PROJECT, ["artifactregistry.googleapis.com"])  # off in a new project
    clients.artifact_registry().create_repository(
        parent=f"projects/{PROJECT}/locations/{REGION}",
        repository_id="govreposcrape",
        repository=ar.Repository(format_=ar.Repository.Format.DOCKER),
    ).result(timeout=5)


def test_the_rule_is_planned_added_once_and_keeps_other_rules(emulator: Emulator) -> None:
    bucket = clients.storage_client(PROJECT).create_bucket(BUCKET)
    bucket.add_lifecycle_delete_rule(age=365, matches_prefix=["tmp/"])
    bucket.patch()
    planned = retention.plan_rule(PROJECT, BUCKET, readable=True)
    assert planned.action == CREATE
    assert retention.apply_rule(PROJECT, BUCKET) is True
    assert retention.apply_rule(PROJECT, BUCKET) is False
    assert retention.plan_rule(PROJECT, BUCKET, readable=True).action == UNCHANGED
    rules = list(clients.storage_client(PROJECT).get_bucket(BUCKET).lifecycle_rules)
    assert [r["condition"] for r in rules] == [
        {"age": 365, "matchesPrefix": ["tmp/"]},
        {"age": 30, "matchesPrefix": ["_runs/"]},
    ]
    finding = retention.check_rule(PROJECT, BUCKET)
    assert finding is not None and finding.ok and "after 30 days" in finding.evidence


def test_a_missing_rule_is_a_finding_with_the_fix(emulator: Emulator) -> None:
    clients.storage_client(PROJECT).create_bucket(BUCKET)
    finding = retention.check_rule(PROJECT, BUCKET)
    assert finding is not None and not finding.ok
    assert finding.fix and "govctl setup" in finding.fix
    assert retention.check_rule(PROJECT, "no-such-bucket") is None


def test_policies_are_planned_applied_and_keep_the_deployed_image(emulator: Emulator) -> None:
    make_repo()
    plan = retention.plan_policies(REF, readable=True)
    assert plan.action == UPDATE and {c.field for c in plan.changes} == {
        "govctl-delete-older", "govctl-keep-recent", "govctl-keep-deployed"}  # fmt: skip
    registry = emulator.service("artifactregistry")
    digests = [f"sha256:{i:064x}" for i in range(1, 9)]
    for d in digests:
        registry.record_image(IMAGE, d, [d[-6:]], 10)
        emulator.cloud.clock.advance(timedelta(hours=1))
    # The job runs the oldest image: deploy tags it.
    assert retention.mark_deployed(parse_image(f"{IMAGE}@{digests[0]}"), "ingest") is True
    assert retention.mark_deployed(parse_image(f"{IMAGE}@{digests[0]}"), "ingest") is False
    retention.apply_policies(REF)
    assert retention.plan_policies(REF, readable=True).action == UNCHANGED
    left = sorted(
        i.name.rsplit("@", 1)[1]
        for i in clients.artifact_registry().list_docker_images(parent=REF.repository_name)
    )
    assert left == sorted([digests[0], *digests[-retention.KEEP_VERSIONS :]])
    finding = retention.check_policies(REF)
    assert finding is not None and finding.ok


def test_no_policy_or_a_dry_run_is_a_finding(emulator: Emulator) -> None:
    make_repo()
    finding = retention.check_policies(REF)
    assert finding is not None and not finding.ok and "no cleanup policy" in finding.evidence
    retention.apply_policies(REF)
    repo = clients.artifact_registry().get_repository(name=REF.repository_name)
    repo.cleanup_policy_dry_run = True
    clients.artifact_registry().update_repository(
        repository=repo, update_mask={"paths": ["cleanup_policy_dry_run"]}
    )
    finding = retention.check_policies(REF)
    assert finding is not None and not finding.ok and "dry run" in finding.evidence
    assert retention.plan_policies(REF, readable=True).action == UPDATE
