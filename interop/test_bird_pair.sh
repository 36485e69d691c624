#!/usr/bin/env bash
# shellcheck disable=SC2016  # single-quoted $... are meant for the inner bash -c
# test_bird_pair.sh -- step-1 interop test: BIRD 2 (node 1) <-> kittbgpd (node 2) over a
# wireguard-go tunnel with link-local addresses, in network namespaces.
#
# Usage: interop/test_bird_pair.sh [/path/to/kittbgpd]   (root)
#        interop/test_bird_pair.sh --peer-bird          (self-test of the script: BIRD on both nodes)
# Default binary: the newer of target/release/kittbgpd and target/debug/kittbgpd (lab_pick_bin).
# Prints one PASS/FAIL line per check and a final "N passed, M failed"; exit 1 on any failure.
# Always cleans up (trap in lib.sh): only its own namespaces and PIDs.
#
# Scenario A (peer first): node 2's speaker starts, BIRD 3 s later; checks a-g.
# Scenario B (BIRD first): BIRD starts, node 2's speaker 3 s later; checks a-c, f.
#   a  session Established on both sides (BIRD `show protocols`, kittbgpd `show neighbors --json`)
#   b  BIRD has 10.255.0.2/32 and fd00:255::2/128 via fe80::2:1 on wg2
#   c  node 2 has 10.255.0.1/32 and fd00:255::1/128 from wg1, next hop fe80::1:2
#   d  non-loopback prefixes are rejected both ways: BIRD offers 192.0.2.1/32 and 2001:db8::1/128
#      (deliberate test leak in its export filter), node 2 must not accept them; node 2 has
#      192.0.2.2/32 and 2001:db8::2/128 on lo, BIRD must not get them
#   e  hold time 9 / keepalive 3 on both sides: negotiated hold 9, and the session stays up
#      (BIRD's "since" never changes) for KB_STABLE_S (default 30 s = 3+ hold times)
#   g  (kittbgpd) End-of-RIB from BIRD recorded per family (`show neighbors --json`);
#      `birdc reload out wg2`: BIRD refeeds between BoRR and EoRR (RFC 7313), kittbgpd keeps
#      the routes and sends nothing back (BoRR/EoRR are not requests); `birdc reload in wg2`:
#      kittbgpd answers the request and BIRD keeps kittbgpd's routes
#   m  (kittbgpd) `curl /metrics` (`[metrics] listen`): promtool check metrics accepts it;
#      session_up{neighbor="wg1"} 1, BIRD's accepted and filtered prefixes, best-path changes,
#      kernel route operations; other paths get 404
#   u  (KB_UNPRIV=1: the daemon runs via setpriv as $KB_UNPRIV_USER with exactly CAP_NET_ADMIN,
#      CAP_NET_RAW, CAP_NET_BIND_SERVICE ambient, as the systemd unit runs it) its uid and
#      effective capabilities are those; the control socket is 0660, group $KB_UNPRIV_GROUP, and
#      another user in that group can `show neighbors`
#   f  SIGTERM to node 2's daemon: it exits, BIRD logs "wg2: Received: Administrative shutdown"
#      (the Cease it sent), not "Hold timer expired", and leaves Established at once
# Environment: KB_STABLE_S, KB_LAB_PREFIX, KB_KEEP_STATE=1 (keep logs), RUST_LOG, see lib.sh.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=interop/lib.sh
source "$HERE/lib.sh"

PEER=kittbgpd BIN=""
for arg in "$@"; do
    case $arg in
        --peer-bird) PEER=bird ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) BIN=$arg ;;
    esac
done
[[ $PEER == kittbgpd ]] && BIN=$(lab_pick_bin test_bird_pair.sh "$BIN")
STABLE_S=${KB_STABLE_S:-30}
HOLD=9 KA=3

PASSED=0 FAILED=0 SCEN=""
pass() { PASSED=$((PASSED+1)); echo "PASS [$SCEN] $*"; }
fail() { FAILED=$((FAILED+1)); echo "FAIL [$SCEN] $*"; }
check() { local what=$1; shift; if "$@"; then pass "$what"; else fail "$what"; fi; }
info() { echo "     [$SCEN] $*"; }

