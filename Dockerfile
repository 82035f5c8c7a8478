# The ingestion job's one image: `python -m ingestion` (Cloud Run Job; podman/docker locally).
# BASE defaults to the official slim Python; tests build on a Debian base made with debootstrap
# (scripts/podman-base.sh) because no registry is reachable there. Both have Python >= 3.11.
ARG BASE=python:3.12-slim
FROM ${BASE}

# git does the clones. The debootstrap base already has it; the slim image does not.
# Unpinned on purpose: the Debian archive drops old versions, a pin would break rebuilds.
# hadolint ignore=DL3008
RUN if ! command -v git >/dev/null; then \
      apt-get update \
      && apt-get install -y --no-install-recommends git ca-certificates \
      && rm -rf /var/lib/apt/lists/*; \
    fi

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

WORKDIR /src

# Dependencies first, from pyproject.toml alone, so editing the code reuses this layer.
COPY pyproject.toml ./
RUN python -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"], sep="\n")' > /tmp/requirements.txt \
    && python -m pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY README.md ./
COPY govctl ./govctl
COPY ingestion ./ingestion
RUN python -m pip install --no-deps . && rm -rf /src/build /src/*.egg-info

RUN useradd --uid 10001 --user-group --create-home --home-dir /home/ingest ingest
USER 10001:10001
WORKDIR /home/ingest

ENTRYPOINT ["python", "-m", "ingestion"]
