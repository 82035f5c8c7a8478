"""Settings resolve in one order: defaults < govctl.toml < GOVCTL_* env < flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from govctl import config
from govctl.errors import UsageError


def test_defaults_without_file_or_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = config.load(env={"CLOUDSDK_CONFIG": str(tmp_path / "no-gcloud")})
    assert (cfg.project, cfg.region, cfg.source) == (None, "us-central1", None)
    assert (cfg.emulator.port, cfg.emulator.storage_port) == (8086, 4443)
    assert cfg.state_dir.parts[-2:] == ("govctl", "emulator")


def test_file_then_env_then_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("govctl.toml").write_text(
        'project = "from-file"\nregion = "us-central1"\n'
        '[emulator]\nport = 9000\nstorage_port = 9001\nstate_dir = "~/emu"\n'
    )
    cfg = config.load(env={})
    assert (cfg.project, cfg.region, cfg.emulator.port) == ("from-file", "us-central1", 9000)
    assert cfg.state_dir == Path("~/emu").expanduser()
    assert cfg.source == tmp_path.resolve() / "govctl.toml"

    env = {"GOVCTL_PROJECT": "from-env", "GOVCTL_EMULATOR_PORT": "9100"}
    cfg = config.load(env=env)
    assert (cfg.project, cfg.region, cfg.emulator.port) == ("from-env", "us-central1", 9100)

    cfg = config.load(env=env, emulator_port=0, project=None, emulator_state_dir=tmp_path)
    assert (cfg.project, cfg.emulator.port, cfg.state_dir) == ("from-env", 0, tmp_path)
    assert cfg.emulator.storage_port == 9001


def test_govctl_config_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "elsewhere.toml"
    path.write_text('region = "europe-west1"\n')
    assert config.load(env={"GOVCTL_CONFIG": str(path)}).region == "europe-west1"
    with pytest.raises(UsageError, match="does not exist"):
        config.load(env={"GOVCTL_CONFIG": str(tmp_path / "missing.toml")})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('projcet = "x"\n', "unknown key 'projcet' — did you mean project"),
        (
            "[emulator]\nprot = 1\n",
            r"unknown key \[emulator\] prot — did you mean \[emulator\] port",
        ),
        ("[emulator]\nport = 70000\n", "expected a whole number from 0 to 65,535"),
        ('[emulator]\nport = "http"\n', "expected a whole number"),
        ("region = 3\n", "expected a Cloud Run region"),
        ("region = \n", "cannot read"),
    ],
)
def test_bad_file_is_a_usage_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "govctl.toml"
    path.write_text(text)
    with pytest.raises(UsageError, match=message):
        config.load(env={"GOVCTL_CONFIG": str(path)})


def test_bad_env_value_names_the_variable() -> None:
    with pytest.raises(UsageError, match="GOVCTL_EMULATOR_PORT"):
        config.load(env={"GOVCTL_EMULATOR_PORT": "-1"})


def _gcloud_dir(tmp_path: Path, project: str, region: str) -> Path:
    root = tmp_path / "gcloud"
    (root / "configurations").mkdir(parents=True)
    (root / "active_config").write_text("work\n")
    (root / "configurations" / "config_work").write_text(
        f"[core]\nproject = {project}\n\n[run]\nregion = {region}\n"
    )
    return root


def test_gcloud_configuration_sits_below_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    env = {"CLOUDSDK_CONFIG": str(_gcloud_dir(tmp_path, "from-gcloud", "europe-west1"))}
    cfg = config.load(env=env)
    assert (cfg.project, cfg.region) == ("from-gcloud", "europe-west1")
    assert (cfg.settings["project"].source, cfg.settings["region"].source) == ("gcloud", "gcloud")
    # The defaults that name the project follow it.
    assert cfg.job.image == "europe-west1-docker.pkg.dev/from-gcloud/govreposcrape/ingestion"
    assert cfg.job.service_account == "govreposcrape-sa@from-gcloud.iam.gserviceaccount.com"
    Path("govctl.toml").write_text('project = "from-file"\n')
    cfg = config.load(env=env)
    assert (cfg.project, cfg.settings["project"].source, cfg.region) == (
        "from-file",
        "file",
        "europe-west1",
    )


def test_runbook_defaults_and_job_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("govctl.toml").write_text(
        'project = "govreposcrape"\n[job]\ncpu = 4\nmemory = "16Gi"\ntask_timeout = "1h30m"\n'
        'args = ["--concurrency", "8"]\nenv = { LOG_LEVEL = "debug" }\n'
    )
    cfg = config.load(env={"GOVCTL_JOB_TASKS": "10"}, job_parallelism=5)
    job = cfg.job
    assert (job.name, job.cpu, job.memory, job.tasks, job.parallelism) == (
        "govreposcrape-ingestion", 4, "16Gi", 10, 5,
    )  # fmt: skip
    assert job.task_timeout.total_seconds() == 5400 and job.max_retries == 0
    assert (job.args, job.env) == (("--concurrency", "8"), {"LOG_LEVEL": "debug"})
    assert (cfg.bucket, cfg.schedule.cron, cfg.schedule.time_zone) == (
        "govreposcrape-summaries", "0 2 * * *", "Etc/UTC",
    )  # fmt: skip
    assert cfg.run_uri == (
        "https://run.googleapis.com/v2/projects/govreposcrape/locations/us-central1/"
        "jobs/govreposcrape-ingestion:run"
    )
    assert (
        cfg.settings["job.tasks"].source == "env"
        and cfg.settings["job.parallelism"].source == "flag"
    )


def test_a_long_task_timeout_is_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = config.load(env={"GOVCTL_JOB_TASK_TIMEOUT": "48h"})
    assert cfg.job.task_timeout.total_seconds() == 48 * 3600
    assert len(cfg.warnings) == 1 and "over 24h" in cfg.warnings[0]


def test_missing_project_says_how_to_set_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = config.load(env={"CLOUDSDK_CONFIG": str(tmp_path)})
    with pytest.raises(UsageError, match="no project set — pass --project") as err:
        cfg.require_project()
    assert err.value.exit_code == 2


def test_values_made_from_a_missing_project_are_absent_not_placeholders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No project: the image and service account are None, and reading them is the usage
    error that says how to set one (never a "(needs a project)" string in a value)."""
    monkeypatch.chdir(tmp_path)
    cfg = config.load(env={"CLOUDSDK_CONFIG": str(tmp_path)})
    assert (cfg.job.image_or_none, cfg.job.service_account_or_none) == (None, None)
    assert cfg.settings["job.image"].value is None
    for read in (lambda: cfg.job.image, lambda: cfg.job.service_account):
        with pytest.raises(UsageError, match=r"needs a project: none is set — pass --project"):
            read()


