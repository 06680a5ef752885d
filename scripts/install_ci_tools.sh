#!/usr/bin/env bash
# Install the tools the tests call that are not Python packages: promtool
# and the Prometheus server (from Debian's `prometheus` package), amtool and
# the Alertmanager server (`prometheus-alertmanager`; the monitoring test
# starts both on free ports with the shipped rules and routing) and nginx
# (`nginx-light`, the load balancer of the scale-out test) and Redis
# (`redis-server`, the shared rate limits; .ci/run starts it), and Chromium
# with CJK fonts (`chromium`, `fonts-noto-cjk`: the console's browser tests,
# driven by Playwright; Playwright's own browser download is not used).
# Idempotent and quiet; run as root.
#
# The packages also ship servers and start them from their post-install
# scripts. Those must not be left running: Prometheus would listen on 9090,
# Alertmanager on 9093 and nginx on 80, which docker-compose and developers
# use. So service
# starts are refused while installing (policy-rc.d exiting 101, which
# invoke-rc.d and deb-systemd-invoke obey), and a server that runs anyway
# is stopped and disabled afterwards.
set -euo pipefail

log() { echo "install_ci_tools: $*" >&2; }
die() { log "error: $*"; exit 1; }

packages=()
command -v promtool >/dev/null 2>&1 || packages+=(prometheus)
command -v amtool >/dev/null 2>&1 || packages+=(prometheus-alertmanager)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || packages+=(nginx-light)
command -v redis-server >/dev/null 2>&1 || packages+=(redis-server)
[ -x /usr/bin/chromium ] || packages+=(chromium fonts-noto-cjk)
if [ "${#packages[@]}" -eq 0 ]; then
    exit 0
fi

command -v apt-get >/dev/null 2>&1 || die "missing ${packages[*]} and apt-get is not available; install promtool and nginx by hand"
[ "$(id -u)" -eq 0 ] || die "missing ${packages[*]}; run this script as root to install Debian's packages"

POLICY=/usr/sbin/policy-rc.d
saved_policy=$(mktemp)
had_policy=""
apt_log=$(mktemp)

stop_packaged_server() {
    local unit=$1 binary=$2
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        systemctl disable --now "$unit.service" >/dev/null 2>&1 || true
    elif command -v update-rc.d >/dev/null 2>&1 && [ -e "/etc/init.d/$unit" ]; then
        update-rc.d "$unit" disable >/dev/null 2>&1 || true
    fi
    # Processes running the packaged binary: only this install can have
    # started them, since the package was missing.
    local exe pid pids=()
    for exe in /proc/[0-9]*/exe; do
        if [ "$(readlink "$exe" 2>/dev/null)" = "$binary" ]; then
            pid=${exe#/proc/}
            pids+=("${pid%/exe}")
        fi
    done
    [ "${#pids[@]}" -gt 0 ] || return 0
    log "stopping the packaged $unit server (pid ${pids[*]})"
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
    local package
    for package in "${packages[@]}"; do
        case $package in
            prometheus) stop_packaged_server prometheus /usr/bin/prometheus ;;
            prometheus-alertmanager) stop_packaged_server prometheus-alertmanager /usr/bin/prometheus-alertmanager ;;
            nginx-light) stop_packaged_server nginx /usr/sbin/nginx ;;
            redis-server) stop_packaged_server redis-server /usr/bin/redis-server ;;
        esac
    done
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
        && apt-get install -y -qq --no-install-recommends "${packages[@]}"; } >"$apt_log" 2>&1; then
    cat "$apt_log" >&2
    die "apt-get could not install ${packages[*]} (see the output above)"
fi

command -v promtool >/dev/null 2>&1 || die "the 'prometheus' package installed but promtool is not on PATH"
command -v prometheus >/dev/null 2>&1 || die "the 'prometheus' package installed but the prometheus server is not on PATH"
command -v amtool >/dev/null 2>&1 || die "the 'prometheus-alertmanager' package installed but amtool is not on PATH"
command -v prometheus-alertmanager >/dev/null 2>&1 || die "the 'prometheus-alertmanager' package installed but its server is not on PATH"
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || die "the 'nginx-light' package installed but nginx is missing"
command -v redis-server >/dev/null 2>&1 || die "the 'redis-server' package installed but redis-server is not on PATH"
[ -x /usr/bin/chromium ] || die "the 'chromium' package installed but /usr/bin/chromium is missing"
log "installed ${packages[*]}: $(promtool --version 2>&1 | head -n 1); $(amtool --version 2>&1 | head -n 1); $(/usr/sbin/nginx -v 2>&1)"
