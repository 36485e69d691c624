#!/usr/bin/env bash
# test_reflectors.sh -- issue 12 part 5: route reflectors over multihop iBGP, an anycast overlay
# prefix resolved over the measured underlay, kittbgpd and BIRD 2 mixed.
#
# Topology: a ring of six routers, every link through a delay relay (lab_up 6 ring --relay):
#
#        1 ---5--- 2 ---10--- 3*          one-way delays in ms (BASE); RTT = 2 x delay + ~1 ms
#        |                    |           kittbgpd: 1 2 3 5        BIRD 2: 4 6
#       10                   10           reflectors: 1 (kittbgpd), 4 (BIRD)
#        |                    |           anycast 10.77.0.1/32 on lo of 3 (kittbgpd, [overlay]
#        6* ---10--- 5 ---10--- 4            from_lo) and 6 (BIRD, protocol direct)
#
# Link sessions (as in every lab) carry only the loopbacks, hop by hop, next hop self, the link
# cost added to the MED: kittbgpd measures it (`cost = "auto"`, [cost] tuned to react in ~3 s),
# BIRD adds a static cost equal to the base RTT in us (and copies the MED into igp_metric). Every
# router also has a multihop session over loopbacks to each reflector (the reflectors to each
# other, as non-clients): they carry only the overlay (10.77.0.0/16), next hop unchanged (the
# originator's loopback), resolved recursively over the underlay (BIRD: gateway recursive, igp
# table master4), ADD-PATH when the binary has it (kittbgpd add_paths; BIRD add paths tx/rx).
# Expected: each router's kernel route for 10.77.0.1 leads to the instance nearest by underlay
# cost, computed here by Dijkstra over the per-direction costs (kittbgpd: current RTT, BIRD: its
# static cost), first hop = the expected device.
#
# Usage: interop/test_reflectors.sh [/path/to/kittbgpd]   (root)
# Prints one PASS/FAIL line per check and a final "N passed, M failed"; exit 1 on any failure.
#
#   a  every session Established (link and multihop, both daemons)
#   b  every router's route to 10.77.0.1 is the Dijkstra one (the instances themselves: local);
#      one ping to 10.77.0.1 from every router's loopback answers; kittbgpd's `show explain` of
#      a client names the exit and its underlay cost
#   c  links 5-6 and 6-1 go from 10 to 40 and 30 ms: the choices move where Dijkstra says
#      (routers 5 and 1, the kittbgpd reflector, to 3) and nowhere else; back: they return
#   d  10.77.0.1 removed from router 3's lo: every router leads to 6; put back: as in b
#   e  for each reflector in turn, its sessions to its clients are stopped (kittbgpd: disable
#      mh<J>; BIRD: disable mh<J>; the two reflectors stay peers, so the stopped one keeps its own
#      routes as a router, from the other): no router's route to 10.77.0.1 changes and a continuous ping from
#      every router (5/s) loses nothing; the sessions come back: no route change at all (counted
#      with `ip monitor route` in every router: no flap)
# Environment: KB_CONVERGE_S (60), KB_KEEP_STATE=1, KB_LAB_PREFIX, see lib.sh.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=interop/lib.sh
source "$HERE/lib.sh"
lab_args "$@"
lab_checks
CONVERGE_S=${KB_CONVERGE_S:-60}

NODES="1 2 3 4 5 6" KBN="1 2 3 5" BIRDN="4 6" RRS="1 4" ANY=10.77.0.1 OVERLAY=10.77.0.0/16
BASE="1-2:5 2-3:10 3-4:10 4-5:10 5-6:10 6-1:10"
STEP="1-2:5 2-3:10 3-4:10 4-5:10 5-6:40 6-1:30"
is_bird() { [[ " $BIRDN " == *" $1 "* ]]; }

lab_exit_hook() {
    local rc=$1 i
    if ((rc != 0 || FAILED > 0)) && [[ -d $KB_LAB_STATE ]]; then
        for i in $NODES; do
            if is_bird "$i"; then
                echo "== node $i: BIRD protocols / route $ANY"
                birdc_n "$i" show protocols 2>/dev/null | tail -n +2 || true
                birdc_n "$i" show route "$ANY/32" all 2>/dev/null | head -30 || true
            elif [[ -f $(lab_dir "$i")/kittbgpd.log ]]; then
                echo "== node $i: kittbgpd explain $ANY/32, log tail"
                kb_show "$i" explain "$ANY/32" 2>/dev/null | head -20 || true
                grep -E 'WARN|ERROR' "$(lab_dir "$i")/kittbgpd.log" | tail -n 5 || true
            fi
        done
    fi
    ((rc == 0)) || echo "interrupted or aborted (status $rc) after the checks above"
    echo "$PASSED passed, $FAILED failed"
    ((FAILED == 0))
}

