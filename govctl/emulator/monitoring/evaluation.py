"""When an alert policy fires, and the e-mail it sends.

A completed Cloud Run execution (event ``run.execution_completed``) is a point of the
completed-execution metric: it is checked against every enabled metric-threshold condition and
starts the window of matching metric-absence conditions, which :meth:`Evaluation.check_absence`
(run by the service's ticker) reports once per gap. A written log entry (event
``logging.entries_written``) is checked against every enabled log-match condition, at most once
per rate-limit period. A firing policy "e-mails" each of its enabled e-mail channels: one JSON
line in ``<state_dir>/mailbox.jsonl`` (see :mod:`.conditions`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.cloud import monitoring_v3

from govctl.emulator.monitoring import conditions
from govctl.emulator.monitoring.resources import Combiner, MonitoringResources, duration, enabled
from govctl.emulator.rpc import RpcError

SENDER = "alerting-noreply@google.com"


def _entry_text(entry: Any) -> str:
    """What a log entry says: its message, a scheduler attempt's status, or its text."""
    fields = entry.json_payload.fields
    said = [fields[k].string_value for k in ("message", "status", "debugInfo") if k in fields]
    return " ".join(s for s in said if s) or entry.text_payload


class Evaluation(MonitoringResources):
    # completed executions: threshold and absence conditions --------------------------------
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
                self.absence[c.name] = {"last": now, "labels": labels, "fired": False}
                self.changed()

    def check_absence(self) -> None:
        """Report each absence condition whose metric has had no point for its duration."""
        now = self.cloud.clock.timestamp()
        with self.lock:
            for policy in self.policies:
                if not enabled(policy):
                    continue
                for c in policy.conditions:
                    seen = self.absence.get(c.name)
                    if c.WhichOneof("condition") != "condition_absent" or not seen:
                        continue
                    window = duration(c.condition_absent.duration)
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

    # written log entries: log-match conditions -----------------------------------------------
    def entries_written(self, event: dict[str, Any]) -> None:
        with self.lock:
            policies = [
                (p, p.conditions[0])
                for p in self.policies
                if enabled(p)
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
        period = duration(policy.alert_strategy.notification_rate_limit.period).total_seconds()
        now = self.cloud.clock.timestamp()
        last = self.last_notified.get(policy.name)
        if last is not None and now - last < period:
            return True
        self.last_notified[policy.name] = now
        return False

    def _enabled_policies(self, project: str) -> list[Any]:
        prefix = f"projects/{project}/alertPolicies/"
        return [p for p in self.policies.under(prefix) if enabled(p)]

    # the e-mail --------------------------------------------------------------------------------
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
            channel = self.channels.get(channel_name)
            if channel is None or not enabled(channel) or channel.type_ != "email":
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
