#!/usr/bin/env bash
# test_fabric5.sh -- step-3 lab: kernel routes.  Five nodes in a ring (links 1-2, 2-3, 3-4, 4-5,
# 5-1) plus the chord 1-3, over wireguard-go tunnels that each kittbgpd builds from its config
# ([wireguard], step 6; KB_LAB_TUNNELS=1: built by lib.sh with wg/ip), kittbgpd on every node with [kernel] on
# (table main, proto 200, metric 32, on_stop keep), static link costs KB_FABRIC5_COSTS (lib.sh).
#
# Usage: interop/test_fabric5.sh [/path/to/kittbgpd]   (root)
# Default binary: target/release/kittbgpd or target/debug/kittbgpd, whichever is newer (copied to
# /tmp for the run, so a rebuild during the test does not matter).
# Prints PASS/FAIL lines and a final "N passed, M failed"; exit 1 on any failure.  Cleans up only
# its own namespaces and PIDs (lib.sh), also when interrupted.
#
# Expected paths: Dijkstra over the per-direction costs (a node's import adds the cost of the link
# the route came in on; lab_expected_paths).  With the default costs 1<->3 and 5<->3 use the chord
# (5-1-3), 2->4 goes 2-1-5-4, 3<->4 direct; no ties, with every link up and with any one down.
# A kernel route is as expected when it is the only route for the prefix in any table, via
# fe80::<j>:<i> on wg<j>, proto 200, metric 32, src = the node's own loopback, table main.
#
#   0  every session Established on both ends (12 ends)
#   1  per node: its kernel routes to the 8 other loopbacks are exactly the expected ones
#      (table node x prefix: expected path vs `ip -j route`); time from the daemons' start
#   2  every node pings every other node's IPv4 and IPv6 loopback (40 pings, from its loopback)
#   3  link down: `ip link set wg3 down` in node 1 (KB_DOWN="1 3": node, peer), one side of the
#      chord.  a: node 1 ends that session at once (< 1 s); b: node 1's routes move within
#      KB_REROUTE_S (3 s); c: the far side (node 3, whose wg1 stays up) moves when its hold timer
#      (KB_HOLD, 9 s) runs out; d: per node, the table equals Dijkstra without the link; e: 40
#      pings; then `ip link set wg3 up`: f: the session is back and every table is the first one
#      again; g: 40 pings
#   4  restart of transit node 1 (KB_RESTART="1 5 3": restarted node, pinger, target): node 5
#      pings node 3's loopbacks (path 5-1-3, replies 3-1-5) every 50 ms for KB_PING_S (12 s) while
#      node 1's kittbgpd gets SIGTERM (1 s into the ping) and is started again with the same
#      config.  Without graceful restart the neighbors route around node 1 when its Cease arrives
#      and come back when its sessions do, so the ping covers both moves; it must still be
#      running 0.5 s after node 5's route is back through node 1, or 4b fails as vacuous.
#      a: node 1's 8 kernel routes are still there after it exited (on_stop = keep); b: no ping
#      lost, IPv4 and IPv6 (lost ones listed with their time relative to the SIGTERM); c: node
#      1's sessions back and node 5's route back through node 1 (times); d: node 1's kernel routes are proto 200,
#      as expected, none duplicated, right after and again once startup_grace (KB_GRACE, 10 s)
#      has run out; e: every node's table as expected at the end
#   z  every daemon still running at the end
# Environment: KB_FABRIC5_COSTS, KB_FABRIC5_LINKS (lib.sh), KB_HOLD (9), KB_KEEPALIVE (3),
# KB_CONVERGE_S (30), KB_REROUTE_S (3), KB_DOWN, KB_RESTART, KB_PING_S, KB_GRACE, KB_KEEP_STATE=1,
# KB_LAB_TUNNELS=1
# (keep logs), KB_LAB_PREFIX, RUST_LOG, see lib.sh.  KB_PASSIVE_HIGHER=1 (diagnosis only): on each
# link the higher-numbered node is `passive` for that neighbor, so only one side connects.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=interop/lib.sh
source "$HERE/lib.sh"

lab_args "$@"

