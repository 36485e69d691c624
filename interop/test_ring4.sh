#!/usr/bin/env bash
# test_ring4.sh -- step-2 interop test: a ring of four nodes (links 1-2, 2-3, 3-4, 4-1) over
# wireguard-go tunnels, BIRD 2 on nodes 1 and 3, kittbgpd on nodes 2 and 4, static link costs per
# link and direction; kittbgpd must pick the same paths (next hop + MED) as an all-BIRD ring.
#
# Usage: interop/test_ring4.sh [/path/to/kittbgpd]   (root)
#        interop/test_ring4.sh --all-bird            (self-test: BIRD on all four nodes, both rings)
#        interop/test_ring4.sh --no-reference [BIN]  (skip the all-BIRD run: expect the computed paths)
#        interop/test_ring4.sh --large [BIN]         (large and unknown costs, see below; no reference)
# Default binary: the newer of target/release/kittbgpd and target/debug/kittbgpd (lab_pick_bin) (copied to /tmp for the run,
# so a rebuild during the test does not matter).
# Prints PASS/FAIL lines and a final "N passed, M failed"; exit 1 on any failure.  Cleans up only
# its own namespaces and PIDs (lib.sh), also when interrupted.
#
# Costs (KB_RING4_COSTS in lib.sh, "I-J:C" = node I adds C to the MED of routes from node J):
#   1-2: 10 both ways   2-3: node 2 pays 35, node 3 pays 10   3-4: 50 both ways   4-1: 10 both ways
# so that 3 reaches 4 the long way (3<-2<-1<-4, MED 30), 4 reaches 3 directly (50 < 55), 1
# reaches 3 via 2 (45), and no node has two equally good paths (ties would test tie-breaking).
#
# --large (run "large"): costs of 2^31 (2147483648, what both daemons add for a link of unknown
# cost) on links 1->2 and both ways on 2-3 (KB_RING4_LARGE_COSTS). Exact sums stay below 2^32, so
# Dijkstra with unbounded integers is the non-wrapping expectation (next hop and MED per row).
# BIRD's `bgp_med + cost` wraps modulo 2^32: had kittbgpd on node 2 sent its totals (2^31 for
# node 1's loopback, 2^31+10 for node 4's), BIRD node 3 would add 2^31 and get 0 and 10, cheaper
# than its real paths (60 via 4, 50 direct). kittbgpd sends min(total, 2^31-1) (README, mixed
# fabrics), so node 3 gets 2^32-1 and must pick the real paths. The all-BIRD reference is skipped:
# there BIRD node 2 sends 2^31+10 to BIRD node 3, which wraps (the rule covers kittbgpd's sends).
# Check "w" first simulates both daemons' arithmetic: uncapped kittbgpd MEDs would mislead some
# BIRD node (the scenario bites), capped ones would not.
#
# Run "ref": the all-BIRD ring (the reference); run "mixed": BIRD on 1 and 3, kittbgpd on 2 and 4
# (with --all-bird: run "bird2", BIRD everywhere again).  Checks in each run:
#   0  every session Established on both ends (8 ends)
#   1  every node has a best route to every other node's 10.255.0.j/32 and fd00:255::j/128
#   2  table node x prefix: (next hop, MED) of the best route, expected vs got, PASS/FAIL per row.
#      Expected: run "ref" against the paths computed from the costs (Dijkstra; checks the lab's
#      model), the later run against what run "ref" chose (BIRD: `show route all`, the "*" route's
#      `via` and BGP.med; kittbgpd: `show routes --json`, the route with "best": true)
#   3  10.255.0.1/32 removed from node 1's lo (BIRD's direct protocol withdraws it): gone from
#      nodes 2-4 (in two polls in a row); added back: present again on nodes 2-4, on the expected
#      path (each waits at most KB_WITHDRAW_S; the second stops early if nothing changes for
#      KB_SETTLE_S).  A node that had no route before the withdrawal passes "gone" vacuously (said so).
#   z  every daemon still running at the end
# Waiting is by polling: a run's routes count as converged when the table equals the expected one,
# or when it has not changed for KB_SETTLE_S (5), counted after check 0 has waited for the sessions;
# at most KB_CONVERGE_S (30).
# Environment: KB_RING4_COSTS, KB_CONVERGE_S, KB_SETTLE_S, KB_WITHDRAW_S (15), KB_KEEP_STATE=1
# (keep logs), KB_LAB_PREFIX, RUST_LOG, see lib.sh.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=interop/lib.sh
source "$HERE/lib.sh"

