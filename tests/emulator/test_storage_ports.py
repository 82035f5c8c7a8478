"""A port the emulator chose for fake-gcs-server can be taken by another process before the
server binds it (CI once failed so: "fake-gcs-server exited with 1"). The emulator chooses
again; a port the operator named is never silently changed."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from govctl.emulator import storage
from govctl.emulator.storage import FakeGcs


@pytest.fixture
def taken() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def test_a_private_port_taken_first_is_chosen_again(
    tmp_path: Path, taken: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    gcs = FakeGcs(data_dir=tmp_path / "data", log_path=tmp_path / "gcs.log")
    real, handed = storage.free_port, [taken]
    # The first private port is one another process has bound meanwhile.
    monkeypatch.setattr(
        storage, "free_port", lambda host="127.0.0.1": (handed or [real(host)]).pop()
    )
    with gcs:
        assert "address already in use" in (tmp_path / "gcs.log").read_text()
        with socket.create_connection(("127.0.0.1", gcs.port), timeout=5):
            pass


def test_a_port_the_operator_named_is_not_changed(tmp_path: Path, taken: int) -> None:
    gcs = FakeGcs(port=taken, log_path=tmp_path / "gcs.log")
    with pytest.raises(RuntimeError, match=f"exited with 1 on http://127.0.0.1:{taken}"):
        gcs.start()
    assert gcs.port == taken
