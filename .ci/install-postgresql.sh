#!/usr/bin/env bash
# Install Debian's PostgreSQL server for tests/test_team_setup.py, unless it is already there.
#
# The tests start their own throw-away cluster (initdb in a temp folder, a free port, as an unprivileged
# user: see tests/team_services.py); they only need the binaries in /usr/lib/postgresql/<version>/bin.
# Without them those tests skip, except under CI=true, where they fail.
# Idempotent: a second run with initdb present does nothing.
set -euo pipefail

find_initdb() {
    ls -1d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1
}

INITDB="$(find_initdb || true)"
if [ -n "$INITDB" ] && [ -x "$INITDB" ]; then
    echo "install-postgresql: $INITDB already present: $("$INITDB" --version)"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends postgresql

INITDB="$(find_initdb || true)"
if [ -z "$INITDB" ] || [ ! -x "$INITDB" ]; then
    echo "install-postgresql: apt-get installed postgresql but no /usr/lib/postgresql/*/bin/initdb" >&2
    exit 1
fi
echo "install-postgresql: installed $("$INITDB" --version)"
