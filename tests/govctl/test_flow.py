"""The one plan flow (govctl.cli.flow) with a plan whose every line is a deletion, as
`govctl destroy` will make: shown with `-` and what goes, counted, confirmed, applied."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import typer

from govctl.cli import flow
from govctl.errors import GovctlError, UsageError
from govctl.services.plan import Applied, Plan, Problem, deleted


@dataclass(frozen=True)
class Teardown:
    plan: Plan


def _teardown(*problems: Problem) -> Teardown:
    return Teardown(
        Plan(
            "govreposcrape",
            "europe-west2",
            (
                deleted("scheduler", "govreposcrape-daily-ingest", {"cron": "0 2 * * *"}),
                deleted("run job", "govreposcrape-ingestion"),
            ),
            problems=problems,
        )
    )


def _step(applied: list[Teardown], *problems: Problem) -> flow.Step[Teardown]:
    def apply(t: Teardown) -> Applied:
        applied.append(t)
        return Applied(tuple(f"deleted {r.kind} {r.name}" for r in t.plan.resources))

    return flow.Step("destroy", lambda: _teardown(*problems), apply)


def test_a_deletion_plan_is_shown_counted_and_applied(capsys: pytest.CaptureFixture[str]) -> None:
    applied: list[Teardown] = []
    _, outcome = flow.run(_step(applied), flow.Options(yes=True))
    assert outcome is flow.Outcome.APPLIED and len(applied) == 1
    out, err = capsys.readouterr()
    assert "  - scheduler govreposcrape-daily-ingest\n      cron  0 2 * * *\n" in out
    assert "  - run job   govreposcrape-ingestion\n" in out
    assert out.rstrip().endswith("0 to add, 0 to change, 2 to delete, 0 unchanged.")
    assert "deleted scheduler govreposcrape-daily-ingest\ndeleted run job" in err


def test_dry_run_and_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    applied: list[Teardown] = []
    options = flow.Options(dry_run=True, exit_code=True, json=True)
    _, outcome = flow.run(_step(applied), options)
    assert outcome is flow.Outcome.DRY_RUN and applied == []
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert data["summary"] == {"to_add": 0, "to_change": 0, "to_delete": 2, "unchanged": 0}
    assert data["resources"][0]["changes"] == [{"field": "cron", "old": "0 2 * * *", "new": None}]
    assert "dry run: nothing written" in err
    with pytest.raises(typer.Exit) as stop:
        flow.finish([outcome], options)
    assert stop.value.exit_code == flow.EXIT_CHANGES
    flow.finish([flow.Outcome.UNCHANGED], options)  # nothing to apply: exit 0
    with pytest.raises(UsageError, match="--exit-code needs --dry-run"):
        flow.Options(exit_code=True)


def test_problems_stop_before_any_write(capsys: pytest.CaptureFixture[str]) -> None:
    applied: list[Teardown] = []
    problem = Problem("the bucket holds 20,000 digests", "pass --keep-bucket")
    with pytest.raises(GovctlError, match="cannot destroy: the bucket holds 20,000 digests — "):
        flow.run(_step(applied, problem), flow.Options(yes=True))
    assert applied == []


def test_without_a_terminal_it_asks_nobody_and_refuses(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("govctl.cli.options.interactive", lambda: False)
    applied: list[Teardown] = []
    with pytest.raises(UsageError, match="refusing to apply without confirmation") as err:
        flow.run(_step(applied), flow.Options())
    assert err.value.exit_code == 2 and applied == []


def test_colour_is_rich_s_decision(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Plan lines are coloured on a terminal (FORCE_COLOR stands in for one), never with
    NO_COLOR."""
    from govctl import render

    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.delenv("NO_COLOR", raising=False)
    render.plan(_teardown().plan)
    assert "\033[31m  - run job   govreposcrape-ingestion" in capsys.readouterr().out
    monkeypatch.setenv("NO_COLOR", "1")
    render.plan(_teardown().plan)
    out = capsys.readouterr().out
    assert "\033[" not in out and "  - run job   govreposcrape-ingestion" in out
