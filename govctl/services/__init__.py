"""What each command means, between the CLI (parsing, rendering) and the gcp adapters."""
