#!/usr/bin/env bash
# Install the tools the tests call that are not Python packages: promtool
# (from Debian's `prometheus` package). Idempotent and quiet; run as root.
#
# The package also ships a Prometheus server and starts it from its
# post-install script. That server must not be left running: it would
# listen on 9090, which docker-compose and developers use. So service
# starts are refused while installing (policy-rc.d exiting 101, which
# invoke-rc.d and deb-systemd-invoke obey), and a server that runs anyway
# is stopped afterwards.
set -euo pipefail

log() { echo "install_ci_tools: $*" >&2; }
die() { log "error: $*"; exit 1; }

if command -v promtool >/dev/null 2>&1; then
    exit 0
fi

command -v apt-get >/dev/null 2>&1 || die "promtool is missing and apt-get is not available; install Prometheus's promtool by hand"
[ "$(id -u)" -eq 0 ] || die "promtool is missing; run this script as root to install Debian's 'prometheus' package"

POLICY=/usr/sbin/policy-rc.d
saved_policy=$(mktemp)
had_policy=""
apt_log=$(mktemp)

stop_packaged_server() {
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        systemctl disable --now prometheus.service >/dev/null 2>&1 || true
    fi
    # Processes running the packaged binary: only this install can have
    # started them, since promtool (same package) was missing.
    local exe pid pids=()
    for exe in /proc/[0-9]*/exe; do
        if [ "$(readlink "$exe" 2>/dev/null)" = /usr/bin/prometheus ]; then
            pid=${exe#/proc/}
            pids+=("${pid%/exe}")
        fi
    done
    [ "${#pids[@]}" -gt 0 ] || return 0
    log "stopping the packaged Prometheus server (pid ${pids[*]})"
    kill "${pids[@]}" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "${pids[@]}" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "${pids[@]}" 2>/dev/null || true
}

cleanup() {
    if [ -n "$had_policy" ]; then
        cp -p "$saved_policy" "$POLICY"
    else
        rm -f "$POLICY"
    fi
    rm -f "$saved_policy" "$apt_log"
    stop_packaged_server
}
trap cleanup EXIT

if [ -e "$POLICY" ]; then
    cp -p "$POLICY" "$saved_policy"
    had_policy=1
fi
printf '#!/bin/sh\n# Temporary, from scripts/install_ci_tools.sh: start no services.\nexit 101\n' >"$POLICY"
chmod 0755 "$POLICY"

export DEBIAN_FRONTEND=noninteractive
# dpkg --configure -a finishes an earlier install that was interrupted.
if ! { dpkg --configure -a && apt-get update -qq \
        && apt-get install -y -qq --no-install-recommends prometheus; } >"$apt_log" 2>&1; then
    cat "$apt_log" >&2
    die "apt-get could not install the 'prometheus' package (see the output above)"
fi

command -v promtool >/dev/null 2>&1 || die "the 'prometheus' package installed but promtool is not on PATH"
log "installed $(promtool --version 2>&1 | head -n 1)"