HOLD=${KB_HOLD:-9} KA=${KB_KEEPALIVE:-3}
CONVERGE_S=${KB_CONVERGE_S:-30}
REROUTE_S=${KB_REROUTE_S:-3}
PING_S=${KB_PING_S:-12}
GRACE=${KB_GRACE:-10}
read -r DOWN_I DOWN_J <<< "${KB_DOWN:-1 3}"
read -r RS_T RS_A RS_B <<< "${KB_RESTART:-1 5 3}"
COSTS=$KB_FABRIC5_COSTS
NODES=(1 2 3 4 5)
TMPD=$(mktemp -d /tmp/kbfab5.XXXXXX)
trap 'rm -rf "$TMPD"' EXIT   # until lab_init's trap takes over (lab_exit_hook removes it then)

PASSED=0 FAILED=0
pass() { PASSED=$((PASSED+1)); echo "PASS $*"; }
fail() { FAILED=$((FAILED+1)); echo "FAIL $*"; }
info() { echo "     $*"; }
now_ms() { echo $(( ${EPOCHREALTIME/./} / 1000 )); }
secs() { printf '%d.%01d s' $(($1 / 1000)) $(($1 % 1000 / 100)); }
# log_ms NODE EPOCH_MS REGEX: ms from EPOCH_MS to the first line of node's kittbgpd log at or after
# it that matches REGEX (log timestamps are UTC RFC 3339), -1 if none
log_ms() {
    "$PYTHON" -c '
import re, sys, datetime
t0, rx = int(sys.argv[2]), re.compile(sys.argv[3])
for line in open(sys.argv[1], errors="replace"):
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?)Z", line)
    if not m or not rx.search(line):
        continue
    t = datetime.datetime.fromisoformat(m.group(1)[:26]).replace(tzinfo=datetime.timezone.utc).timestamp() * 1000
    if t >= t0:
        print(int(t - t0)); break
else:
    print(-1)
' "$(lab_dir "$1")/kittbgpd.log" "$2" "$3"
}

lab_exit_hook() {
    local rc=$1
    if ((rc != 0)); then
        [[ -d $KB_LAB_STATE ]] && diagnostics "${NODES[@]}"
        echo "interrupted or aborted (status $rc) after the checks above"
    fi
    rm -rf "$TMPD"
    echo "$PASSED passed, $FAILED failed"
    ((FAILED == 0))
}

# diagnostics I...: what a failure needs: ip route, the daemon's view, its warnings and FIB lines
diagnostics() {
    local i
    echo "---- diagnostics (prefix $KB_LAB_PREFIX, state $KB_LAB_STATE) ----"
    for i in "$@"; do
        echo "== node $i: ip route / ip -6 route (loopbacks)"
        { ip -n "$(lab_ns "$i")" route; ip -n "$(lab_ns "$i")" -6 route; } 2>&1 | grep -E '^(10\.255|fd00:255)' || true
        echo "== node $i: kittbgpd show routes --best"
        kb_show "$i" routes --best 2>&1 | head -n 20 || true
        echo "== node $i: kittbgpd log, last WARN/ERROR/INFO lines"
        grep -aE ' (WARN|ERROR|INFO) ' "$(lab_dir "$i")/kittbgpd.log" 2>/dev/null | tail -n 12 || true
    done
    echo "----"
}

all_established() {
    local i j
    for i in "${NODES[@]}"; do
        for j in $(lab_peers "$i"); do kb_established "$i" "wg$j" || return 1; done
    done
}
sessions_summary() {
    local i j out=""
    for i in "${NODES[@]}"; do
        for j in $(lab_peers "$i"); do out+="$i>wg$j:$(kb_established "$i" "wg$j" && echo up || echo DOWN) "; done
    done
    echo "$out"
}

# expected_table [I-J]: "I PREFIX NH%DEV" per row (from lab_expected_paths); paths_file: the full rows
expected_table() { awk '{ print $1, $2, $3 }' <<< "$(lab_expected_paths "$COSTS" "${NODES[*]}" "${1:-}")"; }

# kernel_table I...: "I PREFIX GOT" per (node, prefix) that has kernel routes.  GOT is "NH%DEV"
# for one route with the expected attributes (proto 200, metric 32, src = own loopback, table
# main); otherwise each route spelled out, joined with " + " (a duplicate shows as two).
kernel_table() {
    lab_kernel_routes "$@" | awk '
        {
            k = $1 " " $2
            own = ($2 ~ /:/) ? "fd00:255::" $1 : "10.255.0." $1
            if ($5 == "200" && $7 == "32" && $9 == own && $11 == "main") d = $3
            else d = $3 " proto " $5 " metric " $7 " src " $9 " table " $11
            if (k in got) { got[k] = got[k] " + " d; n[k]++ } else { got[k] = d; n[k] = 1; order[++m] = k }
        }
        END { for (x = 1; x <= m; x++) { k = order[x]; g = got[k]; if (n[k] > 1 && g !~ / proto /) g = g " (x" n[k] ")"; print k, g } }' \
        | LC_ALL=C sort
}
# rows_of TEXT I: the rows of node i
rows_of() { awk -v i="$2" '$1 == i' <<< "$1"; }
lookup() { awk -v i="$2" -v p="$3" '$1 == i && $2 == p { $1 = ""; $2 = ""; sub(/^  /, ""); print }' <<< "$1"; }

