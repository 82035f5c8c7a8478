"""Cloud Run Admin API v2 in the loopback cloud; executions run as local processes."""
