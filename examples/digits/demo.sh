#!/usr/bin/env bash
# End to end on the bundled digits example: init-checked config -> build -> train in a
# container (model version digits:N in the store) -> serve that version hardened on
# 127.0.0.1 -> predict -> scan the image -> stop. Run from the repository root after
# scripts/setup-host.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
DY=${DY:-.venv/bin/dockyard}
PORT=${PORT:-8080}
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "plan: every choice and why"
$DY plan examples/digits | head -8
step "train in a container (logs stream live)"
$DY train examples/digits --param C=1.0
$DY models list
step "serve the latest version, hardened, on 127.0.0.1:$PORT"
$DY serve examples/digits --model digits:latest --port "$PORT" --detach --quiet
trap '$DY stop "dockyard-serve-digits-$PORT" >/dev/null || true' EXIT
step "predict"
$DY predict "http://127.0.0.1:$PORT" -f examples/digits/sample.json
curl -s "http://127.0.0.1:$PORT/v2/models/digits" && echo
step "scan the serving image"
$DY scan digits:latest --offline --fail-on high
step "done: docs at http://127.0.0.1:$PORT/docs while it runs; the trap now stops it"