MODE=mixed REFERENCE=1 BIN="" LARGE=0
for arg in "$@"; do
    case $arg in
        --all-bird) MODE="all-bird" ;;
        --no-reference) REFERENCE=0 ;;
        --large) LARGE=1 REFERENCE=0 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "test_ring4.sh: unknown option $arg" >&2; exit 2 ;;
        *) BIN=$arg ;;
    esac
done
[[ $MODE == mixed ]] && BIN=$(lab_pick_bin test_ring4.sh "$BIN")
[[ $(id -u) == 0 ]] || lab_die "must run as root (network namespaces)"

CONVERGE_S=${KB_CONVERGE_S:-30}
SETTLE_S=${KB_SETTLE_S:-5}
WITHDRAW_S=${KB_WITHDRAW_S:-15}
COSTS=$KB_RING4_COSTS
U=2147483648   # 2^31: the unknown link cost
KB_RING4_LARGE_COSTS=${KB_RING4_LARGE_COSTS:-"1-2:10 2-1:$U 2-3:$U 3-2:$U 3-4:50 4-3:50 4-1:10 1-4:10"}
((LARGE == 0)) || COSTS=$KB_RING4_LARGE_COSTS
NODES=(1 2 3 4)
WD_PREFIX=10.255.0.1/32      # check 3: withdrawn from node 1's lo
TMPD=$(mktemp -d /tmp/kbring4.XXXXXX)
trap 'rm -rf "$TMPD"' EXIT   # until lab_init's trap takes over (lab_exit_hook removes it then)
STATE_BASE=${KB_LAB_STATE:-/run/kblab/$KB_LAB_PREFIX}

PASSED=0 FAILED=0 SCEN=""
pass() { PASSED=$((PASSED+1)); echo "PASS [$SCEN] $*"; }
fail() { FAILED=$((FAILED+1)); echo "FAIL [$SCEN] $*"; }
check() { local what=$1; shift; if "$@"; then pass "$what"; else fail "$what"; fi; }
info() { echo "     [$SCEN] $*"; }
now_ms() { echo $(( ${EPOCHREALTIME/./} / 1000 )); }
secs() { printf '%d.%01d s' $(($1 / 1000)) $(($1 % 1000 / 100)); }

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

# ---- per node: BIRD or kittbgpd (KIND[i], set per run)
declare -A KIND
kind_label() { if [[ ${KIND[$1]} == kb ]]; then echo kittbgpd; else echo bird; fi; }
node_established() {  # I J: node i's session towards node j
    if [[ ${KIND[$1]} == kb ]]; then kb_established "$1" "wg$2"; else bird_established "$1" "wg$2"; fi
}
all_established() {
    local i j
    for i in "${NODES[@]}"; do
        for j in $(lab_peers "$i"); do node_established "$i" "$j" || return 1; done
    done
}
sessions_summary() {
    local i j out=""
    for i in "${NODES[@]}"; do
        for j in $(lab_peers "$i"); do
            out+="$i>wg$j:$(node_established "$i" "$j" && echo up || echo DOWN) "
        done
    done
    echo "$out"
}
# wanted I: the other nodes' loopbacks, in table order
wanted() {
    local j
    for j in "${NODES[@]}"; do [[ $j == "$1" ]] || echo "10.255.0.$j/32"; done
    for j in "${NODES[@]}"; do [[ $j == "$1" ]] || echo "fd00:255::$j/128"; done
}
# best_routes I: "I prefix nh%if med" for node i's best routes to the other nodes' loopbacks
best_routes() {
    local i=$1 w
    w=$(wanted "$i" | paste -sd' ')
    { if [[ ${KIND[$i]} == kb ]]; then kb_best_routes "$i"; else bird_best_routes "$i"; fi; } 2>/dev/null \
        | awk -v i="$i" -v w="$w" 'BEGIN { n = split(w, a, " "); for (k = 1; k <= n; k++) ok[a[k]] = 1 }
                                    ok[$1] { print i, $1, $2, $3 }' || true
}
# snapshot: every node's best routes, sorted (one text, comparable with ==)
snapshot() {
    local i
    for i in "${NODES[@]}"; do best_routes "$i"; done | LC_ALL=C sort
}
has_prefix() {  # I PREFIX: any route, best or not
    if [[ ${KIND[$1]} == kb ]]; then kb_has_prefix "$1" "$2"; else bird_has_prefix "$1" "$2"; fi
}
daemon_name() { if [[ ${KIND[$1]} == kb ]]; then echo "kittbgpd-$1"; else echo "bird-$1"; fi; }

