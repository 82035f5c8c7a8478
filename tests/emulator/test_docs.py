"""docs/emulator.md lists every RPC the emulator serves (the table must not fall behind)."""

from __future__ import annotations

import re
from pathlib import Path

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
