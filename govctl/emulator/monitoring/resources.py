"""The resources of the emulated Cloud Monitoring alerting and the helpers its modules share.

:class:`MonitoringResources` holds alert policies and notification channels (two
:class:`~govctl.emulator.store.Store` s of raw ``AlertPolicy`` / ``NotificationChannel``
protobufs, keyed by name) and the evaluation state (rate limits, absence conditions) under the
service lock; it also has what creating, reading and listing either takes. The RPCs build on it:
:mod:`.policies` (AlertPolicyService), :mod:`.channels` (NotificationChannelService) and
:mod:`.evaluation` (what fires a policy); :mod:`.service` wires them into one
:class:`~govctl.emulator.cloud.Service`.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from google.cloud import monitoring_v3

from govctl.emulator.cloud import Cloud, Service
from govctl.emulator.monitoring import conditions
from govctl.emulator.rpc import Paging, invalid_argument
from govctl.emulator.store import Store, copy

Combiner = monitoring_v3.AlertPolicy.ConditionCombinerType

_PROJECT_RE = re.compile(r"projects/([^/]+)")
CHANNEL_RE = re.compile(r"projects/([^/]+)/notificationChannels/([^/]+)")
_LABEL_KEY = re.compile(r"[a-z][a-z0-9_-]{0,62}")
_LABEL_VALUE = re.compile(r"[a-z0-9_-]{0,63}")


# Monitoring's lists answer with total_size (ListAlertPoliciesResponse, …).
_PAGING = Paging(total_size=True)


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


def _flat(msg: Any) -> dict[str, str]:
    """A policy's or channel's fields as the list filter reads them."""
    flat = {"display_name": msg.display_name}
    if hasattr(msg, "type_"):
        flat["type"] = msg.type_
    for key, value in msg.user_labels.items():
        flat[f"user_labels.{key}"] = value
    return flat


class Kind:
    """One Monitoring collection: its store and how its names look."""

    def __init__(self, message: Any, collection: str, noun: str) -> None:
        self.collection = collection  # "alertPolicies"
        self.pattern = re.compile(rf"projects/([^/]+)/{collection}/([^/]+)")
        self.store: Store[Any, Any] = Store(message, missing=f"{noun} {{name}} does not exist.")

    def require(self, name: str) -> Any:
        """The stored resource; INVALID_ARGUMENT for a malformed name, else NOT_FOUND."""
        if not self.pattern.fullmatch(name):
            raise invalid_argument(
                "Name must be formatted "
                f'"projects/[PROJECT_ID]/{self.collection}/[ID]", got {name!r}.'
            )
        return self.store.require(name)


class MonitoringResources(Service):
    def __init__(self, cloud: Cloud) -> None:
        super().__init__(cloud)
        self.policy_kind = Kind(monitoring_v3.AlertPolicy, "alertPolicies", "Alert policy")
        self.channel_kind = Kind(
            monitoring_v3.NotificationChannel, "notificationChannels", "Notification channel"
        )
        self.policies = self.policy_kind.store
        self.channels = self.channel_kind.store
        self.last_notified: dict[str, float] = {}  # policy name -> clock timestamp (rate limit)
        # absence condition name -> {"last": timestamp of its last point, "labels": the point's
        # resource labels, "fired": whether this gap was reported}; a condition is absent from
        # here until a point arrives after the policy was made or changed (as in Monitoring).
        self.absence: dict[str, dict[str, Any]] = {}

    def record(self, msg: Any, field: str) -> None:
        getattr(msg, field).mutate_time.FromDatetime(self.cloud.clock.now())
        getattr(msg, field).mutated_by = "govctl-emulator"

    def create(
        self,
        kind: Kind,
        request: Any,
        template: Any,
        clear: tuple[str, ...],
        check: Callable[..., None],
    ) -> Any:
        """Create a policy or channel from ``template`` (a request field): output-only fields
        ``clear`` ed, ``check`` ed, named with a new id, enabled unless it says otherwise."""
        project = project_of(request.name)
        msg = kind.store.stored(template)
        for f in clear:
            msg.ClearField(f)
        with self.lock:
            check(msg, project)
            msg.name = f"projects/{project}/{kind.collection}/{new_id()}"
            if not msg.HasField("enabled"):
                msg.enabled.value = True
            self.record(msg, "creation_record")
            return msg

    def listed(self, kind: Kind, request: Any, response: Any, field: str) -> Any:
        """A List response: the project's resources of ``kind`` that pass the list filter."""
        project = project_of(request.name)
        terms = conditions.parse_terms(request.filter) if request.filter.strip() else ()
        with self.lock:
            found = [
                copy(msg)
                for msg in kind.store.under(f"projects/{project}/{kind.collection}/")
                if conditions.matches(terms, _flat(msg))
            ]
        return _PAGING.respond(response, field, found, request)
