"""The shared context of the loopback cloud.

Each emulated API is a :class:`Service`. Services reach each other only through the
:class:`Cloud` they are given (``cloud.service("run")``), never by importing each other's
modules, so every one can be built and tested on its own. Plain helper modules are shared, one
implementation each: ``apis`` (the API a service serves, read from Google's client library) and
``registry`` (every served RPC, for gRPC and other transports), ``store`` (resources by name,
update masks, etags, the state file), ``rpc`` (errors, paging), ``operations`` (long-running
operations) and ``iam.policy`` (Get/Set/TestIamPermissions on any resource).

Cross-service contracts (keep them stable):

- ``cloud.service("logging").write_entries(entries)``: append
  ``google.cloud.logging_v2.types.LogEntry`` objects; fills ``timestamp``,
  ``receive_timestamp`` and ``insert_id`` when empty; wakes tailers.
- ``cloud.service("run").run_job(job_name, overrides=None)``: start an execution of
  ``projects/P/locations/R/jobs/J`` (``run_v2.RunJobRequest.Overrides`` or None) and return
  the new ``run_v2.Execution``; raises :class:`govctl.emulator.rpc.RpcError`.
- ``cloud.service("run").job_iam_policy(job_name)``: the job's ``policy_pb2.Policy``.
- ``cloud.service("iam").project_iam_policy(project)``: the project's ``policy_pb2.Policy``.
- ``cloud.service("artifactregistry").record_image(image, digest, tags, size=0)``: record
  ``REGION-docker.pkg.dev/P/R/IMAGE`` at ``sha256:…`` with ``tags`` (moved off other digests)
  and return the ``artifactregistry_v1.DockerImage``; RpcError NOT_FOUND without the repository.
- ``cloud.service("secretmanager").resolve(project, secret, version, member)``: the value of a
  Cloud Run ``secret_key_ref`` (``version`` a number or ``latest``) read as ``member``; raises
  ``LookupError`` with Cloud Run's message when the secret, version or access is missing.
- ``cloud.service("iam").allows(policy, member, permission)``: whether a binding of the
  policy grants ``permission`` (e.g. ``run.jobs.run``) to ``member``
  (``serviceAccount:x@p.iam.gserviceaccount.com``).
- ``cloud.service("logging").matcher(filter)``: a ``LogEntry`` pb predicate for a Logging
  query (RpcError INVALID_ARGUMENT for a query the emulator cannot evaluate).
- ``cloud.service("iam").check_api(api, project)``: None when ``api``
  (``secretmanager.googleapis.com``) is enabled in ``project`` (id or number), else raises the
  RpcError Google answers (PERMISSION_DENIED, ``SERVICE_DISABLED``). The registry calls it
  before every RPC; a service calls it where production checks another API on its own
  behalf (Cloud Run reading a job's secrets).

Events (``cloud.publish(event, payload)`` / ``cloud.subscribe(event, fn)``): a publisher
never knows who listens, and a listener's error never reaches the publisher. Listeners run in
the publisher's thread once the publishing service released its own lock (its caller may
still hold another service's): they must be quick and must not call a service's RPCs.

- ``"run.execution_completed"``: an execution of a Cloud Run job ended; payload
  ``{"execution": full name, "job": full job name, "result": "succeeded" | "failed" |
  "cancelled", "message": the Completed condition's message, "time": datetime}``.
- ``"logging.entries_written"``: payload ``{"entries": [LogEntry pb, ...]}`` as stored.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from govctl.emulator.apis import Bound
from govctl.emulator.children import Children
from govctl.emulator.operations import Operations, OperationsRouter
from govctl.emulator.registry import Registry, build
from govctl.emulator.state import StateFile


class Clock:
    """Wall-clock time, optionally sped up (``scale``) or moved by hand (``advance``).

    Tests use ``advance`` to make a scheduler job's next cron time arrive without waiting.
    """

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale
        self._origin_real = time.time()
        self._offset = 0.0
        self._lock = threading.Lock()

    def timestamp(self) -> float:
        with self._lock:
            elapsed = time.time() - self._origin_real
            return self._origin_real + elapsed * self.scale + self._offset

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp(), UTC)

    def advance(self, seconds: float | timedelta) -> None:
        if isinstance(seconds, timedelta):
            seconds = seconds.total_seconds()
        with self._lock:
            self._offset += seconds


class Service:
    """One emulated API. Subclasses set ``key`` (its name in the state file and registry).

    A service serves the APIs :meth:`rpcs` returns (Google's API read from its client library,
    bound to handlers: :mod:`govctl.emulator.apis`), keeps its resources in
    :class:`~govctl.emulator.store.Store` s and, when it answers with long-running operations
    that clients poll, in ``operations`` (:class:`~govctl.emulator.operations.Operations`).
    """

    key: str = ""
    operations: Operations | None = None

    def __init__(self, cloud: Cloud) -> None:
        self.cloud = cloud
        self.lock = threading.RLock()

    def rpcs(self) -> list[Bound]:
        """The APIs this service serves, with their handlers."""
        return []

    def dump(self) -> Any:
        """A JSON-able snapshot of this service's resources."""
        return None

    def load(self, data: Any) -> None:
        """Restore from a :meth:`dump` snapshot (called before :meth:`start`)."""

    def start(self) -> None:
        """Start background work (tickers, runners)."""

    def stopping(self) -> None:
        """The emulator is about to stop: end streams and long waits (TailLogEntries,
        WaitOperation) so they finish cleanly within the server's grace period. Called while
        RPCs may still arrive; mutations stay allowed until :meth:`stop`, which runs after the
        server has stopped, so none can race the final save."""

    def stop(self) -> None:
        """Stop background work; must return promptly."""

    def changed(self) -> None:
        """Call after every mutation so the state reaches disk."""
        self.cloud.mark_dirty()


