"""Start and stop the loopback cloud: one gRPC server for every emulated API."""

from __future__ import annotations

import importlib
import os
import socket
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc

from govctl.emulator import children, process
from govctl.emulator.cloud import Clock, Cloud, Service
from govctl.emulator.lifecycle import Server
from govctl.emulator.registry import Registry
from govctl.emulator.storage import FakeGcs
from govctl.errors import GovctlError

# The state directory's layout (state.json belongs to govctl.emulator.state, the
# emulator.* files to govctl.emulator.process).
STORAGE_DIR = "storage"
STORAGE_LOG = "fake-gcs.log"

# Every emulated API, as "module:Class". Order matters only for start/stop.
SERVICES = [
    "govctl.emulator.logging.service:LoggingService",
    "govctl.emulator.iam.service:IamService",
    "govctl.emulator.artifactregistry.service:ArtifactRegistryService",
    "govctl.emulator.discoveryengine.service:DiscoveryEngineService",
    "govctl.emulator.secretmanager.service:SecretManagerService",
    "govctl.emulator.cloudbuild.service:CloudBuildService",
    "govctl.emulator.run.service:RunService",
    "govctl.emulator.scheduler.service:SchedulerService",
    "govctl.emulator.billing.service:BillingService",
    "govctl.emulator.billing.projects:ProjectBillingService",
    "govctl.emulator.monitoring.service:MonitoringService",
]


