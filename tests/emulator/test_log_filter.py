"""The Logging query language subset, parsed and evaluated without a server."""

from __future__ import annotations

from typing import Any

import pytest
from google.cloud.logging_v2 import types

from govctl.emulator.logging.filter import FilterError, LogFilter, parse_timestamp

EXECUTION = "run.googleapis.com/execution_name"


def entry(**fields: Any) -> Any:
    base: dict[str, Any] = {
        "log_name": "projects/p/logs/run.googleapis.com%2Fstdout",
        "resource": {
            "type": "cloud_run_job",
            "labels": {"job_name": "ingest", "location": "europe-west2", "project_id": "p"},
        },
        "timestamp": "2024-05-01T12:00:00.5Z",
        "insert_id": "abc",
    }
    base.update(fields)
    return types.LogEntry.pb(types.LogEntry(base))


TEXT = entry(
    text_payload="Cloning alphagov/Whitehall", severity="INFO", labels={EXECUTION: "ingest-x"}
)
JSON = entry(
    json_payload={
        "message": "clone failed",
        "repo": {"owner": "alphagov", "name": "whitehall"},
        "attempt": 2,
        "ok": False,
        "tags": ["git", "timeout"],
        "nothing": None,
    },
    severity="ERROR",
    labels={EXECUTION: "ingest-y", "task": "3"},
)
BARE = entry(resource={"type": "global"}, text_payload="", severity="DEFAULT", insert_id="zzz")