# show_table EXPECTED GOT LABEL: the node x prefix table, then PASS/FAIL per node
show_table() {
    local exp=$1 got=$2 label=$3 i p e g ok bad mark
    printf '     %-5s %-17s %-32s %s\n' node prefix "expected (path)" "got (kernel)"
    for i in "${NODES[@]}"; do
        bad=()
        while read -r _ p e _ hops; do
            g=$(lookup "$got" "$i" "$p")
            if [[ $g == "$e" ]]; then mark=" "; else mark="X"; bad+=("$p"); fi
            printf '   %s %-5s %-17s %-32s %s\n' "$mark" "$i" "$p" "$e ($hops)" "${g:-(none)}"
        done < <(rows_of "$(lab_expected_paths "$COSTS" "${NODES[*]}" "${4:-}")" "$i")
        ok=$(( $(rows_of "$exp" "$i" | wc -l) - ${#bad[@]} ))
        if ((${#bad[@]} == 0)); then pass "$label node $i: all $ok kernel routes as expected"
        else fail "$label node $i: kernel routes as expected; wrong or missing: ${bad[*]}"; fi
    done
}

# converge_to EXPECTED TIMEOUT_S [T_REF_MS]: poll every node's kernel table until it equals
# EXPECTED; sets GOT (last table), CONV_MS (time until equal, or -1), NODE_MS[i] (time node i
# first matched and kept matching, -1 if never); times after T_REF_MS (default: now)
declare -A NODE_MS
converge_to() {
    local exp=$1 timeout=$2 t0=${3:-$(now_ms)} t i mine
    CONV_MS=-1
    for i in "${NODES[@]}"; do NODE_MS[$i]=-1; done
    while :; do
        GOT=$(kernel_table "${NODES[@]}"); t=$(( $(now_ms) - t0 ))
        for i in "${NODES[@]}"; do
            mine=$(rows_of "$GOT" "$i")
            if [[ $mine == "$(rows_of "$exp" "$i")" ]]; then ((NODE_MS[$i] >= 0)) || NODE_MS[$i]=$t
            else NODE_MS[$i]=-1; fi
        done
        if [[ $GOT == "$exp" ]]; then CONV_MS=$t; return 0; fi
        ((t < timeout * 1000)) || return 1
        sleep 0.1
    done
}

# pings LABEL: the 40-ping matrix; PASS if every ping answered
pings() {
    local label=$1 out lost t0
    t0=$(now_ms)
    out=$(lab_ping_matrix "${NODES[@]}" -- "${NODES[@]}")
    lost=$(awk '$3 != "ok" { printf "%s%s->%s", sep, $1, $2; sep = " " }' <<< "$out")
    if [[ -z $lost ]]; then pass "$label every node pings every other loopback ($(wc -l <<< "$out") pings, IPv4 and IPv6, $(( $(now_ms) - t0 )) ms)"
    else fail "$label every node pings every other loopback; lost: $lost"; fi
}

# ---------------------------------------------------------------- setup
T0=$(now_ms)
cp "$BIN" "$TMPD/kittbgpd"
echo "kittbgpd: $BIN (running a copy: $TMPD/kittbgpd)"
echo "links: ring 1-2-3-4-5-1 plus $KB_FABRIC5_LINKS; costs (node I adds C for routes from J, I-J:C): $COSTS"
lab_expected_paths "$COSTS" "${NODES[*]}" > "$TMPD/paths" 2> "$TMPD/ties"
lab_expected_paths "$COSTS" "${NODES[*]}" "$DOWN_I-$DOWN_J" > /dev/null 2>> "$TMPD/ties"
if [[ -s $TMPD/ties ]]; then sed 's/^/     /' "$TMPD/ties"; fi
EXP1=$(expected_table)
EXP2=$(expected_table "$DOWN_I-$DOWN_J")

lab_init
links=()
for l in $KB_FABRIC5_LINKS; do links+=(--link "$l"); done
# step 6: each kittbgpd builds its own tunnels from its config (KB_LAB_TUNNELS=1: built by lib.sh)
kbt=(--kb-tunnels 1,2,3,4,5); [[ ${KB_LAB_TUNNELS:-0} == 1 ]] && kbt=()
lab_up 5 ring "${links[@]}" "${kbt[@]}"
lab_costs "$COSTS"
for i in "${NODES[@]}"; do
    pas=()
    if [[ ${KB_PASSIVE_HIGHER:-0} == 1 ]]; then
        for j in $(lab_peers "$i"); do ((j < i)) && pas+=(--passive-to "$j"); done
    fi
    kb_conf "$i" --hold "$HOLD" --keepalive "$KA" --kernel --kernel-set on_stop=keep --kernel-set startup_grace="$GRACE" "${pas[@]}"
done
[[ ${KB_PASSIVE_HIGHER:-0} != 1 ]] || info "KB_PASSIVE_HIGHER=1: on each link the higher-numbered node is passive (only the lower one connects)"
t_start=$(now_ms)
for i in "${NODES[@]}"; do kb_start "$i" "$TMPD/kittbgpd"; done
info "lab up in $(secs $((t_start - T0))); 5 daemons started"

# ---------------------------------------------------------------- 0, 1, 2
if wait_for all_established 30 0.1; then
    pass "0  all 12 session ends Established ($(( $(now_ms) - t_start )) ms after the daemons started)"
else
    fail "0  all 12 session ends Established within 30 s: $(sessions_summary)"
fi
if converge_to "$EXP1" "$CONVERGE_S" "$t_start"; then
    info "kernel tables complete and as expected $CONV_MS ms after the daemons started"
else
    info "kernel tables not as expected after ${CONVERGE_S} s more"
fi
show_table "$EXP1" "$GOT" "1 "
pings "2 "

# ---------------------------------------------------------------- 3: link down, link up
echo "== 3: ip link set wg$DOWN_J down in node $DOWN_I (one side of link $DOWN_I-$DOWN_J)"
sess_ms=-1
t0=$(now_ms)
lab_link_down "$DOWN_I" "$DOWN_J"
# node i's session must end at once; poll it while the routes move
if wait_for "! kb_established $DOWN_I wg$DOWN_J" 5 0.05; then sess_ms=$WAITED_MS; fi
converge_to "$EXP2" $((HOLD + REROUTE_S + 5)) "$t0" || true
sess_log=$(log_ms "$DOWN_I" "$t0" "session down.*peer=wg$DOWN_J")
if ((sess_ms >= 0 && sess_ms < 1000)); then pass "3a node $DOWN_I's session wg$DOWN_J left Established within $sess_ms ms of the link going down (polled; its log: session down after $sess_log ms)"
else fail "3a node $DOWN_I's session wg$DOWN_J left Established within 1 s (${sess_ms} ms; -1 = not within 5 s)"; fi
near=${NODE_MS[$DOWN_I]}
near_log=$(log_ms "$DOWN_I" "$t0" 'kernel route done')
if ((near >= 0 && near <= REROUTE_S * 1000)); then
    pass "3b node $DOWN_I's kernel routes moved to the other way $near ms after the link went down (polled; its log: first kernel route change after $near_log ms)"
else
    fail "3b node $DOWN_I's kernel routes moved to the other way within ${REROUTE_S} s (${near} ms; -1 = not at all)"
fi
far=${NODE_MS[$DOWN_J]}
far_log=$(log_ms "$DOWN_J" "$t0" 'session down')
if ((far >= 0 && far <= (HOLD + REROUTE_S) * 1000)); then
    pass "3c node $DOWN_J (far side, its wg$DOWN_I stays up) moved $far ms after the link went down (its session ended after $far_log ms: hold time ${HOLD} s)"
else
    fail "3c node $DOWN_J (far side) moved within hold time + ${REROUTE_S} s (${far} ms; -1 = not at all)"
fi
for i in "${NODES[@]}"; do
    ((i == DOWN_I || i == DOWN_J)) && continue
    if [[ $(rows_of "$EXP1" "$i") == "$(rows_of "$EXP2" "$i")" ]]; then info "node $i: no next hop changes (the same table before and after)"
    else info "node $i: table as expected $( ((NODE_MS[$i] >= 0)) && echo "${NODE_MS[$i]} ms" || echo never) after the link went down"; fi
done
show_table "$EXP2" "$GOT" "3d" "$DOWN_I-$DOWN_J"
pings "3e"

echo "== 3: ip link set wg$DOWN_J up in node $DOWN_I"
t0=$(now_ms)
lab_link_up "$DOWN_I" "$DOWN_J"
wait_for "kb_established $DOWN_I wg$DOWN_J && kb_established $DOWN_J wg$DOWN_I" 30 0.1 && up_ms=$WAITED_MS || up_ms=-1
converge_to "$EXP1" 20 "$t0" || true
if ((up_ms >= 0 && CONV_MS >= 0)); then
    pass "3f link up: session $DOWN_I-$DOWN_J Established after $up_ms ms, every table as at first after $CONV_MS ms"
else
    fail "3f link up: session back (${up_ms} ms; -1 = not within 30 s) and every table as at first ($(sessions_summary))"
    show_table "$EXP1" "$GOT" "3f"
fi
pings "3g"

# ---------------------------------------------------------------- 4: restart of a transit node
echo "== 4: restart kittbgpd on node $RS_T while node $RS_A pings node $RS_B's loopbacks through it"
path_ab=$(awk -v i="$RS_A" -v p="10.255.0.$RS_B/32" '$1 == i && $2 == p { print $5 }' "$TMPD/paths")
path_ba=$(awk -v i="$RS_B" -v p="10.255.0.$RS_A/32" '$1 == i && $2 == p { print $5 }' "$TMPD/paths")
info "paths: $path_ab, replies $path_ba"
[[ $path_ab == "$RS_A-$RS_T-$RS_B" ]] || info "warning: node $RS_A does not reach node $RS_B through node $RS_T with these costs"
before=$(kernel_table "$RS_T")
PING=$(command -v ping)
n_ping=$((PING_S * 20))
lab_run "$RS_A" ping4 "$TMPD/ping4.log" "$PING" -D -O -n -i 0.05 -W 1 -c "$n_ping" -I "10.255.0.$RS_A" "10.255.0.$RS_B"
lab_run "$RS_A" ping6 "$TMPD/ping6.log" "$PING" -D -O -n -i 0.05 -W 1 -c "$n_ping" -I "fd00:255::$RS_A" "fd00:255::$RS_B"
t_ping=$(now_ms)
sleep 1
t_stop=$(now_ms)
kb_stop "$RS_T" TERM 5 || info "node $RS_T's kittbgpd did not exit within 5 s of SIGTERM (killed)"
t_exit=$(now_ms)
after_stop=$(kernel_table "$RS_T")
kb_start "$RS_T" "$(kb_bin "$RS_T")"
t_restart=$(now_ms)
info "SIGTERM at +$((t_stop - t_ping)) ms of the ping; exited after $((t_exit - t_stop)) ms; started again $((t_restart - t_exit)) ms later"
if [[ $after_stop == "$before" && $(rows_of "$before" "$RS_T" | wc -l) -eq 8 ]]; then
    pass "4a on_stop = keep: node $RS_T's 8 kernel routes still in place after its daemon exited"
else
    fail "4a on_stop = keep: node $RS_T's 8 kernel routes still in place after its daemon exited"
    diff <(echo "$before") <(echo "$after_stop") | sed 's/^/     /' || true
fi
restart_up() {
    local j
    for j in $(lab_peers "$RS_T"); do kb_established "$RS_T" "wg$j" || return 1; done
}
wait_for restart_up 30 0.05 && sess_ms=$(( $(now_ms) - t_restart )) || sess_ms=-1
back_row="$RS_A 10.255.0.$RS_B/32 $(lookup "$EXP1" "$RS_A" "10.255.0.$RS_B/32")"
wait_for "kernel_table $RS_A | grep -qxF '$back_row'" 10 0.05 && back_ms=$(( $(now_ms) - t_restart )) || back_ms=-1
t_back_table=$(kernel_table "$RS_T"); t_back_at=$(( $(now_ms) - t_restart ))
t_ping_end=$((t_ping + PING_S * 1000))
# the ping runs its count (PING_S at 50 ms); wait for it to finish on its own (-W 1 for the last one)
wait_for "! lab_pid ping4-$RS_A && ! lab_pid ping6-$RS_A" $((PING_S + 10)) 0.1 || true
lab_kill "ping4-$RS_A" INT 2 || true; lab_kill "ping6-$RS_A" INT 2 || true
# ping_result LOG: "sent received lost-list" (lost: icmp_seq@ms after the SIGTERM)
ping_result() {
    awk -v t_stop="$t_stop" -v n="$n_ping" '
        /bytes from/ { if (match($0, /icmp_seq=[0-9]+/)) got[substr($0, RSTART + 9, RLENGTH - 9)] = 1 }
        /^\[[0-9.]+\]/ { if (match($0, /icmp_seq=[0-9]+/)) { s = substr($0, RSTART + 9, RLENGTH - 9); ts[s] = substr($1, 2, length($1) - 2) } }
        /packets transmitted/ { sent = $1; recv = $4 }
        END {
            lost = ""
            for (s = 1; s <= sent; s++) if (!(s in got)) lost = lost sprintf(" %d@%+dms", s, (s in ts) ? ts[s] * 1000 - t_stop : 0)
            print sent + 0, recv + 0, lost
        }' "$1"
}
# the ping must cover the way back through node T (neighbors route around it while it is down)
covered=0
((back_ms >= 0 && t_restart + back_ms + 500 <= t_ping_end)) && covered=1
for fam in 4 6; do
    read -r sent recv lost <<< "$(ping_result "$TMPD/ping$fam.log")"
    if ((sent > 0 && sent == recv && !covered)); then
        fail "4b IPv$fam ping $RS_A -> $RS_B every 50 ms: $recv of $sent answered, but vacuous: the traffic did not go back through node $RS_T within the ping (${PING_S} s)"
    elif ((sent > 0 && sent == recv)); then
        pass "4b IPv$fam ping $RS_A -> $RS_B through node $RS_T every 50 ms: $recv of $sent answered, none lost"
    else
        fail "4b IPv$fam ping $RS_A -> $RS_B through node $RS_T every 50 ms: $recv of $sent answered; lost (seq@time after SIGTERM):${lost:- -}"
        tail -n 3 "$TMPD/ping$fam.log" | sed 's/^/     /'
    fi
done
if ((sess_ms >= 0 && back_ms >= 0)); then
    pass "4c node $RS_T's sessions Established $sess_ms ms after the restart; node $RS_A's route to $RS_B back through node $RS_T after $back_ms ms"
else
    fail "4c node $RS_T's sessions back ($sess_ms ms; -1 = not within 30 s) and node $RS_A's route through it ($back_ms ms) after the restart ($(sessions_summary))"
fi
# d: node T's kernel routes right after the restart and after the startup grace
check_t() {
    local label=$1 got=${2-}
    [[ -n $got ]] || got=$(kernel_table "$RS_T")
    if [[ $got == "$(rows_of "$EXP1" "$RS_T")" ]]; then
        pass "4d node $RS_T's kernel routes proto 200, as expected, none duplicated ($label)"
    else
        fail "4d node $RS_T's kernel routes proto 200, as expected, none duplicated ($label)"
        diff <(rows_of "$EXP1" "$RS_T") <(echo "$got") | sed 's/^/     /' || true
    fi
}
if ((back_ms >= 0)); then check_t "$t_back_at ms after the restart, when node $RS_A's route was back through it" "$t_back_table"
else check_t "$t_back_at ms after the restart; node $RS_A's route never came back through it" "$t_back_table"; fi
wait_ms=$(( t_restart + (GRACE + 2) * 1000 - $(now_ms) ))
if ((wait_ms > 0)); then info "waiting $(secs "$wait_ms") for startup_grace ($GRACE s) to run out"; sleep "$((wait_ms / 1000)).$(printf '%03d' $((wait_ms % 1000)))"; fi
check_t "$(( $(now_ms) - t_restart )) ms after the restart, grace over"
GOT=$(kernel_table "${NODES[@]}")
if [[ $GOT == "$EXP1" ]]; then pass "4e every node's kernel table as expected after the restart"
else fail "4e every node's kernel table as expected after the restart"; show_table "$EXP1" "$GOT" "4e"; fi

# ---------------------------------------------------------------- z
dead=()
for i in "${NODES[@]}"; do lab_pid "kittbgpd-$i" >/dev/null || dead+=("kittbgpd-$i"); done
if ((${#dead[@]} == 0)); then pass "z  every daemon still running"; else fail "z  every daemon still running; gone: ${dead[*]}"; fi
((FAILED == 0)) || diagnostics "${NODES[@]}"
echo "total $(secs $(( $(now_ms) - T0 )))"
