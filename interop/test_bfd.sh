#!/usr/bin/env bash
# test_bfd.sh -- BFD (RFC 5880, single hop RFC 5881) between kittbgpd and BIRD 2 and between two
# kittbgpd, over wireguard-go tunnels through the delay relay (lab_up --relay), so a link can be
# blackholed while its tunnel interfaces stay up.
#
# Usage: interop/test_bfd.sh [/path/to/kittbgpd]   (root)
# Default binary: target/release/kittbgpd or target/debug/kittbgpd, whichever is newer (copied to
# /tmp for the run).  Prints PASS/FAIL lines with timings and a final "N passed, M failed"; exit 1
# on any failure.  Cleans up only its own namespaces and PIDs (lib.sh), also when interrupted.
#
# Topology: a triangle, links 1-2, 2-3, 3-1; node 1 kittbgpd, node 2 BIRD, node 3 kittbgpd; BFD
# on every session (BIRD "bfd on" + protocol bfd, kittbgpd bfd = true), interval 100 ms,
# multiplier 3 on both daemons (detection time 300 ms); BGP hold time 240 s, so only BFD can
# end a session within the bounds below.
#   0  every BGP session Established (6 ends) and every BFD session Up (kittbgpd `show bfd`,
#      BIRD `show bfd sessions`); node 1's /metrics has kittbgpd_bfd_up 1 for both its neighbors
#   a  link 1-2 (kittbgpd - BIRD) blackholed: kittbgpd's session to BIRD is held down by BFD
#      ("BFD session down" in `show neighbors`) and BIRD's session to node 1 leaves Established,
#      each within KB_BFD_BOUND_MS (1000) of the blackhole (times printed); both BFD ends Down;
#      node 1 reaches node 2's loopback through node 3
#   b  link 1-2 restored: BFD Up on both ends, both BGP ends Established again, node 1's route to
#      node 2 direct again (times printed; within KB_RETURN_S, 20 s)
#   c  link 1-3 (kittbgpd - kittbgpd): the same as a, both ends kittbgpd
#   d  link 1-3 restored: the same as b
#   e  node 3 reloaded without `bfd`: its BFD sessions stop with AdminDown; node 1's BFD session to
#      node 3 goes down (diag 3) but both BGP ends stay Established for KB_STABLE_S (3 s): AdminDown
#      is not a failure (RFC 5882 §3.2); node 3 reloaded with `bfd` again: BFD Up on both ends
#   f  node 1's wg2 set down (its address goes with it) and up again: BFD comes back Up on both
#      ends (the BFD sockets are opened again) and BGP Established, within KB_RETURN_S
#   g  node 3 stopped (SIGTERM): its BFD sessions say AdminDown before its BGP sessions close, so
#      node 1's BFD session to it goes down told admin-down, not by detection timeout (RFC 5882
#      §3.2: a stop is not a path failure); node 3 started again: every session back
#   z  every daemon still running
# Environment: KB_BFD_BOUND_MS (1000), KB_RETURN_S (20), KB_STABLE_S (3), KB_CONVERGE_S (30), KB_BFD_INTERVAL_MS,
# KB_BFD_MULT (lib.sh), KB_KEEP_STATE=1 (keep logs), KB_LAB_PREFIX, RUST_LOG (lib.sh).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=interop/lib.sh
source "$HERE/lib.sh"
lab_args "$@"
lab_checks

BOUND_MS=${KB_BFD_BOUND_MS:-1000}
STABLE_S=${KB_STABLE_S:-3}
RETURN_S=${KB_RETURN_S:-20}
CONVERGE_S=${KB_CONVERGE_S:-30}
TMPD=$(mktemp -d /tmp/kbbfd.XXXXXX)
trap 'rm -rf "$TMPD"' EXIT   # until lab_init's trap takes over (lab_exit_hook removes it then)
cp "$BIN" "$TMPD/kittbgpd"

lab_exit_hook() {
    local rc=$1
    if ((rc != 0 || FAILED > 0)) && [[ -d $KB_LAB_STATE ]]; then diagnostics; fi
    ((rc == 0)) || echo "interrupted or aborted (status $rc) after the checks above"
    rm -rf "$TMPD"
    echo "$PASSED passed, $FAILED failed"
    ((FAILED == 0))
}

