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
TASK_QUEUE=blocklist-enforcer
LIBRARY="$DEMO_DIR/library.json"

# The demo's own world: settings from the caller's shell must not leak into it.
unset ENFORCER_DATABASE_URL ENFORCER_TOKEN_KEY ENFORCER_TASK_QUEUE TEMPORAL_PROFILE \
    TEMPORAL_CONFIG_FILE TEMPORAL_API_KEY TEMPORAL_TLS TEMPORAL_UI_URL
export ENFORCER_API_BASE_URL="http://127.0.0.1:${SANDBOX_PORT}/v1"
export ENFORCER_ACCOUNTS_BASE_URL="http://127.0.0.1:${SANDBOX_PORT}"
export ENFORCER_SPOTIFY_CLIENT_ID=demo
export ENFORCER_DATA_DIR="$DEMO_DIR"
export TEMPORAL_ADDRESS="127.0.0.1:${TEMPORAL_PORT}"
export TEMPORAL_NAMESPACE=default

# name -> a word of its command line, so that a pid file whose process has gone and
# whose number was reused by an unrelated process is never mistaken for ours.
declare -A MARKER=([temporal]=start-dev [sandbox]=sandbox [worker]=worker.py)

pid_of() { # the live pid of our service $1, or nothing
    local file="$DEMO_DIR/$1.pid" pid
    [[ -f $file ]] || return 0
    pid=$(<"$file")
    if [[ $pid =~ ^[0-9]+$ ]] && [[ -r /proc/$pid/cmdline ]] \
        && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "${MARKER[$1]}"; then
        echo "$pid"
    fi
}

launch() { # name command...: start it detached unless it runs already
    local name=$1 pid
    shift
    pid=$(pid_of "$name")
    if [[ -n $pid ]]; then
        echo "$name: running (pid $pid), reused"
        return
    fi
    # A session of its own: a Ctrl-C in this terminal does not reach it; `make stop` does.
    setsid "$@" >>"$DEMO_DIR/$name.log" 2>&1 </dev/null &
    echo $! >"$DEMO_DIR/$name.pid"
    echo "$name: started (pid $!), log in $DEMO_DIR/$name.log"
}

wait_until() { # name description check...: until the check passes, or the service died
    local name=$1 what=$2 deadline=$((SECONDS + 60))
    shift 2
    until "$@" >/dev/null 2>&1; do
        if [[ -z $(pid_of "$name") ]]; then
            echo "error: $name stopped before $what; the end of $DEMO_DIR/$name.log:" >&2
            tail -n 20 "$DEMO_DIR/$name.log" >&2
            exit 1
        fi
        if ((SECONDS > deadline)); then
            echo "error: $name: no $what after 60 s; see $DEMO_DIR/$name.log" >&2
            exit 1
        fi
        sleep 0.5
    done
    echo "$name: $what"
}

http_ok() {
    "$BIN/python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$1"
}

worker_polls() { # a poller whose identity (pid@host) is our worker's: a dead one stays listed
    local pid
    pid=$(pid_of worker)
    [[ -n $pid ]] || return 1
    local pollers
    pollers=$("$BIN/temporal" task-queue describe --task-queue "$TASK_QUEUE" \
        --address "$TEMPORAL_ADDRESS" -o json) || return 1
    [[ $pollers == *"\"identity\": \"$pid@"* ]]
}

start() {
    mkdir -p "$DEMO_DIR"
    launch temporal "$BIN/temporal" server start-dev --db-filename "$DEMO_DIR/temporal.db" \
        --ip 127.0.0.1 --port "$TEMPORAL_PORT" --ui-port "$UI_PORT" \
        --search-attribute EnforcementAccount=Keyword \
        --search-attribute EnforcementStatus=Keyword --log-level warn
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
    wait_until worker "polling task queue $TASK_QUEUE" worker_polls
    echo
    "$BIN/python" starter.py demo
    echo
    echo "Still running: Temporal (Web UI http://127.0.0.1:$UI_PORT), the sandbox, the worker."
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
    local name pid
    for name in worker sandbox temporal; do # the worker first: it drains while the rest is up
        pid=$(pid_of "$name")
        if [[ -z $pid ]]; then
            rm -f "$DEMO_DIR/$name.pid"
            continue
        fi
        if [[ $name == sandbox ]]; then
            save_library
        fi
        kill -TERM "$pid"
        for _ in $(seq 1 80); do
            [[ -d /proc/$pid ]] || break
            sleep 0.5
        done
        if [[ -d /proc/$pid ]]; then
            echo "$name (pid $pid) did not stop within 40 s: killing it"
            kill -KILL "$pid"
        fi
        rm -f "$DEMO_DIR/$name.pid"
        echo "$name: stopped (pid $pid)"
    done
}

case "${1:-}" in
start) start ;;
stop) stop ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
