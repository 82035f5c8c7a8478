"""Cloud Monitoring v3 alerting for the loopback cloud: ``google.monitoring.v3.AlertPolicyService``
and ``google.monitoring.v3.NotificationChannelService``.

Policies and channels are stored (raw ``AlertPolicy`` / ``NotificationChannel`` protobufs) and
evaluated on events of the other services (see govctl/emulator/cloud.py): a completed Cloud Run
execution is a point of the completed-execution metric, checked against every enabled
metric-threshold condition; a written log entry is checked against every enabled log-match
condition. A firing policy "e-mails" each of its enabled e-mail channels: one JSON line in
``<state_dir>/mailbox.jsonl`` (see :mod:`.conditions`). Fidelity: docs/emulator/monitoring.md.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from google.cloud import monitoring_v3
from google.protobuf import empty_pb2, field_mask_pb2

from govctl.emulator import rpc
from govctl.emulator.cloud import Cloud, Service
from govctl.emulator.monitoring import conditions
from govctl.emulator.rpc import Method, RpcError, invalid_argument, not_found
from govctl.emulator.state import from_jsonable, to_jsonable
from govctl.emulator.ticker import Ticker

PolicyPb: Any = monitoring_v3.AlertPolicy.pb()
ChannelPb: Any = monitoring_v3.NotificationChannel.pb()
Combiner = monitoring_v3.AlertPolicy.ConditionCombinerType

_PROJECT_RE = re.compile(r"projects/([^/]+)")
_POLICY_RE = re.compile(r"projects/([^/]+)/alertPolicies/([^/]+)")
_CHANNEL_RE = re.compile(r"projects/([^/]+)/notificationChannels/([^/]+)")
_LABEL_KEY = re.compile(r"[a-z][a-z0-9_-]{0,62}")
_LABEL_VALUE = re.compile(r"[a-z0-9_-]{0,63}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
MAX_CONDITIONS = 6
# Metric-absence windows: 120 s (MetricAbsence.duration in alert.proto) to 24.5 h through the
# API ("24 hours if you use the Google Cloud console and 24.5 hours if you use the Cloud
# Monitoring API": cloud.google.com/monitoring/alerts/types-of-conditions).
MIN_ABSENCE = timedelta(seconds=120)
MAX_ABSENCE = timedelta(hours=24, minutes=30)
TICK_SECONDS = 0.5  # how often absence conditions are checked
SENDER = "alerting-noreply@google.com"
# What a caller may change on a policy / a channel; the rest is output only.
_POLICY_FIELDS = ("display_name", "documentation", "user_labels", "conditions", "combiner",
                  "enabled", "notification_channels", "alert_strategy", "severity")  # fmt: skip
_CHANNEL_FIELDS = ("type_", "display_name", "description", "labels", "user_labels", "enabled")


def _project(name: str) -> str:
    m = _PROJECT_RE.fullmatch(name)
    if not m:
        raise invalid_argument(f'Name must be formatted "projects/[PROJECT_ID]", got {name!r}.')
    return m.group(1)


def _new_id() -> str:
    return str(10**18 + secrets.randbelow(9 * 10**18))  # numeric, as Monitoring's ids are


def _check_labels(labels: Any, what: str) -> None:
    if len(labels) > 64:
        raise invalid_argument(f"{what} can have at most 64 entries.")
    for key, value in labels.items():
        if not _LABEL_KEY.fullmatch(key) or not _LABEL_VALUE.fullmatch(value):
            raise invalid_argument(
                f"{what} {key}={value!r}: keys start with a lowercase letter; keys and values "
                "use only lowercase letters, digits, '_' and '-' (at most 63 characters)."
            )


def _duration(d: Any) -> timedelta:
    return timedelta(seconds=d.seconds)


def _enabled(msg: Any) -> bool:
    return not msg.HasField("enabled") or msg.enabled.value


class MonitoringService(Service):
    key = "monitoring"

    def __init__(self, cloud: Cloud) -> None:
        super().__init__(cloud)
        self._policies: dict[str, Any] = {}
        self._channels: dict[str, Any] = {}
        self._last_notified: dict[str, float] = {}  # policy name -> clock timestamp (rate limit)
        # absence condition name -> {"last": timestamp of its last point, "labels": the point's
        # resource labels, "fired": whether this gap was reported}; a condition is absent from
        # here until a point arrives after the policy was made or changed (as in Monitoring).
        self._absence: dict[str, dict[str, Any]] = {}
        self._ticker = Ticker("monitoring-absence", TICK_SECONDS, self.check_absence)

    # validation ---------------------------------------------------------------------------
    def _check_policy(self, policy: Any, project: str) -> None:
        if not policy.display_name.strip():
            raise invalid_argument("The alert policy's display_name is required.")
        if len(policy.display_name) > 512:
            raise invalid_argument("display_name is limited to 512 characters.")
        if not 1 <= len(policy.conditions) <= MAX_CONDITIONS:
            raise invalid_argument(f"A policy has 1 to {MAX_CONDITIONS} conditions.")
        if len(policy.conditions) > 1 and policy.combiner == Combiner.COMBINE_UNSPECIFIED:
            raise invalid_argument("A combiner is required for a policy with several conditions.")
        _check_labels(policy.user_labels, "user_labels")
        has_log = False
        for cond in policy.conditions:
            kind = cond.WhichOneof("condition")
            if kind == "condition_threshold":
                conditions.parse_filter(cond.condition_threshold.filter)
            elif kind == "condition_absent":
                conditions.parse_filter(cond.condition_absent.filter)
                d = _duration(cond.condition_absent.duration)
                if not MIN_ABSENCE <= d <= MAX_ABSENCE or d.total_seconds() % 60:
                    raise invalid_argument(
                        "condition_absent.duration must be a whole number of minutes from 120s "
                        f"to {int(MAX_ABSENCE.total_seconds())}s, got {int(d.total_seconds())}s."
                    )
            elif kind == "condition_matched_log":
                has_log = True
                if not cond.condition_matched_log.filter.strip():
                    raise invalid_argument("condition_matched_log.filter is required.")
                self.cloud.service("logging").matcher(cond.condition_matched_log.filter)
            else:
                raise invalid_argument(
                    f"The emulator supports metric-threshold, metric-absence and log-match "
                    f"conditions, not {kind or 'an empty condition'}."
                )
        if has_log:
            if len(policy.conditions) > 1:
                raise invalid_argument("A log-match condition must be the policy's only one.")
            if not policy.alert_strategy.notification_rate_limit.HasField("period"):
                raise invalid_argument(
                    "alert_strategy.notification_rate_limit is required for log-based policies."
                )
        for channel in policy.notification_channels:
            m = _CHANNEL_RE.fullmatch(channel)
            if not m or m.group(1) != project or channel not in self._channels:
                raise not_found(f"Notification channel {channel} does not exist.")
        if policy.documentation.content and not policy.documentation.mime_type:
            policy.documentation.mime_type = "text/markdown"
        if policy.documentation.mime_type not in ("", "text/markdown"):
            raise invalid_argument('documentation.mime_type must be "text/markdown".')

    @staticmethod
    def _check_channel(channel: Any) -> None:
        if channel.type_ != "email":
            raise invalid_argument(
                f'The emulator supports notification channels of type "email", not '
                f"{channel.type_!r}."
            )
        address = channel.labels.get("email_address", "")
        if not _EMAIL.fullmatch(address):
            raise invalid_argument(
                f"labels.email_address must be an e-mail address, got {address!r}."
            )
        if set(channel.labels) - {"email_address"}:
            raise invalid_argument(f"Unknown labels for type email: {sorted(channel.labels)}.")
        _check_labels(channel.user_labels, "user_labels")

    def _record(self, msg: Any, field: str) -> None:
        getattr(msg, field).mutate_time.FromDatetime(self.cloud.clock.now())
        getattr(msg, field).mutated_by = "govctl-emulator"

    # alert policies -------------------------------------------------------------------------
    def _policy(self, name: str) -> Any:
        if not _POLICY_RE.fullmatch(name):
            raise invalid_argument(
                f'Name must be formatted "projects/[PROJECT_ID]/alertPolicies/[ID]", got {name!r}.'
            )
        found = self._policies.get(name)
        if found is None:
            raise not_found(f"Alert policy {name} does not exist.")
        return found

    def _name_conditions(self, policy: Any, keep: dict[str, Any]) -> None:
        for cond in policy.conditions:
            if cond.name not in keep:
                cond.name = f"{policy.name}/conditions/{_new_id()}"

    def create_alert_policy(self, request: Any, context: Any) -> Any:
        project = _project(request.name)
        policy = PolicyPb()
        policy.CopyFrom(monitoring_v3.AlertPolicy.pb(request.alert_policy))
        for f in ("name", "creation_record", "mutation_record", "validity"):
            policy.ClearField(f)
        for cond in policy.conditions:
            cond.ClearField("name")
        with self.lock:
            self._check_policy(policy, project)
            policy.name = f"projects/{project}/alertPolicies/{_new_id()}"
            self._name_conditions(policy, {})
            if not policy.HasField("enabled"):
                policy.enabled.value = True
            self._record(policy, "creation_record")
            self._record(policy, "mutation_record")
            self._policies[policy.name] = policy
            self.changed()
            return _copy(policy)

    def get_alert_policy(self, request: Any, context: Any) -> Any:
        with self.lock:
            return _copy(self._policy(request.name))

    def list_alert_policies(self, request: Any, context: Any) -> Any:
        project = _project(request.name)
        with self.lock:
            found = self._list(self._policies, project, "alertPolicies", request.filter)
        items, token = rpc.page(found, request.page_size, request.page_token, default_size=100)
        return monitoring_v3.ListAlertPoliciesResponse(
            alert_policies=items, next_page_token=token, total_size=len(found)
        )

    def update_alert_policy(self, request: Any, context: Any) -> Any:
        src = monitoring_v3.AlertPolicy.pb(request.alert_policy)
        mask = field_mask_pb2.FieldMask()
        mask.CopyFrom(monitoring_v3.UpdateAlertPolicyRequest.pb(request).update_mask)
        with self.lock:
            current = self._policy(src.name)
            updated = PolicyPb()
            if mask.paths:
                _check_mask(mask, _POLICY_FIELDS, PolicyPb)
                updated.CopyFrom(current)
                mask.MergeMessage(src, updated, replace_message_field=True,
                                  replace_repeated_field=True)  # fmt: skip
            else:  # an empty mask replaces the whole policy
                updated.CopyFrom(src)
                updated.creation_record.CopyFrom(current.creation_record)
                if not updated.HasField("enabled"):
                    updated.enabled.value = True
            self._check_policy(updated, _POLICY_RE.fullmatch(src.name).group(1))  # type: ignore[union-attr]
            self._name_conditions(updated, {c.name: c for c in current.conditions})
            self._record(updated, "mutation_record")
            self._policies[updated.name] = updated
            for cond in updated.conditions:  # a changed policy waits for a new first point
                self._absence.pop(cond.name, None)
            self.changed()
            return _copy(updated)

    def delete_alert_policy(self, request: Any, context: Any) -> Any:
        with self.lock:
            self._policy(request.name)
            gone = self._policies.pop(request.name)
            self._last_notified.pop(request.name, None)
            for cond in gone.conditions:
                self._absence.pop(cond.name, None)
            self.changed()
        return empty_pb2.Empty()

    # notification channels ------------------------------------------------------------------
    def _channel(self, name: str) -> Any:
        if not _CHANNEL_RE.fullmatch(name):
            raise invalid_argument(
                "Name must be formatted "
                f'"projects/[PROJECT_ID]/notificationChannels/[ID]", got {name!r}.'
            )
        found = self._channels.get(name)
        if found is None:
            raise not_found(f"Notification channel {name} does not exist.")
        return found

    def create_notification_channel(self, request: Any, context: Any) -> Any:
        project = _project(request.name)
        channel = ChannelPb()
        channel.CopyFrom(monitoring_v3.NotificationChannel.pb(request.notification_channel))
        for f in ("name", "creation_record", "mutation_records", "verification_status"):
            channel.ClearField(f)
        self._check_channel(channel)
        if not channel.HasField("enabled"):
            channel.enabled.value = True
        with self.lock:
            channel.name = f"projects/{project}/notificationChannels/{_new_id()}"
            self._record(channel, "creation_record")
            self._channels[channel.name] = channel
            self.changed()
            return _copy(channel)

    def get_notification_channel(self, request: Any, context: Any) -> Any:
        with self.lock:
            return _copy(self._channel(request.name))

    def list_notification_channels(self, request: Any, context: Any) -> Any:
        project = _project(request.name)
        with self.lock:
            found = self._list(self._channels, project, "notificationChannels", request.filter)
        items, token = rpc.page(found, request.page_size, request.page_token, default_size=100)
        return monitoring_v3.ListNotificationChannelsResponse(
            notification_channels=items, next_page_token=token, total_size=len(found)
        )

    def update_notification_channel(self, request: Any, context: Any) -> Any:
        src = monitoring_v3.NotificationChannel.pb(request.notification_channel)
        mask = field_mask_pb2.FieldMask()
        mask.CopyFrom(monitoring_v3.UpdateNotificationChannelRequest.pb(request).update_mask)
        with self.lock:
            current = self._channel(src.name)
            updated = ChannelPb()
            updated.CopyFrom(current)
            if mask.paths:
                _check_mask(mask, _CHANNEL_FIELDS, ChannelPb)
            else:
                mask.paths.extend(f for f in _CHANNEL_FIELDS if _is_set(src, f))
            mask.MergeMessage(src, updated, replace_message_field=True,
                              replace_repeated_field=True)  # fmt: skip
            self._check_channel(updated)
            updated.mutation_records.add().mutate_time.FromDatetime(self.cloud.clock.now())
            self._channels[updated.name] = updated
            self.changed()
            return _copy(updated)

    def delete_notification_channel(self, request: Any, context: Any) -> Any:
        with self.lock:
            self._channel(request.name)
            users = [p for p in self._policies.values() if request.name in p.notification_channels]
            if users and not request.force:
                raise rpc.failed_precondition(
                    f"Notification channel {request.name} is used by alert policies "
                    f"({', '.join(p.name for p in users)}); pass force=true to delete it anyway."
                )
            for policy in users:
                kept = [c for c in policy.notification_channels if c != request.name]
                del policy.notification_channels[:]
                policy.notification_channels.extend(kept)
            del self._channels[request.name]
            self.changed()
        return empty_pb2.Empty()

    def _list(self, store: dict[str, Any], project: str, kind: str, text: str) -> list[Any]:
        prefix = f"projects/{project}/{kind}/"
        terms = conditions.parse_terms(text) if text.strip() else ()
        found = []
        for name, msg in sorted(store.items()):
            if name.startswith(prefix) and conditions.matches(terms, _flat(msg)):
                found.append(_copy(msg))
        return found

    # evaluation -----------------------------------------------------------------------------
    def execution_completed(self, event: dict[str, Any]) -> None:
        point = conditions.execution_point(event)
        project = point["resource.labels.project_id"]
        with self.lock:
            for policy in self._enabled_policies(project):
                self._saw_point(policy, point)
                fired = [
                    c
                    for c in policy.conditions
                    if c.WhichOneof("condition") == "condition_threshold"
                    and conditions.matches(
                        conditions.parse_filter(c.condition_threshold.filter), point
                    )
                    and conditions.compare(
                        c.condition_threshold.comparison, 1.0, c.condition_threshold.threshold_value
                    )
                ]
                if not fired or (
                    policy.combiner != Combiner.OR and len(fired) < len(policy.conditions)
                ):
                    continue
                execution = event["execution"].rsplit("/", 1)[1]
                labels = {
                    k.removeprefix("resource.labels."): v
                    for k, v in point.items()
                    if k.startswith("resource.labels.")
                }
                self._notify(
                    policy,
                    fired[0],
                    resource={"type": point["resource.type"], "labels": labels},
                    summary=(
                        f"Execution {execution} of Cloud Run job "
                        f"{point['resource.labels.job_name']} completed with result "
                        f"{event['result']}: {event['message']}"
                    ),
                    extra={"execution": event["execution"], "job": event["job"]},
                    at=event["time"],
                )

    def _saw_point(self, policy: Any, point: dict[str, str]) -> None:
        for c in policy.conditions:
            if c.WhichOneof("condition") == "condition_absent" and conditions.matches(
                conditions.parse_filter(c.condition_absent.filter), point
            ):
                labels = {
                    k.removeprefix("resource.labels."): v
                    for k, v in point.items()
                    if k.startswith("resource.labels.")
                }
                now = self.cloud.clock.timestamp()
                self._absence[c.name] = {"last": now, "labels": labels, "fired": False}
                self.changed()

    def check_absence(self) -> None:
        """Report each absence condition whose metric has had no point for its duration."""
        now = self.cloud.clock.timestamp()
        with self.lock:
            for policy in self._policies.values():
                if not _enabled(policy):
                    continue
                for c in policy.conditions:
                    seen = self._absence.get(c.name)
                    if c.WhichOneof("condition") != "condition_absent" or not seen:
                        continue
                    window = _duration(c.condition_absent.duration)
                    if seen["fired"] or now - seen["last"] < window.total_seconds():
                        continue
                    seen["fired"] = True
                    self.changed()
                    last = datetime.fromtimestamp(seen["last"], UTC)
                    self._notify(
                        policy,
                        c,
                        resource={"type": conditions.RUN_JOB_RESOURCE, "labels": seen["labels"]},
                        summary=(
                            f"No data for {c.display_name or c.name} in "
                            f"{int(window.total_seconds() // 60)} minutes: the last point of "
                            f"its metric was at {last.isoformat()}."
                        ),
                        extra={"last_point_at": last},
                        at=self.cloud.clock.now(),
                    )

    def entries_written(self, event: dict[str, Any]) -> None:
        with self.lock:
            policies = [
                (p, p.conditions[0])
                for p in self._policies.values()
                if _enabled(p)
                and len(p.conditions) == 1
                and p.conditions[0].WhichOneof("condition") == "condition_matched_log"
            ]
            if not policies:
                return
            logging = self.cloud.service("logging")
            for entry in event["entries"]:
                project = entry.log_name.split("/")[1] if entry.log_name.count("/") >= 3 else ""
                for policy, cond in policies:
                    if not policy.name.startswith(f"projects/{project}/"):
                        continue
                    try:
                        if not logging.matcher(cond.condition_matched_log.filter)(entry):
                            continue
                    except RpcError:
                        continue
                    if self._rate_limited(policy):
                        continue
                    text = _entry_text(entry)
                    resource = {"type": entry.resource.type, "labels": dict(entry.resource.labels)}
                    self._notify(
                        policy,
                        cond,
                        resource=resource,
                        summary=f"Log entry {entry.insert_id} in {entry.log_name} matched: "
                        f"{text or '(no message)'}",
                        extra={"log_name": entry.log_name, "insert_id": entry.insert_id},
                        at=entry.timestamp.ToDatetime(tzinfo=UTC),
                    )

    def _rate_limited(self, policy: Any) -> bool:
        period = _duration(policy.alert_strategy.notification_rate_limit.period).total_seconds()
        now = self.cloud.clock.timestamp()
        last = self._last_notified.get(policy.name)
        if last is not None and now - last < period:
            return True
        self._last_notified[policy.name] = now
        return False

    def _enabled_policies(self, project: str) -> list[Any]:
        prefix = f"projects/{project}/alertPolicies/"
        return [p for n, p in self._policies.items() if n.startswith(prefix) and _enabled(p)]

    def _notify(
        self,
        policy: Any,
        cond: Any,
        *,
        resource: dict[str, Any],
        summary: str,
        extra: dict[str, Any],
        at: datetime,
    ) -> None:
        """One e-mail per enabled e-mail channel of ``policy`` (caller holds the lock)."""
        severity = monitoring_v3.AlertPolicy.Severity(policy.severity).name
        severity = "No severity" if severity == "SEVERITY_UNSPECIFIED" else severity.title()
        labels = ", ".join(f"{k}={v}" for k, v in sorted(resource["labels"].items()))
        subject = f"[ALERT - {severity}] {policy.display_name} on {resource['type']} {labels}"
        doc = policy.documentation.content
        body = "\n".join([
            summary, "",
            f"Policy: {policy.display_name} ({policy.name})",
            f"Condition: {cond.display_name or cond.name}",
            f"Resource: {resource['type']} {labels}",
            *(["", "Documentation:", doc] if doc else []),
        ])  # fmt: skip
        for channel_name in policy.notification_channels:
            channel = self._channels.get(channel_name)
            if channel is None or not _enabled(channel) or channel.type_ != "email":
                continue
            conditions.deliver(self.cloud.state_dir, {
                "time": self.cloud.clock.now(),
                "from": SENDER,
                "to": channel.labels["email_address"],
                "subject": subject,
                "body": body,
                "policy": policy.name,
                "policy_display_name": policy.display_name,
                "condition": cond.display_name,
                "resource": resource,
                "documentation": doc,
                "observed_at": at,
                **extra,
            })  # fmt: skip

    # wiring and persistence -------------------------------------------------------------------
    def start(self) -> None:
        self.cloud.subscribe("run.execution_completed", self.execution_completed)
        self.cloud.subscribe("logging.entries_written", self.entries_written)
        self._ticker.start()

    def stop(self) -> None:
        self._ticker.stop()

    def handlers(self) -> list[grpc.GenericRpcHandler]:
        m = monitoring_v3
        return [
            rpc.service(
                "google.monitoring.v3.AlertPolicyService",
                {
                    "CreateAlertPolicy": Method(
                        self.create_alert_policy, m.CreateAlertPolicyRequest, m.AlertPolicy
                    ),
                    "GetAlertPolicy": Method(
                        self.get_alert_policy, m.GetAlertPolicyRequest, m.AlertPolicy
                    ),
                    "ListAlertPolicies": Method(
                        self.list_alert_policies,
                        m.ListAlertPoliciesRequest,
                        m.ListAlertPoliciesResponse,
                    ),
                    "UpdateAlertPolicy": Method(
                        self.update_alert_policy, m.UpdateAlertPolicyRequest, m.AlertPolicy
                    ),
                    "DeleteAlertPolicy": Method(
                        self.delete_alert_policy, m.DeleteAlertPolicyRequest, empty_pb2.Empty
                    ),
                },
            ),
            rpc.service(
                "google.monitoring.v3.NotificationChannelService",
                {
                    "CreateNotificationChannel": Method(
                        self.create_notification_channel,
                        m.CreateNotificationChannelRequest,
                        m.NotificationChannel,
                    ),
                    "GetNotificationChannel": Method(
                        self.get_notification_channel,
                        m.GetNotificationChannelRequest,
                        m.NotificationChannel,
                    ),
                    "ListNotificationChannels": Method(
                        self.list_notification_channels,
                        m.ListNotificationChannelsRequest,
                        m.ListNotificationChannelsResponse,
                    ),
                    "UpdateNotificationChannel": Method(
                        self.update_notification_channel,
                        m.UpdateNotificationChannelRequest,
                        m.NotificationChannel,
                    ),
                    "DeleteNotificationChannel": Method(
                        self.delete_notification_channel,
                        m.DeleteNotificationChannelRequest,
                        empty_pb2.Empty,
                    ),
                },
            ),
        ]

    def dump(self) -> Any:
        return {
            "alert_policies": [to_jsonable(p) for p in self._policies.values()],
            "notification_channels": [to_jsonable(c) for c in self._channels.values()],
            "absence": self._absence,
        }

    def load(self, data: Any) -> None:
        for rec in (data or {}).get("alert_policies", []):
            policy = monitoring_v3.AlertPolicy.pb(from_jsonable(monitoring_v3.AlertPolicy, rec))
            self._policies[policy.name] = policy
        for rec in (data or {}).get("notification_channels", []):
            channel = monitoring_v3.NotificationChannel.pb(
                from_jsonable(monitoring_v3.NotificationChannel, rec)
            )
            self._channels[channel.name] = channel
        self._absence = dict((data or {}).get("absence", {}))


def _copy(msg: Any) -> Any:
    out = type(msg)()
    out.CopyFrom(msg)
    return out


def _check_mask(mask: Any, allowed: tuple[str, ...], pb: Any) -> None:
    if not mask.IsValidForDescriptor(pb.DESCRIPTOR):
        raise invalid_argument(f"update_mask has an unknown field: {list(mask.paths)}")
    wrong = {p.split(".")[0] for p in mask.paths} - set(allowed)
    if wrong:
        raise invalid_argument(f"update_mask names fields that cannot be updated: {sorted(wrong)}")


def _is_set(msg: Any, name: str) -> bool:
    field = msg.DESCRIPTOR.fields_by_name[name]
    if field.message_type is not None and field.label != field.LABEL_REPEATED:
        return bool(msg.HasField(name))
    return bool(getattr(msg, name))


def _flat(msg: Any) -> dict[str, str]:
    """A policy's or channel's fields as the list filter reads them."""
    flat = {"display_name": msg.display_name}
    if hasattr(msg, "type_"):
        flat["type"] = msg.type_
    for key, value in msg.user_labels.items():
        flat[f"user_labels.{key}"] = value
    return flat


def _entry_text(entry: Any) -> str:
    """What a log entry says: its message, a scheduler attempt's status, or its text."""
    fields = entry.json_payload.fields
    said = [fields[k].string_value for k in ("message", "status", "debugInfo") if k in fields]
    return " ".join(s for s in said if s) or entry.text_payload
