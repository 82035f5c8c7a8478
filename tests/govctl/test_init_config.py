"""`govctl init` and `govctl config show` through the command line."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from govctl import config
from govctl.cli.main import main


@pytest.fixture(autouse=True)
def _clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for key in [k.env for k in config.KEYS.values()] + ["GOVCTL_CONFIG"]:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud"))


def test_init_writes_every_key_and_refuses_to_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init", "--project", "govreposcrape", "--region", "europe-west2"]) == 0
    text = (tmp_path / "govctl.toml").read_text()
    data = tomllib.loads(text)
    assert (data["project"], data["region"], data["job"], data["bucket"]) == (
        "govreposcrape", "europe-west2", {}, {},
    )  # fmt: skip
    for key in config.KEYS.values():
        name = key.name.rpartition(".")[2]
        assert f"{name} = " in text, name  # every key is there, set or commented out
    assert '# image = "europe-west2-docker.pkg.dev/govreposcrape/govreposcrape/ingestion"' in text
    # Uncommenting a default gives a valid file with the same value.
    uncommented = text.replace('# memory = "4Gi"', 'memory = "4Gi"')
    (tmp_path / "govctl.toml").write_text(uncommented)
    assert config.load(env={}).job.memory == "4Gi"

    capsys.readouterr()
    assert main(["init", "--project", "other-project"]) == 2
    assert "govctl.toml exists — pass --force" in capsys.readouterr().err
    assert main(["init", "--project", "other-project", "--force"]) == 0
    assert tomllib.loads((tmp_path / "govctl.toml").read_text())["project"] == "other-project"


def test_config_show_names_each_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "govctl.toml").write_text('project = "govreposcrape"\n[job]\ncpu = 4\n')
    monkeypatch.setenv("GOVCTL_JOB_MEMORY", "8Gi")
    monkeypatch.setenv("GOVCTL_EMULATOR_HOST", "127.0.0.1:9999")
    assert main(["config", "show", "--region", "europe-west1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = {r["key"]: (r["value"], r["source"]) for r in data["settings"]}
    assert rows["project"] == ("govreposcrape", "file")
    assert rows["region"] == ("europe-west1", "flag")
    assert rows["job.cpu"] == (4, "file")
    assert rows["job.memory"] == ("8Gi", "env")
    assert rows["job.task_timeout"] == ("6h", "default")
    # Where the commands talk to: the emulator, because the environment says so.
    assert rows["cloud.emulator"] == ("127.0.0.1:9999", "env")
    assert rows["cloud.storage_emulator"] == (None, "default")
    assert rows["job.service_account"] == (
        "govreposcrape-sa@govreposcrape.iam.gserviceaccount.com", "default",
    )  # fmt: skip
    assert data["file"] == str(tmp_path.resolve() / "govctl.toml")  # the whole path
    assert main(["config", "show"]) == 0
    out = capsys.readouterr().out
    assert "job.memory" in out and "8Gi" in out and "env" in out
