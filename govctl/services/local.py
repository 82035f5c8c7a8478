"""Run the ingestion job on the operator's machine with the deployed job's settings.

Two ways, one set of inputs (the settings' feed, args and env, plus ``--limit``/``--sink``):

- ``--no-container``: ``python -m ingestion`` with this interpreter (what the image's
  ENTRYPOINT runs), for a quick try or a debugger;
- ``--container``: the job's image under podman or docker, built (unless ``--image`` names
  one) from the same bundle of ``ingestion/`` that ``govctl deploy`` builds. Application
  Default Credentials are mounted read-only at run time (never copied into an image); a
  local sink directory and a local feed file are mounted too, and the host network is used
  so loopback servers (the emulator, a test git daemon) are reachable as from the host.

Variable values reach the container through the engine's own environment (``-e NAME``), so
they do not show in ``ps``. ``[job] secrets`` are read from Secret Manager only when the job
starts (:func:`environment`; a dry run names them and reads nothing) and go the same way:
into the child's environment, never on a command line or in any output.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from govctl import validate
from govctl.config import Config
from govctl.errors import GovctlError, NotFound, UsageError

ENGINES = ("podman", "docker")
LOCAL_IMAGE = "govctl-ingestion:local"  # the emulator maps govctl-ingestion* to the package
DEFAULT_SINK = "digests"
IN_CONTAINER_SINK = "/digests"
IN_CONTAINER_ADC = "/run/secrets/google/adc.json"
IN_CONTAINER_FEED = "/run/feed"
ADC_FILE = "application_default_credentials.json"


@dataclass(frozen=True)
class Plan:
    """The commands to run and what they get."""

    run: list[str]
    env: dict[str, str]  # set on top of the operator's environment
    secrets: dict[str, str]  # NAME -> secret-id[:version], read when the job starts
    sink: str  # as the operator gave it (a gs:// URL or an absolute directory)
    build_from: Path | None = None  # build the image from this source first (build_context)
    build: list[str] | None = None  # the build command, its context shown as a placeholder
    notes: list[str] = field(default_factory=list)


def sink_spec(value: str | None, cwd: Path) -> str:
    """``gs://BUCKET[/PREFIX]`` or a directory (absolute), checked before anything runs."""
    if value is None:
        return str(cwd / DEFAULT_SINK)
    if value.startswith("gs://"):
        validate.bucket_name(value[5:].partition("/")[0], "--sink bucket")
        return value
    if "://" in value or not value.strip():
        raise UsageError(f"invalid --sink {value!r}: expected a directory or gs://BUCKET[/PREFIX]")
    path = (cwd / value).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise UsageError(f"invalid --sink {value!r}: {path} is a file, expected a directory")
    return str(path)


def job_args(cfg: Config, sink: str, limit: int | None, extra: Sequence[str]) -> list[str]:
    """``--sink``/``--limit`` first, then the settings' args, then the operator's (last wins)."""
    head = ["--sink", sink] + (["--limit", str(limit)] if limit is not None else [])
    return [*head, *cfg.job.args, *extra]


def job_env(cfg: Config) -> dict[str, str]:
    return {**cfg.job.env, "REPOS_FEED_URL": cfg.job.feed, "GCS_BUCKET_NAME": cfg.bucket}


def direct(cfg: Config, sink: str, limit: int | None, extra: Sequence[str]) -> Plan:
    argv = [sys.executable, "-m", "ingestion", *job_args(cfg, sink, limit, extra)]
    return Plan(argv, job_env(cfg), dict(cfg.job.secrets), sink)


def environment(cfg: Config, plan: Plan, base: Mapping[str, str]) -> dict[str, str]:
    """The environment the plan's commands run with: ``base``, the plan's variables and the
    values of its secrets, read from Secret Manager now (GovctlError, exit 1, when one cannot
    be read: the job never starts without them)."""
    from govctl.gcp import secrets

    env = {**base, **plan.env}
    for name, ref in plan.secrets.items():
        secret, version = validate.secret_ref(ref, f"[job] secrets entry {name}")
        try:
            value = secrets.access(cfg.require_project(), secret, version)
        except GovctlError as err:
            raise _secret_error(name, err) from None
        if b"\0" in value:
            raise GovctlError(f"cannot give the job {name}: its value holds a NUL byte, which "
                              "no environment variable can carry")  # fmt: skip
        env[name] = value.decode("utf-8", "surrogateescape")  # the bytes, as the OS passes them
    return env


