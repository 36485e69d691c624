#!/usr/bin/env bash
# test_migration.sh -- issue 12 part 6: from hop-by-hop (phase one) to route reflectors (phase
# two) by reload only, as README "From hop-by-hop to route reflectors" says: no link session
# resets, no ping lost.
#
# Topology: a ring of four, 1 - 2 - 3 - 4 - 1 (wireguard-go tunnels, static link costs):
# kittbgpd on 1, 2, 3; BIRD 2 on 4. Reflectors (phase two): 1 (kittbgpd) and 4 (BIRD). The
# service address 10.77.0.1/32 sits on node 3's lo.
#   phase one  link sessions only: loopbacks hop by hop; the service is reached through a static
#              route in every other node (metric 1000, via the underlay's first hop to node 3),
#              as an operator without an overlay would do it
#   step 1     reload: multihop sessions to both reflectors (kittbgpd: [[neighbor]] multihop,
#              rr_client = false on clients, add_paths; BIRD: protocol bgp mh<J> { multihop; source
#              address; }, birdc configure); they carry nothing yet
#   step 2     reload: [overlay] on every node (kittbgpd: ipv4 range, from_lo on node 3; BIRD:
#              the overlay channel: gateway recursive, igp table, next hop self / keep, rr
#              client on the reflector): 10.77.0.1 travels over the reflectors, every node
#              installs it (kittbgpd proto 200, BIRD proto bird, metric 32: preferred over the
#              static route)
#   step 3     the static routes are removed: the service is reached over the overlay only
# Checks (one PASS/FAIL line each, final "N passed, M failed", exit 1 on any failure):
#   a  phase one: link sessions up, loopbacks and the static service routes in place, pings
#   b  step 1: every multihop session Established; no link session reset
#   c  step 2: every node's route to 10.77.0.1 is the overlay's (BGP, metric 32); no link reset
#   d  step 3: static routes gone, every node still reaches 10.77.0.1 over the overlay
#   e  continuous pings from every node (10/s, from its loopback) to the service address and to
#      the opposite node's loopback over all steps: 0 lost; no link session reset on any node
#      (kittbgpd `since`, BIRD `show protocols` since) from phase one to the end
# Usage: interop/test_migration.sh [/path/to/kittbgpd]   (root)
# Environment: KB_CONVERGE_S (30), KB_KEEP_STATE=1, KB_LAB_PREFIX, see lib.sh.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=interop/lib.sh
source "$HERE/lib.sh"
lab_args "$@"
lab_checks
CONVERGE_S=${KB_CONVERGE_S:-30}
NODES="1 2 3 4" KBN="1 2 3" ANY=10.77.0.1 OVERLAY=10.77.0.0/16
declare -A OPPOSITE=([1]=3 [2]=4 [3]=1 [4]=2)

lab_exit_hook() {
    local rc=$1 i
    if ((rc != 0 || FAILED > 0)) && [[ -d $KB_LAB_STATE ]]; then
        for i in $KBN; do
            echo "== node $i: kittbgpd neighbors, warnings"
            kb_show "$i" neighbors 2>/dev/null | head -12 || true
            grep -E 'WARN|ERROR' "$(lab_dir "$i")/kittbgpd.log" | tail -n 5 || true
        done
        echo "== node 4: BIRD"; birdc_n 4 show protocols 2>/dev/null | tail -n +2 || true
        tail -n 10 "$(lab_bird_log 4)" 2>/dev/null || true
    fi
    ((rc == 0)) || echo "interrupted or aborted (status $rc) after the checks above"
    echo "$PASSED passed, $FAILED failed"
    ((FAILED == 0))
}

