#!/usr/bin/env bash
# test_latency.sh -- step-4 lab: measured latency as link cost.  A triangle A-B-C (nodes 1, 2, 3;
# links 1-2, 2-3, 3-1) of wireguard-go tunnels whose UDP runs through the userspace delay relay
# (interop/relay.py in the hub, lab_up --relay), kittbgpd on every node with `cost = "auto"` on
# every neighbor (RTT to the neighbor's link-local, ICMPv6 echo, turned into the link cost) and
# kernel routes on (proto 200).
#
# Usage: interop/test_latency.sh [--static] [/path/to/kittbgpd]   (root)
#   --static: self-test / baseline: static costs (each link's base RTT, as a BIRD-like fabric
#   would configure them) instead of "auto", no [cost] table: a and c pass, b and d must FAIL
#   (latency does not move routes; a dead link is only noticed at the hold timer)
# Default binary: target/release/kittbgpd or target/debug/kittbgpd, whichever is newer (copied to
# /tmp for the run).  Prints PASS/FAIL lines with timings and a final "N passed, M failed"; exit 1
# on any failure.  Cleans up only its own namespaces and PIDs (lib.sh), also when interrupted.
#
# One-way delays (relay, per direction; RTT = 2 x delay + ~1 ms): A-B 5 ms, B-C 5 ms, A-C 40 ms.
# Expected paths: Dijkstra with each link's cost taken as its RTT (any cost growing with the RTT
# gives the same paths here; no near ties).
#
#   0  every session Established (6 ends)
#   a  A reaches C's loopbacks through B (A's kernel next hop for 10.255.0.3 and fd00:255::3 is
#      fe80::2:1 on wg2) and C reaches A's through B (fe80::2:3 on wg2); every node's table is
#      as expected (time from the daemons' start); pings A <-> C; the MEDs and `show links` shown
#   b  (KB_MIN_CHANGE_S, 30 s, after the start) B-C raised to 80 ms: A's route to C moves to the
#      direct link (wg3) within KB_STEP_S (16 s; documented ~5 s: the step detector confirms at the 5th
#      sample at the new level, and a x2 change is not held by min_change_interval); the
#      time from the delay change to the kernel route change on A is printed (and for C -> A and
#      every node's table); then B-C back to 5 ms: the routes return (time printed)
#   c  +/-30 % jitter on every link (base delays): for KB_JITTER_S (180) s every node's kernel
#      routes are polled every 0.5 s: PASS if no route changes at all (MED changes are counted
#      and shown too)
#   d  link A-B blackholed (relay: 100 % loss both ways; the tunnel interfaces stay up): A's and
#      B's routes over it are withdrawn within KB_DOWN_AFTER x KB_PROBE_INTERVAL + KB_PROBE_TIMEOUT
#      + 0.5 s (4.5 s at 3 x 1 s + 1 s), far below the hold time (KB_HOLD, 240 s); every node's table
#      then equals Dijkstra without A-B and stays so for KB_BLACKHOLE_S (10 s); then the link
#      is restored: every table is the first one again within KB_RETURN_S (60 s; time printed)
#   z  every daemon still running
# Environment: KB_HOLD (240), KB_PROBE_INTERVAL (1), KB_DOWN_AFTER (3), KB_PROBE_TIMEOUT (1):
# written to the [cost] table (the rest are the daemon's defaults: window 16, hold_down 1 s,
# min_change_interval 30 s = KB_MIN_CHANGE_S); KB_COST_EXTRA ("KEY=VALUE ...", more [cost]
# keys, raw TOML values); KB_STEP_S (16), KB_JITTER_S (180), KB_BLACKHOLE_S (10), KB_RETURN_S
# (60), KB_CONVERGE_S (30), KB_KEEP_STATE=1 (keep logs), KB_LAB_PREFIX, RUST_LOG (lib.sh).
# Run time: about 5 minutes with KB_JITTER_S=180 (2 minutes with KB_JITTER_S=10).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=interop/lib.sh
source "$HERE/lib.sh"

