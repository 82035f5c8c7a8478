"""The resources of the emulated Cloud Monitoring alerting and the helpers its modules share.

:class:`MonitoringResources` holds alert policies and notification channels (raw
``AlertPolicy`` / ``NotificationChannel`` protobufs, keyed by name) and the evaluation state
(rate limits, absence conditions) under the service lock. The RPCs build on it:
:mod:`.policies` (AlertPolicyService), :mod:`.channels` (NotificationChannelService) and
:mod:`.evaluation` (what fires a policy); :mod:`.service` wires them into one
:class:`~govctl.emulator.cloud.Service`.
"""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from typing import Any

from google.cloud import monitoring_v3

from govctl.emulator.cloud import Cloud, Service
from govctl.emulator.monitoring import conditions
from govctl.emulator.rpc import invalid_argument

Combiner = monitoring_v3.AlertPolicy.ConditionCombinerType

_PROJECT_RE = re.compile(r"projects/([^/]+)")
CHANNEL_RE = re.compile(r"projects/([^/]+)/notificationChannels/([^/]+)")
_LABEL_KEY = re.compile(r"[a-z][a-z0-9_-]{0,62}")
_LABEL_VALUE = re.compile(r"[a-z0-9_-]{0,63}")


def project_of(name: str) -> str:
    m = _PROJECT_RE.fullmatch(name)
    if not m:
        raise invalid_argument(f'Name must be formatted "projects/[PROJECT_ID]", got {name!r}.')
    return m.group(1)


def new_id() -> str:
    return str(10**18 + secrets.randbelow(9 * 10**18))  # numeric, as Monitoring's ids are


def check_labels(labels: Any, what: str) -> None:
    if len(labels) > 64:
        raise invalid_argument(f"{what} can have at most 64 entries.")
    for key, value in labels.items():
        if not _LABEL_KEY.fullmatch(key) or not _LABEL_VALUE.fullmatch(value):
            raise invalid_argument(
                f"{what} {key}={value!r}: keys start with a lowercase letter; keys and values "
                "use only lowercase letters, digits, '_' and '-' (at most 63 characters)."
            )


def duration(d: Any) -> timedelta:
    return timedelta(seconds=d.seconds)


def enabled(msg: Any) -> bool:
    return not msg.HasField("enabled") or msg.enabled.value


def copy(msg: Any) -> Any:
    out = type(msg)()
    out.CopyFrom(msg)
    return out


def check_mask(mask: Any, allowed: tuple[str, ...], pb: Any) -> None:
    if not mask.IsValidForDescriptor(pb.DESCRIPTOR):
        raise invalid_argument(f"update_mask has an unknown field: {list(mask.paths)}")
    wrong = {p.split(".")[0] for p in mask.paths} - set(allowed)
    if wrong:
        raise invalid_argument(f"update_mask names fields that cannot be updated: {sorted(wrong)}")


def _flat(msg: Any) -> dict[str, str]:
    """A policy's or channel's fields as the list filter reads them."""
    flat = {"display_name": msg.display_name}
    if hasattr(msg, "type_"):
        flat["type"] = msg.type_
    for key, value in msg.user_labels.items():
        flat[f"user_labels.{key}"] = value
    return flat


class MonitoringResources(Service):
    def __init__(self, cloud: Cloud) -> None:
        super().__init__(cloud)
        self.policies: dict[str, Any] = {}
        self.channels: dict[str, Any] = {}
        self.last_notified: dict[str, float] = {}  # policy name -> clock timestamp (rate limit)
        # absence condition name -> {"last": timestamp of its last point, "labels": the point's
        # resource labels, "fired": whether this gap was reported}; a condition is absent from
        # here until a point arrives after the policy was made or changed (as in Monitoring).
        self.absence: dict[str, dict[str, Any]] = {}

    def record(self, msg: Any, field: str) -> None:
        getattr(msg, field).mutate_time.FromDatetime(self.cloud.clock.now())
        getattr(msg, field).mutated_by = "govctl-emulator"

    def listed(self, store: dict[str, Any], project: str, kind: str, text: str) -> list[Any]:
        """Copies of the project's ``kind`` in ``store`` that pass the list filter ``text``."""
        prefix = f"projects/{project}/{kind}/"
        terms = conditions.parse_terms(text) if text.strip() else ()
        found = []
        for name, msg in sorted(store.items()):
            if name.startswith(prefix) and conditions.matches(terms, _flat(msg)):
                found.append(copy(msg))
        return found
