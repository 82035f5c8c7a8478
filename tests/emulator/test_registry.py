"""The registry of served RPCs: read from Google's client libraries, usable without gRPC."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from google.api import annotations_pb2, http_pb2
from google.cloud import run_v2
from google.longrunning import operations_pb2
from google.protobuf import json_format

from govctl.emulator.apis import gapic_api, pb2_api, pb_class
from govctl.emulator.cloud import Cloud, Service
from govctl.emulator.operations import Operations, OperationsRouter
from govctl.emulator.registry import Registry, build
from govctl.emulator.rpc import RpcError
from govctl.emulator.server import Emulator
from govctl.gcp import clients


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    emu = Emulator(storage=False)
    emu.start()
    try:
        yield emu.cloud.registry()
    finally:
        emu.stop()


def test_every_served_method_is_described_by_googles_descriptor(registry: Registry) -> None:
    apis = list(registry)
    assert len(apis) >= 15
    for api in apis:
        assert api.descriptor.full_name == api.full_name
        for name, endpoint in api.methods.items():
            assert endpoint.descriptor.full_name == f"{api.full_name}.{name}"
            assert endpoint.path == f"/{api.full_name}/{name}"
            request = pb_class(endpoint.request).DESCRIPTOR.full_name
            assert endpoint.descriptor.input_type.full_name == request
            response = pb_class(endpoint.response).DESCRIPTOR.full_name
            assert endpoint.descriptor.output_type.full_name == response
            assert callable(endpoint.handler)


def test_kinds_and_types_come_from_the_client_library(registry: Registry) -> None:
    tail = registry["google.logging.v2.LoggingServiceV2"].methods["TailLogEntries"]
    assert tail.kind == "stream_stream"
    create = registry["google.cloud.run.v2.Jobs"].methods["CreateJob"]
    assert create.kind == "unary_unary"
    assert create.request is run_v2.CreateJobRequest
    assert create.response is operations_pb2.Operation
    # Logging asked for raw requests: its handlers take the _pb2 message.
    write = registry["google.logging.v2.LoggingServiceV2"].methods["WriteLogEntries"]
    assert write.request.__name__ == "WriteLogEntriesRequest"
    assert write.request is write.request_pb_class()


def _rule(method: str, uri: str, body: str = "") -> http_pb2.HttpRule:
    rule = http_pb2.HttpRule(body=body)
    setattr(rule, method, uri)
    return rule


def test_http_rules_are_the_protos(registry: Registry) -> None:
    create = registry["google.cloud.run.v2.Jobs"].methods["CreateJob"]
    assert create.http_rules == (_rule("post", "/v2/{parent=projects/*/locations/*}/jobs", "job"),)
    assert create.descriptor.GetOptions().Extensions[annotations_pb2.http] == create.http_rules[0]
    pause = registry["google.cloud.scheduler.v1.CloudScheduler"].methods["PauseJob"]
    assert pause.http_rules == (
        _rule("post", "/v1/{name=projects/*/locations/*/jobs/*}:pause", "*"),
    )
    # Operations: its own rule, then the paths under which the APIs mix it in.
    get = registry["google.longrunning.Operations"].methods["GetOperation"]
    uris = [r.get for r in get.http_rules]
    assert uris[0] == "/v1/{name=operations/**}"
    assert "/v2/{name=projects/*/locations/*/operations/*}" in uris  # Cloud Run's
    # Logging ships no REST transport: no rule is known (see docs/emulator.md).
    write = registry["google.logging.v2.LoggingServiceV2"].methods["WriteLogEntries"]
    assert write.http_rules == ()


def test_a_handler_is_callable_from_json_without_grpc(emulator: Emulator) -> None:
    """What a REST gateway does: JSON → request → handler → response message."""
    endpoint = emulator.cloud.registry()["google.cloud.scheduler.v1.CloudScheduler"].methods[
        "CreateJob"
    ]
    parent = "projects/demo-project/locations/europe-west2"
    body = {
        "parent": parent,
        "job": {
            "name": f"{parent}/jobs/from-json",
            "schedule": "0 2 * * *",
            "httpTarget": {"uri": "https://example.com/hook"},
        },
    }
    pb = json_format.ParseDict(body, endpoint.request_pb_class()())
    response = endpoint.response_pb(endpoint.handler(endpoint.request_from_pb(pb), None))
    assert json_format.MessageToDict(response)["state"] == "ENABLED"
    # The same job, read through gRPC.
    assert clients.scheduler().get_job(name=f"{parent}/jobs/from-json").schedule == "0 2 * * *"


def test_an_unknown_method_or_a_second_table_is_refused() -> None:
    api = gapic_api("google.cloud.scheduler_v1.services.cloud_scheduler")
    with pytest.raises(ValueError, match="no method GetJobs"):
        api.bind({"GetJobs": lambda request, context: None})
    table = api.bind({"GetJob": lambda request, context: None})
    with pytest.raises(ValueError, match="bound twice"):
        build([table, table])


def test_operations_go_to_the_store_that_claims_them() -> None:
    cloud = Cloud()
    builds = Operations(Service(cloud), claims=lambda name: name.startswith("operations/build/"))
    rest = Operations(Service(cloud))
    router = OperationsRouter([rest, builds])
    mine = builds.new("operations/build/p/abc", operations_pb2.Operation())
    other = rest.new("projects/p/locations/l/operations/1", operations_pb2.Operation())
    get = operations_pb2.GetOperationRequest
    assert router.get_operation(get(name=mine.name), None).name == mine.name
    assert router.get_operation(get(name=other.name), None).name == other.name
    with pytest.raises(RpcError) as err:
        router.get_operation(get(name="operations/build/p/missing"), None)
    assert err.value.code == grpc.StatusCode.NOT_FOUND
    with pytest.raises(ValueError, match="only one"):
        OperationsRouter([rest, Operations(Service(cloud))])


def test_pb2_services_keep_their_real_descriptor() -> None:
    service = operations_pb2.DESCRIPTOR.services_by_name["Operations"]
    api = pb2_api(service)
    assert api.descriptor is service
    assert api.methods["GetOperation"].request is operations_pb2.GetOperationRequest
