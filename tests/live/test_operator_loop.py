"""The live acceptance suite: the operator's whole loop on one project, and nothing left after.

`setup`, `deploy --build cloud`, `run --limit 2`, `logs --errors`, `schedule pause`/`resume`,
`index sync` + `search`, `cost`, `doctor`, then — in a ``finally``, whatever failed —
`destroy --delete-bucket` (and the service account and secrets), and a dry run of `destroy`
that must find nothing left. On Google Cloud when ``GOVCTL_LIVE_PROJECT`` is set (see
docs/live-tests.md: cost, roles, duration, `make test-live PROJECT=…`); always on `govctl
emulator`, in `make test`, so the suite cannot rot unnoticed.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.live.conftest import Target

# A word of the first sample repository's README (the emulator's feed); the live feed's
# first repositories change from day to day, so there only the search's success is checked.
SAMPLE_WORDS = "text messages"
SAMPLE_REPOSITORY = "alphagov/demo-notify-lite"


def _ok(t: Target, *args: str) -> subprocess.CompletedProcess[str]:
    """``govctl ARGS``, which must succeed; on failure, everything typed so far is shown."""
    proc = t.govctl(*args)
    if proc.returncode != 0:
        pytest.fail(
            f"govctl {' '.join(args)} exited {proc.returncode}\n\n"
            + "\n".join(t.transcript)
            + f"\nto clean up by hand: {t.cleanup}"
        )
    return proc


def _destroy_flags(t: Target) -> list[str]:
    return [
        "--delete-bucket",
        "--confirm-bucket",
        t.bucket,
        "--delete-service-account",
        "--delete-secrets",
    ]


def _loop(t: Target) -> None:
    _ok(t, "setup", "--with-index", "-y")
    _ok(t, "deploy", "--build", "cloud", "-y")
    _ok(t, "run", "--limit", "2")  # exit 0: the execution succeeded
    _ok(t, "logs", "--errors")

    _ok(t, "schedule", "pause")
    assert json.loads(_ok(t, "schedule", "show", "--json").stdout)["state"] == "PAUSED"
    _ok(t, "schedule", "resume")
    assert json.loads(_ok(t, "schedule", "show", "--json").stdout)["state"] == "ENABLED"

    _ok(t, "index", "sync")
    found = _ok(t, "index", "search", SAMPLE_WORDS if t.kind == "emulator" else "government")
    if t.kind == "emulator":
        assert SAMPLE_REPOSITORY in found.stdout

    _ok(t, "cost")
    _ok(t, "doctor")


def _destroy(t: Target) -> None:
    flags = _destroy_flags(t)
    _ok(t, "destroy", *flags, "-y")
    # Nothing of this run is left: a dry run has nothing to delete (exit 0, not 3).
    _ok(t, "destroy", "--dry-run", "--exit-code", *flags)


def test_the_operators_loop_leaves_nothing_behind(target: Target) -> None:
    try:
        _loop(target)
    finally:
        _destroy(target)
