"""`govctl secrets` end to end on the loopback cloud: a value goes from stdin into Secret
Manager, deploy passes a reference, the task sees the value, and no output, log entry or
job spec ever holds it."""

from __future__ import annotations

import hashlib
import io
import json
import shlex
import sys
from pathlib import Path

import pytest
from google.cloud import secretmanager_v1 as sm

from govctl.cli.main import main
from govctl.emulator.server import Emulator
from govctl.gcp import clients
from govctl.services import watch
from tests.govctl import test_deploy
from tests.govctl.test_deploy import JOB, PROJECT, SA, create_prerequisites

VALUE = "ghp_s3cr3tValueNobodyMaySee0123456789"
HASHED = hashlib.sha256(VALUE.encode()).hexdigest()
SECRET = f"projects/{PROJECT}/secrets/github-token"
# The job's image runs this: it proves the task saw the value without printing it.
PRINT_HASH = (
    "import hashlib, os; "
    "print('token sha256 ' + hashlib.sha256(os.environ['GITHUB_TOKEN'].encode()).hexdigest())"
)


class Transcript:
    """Every command's stdout and stderr, to search for the value afterwards."""

    def __init__(self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
        self.capsys = capsys
        self.monkeypatch = monkeypatch
        self.text: list[str] = []

    def __call__(self, *argv: str, stdin: bytes | None = None) -> tuple[int, str, str]:
        self.capsys.readouterr()
        if stdin is not None:
            self.monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        code = main(list(argv))
        out, err = self.capsys.readouterr()
        self.text += [out, err]
        return code, out, err


@pytest.fixture
def govctl(
    cloud: Emulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Transcript:
    create_prerequisites()
    cloud.cloud.image_map["*"] = f"{shlex.quote(sys.executable)} -c {shlex.quote(PRINT_HASH)}"
    monkeypatch.setattr(watch, "POLL_S", 0.2)
    monkeypatch.setattr(watch, "LOG_POLL_S", 0.5)
    return Transcript(capsys, monkeypatch)


def _configure(tmp_path: Path, ref: str = "github-token") -> None:
    (tmp_path / "govctl.toml").write_text(f'[job]\nsecrets = {{ GITHUB_TOKEN = "{ref}" }}\n')


def _all_log_entries() -> list[str]:
    pager = clients.logging().list_log_entries(request={"resource_names": [f"projects/{PROJECT}"]})
    return [str(type(e).to_json(e)) for e in pager]


def test_set_deploy_run_the_task_sees_the_value_and_nothing_shows_it(
    govctl: Transcript, tmp_path: Path
) -> None:
    code, _, err = govctl("secrets", "set", "GITHUB_TOKEN", stdin=VALUE.encode() + b"\n")
    assert code == 0, err
    assert "created secret github-token: added version 1" in err
    assert f"granted roles/secretmanager.secretAccessor to {SA}" in err
    assert 'add GITHUB_TOKEN = "github-token" to [job] secrets' in err
    stored = clients.secret_manager().access_secret_version(name=f"{SECRET}/versions/latest")
    assert stored.payload.data == VALUE.encode()  # the trailing newline was removed

    _configure(tmp_path)
    code, out, err = govctl("deploy", "--image", test_deploy.IMAGE, "-y")
    assert code == 0, err
    assert "secret GITHUB_TOKEN" in out and "github-token" in out
    env = clients.jobs().get_job(name=JOB).template.template.containers[0].env
    ref = next(e for e in env if e.name == "GITHUB_TOKEN")
    assert ref.value == ""
    assert (ref.value_source.secret_key_ref.secret, ref.value_source.secret_key_ref.version) == (
        "github-token",
        "latest",
    )

    code, out, err = govctl("run")
    assert code == 0, out + err
    assert any(f"token sha256 {HASHED}" in entry for entry in _all_log_entries())

    code, out, _ = govctl("secrets", "list", "--json")
    assert code == 0
    (entry,) = json.loads(out)["secrets"]
    assert entry | {"ok": True} == {
        "name": "GITHUB_TOKEN", "secret": "github-token", "version": "latest", "exists": True,
        "latest_enabled": "1", "state": "ENABLED", "access": True, "problem": None, "fix": None,
        "ok": True,
    }  # fmt: skip
    code, out, _ = govctl("secrets", "list")
    assert code == 0 and "GITHUB_TOKEN" in out and "yes" in out

    # A second set adds version 2; the unchanged deploy has nothing to do; both runs' tasks
    # read the newest version.
    code, _, err = govctl("secrets", "set", "GITHUB_TOKEN", stdin=b"second-value")
    assert code == 0 and "secret github-token: added version 2" in err and "granted" not in err
    code, out, err = govctl("deploy", "--image", test_deploy.IMAGE, "--dry-run", "--exit-code")
    assert code == 0, out + err
    for verb in ("executions", "logs"):
        govctl(verb, "--help")
    govctl("executions", "show", "--latest")
    govctl("executions", "show", "--latest", "--json")
    govctl("logs", "--latest")
    govctl("deploy", "--image", test_deploy.IMAGE, "--dry-run", "--json")
    govctl("config", "show")

    everything = "\n".join(govctl.text + _all_log_entries())
    assert VALUE not in everything
    assert HASHED in everything  # the search would have found the value's trace
    job_spec = str(type(clients.jobs().get_job(name=JOB)).to_json(clients.jobs().get_job(name=JOB)))
    assert VALUE not in job_spec


def test_a_job_whose_account_cannot_read_the_secret_fails_with_the_cause(
    govctl: Transcript, tmp_path: Path
) -> None:
    assert govctl("secrets", "set", "GITHUB_TOKEN", stdin=VALUE.encode())[0] == 0
    _configure(tmp_path)
    assert govctl("deploy", "--image", test_deploy.IMAGE, "-y")[0] == 0
    # Someone removes the grant after the deploy.
    client = clients.secret_manager()
    policy = client.get_iam_policy(request={"resource": SECRET})
    del policy.bindings[:]
    client.set_iam_policy(request={"resource": SECRET, "policy": policy})

    code, out, err = govctl("run")

    assert code == 1
    assert "FAILED" in out
    assert "Permission denied on secret" in out and "roles/secretmanager.secretAccessor" in out
    assert "Next: govctl secrets list" in err
    assert "could not read a secret" in out  # from the task's condition reason, not its words
    code, out, _ = govctl("doctor", "--json")
    last_run = next(c for c in json.loads(out)["checks"] if c["name"] == "last run")
    assert last_run["evidence"].endswith(
        "could not read one of its [job] secrets (SECRETS_ACCESS_CHECK_FAILED)"
    )
    assert last_run["fix"].startswith("govctl secrets list")
    code, out, err = govctl("secrets", "list")
    assert code == 1
    assert "cannot read secret github-token" in out + err
    assert "govctl secrets set GITHUB_TOKEN" in err
    # deploy refuses to leave a job that cannot start; the fix is in the message.
    code, _, err = govctl("deploy", "--image", test_deploy.IMAGE, "--dry-run")
    assert code == 1 and "cannot read secret github-token" in err
    assert VALUE not in "\n".join(govctl.text)


def test_deploy_names_a_missing_secret_with_the_fix(govctl: Transcript, tmp_path: Path) -> None:
    _configure(tmp_path, "not-there:2")
    code, out, err = govctl("deploy", "--image", test_deploy.IMAGE, "--dry-run")
    assert code == 1
    assert "GITHUB_TOKEN: secret not-there does not exist" in err
    assert "govctl secrets set GITHUB_TOKEN" in err
    assert "not-there:2" in out  # the plan shows the reference


def test_a_pinned_version_is_deployed_as_that_version(govctl: Transcript, tmp_path: Path) -> None:
    for value in (b"one", b"two"):
        assert govctl("secrets", "set", "GITHUB_TOKEN", stdin=value)[0] == 0
    client = clients.secret_manager()
    client.disable_secret_version(name=f"{SECRET}/versions/2")
    _configure(tmp_path, "github-token:1")
    assert govctl("deploy", "--image", test_deploy.IMAGE, "-y")[0] == 0
    code, out, err = govctl("run")
    assert code == 0, out + err
    assert any(hashlib.sha256(b"one").hexdigest() in e for e in _all_log_entries())
    _configure(tmp_path)  # latest = version 2, disabled
    code, out, err = govctl("secrets", "list")
    assert code == 1 and "version 2 of secret github-token is disabled" in out


@pytest.mark.parametrize(
    ("argv", "env", "toml", "message"),
    [
        (["deploy"], {"GOVCTL_JOB_ENV": "GITHUB_TOKEN=abc"}, "",
         "invalid GOVCTL_JOB_ENV name 'GITHUB_TOKEN': it looks like a secret"),
        (["deploy"], {}, '[job]\nenv = { DB_PASSWORD = "x" }\n',
         "use [job] secrets and `govctl secrets set DB_PASSWORD`"),
        (["deploy"], {}, '[job]\nsecrets = { GITHUB_TOKEN = "bad/id" }\n',
         "invalid [job] secrets in govctl.toml entry GITHUB_TOKEN 'bad/id'"),
        (["deploy"], {}, '[job]\nsecrets = { GITHUB_TOKEN = "t:latest2" }\n',
         "expected a Secret Manager secret id with an optional version"),
        (["deploy"], {}, '[job]\nsecrets = { GITHUB_TOKEN = "t" }\nenv = { GITHUB_TOKEN = "t" }\n',
         "looks like a secret"),
        (["deploy"], {}, '[job]\nsecrets = { API_URL = "t" }\nenv = { API_URL = "u" }\n',
         "API_URL is also in [job] env"),
        (["run", "--env", f"GITHUB_TOKEN={VALUE}"], {}, "",
         "invalid --env name 'GITHUB_TOKEN': it looks like a secret"),
        (["secrets", "set", "1BAD"], {}, "", "invalid NAME '1BAD'"),
        (["secrets", "set", "GITHUB_TOKEN", "--secret", "a/b"], {}, "", "invalid --secret"),
        (["secrets", "list"], {"GOVCTL_JOB_SECRETS": "X=y:0"}, "",
         "invalid GOVCTL_JOB_SECRETS entry X 'y:0'"),
    ],
)  # fmt: skip
def test_bad_input_exits_2_before_any_call(
    argv: list[str], env: dict[str, str], toml: str, message: str,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GOVCTL_PROJECT", PROJECT)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud"))
    monkeypatch.setenv("GOVCTL_EMULATOR_HOST", "127.0.0.1:9")  # nothing listens: no call made
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"value")))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    if toml:
        (tmp_path / "govctl.toml").write_text(toml)
    assert main(argv) == 2
    out, err_text = capsys.readouterr()
    err = err_text.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert VALUE not in out + err_text


