#!/usr/bin/env bash
# bench_detect.sh -- failure detection and latency reaction: kittbgpd against BIRD 2 with BFD,
# side by side in one run (issue step 9).
#
# Topology: a ring of four (1-2-3-4-1) of wireguard-go tunnels through the userspace delay relays
# (lab_up --relay), one-way delays 1-2, 2-3, 3-4: 2 ms, 4-1: 3 ms (no equal-cost ties: node 1
# reaches node 2 directly, and around the ring 1-4-3-2 once link 1-2 is dead).  The tunnels stay;
# the daemons are (re)started for each mode:
#   bird      BIRD 2 on every node, static costs, BFD (interval KB_BFD_MS 100 ms, multiplier 3)
#   kittbgpd  kittbgpd on every node, cost = "auto", [cost] interval 0.1 s, down_after 3: the same
#             packet rate and multiplier as BFD 100 ms x 3, from its own probe stream (damping off:
#             the tries flap the same link every ~20 s; damping would hold it down after the third)
#   mixed     nodes 1 and 3 kittbgpd, 2 and 4 BIRD; BFD on every link (kittbgpd `bfd = true`), so
#             the dead link 1-2 is kittbgpd <-> BIRD
# Per mode:
#   outage    link 1-2 blackholed in both directions (tunnel interfaces stay up), KB_TRIES (3) times:
#             one-way UDP streams 10.255.0.1 -> 10.255.0.2 and back, a datagram every 5 ms
#             (interop/oneway.py); the outage of a direction is its longest silence; then the link
#             is restored and the routes awaited back before the next try (KB_SETTLE_S, 10 s)
#   packets   tunnel 1-2 (node 1's wg2, rx + tx) per second over KB_IDLE_S (30 s), no test traffic:
#             what detection costs on the wire, WireGuard keepalives and BGP keepalives included
#   CPU       daemons and wireguard-go processes of all four nodes over the same KB_IDLE_S: % of
#             one core, per node (wireguard-go's share grows with the packets it carries)
# Then latency steps on link 1-2 (kittbgpd only: BIRD's static costs never follow latency):
# 2 -> 20 ms one-way (node 1's route to node 2 moves around the ring) and back, KB_TRIES times,
# at [cost] interval 0.1 s and at the defaults (1 s): the time from the relay change until node
# 1's kernel route moved.  KB_SOAK_MIN=N (default 0: skipped): N minutes of +-30 % jitter on
# every link with kittbgpd at interval 0.1 s, counting every kernel route change (must be 0).
#
# Usage: interop/bench_detect.sh [/path/to/kittbgpd]   (root; about 6 minutes, + the soak)
# Environment: KB_TRIES (3), KB_SETTLE_S (10), KB_IDLE_S (20), KB_BFD_MS (100), KB_STEP_SETTLE_S
# (35: more than min_change_interval), KB_SOAK_MIN (0), KB_MODES ("bird kittbgpd mixed"),
# KB_SKIP_STEPS=1.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=interop/lib.sh
source "$HERE/lib.sh"

lab_args "$@"

TRIES=${KB_TRIES:-3}
SETTLE_S=${KB_SETTLE_S:-10}
IDLE_S=${KB_IDLE_S:-30}
BFD_MS=${KB_BFD_MS:-100}
export KB_BFD_INTERVAL_MS=$BFD_MS KB_BFD_MULT=3   # lab_bird_conf --bfd / kb_conf --bfd
STEP_SETTLE_S=${KB_STEP_SETTLE_S:-35}
SOAK_MIN=${KB_SOAK_MIN:-0}
MODES=${KB_MODES:-"bird kittbgpd mixed"}
NODES=(1 2 3 4)
export KB_BIRD_DEBUG=""   # no debug logging in BIRD, RUST_LOG=info for kittbgpd: what production runs
export RUST_LOG=${RUST_LOG:-info}
TMPD=$(mktemp -d /tmp/kbdetect.XXXXXX)
trap 'rm -rf "$TMPD"' EXIT
now_ms() { echo $(( ${EPOCHREALTIME/./} / 1000 )); }
note() { echo "  $*" >&2; }

lab_exit_hook() { rm -rf "$TMPD"; }

# static costs (BIRD, and kittbgpd towards BIRD in the mixed mode): the links' RTT in us, as
# kittbgpd measures them (factor 1.0), so that every mode chooses the same paths
STATIC="1-2:4000 2-1:4000 2-3:4000 3-2:4000 3-4:4000 4-3:4000 4-1:6000 1-4:6000"
DIRECT_12="fe80::2:1%wg2" AROUND_12="fe80::4:1%wg4"
DIRECT_21="fe80::1:2%wg1" AROUND_21="fe80::3:2%wg3"
delays() { lab_delay 1 2 2; lab_delay 2 3 2; lab_delay 3 4 2; lab_delay 4 1 3; }

