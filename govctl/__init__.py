"""govctl: the operator toolkit for the govreposcrape Cloud Run Job."""

__version__ = "0.1.0"
