#!/usr/bin/env bash
# test_tunnels.sh -- step 6: the tunnels come from fabric.toml. Three nodes in a ring:
# node 1 runs BIRD 2 over tunnels built with wg/ip (the migration path), nodes 2 and 3 run
# kittbgpd, whose namespaces carry only the underlay: each daemon builds its own tunnels
# (wireguard-go, userspace backend) from [wireguard] / [neighbor.wireguard] in its config.
#
# Usage: interop/test_tunnels.sh [/path/to/kittbgpd]   (root)
# Prints one PASS/FAIL line per check and a final "N passed, M failed"; exit 1 on any failure.
#
#   a  tunnels created with the right keys, ports, peers and endpoints (`wg show` in the node)
#      and only our link-local address on them
#   b  every session Established over them (BIRD and kittbgpd); kernel routes to every
#      loopback; pings between every pair of loopbacks
#   m  node 2's /metrics (curl) passes promtool check metrics; it has the tunnels' handshake
#      ages and the installed kernel routes
#   c  a foreign WireGuard interface (wgx, not in the config) in node 2 is untouched by start,
#      reconcile and restart (its `wg show dump` unchanged)
#   d  an endpoint change applied without a session reset: node 2 reaches node 3 by a host
#      name (node 2's own /etc/hosts); the name moves to node 3's second underlay address, the
#      periodic reconcile sets the new endpoint, the session's "since" does not change
#   e  restart of node 2's kittbgpd: tunnels kept (same wireguard-go), no ping lost over the
#      tunnel (node 2 -> node 3's link-local) nor through node 2 (node 1 -> node 3's loopback;
#      kernel routes kept, [kernel] on_stop = keep; the neighbors route round node 2 and back)
#   f  a tunnel removed from the config (node 2 restarted without neighbor wg3): wg3 deleted
#      in node 2, its kernel routes withdrawn, traffic goes round through node 1; back with
#      the full config
#   h  on_stop = "remove" on node 3: its tunnels are deleted when it stops; rebuilt at the next start
#   g  handshakes stop (node 1's wireguard-go for wg2 killed): node 2 marks wg1 down by
#      handshake age (`show tunnels`: down (handshake)) and ends the session before its hold
#      time; takes up to handshake_timeout (135 s here) + 5 s
# Environment: KB_SKIP_HANDSHAKE=1 (skip g), KB_LAB_PREFIX, KB_KEEP_STATE=1, see lib.sh.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=interop/lib.sh
source "$HERE/lib.sh"

BIN=$(lab_pick_bin test_tunnels.sh "${1:-}")

PASSED=0 FAILED=0 SCEN=tunnels
pass() { PASSED=$((PASSED+1)); echo "PASS $*"; }
fail() { FAILED=$((FAILED+1)); echo "FAIL $*"; }
check() { local what=$1; shift; if "$@"; then pass "$what"; else fail "$what"; fi; }
info() { echo "     $*"; }

lab_exit_hook() {
    local rc=$1 i
    if ((rc != 0 || FAILED > 0)) && [[ -d $KB_LAB_STATE ]]; then
        for i in 2 3; do
            echo "== node $i: kittbgpd log, last lines"
            tail -n 25 "$(lab_dir "$i")/kittbgpd.log" 2>/dev/null || true
        done
    fi
    ((rc == 0)) || echo "interrupted or aborted (status $rc) after the checks above"
    echo "$PASSED passed, $FAILED failed"
    ((FAILED == 0))
}