dump_logs() {
    local f
    echo "---- diagnostics [$SCEN] (prefix $KB_LAB_PREFIX, state $KB_LAB_STATE) ----"
    for f in "$KB_LAB_STATE"/node1/bird.log "$KB_LAB_STATE"/node2/bird.log "$KB_LAB_STATE"/node2/kittbgpd.log; do
        if [[ -f $f ]]; then echo "== tail -n 30 $f"; tail -n 30 "$f"; fi
    done
    echo "----"
}

# on any exit (lib.sh's trap calls this before lab_down): summary line; must not `exit`
lab_exit_hook() {
    local rc=$1
    if ((rc != 0)); then
        [[ -d $KB_LAB_STATE ]] && dump_logs
        echo "interrupted or aborted (status $rc) after the checks above"
    fi
    echo "$PASSED passed, $FAILED failed"
    ((FAILED == 0))
}

# ---- node 2 as either kittbgpd or BIRD (self-test); same questions, two ways to ask
peer_conf() {
    if [[ $PEER == kittbgpd ]]; then kb_conf 2 --hold $HOLD --keepalive $KA --metrics
    else lab_bird_conf 2 --hold $HOLD --keepalive $KA --leak; fi
}
peer_start() { if [[ $PEER == kittbgpd ]]; then kb_start 2 "$BIN"; else lab_bird_start 2; fi; }
peer_established() { if [[ $PEER == kittbgpd ]]; then kb_established 2 wg1; else bird_established 2 wg1; fi; }
peer_pidname() { if [[ $PEER == kittbgpd ]]; then echo kittbgpd-2; else echo bird-2; fi; }
# peer_routes [--filtered]: "prefix peer next_hop" lines of routes learned from wg1
peer_routes() {
    if [[ $PEER == kittbgpd ]]; then
        if [[ ${1:-} == --filtered ]]; then kb_routes 2 --filtered | awk '$2 == "wg1" {print $1, $2, $3}'
        else kb_routes 2 | awk '$2 == "wg1" && $6 != "filtered" {print $1, $2, $3}'; fi
    else
        local what=(show route all protocol wg1)
        [[ ${1:-} == --filtered ]] && what=(show route all filtered protocol wg1)
        birdc_n 2 "${what[@]}" | awk '
            $1 ~ /^[0-9a-f.:]+\/[0-9]+$/ { if (p) print p, "wg1", nh; p = $1; nh = "-" }
            /BGP.next_hop:/ { nh = $NF }
            END { if (p) print p, "wg1", nh }'
    fi
}

# BIRD's view of wg2: prefixes learned from wg2 (accepted or filtered)
bird_routes_from_wg2() {  # [filtered]
    birdc_n 1 show route "$@" protocol wg2 | awk '$1 ~ /^[0-9a-f.:]+\/[0-9]+$/ {print $1}'
}
bird_route_ok() {  # PREFIX: present, via fe80::2:1 on wg2, BGP.next_hop has fe80::2:1
    local out; out=$(birdc_n 1 show route all "$1" protocol wg2)
    grep -q "via fe80::2:1 on wg2" <<< "$out" && grep -q "BGP.next_hop:.*fe80::2:1" <<< "$out"
}
bird_hold() {  # negotiated hold time of wg2 as BIRD reports it ("Hold timer: x/9")
    birdc_n 1 show protocols all wg2 | awk -F'/' '/Hold timer:/ {gsub(/ /, "", $2); print $2}'
}
in_list() { grep -qxF "$1" <<< "$2"; }

# ---- scenarios

start_lab() {
    lab_up 2 line --leak
    lab_bird_conf 1 --hold $HOLD --keepalive $KA --leak
    peer_conf
    if wait_for "lab_ping_ll 1 2" 10 0.2; then info "tunnel up (ping fe80::2:1%wg2 after ${WAITED_MS} ms)"
    else info "tunnel ping failed (continuing; BGP checks will tell)"; fi
}

