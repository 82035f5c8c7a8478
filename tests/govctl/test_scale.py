"""`status`, `cost` and `doctor` read the job's summary, not the bucket (issue 18).

A counting proxy stands in front of the loopback cloud's Cloud Storage: with the summary the
job writes (``_state/summary.json``) no command lists the whole bucket; without it they fall
back to listing it and say so.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from govctl.cli.main import main
from govctl.emulator.server import Emulator
from govctl.gcp import clients
from tests.govctl.test_deploy import BUCKET, PROJECT, REGION
from tests.perf.bench_scale import fill
from tests.support.counting_proxy import CountingProxy

DIGESTS = 40
COMMANDS = (["status"], ["cost"], ["doctor"])


@pytest.fixture
def counted(cloud: Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[CountingProxy]:
    clients.storage_client(PROJECT).create_bucket(BUCKET, location=REGION)
    fill(PROJECT, BUCKET, DIGESTS)
    with CountingProxy(cloud.storage_url) as proxy:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", proxy.url)
        yield proxy


def run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    capsys.readouterr()
    main([*argv, "--json"])
    return capsys.readouterr().out


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: a[0])
def test_no_command_lists_the_bucket_when_the_summary_is_there(
    counted: CountingProxy, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    counted.reset()
    run(capsys, argv)
    assert counted.whole_bucket_listings() == []
    assert counted.seen, "the command read nothing through the proxy"
    names = {s.object_name for s in counted.seen}
    assert "_state/summary.json" in names


def test_status_shows_the_summary_totals(
    counted: CountingProxy, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = json.loads(run(capsys, ["status"]))["bucket"]
    assert bucket["digests"] == DIGESTS and bucket["source"] == "summary"
    assert bucket["exact"] is True and bucket["note"] is None
    capsys.readouterr()
    main(["status"])
    out = capsys.readouterr().out
    assert f"{DIGESTS} digests" in out


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: a[0])
def test_without_the_summary_the_bucket_is_listed_and_that_is_said(
    counted: CountingProxy, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    clients.storage_client(PROJECT).bucket(BUCKET).blob("_state/summary.json").delete()
    counted.reset()
    out = run(capsys, argv)
    assert len(counted.whole_bucket_listings()) == 1  # once, even for status and its cost
    assert "no job summary yet (_state/summary.json): counted by listing the bucket" in out