diagnostics() {
    local i
    echo "---- diagnostics (prefix $KB_LAB_PREFIX, state $KB_LAB_STATE) ----"
    for i in 1 3; do
        echo "== node $i: kittbgpd show bfd / neighbors, last log lines"
        kb_show "$i" bfd 2>&1 | sed 's/^/   /' || true
        kb_show "$i" neighbors 2>&1 | sed 's/^/   /' || true
        grep -aE ' (WARN|ERROR|INFO) ' "$(lab_dir "$i")/kittbgpd.log" 2>/dev/null | tail -n 15 || true
    done
    echo "== node 2: BIRD show bfd sessions / protocols, last log lines"
    birdc_n 2 show bfd sessions 2>&1 | sed 's/^/   /' || true
    birdc_n 2 show protocols 2>&1 | sed 's/^/   /' || true
    tail -n 15 "$(lab_bird_log 2)" 2>/dev/null || true
    echo "----"
}

# The two ends of a link, as "NODE NAME" (kittbgpd neighbor) or "NODE PROTO ADDR" (BIRD).
kb_end_ok() { kb_established "$1" "$2" && [[ $(kb_bfd_state "$1" "$2") == up ]]; }
bird_end_ok() { bird_established 2 "$1" && [[ $(bird_bfd_state 2 "$2") == Up ]]; }
all_up() {
    kb_end_ok 1 wg2 && kb_end_ok 1 wg3 && kb_end_ok 3 wg1 && kb_end_ok 3 wg2 \
        && bird_end_ok wg1 fe80::1:2 && bird_end_ok wg3 fe80::3:2
}

# end_down I J: node i's BGP session to node j ended by BFD (kittbgpd: held down with the BFD
# reason; BIRD: left Established)
end_down() {
    if (($1 == 2)); then ! bird_established 2 "wg$2"
    else [[ ,$(kb_held_down "$1" "wg$2"), == *,bfd,* ]]; fi
}

# log_ms FILE REGEX T0_MS: ms from T0_MS (epoch ms) to the first line of FILE at or after T0_MS
# matching REGEX, by the line's own time stamp (kittbgpd: RFC 3339 UTC; BIRD: local time with
# ms); -1 if none
log_ms() {
    "$PYTHON" - "$@" <<'PY'
import re, sys, datetime
path, rx, t0 = sys.argv[1], re.compile(sys.argv[2]), int(sys.argv[3])
best = -1
for line in open(path, errors="replace"):
    m = re.match(r"(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d\.\d+)(Z?)", line)
    if not m or not rx.search(line):
        continue
    t = datetime.datetime.fromisoformat(m.group(1) + " " + m.group(2)[:15])
    if m.group(3):
        t = t.replace(tzinfo=datetime.timezone.utc)
    ms = int(t.timestamp() * 1000) - t0
    if ms >= 0:
        best = ms
        break
print(best)
PY
}
# detect_log_ms I J T0_MS: when node i's own log says its BFD session to node j went down
detect_log_ms() {
    if (($1 == 2)); then log_ms "$(lab_bird_log 2)" "wg$2: BFD session down" "$3"
    else log_ms "$(lab_dir "$1")/kittbgpd.log" "BFD session down \\(.*peer=wg$2" "$3"; fi
}

