"""``google.monitoring.v3.NotificationChannelService``: notification channels (e-mail only).

See docs/emulator/monitoring.md for the fidelity of every RPC and the rules enforced.
"""

from __future__ import annotations

import re
from typing import Any

from google.cloud import monitoring_v3
from google.protobuf import empty_pb2

from govctl.emulator.apis import Bound, gapic_api
from govctl.emulator.monitoring.resources import MonitoringResources, check_labels
from govctl.emulator.rpc import failed_precondition, invalid_argument
from govctl.emulator.store import copy, masked_update

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


class NotificationChannelsRpcs(MonitoringResources):
    def channels_rpcs(self) -> Bound:
        api = gapic_api("google.cloud.monitoring_v3.services.notification_channel_service")
        return api.bind(
            {
                "CreateNotificationChannel": self.create_notification_channel,
                "GetNotificationChannel": self.get_notification_channel,
                "ListNotificationChannels": self.list_notification_channels,
                "UpdateNotificationChannel": self.update_notification_channel,
                "DeleteNotificationChannel": self.delete_notification_channel,
            }
        )

    def create_notification_channel(self, request: Any, context: Any) -> Any:
        clear = ("name", "creation_record", "mutation_records", "verification_status")
        with self.lock:
            channel = self.create(
                self.channel_kind,
                request,
                request.notification_channel,
                clear,
                lambda channel, project: _check_channel(channel),
            )
            self.channels.add(channel)
            self.changed()
            return copy(channel)

    def get_notification_channel(self, request: Any, context: Any) -> Any:
        with self.lock:
            return copy(self.channel_kind.require(request.name))

    def list_notification_channels(self, request: Any, context: Any) -> Any:
        response = monitoring_v3.ListNotificationChannelsResponse
        return self.listed(self.channel_kind, request, response, "notification_channels")

    def update_notification_channel(self, request: Any, context: Any) -> Any:
        src = monitoring_v3.NotificationChannel.pb(request.notification_channel)
        mask = monitoring_v3.UpdateNotificationChannelRequest.pb(request).update_mask
        with self.lock:
            current = self.channel_kind.require(src.name)
            updated = masked_update(current, src, mask, _CHANNEL_FIELDS)
            _check_channel(updated)
            updated.mutation_records.add().mutate_time.FromDatetime(self.cloud.clock.now())
            self.channels.put(updated)
            self.changed()
            return copy(updated)

    def delete_notification_channel(self, request: Any, context: Any) -> Any:
        with self.lock:
            self.channel_kind.require(request.name)
            users = [p for p in self.policies if request.name in p.notification_channels]
            if users and not request.force:
                raise failed_precondition(
                    f"Notification channel {request.name} is used by alert policies "
                    f"({', '.join(p.name for p in users)}); pass force=true to delete it anyway."
                )
            for policy in users:
                kept = [c for c in policy.notification_channels if c != request.name]
                del policy.notification_channels[:]
                policy.notification_channels.extend(kept)
            self.channels.remove(request.name)
            self.changed()
        return empty_pb2.Empty()
