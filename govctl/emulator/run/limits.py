"""A task's memory limit, enforced as Cloud Run enforces it: the task is killed (SIGKILL).

Cloud Run counts a container's whole memory (every process, files written to its in-memory
file system) against ``resources.limits.memory`` and kills the instance that exceeds it,
logging on ``run.googleapis.com/varlog/system``::

    Memory limit of 512 MiB exceeded with 516 MiB used. Consider increasing the memory limit,
    see https://cloud.google.com/run/docs/configuring/memory-limits

(wording as Cloud Run logs it, quoted in public bug reports, e.g. dart-lang/pub-dev#9554).

The emulator has no cgroup per task, so a :class:`MemoryWatch` thread samples the task's
process tree every :data:`INTERVAL` seconds: every live process in the task's session (tasks
start in their own session), summing proportional set sizes (PSS, so pages shared between a
parent and its forked workers count once, as in a cgroup), or RSS where smaps_rollup is not
readable. A spike shorter than the interval can go unseen; files written to disk do not count.
Linux only (/proc): elsewhere limits are not enforced.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading

INTERVAL = 0.1
MIB = 1024 * 1024
DOCS = "https://cloud.google.com/run/docs/configuring/memory-limits"
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def supported() -> bool:
    return sys.platform.startswith("linux") and os.path.isdir("/proc/self")


def exceeded_message(limit: int, used: int) -> str:
    return (
        f"Memory limit of {limit // MIB} MiB exceeded with {used // MIB} MiB used. "
        f"Consider increasing the memory limit, see {DOCS}"
    )


def _session_members(sid: int) -> list[int]:
    """Live (not zombie) processes whose session id is ``sid``."""
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # Fields after the parenthesised command: state ppid pgrp session ...
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 3 and int(fields[3]) == sid and fields[0] != b"Z":
            members.append(int(entry.name))
    return members


def _memory_of(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


def tree_memory(sid: int) -> tuple[int, list[int]]:
    """Memory in use by the task whose session is ``sid``, and its live processes."""
    pids = _session_members(sid)
    return sum(_memory_of(p) for p in pids), pids


class MemoryWatch(threading.Thread):
    """Kills the task's processes once they use more than ``limit`` bytes together."""

    def __init__(self, sid: int, limit: int, interval: float = INTERVAL) -> None:
        super().__init__(name=f"memory-{sid}", daemon=True)
        self.sid = sid
        self.limit = limit
        self.interval = interval
        # Set, before the kill, when the limit was exceeded: the Cloud Run system log line.
        self.exceeded: str | None = None
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()

    def run(self) -> None:
        while not self._halt.is_set():
            used, pids = tree_memory(self.sid)
            if not pids:
                return  # the task has ended
            if used > self.limit:
                self.exceeded = exceeded_message(self.limit, used)
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, signal.SIGKILL)
                return
            self._halt.wait(self.interval)


def watch(pid: int, limit: int | None) -> MemoryWatch | None:
    """Start watching the task whose leader is ``pid`` (a session leader), if it has a limit."""
    if limit is None or not supported():
        return None
    watcher = MemoryWatch(pid, limit)
    watcher.start()
    return watcher
