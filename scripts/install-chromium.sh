#!/usr/bin/env bash
# Headless Chromium for the Web UI test (tests/test_web_ui.py): Debian's `chromium`
# package, installed where it is missing. `make pytest` runs this first; the test runs it
# too when Chromium is still missing, and is skipped with this script's reason only
# when it cannot install it.
#
# Idempotent, and instant when `chromium` is on PATH already. Installs as root, or
# through password-less sudo; otherwise (or without apt-get) it changes nothing and
# exits 1 with why on stderr, a line a person can act on.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "chromium is not installed and this machine has no apt-get to install it:" \
        "install Chromium so that \`chromium\` is on PATH" >&2
    exit 1
fi
as_root=()
if [ "$(id -u)" -ne 0 ]; then
    if ! sudo -n true >/dev/null 2>&1; then
        echo "chromium is not installed and installing it needs root:" \
            "run \`sudo apt-get install chromium\`" >&2
        exit 1
    fi
    as_root=(sudo -n)
fi
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# The fonts: a bare image has none, and the screenshot's text would be boxes.
if ! "${as_root[@]}" apt-get update -qq >"$log" 2>&1 ||
    ! "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends chromium fonts-dejavu-core >>"$log" 2>&1; then
    echo "chromium is not installed and \`apt-get install chromium\` failed:" \
        "$(tail -n 3 "$log" | tr '\n' ' ')" >&2
    exit 1
fi
command -v chromium >/dev/null 2>&1
