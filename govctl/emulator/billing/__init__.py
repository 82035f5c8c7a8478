"""Cloud Billing Catalog v1 for the loopback cloud."""
