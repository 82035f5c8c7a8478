"""Cloud Monitoring v3 alerting for the loopback cloud: ``google.monitoring.v3.AlertPolicyService``
and ``google.monitoring.v3.NotificationChannelService``.

Policies and channels are stored (raw ``AlertPolicy`` / ``NotificationChannel`` protobufs) by
:mod:`.resources`, served by :mod:`.policies` and :mod:`.channels`, and evaluated on events of
the other services (see govctl/emulator/cloud.py) by :mod:`.evaluation`: a completed Cloud Run
execution is a point of the completed-execution metric, checked against every enabled
metric-threshold condition; a written log entry is checked against every enabled log-match
condition. A firing policy "e-mails" each of its enabled e-mail channels: one JSON line in
``<state_dir>/mailbox.jsonl`` (see :mod:`.conditions`). This module wires them into one
:class:`~govctl.emulator.cloud.Service`. Fidelity: docs/emulator/monitoring.md.
"""

from __future__ import annotations

from typing import Any

from govctl.emulator.apis import Bound
from govctl.emulator.cloud import Cloud
from govctl.emulator.monitoring.channels import NotificationChannelsRpcs
from govctl.emulator.monitoring.evaluation import Evaluation
from govctl.emulator.monitoring.policies import AlertPoliciesRpcs
from govctl.emulator.ticker import Ticker

TICK_SECONDS = 0.5  # how often absence conditions are checked


class MonitoringService(AlertPoliciesRpcs, NotificationChannelsRpcs, Evaluation):
    key = "monitoring"

    def __init__(self, cloud: Cloud) -> None:
        super().__init__(cloud)
        self._ticker = Ticker("monitoring-absence", TICK_SECONDS, self.check_absence)

    # wiring and persistence -------------------------------------------------------------------
    def start(self) -> None:
        self.cloud.subscribe("run.execution_completed", self.execution_completed)
        self.cloud.subscribe("logging.entries_written", self.entries_written)
        self._ticker.start()

    def stop(self) -> None:
        self._ticker.stop()

    def rpcs(self) -> list[Bound]:
        return [self.policies_rpcs(), self.channels_rpcs()]

    def dump(self) -> Any:
        return {
            "alert_policies": self.policies.dump(),
            "notification_channels": self.channels.dump(),
            "absence": self.absence,
        }

    def load(self, data: Any) -> None:
        data = data or {}
        self.policies.load(data.get("alert_policies", []))
        self.channels.load(data.get("notification_channels", []))
        self.absence = dict(data.get("absence", {}))
