"""Artifact Registry v1 in the loopback cloud (Docker repositories, images, tags)."""