def _load_service(spec: str, cloud: Cloud) -> Service:
    module_name, _, cls_name = spec.partition(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    return cls(cloud)  # type: ignore[no-any-return]


class Emulator(Server):
    """The loopback cloud, in-process: the gRPC services plus fake-gcs-server.

    Use as a context manager. ``port=0`` / ``storage_port=0`` pick free ports.
    ``state_dir=None`` keeps everything in memory; otherwise the directory holds (see
    docs/emulator.md) ``state.json`` (the gRPC services' resources), ``storage/`` (the
    objects, fake-gcs-server's filesystem backend), ``fake-gcs.log``, ``emulator.lock``
    (held while running, so two emulators never share one state directory) and
    ``children.json`` (the processes it started; a crashed emulator's are reaped on start).

    A non-loopback ``host`` needs ``allow_remote=True``; a job whose image matches no
    ``image_map`` pattern runs its own command only with ``run_unmapped_images=True``.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        state_dir: Path | None = None,
        clock: Clock | None = None,
        image_map: dict[str, str] | None = None,
        storage: bool = True,
        storage_port: int = 0,
        build_with: list[str] | None = None,
        allow_remote: bool = False,
        run_unmapped_images: bool = False,
        rest: bool = True,
        rest_port: int = 0,
    ) -> None:
        process.check_host(host, allow_remote)
        self.host = host
        self.requested_port = port
        self.state_dir = state_dir
        self.cloud = Cloud(
            state_dir,
            clock=clock,
            image_map=image_map,
            build_with=build_with,
            run_unmapped_images=run_unmapped_images,
        )
        self.port = 0
        self.storage: FakeGcs | None = None
        self.reaped: list[str] = []  # a crashed emulator's leftover processes, killed on start
        if storage:
            self.storage = FakeGcs(
                host=host,
                port=storage_port,
                data_dir=state_dir / STORAGE_DIR if state_dir else None,
                log_path=state_dir / STORAGE_LOG if state_dir else None,
                children=self.cloud.children,
            )
        self._server: grpc.Server | None = None
        # The REST gateway (HTTP/1.1 JSON, and the Run v1 view gcloud uses) beside gRPC.
        self.rest = rest
        self.requested_rest_port = rest_port
        self.rest_port = 0
        self._rest: Any = None
        self._lock_fd: int | None = None
        self._cloud_started = False

    @property
    def client_host(self) -> str:
        """The address a client on this machine dials (the loopback of a wildcard bind)."""
        return {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(self.host, self.host)

    @property
    def grpc_address(self) -> str:
        return process.host_port(self.client_host, self.port)

    def env(self) -> dict[str, str]:
        """What clients need: ``GOVCTL_EMULATOR_HOST`` and ``STORAGE_EMULATOR_HOST``."""
        env = {"GOVCTL_EMULATOR_HOST": self.grpc_address}
        if self.storage is not None:
            env["STORAGE_EMULATOR_HOST"] = self.storage_url
        return env

    @property
    def storage_url(self) -> str:
        assert self.storage is not None
        return f"http://{process.host_port(self.client_host, self.storage.port)}"

    def service(self, key: str) -> Any:
        return self.cloud.service(key)

    def start(self) -> Emulator:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        if self.state_dir is not None:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            self._lock_fd = process.lock_state_dir(self.state_dir)
            # Holding the lock, whatever children.json lists belongs to a dead emulator.
            self.reaped = children.reap(self.state_dir)
        # Import the services (the slow part) before starting any process, so an
        # interrupted start leaves nothing running.
        for spec in SERVICES:
            self.cloud.add(_load_service(spec, self.cloud))
        if self.storage is not None:
            _check_port_free(self.host, self.storage.port, "--storage-port")
            try:
                self.storage.start()
            except RuntimeError as err:
                raise GovctlError(str(err)) from None
            self.cloud.storage_url = self.storage_url
        self.cloud.load()
        # grpc sets SO_REUSEPORT by default: a second emulator would then share the port.
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix="rpc"),
            options=[("grpc.so_reuseport", 0)],
        )
        registry = self.cloud.registry()
        server.add_generic_rpc_handlers(tuple(registry.grpc_handlers()))
        address = process.host_port(self.host, self.requested_port)
        try:
            self.port = server.add_insecure_port(address)
        except RuntimeError:
            self.port = 0
        if self.port == 0:
            raise GovctlError(
                f"cannot listen on {address} (in use?)", fix="pass --port 0 for a free port"
            )
        server.start()
        self._server = server
        if self.rest:
            self._start_rest(registry)
        # Tasks reach this cloud, never the caller's (or real) Google Cloud.
        self.cloud.endpoints = self.env()
        self._cloud_started = True  # from here on, stop() must stop and save the cloud
        self.cloud.start()

    def _start_rest(self, registry: Registry) -> None:
        from govctl.emulator.rest import build

        try:
            self._rest = build(self.host, self.requested_rest_port, registry).start()
        except OSError:
            raise GovctlError(
                f"cannot listen on {self.host}:{self.requested_rest_port} (in use?)",
                fix="pass --rest-port 0 for a free port",
            ) from None
        self.rest_port = self._rest.port

    def gcloud_env(self) -> dict[str, str]:
        """What a plain ``gcloud`` needs to talk to this emulator's REST gateway."""
        from govctl.emulator.rest.gcloud import gcloud_env

        if not self.rest_port:
            return {}
        return gcloud_env(self.client_host, self.rest_port, self.state_dir)

    def stop(self) -> None:
        if self._cloud_started and (self._server is not None or self._rest is not None):
            # Let services end open streams first, so clients see them end cleanly
            # rather than cancelled when the grace period runs out.
            self.cloud.stopping()
        if self._rest is not None:
            self._rest.stop()
            self._rest = None
        if self._server is not None:
            # Stop accepting RPCs before the services stop, so no mutation races the final save.
            self._server.stop(grace=0.5).wait()
            self._server = None
        if self._cloud_started:
            # Only a started cloud saves: after a failed start (e.g. the state directory is
            # another emulator's) saving would overwrite good state with nothing.
            self._cloud_started = False
            self.cloud.stop()
        if self.storage is not None:
            self.storage.stop()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def _check_port_free(host: str, port: int, flag: str) -> None:
    # fake-gcs-server would exit on a taken port, but another server answering there could
    # pass our readiness probe first: refuse up front. SO_REUSEADDR, as the server itself
    # sets: without it the previous run's TIME_WAIT connections fail the probe for a minute.
    with socket.socket(process.socket_family(host), socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            raise GovctlError(
                f"cannot listen on {process.host_port(host, port)} (in use?)",
                fix=f"pass {flag} 0 for a free port",
            ) from None
