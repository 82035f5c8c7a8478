"""``google.monitoring.v3.AlertPolicyService``: alert policies, and what a valid one is.

See docs/emulator/monitoring.md for the fidelity of every RPC and the rules enforced.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from google.cloud import monitoring_v3
from google.protobuf import empty_pb2

from govctl.emulator.apis import Bound, gapic_api
from govctl.emulator.monitoring import conditions
from govctl.emulator.monitoring.resources import (
    CHANNEL_RE,
    Combiner,
    MonitoringResources,
    check_labels,
    duration,
    new_id,
    project_of,
)
from govctl.emulator.rpc import invalid_argument, not_found
from govctl.emulator.store import copy, masked_update

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
    def policies_rpcs(self) -> Bound:
        return gapic_api("google.cloud.monitoring_v3.services.alert_policy_service").bind(
            {
                "CreateAlertPolicy": self.create_alert_policy,
                "GetAlertPolicy": self.get_alert_policy,
                "ListAlertPolicies": self.list_alert_policies,
                "UpdateAlertPolicy": self.update_alert_policy,
                "DeleteAlertPolicy": self.delete_alert_policy,
            }
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
        kinds = [self._check_condition(cond) for cond in policy.conditions]
        if "condition_matched_log" in kinds:
            _check_log_policy(policy)
        for channel in policy.notification_channels:
            m = CHANNEL_RE.fullmatch(channel)
            if not m or m.group(1) != project or channel not in self.channels:
                raise not_found(f"Notification channel {channel} does not exist.")
        _check_documentation(policy.documentation)

    def _check_condition(self, cond: Any) -> str:
        """Check one condition; its kind."""
        kind = cond.WhichOneof("condition")
        if kind == "condition_threshold":
            conditions.parse_filter(cond.condition_threshold.filter)
        elif kind == "condition_absent":
            _check_absent(cond.condition_absent)
        elif kind == "condition_matched_log":
            if not cond.condition_matched_log.filter.strip():
                raise invalid_argument("condition_matched_log.filter is required.")
            self.cloud.service("logging").matcher(cond.condition_matched_log.filter)
        else:
            raise invalid_argument(
                f"The emulator supports metric-threshold, metric-absence and log-match "
                f"conditions, not {kind or 'an empty condition'}."
            )
        return str(kind)

    # alert policies -------------------------------------------------------------------------
    def _name_conditions(self, policy: Any, keep: dict[str, Any]) -> None:
        for cond in policy.conditions:
            if cond.name not in keep:
                cond.name = f"{policy.name}/conditions/{new_id()}"

    def _check_new(self, policy: Any, project: str) -> None:
        for cond in policy.conditions:
            cond.ClearField("name")
        self._check_policy(policy, project)

    def create_alert_policy(self, request: Any, context: Any) -> Any:
        clear = ("name", "creation_record", "mutation_record", "validity")
        with self.lock:
            policy = self.create(
                self.policy_kind, request, request.alert_policy, clear, self._check_new
            )
            self._name_conditions(policy, {})
            self.record(policy, "mutation_record")
            self.policies.add(policy)
            self.changed()
            return copy(policy)

    def get_alert_policy(self, request: Any, context: Any) -> Any:
        with self.lock:
            return copy(self.policy_kind.require(request.name))

    def list_alert_policies(self, request: Any, context: Any) -> Any:
        response = monitoring_v3.ListAlertPoliciesResponse
        return self.listed(self.policy_kind, request, response, "alert_policies")

    def update_alert_policy(self, request: Any, context: Any) -> Any:
        src = monitoring_v3.AlertPolicy.pb(request.alert_policy)
        mask = monitoring_v3.UpdateAlertPolicyRequest.pb(request).update_mask
        with self.lock:
            current = self.policy_kind.require(src.name)
            # An empty mask replaces the whole policy (UpdateAlertPolicyRequest.update_mask).
            updated = masked_update(current, src, mask, _POLICY_FIELDS, empty="replace")
            if not mask.paths:
                updated.creation_record.CopyFrom(current.creation_record)
                if not updated.HasField("enabled"):
                    updated.enabled.value = True
            self._check_policy(updated, project_of(src.name.split("/alertPolicies/")[0]))
            self._name_conditions(updated, {c.name: c for c in current.conditions})
            self.record(updated, "mutation_record")
            self.policies.put(updated)
            for cond in updated.conditions:  # a changed policy waits for a new first point
                self.absence.pop(cond.name, None)
            self.changed()
            return copy(updated)

    def delete_alert_policy(self, request: Any, context: Any) -> Any:
        with self.lock:
            gone = self.policies.remove(self.policy_kind.require(request.name).name)
            self.last_notified.pop(request.name, None)
            for cond in gone.conditions:
                self.absence.pop(cond.name, None)
            self.changed()
        return empty_pb2.Empty()


def _check_absent(absent: Any) -> None:
    conditions.parse_filter(absent.filter)
    d = duration(absent.duration)
    if not MIN_ABSENCE <= d <= MAX_ABSENCE or d.total_seconds() % 60:
        raise invalid_argument(
            "condition_absent.duration must be a whole number of minutes from 120s "
            f"to {int(MAX_ABSENCE.total_seconds())}s, got {int(d.total_seconds())}s."
        )


def _check_documentation(documentation: Any) -> None:
    if documentation.content and not documentation.mime_type:
        documentation.mime_type = "text/markdown"
    if documentation.mime_type not in ("", "text/markdown"):
        raise invalid_argument('documentation.mime_type must be "text/markdown".')


def _check_log_policy(policy: Any) -> None:
    if len(policy.conditions) > 1:
        raise invalid_argument("A log-match condition must be the policy's only one.")
    if not policy.alert_strategy.notification_rate_limit.HasField("period"):
        raise invalid_argument(
            "alert_strategy.notification_rate_limit is required for log-based policies."
        )