class Cloud:
    def __init__(
        self,
        state_dir: Path | None = None,
        *,
        clock: Clock | None = None,
        image_map: dict[str, str] | None = None,
        build_with: list[str] | None = None,
        run_unmapped_images: bool = False,
        new_project_apis: Iterable[str] | None = None,
    ) -> None:
        self.state_dir = state_dir
        # The APIs a project has enabled when the emulator first sees it; None: those Google
        # enables in a new project (logging, monitoring, serviceusage, storage among ours).
        self.new_project_apis = None if new_project_apis is None else frozenset(new_project_apis)
        self.clock = clock or Clock()
        # image pattern (fnmatch) -> shell command run for each task of a job with that image
        self.image_map: dict[str, str] = dict(image_map or {})
        # fake-gcs-server's base URL once it runs (Cloud Build reads its source objects there)
        self.storage_url: str | None = None
        # a build command prefix (``podman build``): Cloud Build runs docker steps with it
        self.build_with: list[str] | None = build_with
        # Whether a job whose image matches no pattern may run its own `command` on this host.
        self.run_unmapped_images = run_unmapped_images
        # What every task gets to reach this cloud (GOVCTL_EMULATOR_HOST, STORAGE_EMULATOR_HOST).
        self.endpoints: dict[str, str] = {}
        self.children = Children(state_dir)
        self._state = StateFile(state_dir)
        self._services: dict[str, Service] = {}
        self._subscribers: dict[str, list[Callable[[dict[str, Any]], None]]] = {}
        self._dirty = threading.Event()
        self._stopping = threading.Event()
        self._saver: threading.Thread | None = None

    # registry -----------------------------------------------------------------------------
    def add(self, service: Service) -> None:
        self._services[service.key] = service

    def service(self, key: str) -> Any:
        try:
            return self._services[key]
        except KeyError:
            raise LookupError(f"emulated service {key!r} is not running") from None

    @property
    def services(self) -> list[Service]:
        return list(self._services.values())

    def registry(self) -> Registry:
        """Every RPC the services serve (see :mod:`govctl.emulator.registry`), with one
        ``google.longrunning.Operations`` for all the services' operations; a call to an API
        that is disabled in its project is refused (``iam``'s Service Usage decides)."""
        tables = [table for svc in self._services.values() for table in svc.rpcs()]
        stores = [s.operations for s in self._services.values() if s.operations is not None]
        if stores:
            tables.append(OperationsRouter(stores).bind())
        iam: Any = self._services.get("iam")  # the IAM service: Service Usage's state
        gate = iam.check_api if iam is not None else None
        return build(tables, gate)

    # events (see the module docstring) ------------------------------------------------------
    def subscribe(self, event: str, fn: Callable[[dict[str, Any]], None]) -> None:
        self._subscribers.setdefault(event, []).append(fn)

    def publish(self, event: str, payload: dict[str, Any]) -> None:
        for fn in list(self._subscribers.get(event, ())):
            try:
                fn(payload)
            except Exception:  # a listener's bug must not fail the execution or the write
                logging.getLogger("govctl.emulator").exception("listener of %s failed", event)

    # persistence --------------------------------------------------------------------------
    def mark_dirty(self) -> None:
        self._dirty.set()

    def load(self) -> None:
        data = self._state.load()
        for svc in self._services.values():
            if svc.key in data:
                try:
                    svc.load(data[svc.key])
                except Exception as err:
                    raise self._state.unreadable(f"bad {svc.key!r} section: {err}") from None

    def save(self) -> None:
        snapshot = {}
        for svc in self._services.values():
            with svc.lock:
                snapshot[svc.key] = svc.dump()
        self._state.save(snapshot)

    def _save_loop(self) -> None:
        while not self._stopping.is_set():
            if self._dirty.wait(0.2) and not self._stopping.is_set():
                self._dirty.clear()
                self.save()
                time.sleep(0.3)  # coalesce bursts of mutations into one write

    def start(self) -> None:
        for svc in self._services.values():
            svc.start()
        if self.state_dir is not None:
            self._saver = threading.Thread(target=self._save_loop, name="state-saver", daemon=True)
            self._saver.start()

    def stopping(self) -> None:
        for svc in self._services.values():
            svc.stopping()

    def stop(self) -> None:
        self._stopping.set()
        self._dirty.set()  # wake the saver now rather than at its next poll
        for svc in reversed(list(self._services.values())):
            svc.stop()
        if self._saver is not None:
            self._saver.join(timeout=5)
        if self.state_dir is not None:
            self.save()