# the configs of each phase (kittbgpd: kb_conf arguments; BIRD: lab_bird_conf arguments)
BASEKB=(--kernel --hold 9 --keepalive 3)
BASEBIRD=(--hold 9 --keepalive 3)
kb_phase() {  # kb_phase I 1|2|3: write node i's config of that phase (3 = step 2 onwards)
    local i=$1 p=$2 args=("${BASEKB[@]}") j
    if ((p >= 2)); then
        if [[ $i == 1 ]]; then
            for j in 2 3 4; do args+=(--multihop "$j:8"); done
            args+=(--mh-set 4:rr_client=false --mh-set 'add_paths="both"')
        else
            args+=(--multihop 1:8 --multihop 4:8 --mh-set rr_client=false --mh-set 'add_paths="receive"')
        fi
    fi
    if ((p >= 3)); then
        args+=(--overlay-set "ipv4=[\"$OVERLAY\"]")
        [[ $i != 3 ]] || args+=(--overlay-set from_lo=true)
    fi
    kb_conf "$i" "${args[@]}"
}
bird_phase() {  # bird_phase 1|2|3: node 4's BIRD config of that phase
    local args=("${BASEBIRD[@]}")
    (($1 < 2)) || args+=(--multihop 1:8 --multihop 2:8 --multihop 3:8 --rr-clients "2 3")
    (($1 < 3)) || args+=(--overlay "$OVERLAY" --add-paths)
    lab_bird_conf 4 "${args[@]}"
}
reload_all() {  # reload_all PHASE: every node takes the phase's config by reload
    local i
    for i in $KBN; do
        kb_phase "$i" "$1"
        kb_ctl "$i" reload | grep -E '"apply"|restart|error' | sed "s/^/     node $i reload: /" | head -8 || true
    done
    bird_phase "$1"
    birdc_n 4 configure | sed 's/^/     node 4 birdc configure: /' | tail -n 2
}

# link_sinces: every link session's state and since, one line per node and session
link_sinces() {
    local i j
    for i in $KBN; do
        for j in $(lab_peers "$i"); do echo "$i wg$j $(kb_neighbor_state "$i" "wg$j") $(kb_neighbor_field "$i" "wg$j" since)"; done
    done
    # BIRD's since (HH:MM:SS.mmm), in ms of the day: it is computed at display
    # time from a monotonic clock and may move by a millisecond between calls
    local line
    for j in $(lab_peers 4); do line=$(bird_proto_line 4 "wg$j"); echo "4 wg$j $(awk '{print $6}' <<< "$line") $(bird_since_ms "$line")"; done
}
# same_sinces A B: the same sessions, states and since, BIRD's since within 20 ms
same_sinces() {
    [[ $(wc -l <<< "$1") == $(wc -l <<< "$2") ]] || return 1
    paste -d'|' <(echo "$1") <(echo "$2") | awk -F'|' '{
        na = split($1, a, " "); nb = split($2, b, " ")
        if (na != nb) exit 1
        for (k = 1; k < na; k++) if (a[k] != b[k]) exit 1
        if (a[1] == "4") { d = a[na] - b[na]; if (d < -20 || d > 20) exit 1 }
        else if (a[na] != b[na]) exit 1
    }'
}
links_up() { ! link_sinces | grep -qv Established; }
mh_up() {
    local i
    for i in 2 3 4; do kb_established 1 "mh$i" || return 1; done
    for i in 2 3; do kb_established "$i" mh1 && kb_established "$i" mh4 || return 1; done
    for i in 1 2 3; do bird_established 4 "mh$i" || return 1; done
}
# svc_route I: "bgp" if node i's route to the service is a BGP one (kittbgpd proto 200, BIRD
# proto bird), "static" if the static one, "local" on node 3, "none"
svc_route() {
    ip -n "$(lab_ns "$1")" -4 route get "$ANY" 2>/dev/null | head -1 | grep -q '^local ' && { echo local; return; }
    local o; o=$(lab_route_owners "$1" "$ANY/32")
    case $o in
        *200/32*|*bird/32*) echo bgp ;;
        *boot/1000*|*static/1000*) echo static ;;
        *) echo "none($o)" ;;
    esac
}
svc_all() { local i; for i in $NODES; do printf '%s:%s ' "$i" "$(svc_route "$i")"; done; }
svc_all_are() { [[ $(svc_all) == "1:$1 2:$1 3:local 4:$1 " ]]; }
pings() { ! lab_ping_matrix $NODES -- $NODES | grep -q lost; }

