"""``python -m ingestion``: see ``ingestion.cli``."""

from ingestion.cli import main

# Guarded: worker processes (forkserver) import the main module as ``__mp_main__``.
if __name__ == "__main__":
    raise SystemExit(main())
