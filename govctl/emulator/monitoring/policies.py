"""``google.monitoring.v3.AlertPolicyService``: alert policies, and what a valid one is.

See docs/emulator/monitoring.md for the fidelity of every RPC and the rules enforced.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import grpc
from google.cloud import monitoring_v3
from google.protobuf import empty_pb2, field_mask_pb2

from govctl.emulator import rpc
from govctl.emulator.monitoring import conditions
from govctl.emulator.monitoring.resources import (
    CHANNEL_RE,
    Combiner,
    MonitoringResources,
    check_labels,
    check_mask,
    copy,
    duration,
    new_id,
    project_of,
)
from govctl.emulator.rpc import Method, invalid_argument, not_found

PolicyPb: Any = monitoring_v3.AlertPolicy.pb()

_POLICY_RE = re.compile(r"projects/([^/]+)/alertPolicies/([^/]+)")
MAX_CONDITIONS = 6
# Metric-absence windows: 120 s (MetricAbsence.duration in alert.proto) to 24.5 h through the
# API ("24 hours if you use the Google Cloud console and 24.5 hours if you use the Cloud
# Monitoring API": cloud.google.com/monitoring/alerts/types-of-conditions).
MIN_ABSENCE = timedelta(seconds=120)
MAX_ABSENCE = timedelta(hours=24, minutes=30)
# What a caller may change on a policy; the rest is output only.
_POLICY_FIELDS = ("display_name", "documentation", "user_labels", "conditions", "combiner",
                  "enabled", "notification_channels", "alert_strategy", "severity")  # fmt: skip


class AlertPoliciesRpcs(MonitoringResources):
    def policies_handler(self) -> grpc.GenericRpcHandler:
        m = monitoring_v3
        return rpc.service(
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
        )

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
        check_labels(policy.user_labels, "user_labels")
        has_log = False
        for cond in policy.conditions:
            kind = cond.WhichOneof("condition")
            if kind == "condition_threshold":
                conditions.parse_filter(cond.condition_threshold.filter)
            elif kind == "condition_absent":
                conditions.parse_filter(cond.condition_absent.filter)
                d = duration(cond.condition_absent.duration)
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
            m = CHANNEL_RE.fullmatch(channel)
            if not m or m.group(1) != project or channel not in self.channels:
                raise not_found(f"Notification channel {channel} does not exist.")
        if policy.documentation.content and not policy.documentation.mime_type:
            policy.documentation.mime_type = "text/markdown"
        if policy.documentation.mime_type not in ("", "text/markdown"):
            raise invalid_argument('documentation.mime_type must be "text/markdown".')

    # alert policies -------------------------------------------------------------------------
    def _policy(self, name: str) -> Any:
        if not _POLICY_RE.fullmatch(name):
            raise invalid_argument(
                f'Name must be formatted "projects/[PROJECT_ID]/alertPolicies/[ID]", got {name!r}.'
            )
        found = self.policies.get(name)
        if found is None:
            raise not_found(f"Alert policy {name} does not exist.")
        return found

    def _name_conditions(self, policy: Any, keep: dict[str, Any]) -> None:
        for cond in policy.conditions:
            if cond.name not in keep:
                cond.name = f"{policy.name}/conditions/{new_id()}"

    def create_alert_policy(self, request: Any, context: Any) -> Any:
        project = project_of(request.name)
        policy = PolicyPb()
        policy.CopyFrom(monitoring_v3.AlertPolicy.pb(request.alert_policy))
        for f in ("name", "creation_record", "mutation_record", "validity"):
            policy.ClearField(f)
        for cond in policy.conditions:
            cond.ClearField("name")
        with self.lock:
            self._check_policy(policy, project)
            policy.name = f"projects/{project}/alertPolicies/{new_id()}"
            self._name_conditions(policy, {})
            if not policy.HasField("enabled"):
                policy.enabled.value = True
            self.record(policy, "creation_record")
            self.record(policy, "mutation_record")
            self.policies[policy.name] = policy
            self.changed()
            return copy(policy)

    def get_alert_policy(self, request: Any, context: Any) -> Any:
        with self.lock:
            return copy(self._policy(request.name))

    def list_alert_policies(self, request: Any, context: Any) -> Any:
        project = project_of(request.name)
        with self.lock:
            found = self.listed(self.policies, project, "alertPolicies", request.filter)
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
                check_mask(mask, _POLICY_FIELDS, PolicyPb)
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
            self.record(updated, "mutation_record")
            self.policies[updated.name] = updated
            for cond in updated.conditions:  # a changed policy waits for a new first point
                self.absence.pop(cond.name, None)
            self.changed()
            return copy(updated)

    def delete_alert_policy(self, request: Any, context: Any) -> Any:
        with self.lock:
            self._policy(request.name)
            gone = self.policies.pop(request.name)
            self.last_notified.pop(request.name, None)
            for cond in gone.conditions:
                self.absence.pop(cond.name, None)
            self.changed()
        return empty_pb2.Empty()