def _secret_error(name: str, err: GovctlError) -> GovctlError:
    """Why ``name`` cannot be given to the job, with the fix for a missing or disabled value."""
    reason = str(err).removesuffix(f" — {err.fix}") if err.fix else str(err)
    fix = err.fix
    if isinstance(err, NotFound) or fix is None:  # no such secret or version, or not enabled
        fix = (f"`govctl secrets set {name}` stores a new value; `govctl secrets status` "
               "shows each [job] secrets entry")  # fmt: skip
    return type(err)(f"cannot give the job {name}: {reason}", fix=fix)


def find_engine(name: str | None, path: str | None = None) -> str:
    """The podman or docker executable; a GovctlError that says what to do when neither is."""
    for candidate in (name,) if name else ENGINES:
        found = shutil.which(candidate, path=path)
        if found:
            return found
    raise GovctlError(
        f"{name} not found on PATH" if name else "neither podman nor docker found on PATH",
        fix="install podman (https://podman.io/docs/installation) or docker, or run the job "
        "without a container: govctl local run --no-container",
    )


def adc_file(env: Mapping[str, str]) -> Path | None:
    """Application Default Credentials as gcloud writes them, if present."""
    if env.get("GOOGLE_APPLICATION_CREDENTIALS"):
        path = Path(env["GOOGLE_APPLICATION_CREDENTIALS"]).expanduser()
        if not path.is_file():
            raise GovctlError(
                f"GOOGLE_APPLICATION_CREDENTIALS={path} does not exist",
                fix="unset it or run `gcloud auth application-default login`",
            )
        return path
    root = Path(env.get("CLOUDSDK_CONFIG") or Path(env.get("HOME", "~")) / ".config" / "gcloud")
    path = root.expanduser() / ADC_FILE
    return path if path.is_file() else None


def build_command(engine: str, context: Path | str, build_args: Sequence[str] = ()) -> list[str]:
    """``podman|docker build`` of the image from a context holding ``ingestion/``."""
    extra = [arg for value in build_args for arg in ("--build-arg", value)]
    return [engine, "build", *extra, "-t", LOCAL_IMAGE, "-f", f"{context}/ingestion/Dockerfile",
            str(context)]  # fmt: skip


@contextmanager
def build_context(source: Path) -> Iterator[Path]:
    """The same files `govctl deploy` builds (``ingestion/``, .dockerignore honoured), unpacked.

    Works from a checkout and from an installed wheel (the Dockerfile is package data).
    """
    from govctl.services import image

    data, _ = image.source_bundle(source, allow_dirty=True)
    with tempfile.TemporaryDirectory(prefix="govctl-local-") as tmp:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            tar.extractall(tmp, filter="data")
        yield Path(tmp)


def source_root() -> Path:
    """The directory holding the ``ingestion`` package: the build context in a checkout."""
    import ingestion

    return Path(ingestion.__file__).resolve().parents[1]


def _local_feed(feed: str) -> Path | None:
    if feed.startswith("file://"):
        return Path(feed[len("file://") :])
    if "://" not in feed:
        return Path(feed)
    return None


def container(
    cfg: Config,
    sink: str,
    limit: int | None,
    extra: Sequence[str],
    *,
    engine: str,
    image: str | None,
    env: Mapping[str, str],
    source: Path,
    build_args: Sequence[str] = (),
) -> Plan:
    notes: list[str] = []
    build_from = build = None
    if image is None:
        build_from, image = source, LOCAL_IMAGE
        build = build_command(engine, f"<ingestion/ of {source}>", build_args)
    variables = job_env(cfg)
    mounts: list[str] = []
    args = job_args(cfg, sink, limit, extra)
    if not sink.startswith("gs://"):
        mounts += ["-v", f"{sink}:{IN_CONTAINER_SINK}"]
        args[1] = IN_CONTAINER_SINK
    feed = _local_feed(cfg.job.feed)
    if feed is not None:
        feed = feed.expanduser().resolve()
        inside = f"{IN_CONTAINER_FEED}/{feed.name}"
        mounts += ["-v", f"{feed}:{inside}:ro"]
        variables["REPOS_FEED_URL"] = inside
    credentials = adc_file(env)
    if credentials is not None:
        mounts += ["-v", f"{credentials.resolve()}:{IN_CONTAINER_ADC}:ro"]
        variables["GOOGLE_APPLICATION_CREDENTIALS"] = IN_CONTAINER_ADC
        notes.append(f"credentials: {credentials} mounted read-only")
    elif sink.startswith("gs://") and not env.get("STORAGE_EMULATOR_HOST"):
        raise GovctlError(
            f"no Application Default Credentials to write to {sink}",
            fix="run `gcloud auth application-default login`, or pass --sink DIR",
        )
    else:
        notes.append("credentials: none found, none mounted (the sink needs none)")
    if cfg.project:
        variables["GOOGLE_CLOUD_PROJECT"] = cfg.project
    if env.get("STORAGE_EMULATOR_HOST"):
        variables["STORAGE_EMULATOR_HOST"] = env["STORAGE_EMULATOR_HOST"]
    # The files the job writes belong to the operator, not to the image's user.
    user = ["--user", f"{os.getuid()}:{os.getgid()}"]
    if Path(engine).name == "podman" and os.geteuid() != 0:
        user += ["--userns", "keep-id"]
    # `-e NAME` without a value: the engine takes it from its own environment (`environment`).
    names = [arg for name in sorted({*variables, *cfg.job.secrets}) for arg in ("-e", name)]
    run = [engine, "run", "--rm", "--network", "host", *user, *names, *mounts, image, *args]
    return Plan(run, variables, dict(cfg.job.secrets), sink, build_from, build, notes)


