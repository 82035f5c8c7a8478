#!/usr/bin/env bash
# Compile ingestion/requirements.lock from ingestion/requirements.in with uv: every package of
# the resolution pinned, with the SHA-256 of each of its files on PyPI, so the image's
# `pip install --require-hashes` gets exactly these bytes (ingestion/Dockerfile).
#
# One resolution for every platform and Python >= 3.11 (--universal: a package only some
# platforms need carries a marker). Versions already in the lock are kept unless the inputs
# need others; to move everything to the newest versions, pass --upgrade.
#
# Edit requirements.in (and pyproject.toml's pin where the digest fingerprint depends on it:
# gitingest, pathspec), run this, commit both files.
#
# Usage: scripts/lock-ingestion.sh [--upgrade]     (needs uv: `pip install uv`)
set -euo pipefail
cd "$(dirname "$0")/.."
UV="${UV:-$(command -v uv || echo .venv/bin/uv)}"
if ! [ -x "$UV" ]; then
  echo "uv not found: pip install uv (or set UV=/path/to/uv)" >&2
  exit 2
fi
# The machine's CA bundle (networks with a TLS-inspecting proxy need it), when there is one.
[ -f /etc/ssl/certs/ca-certificates.crt ] && export SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
"$UV" pip compile ingestion/requirements.in \
  --output-file ingestion/requirements.lock \
  --universal --python-version 3.11 --generate-hashes \
  --custom-compile-command "scripts/lock-ingestion.sh" \
  --quiet "$@"
echo "wrote ingestion/requirements.lock ($(grep -c '^[a-z0-9]' ingestion/requirements.lock) packages)" >&2