kind() {  # kind MODE I: bird|kittbgpd
    case $1 in
        bird) echo bird ;;
        kittbgpd|kittbgpd-1s) echo kittbgpd ;;
        mixed) ((($2 % 2) == 1)) && echo kittbgpd || echo bird ;;
    esac
}

# stop_all: every daemon stopped, and their kernel routes gone (BIRD removes its own at shutdown,
# kittbgpd with on_stop = remove), so that the next mode converges on routes of its own
bgp_routes() { local i; for i in "${NODES[@]}"; do ip -n "$(lab_ns "$i")" route show proto bird; ip -n "$(lab_ns "$i")" route show proto 200; done; }
stop_all() {
    local i
    for i in "${NODES[@]}"; do
        kb_stop "$i" TERM 5 2>/dev/null || true
        lab_kill "bird-$i" TERM 5 2>/dev/null || true
    done
    wait_for '[[ -z $(bgp_routes) ]]' 10 0.1 || note "BGP routes left after stopping the daemons: $(bgp_routes | head -3 | tr '\n' ' ')"
}

# start_mode MODE: write every node's config for MODE, start the daemons, wait until node 1 and
# node 2 reach each other directly
start_mode() {
    local mode=$1 i j args
    lab_costs "$STATIC"
    for i in "${NODES[@]}"; do
        if [[ $(kind "$mode" "$i") == bird ]]; then
            lab_bird_conf "$i" --bfd
            lab_bird_start "$i"
            continue
        fi
        args=(--kernel --kernel-set on_stop=remove)
        for j in $(lab_peers "$i"); do
            if [[ $(kind "$mode" "$j") == kittbgpd ]]; then lab_cost "$i" "$j" auto
            fi
        done
        case $mode in
            kittbgpd-1s) ;;
            # damping off: the tries blackhole the same link every ~20 s, and a third flap within a
            # minute would keep it down ~2 min (that is what damping is for; detection is the same)
            *) args+=(--cost-set interval=0.1 --cost-set down_after=3 --cost-set damping=false) ;;
        esac
        # every neighbor of a kittbgpd node in the mixed mode is a BIRD node: BFD with all
        [[ $mode != mixed ]] || args+=(--bfd)
        kb_conf "$i" "${args[@]}"
        kb_start "$i" "$BIN"
    done
    wait_for "[[ \$(lab_nh 1 10.255.0.2) == $DIRECT_12 && \$(lab_nh 2 10.255.0.1) == $DIRECT_21 && \$(lab_nh 3 10.255.0.1) == fe80::2:3%wg2 ]]" 90 0.1 \
        || lab_die "$mode: nodes 1 and 2 do not route to each other directly within 90 s"
    note "$mode: converged after $WAITED_MS ms"
}

# outage_try MODE N: one blackhole of link 1-2 with the one-way streams; appends to the files
outage_try() {
    local mode=$1 n=$2 secs=7 t_bh o12 o21
    lab_run 2 "rx12" "$TMPD/rx12.log" "$PYTHON" "$HERE/oneway.py" recv --port 9912 --seconds $((secs + 1)) --out "$TMPD/rx12"
    lab_run 1 "rx21" "$TMPD/rx21.log" "$PYTHON" "$HERE/oneway.py" recv --port 9921 --seconds $((secs + 1)) --out "$TMPD/rx21"
    sleep 0.3
    lab_run 1 "tx12" "$TMPD/tx12.log" "$PYTHON" "$HERE/oneway.py" send --to 10.255.0.2 --from 10.255.0.1 --port 9912 --interval-ms 5 --seconds "$secs"
    lab_run 2 "tx21" "$TMPD/tx21.log" "$PYTHON" "$HERE/oneway.py" send --to 10.255.0.1 --from 10.255.0.2 --port 9921 --interval-ms 5 --seconds "$secs"
    sleep 1.5
    t_bh=$(now_ms)
    lab_blackhole 1 2
    wait_for "! lab_pid rx12-2 && ! lab_pid rx21-1" $((secs + 5)) 0.2 || note "streams did not end"
    o12=$("$PYTHON" "$HERE/oneway.py" gap --file "$TMPD/rx12" --after "$t_bh" --interval-ms 5)
    o21=$("$PYTHON" "$HERE/oneway.py" gap --file "$TMPD/rx21" --after "$t_bh" --interval-ms 5)
    echo "$o12" >> "$TMPD/$mode.o12"; echo "$o21" >> "$TMPD/$mode.o21"
    note "$mode try $n: outage 1 -> 2 $o12 ms, 2 -> 1 $o21 ms"
    lab_unblackhole 1 2
    wait_for "[[ \$(lab_nh 1 10.255.0.2) == $DIRECT_12 && \$(lab_nh 2 10.255.0.1) == $DIRECT_21 ]]" 180 0.1 \
        && note "$mode: link 1-2 used again $WAITED_MS ms after it was restored" \
        || note "$mode: link 1-2 not used again within 180 s"
    sleep "$SETTLE_S"
}

