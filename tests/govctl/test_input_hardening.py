"""Settings that used to pass their checks (issue 14, items 3, 5 and 9): exit 2, one line naming
the setting, no API call (``GOVCTL_EMULATOR_HOST`` points at a closed port: a call would exit 1).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from govctl import config
from govctl.cli.main import main
from govctl.emulator import images
from govctl.errors import UsageError

# A valid value of every setting, as a GOVCTL_* variable would hold it.
VALID = {
    "project": "govreposcrape",
    "region": "europe-west2",
    "job.name": "govreposcrape-ingestion",
    "job.image": "europe-west2-docker.pkg.dev/govreposcrape/govreposcrape/ingestion",
    "job.service_account": "govreposcrape-sa@govreposcrape.iam.gserviceaccount.com",
    "job.cpu": "2",
    "job.memory": "4Gi",
    "job.task_timeout": "6h",
    "job.max_retries": "1",
    "job.tasks": "2",
    "job.parallelism": "1",
    "job.feed": "https://example.org/repos.json",
    "job.args": "--force",
    "job.env": "LOG_FORMAT=json",
    "job.secrets": "GITHUB_TOKEN=github-token",
    "build.service_account": "govreposcrape-build@govreposcrape.iam.gserviceaccount.com",
    "bucket.name": "govreposcrape-summaries",
    "schedule.name": "govreposcrape-daily-ingest",
    "schedule.cron": "0 2 * * *",
    "schedule.time_zone": "Europe/London",
    "index.data_store": "govreposcrape-search",
    "index.location": "eu",
    "cloud.emulator": "127.0.0.1:8086",
    "cloud.storage_emulator": "http://127.0.0.1:4443",
    "emulator.state_dir": "/tmp/govctl-emulator",
    "emulator.host": "127.0.0.1",
    "emulator.port": "8086",
    "emulator.storage_port": "4443",
}
# Lists of shell words: there a newline separates words, as a space does.
WORD_LISTS = {"job.args", "job.env", "job.secrets"}


@pytest.fixture(autouse=True)
def _clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for key in ("GOVCTL_DEBUG", "GOVCTL_CONFIG", *(k.env for k in config.KEYS.values())):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.setenv("GOVCTL_EMULATOR_HOST", "127.0.0.1:9")


def _run(
    argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    **env: str,
) -> tuple[int, str]:  # fmt: skip
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code = main(argv)
    return code, capsys.readouterr().err


def test_the_table_names_every_setting() -> None:
    assert set(VALID) == set(config.KEYS)


@pytest.mark.parametrize("name", sorted(set(VALID) - WORD_LISTS))
def test_a_trailing_newline_is_refused_naming_the_setting(
    name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = config.KEYS[name]
    code, err = _run(["config", "show"], capsys, monkeypatch, **{key.env: VALID[name] + "\n"})
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert key.env in lines[0], err
    # The value is shown with its newline escaped, and no other setting is blamed.
    assert repr(VALID[name] + "\n") in lines[0], err
    assert not any(k.env in err for k in config.KEYS.values() if k is not key), err


@pytest.mark.parametrize("name", sorted(set(VALID) - WORD_LISTS))
def test_each_setting_accepts_its_valid_value(
    name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The walk above must fail because of the newline, not because the value was bad.
    code, err = _run(["config", "show"], capsys, monkeypatch,
                     **{config.KEYS[name].env: VALID[name]})  # fmt: skip
    assert code == 0, err


def test_a_trailing_newline_in_the_file_and_a_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "govctl.toml").write_text('[job]\nname = "govreposcrape-ingestion\\n"\n')
    code, err = _run(["config", "show"], capsys, monkeypatch)
    assert code == 2 and "[job] name in" in err
    (tmp_path / "govctl.toml").unlink()
    code, err = _run(["config", "show", "--project", "govreposcrape\n"], capsys, monkeypatch)
    assert code == 2 and "--project" in err and "[job] image" not in err, err


def test_deploy_never_creates_a_job_named_with_a_newline(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, err = _run(["deploy", "-y"], capsys, monkeypatch, GOVCTL_PROJECT="govreposcrape",
                     GOVCTL_JOB_NAME="govreposcrape-ingestion\n")  # fmt: skip
    assert code == 2 and "GOVCTL_JOB_NAME" in err, err


def test_a_sink_bucket_with_a_newline_is_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, err = _run(["local", "run", "--no-container", "--dry-run", "--sink", "gs://digests\n"],
                     capsys, monkeypatch, GOVCTL_PROJECT="govreposcrape")  # fmt: skip
    assert code == 2 and "--sink bucket" in err, err


def test_word_lists_take_a_newline_as_a_separator(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, err = _run(["config", "show", "--json"], capsys, monkeypatch,
                     GOVCTL_JOB_ARGS="--force\n--limit 3\n")  # fmt: skip
    assert code == 0, err


# --- item 5: an unbalanced quote --------------------------------------------------------------
@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("GOVCTL_JOB_ARGS", '--allow-host "github.com'),
        ("GOVCTL_JOB_ENV", "LOG_FORMAT='json"),
        ("GOVCTL_JOB_SECRETS", 'GITHUB_TOKEN="github-token'),
    ],
)
def test_an_unbalanced_quote_is_a_usage_error(
    variable: str, value: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    code, err = _run(["config", "show"], capsys, monkeypatch, **{variable: value})
    assert code == 2, err
    assert variable in err and "balanced quotes" in err and "internal error" not in err


def test_an_unbalanced_quote_in_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "govctl.toml").write_text("[job]\nargs = '--concurrency \"4'\n")
    code, err = _run(["config", "show"], capsys, monkeypatch)
    assert code == 2 and "[job] args in" in err and "balanced quotes" in err, err


def test_an_unbalanced_quote_in_map_image() -> None:
    # What `govctl emulator start` checks before it starts anything (a task's command line
    # used to be split only when a job ran, failing the RPC with UNKNOWN).
    with pytest.raises(UsageError, match="quotes balanced"):
        images.image_map(["*/x*=python -c 'print(1)"])


# --- item 9: accepted but should not be -------------------------------------------------------
def test_a_feed_with_a_credential_is_refused_without_showing_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    feed = "https://user:TOKEN123@example.org/repos.json"
    for env in ({"GOVCTL_JOB_FEED": feed}, {"GOVCTL_JOB_FEED": feed + "\n"},
                {"GOVCTL_JOB_FEED": "https://TOKEN123@example.org/repos json"}):  # fmt: skip
        code, err = _run(["config", "show"], capsys, monkeypatch, **env)
        assert code == 2 and "GOVCTL_JOB_FEED" in err, err
        assert "TOKEN123" not in err and "***@example.org" in err, err
    (tmp_path / "govctl.toml").write_text(f'[job]\nfeed = "{feed}"\n')
    monkeypatch.delenv("GOVCTL_JOB_FEED")
    code, err = _run(["config", "show"], capsys, monkeypatch)
    assert code == 2 and "user name or password" in err and "TOKEN123" not in err, err


@pytest.mark.parametrize(
    "name", ["DB_PASSWD", "GH_CREDENTIALS", "NPM_AUTH", "AUTH_HEADER", "GH_PAT", "SMTP_PASS"]
)
def test_credential_names_in_job_env_are_refused(
    name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, err = _run(["config", "show"], capsys, monkeypatch, GOVCTL_JOB_ENV=f"{name}=s3cr3t")
    assert code == 2 and name in err and "s3cr3t" not in err, err
    assert "govctl secrets set" in err and "[job] secrets" in err, err


@pytest.mark.parametrize("name", ["GIT_AUTHOR_NAME", "PASSAGE_COUNT", "LOG_FORMAT", "PATH_PREFIX"])
def test_names_that_only_resemble_credentials_are_kept(
    name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, err = _run(["config", "show"], capsys, monkeypatch, GOVCTL_JOB_ENV=f"{name}=x")
    assert code == 0, err


@pytest.mark.parametrize(
    ("bucket", "reason"),
    [
        ("my-google-bucket", "google"),
        ("g00gle-digests", "google"),
        ("googdigests", "goog"),
        ("192.168.5.4", "IP address"),
    ],
)
def test_bucket_names_cloud_storage_forbids(
    bucket: str, reason: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    code, err = _run(["config", "show"], capsys, monkeypatch, GOVCTL_BUCKET_NAME=bucket)
    assert code == 2 and "GOVCTL_BUCKET_NAME" in err and reason in err, err
    assert "cloud.google.com/storage/docs/buckets#naming" in err