# blackhole_check LABEL I J VIA: blackhole link i-j; both ends' sessions must end within
# BOUND_MS; then node i's route to node j's loopback goes via VIA (NH%DEV)
blackhole_check() {
    local label=$1 i=$2 j=$3 via=$4 t0 t di=-1 dj=-1 n
    t0=$(now_ms)
    lab_blackhole "$i" "$j"
    while ((di < 0 || dj < 0)); do
        # the time after the check that saw it: an upper bound
        ((di >= 0)) || ! end_down "$i" "$j" || di=$(( $(now_ms) - t0 ))
        ((dj >= 0)) || ! end_down "$j" "$i" || dj=$(( $(now_ms) - t0 ))
        (( $(now_ms) - t0 < 5000 )) || break
        sleep 0.02
    done
    for n in "$i:$j:$di" "$j:$i:$dj"; do
        IFS=: read -r a b t <<< "$n"
        if ((t >= 0 && t <= BOUND_MS)); then
            pass "$label node $a's session to node $b ended by BFD within $t ms of the blackhole (polled; its log: BFD down at $(detect_log_ms "$a" "$b" "$t0") ms; bound $BOUND_MS ms)"
        else
            fail "$label node $a's session to node $b ended by BFD within $BOUND_MS ms of the blackhole (got ${t/#-1/never in 5 s} ms)"
        fi
    done
    for n in "$i:$j" "$j:$i"; do
        IFS=: read -r a b <<< "$n"
        if ((a == 2)); then
            if [[ $(bird_bfd_state 2 "fe80::$b:2") == Down ]] && ! bird_established 2 "wg$b"; then
                pass "$label BIRD: BFD session to node $b Down, BGP session not Established"
            else
                fail "$label BIRD: BFD session to node $b Down, BGP not Established (got BFD $(bird_bfd_state 2 "fe80::$b:2"), $(bird_proto_line 2 "wg$b"))"
            fi
        else
            local st line
            st=$(kb_bfd_state "$a" "wg$b")
            line=$(kb_show "$a" neighbors 2>/dev/null | grep -E "^wg$b " || true)
            if [[ $st == down && $line == *"BFD session down"* && $(kb_neighbor_state "$a" "wg$b") != Established ]]; then
                pass "$label node $a: BFD to node $b down, session held (show neighbors: ${line##* held down: })"
            else
                fail "$label node $a: BFD to node $b down and the session held with the BFD reason (got BFD $st; $line)"
            fi
        fi
    done
    t=$(lab_wait_nh "$i" "10.255.0.$j" "$via" 5 "$t0") || true
    if ((t >= 0)); then pass "$label node $i reaches 10.255.0.$j via $via ($t ms after the blackhole)"
    else fail "$label node $i reaches 10.255.0.$j via $via (got $(lab_nh "$i" "10.255.0.$j"))"; fi
}

# restore_check LABEL I J DIRECT: lift the blackhole; BFD Up and BGP Established on both ends,
# node i's route to node j direct again, within RETURN_S
restore_check() {
    local label=$1 i=$2 j=$3 direct=$4 t0 t
    t0=$(now_ms)
    lab_unblackhole "$i" "$j"
    if wait_for all_up "$RETURN_S" 0.05; then
        pass "$label BFD Up and BGP Established on every end again ($WAITED_MS ms after the restore)"
    else
        fail "$label BFD Up and BGP Established on every end again within $RETURN_S s"
    fi
    t=$(lab_wait_nh "$i" "10.255.0.$j" "$direct" "$RETURN_S" "$t0") || true
    if ((t >= 0)); then pass "$label node $i's route to 10.255.0.$j direct again ($t ms after the restore)"
    else fail "$label node $i's route to 10.255.0.$j direct again (got $(lab_nh "$i" "10.255.0.$j"))"; fi
}

lab_init
lab_up 3 ring --relay
lab_bird_conf 2 --bfd
lab_bird_start 2
for i in 1 3; do
    kb_conf "$i" --bfd --metrics
    kb_start "$i" "$TMPD/kittbgpd"
done

# 0: everything up
if wait_for all_up "$CONVERGE_S" 0.1; then
    pass "0 every BGP session Established and every BFD session Up ($WAITED_MS ms)"
else
    fail "0 every BGP session Established and every BFD session Up within $CONVERGE_S s"
    exit 1
fi
m=$(kb_metrics 1 2>/dev/null || true)
if grep -q '^kittbgpd_bfd_up{neighbor="wg2"} 1' <<< "$m" && grep -q '^kittbgpd_bfd_up{neighbor="wg3"} 1' <<< "$m"; then
    pass "0 node 1's /metrics: kittbgpd_bfd_up 1 for wg2 and wg3"
else
    fail "0 node 1's /metrics: kittbgpd_bfd_up 1 for wg2 and wg3 (got: $(grep bfd_up <<< "$m" | tr '\n' ' '))"
fi
kb_show 1 bfd | sed 's/^/     /'
birdc_n 2 show bfd sessions | sed 's/^/     /'
# the routes before any failure: every node reaches the others directly
for n in "1 2 fe80::2:1%wg2" "1 3 fe80::3:1%wg3"; do
    read -r i j nh <<< "$n"
    lab_wait_nh "$i" "10.255.0.$j" "$nh" "$CONVERGE_S" "$(now_ms)" >/dev/null \
        || fail "0 node $i reaches 10.255.0.$j via $nh (got $(lab_nh "$i" "10.255.0.$j"))"
