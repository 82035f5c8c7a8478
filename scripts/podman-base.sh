#!/usr/bin/env bash
# Make this machine able to build and run the Dockerfile with podman, without Docker and
# without a container registry (see /work/shared/RECIPES.md, "Building and running the
# Dockerfile without Docker"). Idempotent: every step is skipped when already done.
#
#   1. install podman, runc and debootstrap (apt, when missing; needs root);
#   2. write a containers.conf that works on this kind of host (runc rather than crun, which
#      fails on hybrid cgroups; cgroupfs; file events; ulimits the host allows);
#   3. build localhost/pybase:bookworm from the Debian mirror with debootstrap (~50 s) unless
#      `podman image exists` says it is there.
#
# Prints one line on stdout: the containers.conf path, for CONTAINERS_CONF=... Progress goes to
# stderr. Usage: CONTAINERS_CONF="$(scripts/podman-base.sh)" podman build ...
# Environment: PODMAN_CACHE_DIR (default ${XDG_CACHE_HOME:-$HOME/.cache}/govctl-podman),
# PYBASE_IMAGE (default localhost/pybase:bookworm), DEBIAN_MIRROR (default: from apt sources).
set -euo pipefail

CACHE_DIR="${PODMAN_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/govctl-podman}"
BASE_IMAGE="${PYBASE_IMAGE:-localhost/pybase:bookworm}"
SUITE=bookworm

log() { printf 'podman-base: %s\n' "$*" >&2; }

# 1. Packages.
missing=()
for cmd in podman:podman runc:runc debootstrap:debootstrap; do
  command -v "${cmd%%:*}" >/dev/null 2>&1 || missing+=("${cmd##*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    log "missing ${missing[*]}; install them (apt-get install -y ${missing[*]}) as root"
    exit 1
  fi
  log "installing ${missing[*]}"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
fi

# 2. containers.conf (rewritten each time: cheap, and follows the host's hard nofile limit).
mkdir -p "$CACHE_DIR"
CONF="$CACHE_DIR/containers.conf"
nofile_hard="$(ulimit -Hn)"
[ "$nofile_hard" = unlimited ] && nofile_hard=1048576
cat >"$CONF.tmp" <<EOF
[containers]
default_ulimits = ["nofile=1024:${nofile_hard}", "nproc=4096:4096"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
mv "$CONF.tmp" "$CONF"
export CONTAINERS_CONF="$CONF"

# 3. The base image. Under a lock: concurrent test runs must not debootstrap twice at once.
exec 9>"$CACHE_DIR/lock"
flock 9
if podman image exists "$BASE_IMAGE"; then
  log "$BASE_IMAGE already present"
else
  mirror="${DEBIAN_MIRROR:-}"
  if [ -z "$mirror" ]; then
    # The first plain Debian archive (not -security) among the apt sources, deb822 or one-line.
    mirror="$(cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list \
        /etc/apt/sources.list.d/*.list 2>/dev/null \
      | grep -oE '(https?)://[^ ]*/debian/?( |$)' | grep -v security | head -n1 | tr -d ' ')" || true
  fi
  mirror="${mirror:-http://deb.debian.org/debian}"
  rootfs="$(mktemp -d "$CACHE_DIR/rootfs.XXXXXX")"
  trap 'rm -rf "$rootfs"' EXIT
  log "debootstrap $SUITE from $mirror (about a minute)"
  debootstrap --variant=minbase \
    --include=python3,python3-venv,python3-pip,python-is-python3,git,ca-certificates \
    "$SUITE" "$rootfs" "$mirror" >"$CACHE_DIR/debootstrap.log" 2>&1 \
    || { tail -n 20 "$CACHE_DIR/debootstrap.log" >&2; exit 1; }
  # Networks with a TLS-intercepting proxy need the host's extra CAs inside the image too.
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    mkdir -p "$rootfs/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
    chroot "$rootfs" update-ca-certificates >&2
  fi
  # The image is a container, not a Debian system to protect: let pip install into it.
  rm -f "$rootfs"/usr/lib/python3*/EXTERNALLY-MANAGED
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb
  tar -C "$rootfs" -c . | podman import - "$BASE_IMAGE" >&2
  log "built $BASE_IMAGE"
fi

printf '%s\n' "$CONF"
