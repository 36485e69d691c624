#!/usr/bin/env bash
# test_gr.sh -- graceful restart (RFC 4724) with BIRD 2, both roles. A line 1 - 2 - 3: BIRD on
# nodes 1 and 3 (`graceful restart on`, kernel routes persist), kittbgpd on node 2 (the transit;
# `graceful_restart = true`, kernel routes on, on_stop = "keep"). Pings run from node 1's
# loopback to node 3's through node 2 (10 a second) while one side restarts.
#
# Usage: interop/test_gr.sh [/path/to/kittbgpd]   (root)
# Prints PASS/FAIL lines and a final "N passed, M failed"; exit 1 on any failure. Cleans up only
# its own namespaces and PIDs (lib.sh), also when interrupted.
#
#   0  every session Established (4 ends), pings 1 -> 3 go through
#   a  kittbgpd restarts (SIGTERM, started again 2 s later): while it is down BIRD on node 1
#      keeps 10.255.0.3/32 (learned from node 2) and says the neighbor restarts; the new run
#      announces the R bit, defers its output and ends its kernel grace at End-of-RIB from both
#      BIRDs (not at the restart time), and no ping 1 -> 3 is lost; `show neighbors --json`
#      shows the R bit sent on the sessions opened while restarting, and the log that it stops
#      after the grace ends
#   b  BIRD on node 1 restarts (`birdc graceful restart`, then `bird -R`): while it is down
#      kittbgpd keeps 10.255.0.1/32 (stale; `show protocols` says "helper: N stale"), after
#      End-of-RIB it still has it, and no ping 3 -> 1 is lost; the new session (opened after
#      kittbgpd's own restart ended) carries no R bit from kittbgpd
#   c  kittbgpd restarts while BIRD on node 3 is held back (`birdc disable wg2` while kittbgpd
#      is down, `enable` ~6 s after kittbgpd's session with node 1 is up again): kittbgpd
#      defers its output (RFC 4724 §4.1: no UPDATE, no End-of-RIB) until End-of-RIB from every
#      graceful-restart neighbor, so BIRD on node 1 keeps 10.255.0.3/32 (stale, via node 2)
#      all that time (sampled every 0.5 s; a table sent at once, without node 3's routes, ends
#      with an End-of-RIB that makes BIRD flush it) and `show neighbors` says "output
#      deferred"; once node 3 is back the log says the output was released on End-of-RIB from
#      every graceful-restart neighbor, the restart ends, both BIRDs have the other's
#      loopback and pings 1 -> 3 go through
#   z  every daemon still running
# Environment: KB_KEEP_STATE=1 (keep logs), KB_LAB_PREFIX, RUST_LOG (lib.sh).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=interop/lib.sh
source "$HERE/lib.sh"

lab_args "$@"
lab_checks
TMPD=$(mktemp -d /tmp/kbgr.XXXXXX)
trap 'rm -rf "$TMPD"' EXIT

lab_exit_hook() {
    local rc=$1
    if ((rc != 0 || FAILED > 0)) && [[ -d $KB_LAB_STATE ]]; then
        kb_show 2 neighbors 2>&1 | sed 's/^/   /' || true
        grep -aE ' (WARN|ERROR|INFO) ' "$(lab_dir 2)/kittbgpd.log" 2>/dev/null | tail -n 25 || true
        tail -n 15 "$(lab_bird_log 1)" 2>/dev/null || true
    fi
    ((rc == 0)) || echo "interrupted or aborted (status $rc) after the checks above"
    rm -rf "$TMPD"
    echo "$PASSED passed, $FAILED failed"
    ((FAILED == 0))
}

# ping_bg NAME FROM TO COUNT: COUNT pings 10 a second from node FROM's loopback to node TO's, in
# the background; ping_loss NAME prints "sent received" (after check_no_loss waited: a
# command substitution cannot wait for this shell's children)
ping_bg() {
    ip netns exec "$(lab_ns "$2")" ping -n -q -i 0.1 -W 1 -c "$4" -I "10.255.0.$2" "10.255.0.$3" \
        > "$TMPD/$1.ping" 2>&1 &
    echo $! > "$TMPD/$1.pid"
}
ping_loss() {
    sed -nE 's/^([0-9]+) packets transmitted, ([0-9]+) received.*/\1 \2/p' "$TMPD/$1.ping"
}
check_no_loss() {
    local label=$1 r
    wait "$(cat "$TMPD/$2.pid")" || true
    r=$(ping_loss "$2")
    read -r sent got <<< "${r:-0 0}"
    if ((sent > 0 && sent == got)); then pass "$label: $got/$sent pings answered, none lost"
    else fail "$label: $got/$sent pings answered ($(tail -n 2 "$TMPD/$2.ping" | tr '\n' ' '))"; fi
}
kb_log() { cat "$(lab_dir 2)/kittbgpd.log"; }
# kb_logged FROM PATTERN: kittbgpd logged PATTERN after its log's first FROM lines (one run's
# log; grep reads it all: no SIGPIPE for pipefail)
kb_logged() { tail -n "+$(($1 + 1))" "$(lab_dir 2)/kittbgpd.log" | grep -c -- "$2" > /dev/null; }