check_established() {
    local t0=${EPOCHREALTIME/./} ms who
    if wait_for "bird_established 1 wg2 && peer_established" 30 0.1; then
        ms=$(( (${EPOCHREALTIME/./} - t0) / 1000 ))
        pass "a  session Established on both sides (${ms} ms after the second speaker started)"
    else
        fail "a  session Established on both sides within 30 s (BIRD: '$(bird_proto_line 1 wg2)'; $PEER: '$(peer_established && echo Established || echo not Established)')"
        return 1
    fi
    # who connected: BIRD's end of the TCP connection has local port 1790 = BIRD accepted
    who=$(ip netns exec "$(lab_ns 1)" ss -Htn state established "( sport = :$KB_PORT or dport = :$KB_PORT )" \
        | awk '{print $3, "->", $4; exit}')
    if [[ ${who%% *} == *:$KB_PORT ]]; then info "node 2 connected to BIRD (BIRD side: $who)"
    else info "BIRD connected to node 2 (BIRD side: $who)"; fi
}

check_routes() {
    local p
    wait_for "bird_route_ok 10.255.0.2/32 && bird_route_ok fd00:255::2/128" 10 || true
    for p in 10.255.0.2/32 fd00:255::2/128; do
        check "b  BIRD has $p via fe80::2:1 on wg2 (BGP.next_hop fe80::2:1)" bird_route_ok "$p"
    done
    wait_for "[[ \$(peer_routes | grep -c '^10.255.0.1/32 \|^fd00:255::1/128 ') == 2 ]]" 10 || true
    local routes; routes=$(peer_routes)
    for p in 10.255.0.1/32 fd00:255::1/128; do
        check "c  $PEER (node 2) has $p from wg1 with next hop fe80::1:2" \
            grep -qE "^${p//./\\.} wg1 .*fe80::1:2" <<< "$routes"
    done
}

check_filtering() {
    local acc filt bacc bfilt p
    acc=$(peer_routes | awk '{print $1}')
    filt=$(peer_routes --filtered | awk '{print $1}')
    for p in 192.0.2.1/32 2001:db8::1/128; do
        check "d  $PEER did not accept BIRD's non-loopback $p" bash -c '! grep -qxF "$0" <<< "$1"' "$p" "$acc"
        check "d  $PEER holds BIRD's $p as filtered" in_list "$p" "$filt"
    done
    bacc=$(bird_routes_from_wg2)
    bfilt=$(bird_routes_from_wg2 filtered)
    info "BIRD accepted from wg2: ${bacc//$'\n'/ }; filtered: ${bfilt//$'\n'/ }"
    check "d  BIRD accepted only loopbacks from wg2" \
        bash -c '! grep -vE "^(10\.255\.[0-9]+\.[0-9]+/32|fd00:255:[0-9a-f:]*/128)$" <<< "$0" | grep -q .' "$bacc"
    for p in 192.0.2.2/32 2001:db8::2/128; do
        if [[ $PEER == kittbgpd ]]; then
            check "d  kittbgpd did not offer its lo address $p (outside the loopback ranges)" \
                bash -c '! grep -qxF "$0" <<< "$1$2"' "$p" "$bacc"$'\n' "$bfilt"
        else
            check "d  (self-test) BIRD peer's leaked $p reached BIRD and was filtered" in_list "$p" "$bfilt"
        fi
    done
}

check_stability() {
    local h since0 ms0 line k bad=0 peer_bad=0
    h=$(bird_hold)
    check "e  negotiated hold time is $HOLD (BIRD: '${h:-?}')" test "${h:-x}" = "$HOLD"
    line=$(bird_proto_line 1 wg2); since0=$(awk '{print $5}' <<< "$line"); ms0=$(bird_since_ms "$line")
    for ((k = 0; k < STABLE_S; k++)); do
        line=$(bird_proto_line 1 wg2)
        if [[ $line != *Established* ]] || ! bird_since_same "$(bird_since_ms "$line")" "$ms0"; then
            bad=$((bad+1)); info "t=${k}s BIRD: $line"
        fi
        peer_established || peer_bad=$((peer_bad+1))
        sleep 1
    done
    check "e  BIRD's session stayed Established ${STABLE_S} s (since $since0 unchanged; $bad bad samples)" test "$bad" = 0
    check "e  $PEER stayed Established ${STABLE_S} s ($peer_bad bad samples)" test "$peer_bad" = 0
    check "e  BIRD log has no 'Hold timer expired'" bash -c '! grep -q "wg2: Error: Hold timer expired" "$0"' "$(lab_bird_log 1)"
}

