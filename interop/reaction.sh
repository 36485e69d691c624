#!/usr/bin/env bash
# reaction.sh -- how fast kittbgpd reacts to a latency step and to a dead link, measured, against
# the BGP hold-time baseline.  A triangle A-B-C (nodes 1, 2, 3) of wireguard-go tunnels through
# the delay relay (lab_up --relay), one-way delays A-B 5 ms, B-C 5 ms, A-C 40 ms, so A reaches C
# through B.  Times are from the relay change (lab_delay / lab_blackhole; applied at once) until
# A's kernel route changes (polled every 50 ms):
#   latency step   B-C 5 -> 80 ms: A's route to C moves to the direct link; and back 80 -> 5 ms
#   dead link      A-B 100 % loss (tunnel interfaces stay up): A's route to B moves to C; and
#                  the link restored: back on A-B
# Run 1: kittbgpd with cost = "auto" on every link and the daemon's default [cost] parameters
# (KB_COST_PARAMS="KEY=VALUE ..." overrides some), hold time KB_HOLD (240 s, the default); each
# event KB_TRIES (3) times, KB_SETTLE_STEP_S (32 s > min_change_interval) after the last change
# for the latency steps (an earlier change would hold the next one back), KB_SETTLE_S (8 s) for
# the dead link.
# Run 2, the baseline: the same daemons restarted with static costs (each link's base RTT) and no
# [cost] table, i.e. no probing, with hold time KB_BASE_HOLD (9 s, keepalive 3 s) so that the
# hold-timer expiry can be measured: a latency step moves nothing (watched KB_OBSERVE_S, 20 s);
# a dead link is noticed only when the hold timer runs out.
# Prints one table (median of the tries, [min, max]); "never" = not within the time allowed.
#
# Usage: interop/reaction.sh [/path/to/kittbgpd]   (root; about 8 minutes)
# Environment: KB_TRIES (3), KB_HOLD (240), KB_BASE_HOLD (9), KB_COST_PARAMS ("KEY=VALUE ...",
# [cost] keys, raw TOML values; default none: the daemon's defaults), KB_SETTLE_STEP_S (32),
# KB_SETTLE_S (8), KB_STEP_S (30),
# KB_OBSERVE_S (20), KB_SKIP_BASELINE=1 / KB_SKIP_AUTO=1 (only one run), KB_KEEP_STATE=1, RUST_LOG (lib.sh).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=interop/lib.sh
source "$HERE/lib.sh"

lab_args "$@"

TRIES=${KB_TRIES:-3}
HOLD=${KB_HOLD:-240}
BASE_HOLD=${KB_BASE_HOLD:-9}
SETTLE_S=${KB_SETTLE_S:-8}
SETTLE_STEP_S=${KB_SETTLE_STEP_S:-32}
STEP_S=${KB_STEP_S:-30}
OBSERVE_S=${KB_OBSERVE_S:-20}
NODES=(1 2 3)
TMPD=$(mktemp -d /tmp/kbreact.XXXXXX)
COST_EFFECTIVE="?"
trap 'rm -rf "$TMPD"' EXIT
now_ms() { echo $(( ${EPOCHREALTIME/./} / 1000 )); }
note() { echo "  $*" >&2; }

lab_exit_hook() {
    local rc=$1 i
    if ((rc != 0)); then
        echo "aborted (status $rc)"
        for i in "${NODES[@]}"; do
            [[ -f $(lab_dir "$i")/kittbgpd.log ]] || continue
            echo "== node $i log (last WARN/ERROR/INFO)"; grep -aE ' (WARN|ERROR|INFO) ' "$(lab_dir "$i")/kittbgpd.log" | tail -n 8
        done
    fi
    rm -rf "$TMPD"
}

# A (node 1): to C = 10.255.0.3, to B = 10.255.0.2; next hops over B (wg2) and C (wg3)
VIA_B="fe80::2:1%wg2" VIA_C="fe80::3:1%wg3"
base_delays() { lab_delay 1 2 5; lab_delay 2 3 5; lab_delay 3 1 40; }
settle() { sleep "$SETTLE_S"; }