# tunnel_json I IFNAME KEY: one field of node i's `show tunnels --json` for tunnel IFNAME
tunnel_json() {
    kb_show "$1" tunnels --json 2>/dev/null | "$PYTHON" -c '
import json, sys
for t in json.load(sys.stdin):
    if t.get("interface") == sys.argv[1]:
        v = t.get(sys.argv[2]); print(",".join(v) if isinstance(v, list) else v); break
' "$2" "$3"
}
since() { kb_show "$1" neighbors --json 2>/dev/null | "$PYTHON" -c '
import json, sys
for n in json.load(sys.stdin):
    if n.get("name") == sys.argv[1]: print(n.get("state"), n.get("since"))' "$2"; }
check_quiet() { "$BIN" check -c "$@" >/dev/null; }
established_all() {
    bird_established 1 wg2 && bird_established 1 wg3 \
        && kb_established 2 wg1 && kb_established 2 wg3 && kb_established 3 wg1 && kb_established 3 wg2
}
pings_ok() { ! lab_ping_matrix 1 2 3 -- 1 2 3 | grep -q lost; }
routes_complete() { [[ $(lab_kernel_routes 1 2 3 | awk '{ print $1, $2 }' | sort -u | wc -l) == 12 ]]; }

# a  node i's wg<j>: our key, the peer's key, port 51000+j, endpoint, address fe80::i:j only
tunnel_as_configured() {
    local i=$1 j=$2 dump pub
    dump=$(lab_exec "$i" wg show "wg$j" dump) || return 1
    pub=$(cat "$(lab_dir "$j")/wg.pub")
    # first line: private public port fwmark; then: peer psk endpoint allowed handshake rx tx keepalive
    awk -v me="$(cat "$(lab_dir "$i")/wg.pub")" -v port=$((51000 + j)) -v peer="$pub" '
        NR == 1 { ok = ($2 == me && $3 == port) }
        NR == 2 { ok = ok && ($1 == peer && $4 == "0.0.0.0/0,::/0" && $8 == 10) }
        END { exit !(ok && NR == 2) }' <<< "$dump" || { info "node $i wg$j: $dump"; return 1; }
    [[ $(ip -n "$(lab_ns "$i")" -6 -o addr show dev "wg$j" | awk '{ print $4 }') == "fe80::$i:$j/64" ]] \
        || { info "node $i wg$j addresses: $(ip -n "$(lab_ns "$i")" -6 -o addr show dev "wg$j")"; return 1; }
}

metrics_tunnels() {
    local t; t=$(kb_metrics "$1") || return 1
    grep -qE '^kittbgpd_tunnel_handshake_age_seconds\{link="wg1",interface="wg1"\} [0-9]' <<< "$t" &&
        grep -qE '^kittbgpd_tunnel_handshake_age_seconds\{link="wg3",interface="wg3"\} [0-9]' <<< "$t" &&
        grep -qE '^kittbgpd_kernel_routes\{table="254",state="installed"\} [1-9]' <<< "$t"
}

lab_ensure_packages
lab_init
lab_up 3 ring --kb-tunnels 2,3
lab_costs "1-3:100 3-1:100"   # node 1 <-> node 3 through node 2 (check e)
# node 2 reaches node 3 by name (check d): a private /etc/hosts in node 2's mount namespace
echo "172.31.3.2 node3.lab" > "$(lab_dir 2)/hosts"
lab_exec 2 mount --bind "$(lab_dir 2)/hosts" /etc/hosts
ip -n "$(lab_ns 3)" addr add 172.31.3.3/24 dev ul0

# a foreign tunnel in node 2, not in its config (check c)
lab_spawn "wg-foreign-2" "$(lab_ns 2)" "$(lab_dir 2)/wgx.log" "wireguard-go -f wgx" \
    env LOG_LEVEL=error nsenter -t "$(lab_holder 2)" -m -n -- wireguard-go -f wgx
wait_for "lab_exec 2 test -S /run/wireguard/wgx.sock" 10 0.02 || lab_die "foreign wgx did not come up"
(umask 077; wg genkey > "$KB_LAB_STATE/wgx.key")
lab_exec 2 wg set wgx private-key "$KB_LAB_STATE/wgx.key" listen-port 52000 \
    peer "$(wg genkey | wg pubkey)" allowed-ips 192.0.2.0/24 endpoint 172.31.1.2:52000
ip -n "$(lab_ns 2)" addr add fe80::99/64 dev wgx nodad
FOREIGN=$(lab_exec 2 wg show wgx dump)

lab_bird_conf 1; lab_bird_start 1
for i in 2 3; do kb_conf "$i" --kernel --metrics; done
# node 2's endpoint towards node 3: the host name (check d)
sed -i 's|endpoint = "172.31.3.2:51002"|endpoint = "node3.lab:51002"|' "$(lab_dir 2)/kittbgpd.toml"
for i in 2 3; do
    sed -i 's|^reconcile_interval = .*|&\nhandshake_timeout = 135|' "$(lab_dir "$i")/kittbgpd.toml"
    check "config of node $i passes kittbgpd check" check_quiet "$(lab_dir "$i")/kittbgpd.toml"
    kb_start "$i" "$BIN"
done
check "the two kittbgpd configs checked together (tunnel back, same addresses, an endpoint)" \
    check_quiet "$(lab_dir 2)/kittbgpd.toml" "$(lab_dir 3)/kittbgpd.toml"

# ---- a, b
check "a node 2: wg1 and wg3 built by kittbgpd as configured" \
    wait_for "tunnel_as_configured 2 1 && tunnel_as_configured 2 3" 10 0.2
check "a node 3: wg1 and wg2 built by kittbgpd as configured" \
    wait_for "tunnel_as_configured 3 1 && tunnel_as_configured 3 2" 10 0.2
check "b every session Established (BIRD over wg-built, kittbgpd over its own tunnels)" \
    wait_for established_all 40 0.5
check "b kernel routes to every loopback in every node" wait_for routes_complete 20 0.5
check "b pings between every pair of loopbacks" wait_for pings_ok 10 1
check "m node 2: /metrics passes promtool check metrics" kb_metrics_valid 2
# tunnel figures are read every 2 s: a handshake made after the last read shows at the next
check "m node 2: /metrics has the handshake age of wg1 and wg3 and installed kernel routes" \
    wait_for "metrics_tunnels 2" 10 1
check "c foreign wgx untouched after start and reconcile" \
    test "$(lab_exec 2 wg show wgx dump)" == "$FOREIGN"
info "node 2: $(kb_show 2 tunnels | head -n 3 | tail -n 2 | tr -s ' ')"

# ---- d: endpoint change without a session reset
S0=$(since 2 wg3)
echo "172.31.3.3 node3.lab" > "$(lab_dir 2)/hosts"
check "d new endpoint applied by the periodic reconcile (wg show: 172.31.3.3:51002)" \
    wait_for "lab_exec 2 wg show wg3 endpoints | grep -q '172.31.3.3:51002'" 15 0.5
sleep 2
check "d session wg3 not reset (state and since unchanged: $S0)" test "$(since 2 wg3)" == "$S0"
check "d pings still fine" wait_for pings_ok 10 1

# ---- e: restart without loss
WGPIDS=$(lab_exec 2 ls /run/wireguard)
tmpl=$(mktemp); tmpt=$(mktemp)
# over the tunnel itself (link-local, node 2 -> node 3), and through node 2 (node 1 -> node 3:
# the costs send it 1-2-3; the neighbors route round node 2 while it is down, and back)
ip netns exec "$(lab_ns 2)" ping -D -O -6 -i 0.05 -W 1 "fe80::3:2%wg3" > "$tmpl" 2>&1 & PL=$!
ip netns exec "$(lab_ns 1)" ping -D -O -i 0.05 -W 1 -I 10.255.0.1 10.255.0.3 > "$tmpt" 2>&1 & PT=$!
sleep 1
kb_stop 2; kb_start 2 "$(kb_bin 2)"
back=0
wait_for "kb_established 2 wg3 && kb_established 2 wg1 && [[ \$(lab_nh 1 10.255.0.3/32) == *wg2 ]]" 40 0.2 && back=1
sleep 1
kill -INT "$PL" "$PT"; wait "$PL" "$PT" || true
for f in "$tmpl:over wg3 (node 2 -> fe80::3:2)" "$tmpt:through node 2 (node 1 -> 10.255.0.3)"; do
    read -r sent recv < <(awk '/packets transmitted/ { print $1, $4 }' "${f%%:*}")
    # The last echo sent is not counted: the SIGINT may come before its reply could.
    lost=$(lab_ping_lost "${f%%:*}")
    check "e restart of kittbgpd on node 2: ping every 50 ms ${f#*:}: ${recv:-0} of ${sent:-0} answered (lost, the last one sent aside: $lost)" \
        test "${sent:-0}" -gt 20 -a "$lost" == 0
done
rm -f "$tmpl" "$tmpt"
check "e node 2's sessions back and node 1's route to node 3 back through node 2 within the ping" test "$back" == 1
check "e tunnels kept across the restart (same UAPI sockets, sessions back)" \
    test "$(lab_exec 2 ls /run/wireguard)" == "$WGPIDS"
check "c foreign wgx untouched after a restart" test "$(lab_exec 2 wg show wgx dump)" == "$FOREIGN"

# ---- f: a tunnel removed from the config
cp "$(lab_dir 2)/kittbgpd.toml" "$(lab_dir 2)/kittbgpd.full.toml"
"$PYTHON" - "$(lab_dir 2)/kittbgpd.toml" <<'EOF'
import re, sys
p = sys.argv[1]; t = open(p).read()
# drop the [[neighbor]] block of wg3 with its [neighbor.wireguard]
blocks = re.split(r'(?m)^(?=\[\[neighbor\]\])', t)
open(p, "w").write("".join(b for b in blocks if 'name = "wg3"' not in b))
EOF
kb_stop 2; kb_start 2 "$(kb_bin 2)"
check "f wg3 deleted in node 2" wait_for "! ip -n $(lab_ns 2) link show wg3 >/dev/null 2>&1" 10 0.2
check "f node 2: no kernel route via wg3" wait_for "! ip -n $(lab_ns 2) route show table all | grep -q 'dev wg3'; ! ip -n $(lab_ns 2) -6 route show table all | grep -q 'dev wg3'" 10 0.5
check "f node 3: routes to node 2 no longer via wg2 (withdrawn)" \
    wait_for "[[ \$(lab_nh 3 10.255.0.2/32) != *wg2 ]]" 15 0.5
check "f pings still fine (through node 1)" wait_for pings_ok 20 1
check "c foreign wgx untouched by the deletion" test "$(lab_exec 2 wg show wgx dump)" == "$FOREIGN"
cp "$(lab_dir 2)/kittbgpd.full.toml" "$(lab_dir 2)/kittbgpd.toml"
kb_stop 2; kb_start 2 "$(kb_bin 2)"
check "f back with the full config: wg3 rebuilt, sessions Established" \
    wait_for "tunnel_as_configured 2 3 && established_all" 40 0.5

# ---- h: on_stop = "remove" (node 3): its tunnels go with it
sed -i 's|^\[wireguard\]$|&\non_stop = "remove"|' "$(lab_dir 3)/kittbgpd.toml"
kb_stop 3; kb_start 3 "$(kb_bin 3)"
wait_for "kb_established 3 wg1 && kb_established 3 wg2" 40 0.5 || true
kb_stop 3
check "h on_stop = \"remove\": node 3's tunnels wg1 and wg2 deleted when it stops" \
    wait_for "! ip -n $(lab_ns 3) link show wg1 >/dev/null 2>&1 && ! ip -n $(lab_ns 3) link show wg2 >/dev/null 2>&1" 5 0.2
sed -i '/^on_stop = "remove"$/d' "$(lab_dir 3)/kittbgpd.toml"
kb_start 3 "$(kb_bin 3)"
check "h node 3 started again: tunnels rebuilt, sessions Established" \
    wait_for "tunnel_as_configured 3 1 && tunnel_as_configured 3 2 && established_all" 40 0.5

# ---- g: handshakes stop
if [[ ${KB_SKIP_HANDSHAKE:-0} == 1 ]]; then
    info "g skipped (KB_SKIP_HANDSHAKE=1)"
else
    t0=$(date +%s)
    lab_kill wg-1-2 KILL 5 || true
    if wait_for "[[ \$(tunnel_json 2 wg1 down_by) == *handshake* ]]" 150 1; then
        pass "g node 2 marks wg1 down by handshake age after $(( $(date +%s) - t0 )) s (show tunnels: $(tunnel_json 2 wg1 latest_handshake_age_s) s since the last)"
    else
        fail "g wg1 not marked down by handshake age (down_by: $(tunnel_json 2 wg1 down_by))"
    fi
    check "g node 2's session wg1 ended (before the 240 s hold time)" \
        wait_for "! kb_established 2 wg1" 5 0.5
    check "g show neighbors: wg1 held down for its handshake" \
        wait_for "kb_show 2 neighbors | grep -E '^wg1 ' | grep -q 'no recent WireGuard handshake'" 5 0.5
    info "$(kb_show 2 links | grep -A3 wg1 | grep tunnel || true)"
fi
