#!/usr/bin/env bash
# `make demo` and `make stop`: the Temporal dev server (with its Web UI), the local
# Spotify sandbox and the worker, in the background, each with a pid file and a log
# under .data/demo/; then `starter.py demo` against them.
#
# All three keep their state across `make stop` / `make demo`: Temporal in
# .data/demo/temporal.db, the ledger in .data/demo/enforcer.db, and the sandbox's
# library, which lives in memory, saved by `stop` to .data/demo/library.json and loaded
# from it at the next start. So the ledger, Temporal's history and the library always
# tell the same story. `make stop && rm -rf .data/demo` starts over.
#
#   scripts/demo.sh start   start what is not running (a running service is reused), then the demo
#   scripts/demo.sh stop    stop what `start` started, by its pid files, and nothing else
#
# Everything listens on 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."

DEMO_DIR=.data/demo
BIN=.venv/bin
TEMPORAL_PORT=7233
UI_PORT=8233
SANDBOX_PORT=8787
METRICS_PORT=9464
TASK_QUEUE=blocklist-enforcer
LIBRARY="$DEMO_DIR/library.json"

# The demo's own world: settings from the caller's shell or .env must not leak into it.
export ENFORCER_ENV_FILE=
unset ENFORCER_DATABASE_URL ENFORCER_TOKEN_KEY ENFORCER_TASK_QUEUE TEMPORAL_PROFILE \
    TEMPORAL_CONFIG_FILE TEMPORAL_API_KEY TEMPORAL_TLS TEMPORAL_UI_URL
export ENFORCER_API_BASE_URL="http://127.0.0.1:${SANDBOX_PORT}/v1"
export ENFORCER_ACCOUNTS_BASE_URL="http://127.0.0.1:${SANDBOX_PORT}"
export ENFORCER_SPOTIFY_CLIENT_ID=demo
export ENFORCER_DATA_DIR="$DEMO_DIR"
export TEMPORAL_ADDRESS="127.0.0.1:${TEMPORAL_PORT}"
export TEMPORAL_NAMESPACE=default
export ENFORCER_METRICS_ADDRESS="127.0.0.1:${METRICS_PORT}"

# name -> a word of its command line, so that a pid file whose process has gone and
# whose number was reused by an unrelated process is never mistaken for ours.
declare -A MARKER=([temporal]=start-dev [sandbox]=sandbox [worker]=worker.py)
RUN_DIR=$DEMO_DIR

# shellcheck source=scripts/services.sh
source scripts/services.sh

start() {
    mkdir -p "$DEMO_DIR"
    launch temporal "$BIN/temporal" server start-dev --db-filename "$DEMO_DIR/temporal.db" \
        --ip 127.0.0.1 --port "$TEMPORAL_PORT" --ui-port "$UI_PORT" \
        --search-attribute EnforcementAccount=Keyword \
        --search-attribute EnforcementStatus=Keyword --log-level warn \
        --dynamic-config-value matching.enableFairness=true
    if [[ -f $LIBRARY ]]; then
        launch sandbox "$BIN/python" starter.py sandbox --port "$SANDBOX_PORT" --fixture "$LIBRARY"
    else # the sandbox's generated demo library
        launch sandbox "$BIN/python" starter.py sandbox --port "$SANDBOX_PORT"
    fi
    wait_until temporal "server answering on $TEMPORAL_ADDRESS" \
        "$BIN/temporal" operator cluster health --address "$TEMPORAL_ADDRESS"
    wait_until temporal "Web UI on http://127.0.0.1:$UI_PORT" http_ok "http://127.0.0.1:$UI_PORT"
    wait_until sandbox "answering on http://127.0.0.1:$SANDBOX_PORT" \
        http_ok "http://127.0.0.1:$SANDBOX_PORT/__sandbox/settings"
    launch worker "$BIN/python" worker.py
    wait_until worker "polling task queue $TASK_QUEUE" \
        worker_polls "$TEMPORAL_ADDRESS" "$TASK_QUEUE"
    echo
    "$BIN/python" starter.py demo
    echo
    echo "Still running: Temporal (Web UI http://127.0.0.1:$UI_PORT), the sandbox, the worker"
    echo "(metrics: curl -s http://$ENFORCER_METRICS_ADDRESS/metrics | grep ^enforcer_)."
    echo "Try: ENFORCER_DATA_DIR=$DEMO_DIR ENFORCER_SPOTIFY_CLIENT_ID=demo \\"
    echo "       ENFORCER_API_BASE_URL=$ENFORCER_API_BASE_URL ENFORCER_ACCOUNTS_BASE_URL=$ENFORCER_ACCOUNTS_BASE_URL \\"
    echo "       $BIN/python starter.py batches"
    echo "Stop them with: make stop"
}

save_library() { # the sandbox's library as it is now, for its next start
    if "$BIN/python" - "http://127.0.0.1:$SANDBOX_PORT/__sandbox/fixture" "$LIBRARY.new" <<'PY'; then
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=10) as answer, open(sys.argv[2], "wb") as out:
    out.write(answer.read())
PY
        mv "$LIBRARY.new" "$LIBRARY"
        echo "sandbox: library saved to $LIBRARY"
    else
        rm -f "$LIBRARY.new"
        echo "sandbox: could not save its library; the next start uses $LIBRARY as it was" >&2
    fi
}

stop() {
    # The worker first: it drains while the rest is up.
    stop_service worker || true
    stop_service sandbox save_library || true
    stop_service temporal || true
}

case "${1:-}" in
start) start ;;
stop) stop ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
