"""The shared resource store: lookups, copies, update masks (AIP-134), etags (AIP-154), paging."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.cloud import run_v2, scheduler_v1
from google.protobuf import field_mask_pb2

from govctl.emulator.rpc import Paging, RpcError, failed_precondition
from govctl.emulator.store import Store, check_etag, masked_update

Job = scheduler_v1.Job


def _job(name: str, description: str = "") -> Any:
    return Job.pb(Job(name=name, description=description, schedule="0 2 * * *"))


def _code(err: pytest.ExceptionInfo[RpcError]) -> grpc.StatusCode:
    return err.value.code


def test_lookups_speak_the_apis_words() -> None:
    store: Store[Any, scheduler_v1.Job] = Store(
        Job, missing="Job not found: {name}.", exists="Job {name} already exists."
    )
    store.add(_job("p/jobs/a"))
    with pytest.raises(RpcError) as err:
        store.add(_job("p/jobs/a"))
    assert (_code(err), err.value.message) == (
        grpc.StatusCode.ALREADY_EXISTS,
        "Job p/jobs/a already exists.",
    )
    with pytest.raises(RpcError) as err:
        store.require("p/jobs/b")
    assert (_code(err), err.value.message) == (
        grpc.StatusCode.NOT_FOUND,
        "Job not found: p/jobs/b.",
    )
    assert store.get("p/jobs/b") is None


def test_copies_out_never_hand_out_the_stored_message() -> None:
    store: Store[Any, scheduler_v1.Job] = Store(Job)
    stored = store.add(_job("p/jobs/a", "kept"))
    out = store.out(stored)
    assert isinstance(out, scheduler_v1.Job)
    out.description = "changed by a caller"
    assert store.require("p/jobs/a").description == "kept"


def test_listing_is_by_name_under_a_prefix_and_survives_dump_and_load() -> None:
    store: Store[Any, scheduler_v1.Job] = Store(Job)
    for name in ("p/jobs/b", "q/jobs/z", "p/jobs/a"):
        store.add(_job(name))
    assert [j.name for j in store.copies("p/jobs/")] == ["p/jobs/a", "p/jobs/b"]
    again: Store[Any, scheduler_v1.Job] = Store(Job)
    again.load(store.dump())
    assert [j.name for j in again.copies("")] == ["p/jobs/a", "p/jobs/b", "q/jobs/z"]


def test_proto_plus_stores_keep_proto_plus_messages() -> None:
    store: Store[run_v2.Job, run_v2.Job] = Store(run_v2.Job, raw=False)
    store.add(run_v2.Job(name="p/jobs/a", labels={"k": "v"}))
    again: Store[run_v2.Job, run_v2.Job] = Store(run_v2.Job, raw=False)
    again.load(store.dump())
    assert isinstance(again.require("p/jobs/a"), run_v2.Job)
    assert again.require("p/jobs/a").labels == {"k": "v"}


def _mask(*paths: str) -> field_mask_pb2.FieldMask:
    return field_mask_pb2.FieldMask(paths=list(paths))


def test_update_mask_follows_aip_134() -> None:
    current = _job("p/jobs/a", "old")
    patch = Job.pb(Job(name="p/jobs/a", schedule="5 * * * *"))
    # No mask: the fields populated in the patch (description is empty, so it is kept).
    updated = masked_update(current, patch, _mask(), ("description", "schedule"))
    assert (updated.description, updated.schedule) == ("old", "5 * * * *")
    # A mask names what changes, even to empty.
    updated = masked_update(current, patch, _mask("description"), ("description", "schedule"))
    assert (updated.description, updated.schedule) == ("", "0 2 * * *")
    assert current.description == "old"  # the stored message is not touched
    # "replace" (an API that says so): the patch as a whole.
    assert masked_update(current, patch, _mask(), (), empty="replace") == patch
    for paths, words in ((("bogus",), "unknown field"), (("name",), "cannot be updated")):
        with pytest.raises(RpcError) as err:
            masked_update(current, patch, _mask(*paths), ("description", "schedule"))
        assert _code(err) == grpc.StatusCode.INVALID_ARGUMENT and words in err.value.message


def test_etags_follow_aip_154() -> None:
    check_etag("", '"abc"', "stale")  # no etag: a blind write
    check_etag('"abc"', '"abc"', "stale")
    with pytest.raises(RpcError) as err:
        check_etag('"old"', '"abc"', "stale")
    assert _code(err) == grpc.StatusCode.ABORTED
    with pytest.raises(RpcError) as err:
        check_etag('"old"', '"abc"', "stale", failed_precondition)
    assert _code(err) == grpc.StatusCode.FAILED_PRECONDITION


def test_paging_follows_aip_158() -> None:
    request = scheduler_v1.ListJobsRequest(page_size=0)
    items = [Job(name=f"p/jobs/{i}") for i in range(7)]
    first = Paging(default=3, maximum=5).respond(
        scheduler_v1.ListJobsResponse, "jobs", items, request
    )
    assert len(first.jobs) == 3 and first.next_page_token
    request = scheduler_v1.ListJobsRequest(page_size=100, page_token=first.next_page_token)
    rest = Paging(default=3, maximum=5).respond(
        scheduler_v1.ListJobsResponse, "jobs", items, request
    )
    assert [j.name for j in rest.jobs] == [f"p/jobs/{i}" for i in range(3, 7)][:5]
    assert not rest.next_page_token
