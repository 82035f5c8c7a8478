"""A one-off gRPC server that answers a few methods its own way (a quota error, a refusal),
for behaviour the emulator has no reason to produce. Not a mock: the official client talks
to it over a real channel."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager

import grpc


@contextmanager
def stand_in(
    service: str, methods: dict[str, grpc.RpcMethodHandler], port: int = 0
) -> Iterator[str]:
    """Serve ``methods`` of ``service`` on a loopback port (a free one unless ``port``);
    yield ``127.0.0.1:PORT``."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, methods),))
    port = server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(None)
