#!/usr/bin/env bash
# Install Debian's chromium for tests/test_ui_browser.py, unless it is already there.
#
# Why Debian's package and not `playwright install`: Playwright's browser download comes from a
# CDN that CI (and the dev machine) cannot reach; the Python wheel only needs its bundled driver
# plus any Chromium binary, which tests/browser.py points at via executable_path.
# Idempotent: a second run with /usr/bin/chromium present does nothing.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
    echo "install-browser: $CHROMIUM already present: $("$CHROMIUM" --version 2>/dev/null || echo unknown version)"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends chromium

if [ ! -x "$CHROMIUM" ]; then
    echo "install-browser: apt-get installed chromium but $CHROMIUM is missing" >&2
    exit 1
fi
echo "install-browser: installed $("$CHROMIUM" --version 2>/dev/null || echo chromium)"
