"""A deeply nested Logging filter is INVALID_ARGUMENT, never UNKNOWN (issue 14, item 8).

Under the 20,000-character limit a filter can nest thousands of levels; the emulator's
recursive-descent parser used to die with "maximum recursion depth exceeded".
"""

from __future__ import annotations

import pytest
from google.api_core import exceptions

from govctl.emulator.logging.filter import MAX_DEPTH
from govctl.emulator.server import Emulator
from govctl.gcp import clients


def _list(filter_: str) -> list[object]:
    return list(
        clients.logging().list_log_entries(
            request={"resource_names": ["projects/demo-project"], "filter": filter_}
        )
    )


@pytest.mark.parametrize(
    "filter_",
    [
        "(" * 5000 + "severity>=ERROR" + ")" * 5000,  # the attack: 10,015 characters
        "NOT " * 4000 + "severity>=ERROR",
        "severity = " + "(" * 4000 + '"ERROR"' + ")" * 4000,
        "severity = (" + "NOT " * 4000 + '"ERROR")',
        "(" * (MAX_DEPTH + 1) + "x" + ")" * (MAX_DEPTH + 1),
    ],
    ids=["parentheses", "not", "value-parentheses", "value-not", "one-too-deep"],
)
def test_too_deep_a_filter_is_invalid_argument(emulator: Emulator, filter_: str) -> None:
    assert len(filter_) <= 20_000
    with pytest.raises(exceptions.InvalidArgument, match="nested more than"):
        _list(filter_)


def test_nesting_up_to_the_limit_still_works(emulator: Emulator) -> None:
    depth = MAX_DEPTH - 1  # the outermost comparison itself counts as one level
    assert _list("(" * depth + "severity>=ERROR" + ")" * depth) == []
    assert _list("NOT " * depth + "severity>=ERROR") == []
