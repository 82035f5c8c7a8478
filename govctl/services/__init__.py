"""What the commands mean (deploy, run, ...), on top of the gcp adapters."""
