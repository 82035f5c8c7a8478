"""The emulator's REST face: HTTP/1.1 JSON transcoded to the same servicers as gRPC.

:mod:`.registry` lists the served RPCs and their ``google.api.http`` rules, :mod:`.templates`
matches path templates, :mod:`.transcode` maps JSON to protobuf and back, :mod:`.gateway`
routes and answers (errors in Google's envelope), :mod:`.server` is the HTTP server;
:mod:`.knative` is the Cloud Run Admin API v1 view ``gcloud run jobs`` uses and
:mod:`.crm_v1` the Resource Manager v1 IAM methods ``gcloud projects`` uses; :mod:`.gcloud`
says how to point gcloud here. See docs/emulator.md ("REST and gcloud").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the package stays light: `govctl emulator env` imports .gcloud only
    from govctl.emulator.registry import Registry
    from govctl.emulator.rest.server import RestServer


def build(host: str, port: int, served: Registry) -> RestServer:
    """The gateway for the emulator's RPC registry, on ``host:port``."""
    from govctl.emulator.rest import crm_v1, knative, registry
    from govctl.emulator.rest.gateway import Gateway
    from govctl.emulator.rest.server import RestServer

    routes = [*knative.routes(), *crm_v1.routes()]
    return RestServer(host, port, Gateway(registry.from_registry(served), routes))
