"""Start and stop the loopback cloud: one gRPC server for every emulated API."""

from __future__ import annotations

import importlib
from concurrent import futures
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc

from govctl.emulator.cloud import Clock, Cloud, Service

# Every emulated API, as "module:Class". Order matters only for start/stop.
SERVICES = [
    "govctl.emulator.logging.service:LoggingService",
    "govctl.emulator.iam.service:IamService",
    "govctl.emulator.run.service:RunService",
    "govctl.emulator.scheduler.service:SchedulerService",
    "govctl.emulator.billing.service:BillingService",
]


def _load_service(spec: str, cloud: Cloud) -> Service | None:
    module_name, _, cls_name = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        # TODO(integration): make strict once every service module exists.
        if err.name and module_name.startswith(err.name):
            return None
        raise
    cls = getattr(module, cls_name)
    return cls(cloud)  # type: ignore[no-any-return]


class Emulator:
    """The loopback cloud, in-process. Use as a context manager.

    ``port=0`` picks a free port. ``state_dir=None`` keeps state in memory only.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        state_dir: Path | None = None,
        clock: Clock | None = None,
        image_map: dict[str, str] | None = None,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.cloud = Cloud(state_dir, clock=clock, image_map=image_map)
        self.port = 0
        self._server: grpc.Server | None = None

    @property
    def grpc_address(self) -> str:
        return f"{self.host}:{self.port}"

    def env(self) -> dict[str, str]:
        return {"GOVCTL_EMULATOR_HOST": self.grpc_address}

    def service(self, key: str) -> Any:
        return self.cloud.service(key)

    def start(self) -> Emulator:
        for spec in SERVICES:
            svc = _load_service(spec, self.cloud)
            if svc is not None:
                self.cloud.add(svc)
        self.cloud.load()
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix="rpc"))
        for svc in self.cloud.services:
            server.add_generic_rpc_handlers(tuple(svc.handlers()))
        self.port = server.add_insecure_port(f"{self.host}:{self.requested_port}")
        if self.port == 0:
            raise OSError(f"cannot listen on {self.host}:{self.requested_port}")
        server.start()
        self._server = server
        self.cloud.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            # Stop accepting RPCs first so no mutation races the final save.
            self._server.stop(grace=0.5).wait()
            self._server = None
        self.cloud.stop()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
