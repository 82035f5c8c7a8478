"""Cloud Scheduler v1 for the loopback cloud."""