cp "$BIN" "$TMPD/kittbgpd"
echo "kittbgpd: $BIN (running a copy: $TMPD/kittbgpd)"
lab_init
lab_up 3 line
for i in 1 3; do lab_bird_conf "$i" --gr --hold 9 --keepalive 3; lab_bird_start "$i"; done
kb_conf 2 --hold 9 --keepalive 3 --kernel --gr
kb_start 2 "$TMPD/kittbgpd"

# ---------------------------------------------------------------- 0
all_up() { kb_established 2 wg1 && kb_established 2 wg3 && bird_established 1 wg2 && bird_established 3 wg2; }
if wait_for all_up 40; then pass "0  all 4 session ends Established"; else fail "0  all 4 session ends Established within 40 s"; fi
wait_for "bird_has_prefix 1 10.255.0.3/32 && bird_has_prefix 3 10.255.0.1/32" 20 || true
if wait_for "ip netns exec $(lab_ns 1) ping -c1 -W1 -q -I 10.255.0.1 10.255.0.3 >/dev/null 2>&1" 20; then
    pass "0  node 1 reaches node 3's loopback through node 2"
else fail "0  node 1 reaches node 3's loopback through node 2"; fi

# gr_local_r NAME: the R bit kittbgpd (node 2) sent on its session with NAME ("" if not up)
gr_local_r() { kb_show 2 neighbors --json | "$PYTHON" -c '
import json, sys
n = next((n for n in json.load(sys.stdin) if n["name"] == sys.argv[1]), {})
print(str(((n.get("graceful_restart") or {}).get("local") or {}).get("restart_state", "")).lower())' "$1"; }

# ---------------------------------------------------------------- a: kittbgpd restarts
ping_bg a 1 3 150
sleep 2
kb_stop 2
if wait_for "birdc_n 1 show protocols all wg2 | grep -qiE 'restart|Active|Connect'" 5 && bird_has_prefix 1 10.255.0.3/32; then
    pass "a  kittbgpd down: BIRD keeps 10.255.0.3/32 ($(birdc_n 1 show protocols wg2 | awk '$1 == "wg2" {$1=$2=$3=""; print}' | xargs))"
else
    fail "a  kittbgpd down: BIRD keeps 10.255.0.3/32 ($(birdc_n 1 show route 10.255.0.3/32 | tail -n +2 | xargs))"
fi
birdc_n 1 show route 10.255.0.3/32 all | grep -iE 'stale|10.255.0.3' | sed 's/^/     /' || true
sleep 2
a_from=$(kb_log | wc -l)
kb_start 2 "$TMPD/kittbgpd"
if wait_for all_up 30; then pass "a  sessions Established again"; else fail "a  sessions Established again within 30 s"; fi
if wait_for "kb_log | grep -q 'announcing graceful restart with the R bit'" 5; then
    pass "a  the new run found its kernel routes and sets the R bit"
else fail "a  the new run sets the R bit"; fi
if [[ $(gr_local_r wg1) == true && $(gr_local_r wg3) == true ]]; then
    pass "a  show neighbors: R bit sent on both sessions opened while restarting"
else fail "a  show neighbors: R bit sent on both sessions (wg1 '$(gr_local_r wg1)', wg3 '$(gr_local_r wg3)')"; fi
if wait_for "kb_logged $a_from 'graceful restart of this node over'" 30 &&
    kb_logged "$a_from" 'output released to every neighbor: End-of-RIB from every graceful-restart neighbor'; then
    pass "a  output released and kernel grace ended at End-of-RIB from both BIRDs (not after the 120 s restart time)"
else fail "a  output released and kernel grace ended at End-of-RIB from both BIRDs"; fi
if wait_for "kb_log | grep -q 'OPENs no longer carry the Restart State bit'" 5; then
    pass "a  restart over: later OPENs carry no R bit"
else fail "a  restart over: later OPENs carry no R bit"; fi
check_no_loss "a  kittbgpd restart" a
if bird_has_prefix 1 10.255.0.3/32 && bird_has_prefix 3 10.255.0.1/32; then
    pass "a  both BIRDs have the other's loopback after the restart"
else fail "a  both BIRDs have the other's loopback after the restart"; fi

# ---------------------------------------------------------------- b: BIRD restarts
ping_bg b 3 1 150
sleep 2
bpid=$(cat "$(lab_dir 1)/bird.pid")
if ! birdc_n 1 graceful restart >/dev/null 2>&1; then
    info "birdc graceful restart refused: killing BIRD instead"
    kill -KILL "$bpid"
fi
wait_for "! kill -0 $bpid 2>/dev/null" 10 || true
if wait_for "! kb_established 2 wg1" 10 && kb_has_prefix 2 10.255.0.1/32; then
    pass "b  BIRD down: kittbgpd keeps 10.255.0.1/32 ($(kb_log | grep -a 'keeping .* routes as stale' | tail -n1 | sed 's/.*INFO //'))"
else
    fail "b  BIRD down: kittbgpd keeps 10.255.0.1/32 (state $(kb_neighbor_state 2 wg1))"
fi
line=$(grep -E '^wg1 ' <<< "$(kb_show 2 protocols)" || true)
if grep -q 'helper: [1-9][0-9]* stale' <<< "$line"; then
    pass "b  show protocols: $(grep -oE 'helper: [0-9]+ stale, [0-9]+ s left' <<< "$line")"
else fail "b  show protocols shows the helper state: $line"; fi
sleep 2
lab_bird_start 1 -R
if wait_for all_up 30; then pass "b  sessions Established again"; else fail "b  sessions Established again within 30 s"; fi
if [[ $(gr_local_r wg1) == false ]]; then pass "b  the new session with BIRD: no R bit from kittbgpd"
else fail "b  the new session with BIRD: no R bit from kittbgpd (shown: '$(gr_local_r wg1)')"; fi
if wait_for "kb_log | grep -q 'wg1.*End-of-RIB, stale routes purged\|End-of-RIB, stale routes purged.*wg1'" 30; then
    pass "b  kittbgpd got BIRD's End-of-RIB and purged only what stayed stale"
else fail "b  kittbgpd purged stale routes at BIRD's End-of-RIB"; fi
check_no_loss "b  BIRD restart" b
if kb_has_prefix 2 10.255.0.1/32; then pass "b  kittbgpd still has 10.255.0.1/32"; else fail "b  kittbgpd still has 10.255.0.1/32"; fi

# ---------------------------------------------------------------- c: deferred output
# bird_keeps_3 SECONDS: BIRD on node 1 has 10.255.0.3/32 at every sample (0.5 s apart)
bird_keeps_3() {
    local end=$((SECONDS + $1))
    while ((SECONDS < end)); do
        bird_has_prefix 1 10.255.0.3/32 || return 1
        sleep 0.5
    done
}
kb_stop 2
birdc_n 3 disable wg2 >/dev/null
if wait_for "bird_has_prefix 1 10.255.0.3/32 && ! bird_established 1 wg2" 10; then
    pass "c  kittbgpd down, BIRD 3's session disabled: BIRD 1 keeps 10.255.0.3/32"
else fail "c  kittbgpd down: BIRD 1 keeps 10.255.0.3/32"; fi
sleep 2
c_from=$(kb_log | wc -l)
kb_start 2 "$TMPD/kittbgpd"
if wait_for "kb_established 2 wg1 && bird_established 1 wg2" 30; then
    pass "c  session with node 1 Established again (node 3 still disabled: $(kb_neighbor_state 2 wg3))"
else fail "c  session with node 1 Established again within 30 s"; fi
if bird_keeps_3 6; then
    pass "c  BIRD 1 kept 10.255.0.3/32 for 6 s with kittbgpd's session up and node 3's down"
else
    fail "c  BIRD 1 lost 10.255.0.3/32 while node 3's session was down: kittbgpd did not defer its End-of-RIB"
fi
if kb_show 2 neighbors | grep -E '^wg1 ' | grep -q 'output deferred'; then
    pass "c  show neighbors wg1: $(kb_show 2 neighbors | grep -E '^wg1 ' | grep -oE 'graceful restart .*')"
else fail "c  show neighbors says output deferred: $(kb_show 2 neighbors | grep -E '^wg1 ')"; fi
birdc_n 3 enable wg2 >/dev/null
if wait_for all_up 30; then pass "c  node 3 enabled: all 4 session ends Established"; else fail "c  all 4 session ends Established within 30 s"; fi
if wait_for "kb_logged $c_from 'output released to every neighbor: End-of-RIB from every graceful-restart neighbor'" 20; then
    pass "c  output released on End-of-RIB from every graceful-restart neighbor (not the timer)"
else fail "c  output released on End-of-RIB from every graceful-restart neighbor"; fi
if wait_for "kb_logged $c_from 'OPENs no longer carry the Restart State bit'" 20; then
    pass "c  restart over: later OPENs carry no R bit"
else fail "c  restart over: later OPENs carry no R bit"; fi
if wait_for "bird_has_prefix 1 10.255.0.3/32 && bird_has_prefix 3 10.255.0.1/32" 20 &&
    wait_for "ip netns exec $(lab_ns 1) ping -c1 -W1 -q -I 10.255.0.1 10.255.0.3 >/dev/null 2>&1" 20; then
    pass "c  both BIRDs have the other's loopback, node 1 reaches node 3"
else fail "c  both BIRDs have the other's loopback, node 1 reaches node 3"; fi

# ---------------------------------------------------------------- z
if lab_pid kittbgpd-2 >/dev/null && [[ -s $(lab_dir 1)/bird.pid ]]; then pass "z  every daemon still running"
else fail "z  every daemon still running"; fi
