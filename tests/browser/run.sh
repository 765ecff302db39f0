#!/usr/bin/env bash
# Builds the web crate's dev_server example and walks the admin UI in headless Chromium.
# Needs Debian's chromium (apt-get install chromium) and node; installs playwright-core (no
# browser download). Screenshots: test-artifacts/browser/.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
(cd "$root" && cargo build -q -p web --example dev_server)
cd "$here"
[ -d node_modules/playwright-core ] || npm install --no-audit --no-fund --silent
DEV_SERVER="$target/debug/examples/dev_server" ARTIFACTS="$root/test-artifacts/browser" node web_flow.mjs
