"""Project IAM, service accounts and Service Usage for the loopback cloud."""
