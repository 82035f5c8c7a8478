"""The emulator's white-box tests: each exercises one emulated API, so every API starts
enabled in every project (API enablement itself: test_service_disabled.py, which asks for
Google's defaults explicitly)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from govctl.emulator.iam import service as iam_service
from govctl.emulator.iam.service_usage import SERVICE_CATALOG


@pytest.fixture(scope="package", autouse=True)
def every_api_enabled() -> Iterator[None]:
    # Package-wide, before the module-scoped emulators of this package start; undone after.
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(iam_service, "ENABLED_IN_NEW_PROJECTS", frozenset(SERVICE_CATALOG))
        yield
