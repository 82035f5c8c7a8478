"""Preloaded by the digest workers' fork server (see ``ingestion.pipeline.process_pool``).

Importing the digest code and compiling gitingest's default ignore patterns is done here once;
every worker forked from the server inherits it, including the workers pebble starts again
after a timeout.
"""

from ingestion.digest import init_worker

init_worker()