# kb_wg1 FIELD: a field of neighbor wg1 in node 2's `show neighbors --json` (routes.X for counts)
kb_wg1() {
    kb_show 2 neighbors --json 2>/dev/null | "$PYTHON" -c '
import json, sys
for n in json.load(sys.stdin):
    if n.get("name") == "wg1":
        v = n
        for k in sys.argv[1].split("."):
            v = v.get(k) if isinstance(v, dict) else None
        print(json.dumps(v)); break
' "$1"
}

check_refresh() {
    local sent0 sent1 log=$KB_LAB_STATE/node2/kittbgpd.log
    wait_for "[[ \$(kb_wg1 routes.end_of_rib_ipv4) == true && \$(kb_wg1 routes.end_of_rib_ipv6) == true ]]" 5 || true
    check "g  kittbgpd recorded BIRD's End-of-RIB for ipv4 and ipv6" \
        test "$(kb_wg1 routes.end_of_rib_ipv4) $(kb_wg1 routes.end_of_rib_ipv6)" = "true true"
    sent0=$(kb_wg1 updates_sent)
    birdc_n 1 reload out wg2 >/dev/null
    wait_for "[[ \$(grep -c 'End of Route Refresh' '$log') -ge 2 ]]" 5 || true
    info "kittbgpd log: $(grep -E 'Route Refresh' "$log" | tail -n 4 | sed 's/.*INFO //' | paste -sd';')"
    check "g  kittbgpd saw BIRD's refeed bracketed by BoRR/EoRR for both families" \
        test "$(grep -c 'End of Route Refresh' "$log")" -ge 2
    sleep 1
    sent1=$(kb_wg1 updates_sent)
    check "g  kittbgpd sent nothing back for BoRR/EoRR (updates_sent $sent0 -> $sent1)" test "$sent0" = "$sent1"
    check "g  kittbgpd kept BIRD's loopbacks through the refresh" \
        test "$(peer_routes | grep -c '^10.255.0.1/32 \|^fd00:255::1/128 ')" = 2
    birdc_n 1 reload in wg2 >/dev/null
    wait_for "[[ \$(kb_wg1 updates_sent) -gt $sent1 ]]" 5 || true
    check "g  kittbgpd answered BIRD's ROUTE-REFRESH (updates_sent $sent1 -> $(kb_wg1 updates_sent))" \
        test "$(kb_wg1 updates_sent)" -gt "$sent1"
    sleep 1
    for p in 10.255.0.2/32 fd00:255::2/128; do
        check "g  BIRD still has $p after its reload in" bird_route_ok "$p"
    done
}

metrics_refused() { ! kb_metrics 2 "$1" >/dev/null 2>&1; }
check_metrics() {
    local text lint
    text=$(kb_metrics 2) || { fail "m  GET /metrics answered"; return; }
    if command -v promtool >/dev/null; then
        local rc=0
        lint=$(promtool check metrics <<< "$text" 2>&1) || rc=$?
        check "m  promtool check metrics accepts the scrape${lint:+ ($lint)}" test "$rc" = 0
    else
        fail "m  promtool not installed (apt: prometheus)"
    fi
    check "m  kittbgpd_session_up{neighbor=\"wg1\"} is 1" grep -qE '^kittbgpd_session_up\{neighbor="wg1"\} 1(\.0)?$' <<< "$text"
    check "m  prefixes accepted from wg1 = 2 (BIRD's loopbacks)" \
        grep -qE '^kittbgpd_prefixes\{neighbor="wg1",kind="accepted"\} 2(\.0)?$' <<< "$text"
    check "m  prefixes filtered from wg1 = 2 (BIRD's leaks)" \
        grep -qE '^kittbgpd_prefixes\{neighbor="wg1",kind="filtered"\} 2(\.0)?$' <<< "$text"
    check "m  updates received from wg1 counted" grep -qE '^kittbgpd_updates_received_total\{neighbor="wg1"\} [1-9]' <<< "$text"
    check "m  best-path changes counted" grep -qE '^kittbgpd_best_path_changes_total [1-9]' <<< "$text"
    check "m  uptime exported" grep -qE '^kittbgpd_uptime_seconds [0-9]' <<< "$text"
    check "m  GET /nothing is refused (404)" metrics_refused /nothing
    info "scrape: $(wc -l <<< "$text") lines, $(grep -c '^# TYPE' <<< "$text") families"
}

