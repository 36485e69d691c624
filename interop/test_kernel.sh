#!/usr/bin/env bash
# test_kernel.sh -- kernel routes that are not ours, and sessions held down. A line of three
# kittbgpd nodes 1 - 2 - 3 (wireguard-go tunnels, kernel routes on: proto 200, metric 32); node 2
# is the transit between 1 and 3. Node 2's operator holds 10.255.0.3/32 with a static route at
# kittbgpd's metric (`ip route ... dev lo metric 32`, proto boot).
#
# Usage: interop/test_kernel.sh [/path/to/kittbgpd]   (root)
# Default binary: target/release/kittbgpd or target/debug/kittbgpd, whichever is newer (copied to
# /tmp for the run). Prints PASS/FAIL lines with timings and a final "N passed, M failed"; exit 1
# on any failure. Cleans up only its own namespaces and PIDs (lib.sh), also when interrupted.
#
#   0  every session Established (4 ends)
#   a  static route added before the start: never overwritten (node 2's kernel holds only
#      boot/32 for 10.255.0.3/32), `show kernel` says conflict, `show routes` marks it
#   b  node 2 cannot forward to 10.255.0.3 with its own route: it does not advertise it onward
#      (node 1 has fd00:255::3/128 from node 2, not 10.255.0.3/32)
#   c  the static route deleted: kittbgpd's route in within 1 s, node 1 gets 10.255.0.3/32
#   d  the operator replaces kittbgpd's route (`ip route replace ... metric 32`): kept (2 s later
#      still boot/32), conflict, withdrawn from node 1; deleted again: ours back within 1 s
#   e  `ip route flush proto 200` on node 2: every route restored within 1 s
#   f  `kittbgpd disable wg1` on node 2: held down (operator); wg1 down and up again does not
#      start it; `kittbgpd enable wg1`: Established again
#   z  every daemon still running
# Environment: KB_KEEP_STATE=1 (keep logs), KB_LAB_PREFIX, RUST_LOG (lib.sh).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=interop/lib.sh
source "$HERE/lib.sh"

lab_args "$@"
lab_checks

NODES=(1 2 3)
P=10.255.0.3/32          # the prefix node 2's operator holds
P6=fd00:255::3/128       # its IPv6 twin, never blocked
TMPD=$(mktemp -d /tmp/kbkern.XXXXXX)
trap 'rm -rf "$TMPD"' EXIT   # until lab_init's trap takes over (lab_exit_hook removes it then)

lab_exit_hook() {
    local rc=$1 i
    if ((rc != 0 || FAILED > 0)) && [[ -d $KB_LAB_STATE ]]; then
        for i in "${NODES[@]}"; do
            echo "== node $i: kernel routes / show kernel / neighbors / last log lines"
            lab_kernel_routes "$i" | sed 's/^/   /' || true
            kb_show "$i" kernel 2>&1 | sed 's/^/   /' || true
            kb_show "$i" neighbors 2>&1 | sed 's/^/   /' || true
            grep -aE ' (WARN|ERROR|INFO) ' "$(lab_dir "$i")/kittbgpd.log" 2>/dev/null | tail -n 12 || true
        done
    fi
    ((rc == 0)) || echo "interrupted or aborted (status $rc) after the checks above"
    rm -rf "$TMPD"
    echo "$PASSED passed, $FAILED failed"
    ((FAILED == 0))
}

ip2() { ip -n "$(lab_ns 2)" "$@"; }
owners_are() { [[ $(lab_route_owners "$1" "$2") == "$3" ]]; }
# check_fast LABEL MS LIMIT_MS: PASS if MS (a WAITED_MS, -1 for never) is at most LIMIT_MS
check_fast() {
    local label=$1 ms=$2 limit=$3
    if ((ms >= 0 && ms <= limit)); then pass "$label ($ms ms)"; else fail "$label (${ms} ms; -1 = not within 5 s)"; fi
}

cp "$BIN" "$TMPD/kittbgpd"
echo "kittbgpd: $BIN (running a copy: $TMPD/kittbgpd)"
lab_init
lab_up 3 line
for i in "${NODES[@]}"; do
    kb_conf "$i" --hold 9 --keepalive 3 --kernel --kernel-set startup_grace=5
done
ip2 route add "$P" dev lo metric 32
t_start=$(now_ms)
for i in "${NODES[@]}"; do kb_start "$i" "$TMPD/kittbgpd"; done

# ---------------------------------------------------------------- 0, a, b
all_up() { kb_established 1 wg2 && kb_established 2 wg1 && kb_established 2 wg3 && kb_established 3 wg2; }
if wait_for all_up 30; then pass "0  all 4 session ends Established ($(( $(now_ms) - t_start )) ms)"
else fail "0  all 4 session ends Established within 30 s"; fi
wait_for "kb_has_prefix 1 $P6" 15 || true
if [[ $(kb_kernel_state 2 "$P") == conflict ]] && owners_are 2 "$P" "boot/32"; then
    pass "a  static route at our metric left alone: node 2 holds only boot/32 for $P, show kernel: conflict"
