"""docs/emulator.md lists every RPC the emulator serves (the table must not fall behind)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from govctl.emulator.server import Emulator

DOC = Path(__file__).resolve().parents[2] / "docs" / "emulator.md"


def test_every_served_rpc_is_in_the_docs_table() -> None:
    text = DOC.read_text(encoding="utf-8")
    table = text[text.index("## Every RPC") :]
    documented: dict[str, set[str]] = {}
    service = ""
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or not cells[0]:
            continue
        if cells[0].startswith("**"):
            service = re.findall(r"`([\w.]+)`", cells[0])[-1]
            continue
        documented.setdefault(service, set()).update(re.findall(r"\b[A-Z]\w+\b", cells[0]))

    served = _served()
    missing = {s: sorted(m - documented.get(s, set())) for s, m in served.items()}
    assert {s: m for s, m in missing.items() if m} == {}


# Services whose page in docs/emulator/ has an RPC table that must list every served RPC.
PAGES = {
    "google.devtools.artifactregistry.v1.ArtifactRegistry": "artifactregistry.md",
    "google.devtools.cloudbuild.v1.CloudBuild": "cloudbuild.md",
    "google.monitoring.v3.AlertPolicyService": "monitoring.md",
    "google.monitoring.v3.NotificationChannelService": "monitoring.md",
    "google.cloud.discoveryengine.v1.DataStoreService": "discoveryengine.md",
    "google.cloud.discoveryengine.v1.DocumentService": "discoveryengine.md",
    "google.cloud.discoveryengine.v1.SearchService": "discoveryengine.md",
    "google.cloud.secretmanager.v1.SecretManagerService": "secretmanager.md",
}


def test_every_served_rpc_is_in_its_service_page() -> None:
    served = {name: methods for name, methods in _served().items() if name in PAGES}
    assert set(served) == set(PAGES)
    for service, page in PAGES.items():
        text = (DOC.parent / "emulator" / page).read_text(encoding="utf-8")
        table = text[text.index("## RPCs") :]
        rows = {
            name
            for line in table.splitlines()
            if line.startswith("| ")
            for name in re.findall(r"\b[A-Z][A-Za-z]+\b", line.split("|")[1])
        }
        assert served[service] - rows == set(), page


def _served() -> dict[str, set[str]]:
    """gRPC service name -> the methods a started emulator serves (its registry)."""
    emu = Emulator(storage=False)
    emu.start()
    try:
        return {api.full_name: set(api.methods) for api in emu.cloud.registry()}
    finally:
        emu.stop()


# The REST column of every RPC table: each served RPC's google.api.http rule ---------------------
# A page's services, in the order a bare method name is looked up (emulator.md names its
# service in the bold rows instead).
PAGE_SERVICES = {
    "run.md": ["google.cloud.run.v2.Jobs", "google.cloud.run.v2.Executions",
               "google.cloud.run.v2.Tasks", "google.longrunning.Operations"],
    "scheduler.md": ["google.cloud.scheduler.v1.CloudScheduler"],
    "logging.md": ["google.logging.v2.LoggingServiceV2"],
    "iam.md": ["google.cloud.resourcemanager.v3.Projects", "google.iam.admin.v1.IAM",
               "google.api.serviceusage.v1.ServiceUsage"],
    "billing.md": ["google.cloud.billing.v1.CloudCatalog", "google.cloud.billing.v1.CloudBilling"],
    **{page: [s for s, p in PAGES.items() if p == page] + ["google.longrunning.Operations"]
       for page in set(PAGES.values())},
}  # fmt: skip
_PREFIXES = {"Projects": 0, "IAM": 1, "ServiceUsage": 2, "Jobs": 0, "Executions": 1, "Tasks": 2,
             "Operations": 3}  # fmt: skip


def served_rules() -> dict[str, dict[str, list[tuple[str, str]]]]:
    """service -> method -> [(HTTP verb, path template)] of every RPC the gateway routes."""
    out: dict[str, dict[str, list[tuple[str, str]]]] = {}
    emu = Emulator(storage=False)
    emu.start()
    try:
        for rpc in emu._rest.gateway.rpcs.values():
            rules = [(r.WhichOneof("pattern"), r) for r in rpc.rules]
            out.setdefault(rpc.service, {})[rpc.method] = [
                (kind.upper(), getattr(r, kind)) for kind, r in rules
            ]
    finally:
        emu.stop()
    return out


def _methods(first: str, services: list[str], rules: dict[str, Any]) -> list[tuple[str, str]]:
    named = re.findall(r"`([\w.]+)`", first)
    if named and named[-1] in rules:
        services = [named[-1]]
    text = re.sub(r"\bGet/Set(\w+)", r"Get\1 Set\1", first)
    found = []
    for prefix, method in re.findall(r"(?:\b(\w+)[./])?\b([A-Z]\w+)\b", text):
        order = services
        if prefix in _PREFIXES and len(services) > _PREFIXES[prefix]:
            order = [services[_PREFIXES[prefix]]]
        service = next((s for s in order if method in rules.get(s, {})), None)
        if service is not None and (service, method) not in found:
            found.append((service, method))
    return found


def rest_cell(first: str, services: list[str], rules: dict[str, Any]) -> str:
    """What the REST column says for a row whose first cell is ``first``."""
    if first.strip().startswith("**"):
        return ""
    parts = []
    for service, method in _methods(first, services, rules):
        bindings = rules[service][method]
        verb, path = bindings[0]
        more = f" (+{len(bindings) - 1})" if len(bindings) > 1 else ""
        parts.append(f"`{verb} {path}`{more}")
    return "<br>".join(parts) or "—"


def rpc_tables_of(page: str, lines: list[str]) -> Iterator[tuple[int, str, list[str]]]:
    """(line index, line, services) of every row of the page's RPC tables."""
    services = list(PAGE_SERVICES.get(page, []))
    inside = False
    for i, line in enumerate(lines):
        if not line.startswith("|"):
            inside = False
            continue
        first = line.split("|")[1].strip()
        if first in ("RPC", "Service / RPC"):
            inside = True
        if not inside:
            continue
        if page == "emulator.md" and first.startswith("**"):
            names = re.findall(r"`([\w.]+)`", first)
            services = names[-1:] or services
        yield i, line, services


def test_every_rpc_row_shows_its_rest_rule() -> None:
    rules = served_rules()
    pages = [DOC, *sorted((DOC.parent / "emulator").glob("*.md"))]
    checked = 0
    for path in pages:
        lines = path.read_text(encoding="utf-8").splitlines()
        for i, line, services in rpc_tables_of(path.name, lines):
            cells = [c.strip() for c in line.split("|")]
            if cells[1] in ("RPC", "Service / RPC"):
                assert cells[2] == "REST", f"{path.name}:{i + 1}: no REST column"
                continue
            if set(cells[1]) <= set("-"):
                continue
            expected = rest_cell(cells[1], services, rules)
            assert cells[2] == expected, f"{path.name}:{i + 1}: REST cell should be {expected}"
            checked += 1
    assert checked > 80