BIN="" STATIC=0
for arg in "$@"; do
    case $arg in
        --static) STATIC=1 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "test_latency.sh: unknown option $arg" >&2; exit 2 ;;
        *) BIN=$arg ;;
    esac
done
BIN=$(lab_pick_bin test_latency.sh "$BIN")
[[ $(id -u) == 0 ]] || lab_die "must run as root (network namespaces)"

HOLD=${KB_HOLD:-240}
INTERVAL=${KB_PROBE_INTERVAL:-1}
DOWN_AFTER=${KB_DOWN_AFTER:-3}
PROBE_TIMEOUT=${KB_PROBE_TIMEOUT:-1}
MIN_CHANGE_S=${KB_MIN_CHANGE_S:-30}
STEP_S=${KB_STEP_S:-16}
JITTER_S=${KB_JITTER_S:-180}
BLACKHOLE_S=${KB_BLACKHOLE_S:-10}
RETURN_S=${KB_RETURN_S:-60}
CONVERGE_S=${KB_CONVERGE_S:-30}
NODES=(1 2 3)
NAME=([1]=A [2]=B [3]=C)
# one-way delays per link (ms), base and the step of b
BASE_DELAYS="1-2:5 2-3:5 3-1:40"
STEP_DELAYS="1-2:5 2-3:80 3-1:40"
DEAD="1-2"          # the link blackholed in d
TMPD=$(mktemp -d /tmp/kblat.XXXXXX)
trap 'rm -rf "$TMPD"' EXIT   # until lab_init's trap takes over (lab_exit_hook removes it then)

PASSED=0 FAILED=0
pass() { PASSED=$((PASSED+1)); echo "PASS $*"; }
fail() { FAILED=$((FAILED+1)); echo "FAIL $*"; }
info() { echo "     $*"; }
now_ms() { echo $(( ${EPOCHREALTIME/./} / 1000 )); }
secs() { printf '%d.%01d s' $(($1 / 1000)) $(($1 % 1000 / 100)); }
msecs() { if (($1 < 0)); then echo never; else printf '%d ms' "$1"; fi; }

lab_exit_hook() {
    local rc=$1
    if ((rc != 0)); then
        [[ -d $KB_LAB_STATE ]] && diagnostics
        echo "interrupted or aborted (status $rc) after the checks above"
    fi
    rm -rf "$TMPD"
    echo "$PASSED passed, $FAILED failed"
    ((FAILED == 0))
}

diagnostics() {
    local i
    echo "---- diagnostics (prefix $KB_LAB_PREFIX, state $KB_LAB_STATE) ----"
    for i in "${NODES[@]}"; do
        echo "== node $i (${NAME[$i]}): kernel routes"
        lab_kernel_routes "$i" | sed 's/^/   /' || true
        echo "== node $i: kittbgpd show links / routes --best"
        kb_show "$i" links 2>&1 | head -n 12 || true
        kb_show "$i" routes --best 2>&1 | head -n 12 || true
        echo "== node $i: kittbgpd log, last WARN/ERROR/INFO lines"
        grep -aE ' (WARN|ERROR|INFO) ' "$(lab_dir "$i")/kittbgpd.log" 2>/dev/null | tail -n 15 || true
    done
    echo "----"
}

