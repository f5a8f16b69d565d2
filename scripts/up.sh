#!/usr/bin/env bash
# `make up` and `make down`: the Temporal dev server (with its Web UI) and the worker in
# the background, for real use with your Spotify account; no sandbox. Each has a pid
# file and a log in the state directory (default .data/, beside the ledger and the token
# key the starter keeps there), Temporal's history in STATE_DIR/temporal.db.
#
#   scripts/up.sh up     start what is not running (a running service is reused)
#   scripts/up.sh down   stop what `up` started, by its pid files, and nothing else
#
# The worker takes its settings as the starter does: from the environment, then .env
# (enforcer/config.py); only TEMPORAL_ADDRESS is set here, to the server started here.
# Knobs (environment or make variables): STATE_DIR (.data), TEMPORAL_PORT (7233),
# TEMPORAL_UI_PORT (8233). Everything listens on 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=.venv/bin
STATE_DIR=${STATE_DIR:-.data}
TEMPORAL_PORT=${TEMPORAL_PORT:-7233}
TEMPORAL_UI_PORT=${TEMPORAL_UI_PORT:-8233}
TASK_QUEUE=${ENFORCER_TASK_QUEUE:-blocklist-enforcer}
# The worker must reach the server started here, not one a profile names.
unset TEMPORAL_PROFILE TEMPORAL_CONFIG_FILE TEMPORAL_API_KEY TEMPORAL_TLS
export TEMPORAL_ADDRESS="127.0.0.1:${TEMPORAL_PORT}" TEMPORAL_NAMESPACE=default

declare -A MARKER=([temporal]=start-dev [worker]=worker.py)
RUN_DIR=$STATE_DIR
# shellcheck source=scripts/services.sh
source scripts/services.sh

up() {
    mkdir -p "$STATE_DIR"
    if [[ -z $(pid_of temporal) ]] && ! port_free "$TEMPORAL_PORT"; then
        echo "error: something else listens on 127.0.0.1:$TEMPORAL_PORT (\`make demo\`? stop" \
            "it with \`make stop\`), or set TEMPORAL_PORT" >&2
        exit 1
    fi
    launch temporal "$BIN/temporal" server start-dev --db-filename "$STATE_DIR/temporal.db" \
        --ip 127.0.0.1 --port "$TEMPORAL_PORT" --ui-port "$TEMPORAL_UI_PORT" \
        --search-attribute EnforcementAccount=Keyword \
        --search-attribute EnforcementStatus=Keyword --log-level warn \
        --dynamic-config-value matching.enableFairness=true
    wait_until temporal "server answering on $TEMPORAL_ADDRESS" \
        "$BIN/temporal" operator cluster health --address "$TEMPORAL_ADDRESS"
    wait_until temporal "Web UI on http://127.0.0.1:$TEMPORAL_UI_PORT" \
        http_ok "http://127.0.0.1:$TEMPORAL_UI_PORT"
    launch worker "$BIN/python" worker.py
    wait_until worker "polling task queue $TASK_QUEUE" \
        worker_polls "$TEMPORAL_ADDRESS" "$TASK_QUEUE"
    echo
    echo "Up: Temporal on $TEMPORAL_ADDRESS (Web UI http://127.0.0.1:$TEMPORAL_UI_PORT), the worker."
    echo "Next: .venv/bin/python starter.py login"
    echo "      .venv/bin/python starter.py enforce --plan-now --watch"
    echo "Stop them with: make down"
}

down() {
    local stopped=0
    # The worker first: it drains while Temporal is up.
    stop_service worker && stopped=1
    stop_service temporal && stopped=1
    if ((!stopped)); then
        echo "nothing to stop: no worker or Temporal server of \`make up\` runs ($STATE_DIR)"
    fi
}

case "${1:-}" in
up) up ;;
down) down ;;
*)
    echo "usage: $0 up|down" >&2
    exit 2
    ;;
esac
