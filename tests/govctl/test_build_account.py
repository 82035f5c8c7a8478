"""`deploy --build cloud` on a project new to Cloud Build (issue 13, item 2), end to end on the
loopback cloud, whose projects are such new projects: a build that names no account runs as the
Compute Engine default, which holds no role there and cannot push
(docs/emulator/cloudbuild.md, "Identity").

setup makes ``[build] service_account`` and grants it what a build needs; deploy builds as it;
an account that lost its Artifact Registry role fails the build, and doctor names the role.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from google.cloud.devtools import cloudbuild_v1 as cb

from govctl.cli.main import main
from govctl.emulator.server import Emulator
from govctl.gcp import clients
from tests.govctl.test_doctor import doctor, failing

PROJECT = "fresh-build-project"
REGION = "europe-west2"
BUCKET = "fresh-build-digests"
BUILDER = f"govreposcrape-build@{PROJECT}.iam.gserviceaccount.com"
REPOSITORY = f"projects/{PROJECT}/locations/{REGION}/repositories/govreposcrape"
IMAGES = f"{REGION}-docker.pkg.dev/{PROJECT}/govreposcrape"
WRITER = "roles/artifactregistry.writer"


@pytest.fixture
def fresh(emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    monkeypatch.chdir(tmp_path)
    for key in ("GOVCTL_DEBUG", "GOVCTL_CONFIG"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud"))
    monkeypatch.setenv("GOVCTL_PROJECT", PROJECT)
    monkeypatch.setenv("GOVCTL_REGION", REGION)
    monkeypatch.setenv("GOVCTL_BUCKET_NAME", BUCKET)
    return emulator


def builds() -> list[cb.Build]:
    """The project's builds, newest first."""
    return list(clients.cloud_build().list_builds(project_id=PROJECT))


def revoke_writer(member: str) -> None:
    """Remove ``member`` from the writer role on the repository, as an operator would with
    `gcloud artifacts repositories remove-iam-policy-binding` (its last member: the binding
    goes with it)."""
    registry = clients.artifact_registry()
    policy: Any = registry.get_iam_policy(request={"resource": REPOSITORY})
    for binding in policy.bindings:
        if binding.role == WRITER:
            binding.members.remove(member)
    registry.set_iam_policy(request={"resource": REPOSITORY, "policy": policy})


def test_a_fresh_project_builds_as_its_build_account_and_doctor_names_a_lost_role(
    fresh: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["setup", "-y"]) == 0
    capsys.readouterr()
    assert main(["deploy", "--build", "cloud", "--allow-dirty", "-y"]) == 0
    err = capsys.readouterr().err
    assert "(Cloud Build)" in err and "created run job" in err
    (build,) = builds()
    assert build.status == cb.Build.Status.SUCCESS
    assert build.service_account == f"projects/{PROJECT}/serviceAccounts/{BUILDER}"
    assert build.options.logging == cb.BuildOptions.LoggingMode.CLOUD_LOGGING_ONLY
    assert not build.warnings  # it may write its log: the lines were streamed
    code, checks = doctor(capsys)
    assert "build account" not in failing(checks)

    # The account loses its role on the repository: the next build cannot push ...
    revoke_writer(f"serviceAccount:{BUILDER}")
    monkeypatch.setenv("GOVCTL_JOB_IMAGE", f"{IMAGES}/ingestion-next")  # not built yet
    capsys.readouterr()
    assert main(["deploy", "--build", "cloud", "--allow-dirty", "-y"]) == 1
    err = capsys.readouterr().err
    assert "ended FAILURE: error pushing image" in err
    assert f"{BUILDER} may not push to the image's repository" in err
    assert "roles/artifactregistry.writer" in err
    assert builds()[0].failure_info.type_ == cb.Build.FailureInfo.FailureType.PUSH_NOT_AUTHORIZED

    # ... and doctor names the missing role and the fix.
    code, checks = doctor(capsys)
    assert code == 1
    assert failing(checks)["build account"] == (
        f"{BUILDER} lacks {WRITER} on repository govreposcrape: `deploy --build cloud` fails"
    )
    fix = checks["build account"]["fix"]
    assert fix.startswith("govctl setup (it grants what is missing), or: gcloud artifacts")
    assert f"--member=serviceAccount:{BUILDER} --role={WRITER}" in fix

    # setup grants it again, and the build pushes.
    capsys.readouterr()
    assert main(["setup", "-y"]) == 0
    assert f"granted {WRITER} to serviceAccount:{BUILDER}" in capsys.readouterr().err
    assert main(["deploy", "--build", "cloud", "--allow-dirty", "-y"]) == 0
    assert builds()[0].status == cb.Build.Status.SUCCESS


def test_the_build_account_is_a_setting(
    fresh: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    custom = f"image-builder@{PROJECT}.iam.gserviceaccount.com"
    monkeypatch.setenv("GOVCTL_BUILD_SERVICE_ACCOUNT", custom)
    assert main(["setup", "-y"]) == 0
    assert f"created service account {custom}" in capsys.readouterr().err
    assert main(["deploy", "--build", "cloud", "--allow-dirty", "-y"]) == 0
    assert builds()[0].service_account == f"projects/{PROJECT}/serviceAccounts/{custom}"


def test_deploy_without_the_build_account_stops_before_building(
    fresh: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["setup", "-y"]) == 0
    monkeypatch.setenv("GOVCTL_BUILD_SERVICE_ACCOUNT", f"nobody@{PROJECT}.iam.gserviceaccount.com")
    capsys.readouterr()
    assert main(["deploy", "--build", "cloud", "--allow-dirty", "-y"]) == 1
    err = capsys.readouterr().err
    assert f"build service account nobody@{PROJECT}.iam.gserviceaccount.com does not exist" in err
    assert "run `govctl setup`" in err
    assert builds() == []
