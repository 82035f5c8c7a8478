"""render: data on stdout (tables, JSON), everything else on stderr."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from govctl import render


def test_json_keys_and_values_are_stable(capsys: pytest.CaptureFixture[str]) -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    render.json_out({"state_dir": Path("/x"), "started_at": when, "port": 8086, "name": "é"})
    captured = capsys.readouterr()
    assert captured.err == ""
    assert json.loads(captured.out) == {
        "state_dir": "/x",
        "started_at": "2026-01-02T03:04:05+00:00",
        "port": 8086,
        "name": "é",
    }
    with pytest.raises(TypeError, match="object is not JSON serialisable"):
        render.to_json({"x": object()})


def test_table_goes_to_stdout_and_messages_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    render.table(["job", "tasks"], [["ingest", 4], ["other", None]])
    render.info("a message")
    render.error("it failed")
    with render.progress("working"):  # not a terminal: no spinner, the block still runs
        render.out("inside")
    captured = capsys.readouterr()
    lines = [line.split() for line in captured.out.splitlines()]
    assert lines == [["job", "tasks"], ["ingest", "4"], ["other", "-"], ["inside"]]
    assert captured.err == "a message\nerror: it failed\n"


def test_fields_align_keys(capsys: pytest.CaptureFixture[str]) -> None:
    render.fields({"running": True, "storage_port": 4443})
    assert capsys.readouterr().out == "running       True\nstorage port  4443\n"