# computed FILE: the paths the costs imply (Dijkstra per destination over "node I adds C for routes
# from J"; the next hop is the neighbor's link-local on the tunnel), in snapshot format
computed() {
    "$PYTHON" - "$COSTS" "${NODES[*]}" > "$1" <<'EOF'
import heapq, sys
cost = {}
for e in sys.argv[1].split():
    ij, c = e.split(":"); i, j = ij.split("-")
    cost[(int(i), int(j))] = int(c)            # node i's import cost for routes from node j
nodes = [int(n) for n in sys.argv[2].split()]
rows = []
for d in nodes:
    dist, via = {d: 0}, {}
    pq = [(0, d)]
    while pq:
        dd, u = heapq.heappop(pq)
        if dd > dist.get(u, 1 << 62):
            continue
        for (i, j), c in cost.items():         # u = j announces to i
            if j == u and i != d and dd + c < dist.get(i, 1 << 62):
                dist[i] = dd + c; via[i] = u; heapq.heappush(pq, (dist[i], i))
    for n in nodes:
        if n == d or n not in dist:
            continue
        # tie check: another neighbor offering the same total
        offers = sorted(dist[j] + c for (i, j), c in cost.items() if i == n and j in dist and via.get(j) != n)
        if len(offers) > 1 and offers[0] == offers[1]:
            print("warning: node %d has two equal paths to node %d (MED %d): tie-breaking decides" % (n, d, offers[0]), file=sys.stderr)
        j = via[n]
        for p in ("10.255.0.%d/32" % d, "fd00:255::%d/128" % d):
            rows.append("%d %s fe80::%d:%d%%wg%d %d" % (n, p, j, n, j, dist[n]))
print("\n".join(sorted(rows)))
EOF
    LC_ALL=C sort -o "$1" "$1"
}

# wrap_rows KINDS CAP COMPUTED_FILE: the rows "node prefix nexthop med" where a fabric differs
# from COMPUTED_FILE's next hops when BIRD nodes add with wrapping u32 arithmetic and kittbgpd
# nodes saturate and advertise min(total, CAP) (4294967295: uncapped); synchronous rounds of
# best-path exchange (every node passes its best to every neighbor but the one it came from)
wrap_rows() {
    "$PYTHON" - "$COSTS" "${NODES[*]}" "$1" "$2" "$3" <<'EOF'
import sys
costs, nodes, kinds, cap, compfile = sys.argv[1], [int(n) for n in sys.argv[2].split()], sys.argv[3].split(), int(sys.argv[4]), sys.argv[5]
M = (1 << 32) - 1
cost = {}
for e in costs.split():
    ij, c = e.split(":"); i, j = ij.split("-"); cost[(int(i), int(j))] = int(c)
kind = {n: kinds[k] for k, n in enumerate(nodes)}
comp = {}
for line in open(compfile):
    f = line.split()
    if f: comp[(int(f[0]), f[1])] = (f[2], f[3])
for d in nodes:
    best = {d: (None, None)}           # node -> (from neighbor, MED as held); the origin: no MED
    for _ in range(30):
        new = {d: (None, None)}
        for n in nodes:
            if n == d: continue
            cands = []
            for (i, j), c in cost.items():
                if i != n or j not in best or best[j][0] == n: continue
                held = best[j][1]
                sent = held if held is None or kind[j] == "bird" else min(held, cap)
                base = 0 if sent is None else sent
                med = (base + c) & M if kind[n] == "bird" else min(base + c, M)
                cands.append((med, j))
            if cands:
                med, j = min(cands)
                new[n] = (j, med)
        if new == best: break
        best = new
    for n in nodes:
        if n == d or n not in best: continue
        j, med = best[n]
        for p in ("10.255.0.%d/32" % d, "fd00:255::%d/128" % d):
            nh = "fe80::%d:%d%%wg%d" % (j, n, j)
            if comp.get((n, p), ("", ""))[0] != nh:
                print(n, p, nh, med)
EOF
}

