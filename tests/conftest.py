"""Fixtures shared by every suite: the loopback cloud on free ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from govctl.emulator.server import Emulator


@pytest.fixture
def emulator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    """A fresh emulator with its state in ``tmp_path``; clients from govctl.gcp.clients reach it."""
    with Emulator(state_dir=tmp_path / "emulator-state") as emu:
        for key, value in emu.env().items():
            monkeypatch.setenv(key, value)
        yield emu
