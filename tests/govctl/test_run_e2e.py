"""`govctl run`, `govctl executions` and `govctl logs` end to end on the loopback cloud.

The job is created through the official client (as `govctl deploy` would), its image maps
to the real ingestion package, repositories are served by `git daemon`, and every check
reads the emulator's state or the command's output.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.cloud import run_v2

from govctl.cli.main import main
from govctl.emulator.server import Emulator
from govctl.gcp import clients
from govctl.services import logs as logs_service
from tests.emulator.run_support import FAST_POLL
from tests.support.cloud import job_cloud
from tests.support.git import GitServer, make_repo
from tests.support.stand_in import stand_in

PROJECT = "demo-project"
REGION = "europe-west2"
PARENT = f"projects/{PROJECT}/locations/{REGION}"
JOB = "ingest"
JOB_PATH = f"{PARENT}/jobs/{JOB}"
IMAGE = f"{REGION}-docker.pkg.dev/{PROJECT}/govreposcrape/ingestion:latest"
BUCKET = "govreposcrape-digests"


@pytest.fixture
def cloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    # The settings name another bucket than the job's: reports are found through the job.
    settings = {"GOVCTL_JOB_NAME": JOB, "GOVCTL_BUCKET_NAME": "not-the-bucket-the-job-writes-to"}
    with job_cloud(tmp_path, monkeypatch, project=PROJECT, region=REGION, bucket=BUCKET,
                   settings=settings) as emu:  # fmt: skip
        yield emu


def _feed(path: Path, server: GitServer, names: list[str]) -> Path:
    entries = [
        {
            "owner": "alphagov",
            "name": name,
            "url": server.url(f"alphagov/{name}"),
            "pushedAt": "2026-11-01T00:00:00Z",
        }
        for name in names
    ]
    path.write_text(json.dumps(entries))
    return path


def _create_job(
    feed: str, server: GitServer, *, tasks: int = 1, extra: tuple[str, ...] = ()
) -> None:
    container = run_v2.Container(
        image=IMAGE,
        args=["--allow-host", server.host, "--concurrency", "2", *extra],
        env=[
            run_v2.EnvVar(name="REPOS_FEED_URL", value=feed),
            run_v2.EnvVar(name="GCS_BUCKET_NAME", value=BUCKET),
        ],
    )
    job = run_v2.Job(
        template=run_v2.ExecutionTemplate(
            task_count=tasks,
            template=run_v2.TaskTemplate(containers=[container], max_retries=0),
        )
    )
    clients.jobs().create_job(parent=PARENT, job=job, job_id=JOB).result(polling=FAST_POLL)


def _repos(server: GitServer, names: list[str]) -> None:
    for name in names:
        make_repo(server.root / "alphagov" / name, {"README.md": f"# {name}\n"})


def _executions() -> list[run_v2.Execution]:
    return list(clients.executions().list_executions(parent=JOB_PATH))


def _govctl(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_run_limit_2_succeeds_appends_args_and_summarises(
    cloud: Emulator, git_server: GitServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    names = ["frontend", "publisher", "whitehall"]
    _repos(git_server, names)
    _create_job(str(_feed(tmp_path / "repos.json", git_server, names)), git_server, tasks=2)

    code, out, err = _govctl(capsys, "run", "--limit", "2")

    assert code == 0, err
    assert "succeeded" in out and "2 processed, 0 unchanged, 0 failed" in out
    assert "Execution ingest-" in err and "task 0" in err and "task 1" in err
    (execution,) = _executions()
    # The job's own arguments come first, then ours: appended, never replaced.
    args = list(execution.template.containers[0].args)
    assert args == ["--allow-host", git_server.host, "--concurrency", "2", "--limit", "2"]
    blobs = {b.name for b in clients.storage_client(PROJECT).list_blobs(BUCKET)}
    assert len([b for b in blobs if b.startswith("alphagov/")]) == 2

    # executions list: one row with the name, its status and tasks ok/failed/cancelled.
    name = execution.name.rsplit("/", 1)[1]
    code, out, _ = _govctl(capsys, "executions", "list")
    assert code == 0
    row = next(line for line in out.splitlines() if line.startswith(name))
    assert "succeeded" in row and "2/0/0" in row
    code, out, _ = _govctl(capsys, "executions", "list", "--json")
    assert json.loads(out)[0]["tasks"]["succeeded"] == 2

    # executions show --latest: per task rows, run-report totals, the log filter.
    code, out, _ = _govctl(capsys, "executions", "show", "--latest")
    assert code == 0
    assert f"execution     {name}" in out
    assert "2 processed, 0 unchanged, 0 failed" in out
    assert f'labels."run.googleapis.com/execution_name"="{name}"' in out
    data = json.loads(_govctl(capsys, "executions", "show", name, "--json")[1])
    assert [t["status"] for t in data["task_list"]] == ["succeeded", "succeeded"]
    assert [t["exit_code"] for t in data["task_list"]] == [0, 0]
    assert data["repositories"]["processed"] == 2

    # A second run without --force skips what is unchanged; --json is the whole result.
    code, out, _ = _govctl(capsys, "run", "--json", "--tasks", "1", "--env", "MARK=second")
    result = json.loads(out)
    assert code == 0 and result["status"] == "succeeded"
    assert result["repositories"]["processed"] == 1
    assert result["repositories"]["unchanged"] == 2
    second = clients.executions().get_execution(name=f"{JOB_PATH}/executions/{result['name']}")
    assert second.task_count == 1
    container = second.template.containers[0]
    assert {e.name: e.value for e in container.env}["MARK"] == "second"
    assert "GCS_BUCKET_NAME" in {e.name for e in container.env}  # added to, not replaced
    assert list(container.args) == ["--allow-host", git_server.host, "--concurrency", "2"]


def test_unknown_execution_lists_the_latest(
    cloud: Emulator, git_server: GitServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _repos(git_server, ["a"])
    _create_job(str(_feed(tmp_path / "repos.json", git_server, ["a"])), git_server)
    assert _govctl(capsys, "run", "--no-wait")[0] == 0
    (execution,) = _executions()
    name = execution.name.rsplit("/", 1)[1]

    code, _, err = _govctl(capsys, "executions", "show", "ingest-nope")

    assert code == 1
    assert "ingest-nope not found" in err and f"latest: {name}" in err
    assert len(err.strip().splitlines()) == 1


def test_a_failing_run_exits_1_with_the_tasks_error_line(
    cloud: Emulator, git_server: GitServer, capsys: pytest.CaptureFixture[str]
) -> None:
    _create_job("http://127.0.0.1:9/repos.json", git_server, tasks=2)

    code, out, err = _govctl(capsys, "run")

    assert code == 1
    assert "FAILED" in out and "2 of 2 tasks failed" in out
    # The tasks failed alike: said once, with the tasks' own CRITICAL line, not "view details".
    assert " tasks 0, 1  exit 1  attempt 1" in out
    assert out.count("feed unreadable") == 1
    assert "finished:" not in out  # the job's closing summary adds nothing to the cause
    (execution,) = _executions()
    name = execution.name.rsplit("/", 1)[1]
    assert f"Next: govctl logs --execution {name} --errors" in err

    # Without the bucket the reports cannot be read: said, and the rest still shows.
    clients.storage_client(PROJECT).bucket(BUCKET).delete(force=True)
    code, out, _ = _govctl(capsys, "executions", "show", "--latest")
    assert code == 0
    assert f"repositories  unknown: read gs://{BUCKET}/_runs/{name}/: not found" in out
    data = json.loads(_govctl(capsys, "executions", "show", "--latest", "--json")[1])
    assert [(t["exit_code"], t["cause"]) for t in data["task_list"]] == [(1, "exit"), (1, "exit")]
    assert "task  status" in out


def test_no_wait_prints_the_name_and_cancel_stops_it(
    cloud: Emulator, git_server: GitServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A feed on a server that never answers keeps the task running until cancelled.
    silent = _SilentServer().start()
    try:
        _create_job(silent.url, git_server)
        code, out, _ = _govctl(capsys, "run", "--no-wait")
        assert code == 0
        name = out.strip()
        (execution,) = _executions()
        assert execution.name.endswith("/" + name)

        # Not on a terminal and no -y: refused, nothing cancelled.
        code, _, err = _govctl(capsys, "executions", "cancel", name)
        assert code == 2 and "-y" in err

        code, out, err = _govctl(capsys, "executions", "cancel", "--latest", "-y")
        assert code == 0, err
        assert f"cancelled {name}" in out
        final = clients.executions().get_execution(name=execution.name)
        assert final.cancelled_count == 1
        rows = _govctl(capsys, "executions", "list")[1].splitlines()
        assert rows[1].split()[:2] == [name, "cancelled"] and "0/0/1" in rows[1]
    finally:
        silent.stop()


def test_logs_errors_latest_shows_the_failing_repository(
    cloud: Emulator, git_server: GitServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _repos(git_server, ["present"])
    _create_job(
        str(_feed(tmp_path / "repos.json", git_server, ["present", "missing"])),
        git_server,
        extra=("--max-failure-ratio", "1"),
    )
    assert _govctl(capsys, "run")[0] == 0

    code, out, err = _govctl(capsys, "logs", "--errors", "--latest")

    assert code == 0, err
    lines = [line for line in out.splitlines() if "repo=alphagov/missing" in line]
    assert lines and all(" ERROR " in line or "CRITICAL" in line for line in lines)
    assert "task 0" in lines[0]
    # --json: one object per line, with the job's fields.
    code, out, _ = _govctl(capsys, "logs", "--errors", "--latest", "--json")
    objects = [json.loads(line) for line in out.splitlines()]
    assert any(o["fields"].get("repo") == "alphagov/missing" for o in objects)
    assert all(o["severity"] in ("ERROR", "CRITICAL") for o in objects)
    # -n: the newest N, newest last.
    out = _govctl(capsys, "logs", "--latest", "-n", "3", "--json")[1]
    last3 = [json.loads(line) for line in out.splitlines()]
    out_all = _govctl(capsys, "logs", "--json", "-n", "500")[1]
    everything = [json.loads(line) for line in out_all.splitlines()]
    assert len(last3) == 3
    assert [o["insert_id"] for o in last3] == [o["insert_id"] for o in everything[-3:]]
    # --grep: a text anywhere in the entry.
    found = _govctl(capsys, "logs", "--latest", "--grep", "alphagov/missing", "--json")[1]
    assert found and all("alphagov/missing" in line for line in found.splitlines())
    # Time ranges: the last hour has them all, a range in the future none.
    assert _govctl(capsys, "logs", "--since", "1h", "-n", "500", "--json")[1] == out_all
    code, out, err = _govctl(capsys, "logs", "--from", "2099-01-01T00:00Z")
    assert code == 0 and out == "" and "no entries match" in err
    # The filter, for the console.
    out = _govctl(capsys, "logs", "--errors", "--latest", "--show-filter")[1]
    assert out.startswith('resource.type="cloud_run_job" AND resource.labels.job_name="ingest"')
    assert "severity>=ERROR" in out


def test_logs_follow_streams_a_running_execution_and_ends_by_itself(
    cloud: Emulator, git_server: GitServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    names = [f"repo{i}" for i in range(4)]
    _repos(git_server, names)
    slow = _SilentServer(delay_s=1.5, body=_feed(tmp_path / "f.json", git_server, names)).start()
    try:
        _create_job(slow.url, git_server)
        assert _govctl(capsys, "run", "--no-wait")[0] == 0
        started = time.monotonic()
        code, out, err = _govctl(capsys, "logs", "--latest", "-f")
        took = time.monotonic() - started
    finally:
        slow.stop()

    assert code == 0, err
    assert "ingestion starting" in out  # from the backlog or the tail, printed once
    assert out.count("ingestion starting") == 1
    assert "finished: 4 processed" in out  # written after -f began: streamed
    assert "has succeeded" in err
    assert took < 30


def test_run_follow_streams_the_lines(
    cloud: Emulator, git_server: GitServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _repos(git_server, ["a", "b"])
    _create_job(str(_feed(tmp_path / "repos.json", git_server, ["a", "b"])), git_server)

    code, _, err = _govctl(capsys, "run", "--follow")

    assert code == 0, err
    assert err.count("ingestion starting") == 1
    assert "finished: 2 processed" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--limit", "0"],
        ["run", "--limit", "ten"],
        ["run", "--tasks", "10001"],
        ["run", "--env", "NOEQUALS"],
        ["run", "--env", "1BAD=x"],
        ["run", "--task-timeout", "soon"],
        ["run", "--task-timeout", "200h"],
        ["run", "--no-wait", "--follow"],
        ["executions", "list", "--limit", "-1"],
        ["executions", "show"],
        ["executions", "show", "Bad_Name"],
        ["executions", "show", "x", "--latest"],
        ["executions", "cancel"],
        ["logs", "--severity", "LOUD"],
        ["logs", "--errors", "--severity", "INFO"],
        ["logs", "--since", "yesterday"],
        ["logs", "--from", "30/11/2026"],
        ["logs", "--from", "2026-11-30T10:00Z", "--to", "2026-11-30T09:00Z"],
        ["logs", "--since", "1h", "--from", "2026-11-30"],
        ["logs", "-n", "0"],
        ["logs", "-n", "-5"],
        ["logs", "--execution", "UPPER"],
        ["logs", "--execution", "x", "--latest"],
        ["logs", "--scheduler", "--latest"],
        ["logs", "--scheduler", "-f"],
        ["run", "--tasks", "0"],
        ["logs", "--grep", " "],
    ],
)
def test_bad_input_exits_2_in_one_line_without_a_call(
    argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # No emulator at all: any API call would fail with exit 1, not 2.
    monkeypatch.setenv("GOVCTL_EMULATOR_HOST", "127.0.0.1:9")
    monkeypatch.setenv("GOVCTL_PROJECT", PROJECT)
    code, out, err = _govctl(capsys, *argv)
    assert code == 2, err
    assert out == ""
    assert "Traceback" not in err


class _SilentServer:
    """An HTTP server that answers after ``delay_s`` (or never): a feed that takes its time."""

    def __init__(self, delay_s: float | None = None, body: Path | None = None) -> None:
        import http.server

        server_self = self
        self.delay_s = delay_s
        self.body = body.read_bytes() if body else b"[]"
        self.release = threading.Event()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if server_self.delay_s is None:
                    server_self.release.wait(60)
                else:
                    time.sleep(server_self.delay_s)
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(server_self.body)
                except OSError:
                    pass  # the task was cancelled meanwhile

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/repos.json"

    def start(self) -> _SilentServer:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def _popen_interruptible(argv: list[str], **kwargs: Any) -> subprocess.Popen[str]:
    """``Popen`` whose child takes SIGINT as from an operator's terminal (KeyboardInterrupt).

    A background job of a non-interactive shell (``make test &``) starts with SIGINT ignored;
    an ignored signal stays ignored across exec, and Python then never raises
    KeyboardInterrupt. A caught one is reset to the default, so SIGINT is caught here while the
    child starts.
    """
    import signal

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(argv, **kwargs)
    finally:
        signal.signal(signal.SIGINT, previous)


def _exit_after_sigint(proc: subprocess.Popen[str], timeout: float) -> tuple[str, str]:
    """``communicate()``; a process still there after ``timeout`` is aborted (with
    PYTHONFAULTHANDLER=1 it prints every thread's stack) and the test fails with that."""
    import signal

    try:
        out, err = proc.communicate(timeout=timeout)
        return str(out), str(err)
    except subprocess.TimeoutExpired:
        masks = "".join(
            f"{status.parent.name}: "
            + " ".join(
                line.replace("\t", "=")
                for line in status.read_text().splitlines()
                if line.startswith(("SigBlk", "SigIgn", "SigCgt", "SigPnd", "ShdPnd"))
            )
            + "\n"
            for status in Path(f"/proc/{proc.pid}/task").glob("*/status")
        )
        proc.send_signal(signal.SIGABRT)
        _, err = proc.communicate(timeout=10)
        raise AssertionError(
            f"running {timeout} s after SIGINT; signal masks:\n{masks}its threads:\n{err}"
        ) from None


def test_ctrl_c_detaches_and_the_execution_goes_on(
    cloud: Emulator, git_server: GitServer, capsys: pytest.CaptureFixture[str]
) -> None:
    import os
    import signal
    import subprocess
    import sys

    silent = _SilentServer().start()
    try:
        _create_job(silent.url, git_server)
        proc = _popen_interruptible(
            [sys.executable, "-m", "govctl", "run"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=os.environ | {"PYTHONFAULTHANDLER": "1"},
        )
        assert proc.stderr is not None
        header = proc.stderr.readline()  # the live view's first line: watching has begun
        assert header.startswith("Execution ingest-")
        proc.send_signal(signal.SIGINT)
        rest = _exit_after_sigint(proc, 30)[1]
        (execution,) = _executions()
        name = execution.name.rsplit("/", 1)[1]

        assert proc.returncode == 130
        assert f"execution {name} goes on" in rest
        assert f"govctl executions cancel {name}" in rest and "Traceback" not in rest
        assert execution.running_count == 1 and not execution.completion_time
    finally:
        silent.stop()


def test_permission_denied_on_overrides_names_the_role(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Against a loopback Run API that refuses RunJob as Cloud Run does without
    run.jobs.runWithOverrides (the emulator grants every caller everything)."""
    import grpc
    from google.longrunning import operations_pb2

    def get_job(request: run_v2.GetJobRequest, context: grpc.ServicerContext) -> run_v2.Job:
        container = run_v2.Container(image=IMAGE, args=["--concurrency", "2"])
        return run_v2.Job(
            name=request.name,
            template=run_v2.ExecutionTemplate(template=run_v2.TaskTemplate(containers=[container])),
        )

    def run_job(request: run_v2.RunJobRequest, context: grpc.ServicerContext) -> None:
        context.abort(
            grpc.StatusCode.PERMISSION_DENIED,
            f"Permission 'run.jobs.runWithOverrides' denied on resource '{request.name}'",
        )

    methods = {
        "GetJob": grpc.unary_unary_rpc_method_handler(
            get_job,
            request_deserializer=run_v2.GetJobRequest.deserialize,
            response_serializer=run_v2.Job.serialize,
        ),
        "RunJob": grpc.unary_unary_rpc_method_handler(
            run_job,
            request_deserializer=run_v2.RunJobRequest.deserialize,
            response_serializer=operations_pb2.Operation.SerializeToString,
        ),
    }
    with stand_in("google.cloud.run.v2.Jobs", methods) as address:
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("GOVCTL_EMULATOR_HOST", address)
        monkeypatch.setenv("GOVCTL_PROJECT", PROJECT)
        code, out, err = _govctl(capsys, "run", "--limit", "5")

    assert code == 1 and out == ""
    assert "permission denied" in err and "roles/run.jobsExecutorWithOverrides" in err
    assert len(err.strip().splitlines()) == 1


def test_follow_reconnects_without_duplicates_or_losses(cloud: Emulator) -> None:
    """A dropped tail stream is reopened and the gap read back: each entry exactly once."""
    from google.cloud.logging_v2.types import LogEntry as LogEntryType

    from govctl.gcp import logs as gcp_logs

    def write(*messages: str) -> None:
        clients.logging().write_log_entries(
            log_name=f"projects/{PROJECT}/logs/test",
            resource={"type": "global", "labels": {}},
            entries=[LogEntryType(text_payload=m) for m in messages],
        )

    tails: list[gcp_logs.Tail] = []

    def tail_factory(project: str, filter_: str) -> gcp_logs.Tail:
        tails.append(gcp_logs.Tail(project, filter_))
        return tails[-1]

    stop = threading.Event()
    seen: list[str] = []
    notices: list[str] = []

    def consume() -> None:
        for item in logs_service.follow(
            PROJECT, 'logName:"logs/test"', backlog=10, stop=stop, tail_factory=tail_factory
        ):
            if isinstance(item, logs_service.Notice):
                notices.append(item.message)
            else:
                seen.append(item.message)

    write("before-1", "before-2")
    reader = threading.Thread(target=consume)
    reader.start()

    def wait_for(n: int) -> None:
        deadline = time.monotonic() + 10
        while len(seen) < n and time.monotonic() < deadline:
            time.sleep(0.05)

    wait_for(2)
    write("live-1")
    wait_for(3)
    tails[0]._stream.cancel()  # the connection drops…
    gap = [f"gap-{i}" for i in range(1200)]  # more than a page of ListLogEntries
    write(*gap)  # …entries written while no stream is open
    wait_for(1203)
    write("after-1")
    wait_for(1204)
    stop.set()
    reader.join(timeout=10)

    assert seen == ["before-1", "before-2", "live-1", *gap, "after-1"]
    assert len(tails) == 2 and any("reconnecting" in n for n in notices)


def test_logs_scheduler_says_each_attempt_in_words(
    cloud: Emulator,
    git_server: GitServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from google.cloud import scheduler_v1
    from google.iam.v1 import policy_pb2

    _repos(git_server, ["a"])
    _create_job(str(_feed(tmp_path / "repos.json", git_server, ["a"])), git_server)
    monkeypatch.setenv("GOVCTL_SCHEDULE_NAME", "nightly")
    clients.iam().create_service_account(
        name=f"projects/{PROJECT}", account_id="govreposcrape-sa", service_account={}
    )
    email = f"govreposcrape-sa@{PROJECT}.iam.gserviceaccount.com"
    scheduler = clients.scheduler()
    job = scheduler.create_job(
        parent=PARENT,
        job=scheduler_v1.Job(
            name=f"{PARENT}/jobs/nightly",
            schedule="0 2 * * *",
            time_zone="Etc/UTC",
            http_target=scheduler_v1.HttpTarget(
                uri=f"https://run.googleapis.com/v2/{JOB_PATH}:run",
                http_method=scheduler_v1.HttpMethod.POST,
                oauth_token=scheduler_v1.OAuthToken(service_account_email=email),
            ),
        ),
    )
    scheduler.run_job(name=job.name)  # the account may not run the job yet
    clients.jobs().set_iam_policy(
        request={
            "resource": JOB_PATH,
            "policy": policy_pb2.Policy(
                bindings=[
                    policy_pb2.Binding(
                        role="roles/run.invoker", members=[f"serviceAccount:{email}"]
                    )
                ]
            ),
        }
    )
    scheduler.run_job(name=job.name)
    (execution,) = _executions()

    code, out, err = _govctl(capsys, "logs", "--scheduler")

    assert code == 0, err
    rows = out.splitlines()[1:]
    assert len(rows) == 2
    assert "PERMISSION_DENIED" in rows[0] and "roles/run.invoker" in rows[0]
    assert rows[1].split()[2:] == [execution.name.rsplit("/", 1)[1], "succeeded"]
    objects = [
        json.loads(line)
        for line in _govctl(capsys, "logs", "--scheduler", "--json")[1].splitlines()
    ]
    assert [o["code"] for o in objects] == ["PERMISSION_DENIED", "OK"]


def test_read_quota_is_retried_and_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A loopback Logging API that answers RESOURCE_EXHAUSTED once, as the read quota does."""

    import grpc
    from google.cloud.logging_v2.types import ListLogEntriesRequest, ListLogEntriesResponse
    from google.cloud.logging_v2.types import LogEntry as LogEntryType

    calls: list[str] = []

    def list_entries(
        request: ListLogEntriesRequest, context: grpc.ServicerContext
    ) -> ListLogEntriesResponse:
        calls.append(request.filter)
        if len(calls) == 1:
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "Quota exceeded for ReadRequests")
        entry = LogEntryType(
            log_name=f"projects/{PROJECT}/logs/run.googleapis.com%2Fstdout",
            resource={"type": "cloud_run_job", "labels": {"job_name": JOB}},
            json_payload={"message": "hello from the job"},
            severity=200,
        )
        return ListLogEntriesResponse(entries=[entry])

    methods = {
        "ListLogEntries": grpc.unary_unary_rpc_method_handler(
            list_entries,
            request_deserializer=ListLogEntriesRequest.deserialize,
            response_serializer=ListLogEntriesResponse.serialize,
        )
    }
    with stand_in("google.logging.v2.LoggingServiceV2", methods) as address:
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("GOVCTL_EMULATOR_HOST", address)
        monkeypatch.setenv("GOVCTL_PROJECT", PROJECT)
        code, out, err = _govctl(capsys, "logs")

    assert code == 0, err
    assert len(calls) == 2
    assert "read quota" in err and "retrying" in err and "Traceback" not in err
    assert "INFO" in out and "hello from the job" in out


def test_a_task_over_its_timeout_is_said_to_have_timed_out(
    cloud: Emulator, git_server: GitServer, capsys: pytest.CaptureFixture[str]
) -> None:
    silent = _SilentServer().start()  # the feed never comes: the task runs until killed
    try:
        _create_job(silent.url, git_server)
        code, out, err = _govctl(capsys, "run", "--task-timeout", "2s", "--json")
    finally:
        silent.stop()

    assert code == 1, err
    result = json.loads(out)
    assert result["status"] == "failed"
    (task,) = result["failed_tasks"]
    assert task["timed_out"] is True and task["cause"] == "timeout"
    (execution,) = _executions()
    assert execution.template.timeout.seconds == 2  # the override reached Cloud Run
    code, out, _ = _govctl(capsys, "logs", "--latest", "-f")
    assert code == 0  # an execution that has ended is not followed: printed, then done


def test_help_of_run_executions_and_logs_imports_no_google_library() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from govctl.cli.main import main\n"
        "helps = [['run', '--help'], ['executions', '--help'], ['executions', 'show', '-h'],\n"
        "         ['executions', 'cancel', '-h'], ['logs', '--help']]\n"
        "assert [main(argv) for argv in helps] == [0] * 5\n"
        "print(sorted(m for m in sys.modules if m.startswith(('google.cloud', 'grpc'))))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_logs_follow_prints_new_entries_and_stops_at_ctrl_c(cloud: Emulator) -> None:
    import os
    import queue
    import signal
    import subprocess
    import sys
    import threading

    from google.cloud.logging_v2.types import LogEntry as LogEntryType

    def write(message: str) -> None:
        clients.logging().write_log_entries(
            log_name=f"projects/{PROJECT}/logs/run.googleapis.com%2Fstdout",
            resource={
                "type": "cloud_run_job",
                "labels": {"project_id": PROJECT, "job_name": JOB, "location": REGION},
            },
            entries=[LogEntryType(json_payload={"message": message})],
        )

    write("written before")
    proc = _popen_interruptible(
        [sys.executable, "-m", "govctl", "logs", "-f"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONFAULTHANDLER": "1"},
    )
    lines: queue.Queue[str] = queue.Queue()
    stdout = proc.stdout
    assert stdout is not None

    def pump() -> None:
        for text in stdout:
            lines.put(text)

    threading.Thread(target=pump, daemon=True).start()
    try:
        # The backlog is read once the tail is open (services/logs.follow): the first line
        # printed says the stream is live.
        before = lines.get(timeout=30)
        write("written while following")
        line = lines.get(timeout=30)
        proc.send_signal(signal.SIGINT)
        _, err = _exit_after_sigint(proc, 20)
    finally:
        proc.kill()
    assert "written before" in before
    assert "written while following" in line
    assert proc.returncode == 0 and "Traceback" not in err


def test_too_many_live_tails_is_said_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Against a loopback Logging API refusing TailLogEntries as at its 10-session limit."""

    import grpc
    from google.cloud.logging_v2.types import TailLogEntriesRequest, TailLogEntriesResponse

    def tail(requests: object, context: grpc.ServicerContext) -> None:
        context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "Too many concurrent tail sessions")

    methods = {
        "TailLogEntries": grpc.stream_stream_rpc_method_handler(
            tail,
            request_deserializer=TailLogEntriesRequest.deserialize,
            response_serializer=TailLogEntriesResponse.serialize,
        )
    }
    with stand_in("google.logging.v2.LoggingServiceV2", methods) as address:
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("GOVCTL_EMULATOR_HOST", address)
        monkeypatch.setenv("GOVCTL_PROJECT", PROJECT)
        code, out, err = _govctl(capsys, "logs", "-f")

    assert code == 1 and out == ""
    assert "refused another live tail" in err and "at most 10" in err
    assert len(err.strip().splitlines()) == 1


def test_logs_piped_into_head_ends_quietly(cloud: Emulator) -> None:
    import os
    import subprocess
    import sys

    from google.cloud.logging_v2.types import LogEntry as LogEntryType

    clients.logging().write_log_entries(
        log_name=f"projects/{PROJECT}/logs/run.googleapis.com%2Fstdout",
        resource={
            "type": "cloud_run_job",
            "labels": {"project_id": PROJECT, "job_name": JOB, "location": REGION},
        },
        entries=[
            LogEntryType(json_payload={"message": f"line {i} " + "x" * 200}) for i in range(1000)
        ],
    )
    proc = subprocess.run(
        f"{sys.executable} -m govctl logs -n 1000 --json | head -n 1; exit ${{PIPESTATUS[0]}}",
        shell=True,
        executable="/bin/bash",
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=60,
    )
    assert proc.returncode == 1  # click's convention for a closed pipe (EPIPE), said quietly
    assert proc.stderr == ""
    assert json.loads(proc.stdout)["message"].startswith("line 0 ")
