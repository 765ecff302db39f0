#!/usr/bin/env bash
# Walks the admin UI in headless Chromium against the real `switchboard serve` (temp SQLite
# file, ephemeral loopback ports). Needs Debian's chromium (apt-get install chromium) and node
# 20 with npm; installs playwright-core from package-lock.json (no browser download).
# Screenshots and the server log: test-artifacts/browser/.
#
# SWITCHBOARD_BIN names a binary already built from this tree (CI passes the one the tests just
# built); otherwise it is built here.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
case "$target" in /*) ;; *) target="$root/$target" ;; esac
bin="${SWITCHBOARD_BIN:-}"
if [ -z "$bin" ]; then
    (cd "$root" && cargo build -q -p switchboard --bin switchboard)
    bin="$target/debug/switchboard"
fi
[ -x "$bin" ] || { echo "no switchboard binary at $bin" >&2; exit 1; }
command -v "${CHROMIUM:-/usr/bin/chromium}" >/dev/null || {
    echo "chromium not found: apt-get install chromium (or set CHROMIUM)" >&2
    exit 1
}
cd "$here"
# Exactly what the lock file says (about a second).
npm ci --no-audit --no-fund --loglevel=error
rm -rf "$root/test-artifacts/browser"
SWITCHBOARD_BIN="$bin" ARTIFACTS="$root/test-artifacts/browser" node web_flow.mjs
