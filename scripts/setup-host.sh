#!/usr/bin/env bash
# Prepare a fresh Debian/Ubuntu machine for dockyard (run as root): system packages,
# a running Docker Engine, a virtual environment with dockyard + test extras in .venv,
# and the air-gapped Python base image. Idempotent: re-running skips what is done.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

need=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/bin/$1" ]; }
have dockerd || need+=(docker.io)
[ -x /usr/bin/docker ] || need+=(docker.io)   # Debian's client: BuildKit without buildx
have debootstrap || need+=(debootstrap)
have gpg || need+=(gnupg)   # base bootstrap of Ubuntu releases: takes only the pinned archive key
have docker-registry || need+=(docker-registry)
have htpasswd || need+=(apache2-utils)
have openssl || need+=(openssl)   # signs the tokens of the Bearer-auth registry test
have wrk || need+=(wrk)
have git || need+=(git)
have chromium || need+=(chromium)
python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  log "installing: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! /usr/bin/docker version >/dev/null 2>&1; then
  log "starting dockerd"
  nohup dockerd >/var/log/dockerd.log 2>&1 &
  for _ in $(seq 60); do /usr/bin/docker version >/dev/null 2>&1 && break; sleep 1; done
  /usr/bin/docker version >/dev/null 2>&1 || { echo "dockerd did not start; see /var/log/dockerd.log"; tail -20 /var/log/dockerd.log; exit 2; }
fi

if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  python3 -m venv .venv
fi
log "installing dockyard[test] into .venv"
pip_log=$(mktemp)
if ! { .venv/bin/python -m pip install -q --upgrade pip && .venv/bin/python -m pip install -q -e '.[test]'; } >"$pip_log" 2>&1; then
  grep -v "^WARNING: Location" "$pip_log" | tail -30; echo "pip install failed (full log: $pip_log)"; exit 2
fi

if ! /usr/bin/docker image inspect dockyard/python:3.11-slim >/dev/null 2>&1 \
   || ! /usr/bin/docker image inspect dockyard/python:3.11-build >/dev/null 2>&1; then
  log "bootstrapping base images from Debian packages (about a minute)"
  .venv/bin/dockyard base bootstrap --python 3.11 --quiet
fi
log "ready: $(.venv/bin/dockyard --version), engine $(/usr/bin/docker version --format '{{.Server.Version}}')"
