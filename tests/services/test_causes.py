"""The failure classifier against Cloud Run payloads as Google documents or shows them
(tests/data/run_failures.json, each with its source), read by govctl's own adapter from the
API's JSON form: why a task failed comes from its fields, and a message that names a cause
changes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from google.cloud import run_v2

from govctl.gcp.executions import to_execution, to_task
from govctl.services import causes

DATA = json.loads((Path(__file__).parent.parent / "data" / "run_failures.json").read_text())


@pytest.mark.parametrize("case", DATA["tasks"], ids=[c["name"] for c in DATA["tasks"]])
def test_each_documented_task_is_classified_from_its_fields(case: dict[str, Any]) -> None:
    assert case["source"]
    task = to_task(run_v2.Task.from_json(json.dumps(case["task"])))
    assert causes.of_task(task).value == case["cause"]
    if "exit_code" in case:
        assert (task.exit_code, task.term_signal) == (case["exit_code"], None)


@pytest.mark.parametrize("case", DATA["executions"], ids=[c["name"] for c in DATA["executions"]])
def test_each_documented_execution_is_read_from_its_condition(case: dict[str, Any]) -> None:
    assert case["source"]
    ex = to_execution(run_v2.Execution.from_json(json.dumps(case["execution"])))
    assert (ex.status, ex.reason) == (case["status"], case["reason"])


def test_a_message_alone_says_nothing() -> None:
    """The same task with and without words about timeouts, memory or secrets in its
    messages is classified the same."""
    quiet = next(c for c in DATA["tasks"] if c["cause"] == "exit")["task"]
    loud = json.loads(json.dumps(quiet))
    said = ("The configured timeout was reached. Memory limit of 512 MiB exceeded. Permission "
            "denied on secret: projects/p/secrets/s/versions/1")  # fmt: skip
    loud["lastAttemptResult"]["status"]["message"] = said
    loud["conditions"][0]["message"] = said
    for payload in (quiet, loud):
        assert causes.of_task(to_task(run_v2.Task.from_json(json.dumps(payload)))) == (
            causes.Cause.EXIT
        )
