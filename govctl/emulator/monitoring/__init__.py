"""Cloud Monitoring v3 alerting (policies, notification channels) in the loopback cloud."""