def matches(text: str, view: Any) -> bool:
    return LogFilter.parse(text).matches(view)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", [TEXT, JSON, BARE]),
        ("severity>=ERROR", [JSON]),
        ("severity >= error", [JSON]),
        ("severity>=500", [JSON]),
        ("severity<INFO", [BARE]),
        ("severity=INFO", [TEXT]),
        ("severity!=INFO", [JSON, BARE]),
        ('resource.type="cloud_run_job"', [TEXT, JSON]),
        ("resource.type=cloud_run_job", [TEXT, JSON]),
        ('resource.labels.job_name="ingest"', [TEXT, JSON]),
        ("resource.labels.job_name=ingest-other", []),
        (f'labels."{EXECUTION}"="ingest-x"', [TEXT]),
        (f'labels."{EXECUTION}":"INGEST"', [TEXT, JSON]),
        (f'labels."{EXECUTION}"!="ingest-x"', [JSON]),
        ('logName="projects/p/logs/run.googleapis.com%2Fstdout"', [TEXT, JSON, BARE]),
        ('log_id("run.googleapis.com/stdout")', [TEXT, JSON, BARE]),
        ('log_id("run.googleapis.com/stderr")', []),
        ('textPayload:"whitehall"', [TEXT]),
        ('textPayload="Cloning alphagov/Whitehall"', [TEXT]),
        ('textPayload="cloning alphagov/whitehall"', []),
        ("textPayload:*", [TEXT]),
        ('jsonPayload.message="clone failed"', [JSON]),
        ('jsonPayload.repo.owner="alphagov"', [JSON]),
        ('jsonPayload.repo:"WHITE"', [JSON]),
        ("jsonPayload.attempt>=2", [JSON]),
        ("jsonPayload.attempt>2", []),
        ("jsonPayload.attempt=2", [JSON]),
        ("jsonPayload.ok=false", [JSON]),
        ("jsonPayload.tags=timeout", [JSON]),
        ("jsonPayload.nothing=NULL_VALUE", [JSON]),
        ("jsonPayload.missing:*", []),
        ("jsonPayload.repo.name:*", [JSON]),
        ('jsonPayload.message=~"^clone (ok|failed)$"', [JSON]),
        ('jsonPayload.message!~"ok"', [JSON]),
        (r'textPayload=~"alphagov/\w+hall"', [TEXT]),
        ('insertId="zzz"', [BARE]),
        ('timestamp>="2024-05-01T12:00:00.5Z"', [TEXT, JSON, BARE]),
        ('timestamp>"2024-05-01T12:00:00.5Z"', []),
        (
            'timestamp>="2024-05-01T11:00:00Z" AND timestamp<"2024-05-01T12:00:01Z"',
            [TEXT, JSON, BARE],
        ),
        ('timestamp<"2024-05-01T13:00:01+01:00"', [TEXT, JSON, BARE]),
        ('timestamp<"2024-05-01T12:00:00.4+00:00"', []),
        # boolean structure
        ("severity=INFO OR severity=ERROR", [TEXT, JSON]),
        ("NOT severity=INFO", [JSON, BARE]),
        ("-severity=INFO", [JSON, BARE]),
        ('resource.type="cloud_run_job" -severity>=ERROR', [TEXT]),
        ("(severity=INFO OR severity=ERROR) AND jsonPayload.attempt=2", [JSON]),
        ('resource.type = ("global" OR "cloud_run_job") severity<=INFO', [TEXT, BARE]),
        ("textPayload:(cloning whitehall)", [TEXT]),
        ("textPayload:(cloning NOT whitehall)", []),
        # OR binds tighter than AND in the Logging language
        ('severity=ERROR AND severity=INFO OR insertId="abc"', [JSON]),
        # a field that is absent never satisfies a comparison, even !=
        ('jsonPayload.message!="x"', [JSON]),
        ('NOT jsonPayload.message="x"', [TEXT, JSON, BARE]),
        (f'labels."{EXECUTION}"!="nope"', [TEXT, JSON]),
        # global restrictions
        ('"whitehall"', [TEXT, JSON]),
        ("timeout", [JSON]),
        ("ingest-x", [TEXT]),
        ("error", [JSON]),
    ],
)
def test_filter_selects(text: str, expected: list[Any]) -> None:
    views = [TEXT, JSON, BARE]
    got = [v for v in views if matches(text, v)]
    assert got == expected, text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("severity>=LOUD", "invalid severity"),
        ('timestamp>="yesterday"', "invalid timestamp"),
        ('timestamp>="2024-13-01T00:00:00Z"', "invalid timestamp"),
        ('timestamp:"2024"', "not supported on timestamp"),
        ('protoPayload.methodName="x"', "protoPayload is not supported"),
        ("httpRequest.status=500", "httpRequest is not supported"),
        ('log_name="x"', "did you mean logName"),
        ('nonsense.field="x"', "unknown field"),
        ("resource.labels=x", "needs a field"),
        ('SEARCH("x")', "function SEARCH() is not supported"),
        ("sample(insertId, 0.1)", "function sample() is not supported"),
        ("severity=ERROR and textPayload:x", "must be upper case"),
        ("(severity=ERROR", "expected ')'"),
        ("severity=ERROR)", "unexpected"),
        ("severity=", "expected a value"),
        ("severity>=ERROR AND", "expected a comparison"),
        ('textPayload:"open', "unterminated string"),
        ('textPayload=~"(["', "invalid regular expression"),
        ("textPayload='x'", "unexpected character"),
        ("-- a comment", "comments"),
        ("x" * 20_001, "longer than"),
    ],
)
def test_unsupported_or_malformed_filters_are_errors(text: str, message: str) -> None:
    with pytest.raises(FilterError, match=message.replace("(", r"\(").replace(")", r"\)")):
        LogFilter.parse(text)


def test_quoted_strings_take_escapes() -> None:
    view = entry(text_payload='say "hi"\\now\n')
    assert matches(r'textPayload="say \"hi\"\\now\n"', view)
    assert matches(r'textPayload:"\u0022hi"', view)


def test_quoted_path_segments_and_nested_keys() -> None:
    view = entry(json_payload={"a b": {"c.d": "x"}})
    assert matches('jsonPayload."a b"."c.d"="x"', view)
    assert not matches('jsonPayload."a b".c="x"', view)


def test_timestamps_compare_to_the_nanosecond() -> None:
    assert (
        parse_timestamp("2024-05-01T12:00:00.000000001Z") - parse_timestamp("2024-05-01T12:00:00Z")
        == 1
    )
    assert parse_timestamp("2024-05-01T13:00:00+01:00") == parse_timestamp("2024-05-01T12:00:00Z")
    view = entry(timestamp="2024-05-01T12:00:00.000000500Z")
    assert matches('timestamp>"2024-05-01T12:00:00.0000004Z"', view)
    assert not matches('timestamp>"2024-05-01T12:00:00.0000005Z"', view)
