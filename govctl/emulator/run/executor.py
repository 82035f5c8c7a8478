"""Running an execution for real: every task attempt is a local process.

One :class:`ExecutionRunner` thread per execution schedules attempts (parallelism,
retries, timeouts, cancellation); one thread per running attempt reads its stdout and
stderr line by line and waits for it. The runner reports everything through
:class:`Hooks`, so it knows nothing of protobufs or the service's state.
"""

from __future__ import annotations

import contextlib
import os
import queue
import selectors
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from govctl.emulator.children import Children
from govctl.emulator.run import limits
from govctl.emulator.run.sandbox import (
    Sandbox,
    attempt_environment,
    make_attempt_root,
    make_scratch,
)

Stream = Literal["stdout", "stderr"]
Outcome = Literal["succeeded", "failed", "cancelled", "interrupted"]

# Grace between SIGTERM and SIGKILL when a task is stopped (Cloud Run gives 10 s; the
# emulator keeps tests fast).
KILL_GRACE = 2.0
# After the main process exits, how long to keep reading output its children still write.
DRAIN_SECONDS = 1.0
MAX_LINE = 256 * 1024  # Cloud Logging's entry size limit


@dataclass
class TaskPlan:
    """What every task of one execution runs."""

    argv: list[str]
    env: dict[str, str]
    task_count: int
    parallelism: int
    max_retries: int
    timeout: float
    cwd: str | None = None  # an unmapped image's working_dir (--run-unmapped-images)
    # A mapped image's tasks: each attempt in a fresh scratch directory (see .sandbox)
    sandbox: Sandbox | None = None
    # Set when the spec cannot run at all (no entrypoint, an unreadable secret): every
    # task fails at start with this message, as a container that cannot start would.
    start_error: str | None = None
    # Why, as a Condition.CommonReason name (e.g. SECRETS_ACCESS_CHECK_FAILED), when known.
    start_reason: str | None = None
    memory_limit: int | None = None  # bytes; enforced by govctl.emulator.run.limits


@dataclass
class AttemptResult:
    exit_code: int
    term_signal: int = 0
    timed_out: bool = False
    cancelled: bool = False
    start_error: str | None = None
    start_reason: str | None = None  # TaskPlan.start_reason
    # Set when the emulator failed reading the task's output (the task was then killed).
    reader_error: str | None = None
    memory_exceeded: str | None = None  # the system log line, when killed for memory

    @property
    def ok(self) -> bool:
        return (
            self.exit_code == 0
            and not self.term_signal
            and not self.timed_out
            and not self.cancelled
            and self.start_error is None
            and self.reader_error is None
        )


class Hooks(Protocol):
    def attempt_started(self, index: int, attempt: int) -> None: ...

    def attempt_finished(
        self, index: int, attempt: int, result: AttemptResult, will_retry: bool
    ) -> None: ...

    def task_cancelled(self, index: int) -> None: ...

    def log_line(self, index: int, attempt: int, stream: Stream, line: str) -> None: ...

    def execution_finished(self, outcome: Outcome) -> None: ...


@dataclass
class _Attempt:
    index: int
    attempt: int
    deadline: float
    proc: subprocess.Popen[bytes] | None = None
    thread: threading.Thread | None = None
    timed_out: bool = False
    cancelled: bool = False
    kill_timer: threading.Timer | None = None
    memory: limits.MemoryWatch | None = None
    root: Path | None = None  # the attempt's scratch directory, removed when it ends


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    # Tasks run in their own session, so the process group id is the pid.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def stop_process(proc: subprocess.Popen[bytes], grace: float) -> threading.Timer | None:
    """SIGTERM the task's process group, SIGKILL it after ``grace`` seconds."""
    if grace <= 0:
        _signal_group(proc, signal.SIGKILL)
        return None
    _signal_group(proc, signal.SIGTERM)
    timer = threading.Timer(grace, _signal_group, (proc, signal.SIGKILL))
    timer.daemon = True
    timer.start()
    return timer


