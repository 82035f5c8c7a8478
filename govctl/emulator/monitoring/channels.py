"""``google.monitoring.v3.NotificationChannelService``: notification channels (e-mail only).

See docs/emulator/monitoring.md for the fidelity of every RPC and the rules enforced.
"""

from __future__ import annotations

import re
from typing import Any

import grpc
from google.cloud import monitoring_v3
from google.protobuf import empty_pb2, field_mask_pb2

from govctl.emulator import rpc
from govctl.emulator.monitoring.resources import (
    CHANNEL_RE,
    MonitoringResources,
    check_labels,
    check_mask,
    copy,
    new_id,
    project_of,
)
from govctl.emulator.rpc import Method, invalid_argument, not_found

ChannelPb: Any = monitoring_v3.NotificationChannel.pb()

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
# What a caller may change on a channel; the rest is output only.
_CHANNEL_FIELDS = ("type_", "display_name", "description", "labels", "user_labels", "enabled")


def _check_channel(channel: Any) -> None:
    if channel.type_ != "email":
        raise invalid_argument(
            f'The emulator supports notification channels of type "email", not {channel.type_!r}.'
        )
    address = channel.labels.get("email_address", "")
    if not _EMAIL.fullmatch(address):
        raise invalid_argument(f"labels.email_address must be an e-mail address, got {address!r}.")
    if set(channel.labels) - {"email_address"}:
        raise invalid_argument(f"Unknown labels for type email: {sorted(channel.labels)}.")
    check_labels(channel.user_labels, "user_labels")


def _is_set(msg: Any, name: str) -> bool:
    field = msg.DESCRIPTOR.fields_by_name[name]
    if field.message_type is not None and field.label != field.LABEL_REPEATED:
        return bool(msg.HasField(name))
    return bool(getattr(msg, name))


class NotificationChannelsRpcs(MonitoringResources):
    def channels_handler(self) -> grpc.GenericRpcHandler:
        m = monitoring_v3
        return rpc.service(
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
        )

    def _channel(self, name: str) -> Any:
        if not CHANNEL_RE.fullmatch(name):
            raise invalid_argument(
                "Name must be formatted "
                f'"projects/[PROJECT_ID]/notificationChannels/[ID]", got {name!r}.'
            )
        found = self.channels.get(name)
        if found is None:
            raise not_found(f"Notification channel {name} does not exist.")
        return found

    def create_notification_channel(self, request: Any, context: Any) -> Any:
        project = project_of(request.name)
        channel = ChannelPb()
        channel.CopyFrom(monitoring_v3.NotificationChannel.pb(request.notification_channel))
        for f in ("name", "creation_record", "mutation_records", "verification_status"):
            channel.ClearField(f)
        _check_channel(channel)
        if not channel.HasField("enabled"):
            channel.enabled.value = True
        with self.lock:
            channel.name = f"projects/{project}/notificationChannels/{new_id()}"
            self.record(channel, "creation_record")
            self.channels[channel.name] = channel
            self.changed()
            return copy(channel)

    def get_notification_channel(self, request: Any, context: Any) -> Any:
        with self.lock:
            return copy(self._channel(request.name))

    def list_notification_channels(self, request: Any, context: Any) -> Any:
        project = project_of(request.name)
        with self.lock:
            found = self.listed(self.channels, project, "notificationChannels", request.filter)
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
                check_mask(mask, _CHANNEL_FIELDS, ChannelPb)
            else:
                mask.paths.extend(f for f in _CHANNEL_FIELDS if _is_set(src, f))
            mask.MergeMessage(src, updated, replace_message_field=True,
                              replace_repeated_field=True)  # fmt: skip
            _check_channel(updated)
            updated.mutation_records.add().mutate_time.FromDatetime(self.cloud.clock.now())
            self.channels[updated.name] = updated
            self.changed()
            return copy(updated)

    def delete_notification_channel(self, request: Any, context: Any) -> Any:
        with self.lock:
            self._channel(request.name)
            users = [p for p in self.policies.values() if request.name in p.notification_channels]
            if users and not request.force:
                raise rpc.failed_precondition(
                    f"Notification channel {request.name} is used by alert policies "
                    f"({', '.join(p.name for p in users)}); pass force=true to delete it anyway."
                )
            for policy in users:
                kept = [c for c in policy.notification_channels if c != request.name]
                del policy.notification_channels[:]
                policy.notification_channels.extend(kept)
            del self.channels[request.name]
            self.changed()
        return empty_pb2.Empty()
