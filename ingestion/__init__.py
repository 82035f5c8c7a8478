"""The govreposcrape ingestion job: feed → shard → skip unchanged → clone → digest → upload."""

# Bump when the digest bytes for the same commit and settings change: every repository is redone.
INGEST_VERSION = "2"
