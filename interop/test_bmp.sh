#!/usr/bin/env bash
# test_bmp.sh -- BMP export (RFC 7854) to pmacct's pmbmpd, and MRT dumps read by bgpdump. Two
# kittbgpd nodes 1 - 2 (wireguard-go tunnel); in node 1's namespace pmbmpd listens on
# 127.0.0.1:11019 and logs every BMP message as JSON; node 1 has `[bmp] collector` set to it.
#
# Usage: interop/test_bmp.sh [/path/to/kittbgpd]   (root; needs pmbmpd and bgpdump: apt pmacct bgpdump)
# Prints PASS/FAIL lines and a final "N passed, M failed"; exit 1 on any failure. Cleans up only
# its own namespaces and PIDs (lib.sh), also when interrupted.
#
#   0  both session ends Established
#   a  pmbmpd logged Initiation and a Peer Up for node 2 (fe80::2:1)
#   b  Route Monitoring for node 2's loopbacks 10.255.0.2/32 and fd00:255::2/128, pre-policy and
#      post-policy (is_post)
#   c  a Stats Report
#   d  `kittbgpd dump mrt FILE` on node 1: bgpdump reads node 2's loopbacks from fe80::2:1 and
#      node 1's own 10.255.0.1/32 (Loc-RIB and Adj-RIB-In views)
#   e  node 2 stopped: Peer Down for fe80::2:1
#   f  node 1 stopped: Termination
# Environment: KB_KEEP_STATE=1 (keep logs), KB_LAB_PREFIX, RUST_LOG (lib.sh).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=interop/lib.sh
source "$HERE/lib.sh"

lab_args "$@"
lab_checks
for c in pmbmpd bgpdump; do
    command -v "$c" >/dev/null || lab_die "missing $c (apt-get install --no-install-recommends pmacct bgpdump)"
done

TMPD=$(mktemp -d /tmp/kbbmp.XXXXXX)
trap 'rm -rf "$TMPD"' EXIT   # until lab_init's trap takes over (lab_exit_hook removes it then)
LOGJ=""

lab_exit_hook() {
    local rc=$1
    if ((rc != 0 || FAILED > 0)) && [[ -n $LOGJ && -f $LOGJ ]]; then
        echo "== pmbmpd log (message types)"
        "$PYTHON" -c 'import json,sys
for l in open(sys.argv[1]):
    try: d = json.loads(l)
    except Exception: continue
    print("  ", d.get("bmp_msg_type"), d.get("peer_ip", ""), d.get("ip_prefix", ""), d.get("is_post", ""))' "$LOGJ" | tail -n 40 || true
        tail -n 20 "$(lab_dir 1)/pmbmpd.log" 2>/dev/null || true
        grep -aE ' (WARN|ERROR) ' "$(lab_dir 1)/kittbgpd.log" 2>/dev/null | tail -n 12 || true
    fi
    ((rc == 0)) || echo "interrupted or aborted (status $rc) after the checks above"
    rm -rf "$TMPD"
    echo "$PASSED passed, $FAILED failed"
    ((FAILED == 0))
}

# bmp_has TYPE [KEY=VALUE...]: a JSON line of pmbmpd's log with bmp_msg_type TYPE and those fields
bmp_has() {
    "$PYTHON" - "$LOGJ" "$@" <<'PY'
import json, sys
path, kind, conds = sys.argv[1], sys.argv[2], [a.split("=", 1) for a in sys.argv[3:]]
try:
    lines = open(path).read().splitlines()
except OSError:
    sys.exit(1)
for l in lines:
    try:
        d = json.loads(l)
    except ValueError:
        continue
    if d.get("bmp_msg_type") == kind and all(str(d.get(k)) == v for k, v in conds):
        sys.exit(0)
sys.exit(1)
PY
}