class ExecutionRunner(threading.Thread):
    def __init__(
        self, name: str, plan: TaskPlan, hooks: Hooks, children: Children | None = None
    ) -> None:
        super().__init__(name=f"run-{name.rsplit('/', 1)[-1]}", daemon=True)
        self.plan = plan
        self.hooks = hooks
        self.children = children or Children(None)
        self._events: queue.Queue[tuple[_Attempt, AttemptResult] | None] = queue.Queue()
        self._cancel_reason: Outcome | None = None
        self._grace = KILL_GRACE
        self._lock = threading.Lock()
        self._running: dict[int, _Attempt] = {}
        self._scratch: Path | None = None

    # control ------------------------------------------------------------------------------
    def cancel(self, *, interrupted: bool = False) -> None:
        """Kill running tasks, never start pending ones; ``interrupted`` when the emulator stops.

        Both stop tasks the same way (SIGTERM, then SIGKILL after the grace), so an
        interrupted task records the exit status a cancelled one does.
        """
        with self._lock:
            if self._cancel_reason is None:
                self._cancel_reason = "interrupted" if interrupted else "cancelled"
        self._events.put(None)

    # scheduling ---------------------------------------------------------------------------
    def run(self) -> None:
        pending: deque[tuple[int, int]] = deque((i, 0) for i in range(self.plan.task_count))
        failed = False
        self._scratch = self._make_scratch()
        try:
            while (pending or self._running) and self._schedule(pending):
                event = self._next_event()
                if event is not None:
                    failed = self._settle(*event, pending) or failed
        finally:
            if self._scratch is not None:
                shutil.rmtree(self._scratch, ignore_errors=True)
        outcome: Outcome = self._cancel_reason or ("failed" if failed else "succeeded")
        self.hooks.execution_finished(outcome)

    def _schedule(self, pending: deque[tuple[int, int]]) -> bool:
        """Start what may start, or (cancelled) stop everything; False once nothing runs."""
        if self._cancel_reason is None:
            limit = self.plan.parallelism or self.plan.task_count
            while pending and len(self._running) < limit:
                self._start(*pending.popleft())
            return True
        for index, _ in pending:
            self.hooks.task_cancelled(index)
        pending.clear()
        self._stop_all()
        return bool(self._running)

    def _next_event(self) -> tuple[_Attempt, AttemptResult] | None:
        try:
            return self._events.get(timeout=self._next_deadline())
        except queue.Empty:
            self._enforce_deadlines()
            return None

    def _settle(
        self, att: _Attempt, result: AttemptResult, pending: deque[tuple[int, int]]
    ) -> bool:
        """Record an attempt's end; True when its task failed for good."""
        self._running.pop(att.index, None)
        if att.kill_timer is not None:
            att.kill_timer.cancel()
        if att.root is not None:  # the instance is gone, and its filesystem with it
            shutil.rmtree(att.root, ignore_errors=True)
        if result.cancelled:
            self.hooks.attempt_finished(att.index, att.attempt, result, False)
            self.hooks.task_cancelled(att.index)
            return False
        retry = not result.ok and att.attempt < self.plan.max_retries and not self._cancel_reason
        self.hooks.attempt_finished(att.index, att.attempt, result, retry)
        if retry:
            # Retries go to the front: Cloud Run restarts a failed task before new ones.
            pending.appendleft((att.index, att.attempt + 1))
        return not result.ok and not retry

    def _make_scratch(self) -> Path | None:
        """The execution's scratch directory (mapped images only; see .sandbox)."""
        return make_scratch() if self.plan.sandbox is not None else None

    def _next_deadline(self) -> float | None:
        if not self._running:
            return None if self._cancel_reason is None else 0.05
        return max(0.0, min(a.deadline for a in self._running.values()) - time.monotonic())

    def _enforce_deadlines(self) -> None:
        now = time.monotonic()
        for att in self._running.values():
            if att.deadline > now:
                continue
            if att.proc is not None and not (att.timed_out or att.cancelled):
                att.timed_out = True
                att.kill_timer = stop_process(att.proc, self._grace)
            att.deadline = now + 0.5  # keep polling until the reader reports the exit

    def _stop_all(self) -> None:
        for att in self._running.values():
            if att.proc is not None and not att.cancelled and not att.timed_out:
                att.cancelled = True
                att.kill_timer = stop_process(att.proc, self._grace)

    def _start(self, index: int, attempt: int) -> None:
        plan = self.plan
        att = _Attempt(index, attempt, deadline=time.monotonic() + plan.timeout)
        self.hooks.attempt_started(index, attempt)
        if plan.start_error is not None:
            failed = AttemptResult(
                exit_code=127, start_error=plan.start_error, start_reason=plan.start_reason
            )
            self._events.put((att, failed))
            self._running[index] = att
            return
        env = dict(plan.env)
        env.update(
            CLOUD_RUN_TASK_INDEX=str(index),
            CLOUD_RUN_TASK_ATTEMPT=str(attempt),
            CLOUD_RUN_TASK_COUNT=str(plan.task_count),
        )
        cwd = plan.cwd
        try:
            if self._scratch is not None and plan.sandbox is not None:
                att.root, workdir = make_attempt_root(
                    self._scratch, index, attempt, plan.sandbox.workdir
                )
                env.update(attempt_environment(att.root))
                cwd = str(workdir)
            proc = self.children.spawn(
                plan.argv,
                f"task {index} of {self.name.removeprefix('run-')}",
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except OSError as err:
            message = f"Application failed to start: {plan.argv[0]!r}: {err.strerror or err}"
            self._events.put((att, AttemptResult(exit_code=127, start_error=message)))
            self._running[index] = att
            return
        att.proc = proc
        att.memory = limits.watch(proc.pid, plan.memory_limit)
        att.thread = threading.Thread(
            target=self._watch, args=(att,), name=f"{self.name}-task{index}", daemon=True
        )
        self._running[index] = att
        att.thread.start()

    # one thread per running attempt -------------------------------------------------------
    def _watch(self, att: _Attempt) -> None:
        # Whatever goes wrong while reading, the attempt's result is posted: without it the
        # execution would wait for this task forever.
        proc = att.proc
        assert proc is not None
        reader_error = None
        try:
            self._read_output(att, proc)
        except Exception as err:
            reader_error = (
                f"The emulator failed reading the task's output ({type(err).__name__}: {err}); "
                "the task was stopped."
            )
            _signal_group(proc, signal.SIGKILL)
        finally:
            for pipe in (proc.stdout, proc.stderr):
                if pipe is not None:
                    with contextlib.suppress(OSError):
                        pipe.close()
            code = proc.wait()
            self.children.forget(proc.pid)
            result = AttemptResult(
                exit_code=code if code >= 0 else 128 - code,
                term_signal=-code if code < 0 else 0,
                timed_out=att.timed_out,
                cancelled=att.cancelled,
                reader_error=reader_error,
                memory_exceeded=att.memory.exceeded if att.memory else None,
            )
            self._events.put((att, result))

    def _read_output(self, att: _Attempt, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None and proc.stderr is not None
        streams: dict[int, Stream] = {
            proc.stdout.fileno(): "stdout",
            proc.stderr.fileno(): "stderr",
        }
        buffers: dict[Stream, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}
        sel = selectors.DefaultSelector()
        for fd in streams:
            os.set_blocking(fd, False)
            sel.register(fd, selectors.EVENT_READ)
        drain_until: float | None = None
        try:
            while sel.get_map():
                for key, _ in sel.select(timeout=0.1):
                    fd = key.fd
                    stream = streams[fd]
                    try:
                        chunk = os.read(fd, 65536)
                    except BlockingIOError:
                        continue
                    if not chunk:
                        sel.unregister(fd)
                        self._flush(att, stream, buffers[stream], final=True)
                        continue
                    buffers[stream] += chunk
                    self._flush(att, stream, buffers[stream], final=False)
                if proc.poll() is not None:
                    # Children of the task may hold the pipes open: read what they write for
                    # a moment, then end the whole group.
                    if drain_until is None:
                        drain_until = time.monotonic() + DRAIN_SECONDS
                    elif time.monotonic() > drain_until:
                        _signal_group(proc, signal.SIGKILL)
                        break
        finally:
            sel.close()
        for stream, buf in buffers.items():
            self._flush(att, stream, buf, final=True)

    def _flush(self, att: _Attempt, stream: Stream, buf: bytearray, *, final: bool) -> None:
        while True:
            nl = buf.find(b"\n")
            if nl < 0:
                if len(buf) >= MAX_LINE or (final and buf):
                    line, rest = bytes(buf[:MAX_LINE]), bytes(buf[MAX_LINE:])
                    buf[:] = rest
                    self._emit(att, stream, line)
                    continue
                return
            line = bytes(buf[:nl])
            del buf[: nl + 1]
            self._emit(att, stream, line)

    def _emit(self, att: _Attempt, stream: Stream, raw: bytes) -> None:
        text = raw.decode("utf-8", errors="replace").rstrip("\r")
        if text.strip():
            self.hooks.log_line(att.index, att.attempt, stream, text)
