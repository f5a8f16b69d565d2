# Process handling shared by scripts/demo.sh (`make demo` / `make stop`) and
# scripts/up.sh (`make up` / `make down`); sourced, not run. The caller sets:
#
#   RUN_DIR   where each service NAME keeps NAME.pid and NAME.log
#   BIN       the virtual environment's bin directory
#   MARKER    an associative array: service name -> a word of its command line
#
# Invariants: a service is ours only if its pid file names a live process whose command
# line holds its marker (a pid reused by an unrelated process is never taken for ours,
# nor signalled); a running service is reused, never started twice; stopping sends
# SIGTERM, waits up to 40 s (the worker drains in 30), then SIGKILL, and removes the pid
# file; nothing without a pid file of ours is ever signalled.

pid_of() { # the live pid of our service $1, or nothing
    local file="$RUN_DIR/$1.pid" pid
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
    # A session of its own: a Ctrl-C in this terminal does not reach it; stopping does.
    setsid "$@" >>"$RUN_DIR/$name.log" 2>&1 </dev/null &
    echo $! >"$RUN_DIR/$name.pid"
    echo "$name: started (pid $!), log in $RUN_DIR/$name.log"
}

wait_until() { # name description check...: until the check passes, or the service died
    local name=$1 what=$2 deadline=$((SECONDS + 60))
    shift 2
    until "$@" >/dev/null 2>&1; do
        if [[ -z $(pid_of "$name") ]]; then
            echo "error: $name stopped before $what; the end of $RUN_DIR/$name.log:" >&2
            tail -n 20 "$RUN_DIR/$name.log" >&2
            exit 1
        fi
        if ((SECONDS > deadline)); then
            echo "error: $name: no $what after 60 s; see $RUN_DIR/$name.log" >&2
            exit 1
        fi
        sleep 0.5
    done
    echo "$name: $what"
}

http_ok() {
    "$BIN/python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$1"
}

port_free() { # nothing listens on 127.0.0.1:$1
    "$BIN/python" -c '
import socket, sys
with socket.socket() as s:
    sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) else 1)' "$1"
}

worker_polls() { # address queue: a poller whose identity (pid@host) is our worker's
    local pid pollers
    pid=$(pid_of worker)
    [[ -n $pid ]] || return 1 # a dead worker stays listed a while: match its pid
    pollers=$("$BIN/temporal" task-queue describe --task-queue "$2" --address "$1" -o json) \
        || return 1
    [[ $pollers == *"\"identity\": \"$pid@"* ]]
}

stop_service() { # name [command run before it is signalled]: 0 if it was running
    local name=$1 pid
    shift
    pid=$(pid_of "$name")
    if [[ -z $pid ]]; then
        rm -f "$RUN_DIR/$name.pid"
        return 1
    fi
    if (($#)); then
        "$@"
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
    rm -f "$RUN_DIR/$name.pid"
    echo "$name: stopped (pid $pid)"
}