cp "$BIN" "$TMPD/kittbgpd"
echo "kittbgpd: $BIN (running a copy: $TMPD/kittbgpd)"
lab_init
lab_up 2 line
D1=$(lab_dir 1)
LOGJ=$D1/bmp.json
cat > "$D1/pmbmpd.conf" <<CONF
bmp_daemon_ip: 127.0.0.1
bmp_daemon_port: 11019
bmp_daemon_msglog_file: $LOGJ
bmp_daemon_msglog_output: json
pidfile: $D1/pmbmpd.pid
logfile: $D1/pmbmpd.log
CONF
lab_exec 1 ip link set lo up
# pmbmpd renames itself ("pmbmpd: Core Process [default]"): matched by name, not by path
lab_spawn pmbmpd-1 "$(lab_ns 1)" "$D1/pmbmpd.out" pmbmpd \
    nsenter -t "$(lab_holder 1)" -m -n -- "$(command -v pmbmpd)" -f "$D1/pmbmpd.conf"
wait_for "lab_exec 1 ss -Htln 'sport = :11019' | grep -q 11019" 10 || lab_die "pmbmpd did not listen"

for i in 1 2; do kb_conf "$i" --hold 9 --keepalive 3; done
printf '\n[bmp]\ncollector = ["127.0.0.1:11019"]\nstats_interval = 2\n' >> "$D1/kittbgpd.toml"
for i in 1 2; do kb_start "$i" "$TMPD/kittbgpd"; done

# ---------------------------------------------------------------- 0, a, b, c
if wait_for "kb_established 1 wg2 && kb_established 2 wg1" 30; then pass "0  both session ends Established"
else fail "0  both session ends Established within 30 s"; fi
if wait_for "bmp_has init && bmp_has peer_up peer_ip=fe80::2:1" 20; then pass "a  Initiation and Peer Up for fe80::2:1 in pmbmpd's log"
else fail "a  Initiation and Peer Up for fe80::2:1 in pmbmpd's log"; fi
for p in 10.255.0.2/32 fd00:255::2/128; do
    if wait_for "bmp_has route_monitor peer_ip=fe80::2:1 ip_prefix=$p is_post=0" 20 \
        && wait_for "bmp_has route_monitor peer_ip=fe80::2:1 ip_prefix=$p is_post=1" 5; then
        pass "b  Route Monitoring $p pre- and post-policy"
    else fail "b  Route Monitoring $p pre- and post-policy"; fi
done
if wait_for "bmp_has stats peer_ip=fe80::2:1" 10; then pass "c  Stats Report for fe80::2:1"
else fail "c  Stats Report for fe80::2:1"; fi

# ---------------------------------------------------------------- d
if kb_ctl 1 dump mrt "$TMPD/rib.mrt" >/dev/null && bgpdump -m "$TMPD/rib.mrt" > "$TMPD/rib.txt" 2>/dev/null \
    && grep -q '^TABLE_DUMP2|[0-9]*|B|fe80::2:1|[0-9]*|10.255.0.2/32|' "$TMPD/rib.txt" \
    && grep -q '^TABLE_DUMP2|[0-9]*|B|fe80::2:1|[0-9]*|fd00:255::2/128|' "$TMPD/rib.txt" \
    && grep -q '^TABLE_DUMP2|[0-9]*|B|0.0.0.0|[0-9]*|10.255.0.1/32|' "$TMPD/rib.txt"; then
    pass "d  dump mrt: bgpdump reads $(wc -l < "$TMPD/rib.txt") RIB entries with node 2's loopbacks and ours"
else
    fail "d  dump mrt read by bgpdump"; sed 's/^/     /' "$TMPD/rib.txt" 2>/dev/null || true
fi

# ---------------------------------------------------------------- e, f
kb_stop 2
if wait_for "bmp_has peer_down peer_ip=fe80::2:1" 20; then pass "e  node 2 stopped: Peer Down for fe80::2:1"
else fail "e  node 2 stopped: Peer Down for fe80::2:1"; fi
kb_stop 1
if wait_for "bmp_has term" 10; then pass "f  node 1 stopped: Termination"
else fail "f  node 1 stopped: Termination"; fi
