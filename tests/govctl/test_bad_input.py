"""Bad input, from a flag, a GOVCTL_* variable or govctl.toml: exit 2, one line, no API call.

``GOVCTL_EMULATOR_HOST`` points at a closed port, so a command that called an API before
validating would fail with exit 1 (unreachable) instead of 2.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from govctl.cli.main import main

# (argv, environment, govctl.toml text, what the one line must name)
CASES: list[tuple[list[str], dict[str, str], str, str]] = [
    (["config", "show"], {"GOVCTL_PROJECT": "My_Project"}, "", "My_Project"),
    (["config", "show", "--region", "eu-west2"], {}, "", "did you mean us-west2"),
    (["config", "show"], {}, '[job]\nmemory = "4GB"\n', "did you mean 4Gi"),
    (["config", "show"], {"GOVCTL_JOB_MEMORY": "4096"}, "", "Mi or Gi"),
    (["config", "show"], {}, "[job]\ncpu = 3\n", "1, 2, 4, 6 or 8"),
    (["config", "show"], {}, '[job]\ncpu = 1\nmemory = "8Gi"\n', "8Gi for 1 vCPU"),
    (["config", "show"], {}, '[job]\ncpu = 8\nmemory = "2Gi"\n', "2Gi for 8 vCPU"),
    (["config", "show"], {}, '[job]\ncpu = 1\nmemory = "127Mi"\n', "expected 128Mi to 4Gi"),
    (["config", "show"], {}, '[job]\ntask_timeout = "200h"\n', "at most 168h"),
    (["config", "show"], {"GOVCTL_JOB_TASK_TIMEOUT": "6 hours"}, "", "'6 hours'"),
    (["config", "show"], {}, "[job]\nmax_retries = 11\n", "0 to 10"),
    (["config", "show"], {}, "[job]\ntasks = 0\n", "1 to 10,000"),
    (["config", "show"], {"GOVCTL_JOB_TASKS": "20000"}, "", "1 to 10,000"),
    (["config", "show"], {}, "[job]\ntasks = 2\nparallelism = 5\n", "at most [job] tasks"),
    (["config", "show"], {}, '[schedule]\ncron = "0 2 * *"\n', "five-field unix cron"),
    (["config", "show"], {"GOVCTL_SCHEDULE_CRON": "61 2 * * *"}, "", "'61 2 * * *'"),
    (["config", "show"], {}, '[schedule]\ntime_zone = "Europe/Londn"\n', "Europe/London"),
    (["config", "show"], {}, '[job]\nenv = { 1BAD = "x" }\n', "1BAD"),
    (["config", "show"], {}, '[job]\nenv = { CLOUD_RUN_TASK_INDEX = "1" }\n', "sets"),
    (["config", "show"], {}, '[job]\nenv = { GCS_BUCKET_NAME = "x" }\n', "[bucket] name"),
    (["config", "show"], {}, '[job]\nimage = "gcr.io/p/ingestion"\n', "Artifact Registry"),
    (["config", "show"], {"GOVCTL_JOB_IMAGE": "eu.gcr.io/p/i:1"}, "", "shut down"),
    (["config", "show"], {}, '[job]\nimage = "Not An Image"\n', "image reference"),
    (["config", "show"], {"GOVCTL_JOB_NAME": "Govreposcrape_Ingestion"}, "", "job name"),
    (["config", "show"], {}, '[schedule]\nname = "daily ingest"\n', "scheduler job id"),
    (["config", "show"], {}, '[bucket]\nname = "gs://digests"\n', "'digests'"),
    (["config", "show"], {}, '[job]\nservice_account = "robot"\n', "service account"),
    (["config", "show"], {}, '[job]\nmemroy = "8Gi"\n', "did you mean [job] memory"),
    (["config", "show"], {}, 'projcet = "govreposcrape"\n', "did you mean project"),
    (["config", "show"], {}, '[job]\nfeed = "ftp://example.org/repos.json"\n', "URL"),
    (["config", "show"], {}, "[job]\nargs = [1, 2]\n", "list of strings"),
    (["config", "show"], {}, "[job\n", "cannot read"),
    (["config", "show"], {}, 'job = "x"\n', "[job] must be a table"),
    (["config", "show"], {"GOVCTL_EMULATOR_PORT": "-1"}, "", "GOVCTL_EMULATOR_PORT"),
    (["init", "--project", "UPPER-case"], {}, "", "UPPER-case"),
    (["init", "--region", "mars-north1"], {}, "", "mars-north1"),
    # Numeric options: their messages name the flag, the value and the range.
    (["run", "--limit", "0"], {}, "", "invalid --limit 0: expected a whole number from 1 to"),
    (["run", "--tasks", "many"], {}, "", "invalid --tasks 'many': expected a whole number from 1"),
    (["executions", "list", "-n", "1001"], {}, "", "invalid --limit 1001: expected a whole number"),
    (["logs", "-n", "0"], {}, "", "invalid -n 0: expected a whole number from 1 to 10,000"),
    (["cost", "--days", "91"], {}, "", "invalid --days 91: expected a whole number from 1 to 90"),
    (["cost", "--runs-per-day", "nan"], {}, "", "invalid --runs-per-day 'nan': expected a number"),
    (["cost", "--price-cpu", "2"], {}, "", "invalid --price-cpu '2': expected USD per vCPU-second"),
    (["local", "run", "--limit", "x"], {}, "", "invalid --limit 'x': expected a whole number"),
    # Where the commands talk to is a setting too, checked like the others.
    (["config", "show"], {"GOVCTL_EMULATOR_HOST": "http://127.0.0.1:9"}, "", "HOST:PORT"),
]


@pytest.mark.parametrize(
    ("argv", "env", "toml", "needle"),
    CASES,
    ids=[" ".join(c[0]) + f" #{i}" for i, c in enumerate(CASES)],
)
def test_bad_input_is_one_line_exit_2_and_no_call(
    argv: list[str],
    env: dict[str, str],
    toml: str,
    needle: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    for key in ("GOVCTL_DEBUG", "GOVCTL_CONFIG"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.setenv("GOVCTL_EMULATOR_HOST", "127.0.0.1:9")  # any call would fail, exit 1
    monkeypatch.setenv("GOVCTL_PROJECT", "govreposcrape")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    if toml:
        (tmp_path / "govctl.toml").write_text(toml)
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and needle in lines[0], err
    assert "Traceback" not in err
    assert not (tmp_path / "govctl.toml.tmp").exists()


@pytest.mark.parametrize(("cpu", "memory"), [("1", "128Mi"), ("2", "256Mi"), ("1", "4Gi")])
def test_memory_from_128mi_is_accepted(
    cpu: str,
    memory: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Cloud Run jobs take 128 MiB to 4 GiB with 1 vCPU, to 8 GiB with 2 (the vCPU and memory
    table of docs.cloud.google.com/run/docs/configuring/jobs/cpu), not 512 MiB upwards."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.setenv("GOVCTL_EMULATOR_HOST", "127.0.0.1:9")
    monkeypatch.setenv("GOVCTL_PROJECT", "govreposcrape")
    (tmp_path / "govctl.toml").write_text(f'[job]\ncpu = {cpu}\nmemory = "{memory}"\n')
    assert main(["config", "show"]) == 0, capsys.readouterr().err
    assert memory in capsys.readouterr().out
