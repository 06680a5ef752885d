#!/usr/bin/env bash
# Install the Node tooling the tests use: buf (the contract's lint and
# breaking-change check, tests/test_contract.py) and the dependencies of the
# Node.js reference bank (examples/node-bank, tests/test_conformance.py), as
# package.json and package-lock.json pin them. Node and npm come from
# Debian's packages when missing. Idempotent and quiet; run from anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "install_node_tools: $*" >&2; }

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    [ "$(id -u)" -eq 0 ] || { log "error: node and npm are missing; run as root to install Debian's nodejs and npm"; exit 1; }
    log "installing Debian's nodejs and npm"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

# npm ci writes node_modules/.package-lock.json: newer than the lock file, nothing changed since.
if [ node_modules/.package-lock.json -nt package-lock.json ]; then
    exit 0
fi
npm ci --no-audit --no-fund --loglevel=error >/dev/null
log "installed $(node_modules/.bin/buf --version | sed 's/^/buf /') and the Node reference bank's dependencies"
