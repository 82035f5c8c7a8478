"""The settings that make a plain ``gcloud`` talk to the emulator's REST gateway.

All are gcloud's own properties set through the environment
(https://cloud.google.com/sdk/docs/properties, ``gcloud topic configurations``): the gateway
is gcloud's HTTP proxy (``proxy/type``, ``proxy/address``, ``proxy/port``), so requests to
regional hosts such as ``us-central1-<endpoint host>`` (gcloud run's) reach it too; every API
gcloud uses for the runbook has its endpoint overridden to plain ``http://`` (so nothing is
tunnelled); credentials are off (the emulator needs none). ``CLOUDSDK_CONFIG`` gives gcloud a
configuration directory of its own inside the emulator's state directory: ``gcloud config
set project P`` then changes nothing of the user's real configuration.
"""

from __future__ import annotations

from pathlib import Path

# gcloud's API names (``CLOUDSDK_API_ENDPOINT_OVERRIDES_<NAME>``) for the APIs the emulator
# serves over REST.
APIS = (
    "artifactregistry",
    "cloudbilling",
    "cloudbuild",
    "cloudresourcemanager",
    "cloudscheduler",
    "discoveryengine",
    "iam",
    "logging",
    "monitoring",
    "run",
    "secretmanager",
    "serviceusage",
)
# The emulator's one principal (govctl.emulator.run.resources.PRINCIPAL): some commands
# (`gcloud run jobs deploy`) insist on an active account before any request.
ACCOUNT = "emulator@example.com"


def endpoint(api: str, port: int) -> str:
    """The override for ``api``: its Google host name under ``.localhost`` (RFC 6761, a
    loopback name), so the gateway routes by host as Google's front end does (Run's and
    Scheduler's ``/v1/projects/P/locations/L/jobs/J`` are different methods), and gcloud's
    regional hosts (``us-central1-run.googleapis.com.localhost``) keep naming the API. The
    requests reach the gateway as its proxy, never by that name."""
    return f"http://{api}.googleapis.com.localhost:{port}/"


def gcloud_env(host: str, port: int, state_dir: Path | None) -> dict[str, str]:
    env = {
        "CLOUDSDK_PROXY_TYPE": "http",
        "CLOUDSDK_PROXY_ADDRESS": host,
        "CLOUDSDK_PROXY_PORT": str(port),
        "CLOUDSDK_AUTH_DISABLE_CREDENTIALS": "true",
        "CLOUDSDK_CORE_ACCOUNT": ACCOUNT,
        "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "true",
        "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "true",
        "CLOUDSDK_SURVEY_DISABLE_PROMPTS": "true",
    }
    if state_dir is not None:
        env["CLOUDSDK_CONFIG"] = str(state_dir / "gcloud")
    for api in APIS:
        env[f"CLOUDSDK_API_ENDPOINT_OVERRIDES_{api.upper()}"] = endpoint(api, port)
    return env