# stats FILE: "median [min, max]" in seconds of the ms values in FILE (one a line); a -1 (never)
# counts as the largest
stats() {
    "$PYTHON" -c '
import sys
v = [int(x) for x in open(sys.argv[1]).read().split()]
if not v:
    print("-"); sys.exit()
k = sorted(v, key=lambda x: float("inf") if x < 0 else x)
f = lambda x: "never" if x < 0 else "%.1f s" % (x / 1000)
m = k[len(k) // 2]
print(f(m) if len(k) == 1 else "%s [%s, %s]" % (f(m), f(k[0]), f(k[-1])))
' "$@"
}

start_all() {  # start_all HOLD KEEPALIVE static|auto: (re)write configs, start every daemon, converge
    local hold=$1 ka=$2 mode=$3 i j args=() kv
    if [[ $mode == auto ]]; then
        for kv in ${KB_COST_PARAMS:-}; do args+=(--cost-set "$kv"); done
        for i in "${NODES[@]}"; do for j in $(lab_peers "$i"); do lab_cost "$i" "$j" auto; done; done
    else
        lab_costs "1-2:11 2-1:11 2-3:11 3-2:11 1-3:81 3-1:81"   # the base RTTs
    fi
    [[ -z $ka ]] || args+=(--keepalive "$ka")
    for i in "${NODES[@]}"; do kb_conf "$i" --hold "$hold" --kernel --kernel-set on_stop=remove "${args[@]}"; done
    "$TMPD/kittbgpd" check -c "$(lab_dir 1)/kittbgpd.toml" > "$TMPD/check.out" 2>&1 \
        || { cat "$TMPD/check.out" >&2; lab_die "kittbgpd check rejects $(lab_dir 1)/kittbgpd.toml"; }
    # the effective [cost] parameters, one line (from the check output's [cost] table)
    [[ $mode != auto ]] || COST_EFFECTIVE=$(awk '/^\[cost\]/ { f = 1; next } /^\[/ { f = 0 } f && NF { printf "%s%s", sep, $0; sep = ", " }' "$TMPD/check.out")
    for i in "${NODES[@]}"; do kb_start "$i" "$TMPD/kittbgpd"; done
    wait_for "[[ \$(lab_nh 1 10.255.0.3) == $VIA_B && \$(lab_nh 1 10.255.0.2) == $VIA_B ]]" 60 0.1 \
        || lab_die "A's routes to B and C do not go over B within 60 s ($mode)"
    note "converged ($mode, hold $hold s): A -> C over B after $WAITED_MS ms"
}
stop_all() { local i; for i in "${NODES[@]}"; do kb_stop "$i" TERM 5 || true; done; }

# step_tries OUT_UP OUT_DOWN TIMEOUT_S: latency step B-C 5 -> 80 ms and back, TRIES times
step_tries() {
    local n t0 ms
    for ((n = 1; n <= TRIES; n++)); do
        sleep "$SETTLE_STEP_S"
        t0=$(now_ms); lab_delay 2 3 80
        ms=$(lab_wait_nh 1 10.255.0.3 "$VIA_C" "$3" "$t0") || true
        echo "$ms" >> "$1"; note "try $n: latency step 5 -> 80 ms: A -> C direct after $ms ms"
        sleep "$SETTLE_STEP_S"
        t0=$(now_ms); lab_delay 2 3 5
        ms=$(lab_wait_nh 1 10.255.0.3 "$VIA_B" "$STEP_S" "$t0") || true
        echo "$ms" >> "$2"; note "try $n: latency step 80 -> 5 ms: A -> C over B again after $ms ms"
    done
}
# dead_tries OUT_DEAD OUT_BACK TIMEOUT_S RETURN_S: link A-B blackholed and restored, TRIES times
dead_tries() {
    local n t0 ms
    for ((n = 1; n <= TRIES; n++)); do
        settle
        t0=$(now_ms); lab_blackhole 1 2
        ms=$(lab_wait_nh 1 10.255.0.2 "$VIA_C" "$3" "$t0") || true
        echo "$ms" >> "$1"; note "try $n: link A-B dead: A -> B over C after $ms ms (A's session wg2: $(kb_neighbor_state 1 wg2))"
        settle
        t0=$(now_ms); lab_unblackhole 1 2
        ms=$(lab_wait_nh 1 10.255.0.2 "$VIA_B" "$4" "$t0") || true
        echo "$ms" >> "$2"; note "try $n: link A-B restored: A -> B direct again after $ms ms"
        wait_for "[[ \$(lab_nh 1 10.255.0.3) == $VIA_B ]]" 30 0.1 || note "A -> C not back over B"
    done
}

cp "$BIN" "$TMPD/kittbgpd"
note "kittbgpd: $BIN (a copy runs); $TRIES tries per event"
lab_init
lab_up 3 ring --relay 2>/dev/null
base_delays

# ---- run 1: cost = "auto"
if [[ ${KB_SKIP_AUTO:-0} != 1 ]]; then
    start_all "$HOLD" "" auto
    step_tries "$TMPD/a_up" "$TMPD/a_down" "$STEP_S"
    dead_tries "$TMPD/a_dead" "$TMPD/a_back" "$STEP_S" "$STEP_S"
    stop_all
fi

# ---- run 2: static costs, hold timer only
if [[ ${KB_SKIP_BASELINE:-0} != 1 ]]; then
    start_all "$BASE_HOLD" $((BASE_HOLD / 3)) static
    settle
    t0=$(now_ms); lab_delay 2 3 80
    ms=$(lab_wait_nh 1 10.255.0.3 "$VIA_C" "$OBSERVE_S" "$t0") || true
    echo "$ms" > "$TMPD/s_up"; note "static: latency step 5 -> 80 ms: A -> C direct after $ms ms (-1: never within $OBSERVE_S s)"
    lab_delay 2 3 5
    dead_tries "$TMPD/s_dead" "$TMPD/s_back" $((BASE_HOLD + 10)) 60
fi

touch "$TMPD"/{a,s}_{up,down,dead,back}
KA_DEF=$((HOLD / 3))
row() { printf '%-28s | %-24s | %-28s | %s\n' "$@"; }
echo
echo "Reaction time: triangle A-B-C over wireguard-go + delay relay, one-way delays A-B 5, B-C 5, A-C 40 ms;"
echo "from the relay change to A's kernel route change (polled every 50 ms); median of $TRIES [min, max]"
row "event" "kittbgpd cost = \"auto\"" "static cost, hold $BASE_HOLD s" "static cost, hold $HOLD s (default)"
row "" "(hold $HOLD s)" "(measured baseline)" "(BGP hold timer only)"
row "----------------------------" "------------------------" "----------------------------" "----------------------------"
s_up=$(stats "$TMPD/s_up"); [[ $s_up == never* ]] && s_up="never (watched $OBSERVE_S s)"
row "latency step B-C 5 -> 80 ms" "$(stats "$TMPD/a_up")" "$s_up" "never"
row "latency step B-C 80 -> 5 ms" "$(stats "$TMPD/a_down")" "-" "-"
row "dead link A-B (100 % loss)" "$(stats "$TMPD/a_dead")" "$(stats "$TMPD/s_dead")" "$((HOLD - KA_DEF))-$HOLD s (not measured)"
row "link A-B restored" "$(stats "$TMPD/a_back")" "$(stats "$TMPD/s_back")" "-"
echo "kittbgpd: [cost] ${KB_COST_PARAMS:-daemon defaults}: $COST_EFFECTIVE"
echo "static: costs 11/11/81 (the base RTTs), no probing; the session drops when the hold timer runs out, i.e."
echo "between hold - keepalive and hold after the last keepalive got through (hold $BASE_HOLD s: keepalive $((BASE_HOLD / 3)) s;"
echo "hold $HOLD s: keepalive $KA_DEF s); its return waits for the reconnect (connect_retry 5 s, error wait 5 s doubling)"