group_member_shows() {
    setpriv --reuid=65533 --regid="$KB_UNPRIV_GROUP" --clear-groups "$(kb_bin 2)" show neighbors -s "$1" | grep -q Established
}
check_unpriv() {
    local pid st uid capeff sock
    pid=$(lab_pid kittbgpd-2)
    st=/proc/$pid/status
    uid=$(awk '/^Uid:/ {print $2}' "$st"); capeff=$(awk '/^CapEff:/ {print $2}' "$st")
    check "u  daemon runs as $KB_UNPRIV_USER (uid $uid)" test "$uid" = "$(id -u "$KB_UNPRIV_USER")"
    # NET_BIND_SERVICE 10, NET_ADMIN 12, NET_RAW 13: 0x3400
    check "u  effective capabilities exactly NET_ADMIN, NET_RAW, NET_BIND_SERVICE (CapEff $capeff)" \
        test "$capeff" = 0000000000003400
    sock=$(kb_sock 2)
    check "u  control socket mode 0660 group $KB_UNPRIV_GROUP ($(stat -c '%a %G' "$sock"))" \
        test "$(stat -c '%a %G' "$sock")" = "660 $KB_UNPRIV_GROUP"
    check "u  another user of group $KB_UNPRIV_GROUP can show neighbors" group_member_shows "$sock"
}

check_shutdown() {
    local blog lines0 t0 ms
    blog=$(lab_bird_log 1)
    lines0=$(wc -l < "$blog")
    t0=${EPOCHREALTIME/./}   # lab_kill signals at once, so BIRD's reaction is timed from here
    local rc=0
    lab_kill "$(peer_pidname)" TERM 5 || rc=$?
    case $rc in
        0) pass "f  $PEER exited on SIGTERM (${KILL_MS} ms)" ;;
        1) fail "f  $PEER exited on SIGTERM within 5 s (had to SIGKILL)" ;;
        *) fail "f  $PEER was running before SIGTERM (it had already exited)" ;;
    esac
    wait_for "! bird_established 1 wg2" 5 0.05 || true
    ms=$(( (${EPOCHREALTIME/./} - t0) / 1000 ))
    check "f  BIRD left Established within 2 s (${ms} ms)" test "$ms" -lt 2000
    wait_for "tail -n +$((lines0 + 1)) '$blog' | grep -q 'wg2: Received: '" 3 0.05 || true
    local new; new=$(tail -n +$((lines0 + 1)) "$blog" | grep -E 'wg2: (Received|Error)' || true)
    info "BIRD log: ${new:-nothing}"
    info "BIRD: $(birdc_n 1 show protocols all wg2 | grep -E 'Last error|BGP state' | tr -s ' ' | paste -sd';')"
    check "f  BIRD logged the Cease: 'wg2: Received: Administrative shutdown'" \
        grep -q 'wg2: Received: Administrative shutdown' <<< "$new"
    check "f  BIRD did not log 'Hold timer expired'" bash -c '! grep -q "Hold timer expired" <<< "$0"' "$new"
}

run_scenario() {
    SCEN=$1
    local first=$2 failed0=$FAILED
    echo "== scenario $SCEN: $([[ $first == peer ]] && echo "$PEER first, BIRD 3 s later" || echo "BIRD first, $PEER 3 s later")"
    KB_LAB_STATE="$STATE_BASE/$SCEN"   # one state dir per scenario (logs stay apart with KB_KEEP_STATE=1)
    lab_init
    start_lab
    if [[ $first == peer ]]; then peer_start; sleep 3; lab_bird_start 1
    else lab_bird_start 1; sleep 3; peer_start; fi
    if check_established; then
        check_routes
        if [[ $SCEN == A ]]; then
            check_filtering; check_stability
            if [[ $PEER == kittbgpd ]]; then
                check_refresh; check_metrics
                [[ ${KB_UNPRIV:-0} != 1 ]] || check_unpriv
            fi
        fi
        check_shutdown
    fi
    ((FAILED == failed0)) || dump_logs
    lab_down >/dev/null
}

if [[ $PEER == bird ]]; then echo "self-test mode: BIRD on node 2 in place of kittbgpd"; else echo "kittbgpd: $BIN"; fi
STATE_BASE=${KB_LAB_STATE:-/run/kblab/$KB_LAB_PREFIX}
run_scenario A peer
run_scenario B bird
