"""Cloud Monitoring alerting as govctl sees it: e-mail notification channels and alert
policies of one or more conditions (metric threshold, metric absence, log match).

Policies carry no etag: an update is read-modify-write guarded by the policy's
``mutation_record.mutate_time``, re-read just before the write (as scheduler jobs are).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from govctl.errors import CloudError
from govctl.gcp import clients
from govctl.gcp.errors import translate

if TYPE_CHECKING:
    from google.cloud import monitoring_v3

THRESHOLD, ABSENCE, LOG_MATCH = "metric-threshold", "metric-absence", "log-match"
# The fields govctl manages, as UpdateAlertPolicy's / UpdateNotificationChannel's masks name them.
POLICY_PATHS = ("display_name", "documentation", "user_labels", "conditions", "combiner",
                "enabled", "notification_channels", "alert_strategy")  # fmt: skip
CHANNEL_PATHS = ("display_name", "user_labels", "enabled")
# Metric conditions look at 5-minute sums of the (DELTA) execution counts.
ALIGNMENT = timedelta(minutes=5)
CONCURRENT_FIX = "someone changed it since govctl read it; rerun `govctl alerts set`"


@dataclass(frozen=True)
class Channel:
    """An e-mail notification channel (other types are read with ``email`` empty)."""

    display_name: str
    email: str
    enabled: bool = True
    user_labels: dict[str, str] = field(default_factory=dict)
    type: str = "email"
    name: str = ""  # projects/P/notificationChannels/ID once it exists


@dataclass(frozen=True)
class Condition:
    display_name: str
    kind: str  # THRESHOLD, ABSENCE, LOG_MATCH, or the API's name of another kind
    filter: str
    duration: timedelta | None = None  # how long data must be absent (ABSENCE)


@dataclass(frozen=True)
class Policy:
    display_name: str
    conditions: tuple[Condition, ...]
    channels: tuple[str, ...]  # notification channel names
    documentation: str  # markdown
    user_labels: dict[str, str] = field(default_factory=dict)
    enabled: bool = True
    rate_limit: timedelta | None = None  # at most one notification per period (log-based)
    name: str = ""
    updated: datetime | None = None  # mutation_record.mutate_time, to detect a change


# Reading --------------------------------------------------------------------------------


def _channel(msg: monitoring_v3.NotificationChannel) -> Channel:
    return Channel(
        display_name=msg.display_name,
        email=msg.labels.get("email_address", "") if msg.type_ == "email" else "",
        enabled=_on(msg.enabled),
        user_labels=dict(msg.user_labels),
        type=msg.type_,
        name=msg.name,
    )


def _on(value: Any) -> bool:
    # proto-plus gives a BoolValue as bool, or None when unset (which means enabled)
    return True if value is None else bool(value)


def _seconds(value: Any) -> timedelta:
    # proto-plus gives Duration fields as timedelta
    return value if isinstance(value, timedelta) else timedelta(seconds=value.seconds)


def _condition(msg: monitoring_v3.AlertPolicy.Condition) -> Condition:
    pb = type(msg).pb(msg)
    kind = pb.WhichOneof("condition") or ""
    if kind == "condition_threshold":
        return Condition(msg.display_name, THRESHOLD, msg.condition_threshold.filter)
    if kind == "condition_absent":
        return Condition(msg.display_name, ABSENCE, msg.condition_absent.filter,
                         _seconds(msg.condition_absent.duration))  # fmt: skip
    if kind == "condition_matched_log":
        return Condition(msg.display_name, LOG_MATCH, msg.condition_matched_log.filter)
    return Condition(msg.display_name, kind.removeprefix("condition_"), "")


def _policy(msg: monitoring_v3.AlertPolicy) -> Policy:
    strategy = msg.alert_strategy.notification_rate_limit
    mutated = msg.mutation_record.mutate_time if "mutation_record" in msg else None
    return Policy(
        display_name=msg.display_name,
        conditions=tuple(_condition(c) for c in msg.conditions),
        channels=tuple(msg.notification_channels),
        documentation=msg.documentation.content,
        user_labels=dict(msg.user_labels),
        enabled=_on(msg.enabled),
        rate_limit=_seconds(strategy.period) if "period" in strategy else None,
        name=msg.name,
        updated=mutated,
    )


def list_channels(project: str) -> list[Channel]:
    with translate(f"list notification channels of project {project}"):
        pager = clients.notification_channels().list_notification_channels(
            name=f"projects/{project}"
        )
        return [_channel(c) for c in pager]


def list_policies(project: str) -> list[Policy]:
    with translate(f"list alert policies of project {project}"):
        pager = clients.alert_policies().list_alert_policies(name=f"projects/{project}")
        return [_policy(p) for p in pager]


# Writing --------------------------------------------------------------------------------


def _channel_msg(spec: Channel) -> monitoring_v3.NotificationChannel:
    from google.cloud import monitoring_v3

    return monitoring_v3.NotificationChannel(
        name=spec.name,
        type_="email",
        display_name=spec.display_name,
        labels={"email_address": spec.email},
        user_labels=spec.user_labels,
        enabled=spec.enabled,
    )


def _condition_msg(spec: Condition) -> monitoring_v3.AlertPolicy.Condition:
    from google.cloud import monitoring_v3

    cond = monitoring_v3.AlertPolicy.Condition
    aggregation = monitoring_v3.Aggregation(
        alignment_period=ALIGNMENT, per_series_aligner=monitoring_v3.Aggregation.Aligner.ALIGN_SUM
    )
    if spec.kind == THRESHOLD:
        return cond(
            display_name=spec.display_name,
            condition_threshold=cond.MetricThreshold(
                filter=spec.filter,
                comparison=monitoring_v3.ComparisonType.COMPARISON_GT,
                threshold_value=0,
                duration=timedelta(0),
                aggregations=[aggregation],
                trigger=cond.Trigger(count=1),
            ),
        )
    if spec.kind == ABSENCE:
        return cond(
            display_name=spec.display_name,
            condition_absent=cond.MetricAbsence(
                filter=spec.filter,
                duration=spec.duration,
                aggregations=[aggregation],
                trigger=cond.Trigger(count=1),
            ),
        )
    if spec.kind == LOG_MATCH:
        return cond(
            display_name=spec.display_name,
            condition_matched_log=cond.LogMatch(filter=spec.filter),
        )
    raise ValueError(f"govctl does not write {spec.kind} conditions")


def _policy_msg(spec: Policy) -> monitoring_v3.AlertPolicy:
    from google.cloud import monitoring_v3

    strategy = None
    if spec.rate_limit is not None:
        strategy = monitoring_v3.AlertPolicy.AlertStrategy(
            notification_rate_limit={"period": spec.rate_limit}
        )
    return monitoring_v3.AlertPolicy(
        name=spec.name,
        display_name=spec.display_name,
        documentation={"content": spec.documentation, "mime_type": "text/markdown"},
        user_labels=spec.user_labels,
        conditions=[_condition_msg(c) for c in spec.conditions],
        combiner=monitoring_v3.AlertPolicy.ConditionCombinerType.OR,
        enabled=spec.enabled,
        notification_channels=list(spec.channels),
        alert_strategy=strategy,
    )


def create_channel(project: str, spec: Channel) -> Channel:
    with translate(f"create notification channel for {spec.email}"):
        made = clients.notification_channels().create_notification_channel(
            name=f"projects/{project}", notification_channel=_channel_msg(spec)
        )
    return _channel(made)


def update_channel(spec: Channel) -> Channel:
    with translate(f"update notification channel {spec.name}"):
        made = clients.notification_channels().update_notification_channel(
            notification_channel=_channel_msg(spec), update_mask={"paths": list(CHANNEL_PATHS)}
        )
    return _channel(made)


def delete_channel(name: str, *, force: bool = True) -> None:
    """Delete a channel, and with ``force`` its mention in any policy. Without ``force`` a
    channel a policy still uses is refused (DeleteNotificationChannelRequest.force: "If false,
    this operation will fail if the notification channel is referenced by existing alerting
    policies"): FAILED_PRECONDITION. NotFound when it is gone already."""
    with translate(f"delete notification channel {name}"):
        clients.notification_channels().delete_notification_channel(name=name, force=force)


def delete_policy(name: str) -> None:
    """Delete an alert policy (`gcloud alpha monitoring policies delete`: there is no GA
    command); NotFound when gone."""
    with translate(f"delete alert policy {name}"):
        clients.alert_policies().delete_alert_policy(name=name)


def create_policy(project: str, spec: Policy) -> Policy:
    with translate(f"create alert policy {spec.display_name!r}"):
        made = clients.alert_policies().create_alert_policy(
            name=f"projects/{project}", alert_policy=_policy_msg(spec)
        )
    return _policy(made)


def update_policy(spec: Policy, seen: datetime | None) -> Policy:
    """Replace the managed fields of policy ``spec.name``, unless it changed since ``seen``."""
    what = f"update alert policy {spec.display_name!r}"
    client = clients.alert_policies()
    with translate(what):
        now = _policy(client.get_alert_policy(name=spec.name))
    if seen is not None and now.updated != seen:
        raise CloudError(f"{what}: it changed since the plan was made", fix=CONCURRENT_FIX)
    with translate(what):
        made = client.update_alert_policy(
            alert_policy=_policy_msg(spec), update_mask={"paths": list(POLICY_PATHS)}
        )
    return _policy(made)