# set_delays "I-J:MS ..." [JITTER_PCT]: one-way delays on the links (both directions), jitter as
# a percentage of each delay
set_delays() {
    local e jit=${2:-0} ms
    for e in $1; do
        ms=${e#*:}
        lab_delay "${e%%-*}" "$(cut -d: -f1 <<< "${e#*-}")" "$ms" "$(awk -v m="$ms" -v p="$jit" 'BEGIN { print m * p / 100 }')"
    done
}
# costs_of "I-J:MS ..." [DEAD]: per-direction costs for lab_expected_paths (RTT = 2 x MS + 1)
costs_of() {
    local e i j out=""
    for e in $1; do
        i=${e%%-*}; j=$(cut -d: -f1 <<< "${e#*-}")
        [[ "$i-$j" == "${2:-x}" || "$j-$i" == "${2:-x}" ]] && continue
        c=$(( 2 * ${e#*:} + 1 )); out+="$i-$j:$c $j-$i:$c "
    done
    echo "$out"
}
# expected DELAYS [DEAD]: "I PREFIX NH%DEV" rows
expected() { lab_expected_paths "$(costs_of "$1" "${2:-}")" "${NODES[*]}" | awk '{ print $1, $2, $3 }'; }
# expected paths with the hops, for display
expected_paths() { lab_expected_paths "$(costs_of "$1" "${2:-}")" "${NODES[*]}"; }

# ktab I...: "I PREFIX NH%DEV" per kernel route of nodes i... (attributes spelled out unless
# proto 200 / metric 32 / table main)
ktab() {
    lab_kernel_routes "$@" | awk '{ d = $3; if ($5 != "200" || $7 != "32" || $11 != "main") d = d " proto " $5 " metric " $7 " table " $11; print $1, $2, d }'
}
rows_of() { awk -v i="$2" '$1 == i' <<< "$1"; }
lookup() { awk -v i="$2" -v p="$3" '$1 == i && $2 == p { $1 = ""; $2 = ""; sub(/^  /, ""); print }' <<< "$1"; }

nh() { lab_nh "$@"; }
wait_nh() { lab_wait_nh "$@"; }

# converge_to EXPECTED TIMEOUT_S [T0_MS]: poll every node's table until it equals EXPECTED; sets
# GOT, CONV_MS (-1 on timeout), NODE_MS[i] (first time node i matched and kept matching)
declare -A NODE_MS
converge_to() {
    local exp=$1 timeout=$2 t0=${3:-$(now_ms)} t i
    CONV_MS=-1
    for i in "${NODES[@]}"; do NODE_MS[$i]=-1; done
    while :; do
        GOT=$(ktab "${NODES[@]}"); t=$(( $(now_ms) - t0 ))
        for i in "${NODES[@]}"; do
            if [[ $(rows_of "$GOT" "$i") == "$(rows_of "$exp" "$i")" ]]; then ((NODE_MS[$i] >= 0)) || NODE_MS[$i]=$t
            else NODE_MS[$i]=-1; fi
        done
        if [[ $GOT == "$exp" ]]; then CONV_MS=$t; return 0; fi
        ((t < timeout * 1000)) || return 1
        sleep 0.1
    done
}

# show_table EXPECTED GOT PATHS LABEL: node x prefix, expected vs kernel; PASS/FAIL per node
show_table() {
    local exp=$1 got=$2 paths=$3 label=$4 i p e g mark bad
    printf '     %-6s %-17s %-30s %s\n' node prefix "expected (path)" "got (kernel)"
    for i in "${NODES[@]}"; do
        bad=()
        while read -r _ p e _ hops; do
            g=$(lookup "$got" "$i" "$p")
            if [[ $g == "$e" ]]; then mark=" "; else mark="X"; bad+=("$p"); fi
            printf '   %s %-6s %-17s %-30s %s\n' "$mark" "$i ${NAME[$i]}" "$p" "$e ($hops)" "${g:-(none)}"
        done < <(rows_of "$paths" "$i")
        if ((${#bad[@]} == 0)); then pass "$label node $i (${NAME[$i]}): kernel routes as expected"
        else fail "$label node $i (${NAME[$i]}): kernel routes as expected; wrong or missing: ${bad[*]}"; fi
    done
}

# meds I: node i's best routes "prefix nh med" (show routes --json)
meds() { kb_best_routes "$1" 2>/dev/null | LC_ALL=C sort; }
# links_view I: `show links --json`, one line per link: name state cost RTTs loss, and the number
# of applied cost changes (history) with the latest; nothing if the daemon has no `show links`
links_view() {
    kb_show "$1" links --json 2>/dev/null | "$PYTHON" -c '
import json, sys
try:
    d = json.load(sys.stdin)
except ValueError:
    sys.exit(0)
if isinstance(d, dict):
    d = d.get("links", d.get("result", []))
f = lambda v, fmt="%.2f": "-" if v is None else (fmt % v if isinstance(v, float) else str(v))
for l in d:
    h = l.get("history") or []
    last = max(h, key=lambda e: -e.get("ago_s", 0)) if h else None
    print("%-4s %-8s cost %-7s rtt %s ms, smoothed %s ms, loss %s%%, %d changes%s" % (
        l.get("name", "?"), l.get("state", "?"), f(l.get("cost")), f(l.get("last_rtt_ms")),
        f(l.get("smoothed_rtt_ms")), f((l.get("loss") or 0) * 100, "%.0f"), len(h),
        "" if not last else " (latest %.0f s ago: %s -> %s, %s)" % (last.get("ago_s", 0), f(last.get("old")), f(last.get("new")), last.get("reason", ""))))
' 2>/dev/null || true
}
# cost_changes I SECONDS: applied cost changes on node i'"'"'s links in the last SECONDS (history)
cost_changes() {
    kb_show "$1" links --json 2>/dev/null | "$PYTHON" -c '
import json, sys
try:
    d = json.load(sys.stdin)
except ValueError:
    print(-1); sys.exit(0)
if isinstance(d, dict):
    d = d.get("links", d.get("result", []))
print(sum(1 for l in d for e in (l.get("history") or []) if e.get("ago_s", 1e9) <= float(sys.argv[1])))
' "$2" 2>/dev/null || echo -1
}
show_links() {
    local i out
    for i in "$@"; do
        out=$(links_view "$i")
        if [[ -n $out ]]; then sed "s/^/     node $i ${NAME[$i]} /" <<< "$out"
        else info "node $i ${NAME[$i]}: (no show links) best routes: $(meds "$i" | awk '{ printf "%s %s med %s; ", $1, $2, $3 }')"; fi
    done
}
# link_rtt I J: ping over the tunnel (5 x 0.2 s), "min/avg/max ms"
link_rtt() { ip netns exec "$(lab_ns "$1")" ping -6 -c5 -i0.2 -W2 -q "fe80::$2:$1%wg$2" 2>/dev/null | awk -F'[ /]' '/^rtt/ { print $7 "/" $8 "/" $9 " ms" }'; }
all_established() {
    local i j
    for i in "${NODES[@]}"; do for j in $(lab_peers "$i"); do kb_established "$i" "wg$j" || return 1; done; done
}
sessions_summary() {
    local i j out=""
    for i in "${NODES[@]}"; do
        for j in $(lab_peers "$i"); do out+="$i>wg$j:$(kb_neighbor_state "$i" "wg$j") "; done
    done
    echo "$out"
}

# ---------------------------------------------------------------- setup
T0=$(now_ms)
cp "$BIN" "$TMPD/kittbgpd"
echo "kittbgpd: $BIN (running a copy: $TMPD/kittbgpd)"
if ((STATIC)); then what="static costs (--static)"; else what="cost = \"auto\", probes every $INTERVAL s, timeout $PROBE_TIMEOUT s, down after $DOWN_AFTER missed"; fi
echo "triangle A-B-C (nodes 1 2 3) through delay relays; one-way delays (ms): $BASE_DELAYS; $what; hold $HOLD s"
EXP_BASE=$(expected "$BASE_DELAYS"); PATHS_BASE=$(expected_paths "$BASE_DELAYS")
EXP_STEP=$(expected "$STEP_DELAYS"); PATHS_STEP=$(expected_paths "$STEP_DELAYS")
EXP_DEAD=$(expected "$BASE_DELAYS" "$DEAD"); PATHS_DEAD=$(expected_paths "$BASE_DELAYS" "$DEAD")
read -r DI DJ <<< "${DEAD/-/ }"

lab_init
lab_up 3 ring --relay
set_delays "$BASE_DELAYS"
costargs=(--cost-set "interval=$INTERVAL" --cost-set "down_after=$DOWN_AFTER" --cost-set "probe_timeout=$PROBE_TIMEOUT")
for kv in ${KB_COST_EXTRA:-}; do costargs+=(--cost-set "$kv"); done
if ((STATIC)); then
    costargs=()
    lab_costs "$(costs_of "$BASE_DELAYS")"
    info "--static: static costs $(costs_of "$BASE_DELAYS")(no probing): b and d are expected to FAIL"
fi
for i in "${NODES[@]}"; do
    ((STATIC)) || for j in $(lab_peers "$i"); do lab_cost "$i" "$j" auto; done
    kb_conf "$i" --hold "$HOLD" --kernel --kernel-set on_stop=remove "${costargs[@]}"
done
"$TMPD/kittbgpd" check -c "$(lab_dir 1)/kittbgpd.toml" > "$TMPD/check.out" 2>&1 \
    || { sed 's/^/     /' "$TMPD/check.out"; lab_die "kittbgpd check rejects the config ($(lab_dir 1)/kittbgpd.toml): cost = \"auto\" / [cost] not supported by this binary?"; }
t_start=$(now_ms)
for i in "${NODES[@]}"; do kb_start "$i" "$TMPD/kittbgpd"; done
info "lab up in $(secs $((t_start - T0))); link RTTs (ping over the tunnel): A-B $(link_rtt 1 2), B-C $(link_rtt 2 3), A-C $(link_rtt 1 3)"

# ---------------------------------------------------------------- 0, a
if wait_for all_established 30 0.1; then pass "0  all 6 session ends Established ($(( $(now_ms) - t_start )) ms after the daemons started)"
else fail "0  all 6 session ends Established within 30 s: $(sessions_summary)"; fi

echo "== a: base delays: A <-> C through B"
converge_to "$EXP_BASE" "$CONVERGE_S" "$t_start" || true
info "every table as expected $(msecs "$CONV_MS") after the daemons started"
show_table "$EXP_BASE" "$GOT" "$PATHS_BASE" "a "
a_ok=1
for p in 10.255.0.3 fd00:255::3; do [[ $(nh 1 "$p") == "fe80::2:1%wg2" ]] || a_ok=0; done
for p in 10.255.0.1 fd00:255::1; do [[ $(nh 3 "$p") == "fe80::2:3%wg2" ]] || a_ok=0; done
if ((a_ok)); then pass "a  A's next hop for 10.255.0.3 and fd00:255::3 is B (fe80::2:1%wg2); C's for A's loopbacks is B (fe80::2:3%wg2)"
else fail "a  A -> C and C -> A through B: A has $(nh 1 10.255.0.3) / $(nh 1 fd00:255::3), C has $(nh 3 10.255.0.1) / $(nh 3 fd00:255::1)"; fi
pings=$(lab_ping_matrix 1 3 -- 1 3)
if ! grep -qv ' ok$' <<< "$pings"; then pass "a  pings A <-> C (IPv4 and IPv6, loopback to loopback)"
else fail "a  pings A <-> C: $(tr '\n' ';' <<< "$pings")"; fi
show_links "${NODES[@]}"

# ---------------------------------------------------------------- b: latency step
# the step must not fall within min_change_interval of the links' first cost (that would delay it)
wait_ms=$(( t_start + (MIN_CHANGE_S + 2) * 1000 - $(now_ms) ))
if ((wait_ms > 0)); then info "waiting $(secs "$wait_ms") (min_change_interval $MIN_CHANGE_S s since the first costs)"; sleep "$((wait_ms / 1000)).$(printf '%03d' $((wait_ms % 1000)))"; fi
echo "== b: B-C one-way delay 5 -> 80 ms (documented reaction: ~5 s = the 5th sample at the new level confirms the step)"
t0=$(now_ms)
set_delays "$STEP_DELAYS"
ms_a=$(wait_nh 1 10.255.0.3 "fe80::3:1%wg3" "$STEP_S" "$t0") || true
ms_a6=$(wait_nh 1 fd00:255::3 "fe80::3:1%wg3" 5 "$t0") || true
ms_c=$(wait_nh 3 10.255.0.1 "fe80::1:3%wg1" 5 "$t0") || true
converge_to "$EXP_STEP" 10 "$t0" || true
if ((ms_a >= 0 && ms_a <= STEP_S * 1000)); then
    pass "b  A's route to C moved to the direct link $ms_a ms after B-C went to 80 ms (reaction time; IPv6 $(msecs "$ms_a6"), C -> A $(msecs "$ms_c"))"
else
    fail "b  A's route to C moved to the direct link within $STEP_S s ($(msecs "$ms_a"); A now: $(nh 1 10.255.0.3))"
fi
for i in "${NODES[@]}"; do info "node $i ${NAME[$i]}: table as expected after $(msecs "${NODE_MS[$i]}")"; done
show_table "$EXP_STEP" "$GOT" "$PATHS_STEP" "b "
show_links "${NODES[@]}"
echo "== b: B-C back to 5 ms (the change just applied holds the cost for min_change_interval, $MIN_CHANGE_S s)"
t0=$(now_ms)
set_delays "$BASE_DELAYS"
ms_back=$(wait_nh 1 10.255.0.3 "fe80::2:1%wg2" "$RETURN_S" "$t0") || true
converge_to "$EXP_BASE" "$RETURN_S" "$t0" || true
if ((CONV_MS >= 0)); then pass "b  back to 5 ms: A's route to C through B again after $ms_back ms, every table as at first after $CONV_MS ms"
else fail "b  back to 5 ms: every table as at first within $RETURN_S s (A -> C: $(msecs "$ms_back"))"; show_table "$EXP_BASE" "$GOT" "$PATHS_BASE" "b "; fi

# ---------------------------------------------------------------- c: jitter
echo "== c: +/-30 % jitter on every link for $JITTER_S s (kernel routes polled every 0.5 s)"
set_delays "$BASE_DELAYS" 30
info "link RTTs with jitter: A-B $(link_rtt 1 2), B-C $(link_rtt 2 3), A-C $(link_rtt 1 3)"
prev=$(ktab "${NODES[@]}")
prev_med=$(for i in "${NODES[@]}"; do meds "$i" | sed "s/^/$i /"; done)
t0=$(now_ms); changes=0 med_changes=0 polls=0
: > "$TMPD/changes"
while (( $(now_ms) - t0 < JITTER_S * 1000 )); do
    sleep 0.5
    cur=$(ktab "${NODES[@]}"); polls=$((polls + 1))
    if [[ $cur != "$prev" ]]; then
        d=$(diff <(echo "$prev") <(echo "$cur") | grep -c '^>' || true)
        changes=$((changes + d))
        { echo "+$(( $(now_ms) - t0 )) ms:"; diff <(echo "$prev") <(echo "$cur") | grep '^[<>]'; } >> "$TMPD/changes"
        prev=$cur
    fi
    if ((polls % 4 == 0)); then   # MEDs every 2 s (the CLI is slower than ip route)
        cur_med=$(for i in "${NODES[@]}"; do meds "$i" | sed "s/^/$i /"; done)
        if [[ $cur_med != "$prev_med" ]]; then
            med_changes=$((med_changes + $(diff <(echo "$prev_med") <(echo "$cur_med") | grep -c '^>' || true)))
            prev_med=$cur_med
        fi
    fi
done
el=$(( ($(now_ms) - t0) / 1000 ))
info "$polls polls in $(secs $(( $(now_ms) - t0 ))); applied link cost changes in that time (show links history): A $(cost_changes 1 "$el"), B $(cost_changes 2 "$el"), C $(cost_changes 3 "$el"); best-route MED changes seen (sampled every 2 s): $med_changes"
show_links "${NODES[@]}"
if ((changes == 0)); then pass "c  no kernel route changed on any node during $JITTER_S s of +/-30 % jitter"
else fail "c  $changes kernel route changes during $JITTER_S s of +/-30 % jitter:"; sed 's/^/     /' "$TMPD/changes" | head -n 40; fi
set_delays "$BASE_DELAYS"

# ---------------------------------------------------------------- d: dead link
# the first probe lost leaves within one interval; down (DOWN_AFTER - 1) intervals + the probe timeout later
down_bound=$(awk -v n="$DOWN_AFTER" -v i="$INTERVAL" -v t="$PROBE_TIMEOUT" 'BEGIN { printf "%d", (n * i + t) * 1000 + 500 }')
echo "== d: link ${NAME[$DI]}-${NAME[$DJ]} ($DEAD) blackholed (relay drops 100 %, both ways)"
converge_to "$EXP_BASE" 10 || true
t0=$(now_ms)
lab_blackhole "$DI" "$DJ"
ms_i=$(wait_nh "$DI" "10.255.0.$DJ" "fe80::3:$DI%wg3" 20 "$t0") || true
ms_j=$(wait_nh "$DJ" "10.255.0.$DI" "fe80::3:$DJ%wg3" 20 "$t0") || true
converge_to "$EXP_DEAD" 20 "$t0" || true
for x in "$DI $DJ $ms_i" "$DJ $DI $ms_j"; do
    read -r i j ms <<< "$x"
    if ((ms >= 0 && ms <= down_bound)); then
        pass "d  node $i (${NAME[$i]}) moved its route to ${NAME[$j]}'s loopback off the dead link after $ms ms (bound $down_bound ms = $DOWN_AFTER x $INTERVAL s + timeout $PROBE_TIMEOUT s + 0.5 s; hold time $HOLD s)"
    else
        fail "d  node $i (${NAME[$i]}) moved its route to ${NAME[$j]}'s loopback off the dead link within $down_bound ms ($(msecs "$ms"); now $(nh "$i" "10.255.0.$j"))"
    fi
done
for i in "${NODES[@]}"; do info "node $i ${NAME[$i]}: table as expected without $DEAD after $(msecs "${NODE_MS[$i]}")"; done
for i in "$DI" "$DJ"; do
    l=$(grep -aE 'WARN.*link down' "$(lab_dir "$i")/kittbgpd.log" | tail -n 1 || true)
    [[ -z $l ]] || info "node $i log: ${l:0:220}"
done
info "sessions: $(sessions_summary)"
show_links "${NODES[@]}"
sleep "$BLACKHOLE_S"
GOT=$(ktab "${NODES[@]}")
show_table "$EXP_DEAD" "$GOT" "$PATHS_DEAD" "d "
echo "== d: link $DEAD restored"
t0=$(now_ms)
lab_unblackhole "$DI" "$DJ"
ms_i=$(wait_nh "$DI" "10.255.0.$DJ" "fe80::$DJ:$DI%wg$DJ" "$RETURN_S" "$t0") || true
converge_to "$EXP_BASE" "$RETURN_S" "$t0" || true
if ((CONV_MS >= 0)); then
    pass "d  link restored: node $DI's route to ${NAME[$DJ]} back on it after $ms_i ms, every table as at first after $CONV_MS ms (sessions: $(sessions_summary))"
else
    fail "d  link restored: every table as at first within $RETURN_S s (node $DI -> ${NAME[$DJ]}: $(msecs "$ms_i"); sessions: $(sessions_summary))"
    show_table "$EXP_BASE" "$GOT" "$PATHS_BASE" "d "
fi
for i in "${NODES[@]}"; do info "node $i ${NAME[$i]}: table as at first after $(msecs "${NODE_MS[$i]}")"; done

# ---------------------------------------------------------------- z
dead=()
for i in "${NODES[@]}"; do lab_pid "kittbgpd-$i" >/dev/null || dead+=("kittbgpd-$i"); done
if ((${#dead[@]} == 0)); then pass "z  every daemon still running"; else fail "z  every daemon still running; gone: ${dead[*]}"; fi
((FAILED == 0)) || diagnostics
echo "total $(secs $(( $(now_ms) - T0 )))"