done

blackhole_check a 1 2 "fe80::3:1%wg3"
restore_check b 1 2 "fe80::2:1%wg2"
blackhole_check c 1 3 "fe80::2:1%wg2"
restore_check d 1 3 "fe80::3:1%wg3"

# e: BFD turned off by a reload on node 3, then on again
since_1=$(kb_neighbor_field 1 wg3 since) since_3=$(kb_neighbor_field 3 wg1 since)
kb_conf 3
kb_ctl 3 reload >/dev/null
if wait_for '[[ $(kb_bfd_state 1 wg3) == down && $(kb_bfd_state 3 wg1) == - ]]' 5 0.05 \
    && [[ $(kb_bfd_state 1 wg3 remote_state) == admin_down ]]; then
    pass "e node 3 reloaded without bfd: its BFD task gone, node 1's session to it down, told admin-down ($WAITED_MS ms)"
else
    fail "e node 3 reloaded without bfd: its BFD task gone, node 1's session to it down, told admin-down (got $(kb_bfd_state 1 wg3) remote $(kb_bfd_state 1 wg3 remote_state) / $(kb_bfd_state 3 wg1))"
fi
sleep "$STABLE_S"
if kb_established 1 wg3 && kb_established 3 wg1 && [[ $(kb_neighbor_field 1 wg3 since) == "$since_1" \
    && $(kb_neighbor_field 3 wg1 since) == "$since_3" && -z $(kb_held_down 1 wg3) ]]; then
    pass "e AdminDown is not a failure: both BGP ends stayed Established for $STABLE_S s"
else
    fail "e AdminDown is not a failure: both BGP ends stayed Established (node 1: $(kb_neighbor_state 1 wg3) held '$(kb_held_down 1 wg3)'; node 3: $(kb_neighbor_state 3 wg1))"
fi
kb_conf 3 --bfd
kb_ctl 3 reload >/dev/null
if wait_for all_up "$RETURN_S" 0.05; then pass "e node 3 reloaded with bfd again: every BFD session Up ($WAITED_MS ms)"
else fail "e node 3 reloaded with bfd again: every BFD session Up within $RETURN_S s"; fi

# f: the tunnel interface down and up under the BFD task
lab_link_down 1 2
if wait_for '[[ -n $(kb_held_down 1 wg2) ]] && ! bird_established 2 wg1' 5 0.05; then
    pass "f node 1's wg2 down: its session held ($(kb_held_down 1 wg2)), BIRD's down ($WAITED_MS ms)"
else
    fail "f node 1's wg2 down: its session held, BIRD's down (got '$(kb_held_down 1 wg2)', $(bird_proto_line 2 wg1))"
fi
lab_link_up 1 2
if wait_for all_up "$RETURN_S" 0.05; then pass "f wg2 up again: every BFD session Up, every BGP session Established ($WAITED_MS ms)"
else fail "f wg2 up again: every BFD session Up, every BGP session Established within $RETURN_S s"; fi

# g: a daemon's stop says AdminDown first
kb_stop 3
if wait_for '[[ $(kb_bfd_state 1 wg3) == down ]]' 5 0.05 \
    && [[ $(kb_bfd_state 1 wg3 remote_state) == admin_down ]]; then
    pass "g node 3 stopped: node 1's BFD session to it down, told admin-down ($WAITED_MS ms)"
else
    fail "g node 3 stopped: node 1's BFD session to it down, told admin-down (got $(kb_bfd_state 1 wg3) remote $(kb_bfd_state 1 wg3 remote_state))"
fi
kb_start 3 "$TMPD/kittbgpd"
if wait_for all_up "$RETURN_S" 0.05; then pass "g node 3 started again: every BFD session Up, every BGP session Established ($WAITED_MS ms)"
else fail "g node 3 started again: every BFD session Up, every BGP session Established within $RETURN_S s"; fi

for n in kittbgpd-1 kittbgpd-3 bird-2; do
    if lab_pid "$n" >/dev/null; then pass "z $n still running"; else fail "z $n still running"; fi
done
