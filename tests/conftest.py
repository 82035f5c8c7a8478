"""Fixtures shared by every suite: the loopback cloud on free ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from govctl.emulator.server import Emulator
from govctl.emulator.storage import FakeGcs
from tests.support.git import GitServer


@pytest.fixture(autouse=True)
def _no_settings_from_above(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """govctl looks for govctl.toml upward from the current directory: a test in its temporary
    directory never reads one above pytest's temporary root (another test's, or /tmp's)."""
    monkeypatch.setenv("GOVCTL_CEILING_DIRECTORIES", str(tmp_path_factory.getbasetemp()))


@pytest.fixture(autouse=True)
def _fresh_clients() -> Iterator[None]:
    """Each test starts with no shared Google client, as each govctl command does: an emulator
    started again on a port an earlier test used must not meet that test's channels."""
    from govctl.gcp import clients

    clients.forget()
    yield
    clients.forget()


@pytest.fixture
def emulator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    """A fresh emulator with its state in ``tmp_path``; clients from govctl.gcp.clients reach it.

    Test jobs run their own ``command`` (a Python one-liner), hence ``run_unmapped_images``.
    """
    with Emulator(state_dir=tmp_path / "emulator-state", run_unmapped_images=True) as emu:
        for key, value in emu.env().items():
            monkeypatch.setenv(key, value)
        yield emu


@pytest.fixture
def git_server(tmp_path: Path) -> Iterator[GitServer]:
    """``git daemon`` serving ``tmp_path/git``: ``make_repo(server.root / name, files)``."""
    with GitServer(tmp_path / "git") as server:
        yield server


@pytest.fixture
def fake_gcs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeGcs]:
    """fake-gcs-server (memory backend) with ``STORAGE_EMULATOR_HOST`` pointing at it."""
    with FakeGcs(log_path=tmp_path / "fake-gcs.log") as gcs:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs.url)
        yield gcs
