#!/usr/bin/env bash
# packaging/systemd/verify.sh [KITTBGPD] -- `systemd-analyze verify` the unit
# with its /usr/bin/kittbgpd pointed at a built binary; any complaint fails.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin="${1:-$here/../../target/release/kittbgpd}"
bin="$(realpath "$bin")"
command -v systemd-analyze >/dev/null || { echo "SKIP: systemd-analyze not installed (apt: systemd)"; exit 0; }
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
sed "s|/usr/bin/kittbgpd|$bin|g" "$here/kittbgpd.service" >"$dir/kittbgpd.service"
out="$(cd "$dir" && SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no ./kittbgpd.service 2>&1)" || { echo "$out"; exit 1; }
if [[ -n "$out" ]]; then echo "$out"; echo "FAIL: systemd-analyze verify complained"; exit 1; fi
# The directives the deployment relies on are there.
for d in Type=notify "ExecReload=$bin reload" Restart=on-failure WatchdogSec= User=kittbgpd \
    "AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE" ProtectSystem=strict \
    ProtectHome=yes PrivateTmp=yes NoNewPrivileges=yes \
    "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK" SystemCallFilter=@system-service \
    RuntimeDirectory= StateDirectory=; do
    grep -q "^$d" "$dir/kittbgpd.service" || { echo "FAIL: unit lacks $d"; exit 1; }
done
echo "PASS: systemd-analyze verify kittbgpd.service"
