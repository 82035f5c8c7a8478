"""`govctl emulator …`: run the loopback cloud (gRPC services + fake-gcs-server)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from govctl import __version__, config, extras, render
from govctl.emulator import images, process
from govctl.errors import GovctlError, UsageError

# The APIs the emulator serves, by product, with the gRPC packages that make each one (its
# registry, govctl.emulator.registry, is the truth: a test checks this table against it, so
# that `--help` names them without importing a Google library).
PRODUCTS: dict[str, tuple[str, ...]] = {
    "Cloud Run (v2, and the Admin API v1 view over REST)": ("google.cloud.run.v2.",),
    "Cloud Scheduler": ("google.cloud.scheduler.v1.",),
    "Cloud Logging": ("google.logging.v2.",),
    "IAM": ("google.iam.admin.v1.",),
    "Resource Manager": ("google.cloud.resourcemanager.v3.",),
    "Service Usage": ("google.api.serviceusage.v1.",),
    "Cloud Billing (catalog and project billing)": ("google.cloud.billing.v1.",),
    "Artifact Registry": ("google.devtools.artifactregistry.v1.",),
    "Cloud Build": ("google.devtools.cloudbuild.v1.",),
    "Cloud Monitoring": ("google.monitoring.v3.",),
    "Secret Manager": ("google.cloud.secretmanager.v1.",),
    "Vertex AI Search (Discovery Engine)": ("google.cloud.discoveryengine.v1.",),
}

app = typer.Typer(
    name="emulator",
    help=f"Run the loopback Google Cloud: {len(PRODUCTS)} Google APIs over gRPC and REST, and "
    "Cloud Storage.\n\n"
    f"It serves {', '.join(PRODUCTS)}, with long-running operations; Cloud Storage is "
    "fake-gcs-server, which it starts and stops.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
)

StateDir = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        help="Where the emulator keeps its state [default: USER_DATA_DIR/govctl/emulator, "
        "or GOVCTL_EMULATOR_STATE_DIR, or [emulator] state_dir in govctl.toml].",
        show_default=False,
    ),
]


def _state_dir(flag: Path | None) -> Path:
    return config.load(emulator_state_dir=flag).state_dir.resolve()


@app.command()
def start(
    host: Annotated[
        str | None,
        typer.Option(help="Address to listen on.", show_default=config.DEFAULT_EMULATOR_HOST),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            help="gRPC port for every API; 0 = a free port.",
            show_default=str(config.DEFAULT_EMULATOR_PORT),
        ),
    ] = None,
    storage_port: Annotated[
        int | None,
        typer.Option(
            help="fake-gcs-server port; 0 = a free port.",
            show_default=str(config.DEFAULT_STORAGE_PORT),
        ),
    ] = None,
    rest_port: Annotated[
        int | None,
        typer.Option(
            help="REST gateway port (HTTP/1.1 JSON, what gcloud and curl use); 0 = a free "
            "port. [default: the gRPC port + 1, a free port when that is 0]",
            show_default=False,
        ),
    ] = None,
    state_dir: StateDir = None,
    detach: Annotated[
        bool, typer.Option("--detach", help="Run in the background; return once ready.")
    ] = False,
    map_image: Annotated[
        list[str] | None,
        typer.Option(
            "--map-image",
            metavar="PATTERN=COMMAND",
            help="Run tasks of jobs whose image matches PATTERN (fnmatch) with COMMAND. "
            "Repeatable; tried before the default ingestion-image entries.",
        ),
    ] = None,
    build_with: Annotated[
        str | None,
        typer.Option(
            "--build-with",
            metavar="ENGINE",
            help="Cloud Build runs docker build steps with this engine (podman or docker, "
            "optionally `podman build --build-arg …`) instead of recording the image unbuilt.",
        ),
    ] = None,
    run_unmapped_images: Annotated[
        bool,
        typer.Option(
            "--run-unmapped-images",
            help="Let a job whose image matches no --map-image or default entry run its own "
            "`command` on this host (otherwise its tasks fail as for an image Cloud Run "
            "cannot pull).",
        ),
    ] = False,
    allow_remote: Annotated[
        bool,
        typer.Option(
            "--allow-remote",
            help="Accept a --host other machines can reach. Whoever reaches the port can "
            "create jobs, and jobs run commands on this host.",
        ),
    ] = False,
) -> None:
    """Start the emulator; print the `export` lines that point clients (and gcloud) at it.

    Foreground until Ctrl-C or SIGTERM. `eval "$(govctl emulator start --detach)"` starts
    it in the background and sets the variables in your shell.
    """
    t0 = time.monotonic()
    cfg = config.load(
        emulator_host=host,
        emulator_port=port,
        emulator_storage_port=storage_port,
        emulator_state_dir=state_dir,
    )
    directory = cfg.state_dir.resolve()
    if rest_port is None:  # beside the gRPC port: 8087 by default, free when that is free
        rest_port = cfg.emulator.port + 1 if cfg.emulator.port else 0
    image_map = images.image_map(map_image or ())  # validate before anything starts
    build_command = _build_command(build_with)
    process.check_host(cfg.emulator.host, allow_remote)
    extras.require("emulator", "`govctl emulator start`")
    if not process.is_loopback(cfg.emulator.host):
        render.info(
            f"warning: listening on {cfg.emulator.host}: anyone who reaches ports "
            f"{cfg.emulator.port} and {cfg.emulator.storage_port} can run commands on this host"
        )
    running = process.read_record(directory)
    if running is not None:
        raise GovctlError(
            f"an emulator is already running on {directory} (pid {running.pid})",
            fix="`govctl emulator env` prints its address; `govctl emulator stop` stops it",
        )
    if detach:
        argv = ["emulator", "start", "--host", cfg.emulator.host]
        argv += ["--port", str(cfg.emulator.port)]
        argv += ["--storage-port", str(cfg.emulator.storage_port), "--state-dir", str(directory)]
        argv += ["--rest-port", str(rest_port)]
        for value in map_image or ():
            argv += ["--map-image", value]
        if build_with:
            argv += ["--build-with", build_with]
        argv += ["--run-unmapped-images"] * run_unmapped_images
        argv += ["--allow-remote"] * allow_remote
        record = process.spawn_detached(argv, directory)
        for line in process.export_lines(record.env() | record.gcloud_env()):
            render.out(line)
        render.info(
            f"emulator running in the background (pid {record.pid}, ready in "
            f"{time.monotonic() - t0:.2f} s); `govctl emulator stop` stops it"
        )
        return
    options = _Options(image_map, build_command, run_unmapped_images, allow_remote, rest_port)
    _serve(cfg, directory, options, t0)


def _build_command(value: str | None) -> list[str] | None:
    if value is None:
        return None
    from govctl.emulator.cloudbuild.engine import parse_build_with

    try:
        return parse_build_with(value)
    except ValueError as err:
        raise UsageError(str(err)) from None


@dataclass(frozen=True)
class _Options:
    image_map: dict[str, str]
    build_command: list[str] | None
    run_unmapped_images: bool
    allow_remote: bool
    rest_port: int


def _serve(cfg: config.Config, directory: Path, options: _Options, t0: float) -> None:
    from govctl.emulator.server import Emulator

    emu = Emulator(
        build_with=options.build_command,
        host=cfg.emulator.host,
        port=cfg.emulator.port,
        state_dir=directory,
        image_map=options.image_map,
        storage=True,
        storage_port=cfg.emulator.storage_port,
        allow_remote=options.allow_remote,
        run_unmapped_images=options.run_unmapped_images,
        rest_port=options.rest_port,
    )
    # Signals are caught from before the start: a stop that arrives while starting, or as
    # soon as the addresses appear, ends in a clean shutdown rather than orphaned servers.
    with process.StopSignals() as signals:
        emu.start()
        ready = time.monotonic() - t0
        if emu.reaped:
            render.info(f"killed processes a crashed emulator left: {', '.join(emu.reaped)}")
        try:
            assert emu.storage is not None
            record = process.Record(
                pid=os.getpid(),
                host=emu.client_host,
                port=emu.port,
                storage_port=emu.storage.port,
                storage_pid=emu.storage.pid,
                state_dir=str(directory),
                started_at=process.now_rfc3339(),
                version=__version__,
                rest_port=emu.rest_port,
            )
            process.write_record(directory, record)
            for line in process.export_lines(emu.env() | emu.gcloud_env()):
                render.out(line)
            render.info(f"emulator ready in {ready:.2f} s; state in {directory}; Ctrl-C to stop")
            signals.wait()
            render.info("stopping the emulator…")
        finally:
            emu.stop()  # saves state, stops fake-gcs-server
            process.remove_record(directory, os.getpid())
    render.info("emulator stopped")


@app.command()
def stop(state_dir: StateDir = None) -> None:
    """Stop the emulator running on the state directory (a no-op if none is)."""
    directory = _state_dir(state_dir)
    record = process.read_record(directory)
    if record is None:
        # It may have crashed (kill -9): what it started may still run.
        reaped = _reap(directory)
        render.info(f"no emulator is running on {directory}" + reaped)
        return
    if process.stop(record):
        render.info(f"emulator stopped (pid {record.pid})")
    else:
        render.info(
            f"emulator (pid {record.pid}) did not stop on SIGTERM and was killed" + _reap(directory)
        )


def _reap(directory: Path) -> str:
    from govctl.emulator import children

    if not directory.is_dir():
        return ""
    try:
        fd = process.lock_state_dir(directory)
    except GovctlError:
        return ""  # an emulator is starting on it: it reaps them itself
    try:
        reaped = children.reap(directory)
    finally:
        os.close(fd)
    return f"; killed what a crashed emulator left: {', '.join(reaped)}" if reaped else ""


@app.command()
def status(
    state_dir: StateDir = None,
    json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Whether the emulator runs, its pid, ports, state directory and uptime.

    Exit status 0 when it runs and both servers answer, 1 otherwise.
    """
    directory = _state_dir(state_dir)
    record = process.read_record(directory)
    info: dict[str, object] = {"running": record is not None, "state_dir": str(directory)}
    healthy = False
    if record is not None:
        env = record.env()
        grpc_ok = process.grpc_answers(env["GOVCTL_EMULATOR_HOST"])
        storage_ok = (
            process.storage_answers(env["STORAGE_EMULATOR_HOST"])
            if "STORAGE_EMULATOR_HOST" in env
            else None
        )
        healthy = grpc_ok and storage_ok is not False
        info |= {
            "pid": record.pid,
            "host": record.host,
            "port": record.port,
            "storage_port": record.storage_port,
            "rest_port": record.rest_port,
            "grpc_answers": grpc_ok,
            "storage_answers": storage_ok,
            "started_at": record.started_at,
            "uptime_seconds": round(record.uptime()),
            "version": record.version,
        }
    if json:
        render.json_out(info)
    elif record is None:
        render.info(f"not running (state dir {directory})")
    else:
        render.fields(info)
    if not healthy:
        raise typer.Exit(1)


@app.command()
def env(
    state_dir: StateDir = None,
    gcloud: Annotated[
        bool,
        typer.Option(
            "--gcloud",
            help="Print the CLOUDSDK_* settings that make a plain `gcloud` use the emulator.",
        ),
    ] = False,
) -> None:
    """Print the `export` lines of the running emulator: eval "$(govctl emulator env)"."""
    directory = _state_dir(state_dir)
    record = process.read_record(directory)
    if record is None:
        raise GovctlError(
            f"no emulator is running on {directory}", fix="run `govctl emulator start --detach`"
        )
    values = record.gcloud_env() if gcloud else record.env() | record.gcloud_env()
    if gcloud and not values:
        raise GovctlError(
            f"the emulator on {directory} serves no REST gateway (started by an older govctl)",
            fix="restart it: `govctl emulator stop && govctl emulator start --detach`",
        )
    for line in process.export_lines(values):
        render.out(line)