else
    fail "a  static route left alone and shown as conflict (owners: '$(lab_route_owners 2 "$P")', state $(kb_kernel_state 2 "$P"))"
fi
if kb_show 2 routes --best | grep -F "$P" | grep -q "kernel: conflict"; then
    pass "a  show routes marks $P: $(kb_show 2 routes --best | grep -F "$P" | sed 's/  */ /g')"
else
    fail "a  show routes marks $P as not in the kernel"
fi
if kb_has_prefix 1 "$P6" && ! kb_has_prefix 1 "$P"; then
    pass "b  node 2 does not advertise $P onward (node 1 has $P6 from it, not $P)"
else
    fail "b  node 2 does not advertise $P onward (node 1: $P6 $(kb_has_prefix 1 "$P6" && echo yes || echo no), $P $(kb_has_prefix 1 "$P" && echo yes || echo no))"
fi

# ---------------------------------------------------------------- c
t0=$(now_ms)
ip2 route del "$P" dev lo metric 32
wait_for "owners_are 2 $P 200/32" 5 0.02 && ms=$WAITED_MS || ms=-1
check_fast "c  static route deleted: kittbgpd's route in on node 2" "$ms" 1000
if wait_for "kb_has_prefix 1 $P" 10; then pass "c  node 1 gets $P from node 2 ($(( $(now_ms) - t0 )) ms)"
else fail "c  node 1 gets $P from node 2 within 10 s"; fi

# ---------------------------------------------------------------- d
ip2 route replace "$P" dev lo metric 32
sleep 2
if owners_are 2 "$P" "boot/32" && [[ $(kb_kernel_state 2 "$P") == conflict ]]; then
    pass "d  operator's replace kept 2 s later (boot/32), show kernel: conflict"
else
    fail "d  operator's replace kept (owners: '$(lab_route_owners 2 "$P")', state $(kb_kernel_state 2 "$P"))"
fi
if wait_for "! kb_has_prefix 1 $P" 10; then pass "d  $P withdrawn from node 1"
else fail "d  $P withdrawn from node 1 within 10 s"; fi
ip2 route del "$P" dev lo metric 32
wait_for "owners_are 2 $P 200/32" 5 0.02 && ms=$WAITED_MS || ms=-1
check_fast "d  static route deleted again: ours back on node 2" "$ms" 1000

# ---------------------------------------------------------------- e
all_ours() {
    owners_are 2 10.255.0.1/32 200/32 && owners_are 2 10.255.0.3/32 200/32 &&
        owners_are 2 fd00:255::1/128 200/32 && owners_are 2 fd00:255::3/128 200/32
}
wait_for all_ours 5 || true
ip2 -4 route flush proto 200
ip2 -6 route flush proto 200
wait_for all_ours 5 0.02 && ms=$WAITED_MS || ms=-1
check_fast "e  ip route flush proto 200 on node 2: its 4 routes restored" "$ms" 1000

# ---------------------------------------------------------------- f
kb_ctl 2 disable wg1 >/dev/null
if wait_for "! kb_established 2 wg1" 5 && [[ $(kb_held_down 2 wg1) == operator ]]; then
    pass "f  kittbgpd disable wg1: node 2's session down, held down by: operator"
else
    fail "f  kittbgpd disable wg1: session down and held by operator ($(kb_neighbor_state 2 wg1), '$(kb_held_down 2 wg1)')"
fi
lab_link_down 2 1
wait_for "[[ \$(kb_held_down 2 wg1) == operator,interface || \$(kb_held_down 2 wg1) == interface,operator ]]" 5 || true
info "wg1 down: held down by $(kb_held_down 2 wg1)"
lab_link_up 2 1
sleep 4
if ! kb_established 2 wg1 && [[ $(kb_held_down 2 wg1) == operator ]]; then
    pass "f  wg1 down and up again: still held down by the operator ($(kb_neighbor_state 2 wg1))"
else
    fail "f  wg1 down and up again: still held down by the operator ($(kb_neighbor_state 2 wg1), '$(kb_held_down 2 wg1)')"
fi
kb_show 2 neighbors | sed 's/^/     /'
t0=$(now_ms)
kb_ctl 2 enable wg1 >/dev/null
if wait_for "kb_established 2 wg1" 20; then pass "f  kittbgpd enable wg1: Established again ($(( $(now_ms) - t0 )) ms)"
else fail "f  kittbgpd enable wg1: Established again within 20 s"; fi

# ---------------------------------------------------------------- z
dead=()
for i in "${NODES[@]}"; do lab_pid "kittbgpd-$i" >/dev/null || dead+=("kittbgpd-$i"); done
if ((${#dead[@]} == 0)); then pass "z  every daemon still running"; else fail "z  every daemon still running; gone: ${dead[*]}"; fi
