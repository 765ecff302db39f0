#!/usr/bin/env bash
# Walks the admin UI in headless Chromium against the real `switchboard serve` (temp SQLite
# file, ephemeral loopback ports), with two baresip phones calling each other on 127.0.0.2 and
# 127.0.0.3. Needs Debian's chromium and baresip (apt-get install chromium baresip) and node
# 20 with npm; installs playwright-core from package-lock.json (no browser download).
# Screenshots, the server log and the phones' logs: test-artifacts/browser/.
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
command -v baresip >/dev/null || {
    echo "baresip not found: apt-get install baresip (the walk calls between two baresip phones; .ci/run installs it)" >&2
    exit 1
}
cd "$here"
# Exactly what the lock file says (about a second).
npm ci --no-audit --no-fund --loglevel=error
rm -rf "$root/test-artifacts/browser"
SWITCHBOARD_BIN="$bin" ARTIFACTS="$root/test-artifacts/browser" node web_flow.mjs