# ------------------------------------------------------------------ expectations

# import_costs DELAYS: "I-J:C" for both directions of every link; C in us like kittbgpd's measured
# cost (RTT): kittbgpd routers see the current delays, BIRD routers keep their static BASE costs
import_costs() {
    local e i j d out=""
    for e in $1; do
        i=${e%%-*} j=${e#*-}; j=${j%%:*} d=${e##*:}
        for a in "$i $j" "$j $i"; do
            read -r x y <<< "$a"
            if is_bird "$x"; then out+="$x-$y:$(static_cost "$x" "$y") "
            else out+="$x-$y:$((2000 * d + 1000)) "; fi
        done
    done
    echo "$out"
}
static_cost() {  # static_cost I J: BIRD router i's cost for link i-j: the BASE RTT in us
    local e
    for e in $BASE; do
        [[ $e == "$1-$2:"* || $e == "$2-$1:"* ]] && { echo $((2000 * ${e##*:} + 1000)); return; }
    done
}

# expected DELAYS "INSTANCES": per router "I local" or "I wg<J>" (first hop toward the instance
# with the lowest underlay cost, Dijkstra via lab_expected_paths)
expected() {
    local inst=" $2 "
    lab_expected_paths "$(import_costs "$1")" "$NODES" 2>/dev/null | awk -v inst="$inst" -v nodes="$NODES" '
        $2 ~ /^10\.255\.0\.[0-9]+\/32$/ {
            d = $2; sub(/^10\.255\.0\./, "", d); sub(/\/32$/, "", d)
            if (index(inst, " " d " ") == 0) next
            nh = $3; sub(/.*%/, "", nh)
            if (!($1 in best) || $4 < best[$1]) { best[$1] = $4; dev[$1] = nh }
        }
        END {
            n = split(nodes, a, " ")
            for (k = 1; k <= n; k++) {
                i = a[k]
                if (index(inst, " " i " ")) print i, "local"; else print i, (i in dev ? dev[i] : "none")
            }
        }'
}

# actual: per router "I local|wg<J>|none": where the kernel sends 10.77.0.1
actual_one() {
    ip -n "$(lab_ns "$1")" -4 route get "$ANY" 2>/dev/null | awk -v i="$1" '
        /^local / { print i, "local"; f = 1; exit }
        { for (k = 1; k < NF; k++) if ($k == "dev") { d = $(k + 1) } }
        END { if (!f) print i, (d ~ /^wg/ ? d : "none") }'
}
actual() { local i; for i in $NODES; do actual_one "$i"; done; }
choices_are() { [[ $(actual) == "$1" ]]; }
oneline() { tr '\n' ' ' <<< "$1" | sed 's/ $//; s/\([0-9]\) \([a-z]\)/\1:\2/g'; }

# wait_choices LABEL EXPECTED: wait until every router's route is the expected one
wait_choices() {
    if wait_for "choices_are '$2'" "$CONVERGE_S" 0.25; then
        pass "$1 ($(oneline "$2"); after ${WAITED_MS} ms)"
    else
        fail "$1: want $(oneline "$2"), have $(oneline "$(actual)")"
        diagnose "$2"
    fi
}
# diagnose EXPECTED: for each router not as expected, its view of the anycast prefix
diagnose() {
    local i want have
    while read -r i want; do
        have=$(actual_one "$i"); [[ $have != "$i $want" ]] || continue
        info "router $i ($have, want $want): underlay route to the exits: $(lab_nh "$i" 10.255.0.3/32) / $(lab_nh "$i" 10.255.0.6/32)"
        if is_bird "$i"; then birdc_n "$i" show route "$ANY/32" all | grep -E 'unicast|next_hop|via' | sed 's/^/       /'
        else kb_show "$i" explain "$ANY/32" 2>&1 | sed 's/^/       /'; fi
    done <<< "$1"
}

ping_any() {  # ping_any I: one ping from router i's loopback to the anycast address answers
    ip netns exec "$(lab_ns "$1")" ping -c1 -W2 -q -I "10.255.0.$1" "$ANY" >/dev/null 2>&1
}

all_established() {
    local i p
    for i in $KBN; do
        kb_show "$i" neighbors --json | "$PYTHON" -c '
import json, sys
sys.exit(0 if all(n.get("state") == "Established" for n in json.load(sys.stdin)) else 1)' || return 1
    done
    for i in $BIRDN; do
        for p in $(lab_peers "$i" | sed 's/^/wg/') mh1 mh4; do
            [[ $p == "mh$i" ]] && continue
            bird_established "$i" "$p" || return 1
        done
        if [[ $i == 4 ]]; then for p in 2 3 5 6; do bird_established 4 "mh$p" || return 1; done; fi
    done
}

# ------------------------------------------------------------------ set-up

lab_ensure_packages
lab_init
lab_up 6 ring --relay
for e in $BASE; do lab_delay "${e%%-*}" "$(cut -d: -f1 <<< "${e#*-}")" "${e##*:}"; done
for i in $NODES; do
    for j in $(lab_peers "$i"); do
        if is_bird "$i"; then lab_cost "$i" "$j" "$(static_cost "$i" "$j")"; else lab_cost "$i" "$j" auto; fi
    done
done
ip -n "$(lab_ns 3)" addr add "$ANY/32" dev lo
ip -n "$(lab_ns 6)" addr add "$ANY/32" dev lo

# ADD-PATH (RFC 7911) if this kittbgpd has it: reflectors send every path, clients take them
ADDPATH=1
printf 'router_id = "10.0.0.1"\nlocal_as = 1\n[loopbacks]\nipv4 = ["10.0.0.0/24"]\n[defaults]\nadd_paths = "both"\n' > "$KB_LAB_STATE/ap.toml"
"$BIN" check -c "$KB_LAB_STATE/ap.toml" >/dev/null 2>&1 || ADDPATH=0
info "ADD-PATH: $( ((ADDPATH)) && echo "on (kittbgpd add_paths, BIRD add paths)" || echo "off: this kittbgpd has no add_paths (each reflector then sends only its best path)")"

COMMON=(--kernel --hold 9 --keepalive 3 --overlay-set "ipv4=[\"$OVERLAY\"]"
    --cost-set interval=0.5 --cost-set window=4 --cost-set hold_down=1 --cost-set min_change_interval=2)
for i in $KBN; do
    args=("${COMMON[@]}")
    [[ $i != 3 ]] || args+=(--overlay-set from_lo=true)
    if [[ $i == 1 ]]; then   # reflector: every other router a client, the other reflector not
        for j in 2 3 4 5 6; do args+=(--multihop "$j:8"); done
        args+=(--mh-set 4:rr_client=false)
        ((ADDPATH == 0)) || args+=(--mh-set 'add_paths="both"')
    else
        args+=(--multihop 1:8 --multihop 4:8 --mh-set rr_client=false)
        ((ADDPATH == 0)) || args+=(--mh-set 'add_paths="receive"')
    fi
    kb_conf "$i" "${args[@]}"
done
bargs=(--hold 9 --keepalive 3 --overlay "$OVERLAY")
((ADDPATH == 0)) || bargs+=(--add-paths)
lab_bird_conf 4 "${bargs[@]}" --multihop 1:8 --multihop 2:8 --multihop 3:8 --multihop 5:8 --multihop 6:8 \
    --rr-clients "2 3 5 6"
lab_bird_conf 6 "${bargs[@]}" --multihop 1:8 --multihop 4:8
for i in $BIRDN; do lab_bird_start "$i"; done
for i in $KBN; do kb_start "$i" "$BIN"; done

# a
if wait_for all_established "$CONVERGE_S" 0.5; then
    pass "a: every link and multihop session Established (after ${WAITED_MS} ms)"
else
    fail "a: sessions missing"
    for i in $KBN; do info "node $i: $(kb_show "$i" neighbors 2>&1 | grep -v Established | tr '\n' ';' | cut -c1-300)"; done
fi

# b
EXP_BASE=$(expected "$BASE" "3 6")
wait_choices "b: every router's route to $ANY leads to the nearest instance" "$EXP_BASE"
lost=""
# (just converged: a first echo may still meet a route being installed on its way back; retried)
for i in $NODES; do wait_for "ping_any $i" 5 0.2 || lost+=" $i"; done
if [[ -z $lost ]]; then pass "b: ping $ANY from every router"; else fail "b: ping $ANY lost from:$lost (5 s)"; fi
x=$(kb_show 2 explain "$ANY/32" 2>&1 || true)
info "router 2: show explain $ANY/32:"; sed 's/^/       /' <<< "$x" | head -12
if grep -q "10.255.0.3" <<< "$x" && grep -qi "underlay" <<< "$x"; then
    pass "b: show explain on router 2 names the exit 10.255.0.3 and its underlay cost"
else
    fail "b: show explain on router 2 does not name the exit and its underlay cost"
fi

# c
EXP_STEP=$(expected "$STEP" "3 6")
moves=$({ diff <(echo "$EXP_BASE") <(echo "$EXP_STEP") || true; } | awk '/^>/ { printf "%s%s:%s", s, $2, $3; s = " " }')
info "links 5-6 to 40 ms, 6-1 to 30 ms; Dijkstra moves: ${moves:-nothing}"
lab_delay 5 6 40; lab_delay 6 1 30
wait_choices "c: latency up on 5-6 and 6-1, the choices move as Dijkstra says ($moves)" "$EXP_STEP"
lab_delay 5 6 10; lab_delay 6 1 10
wait_choices "c: latency back, the choices return" "$EXP_BASE"

# d
ip -n "$(lab_ns 3)" addr del "$ANY/32" dev lo
wait_choices "d: instance 3 withdrawn, every router leads to 6" "$(expected "$BASE" 6)"
ip -n "$(lab_ns 3)" addr add "$ANY/32" dev lo
wait_choices "d: instance 3 back, the nearest again" "$EXP_BASE"

# e
clients_of() { local j; for j in $NODES; do [[ " $RRS " == *" $j "* ]] || echo "$j"; done; }
rr_sessions() {  # rr_sessions R disable|enable: reflector R's sessions to its clients
    local j
    for j in $(clients_of); do
        if is_bird "$1"; then birdc_n "$1" "$2" "mh$j" >/dev/null; else kb_ctl "$1" "$2" "mh$j" >/dev/null; fi
    done
}
rr_down() {  # every client lost its session to reflector R
    local i
    for i in $(clients_of); do
        if is_bird "$i"; then ! bird_established "$i" "mh$1" || return 1; else ! kb_established "$i" "mh$1" || return 1; fi
    done
}
for r in $RRS; do
    before=$(actual)
    for i in $NODES; do
        lab_run "$i" ping "$KB_LAB_STATE/ping.$r.$i" ping -i 0.2 -W 1 -I "10.255.0.$i" "$ANY"
    done
    sleep 1
    rr_sessions "$r" disable
    wait_for "rr_down $r" 20 0.2 || info "reflector $r: some sessions still up"
    sleep 5
    during=$(actual)
    [[ $during == "$before" ]] || diagnose "$before"
    for i in $NODES; do
        lab_run "$i" ipmon "$KB_LAB_STATE/ipmon.$r.$i" ip -4 monitor route
    done
    sleep 0.5
    rr_sessions "$r" enable
    wait_for all_established "$CONVERGE_S" 0.5 || info "reflector $r: sessions not all back"
    sleep 5
    for i in $NODES; do lab_kill "ipmon-$i" INT 2 || true; lab_kill "ping-$i" INT 2 || true; done
    loss=""
    for i in $NODES; do
        l=$(lab_ping_lost "$KB_LAB_STATE/ping.$r.$i")
        [[ $l == 0 ]] || loss+=" $i: $l"
    done
    flaps=$(cat "$KB_LAB_STATE"/ipmon."$r".* | grep -c "^[A-Za-z]* *${ANY//./\\.} " || true)
    if [[ $during == "$before" && -z $loss ]]; then
        pass "e: reflector $r stopped: no route to $ANY changed, pings from every router lost nothing"
    else
        fail "e: reflector $r stopped: routes $(oneline "$before") -> $(oneline "$during"), loss:${loss:- none}"
    fi
    if [[ $flaps == 0 && $(actual) == "$before" ]]; then
        pass "e: reflector $r back: no route change on any router (ip monitor: $flaps)"
    else
        fail "e: reflector $r back: $flaps route changes for $ANY; routes now $(oneline "$(actual)")"
        cat "$KB_LAB_STATE"/ipmon."$r".* | grep "$ANY" | head -5 | sed 's/^/     /'
    fi
done
