"""The source of a build: its ``storage_source`` tarball, read from fake-gcs-server."""

from __future__ import annotations

import urllib.error

from govctl.emulator import storage
from govctl.emulator.cloudbuild.resources import Failed, FailureType


def fetch(base: str | None, bucket: str, obj: str, generation: int) -> bytes:
    """The object's bytes from fake-gcs-server at ``base`` (``cloud.storage_url``);
    :class:`Failed` (FETCH_SOURCE_FAILED) says why not."""
    if not base:
        raise Failed(FailureType.FETCH_SOURCE_FAILED, "the emulator runs without storage")
    try:
        return storage.read(base, storage.object_path(bucket, obj, generation))
    except urllib.error.HTTPError as err:
        if err.code == 404:
            raise Failed(
                FailureType.FETCH_SOURCE_FAILED,
                f"failed to fetch source: object gs://{bucket}/{obj} does not exist",
            ) from None
        raise Failed(
            FailureType.FETCH_SOURCE_FAILED, f"failed to fetch source: HTTP {err.code}"
        ) from None
    except OSError as err:
        raise Failed(FailureType.FETCH_SOURCE_FAILED, f"failed to fetch source: {err}") from None
