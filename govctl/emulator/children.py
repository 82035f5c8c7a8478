"""Every process the emulator starts (fake-gcs-server, task processes), so none outlives it.

Three layers, because a ``kill -9`` of the emulator runs none of its cleanup code:

- On Linux each child asks the kernel to SIGKILL it when the emulator dies
  (``PR_SET_PDEATHSIG``, set by ``setpriv`` before it execs the command). The kernel ties
  that to the *thread* that forked the child, so all children are forked by one thread that
  lives as long as the process.
- Each child runs in its own session (its process group id is its pid) and is recorded,
  with its start time, in ``children.json`` in the state directory while it runs.
- The next ``start`` on that directory (or ``govctl emulator stop`` when nothing runs)
  reaps what the record still lists: a group whose leader is gone, or whose leader is the
  very process recorded (same start time), is killed. A pid reused by an unrelated process
  has another start time and is left alone; a process group id is never reused while any
  member of the group lives, so killing a leaderless group only reaches our orphans.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

CHILDREN_FILE = "children.json"

# One long-lived thread forks every child: PR_SET_PDEATHSIG fires when the forking thread
# ends, and a runner thread (or a caller's short-lived thread) may end before its children.
_SPAWNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spawner")


def _die_with_parent_prefix() -> list[str]:
    """``setpriv --pdeathsig KILL --`` (util-linux) on Linux: the child sets PR_SET_PDEATHSIG
    itself and then execs the command.

    Not a ``preexec_fn``: that makes Python fork() instead of vfork(), and fork() runs gRPC's
    atfork handlers, which pause and resume the emulator's own gRPC threads under load —
    streams were reset (RST_STREAM) and task output lost. ``setpriv`` keeps the spawn a vfork.
    """
    if not sys.platform.startswith("linux"):
        return []
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []


_DIE_WITH_PARENT = _die_with_parent_prefix()


def start_time(pid: int) -> str | None:
    """When ``pid`` started, as an opaque string (None if it does not exist)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rpartition(")")[2].split()[19]  # field 22, starttime in clock ticks
    except OSError:
        if sys.platform.startswith("linux"):
            return None
    except IndexError:
        return None
    result = subprocess.run(
        ["ps", "-o", "lstart=", "-p", str(pid)], capture_output=True, text=True, check=False
    )
    return result.stdout.strip() or None


class Children:
    """The record of running children; ``state_dir=None`` keeps it in memory only."""

    def __init__(self, state_dir: Path | None) -> None:
        self.path = state_dir / CHILDREN_FILE if state_dir is not None else None
        self._lock = threading.Lock()
        self._running: dict[int, dict[str, Any]] = {}

    def spawn(self, argv: Sequence[str], what: str, **popen: Any) -> subprocess.Popen[bytes]:
        """``subprocess.Popen`` in a new session, dying with the emulator, recorded."""

        def start() -> subprocess.Popen[bytes]:
            return subprocess.Popen([*_DIE_WITH_PARENT, *argv], start_new_session=True, **popen)

        proc = _SPAWNER.submit(start).result()
        with self._lock:
            self._running[proc.pid] = {"pid": proc.pid, "start": start_time(proc.pid), "what": what}
            self._save()
        return proc

    def forget(self, pid: int) -> None:
        with self._lock:
            if self._running.pop(pid, None) is not None:
                self._save()

    def _save(self) -> None:
        if self.path is None:
            return
        if not self._running:
            self.path.unlink(missing_ok=True)  # nothing to reap
            return
        tmp = self.path.with_name(f".{CHILDREN_FILE}.{os.getpid()}")
        tmp.write_text(json.dumps(list(self._running.values()), indent=1) + "\n")
        os.replace(tmp, self.path)


def spawn(argv: Sequence[str], **popen: Any) -> subprocess.Popen[bytes]:
    """A child not recorded anywhere (no state directory) that still dies with us."""
    return Children(None).spawn(argv, "", **popen)


def reap(state_dir: Path, grace: float = 2.0) -> list[str]:
    """Kill the orphans ``children.json`` lists; return what was killed ("pid (what)").

    Call only while holding the state directory's lock (or knowing no emulator runs on it):
    the record is then a dead emulator's.
    """
    path = state_dir / CHILDREN_FILE
    try:
        entries = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError):
        entries = []  # a half-written record (crash mid-write) names nothing we can trust
    groups = []
    for entry in entries if isinstance(entries, list) else []:
        with contextlib.suppress(KeyError, TypeError, ValueError):
            pid, started = int(entry["pid"]), entry.get("start")
            now = start_time(pid)
            ours = now is None or (started is not None and now == started)
            if ours and _group_alive(pid):
                groups.append((pid, str(entry.get("what") or "child")))
    for pid, _ in groups:
        _killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(_group_alive(pid) for pid, _ in groups) and time.monotonic() < deadline:
        time.sleep(0.02)
    for pid, _ in groups:
        _killpg(pid, signal.SIGKILL)
    path.unlink(missing_ok=True)
    return [f"{pid} ({what})" for pid, what in groups]


def _killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # Zombies still count for killpg(0): alive only if some member is not one.
    if not sys.platform.startswith("linux"):
        return True
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError):
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False