def test_index_settings_are_typed_attributes(tmp_path: Path) -> None:
    cfg = config.load(env={"GOVCTL_INDEX_LOCATION": "eu", "CLOUDSDK_CONFIG": str(tmp_path)})
    assert (cfg.index.data_store, cfg.index.location) == ("govreposcrape-search", "eu")
    with pytest.raises(UsageError, match="GOVCTL_INDEX_LOCATION 'mars': expected one of"):
        config.load(env={"GOVCTL_INDEX_LOCATION": "mars"})


def test_the_cloud_target_is_a_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whether commands talk to Google or to `govctl emulator` is resolved with the rest:
    environment (as `govctl emulator env` sets it) over govctl.toml; Google by default."""
    monkeypatch.chdir(tmp_path)
    cfg = config.load(env={})
    assert cfg.cloud == config.CloudTarget(None, None) and not cfg.cloud.is_emulator
    assert cfg.settings["cloud.emulator"] == config.Setting(None, "default")
    Path("govctl.toml").write_text('[cloud]\nemulator = "127.0.0.1:9000"\n')
    env = {"STORAGE_EMULATOR_HOST": "http://127.0.0.1:4443/"}
    cfg = config.load(env=env)
    assert cfg.cloud == config.CloudTarget("127.0.0.1:9000", "http://127.0.0.1:4443")
    assert cfg.settings["cloud.emulator"].source == "file"
    assert cfg.settings["cloud.storage_emulator"].source == "env"
    env = {"GOVCTL_EMULATOR_HOST": "[::1]:8086"}
    assert config.cloud_target(env) == config.CloudTarget("[::1]:8086", None)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GOVCTL_EMULATOR_HOST": "http://127.0.0.1:8086"}, "expected HOST:PORT"),
        ({"GOVCTL_EMULATOR_HOST": "127.0.0.1"}, "expected HOST:PORT"),
        ({"GOVCTL_EMULATOR_HOST": "127.0.0.1:99999"}, "expected HOST:PORT"),
        ({"STORAGE_EMULATOR_HOST": "127.0.0.1:4443"}, "expected the URL of fake-gcs-server"),
    ],
)
def test_a_bad_cloud_target_is_a_usage_error(env: dict[str, str], message: str) -> None:
    name = next(iter(env))
    with pytest.raises(UsageError, match=f"invalid {name} .*{message}") as err:
        config.load(env=env)
    assert err.value.exit_code == 2