@pytest.mark.parametrize("stdin", [b"", b"\n", b"x" * (64 * 1024 + 1)])
def test_an_empty_or_oversized_value_exits_2(
    stdin: bytes, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GOVCTL_PROJECT", PROJECT)
    monkeypatch.setenv("GOVCTL_EMULATOR_HOST", "127.0.0.1:9")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    assert main(["secrets", "set", "GITHUB_TOKEN"]) == 2
    assert "the secret's value is" in capsys.readouterr().err


@pytest.mark.parametrize("extra", [[VALUE], ["--value", VALUE], [f"--value={VALUE}"]])
def test_a_value_on_the_command_line_is_refused_and_not_echoed(
    extra: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GOVCTL_PROJECT", PROJECT)
    monkeypatch.setenv("GOVCTL_EMULATOR_HOST", "127.0.0.1:9")
    assert main(["secrets", "set", "GITHUB_TOKEN", *extra]) == 2
    out, err = capsys.readouterr()
    assert "never from the command line" in err
    assert VALUE not in out + err


def test_a_secret_flag_that_contradicts_the_settings_exits_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GOVCTL_PROJECT", PROJECT)
    monkeypatch.setenv("GOVCTL_EMULATOR_HOST", "127.0.0.1:9")
    _configure(tmp_path, "gh-pat")
    assert main(["secrets", "set", "GITHUB_TOKEN", "--secret", "other"]) == 2
    assert "maps GITHUB_TOKEN to 'gh-pat'" in capsys.readouterr().err


def test_secrets_help_imports_no_google_cloud_module() -> None:
    import subprocess

    code = (
        "import sys; from govctl.cli.main import main; main(['secrets', 'set', '--help']); "
        "print(sorted(m for m in sys.modules if m.startswith('google.cloud')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("[]")


def test_the_secret_id_defaults_to_the_normalised_name() -> None:
    from govctl.validate import secret_id_for

    assert secret_id_for("GITHUB_TOKEN") == "github-token"
    assert secret_id_for("DB__PASSWORD_") == "db-password"


def test_set_uses_the_configured_secret_and_an_explicit_one(
    govctl: Transcript, tmp_path: Path
) -> None:
    _configure(tmp_path, "gh-pat")
    assert govctl("secrets", "set", "GITHUB_TOKEN", stdin=b"a")[0] == 0
    code, _, err = govctl("secrets", "set", "OTHER_TOKEN", "--secret", "custom", stdin=b"b")
    assert code == 0, err
    names = {s.name for s in clients.secret_manager().list_secrets(parent=f"projects/{PROJECT}")}
    assert names == {f"projects/{PROJECT}/secrets/gh-pat", f"projects/{PROJECT}/secrets/custom"}
    secret = clients.secret_manager().get_secret(name=f"projects/{PROJECT}/secrets/gh-pat")
    assert secret.replication.automatic == sm.Replication.Automatic()
    assert secret.labels["managed-by"] == "govctl"


def test_ensure_access_grants_what_is_missing_once(govctl: Transcript, tmp_path: Path) -> None:
    from govctl import config
    from govctl.services import secrets as service

    assert govctl("secrets", "set", "GITHUB_TOKEN", stdin=b"v")[0] == 0
    client = clients.secret_manager()
    policy = client.get_iam_policy(request={"resource": SECRET})
    del policy.bindings[:]
    client.set_iam_policy(request={"resource": SECRET, "policy": policy})
    _configure(tmp_path)
    cfg = config.load()
    assert [s.access for s in service.status(cfg)] == [False]

    assert service.ensure_access(cfg) == [
        f"granted roles/secretmanager.secretAccessor to serviceAccount:{SA} on secret github-token"
    ]
    assert service.ensure_access(cfg) == []
    assert [s.ok for s in service.status(cfg)] == [True]


def test_a_reference_dropped_from_the_settings_is_removed_by_deploy(
    govctl: Transcript, tmp_path: Path
) -> None:
    assert govctl("secrets", "set", "GITHUB_TOKEN", stdin=b"v")[0] == 0
    _configure(tmp_path)
    assert govctl("deploy", "--image", test_deploy.IMAGE, "-y")[0] == 0
    (tmp_path / "govctl.toml").write_text("")

    code, out, err = govctl("deploy", "--image", test_deploy.IMAGE, "-y")

    assert code == 0, err
    assert "secret GITHUB_TOKEN  github-token  →  (none)" in out
    env = clients.jobs().get_job(name=JOB).template.template.containers[0].env
    assert "GITHUB_TOKEN" not in {e.name for e in env}


def test_set_before_the_account_exists_keeps_the_value_and_says_so(
    cloud: Emulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    govctl = Transcript(capsys, monkeypatch)
    code, _, err = govctl("secrets", "set", "GITHUB_TOKEN", stdin=b"v")
    assert code == 0, err
    assert f"service account {SA} does not exist yet" in err and "govctl setup" in err
    assert "granted" not in err.replace("not granted", "")
    stored = clients.secret_manager().access_secret_version(name=f"{SECRET}/versions/1")
    assert stored.payload.data == b"v"