# lookup SNAPTEXT I PREFIX: "nh med" of that row, or nothing
lookup() { awk -v i="$2" -v p="$3" '$1 == i && $2 == p { print $3, $4 }' <<< "$1"; }
fmt_path() {
    local a b
    if [[ -z $1 ]]; then echo "(none)"; return; fi
    read -r a b <<< "$1"
    if [[ $a == '?candidates:'* ]]; then   # kb_best_routes: no best flag, several routes
        a=${a#*:}; a=${a//\// med }; echo "no best flag; candidates ${a//,/, }"
    else echo "$a med $b"; fi
}

diagnostics() {
    local i
    echo "---- diagnostics [$SCEN] (prefix $KB_LAB_PREFIX, state $KB_LAB_STATE) ----"
    for i in "${NODES[@]}"; do
        [[ ${KIND[$i]:-} == kb ]] || continue
        echo "== node $i: kittbgpd show routes"; kb_show "$i" routes 2>&1 | head -n 30 || true
        echo "== node $i: kittbgpd log, last WARN/ERROR lines"
        grep -aE 'WARN|ERROR' "$(lab_dir "$i")/kittbgpd.log" 2>/dev/null | tail -n 10 || true
    done
    echo "----"
}

# converge EXPECTED_TEXT T_REF_MS: poll snapshots until equal to EXPECTED, or unchanged for
# SETTLE_S, or CONVERGE_S; sets SNAP, CONV_HOW, CONV_MS (time of the last change or of the
# match, after T_REF_MS)
converge() {
    local exp=$1 t_ref=$2 t0 t last="" changed s
    t0=$(now_ms); changed=$t0
    while :; do
        s=$(snapshot); t=$(now_ms)
        if [[ $s == "$exp" ]]; then CONV_HOW="equal to the expected table"; changed=$t; break; fi
        if [[ $s != "$last" ]]; then last=$s; changed=$t; fi
        if ((t - changed >= SETTLE_S * 1000)); then CONV_HOW="not the expected table, unchanged for ${SETTLE_S} s"; break; fi
        if ((t - t0 >= CONVERGE_S * 1000)); then CONV_HOW="still changing after ${CONVERGE_S} s"; break; fi
        sleep 0.2
    done
    SNAP=$s; CONV_MS=$((changed - t_ref))
}

check_presence() {  # check 1, from SNAP
    local i p missing n
    for i in "${NODES[@]}"; do
        missing=() n=0
        for p in $(wanted "$i"); do
            n=$((n+1))
            [[ -n $(lookup "$SNAP" "$i" "$p") ]] || missing+=("$p")
        done
        if ((${#missing[@]} == 0)); then pass "1  node $i ($(kind_label "$i")) has best routes to all $n other loopbacks"
        else fail "1  node $i ($(kind_label "$i")) has best routes to all $n other loopbacks; missing: ${missing[*]}"; fi
    done
}

check_table() {  # check 2: EXPECTED_TEXT WHAT
    local exp=$1 what=$2 i p e g line
    printf '     [%s] 2  %-13s %-16s %-28s %s\n' "$SCEN" "node" "prefix" "expected ($what)" "got"
    for i in "${NODES[@]}"; do
        for p in $(wanted "$i"); do
            e=$(lookup "$exp" "$i" "$p"); g=$(lookup "$SNAP" "$i" "$p")
            line=$(printf '2  %-13s %-16s %-28s %s' "$i $(kind_label "$i")" "$p" "$(fmt_path "$e")" "$(fmt_path "$g")")
            if [[ -n $e && $e == "$g" ]]; then pass "$line"; else fail "$line"; fi
        done
    done
}

check_withdrawal() {  # check 3
    local p=$WD_PREFIX i t0 t others=() all quiet=0
    declare -A gone back had
    for i in "${NODES[@]}"; do [[ $i == 1 ]] || others+=("$i"); done
    for i in "${others[@]}"; do has_prefix "$i" "$p" && had[$i]=1 || had[$i]=0; done
    ip -n "$(lab_ns 1)" addr del "$p" dev lo
    t0=$(now_ms)
    # done when every node lacks it in two polls in a row (a path-hunting node may get it back
    # from a neighbor that has not heard of the withdrawal yet)
    while :; do
        all=1
        for i in "${others[@]}"; do
            if has_prefix "$i" "$p"; then all=0; unset "gone[$i]"
            elif [[ -z ${gone[$i]:-} ]]; then gone[$i]=$(( $(now_ms) - t0 )); fi
        done
        if ((all)); then quiet=$((quiet+1)); else quiet=0; fi
        t=$(now_ms)
        ((quiet < 2 && t - t0 < WITHDRAW_S * 1000)) || break
        sleep 0.1
    done
    for i in "${others[@]}"; do
        if has_prefix "$i" "$p"; then
            fail "3  $p withdrawn on node 1: gone from node $i ($(kind_label "$i")) within ${WITHDRAW_S} s"
        elif ((had[$i] == 0)); then
            pass "3  $p withdrawn on node 1: gone from node $i ($(kind_label "$i")) (vacuous: it had no route before)"
        else
            pass "3  $p withdrawn on node 1: gone from node $i ($(kind_label "$i")) after ${gone[$i]} ms"
        fi
    done

    # back: present again, and on the expected path
    ip -n "$(lab_ns 1)" addr add "$p" dev lo
    t0=$(now_ms)
    local s e g last="" changed=$t0
    while :; do
        all=1; s=$(snapshot)
        for i in "${others[@]}"; do
            e=$(lookup "$EXPECTED" "$i" "$p"); g=$(lookup "$s" "$i" "$p")
            [[ -n ${back[$i]:-} || -z $g ]] || back[$i]=$(( $(now_ms) - t0 ))
            [[ -n $g && $g == "$e" ]] || all=0
        done
        t=$(now_ms)
        [[ $s == "$last" ]] || { last=$s; changed=$t; }
        # stop early when nothing has changed for SETTLE_S (e.g. a node that cannot learn it)
        ((all == 0 && t - t0 < WITHDRAW_S * 1000 && t - changed < SETTLE_S * 1000)) || break
        sleep 0.1
    done
    for i in "${others[@]}"; do
        e=$(lookup "$EXPECTED" "$i" "$p"); g=$(lookup "$s" "$i" "$p")
        if [[ -z $g ]]; then
            fail "3  $p re-added on node 1: back on node $i ($(kind_label "$i")) (not after $(( t - t0 )) ms)"
        elif [[ $g == "$e" ]]; then
            pass "3  $p re-added on node 1: back on node $i ($(kind_label "$i")) after ${back[$i]} ms, $(fmt_path "$g") as expected"
        else
            fail "3  $p re-added on node 1: back on node $i ($(kind_label "$i")) after ${back[$i]} ms, but $(fmt_path "$g"), expected $(fmt_path "$e")"
        fi
    done
}

# run_ring NAME KINDS EXPECTED_FILE WHAT SNAPSHOT_OUT: one ring from scratch to teardown
run_ring() {
    SCEN=$1
    local kinds expfile=$3 what=$4 out=$5 i t_run t_up t_start failed0=$FAILED
    read -ra kinds <<< "$2"
    for i in "${NODES[@]}"; do KIND[$i]=${kinds[$((i-1))]}; done
    echo "== run $SCEN: $(for i in "${NODES[@]}"; do printf 'node %s %s  ' "$i" "$(kind_label "$i")"; done)"
    t_run=$(now_ms)
    KB_LAB_STATE="$STATE_BASE/$SCEN"
    lab_init
    lab_up 4 ring
    lab_costs "$COSTS"
    for i in "${NODES[@]}"; do
        if [[ ${KIND[$i]} == kb ]]; then kb_conf "$i"; else lab_bird_conf "$i"; fi
    done
    t_up=$(now_ms)
    for i in "${NODES[@]}"; do [[ ${KIND[$i]} == kb ]] || lab_bird_start "$i"; done
    for i in "${NODES[@]}"; do [[ ${KIND[$i]} != kb ]] || kb_start "$i" "$TMPD/kittbgpd"; done
    t_start=$(now_ms)
    info "lab up in $(secs $((t_up - t_run))), daemons started in $((t_start - t_up)) ms"

    if wait_for all_established 30 0.1; then
        pass "0  all 8 session ends Established ($(( $(now_ms) - t_start )) ms after the daemons started)"
    else
        fail "0  all 8 session ends Established within 30 s: $(sessions_summary)"
    fi
    EXPECTED=$(cat "$expfile")
    converge "$EXPECTED" "$t_start"
    info "routes: $CONV_HOW; last change $CONV_MS ms after the daemons started"
    echo "$SNAP" > "$out"

    check_presence
    check_table "$EXPECTED" "$what"
    check_withdrawal
    local dead=()
    for i in "${NODES[@]}"; do lab_pid "$(daemon_name "$i")" >/dev/null || dead+=("$(daemon_name "$i")"); done
    if ((${#dead[@]} == 0)); then pass "z  every daemon still running"; else fail "z  every daemon still running; gone: ${dead[*]}"; fi

    ((FAILED == failed0)) || diagnostics
    lab_down >/dev/null
    info "run $SCEN took $(secs $(( $(now_ms) - t_run ))) (up to teardown included)"
}

T0=$(now_ms)
if [[ $MODE == mixed ]]; then
    cp "$BIN" "$TMPD/kittbgpd"
    echo "kittbgpd: $BIN (running a copy: $TMPD/kittbgpd)"
else
    echo "self-test mode: BIRD on all four nodes in both runs"
fi
echo "costs (node I adds C for routes from node J, as I-J:C): $COSTS"
computed "$TMPD/computed"
if ((LARGE)); then
    SCEN=large
    misled=$(wrap_rows "bird kb bird kb" 4294967295 "$TMPD/computed")
    info "rows where uncapped kittbgpd MEDs would mislead a wrapping BIRD node (node prefix next-hop med):"
    while read -r l; do [[ -z $l ]] || info "   $l"; done <<< "$misled"
    check "w  the scenario bites: uncapped MEDs would send some BIRD node the wrong way" test -n "$misled"
    capped=$(wrap_rows "bird kb bird kb" 2147483647 "$TMPD/computed")
    check "w  simulated with the cap (2^31-1), every node takes the computed next hop${capped:+; not: $capped}" test -z "$capped"
fi
if ((REFERENCE)); then
    run_ring ref "bird bird bird bird" "$TMPD/computed" "computed" "$TMPD/ref"
    EXPFILE=$TMPD/ref WHAT=all-BIRD
else
    echo "== no reference run: expecting the computed paths"
    EXPFILE=$TMPD/computed WHAT=computed
fi
if [[ $MODE == mixed ]]; then
    run_ring "$( ((LARGE)) && echo large || echo mixed)" "bird kb bird kb" "$EXPFILE" "$WHAT" "$TMPD/mixed"
else
    run_ring bird2 "bird bird bird bird" "$EXPFILE" "$WHAT" "$TMPD/bird2"
fi
echo "total $(secs $(( $(now_ms) - T0 )))"
