"""``python -m govctl.demo`` (``make demo``): the operator's loop on the loopback cloud.

No Google account and no network: the sample repositories of ``ingestion/sample`` are
created as local git repositories, ``govctl emulator`` is started in the background on free
ports, and then the commands an operator types are run one by one, each shown as
``$ govctl …`` with its real output: setup, deploy, alerts, run, logs, executions,
schedule, cost, status, doctor and the search index, then ``destroy``. The emulator is
stopped at the end, whatever happened.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

PROJECT = "demo-project"
# The emulator's storage (fake-gcs-server) puts every bucket in US-CENTRAL1 whatever it is
# asked; in that region `doctor` has no false "bucket in another region" warning to show.
REGION = "us-central1"
# (the command, the exit status it should have). The sample feed names one repository that
# no longer exists: the first run fails on it and says why; the next, with nothing changed,
# skips it as a known failure and succeeds. `doctor` passes (exit 0); the bucket's IAM is
# not checkable on the emulator (fake-gcs-server has none), which it marks `skip`.
STEPS: list[tuple[list[str], int]] = [
    (["setup", "-y"], 0),
    (["deploy", "--dry-run"], 0),
    (["deploy", "-y"], 0),
    (["alerts", "set", "--email", "ops@example.org", "-y"], 0),
    (["run", "--limit", "10"], 1),
    (["MAIL"], 0),
    (["logs", "--errors", "--latest"], 0),
    (["run"], 0),
    (["executions", "list"], 0),
    (["schedule", "show", "--next", "3"], 0),
    (["cost"], 0),
    (["status"], 0),
    (["doctor"], 0),
    (["alerts", "show"], 0),
    (["index", "create"], 0),
    (["index", "sync"], 0),
    (["index", "status"], 0),
    (["index", "search", "text messages"], 0),
    # and take it apart: the digests stay, a second destroy finds nothing to do
    (["destroy", "-y"], 0),
    (["destroy", "--dry-run", "--exit-code"], 0),
]
GONE = {"owner": "demo-org", "name": "demo-retired-service", "pushedAt": "2024-01-01T00:00:00Z"}


def _say(text: str) -> None:
    bold = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    print(f"\n\033[1m{text}\033[0m" if bold else f"\n{text}", flush=True)


def _govctl(args: Sequence[str], env: dict[str, str], cwd: Path, *, show: bool = True) -> int:
    if show:
        _say("$ govctl " + shlex.join(args))
    command = [sys.executable, "-m", "govctl", *args]
    return subprocess.run(command, env=env, cwd=cwd, check=False).returncode


def _show_mail(state_dir: Path) -> None:
    """The e-mail the failed run's alert sent (the emulator delivers it to a file)."""
    import time

    from govctl.emulator.monitoring.conditions import MAILBOX, read_mailbox

    deadline = time.monotonic() + 5
    while not read_mailbox(state_dir) and time.monotonic() < deadline:
        time.sleep(0.1)
    _say(f"# the operator's inbox ({state_dir / MAILBOX})")
    for mail in read_mailbox(state_dir):
        print(f"To: {mail['to']}\nSubject: {mail['subject']}\n\n{mail['body']}\n", flush=True)


def _start_emulator(work: Path, env: dict[str, str]) -> dict[str, str]:
    argv = [sys.executable, "-m", "govctl", "emulator", "start", "--detach"]
    argv += ["--port", "0", "--storage-port", "0", "--state-dir", str(work / "emulator")]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(proc.returncode)
    exports = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        exports[key] = shlex.split(value)[0] if value else ""
    return exports


def _write_settings(work: Path, feed: Path) -> Path:
    path = work / "govctl.toml"
    path.write_text(
        f'project = "{PROJECT}"\nregion = "{REGION}"\n\n[job]\n'
        f"feed = {json.dumps(feed.resolve().as_uri())}\n"
        "# The sample repositories are local (file://) and so is the emulator's task.\n"
        'args = ["--allow-local"]\n\n'
        "# The search index the demo builds: setup enables Discovery Engine for it.\n"
        '[index]\ndata_store = "govreposcrape-search"\n',
        encoding="utf-8",
    )
    return path


def main(argv: Sequence[str] | None = None) -> int:
    from ingestion.demo import build

    parser = argparse.ArgumentParser(prog="python -m govctl.demo", description=__doc__)
    parser.add_argument("--work", type=Path, default=Path(".govctl-demo"))
    args = parser.parse_args(argv)
    if shutil.which("git") is None:
        print("govctl demo: error: git is not installed", file=sys.stderr)
        return 1
    work = args.work.resolve()
    if (work / "emulator").exists():
        shutil.rmtree(work / "emulator")  # each demo starts from an empty cloud
    work.mkdir(parents=True, exist_ok=True)
    feed = build(work)
    entries = json.loads(feed.read_text(encoding="utf-8"))
    gone = work / "repos" / GONE["owner"] / GONE["name"]  # never created: deleted upstream
    entries.append({**GONE, "url": gone.as_uri()})
    feed.write_text(json.dumps(entries, indent=2) + "\n", encoding="utf-8")
    settings = _write_settings(work, feed)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GOVCTL_", "STORAGE_EMU"))}
    base["GOVCTL_CONFIG"] = str(settings)
    _say(f'$ eval "$(govctl emulator start --detach)"   # state in {work / "emulator"}')
    env = {**base, **_start_emulator(work, base)}
    failed = 0
    try:
        for step, expected in STEPS:
            if step == ["MAIL"]:
                _show_mail(work / "emulator")
                continue
            code = _govctl(step, env, work)
            if code != expected:
                failed += 1
                _say(f"# unexpected: exit {code}, expected {expected}")
    finally:
        _govctl(["emulator", "stop", "--state-dir", str(work / "emulator")], env, work)
    _say(f"settings: {settings}; {failed} step(s) failed")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
