"""`govctl local run`: the job on this machine with the settings' feed, args and env."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from govctl import config
from govctl.cli.main import main
from govctl.emulator.storage import FakeGcs
from govctl.errors import GovctlError
from govctl.gcp import clients
from govctl.services import local
from tests.support.git import GitServer, make_repo


def _feed(path: Path, server: GitServer, names: list[str]) -> Path:
    entries = [
        {"owner": "alphagov", "name": n, "url": server.url(f"alphagov/{n}"),
         "pushedAt": "2026-11-01T00:00:00Z"}
        for n in names
    ]  # fmt: skip
    path.write_text(json.dumps(entries))
    return path


@pytest.fixture(autouse=True)
def _clean_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for var in [k for k in os.environ if k.startswith("GOVCTL_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud"))


def test_no_container_limit_2_writes_2_digests_to_a_directory(
    git_server: GitServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    names = ["frontend", "publisher", "whitehall"]
    for n in names:
        make_repo(git_server.root / "alphagov" / n, {"README.md": f"# {n}\n"})
    feed = _feed(tmp_path / "repos.json", git_server, names)
    # The settings carry the feed and an arg; the operator adds one after `--`.
    monkeypatch.setenv("GOVCTL_JOB_FEED", f"file://{feed}")
    monkeypatch.setenv("GOVCTL_JOB_ARGS", "--concurrency 2")
    out_dir = tmp_path / "out"

    status = main(["local", "run", "--no-container", "--limit", "2", "--sink", str(out_dir),
                   "--", "--allow-host", git_server.host])  # fmt: skip

    err = capsys.readouterr().err
    assert status == 0, err
    digests = sorted(p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*.md"))
    assert digests == ["alphagov/frontend.md", "alphagov/publisher.md"]
    assert f"2 digest(s) written to {out_dir}" in err
    assert git_server.upload_packs() == 2


def test_no_container_writes_to_a_bucket_sink(
    git_server: GitServer, fake_gcs: FakeGcs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    make_repo(git_server.root / "alphagov" / "frontend", {"README.md": "# frontend\n"})
    feed = _feed(tmp_path / "repos.json", git_server, ["frontend"])
    monkeypatch.setenv("GOVCTL_JOB_FEED", str(feed.as_uri()))
    clients.storage_client("demo-project").create_bucket("digests-test")

    status = main(["local", "run", "--no-container", "--sink", "gs://digests-test/local",
                   "--", "--allow-host", git_server.host])  # fmt: skip

    assert status == 0, capsys.readouterr().err
    names = {b.name for b in clients.storage_client("demo-project").list_blobs("digests-test")}
    assert "local/alphagov/frontend.md" in names


def test_the_default_sink_is_a_local_directory_and_the_job_status_is_the_exit_status(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Nothing may be cloned from github.com in a test: an unreadable feed fails the job.
    status = main(["local", "run", "--no-container", "--limit", "1", "--", "--feed",
                   str(tmp_path / "missing.json")])  # fmt: skip
    captured = capsys.readouterr()
    assert status != 0
    assert f"--sink {tmp_path / 'digests'}" in captured.err  # the command, shown before it runs
    assert "exited" in captured.err


def test_dry_run_shows_settings_as_environment_and_args(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GOVCTL_JOB_ENV", "LOG_LEVEL=debug")
    monkeypatch.setenv("GOVCTL_JOB_ARGS", "--concurrency 8")
    assert main(["local", "run", "--no-container", "--dry-run", "--limit", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "LOG_LEVEL=debug" in out
    assert any(line.startswith("REPOS_FEED_URL=https://raw.githubusercontent.com/") for line in out)
    assert out[-1] == (f"{sys.executable} -m ingestion --sink {tmp_path / 'digests'} --limit 3 "
                       "--concurrency 8")  # fmt: skip
    assert not (tmp_path / "digests").exists()  # a dry run writes nothing


def test_container_plan_mounts_credentials_read_only_and_never_builds_them_in(
    tmp_path: Path,
) -> None:
    adc = tmp_path / "gcloud" / local.ADC_FILE
    adc.parent.mkdir()
    adc.write_text("{}")
    feed = tmp_path / "repos.json"
    feed.write_text("[]")
    source = tmp_path / "src"
    cfg = config.load(env={"GOVCTL_JOB_FEED": f"file://{feed}"}, project="demo-project")
    plan = local.container(cfg, str(tmp_path / "out"), 2, ["--force"], engine="/usr/bin/podman",
                           image=None, env={"CLOUDSDK_CONFIG": str(adc.parent)},
                           source=source)  # fmt: skip
    assert plan.build_from == source
    context = f"<ingestion/ of {source}>"
    assert plan.build == ["/usr/bin/podman", "build", "-t", local.LOCAL_IMAGE, "-f",
                          f"{context}/ingestion/Dockerfile", context]  # fmt: skip
    run = plan.run
    assert f"{adc}:{local.IN_CONTAINER_ADC}:ro" in run
    assert f"{feed}:{local.IN_CONTAINER_FEED}/repos.json:ro" in run
    assert f"{tmp_path / 'out'}:/digests" in run
    assert plan.env["GOOGLE_APPLICATION_CREDENTIALS"] == local.IN_CONTAINER_ADC
    assert plan.env["REPOS_FEED_URL"] == f"{local.IN_CONTAINER_FEED}/repos.json"
    assert run[run.index(local.LOCAL_IMAGE) + 1 :] == ["--sink", "/digests", "--limit", "2",
                                                      "--force"]  # fmt: skip
    # Values travel in the engine's environment, not on its command line.
    assert "-e" in run and not any("=" in a for a in run[: run.index(local.LOCAL_IMAGE)])


def test_a_gs_sink_without_credentials_is_refused(tmp_path: Path) -> None:
    cfg = config.load(env={})
    with pytest.raises(GovctlError, match="no Application Default Credentials"):
        local.container(cfg, "gs://govreposcrape-summaries", None, [], engine="docker",
                        image="example.org/x:1", env={"HOME": str(tmp_path)},
                        source=tmp_path)  # fmt: skip


def test_neither_podman_nor_docker_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory
    assert main(["local", "run", "--container", "--limit", "1"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "neither podman nor docker found on PATH" in err
    assert "govctl local run --no-container" in err


@pytest.mark.parametrize(
    "argv",
    [["--limit", "0"], ["--limit", "-3"], ["--limit", "ten"], ["--sink", "s3://bucket"],
     ["--sink", "gs://UPPER"], ["--engine", "lxc"]],
)  # fmt: skip
def test_bad_input_exits_2_in_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["local", "run", "--no-container", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: invalid --"), err
    assert not (tmp_path / "digests").exists()


def test_the_build_context_is_the_bundle_deploy_builds() -> None:
    with local.build_context(local.source_root()) as context:
        files = {p.relative_to(context).as_posix() for p in context.rglob("*") if p.is_file()}
        command = local.build_command("podman", context, ["BASE=x"])
    assert "ingestion/Dockerfile" in files and "ingestion/cli.py" in files
    assert not any(f.startswith(("govctl/", "tests/")) for f in files)
    assert command == ["podman", "build", "--build-arg", "BASE=x", "-t", local.LOCAL_IMAGE,
                       "-f", f"{context}/ingestion/Dockerfile", str(context)]  # fmt: skip
    assert not context.exists()  # removed after the build


# What podman 4.3.1 writes when it cannot pull the base image: its lines as recorded on a
# development machine with `FROM localhost:1/…` (a registry refusing connections), here with
# Docker Hub's name and the DNS failure of a machine without network. `podman build` exits
# 125, the engine's own error (podman-run(1), "Exit Status").
PODMAN_PULL_FAILURE = """\
STEP 1/8: FROM python:3.12-slim
Resolving "python" using unqualified-search registries (/etc/containers/registries.conf)
Trying to pull docker.io/library/python:3.12-slim...
Error: creating build container: initializing source docker://python:3.12-slim: pinging \
container registry registry-1.docker.io: Get "https://registry-1.docker.io/v2/": dial tcp: \
lookup registry-1.docker.io: no such host
"""


@pytest.fixture
def podman(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in ``podman`` on PATH (not a Google client): `build` fails as podman fails to
    pull; `run` fails to pull an image named ``…/missing:*`` (exit 125) and otherwise runs a
    container whose job exits 3."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "podman"
    script.write_text(
        f"#!{sys.executable}\nimport sys\n"
        f"PULL = {PODMAN_PULL_FAILURE!r}\n"
        "if sys.argv[1] == 'build':\n"
        "    sys.stderr.write(PULL); sys.exit(125)\n"
        "image = next(a for a in sys.argv if a.startswith(('ghcr.io', 'govctl-')))\n"
        "if 'missing' in image:\n"
        "    sys.stderr.write(f'Trying to pull {image}...\\n')\n"
        "    sys.stderr.write(f'Error: initializing source docker://{image}: reading manifest '\n"
        "                     f'1 in ghcr.io/x/missing: manifest unknown\\n'); sys.exit(125)\n"
        "sys.stderr.write('the job failed\\n'); sys.exit(3)\n"
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return script


def test_a_base_image_podman_cannot_pull_is_explained_with_no_container_as_the_way_out(
    podman: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["local", "run", "--limit", "1", "--sink", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert status == 1
    # podman's own words pass through as they come…
    assert "Error: creating build container: initializing source docker://python:3.12-slim" in err
    # …then what they mean, and what to do.
    last = err.strip().splitlines()[-1]
    assert last.startswith(
        "error: podman could not pull the base image python:3.12-slim (`podman build` exited "
        "125: Error: creating build container:"
    )
    assert "— run the job without a container: govctl local run --no-container" in last
    assert "--build-arg BASE=IMAGE" in last and "Traceback" not in err


def test_an_image_podman_cannot_pull_and_a_job_that_fails_are_told_apart(
    podman: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sink = str(tmp_path / "out")
    status = main(["local", "run", "--image", "ghcr.io/x/missing:1", "--sink", sink])
    err = capsys.readouterr().err
    assert status == 1
    assert "error: podman could not pull the image ghcr.io/x/missing:1 (`podman run` exited " \
        "125: Error: initializing source" in err  # fmt: skip
    assert "govctl local run --no-container" in err

    # The job's own failure is its exit status, unexplained: the job said why.
    status = main(["local", "run", "--image", "ghcr.io/x/present:1", "--sink", sink])
    err = capsys.readouterr().err
    assert status == 3
    assert "the job failed" in err and err.strip().endswith("error: podman exited 3")