# idle MODE: packets/s on tunnel 1-2 and CPU of the daemons and wireguard-go over IDLE_S
idle() {
    local mode=$1 i j p pk0 pk1 d0=0 d1=0 w0=0 w1=0 pids_d=() pids_w=()
    for i in "${NODES[@]}"; do
        if [[ $(kind "$mode" "$i") == bird ]]; then p=$(lab_pid "bird-$i"); else p=$(lab_pid "kittbgpd-$i"); fi
        pids_d+=("$p")
        for j in $(lab_peers "$i"); do pids_w+=("$(lab_pid "wg-$i-$j")"); done
    done
    # CPU time in ns of every thread of the processes (schedstat: ns, where /proc/PID/stat counts
    # 10 ms ticks; BIRD runs BFD in a thread of its own)
    ticks() { local q; for q in "$@"; do cat /proc/"$q"/task/*/schedstat; done | awk '{ s += $1 } END { printf "%.0f\n", s }'; }  # %.0f: mawk caps %d at 2^31
    pkts() { lab_exec 1 cat /sys/class/net/wg2/statistics/rx_packets /sys/class/net/wg2/statistics/tx_packets | awk '{ s += $1 } END { print s }'; }
    ((${#pids_w[@]} == 8)) || note "$mode: ${#pids_w[@]} wireguard-go processes found (8 expected): ${pids_w[*]}"
    pk0=$(pkts); d0=$(ticks "${pids_d[@]}"); w0=$(ticks "${pids_w[@]}")
    sleep "$IDLE_S"
    pk1=$(pkts); d1=$(ticks "${pids_d[@]}"); w1=$(ticks "${pids_w[@]}")
    awk -v a="$pk0" -v b="$pk1" -v s="$IDLE_S" 'BEGIN { printf "%.1f\n", (b - a) / s }' > "$TMPD/$mode.pps"
    awk -v a="$d0" -v b="$d1" -v s="$IDLE_S" 'BEGIN { printf "%.3f\n", (b - a) / 1e9 / s * 100 / 4 }' > "$TMPD/$mode.cpu_d"
    awk -v a="$w0" -v b="$w1" -v s="$IDLE_S" 'BEGIN { printf "%.3f\n", (b - a) / 1e9 / s * 100 / 4 }' > "$TMPD/$mode.cpu_w"
    note "$mode: $(cat "$TMPD/$mode.pps") packets/s on tunnel 1-2; CPU per node: daemon $(cat "$TMPD/$mode.cpu_d") %, wireguard-go $(cat "$TMPD/$mode.cpu_w") %"
}

# steps MODE: latency step 2 -> 20 ms on link 1-2 and back, TRIES times
steps() {
    local mode=$1 n t0 ms
    for ((n = 1; n <= TRIES; n++)); do
        sleep "$STEP_SETTLE_S"
        t0=$(now_ms); lab_delay 1 2 20
        ms=$(lab_wait_nh 1 10.255.0.2 "$AROUND_12" 30 "$t0") || true
        echo "$ms" >> "$TMPD/$mode.up"; note "$mode try $n: 2 -> 20 ms: node 1 around the ring after $ms ms"
        sleep "$STEP_SETTLE_S"
        t0=$(now_ms); lab_delay 1 2 2
        ms=$(lab_wait_nh 1 10.255.0.2 "$DIRECT_12" 30 "$t0") || true
        echo "$ms" >> "$TMPD/$mode.down"; note "$mode try $n: 20 -> 2 ms: node 1 direct again after $ms ms"
    done
}

# soak MINUTES: +-30 % jitter everywhere, kernel route changes counted on every node
soak() {
    local end snap prev i changes=0
    lab_delay 1 2 2 0.6; lab_delay 2 3 2 0.6; lab_delay 3 4 2 0.6; lab_delay 4 1 3 0.9
    sleep 5
    snapshot() { for i in "${NODES[@]}"; do ip -n "$(lab_ns "$i")" route show proto 200; ip -n "$(lab_ns "$i")" -6 route show proto 200; done | sort; }
    prev=$(snapshot); end=$(( $(now_ms) + $1 * 60000 ))
    while (( $(now_ms) < end )); do
        sleep 1
        snap=$(snapshot)
        if [[ $snap != "$prev" ]]; then changes=$((changes + 1)); note "soak: route change: $(diff <(echo "$prev") <(echo "$snap") | grep '^[<>]' | head -4 | tr '\n' ' ')"; fi
        prev=$snap
    done
    echo "$changes" > "$TMPD/soak"
    delays
}

# stats FILE: "median [min, max]" of the ms values in FILE; -1 (never) counts as the largest
stats() {
    [[ -s $1 ]] || { echo "-"; return; }
    "$PYTHON" -c '
import sys
v = [int(x) for x in open(sys.argv[1]).read().split()]
k = sorted(v, key=lambda x: float("inf") if x < 0 else x)
f = lambda x: "never" if x < 0 else ("%d ms" % x if x < 1000 else "%.2f s" % (x / 1000))
m = k[len(k) // 2]
print(f(m) if len(k) == 1 else "%s [%s, %s]" % (f(m), f(k[0]), f(k[-1])))' "$1"
}
val() { [[ -s $TMPD/$1 ]] && cat "$TMPD/$1" || echo "-"; }

note "kittbgpd: $BIN; modes: $MODES; $TRIES tries per event"
lab_init
lab_up 4 ring --relay 2>/dev/null
delays
for mode in $MODES; do
    echo "== $mode"
    start_mode "$mode"
    sleep 5
    idle "$mode"
    for ((n = 1; n <= TRIES; n++)); do outage_try "$mode" "$n"; done
    if [[ $mode == kittbgpd && ${KB_SKIP_STEPS:-0} != 1 ]]; then steps kittbgpd; fi
    if [[ $mode == kittbgpd ]] && ((SOAK_MIN > 0)); then soak "$SOAK_MIN"; fi
    stop_all
done
if [[ ${KB_SKIP_STEPS:-0} != 1 ]]; then
    echo "== kittbgpd-1s (default [cost] interval 1 s: latency steps only)"
    start_mode kittbgpd-1s
    steps kittbgpd-1s
    stop_all
fi

echo
echo "Failure detection, ring of four over wireguard-go, link 1-2 blackholed ($TRIES tries; median [min, max])"
printf '| %-44s | %-24s | %-24s | %-24s |\n' "" "BIRD 2 + BFD ${BFD_MS} ms x 3" "kittbgpd (0.1 s x 3)" "mixed: kittbgpd 1, BIRD 2, BFD"
printf '|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..46})" "$(printf -- '-%.0s' {1..26})" "$(printf -- '-%.0s' {1..26})" "$(printf -- '-%.0s' {1..26})"
printf '| %-44s | %-24s | %-24s | %-24s |\n' "outage 1 -> 2" "$(stats "$TMPD/bird.o12")" "$(stats "$TMPD/kittbgpd.o12")" "$(stats "$TMPD/mixed.o12")"
printf '| %-44s | %-24s | %-24s | %-24s |\n' "outage 2 -> 1" "$(stats "$TMPD/bird.o21")" "$(stats "$TMPD/kittbgpd.o21")" "$(stats "$TMPD/mixed.o21")"
printf '| %-44s | %-24s | %-24s | %-24s |\n' "packets/s on tunnel 1-2 (both directions)" "$(val bird.pps)" "$(val kittbgpd.pps)" "$(val mixed.pps)"
printf '| %-44s | %-24s | %-24s | %-24s |\n' "daemon CPU per node, % of a core" "$(val bird.cpu_d)" "$(val kittbgpd.cpu_d)" "$(val mixed.cpu_d)"
printf '| %-44s | %-24s | %-24s | %-24s |\n' "wireguard-go CPU per node, % of a core" "$(val bird.cpu_w)" "$(val kittbgpd.cpu_w)" "$(val mixed.cpu_w)"
if [[ ${KB_SKIP_STEPS:-0} != 1 ]]; then
    echo
    echo "Latency step on link 1-2 until node 1's kernel route moved (BIRD: static costs, never)"
    printf '| %-30s | %-24s | %-24s |\n' "" "interval 0.1 s" "interval 1 s (default)"
    printf '|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..32})" "$(printf -- '-%.0s' {1..26})" "$(printf -- '-%.0s' {1..26})"
    printf '| %-30s | %-24s | %-24s |\n' "2 -> 20 ms one-way" "$(stats "$TMPD/kittbgpd.up")" "$(stats "$TMPD/kittbgpd-1s.up")"
    printf '| %-30s | %-24s | %-24s |\n' "20 -> 2 ms one-way" "$(stats "$TMPD/kittbgpd.down")" "$(stats "$TMPD/kittbgpd-1s.down")"
fi
((SOAK_MIN == 0)) || echo "Soak: $SOAK_MIN min of +-30 % jitter on every link: $(val soak) kernel route changes"
