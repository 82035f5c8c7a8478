"""Cloud Build v1 in the loopback cloud (builds that record images in Artifact Registry)."""
