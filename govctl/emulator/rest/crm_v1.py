"""Resource Manager v1's project IAM methods, which ``gcloud projects get-iam-policy`` and
``add-iam-policy-binding`` call (``POST /v1/projects/{project}:getIamPolicy``, then
``:setIamPolicy``), answered by the emulator's Resource Manager v3 ``Projects`` methods.

v1 names the project by its id where v3 says ``projects/{id}``; the request and response
bodies are the same ``google.iam.v1`` messages (https://cloud.google.com/resource-manager/
reference/rest/v1/projects/getIamPolicy and /v3/projects/getIamPolicy). googleapis publishes
no v1 proto, hence a hand-written route rather than a transcoded rule.
"""

from __future__ import annotations

import re
from typing import Any

from google.protobuf import json_format

from govctl.emulator.rest.gateway import Gateway, NativeRoute, Request
from govctl.emulator.rest.transcode import parse_body

V3 = "google.cloud.resourcemanager.v3.Projects"


def _iam(method: str) -> Any:
    def handle(gateway: Gateway, request: Request, m: re.Match[str]) -> Any:
        body = parse_body(request.body)
        if not isinstance(body, dict):
            body = {}
        body["resource"] = f"projects/{m.group('project')}"
        return json_format.MessageToDict(gateway.call(f"{V3}.{method}", body))

    return handle


def routes() -> list[NativeRoute]:
    return [
        NativeRoute(
            "POST",
            re.compile(rf"/v1/projects/(?P<project>[^/:]+):{verb}"),
            _iam(method),
            api="cloudresourcemanager.googleapis.com",
        )
        for verb, method in (
            ("getIamPolicy", "GetIamPolicy"),
            ("setIamPolicy", "SetIamPolicy"),
            ("testIamPermissions", "TestIamPermissions"),
        )
    ]