# ------------------------------------------------------------------ phase one
lab_ensure_packages
lab_init
lab_up 4 ring
ip -n "$(lab_ns 3)" addr add "$ANY/32" dev lo
for i in $KBN; do kb_phase "$i" 1; done
bird_phase 1
lab_bird_start 4
for i in $KBN; do kb_start "$i" "$BIN"; done
routes_in() { local i; for i in 1 2 4; do [[ $(lab_nh "$i" 10.255.0.3/32) != - ]] || return 1; done; }
if wait_for "links_up && routes_in" "$CONVERGE_S" 0.25; then
    for i in 1 2 4; do   # the operator's static route: the underlay's first hop to node 3
        via=$(ip -n "$(lab_ns "$i")" -4 route show 10.255.0.3 | sed -E 's/ proto .*//; s/^10\.255\.0\.3 //' | head -1)
        # shellcheck disable=SC2086
        ip -n "$(lab_ns "$i")" route add "$ANY/32" $via metric 1000
    done
    wait_for pings 10 0.5 || true
    if pings && svc_all_are static; then pass "a: phase one: link sessions up, loopbacks routed, the service by static routes ($(svc_all))"
    else fail "a: phase one not as expected: $(svc_all)"; fi
else
    fail "a: phase one: link sessions or loopback routes missing"
fi
# The migration starts from a settled phase one: every link session up and
# unchanged for 6 s (a link flapping at start-up is step 9's business, not
# the migration's; it is logged here).
settled() {
    local a b
    a=$(link_sinces); links_up || return 1
    sleep 6
    b=$(link_sinces); links_up && same_sinces "$a" "$b"
}
if wait_for settled 40 0.5; then info "phase one settled ($WAITED_MS ms after the checks)"
else info "phase one: link sessions still changing after 40 s"; fi
SINCE0=$(link_sinces)
for i in $NODES; do
    lab_run "$i" pingsvc "$KB_LAB_STATE/ping.svc.$i" ping -i 0.1 -W 1 -I "10.255.0.$i" "$ANY"
    lab_run "$i" pinglo "$KB_LAB_STATE/ping.lo.$i" ping -i 0.1 -W 1 -I "10.255.0.$i" "10.255.0.${OPPOSITE[$i]}"
done
sleep 2

# ------------------------------------------------------------------ step 1
reload_all 2
if wait_for mh_up "$CONVERGE_S" 0.25; then
    pass "b: step 1: reflector sessions up by reload (after ${WAITED_MS} ms)"
else
    fail "b: step 1: multihop sessions not all Established"
fi
same_sinces "$(link_sinces)" "$SINCE0" && pass "b: step 1: no link session reset" || fail "b: step 1: a link session was reset"
sleep 2

# ------------------------------------------------------------------ step 2
reload_all 3
if wait_for "svc_all_are bgp" "$CONVERGE_S" 0.25; then
    pass "c: step 2: [overlay] by reload: every node routes $ANY over the overlay ($(svc_all); ${WAITED_MS} ms)"
else
    fail "c: step 2: service routes: $(svc_all)"
fi
wait_for mh_up 10 0.25 || fail "c: step 2: a multihop session did not come back"
same_sinces "$(link_sinces)" "$SINCE0" && pass "c: step 2: no link session reset" || fail "c: step 2: a link session was reset"
sleep 2

# ------------------------------------------------------------------ step 3
for i in 1 2 4; do ip -n "$(lab_ns "$i")" route del "$ANY/32" metric 1000; done
sleep 2
if svc_all_are bgp; then pass "d: step 3: static routes removed, $ANY over the overlay only ($(svc_all))"
else fail "d: step 3: $(svc_all)"; fi

# e
for i in $NODES; do lab_kill "pingsvc-$i" INT 2 || true; lab_kill "pinglo-$i" INT 2 || true; done
loss="" sent=0
for f in "$KB_LAB_STATE"/ping.*; do
    l=$(lab_ping_lost "$f")
    n=$(grep -o '^[0-9]* packets transmitted' "$f" | cut -d' ' -f1)
    sent=$((sent + ${n:-0}))
    [[ $l == 0 ]] || loss+=" ${f##*/}: $l"
done
if [[ -z $loss && $sent -gt 0 ]]; then pass "e: continuous pings over the whole migration: $sent sent, 0 lost"
else fail "e: pings lost:$loss"; fi
now=$(link_sinces)
if same_sinces "$now" "$SINCE0"; then pass "e: no link session reset from phase one to phase two ($(wc -l <<< "$now") link session ends)"
else fail "e: link sessions changed:"; diff <(echo "$SINCE0") <(echo "$now") | sed 's/^/     /' || true; fi
