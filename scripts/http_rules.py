"""Regenerate govctl/emulator/data/http_rules.json from Google's own protos.

The emulator's REST gateway transcodes by the ``google.api.http`` annotation of each method.
The installed client libraries register the messages of these APIs but not their service
descriptors (proto-plus packages carry no services), so the annotations are read here, once,
from the googleapis repository the protos come from, and kept as data beside the prices.

    python -m venv /tmp/tools && /tmp/tools/bin/pip install grpcio-tools pyyaml
    /tmp/tools/bin/python scripts/http_rules.py GOOGLEAPIS_CHECKOUT COMMIT

``GOOGLEAPIS_CHECKOUT`` holds ``google/...`` of https://github.com/googleapis/googleapis at
``COMMIT``. Each method's rule comes from its proto; the ``google.longrunning.Operations``
rules (a mixin: no proto of the API declares them) come from the ``http.rules`` of the API's
service configuration (``*_v*.yaml`` beside the protos), as Google's front ends take them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]
from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2, json_format

# (proto declaring services the emulator serves, that API's service configuration)
SOURCES = [
    ("google/cloud/run/v2/job.proto", "google/cloud/run/v2/run_v2.yaml"),
    ("google/cloud/run/v2/execution.proto", "google/cloud/run/v2/run_v2.yaml"),
    ("google/cloud/run/v2/task.proto", "google/cloud/run/v2/run_v2.yaml"),
    (
        "google/cloud/scheduler/v1/cloudscheduler.proto",
        "google/cloud/scheduler/v1/cloudscheduler_v1.yaml",
    ),
    ("google/logging/v2/logging.proto", "google/logging/v2/logging_v2.yaml"),
    ("google/cloud/billing/v1/cloud_catalog.proto", "google/cloud/billing/v1/cloudbilling_v1.yaml"),
    ("google/cloud/billing/v1/cloud_billing.proto", "google/cloud/billing/v1/cloudbilling_v1.yaml"),
    (
        "google/cloud/resourcemanager/v3/projects.proto",
        "google/cloud/resourcemanager/v3/cloudresourcemanager_v3.yaml",
    ),
    ("google/iam/admin/v1/iam.proto", "google/iam/admin/v1/iam.yaml"),
    (
        "google/api/serviceusage/v1/serviceusage.proto",
        "google/api/serviceusage/v1/serviceusage_v1.yaml",
    ),
    (
        "google/devtools/artifactregistry/v1/service.proto",
        "google/devtools/artifactregistry/v1/artifactregistry_v1.yaml",
    ),
    (
        "google/devtools/cloudbuild/v1/cloudbuild.proto",
        "google/devtools/cloudbuild/v1/cloudbuild_v1.yaml",
    ),
    ("google/monitoring/v3/alert_service.proto", "google/monitoring/v3/monitoring.yaml"),
    ("google/monitoring/v3/notification_service.proto", "google/monitoring/v3/monitoring.yaml"),
    (
        "google/cloud/secretmanager/v1/service.proto",
        "google/cloud/secretmanager/v1/secretmanager_v1.yaml",
    ),
    (
        "google/cloud/discoveryengine/v1/data_store_service.proto",
        "google/cloud/discoveryengine/v1/discoveryengine_v1.yaml",
    ),
    (
        "google/cloud/discoveryengine/v1/document_service.proto",
        "google/cloud/discoveryengine/v1/discoveryengine_v1.yaml",
    ),
    (
        "google/cloud/discoveryengine/v1/search_service.proto",
        "google/cloud/discoveryengine/v1/discoveryengine_v1.yaml",
    ),
]
MIXINS = ("google.longrunning.Operations.",)


def compile_protos(root: Path) -> descriptor_pb2.FileDescriptorSet:
    import grpc_tools  # type: ignore[import-untyped]

    well_known = Path(grpc_tools.__file__).parent / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "set.pb"
        protos = sorted({proto for proto, _ in SOURCES})
        subprocess.run(
            [
                sys.executable,
                "-m",
                "grpc_tools.protoc",
                f"-I{root}",
                f"-I{well_known}",
                f"--descriptor_set_out={out}",
                *protos,
            ],
            check=True,
        )
        return descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())


def rule_json(rule: http_pb2.HttpRule) -> dict[str, Any]:
    return json_format.MessageToDict(rule)


def api_hosts(root: Path) -> dict[str, str]:
    """proto file -> the API's host (the service configuration's ``name``)."""
    return {
        proto: yaml.safe_load((root / config).read_text())["name"] for proto, config in SOURCES
    }


def method_rules(fds: descriptor_pb2.FileDescriptorSet, hosts: dict[str, str]) -> dict[str, Any]:
    services: dict[str, Any] = {}
    for f in fds.file:
        for svc in f.service:
            full = f"{f.package}.{svc.name}"
            methods = {}
            for m in svc.method:
                if not m.options.HasExtension(annotations_pb2.http):
                    continue
                methods[m.name] = {
                    "input": m.input_type.lstrip("."),
                    "output": m.output_type.lstrip("."),
                    "client_streaming": m.client_streaming,
                    "server_streaming": m.server_streaming,
                    "http": rule_json(m.options.Extensions[annotations_pb2.http]),
                }
            services[full] = {"proto": f.name, "host": hosts[f.name], "methods": methods}
    return services


def mixin_rules(root: Path) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """``{service: {method: [rule, ...]}}`` from every API's service configuration."""
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for config in sorted({cfg for _, cfg in SOURCES}):
        data = yaml.safe_load((root / config).read_text())
        for raw in (data.get("http") or {}).get("rules", []):
            selector = raw["selector"]
            if not selector.startswith(MIXINS):
                continue
            service, _, method = selector.rpartition(".")
            rule = json_format.ParseDict(
                {k: v for k, v in raw.items() if k != "selector"}, http_pb2.HttpRule()
            )
            rules = out.setdefault(service, {}).setdefault(method, [])
            flat = [rule, *rule.additional_bindings]
            for one in flat:
                one.ClearField("additional_bindings")
                entry = rule_json(one) | {"config": config}
                if not any(r | {"config": ""} == entry | {"config": ""} for r in rules):
                    rules.append(entry)
    return out


def main() -> None:
    root, commit = Path(sys.argv[1]), sys.argv[2]
    data = {
        "source": f"https://github.com/googleapis/googleapis/tree/{commit}",
        "generated_by": "scripts/http_rules.py",
        "services": method_rules(compile_protos(root), api_hosts(root)),
        "mixins": mixin_rules(root),
    }
    target = Path(__file__).resolve().parents[1] / "govctl/emulator/data/http_rules.json"
    target.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