# When the engine fails --------------------------------------------------------------------

# `podman run`/`docker run` exit 125 when the error is the engine's own, not the container's
# (podman-run(1) and docker run reference, "Exit Status"); `podman build` exits 125 too, e.g.
# "Error: creating build container: initializing source docker://python:3.12-slim: pinging
# container registry …" (podman 4.3.1, seen here with a registry that refuses connections).
ENGINE_ERROR = 125
# What an engine says when it cannot fetch an image (podman/buildah's containers/image, and
# docker's BuildKit "failed to solve: … failed to resolve source metadata").
_PULL = re.compile(
    r"initializing source|pinging container registry|short-name|trying to pull|unable to pull|"
    r"manifest unknown|pull access denied|failed to resolve source metadata|"
    r"requested access to the resource is denied|error pulling image",
    re.IGNORECASE,
)
_SOURCE = re.compile(r"docker://(\S+?):\s|failed to resolve source metadata for (\S+?):")
TAIL = 20  # stderr lines of a failed step kept to explain it


@dataclass(frozen=True)
class StepResult:
    status: int
    tail: tuple[str, ...]  # the last lines it wrote to stderr


def run_step(
    command: Sequence[str], env: Mapping[str, str], on_line: Callable[[str], None]
) -> StepResult:
    """Run one step with the terminal's stdout; its stderr is passed on line by line (so the
    operator sees it as it comes) and its end kept, to explain a failure."""
    import collections
    import subprocess

    tail: collections.deque[str] = collections.deque(maxlen=TAIL)
    try:
        proc = subprocess.Popen(
            list(command), env=dict(env), stderr=subprocess.PIPE, text=True, errors="replace"
        )
    except OSError as err:
        raise GovctlError(f"cannot run {command[0]}: {err}") from None
    assert proc.stderr is not None
    with proc:
        for line in proc.stderr:
            line = line.rstrip("\n")
            on_line(line)
            tail.append(line)
    return StepResult(proc.returncode, tuple(tail))


def engine_failure(
    engine: str, step: str, result: StepResult, base: str | None = None
) -> GovctlError | None:
    """What a failed build or run means, when it is the engine's failure rather than the
    job's (whose exit status is passed on as it is): an image it could not pull, or another
    error of the engine itself. ``step`` is "build" or "run"; ``base`` the base image asked."""
    name = Path(engine).name
    said = next((x.strip() for x in reversed(result.tail) if x.strip()), "")
    pulling = any(_PULL.search(x) for x in result.tail)
    if pulling and (step == "build" or result.status == ENGINE_ERROR):
        image = _pulled(result.tail) or base or "the image"
        what = "the base image" if step == "build" else "the image"
        return GovctlError(
            f"{name} could not pull {what} {image} (`{name} {step}` exited {result.status}: "
            f"{said})",
            fix="run the job without a container: govctl local run --no-container; or use an "
            f"image {name} has (`{name} images`), e.g. --build-arg BASE=IMAGE or --image IMAGE; "
            "or let it reach the registry (network, proxy, registries.conf)",
        )
    if result.status == ENGINE_ERROR:
        return GovctlError(
            f"{name} failed before the job started (`{name} {step}` exited 125, an error of "
            f"{name} itself: {said})",
            fix="see its message above; or run the job without a container: govctl local run "
            "--no-container",
        )
    return None


def _pulled(lines: Sequence[str]) -> str | None:
    for line in reversed(lines):
        m = _SOURCE.search(line)
        if m:
            return m.group(1) or m.group(2)
    return None


def base_image(build_args: Sequence[str], source: Path) -> str | None:
    """The base image a build asks for: ``--build-arg BASE=…``, else the Dockerfile's default."""
    for value in build_args:
        if value.startswith("BASE="):
            return value[len("BASE=") :]
    try:
        text = (source / "ingestion" / "Dockerfile").read_text(encoding="utf-8")
    except OSError:
        return None
    m = re.search(r"^ARG BASE=(\S+)", text, re.MULTILINE)
    return m.group(1) if m else None
