#!/usr/bin/env bash
# test_views.sh -- routing views (step 11) smoke test: a view's family over a kittbgpd session,
# a BIRD neighbor on another session unchanged.
#
# Usage: interop/test_views.sh [/path/to/kittbgpd]   (root)
# Default binary: the newer of target/release/kittbgpd and target/debug/kittbgpd (lab_pick_bin).
#
# Scenario pair: a line 1 - 2 - 3 of wireguard-go tunnels; node 1 runs BIRD 2, nodes 2 and 3
# kittbgpd with one view `hops` (id 2, table 102, metric hops); static costs 10 on every link.
# Checks:
#   0  the three sessions Established (BIRD ignores the view capabilities it does not know)
#   a  node 2: the view families negotiated with node 3 (`show neighbors --json`), none with BIRD
#   b  `show routes --view hops`: node 2 holds node 3's loopbacks (and node 3 node 2's) with
#      MED 1 (one hop), next hop the neighbor's link-local address; the default table has them
#      with MED 10 (the static cost)
#   c  node 3 holds BIRD's loopbacks in the default table (via node 2), not in the view (BIRD is
#      not part of it)
#   d  BIRD holds both kittbgpd nodes' loopbacks (the default view as before)
#   e  `show explain 10.255.0.3/32 --view hops` on node 2: link cost 1, total 1; `show routes
#      --view nosuch` fails
# Scenario ring: a ring of five kittbgpd nodes, views `fast` (id 1, metric latency) and `hops`
# (id 2, metric hops); static costs 10 except the link 5-1 (100), so node 1 reaches node 5 over
# 2-3-4 in the default and fast tables and directly in hops.
#   r  every node's best route to every other loopback, in the default table and in each view,
#      is the path Dijkstra gives over that table's metric (lab_expected_paths): next hop and MED
#   s  link 5-1 reloaded to cost 15 on both ends (`kittbgpd reload`: live): default and fast
#      follow Dijkstra's new paths (node 1 to node 5 now direct), hops is unchanged
# The ring runs with [kernel] on, fast with the rule fwmark 0x1 (table 101), hops fwmark 0x2 (102);
# costs are static (fast = the latency metric over them; no delay relays):
#   k  each node's kernel tables main, 101 and 102 hold exactly one route per other loopback, next
#      hop = Dijkstra's over the table's metric, proto 200 (lab_kernel_routes)
#   p  `ip rule` / `ip -6 rule` hold both rules on every node; 20 pings from node 1's loopback to
#      node 5's (no mark, -m 1, -m 2; IPv4 and IPv6) get their replies and leave by the table's
#      first hop (the tunnel whose TX packet counter grew by 20: lab_ping_first_hop)
#   o  node 1's /metrics (promtool-valid): kittbgpd_view_routes per view and family,
#      kittbgpd_view_link_cost per view and neighbor
#   e  end to end: hops also has the IPv6 rule dscp 10 (a classifier that travels with the packet,
#      unlike fwmark): 20 pings with DSCP 10 (`ping -Q 40`) from node 2's loopback to node 5's get
#      their replies and go 2-1-5 (the hops view at node 2 and again at node 1: node 2's wg1 and
#      node 1's wg5 TX grow by 20 each, node 1's wg2 does not), where the default view goes 2-3-4-5
#   c  after s: tables main and 101 moved (Dijkstra), 102 unchanged; marked pings follow
#   d  tunnel 1-5 down (both ends): the three tables equal Dijkstra without it; pings follow
# Environment: KB_LAB_PREFIX, KB_LAB_STATE, KB_KEEP_STATE=1, RUST_LOG, see lib.sh.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=interop/lib.sh
source "$HERE/lib.sh"

BIN=$(lab_pick_bin test_views.sh "${1:-}")

PASSED=0 FAILED=0
pass() { PASSED=$((PASSED+1)); echo "PASS $*"; }
fail() { FAILED=$((FAILED+1)); echo "FAIL $*"; }
check() { local what=$1; shift; if "$@"; then pass "$what"; else fail "$what"; fi; }

lab_exit_hook() {
    local rc=$1 i
    if ((rc != 0 || FAILED > 0)) && [[ -d $KB_LAB_STATE ]]; then
        for i in 2 3; do
            echo "== node $i: show routes --view hops"; kb_show "$i" routes --view hops 2>&1 | head -n 20 || true
            echo "== node $i: kittbgpd log, last WARN/ERROR lines"
            grep -aE 'WARN|ERROR' "$(lab_dir "$i")/kittbgpd.log" 2>/dev/null | tail -n 10 || true
        done
    fi
    echo "$PASSED passed, $FAILED failed"
    ((FAILED == 0))
}

# view_route I PREFIX: "next_hop%interface med" of node i's best route in view hops ("" if none)
view_route() {
    kb_show "$1" routes --view hops --json | "$PYTHON" -c '
import json, sys
for r in json.load(sys.stdin):
    if r.get("prefix") == sys.argv[1] and r.get("peer") not in ("self", None) and r.get("best", True):
        print("%s%%%s %s" % (r.get("next_hop"), r.get("interface"), r.get("med")))
' "$2"
}
# default_route I PREFIX: the same in the default table
default_route() { kb_best_routes "$1" | awk -v p="$2" '$1 == p { print $2, $3 }'; }
# views_negotiated I NAME: "ipv4 ipv6" flags of the view families on neighbor NAME's session
views_negotiated() {
    kb_show "$1" neighbors --json | "$PYTHON" -c '
import json, sys
d = json.load(sys.stdin)
d = d.get("neighbors", d) if isinstance(d, dict) else d
for n in d:
    if n.get("name") == sys.argv[1]:
        v = (n.get("negotiated") or {}).get("views") or {}
        print(bool(v.get("ipv4_unicast")), bool(v.get("ipv6_unicast")))
' "$2"
}
all_up() { bird_established 1 wg2 && kb_established 2 wg1 && kb_established 2 wg3 && kb_established 3 wg2; }
converged() {
    [[ -n $(view_route 2 10.255.0.3/32) && -n $(view_route 3 fd00:255::2/128) ]] \
        && [[ -n $(default_route 3 10.255.0.1/32) ]] && bird_has_prefix 1 10.255.0.3/32
}

STATE_BASE=${KB_LAB_STATE:-/run/kblab/$KB_LAB_PREFIX}

scenario_pair() {
    echo "== scenario pair: BIRD (1) - kittbgpd (2) - kittbgpd (3), view hops"
    KB_LAB_STATE=$STATE_BASE/pair
    lab_init
    lab_up 3 line
    lab_costs "1-2:10 2-1:10 2-3:10 3-2:10"
    lab_bird_conf 1
    for i in 2 3; do kb_conf "$i"; kb_views "$i" hops:2:102:hops; done
    lab_bird_start 1
    for i in 2 3; do kb_start "$i" "$BIN"; done

    if wait_for all_up 30 0.2; then pass "0  sessions 1-2 (BIRD) and 2-3 Established (${WAITED_MS} ms)"
    else fail "0  sessions 1-2 (BIRD) and 2-3 Established within 30 s"; fi
    wait_for converged 30 0.2 || true
    echo "     routes settled after ${WAITED_MS} ms"

    check "a  node 2: view families negotiated with node 3" test "$(views_negotiated 2 wg3)" == "True True"
    check "a  node 2: no view family with BIRD (node 1)" test "$(views_negotiated 2 wg1)" == "False False"
    for p in 10.255.0.3/32 fd00:255::3/128; do
        got=$(view_route 2 "$p")
        check "b  node 2 view hops: $p via fe80::3:2%wg3 MED 1 (got: ${got:-none})" test "$got" == "fe80::3:2%wg3 1"
        got=$(default_route 2 "$p")
        check "b  node 2 default: $p via fe80::3:2%wg3 MED 10 (got: ${got:-none})" test "$got" == "fe80::3:2%wg3 10"
    done
    for p in 10.255.0.2/32 fd00:255::2/128; do
        got=$(view_route 3 "$p")
        check "b  node 3 view hops: $p via fe80::2:3%wg2 MED 1 (got: ${got:-none})" test "$got" == "fe80::2:3%wg2 1"
    done
    for p in 10.255.0.1/32 fd00:255::1/128; do
        got=$(default_route 3 "$p")
        check "c  node 3 default: BIRD's $p via node 2, MED 20 (got: ${got:-none})" test "$got" == "fe80::2:3%wg2 20"
        got=$(view_route 3 "$p")
        check "c  node 3 view hops: no route to BIRD's $p (got: ${got:-none})" test -z "$got"
    done
    for p in 10.255.0.2/32 10.255.0.3/32 fd00:255::2/128 fd00:255::3/128; do
        check "d  BIRD (node 1) has $p" bird_has_prefix 1 "$p"
    done
    explain=$(kb_show 2 explain 10.255.0.3/32 --view hops --json)
    check "e  node 2 explain --view hops: link cost 1, MED 1" "$PYTHON" -c '
import json, sys
e = json.loads(sys.argv[1])
best = [c for c in e["candidates"] if c.get("best")]
sys.exit(0 if best and best[0].get("link_cost") == 1 and best[0].get("med") == 1 else 1)
' "$explain"
    check "e  show routes --view nosuch: an error" no_such_view
    lab_down >/dev/null
}

no_such_view() { ! kb_show 2 routes --view nosuch >/dev/null 2>&1; }

# table_snapshot I TABLE: "I PREFIX NEXTHOP%IF MED" per best route of node i in TABLE (default,
# or a view name)
table_snapshot() {
    local view=(); [[ $2 == default ]] || view=(--view "$2")
    kb_show "$1" routes "${view[@]}" --json | "$PYTHON" -c '
import json, sys
for r in json.load(sys.stdin):
    if r.get("peer") not in ("self", None) and r.get("best", True):
        print(sys.argv[1], r.get("prefix"), "%s%%%s" % (r.get("next_hop"), r.get("interface")), r.get("med"))
' "$1"
}
# the kittbgpd nodes of the ring (KB_NODES) and the nodes a table spans (SPAN: without the BIRD
# node for a view)
KB_NODES="1 2 3 4 5" SPAN="1 2 3 4 5"
# the ring's views: fast (latency, the static link costs) and hops, each with its fwmark rule
VIEWS="fast:1:101:latency:0x1 hops:2:102:hops:0x2:10"
ring_snapshot() { local i; for i in $KB_NODES; do table_snapshot "$i" "$1"; done | LC_ALL=C sort; }
expected() {  # COSTS [I-J: that link left out]
    lab_expected_paths "$1" "$SPAN" "${2:-}" | awk -v kb=" $KB_NODES " 'index(kb, " " $1 " ") { print $1, $2, $3, $4 }'
}
check_table() {  # TABLE COSTS WHAT
    local exp got table=$1
    exp=$(expected "$2")
    # (wait_for evaluates its command in its own frame: $table, not $1)
    wait_for '[[ $(ring_snapshot "$table") == "$exp" ]]' 20 0.3 || true
    got=$(ring_snapshot "$table")
    if [[ $got == "$exp" ]]; then pass "$3: $(wc -l <<< "$got") best routes equal Dijkstra's"
    else
        fail "$3: best routes equal Dijkstra's; differences (< expected, > got):"
        diff <(echo "$exp") <(echo "$got") | grep '^[<>]' | head -n 12 || true
    fi
}

# kernel_snapshot TABLE: "I PREFIX NEXTHOP%IF proto P" per loopback route of the kittbgpd nodes
# in kernel table TABLE ("main", "101", ...)
kernel_snapshot() {
    lab_kernel_routes $KB_NODES | awk -v t="$1" '$NF == t { print $1, $2, $3, $4, $5 }' | LC_ALL=C sort
}
check_kernel() {  # TABLE COSTS WHAT [I-J]: the table holds exactly Dijkstra's next hops, proto 200
    local exp got ktable=$1
    exp=$(expected "$2" "${4:-}" | awk '{ print $1, $2, $3, "proto", "200" }' | LC_ALL=C sort)
    wait_for '[[ $(kernel_snapshot "$ktable") == "$exp" ]]' "${KERNEL_WAIT:-20}" 0.3 || true
    got=$(kernel_snapshot "$ktable")
    if [[ $got == "$exp" ]]; then pass "$3: $(wc -l <<< "$got") kernel routes, Dijkstra's next hops, proto 200 (${WAITED_MS} ms)"
    else
        fail "$3: kernel routes equal Dijkstra's; differences (< expected, > got):"
        diff <(echo "$exp") <(echo "$got") | grep '^[<>]' | head -n 12 || true
    fi
}
# rules_in I: node i's IPv4 and IPv6 policy rules of the views, "FAMILY fwmark M lookup T" per rule
rules_in() {
    local f
    for f in -4 -6; do
        ip -n "$(lab_ns "$1")" "$f" rule show | grep -o 'fwmark 0x[0-9a-f]* lookup [0-9a-z]*' | sed "s/^/$f /"
    done | LC_ALL=C sort | tr '\n' ' '
}
RULES_WANT="-4 fwmark 0x1 lookup 101 -4 fwmark 0x2 lookup 102 -6 fwmark 0x1 lookup 101 -6 fwmark 0x2 lookup 102 "
check_rules() {
    local i bad=""
    for i in $KB_NODES; do [[ $(rules_in "$i") == "$RULES_WANT" ]] || bad+=" $i"; done
    check "p  ip rule / ip -6 rule on nodes $KB_NODES: fwmark 0x1 -> 101, 0x2 -> 102${bad:+ (wrong on$bad)}" test -z "$bad"
}
# check_hop WHAT I SRC DST MARK WANT: pings from node i take tunnel WANT first (lab_ping_first_hop)
check_hop() {
    local got; got=$(lab_ping_first_hop "$2" "$3" "$4" "$5")
    check "$1: node $2 -> $4${5:+ (mark $5)} first hop $6 (got: $got)" test "$got" == "$6"
}

# check_view_metrics: check o (see the header)
check_view_metrics() {
    local m; m=$(kb_metrics 1) || return 1
    grep -Eq '^kittbgpd_view_routes\{view="hops",family="ipv4"\} 5(\.0)?$' <<< "$m" &&
        grep -Eq '^kittbgpd_view_routes\{view="hops",family="ipv6"\} 5(\.0)?$' <<< "$m" &&
        grep -Eq '^kittbgpd_view_link_cost\{view="hops",neighbor="wg5"\} 1(\.0)?$' <<< "$m" &&
        grep -Eq '^kittbgpd_view_link_cost\{view="fast",neighbor="wg5"\} 100(\.0)?$' <<< "$m" &&
        kb_metrics_valid 1
}
# check_dscp_path: check e (see the header)
check_dscp_path() {
    local a0 b0 c0 ok=1 a b c
    a0=$(lab_tx_packets 2 1) b0=$(lab_tx_packets 1 5) c0=$(lab_tx_packets 1 2)
    ip netns exec "$(lab_ns 2)" ping -6 -q -c 20 -i 0.01 -W 1 -Q 40 -I fd00:255::2 fd00:255::5 >/dev/null 2>&1 || ok=0
    a=$(($(lab_tx_packets 2 1) - a0)) b=$(($(lab_tx_packets 1 5) - b0)) c=$(($(lab_tx_packets 1 2) - c0))
    check "e  DSCP 10 node 2 -> 5 stays in view hops hop by hop: 2-1-5 (replies: $ok, TX node 2 wg1 +$a, node 1 wg5 +$b, node 1 wg2 +$c)" \
        test "$ok" = 1 -a "$a" -ge 20 -a "$b" -ge 20 -a "$c" -lt 20
}

ring_up() {
    local i j
    for i in 1 2 3 4 5; do
        for j in $(lab_peers "$i"); do kb_established "$i" "wg$j" || return 1; done
    done
}

scenario_ring() {
    echo "== scenario ring: five kittbgpd nodes, views fast (latency) and hops"
    KB_LAB_STATE=$STATE_BASE/ring
    local costs="1-2:10 2-1:10 2-3:10 3-2:10 3-4:10 4-3:10 4-5:10 5-4:10 5-1:100 1-5:100"
    local hops="1-2:1 2-1:1 2-3:1 3-2:1 3-4:1 4-3:1 4-5:1 5-4:1 5-1:1 1-5:1"
    local i
    lab_init
    lab_up 5 ring
    lab_costs "$costs"
    for i in 1 2 3 4 5; do kb_conf "$i" --kernel --metrics; kb_views "$i" $VIEWS; done
    for i in 1 2 3 4 5; do kb_start "$i" "$BIN"; done
    if wait_for ring_up 30 0.2; then
        pass "r  all 10 session ends Established (${WAITED_MS} ms)"
    else fail "r  all 10 session ends Established within 30 s"; fi
    check_table default "$costs" "r  default table"
    check_table fast "$costs" "r  view fast (latency)"
    check_table hops "$hops" "r  view hops"
    check "r  node 1 to node 5: default over 2-3-4, hops direct" \
        test "$(table_snapshot 1 default | awk '$2 == "10.255.0.5/32" { print $3 }') $(table_snapshot 1 hops | awk '$2 == "10.255.0.5/32" { print $3 }')" \
        == "fe80::2:1%wg2 fe80::5:1%wg5"
    check_kernel main "$costs" "k  default view, table main"
    check_kernel 101 "$costs" "k  view fast, table 101"
    check_kernel 102 "$hops" "k  view hops, table 102"
    check_rules
    check "o  node 1 metrics: view_routes of hops = 5 IPv4 and 5 IPv6 (with its own), view_link_cost per view (hops 1, fast 100 on wg5), promtool-valid" check_view_metrics
    check_hop "p  no mark: main" 1 10.255.0.1 10.255.0.5 "" wg2
    check_hop "p  fast" 1 10.255.0.1 10.255.0.5 1 wg2
    check_hop "p  hops" 1 10.255.0.1 10.255.0.5 2 wg5
    check_hop "p  hops (IPv6)" 1 fd00:255::1 fd00:255::5 2 wg5
    check_hop "p  fast (IPv6)" 1 fd00:255::1 fd00:255::5 1 wg2
    check_dscp_path
    costs=${costs/5-1:100/5-1:15}; costs=${costs/1-5:100/1-5:15}
    lab_cost 1 5 15; lab_cost 5 1 15
    for i in 1 5; do
        kb_conf "$i" --kernel; kb_views "$i" $VIEWS
        kb_ctl "$i" reload >/dev/null
    done
    check_table default "$costs" "s  after 5-1 -> 15: default table"
    check_table fast "$costs" "s  after 5-1 -> 15: view fast (latency)"
    check_table hops "$hops" "s  after 5-1 -> 15: view hops (unchanged)"
    check_kernel main "$costs" "c  after 5-1 -> 15: table main"
    check_kernel 101 "$costs" "c  after 5-1 -> 15: table 101 (fast)"
    check_kernel 102 "$hops" "c  after 5-1 -> 15: table 102 (hops) unchanged"
    check_hop "c  fast" 1 10.255.0.1 10.255.0.5 1 wg5
    check_hop "c  hops" 1 10.255.0.1 10.255.0.5 2 wg5
    check_hop "c  fast" 2 10.255.0.2 10.255.0.4 1 wg3
    # the link 1-5 dies (both ends down): both views (and main) go the long way round
    lab_link_down 1 5; lab_link_down 5 1
    check_kernel main "$costs" "d  link 1-5 down: table main" 1-5
    check_kernel 101 "$costs" "d  link 1-5 down: table 101 (fast)" 1-5
    check_kernel 102 "$hops" "d  link 1-5 down: table 102 (hops)" 1-5
    check_hop "d  fast" 1 10.255.0.1 10.255.0.5 1 wg2
    check_hop "d  hops" 1 10.255.0.1 10.255.0.5 2 wg2
    check_hop "d  hops" 5 10.255.0.5 10.255.0.1 2 wg4
    lab_down >/dev/null
}

# Scenario mixed: the same ring with BIRD on node 3. The default table spans every node as
# before; the views run only over kittbgpd nodes: they are Dijkstra's paths over the line
# 2 - 1 - 5 - 4, and no view holds a route to node 3's loopbacks.
#   m  sessions up; default table (kittbgpd nodes) equals Dijkstra over the ring; each view
#      equals Dijkstra over the kittbgpd nodes only; the same in the kernel tables (main, 101,
#      102); the rules in place; unmarked pings between all five nodes succeed; node 1 to node 4
#      leaves through BIRD's side unmarked, around BIRD with -m 1 / -m 2
scenario_mixed() {
    echo "== scenario mixed: the ring with BIRD on node 3"
    KB_LAB_STATE=$STATE_BASE/mixed
    local costs="1-2:10 2-1:10 2-3:10 3-2:10 3-4:10 4-3:10 4-5:10 5-4:10 5-1:100 1-5:100"
    local kbcosts="1-2:10 2-1:10 4-5:10 5-4:10 5-1:100 1-5:100"
    local kbhops="1-2:1 2-1:1 4-5:1 5-4:1 5-1:1 1-5:1"
    local i
    lab_init
    lab_up 5 ring
    lab_costs "$costs"
    lab_bird_conf 3
    for i in 1 2 4 5; do kb_conf "$i" --kernel; kb_views "$i" $VIEWS; done
    lab_bird_start 3
    for i in 1 2 4 5; do kb_start "$i" "$BIN"; done
    if wait_for mixed_up 30 0.2; then pass "m  all 10 session ends Established (${WAITED_MS} ms)"
    else fail "m  all 10 session ends Established within 30 s"; fi
    KB_NODES="1 2 4 5" SPAN="1 2 3 4 5"
    check_table default "$costs" "m  default table (kittbgpd nodes, BIRD on 3)"
    SPAN="1 2 4 5"
    check_table fast "$kbcosts" "m  view fast, over kittbgpd nodes only"
    check_table hops "$kbhops" "m  view hops, over kittbgpd nodes only"
    check "m  node 2 to node 4: default over BIRD (3), views around it (1-5)" \
        test "$(table_snapshot 2 default | awk '$2 == "10.255.0.4/32" { print $3 }') $(table_snapshot 2 fast | awk '$2 == "10.255.0.4/32" { print $3, $4 }')" \
        == "fe80::3:2%wg3 fe80::1:2%wg1 120"
    check_kernel 101 "$kbcosts" "m  table 101 (fast), kittbgpd nodes only"
    check_kernel 102 "$kbhops" "m  table 102 (hops), kittbgpd nodes only"
    SPAN="1 2 3 4 5"
    check_kernel main "$costs" "m  table main (kittbgpd nodes), through BIRD"
    check_rules
    local lost; lost=$(lab_ping_matrix 1 2 3 4 5 -- 1 2 3 4 5 | awk '$3 != "ok" { printf " %s->%s", $1, $2 }')
    check "m  pings without mark between all five nodes (IPv4 and IPv6)${lost:+; lost:$lost}" test -z "$lost"
    # node 1 to node 4: main over 2 and BIRD (30), the views over 5 (the next node forwards by
    # its main table: 5-4 direct; from node 2 the views' path would come back through node 2,
    # whose own source address the kernel drops as martian)
    check_hop "m  no mark: through BIRD" 1 10.255.0.1 10.255.0.4 "" wg2
    check_hop "m  fast: around BIRD" 1 10.255.0.1 10.255.0.4 1 wg5
    check_hop "m  hops: around BIRD (IPv6)" 1 fd00:255::1 fd00:255::4 2 wg5
    KB_NODES="1 2 3 4 5" SPAN="1 2 3 4 5"
    lab_down >/dev/null
}
mixed_up() {
    bird_established 3 wg2 && bird_established 3 wg4 || return 1
    local i j
    for i in 1 2 4 5; do
        for j in $(lab_peers "$i"); do kb_established "$i" "wg$j" || return 1; done
    done
}

# Scenario latency: the ring over delay relays (lab_up --relay), `cost = "auto"` on every link
# (probes every 0.2 s), [kernel] and the rules; one-way delays 5 ms, 30 ms on 5-1 (RTT ~ 2 x
# delay + 1 ms). Expected paths: Dijkstra over those RTTs (next hops only: the measured MEDs vary).
#   l  tables main and 101 (fast) equal Dijkstra over the measured latency, 102 (hops) over hops;
#      node 1's pings to node 5 leave by wg2 with -m 1, wg5 with -m 2
#   l  5-1 delay 30 -> 3 ms: main and 101 move (node 1 to node 5 direct), 102 does not
#   l  tunnel 1-5 blackholed (interfaces up, lab_blackhole): all three tables go around it
scenario_latency() {
    echo "== scenario latency: the ring over delay relays, measured costs"
    KB_LAB_STATE=$STATE_BASE/latency
    local rtt="1-2:11 2-1:11 2-3:11 3-2:11 3-4:11 4-3:11 4-5:11 5-4:11 5-1:61 1-5:61"
    local hops="1-2:1 2-1:1 2-3:1 3-2:1 3-4:1 4-3:1 4-5:1 5-4:1 5-1:1 1-5:1"
    local i t0
    lab_init
    lab_up 5 ring --relay
    for i in 1 2 3 4; do lab_delay "$i" $((i + 1)) 5; done
    lab_delay 5 1 30
    lab_costs "${hops//:1/:auto}"
    for i in 1 2 3 4 5; do kb_conf "$i" --kernel --cost-set interval=0.2; kb_views "$i" $VIEWS; done
    t0=$(lab_ms)
    for i in 1 2 3 4 5; do kb_start "$i" "$BIN"; done
    if wait_for ring_up 30 0.2; then pass "l  all 10 session ends Established (${WAITED_MS} ms)"
    else fail "l  all 10 session ends Established within 30 s"; fi
    KERNEL_WAIT=30
    check_kernel main "$rtt" "l  measured latency: table main"
    check_kernel 101 "$rtt" "l  measured latency: table 101 (fast)"
    check_kernel 102 "$hops" "l  table 102 (hops)"
    echo "     kernel tables as expected $(( $(lab_ms) - t0 )) ms after the daemons' start"
    check_hop "l  fast" 1 10.255.0.1 10.255.0.5 1 wg2
    check_hop "l  hops" 1 10.255.0.1 10.255.0.5 2 wg5
    lab_delay 5 1 3
    rtt=${rtt//:61/:7}
    check_kernel main "$rtt" "l  5-1 delay 30 -> 3 ms: table main moved"
    check_kernel 101 "$rtt" "l  5-1 delay 30 -> 3 ms: table 101 (fast) moved"
    check_kernel 102 "$hops" "l  5-1 delay 30 -> 3 ms: table 102 (hops) unchanged"
    check_hop "l  fast" 1 10.255.0.1 10.255.0.5 1 wg5
    check_hop "l  fast" 2 10.255.0.2 10.255.0.5 1 wg1
    # the tunnel 1-5 dead but up (relay: 100 % loss): the probes end the sessions, both views move
    lab_blackhole 1 5
    check_kernel main "$rtt" "l  tunnel 1-5 blackholed: table main" 1-5
    check_kernel 101 "$rtt" "l  tunnel 1-5 blackholed: table 101 (fast)" 1-5
    check_kernel 102 "$hops" "l  tunnel 1-5 blackholed: table 102 (hops)" 1-5
    check_hop "l  hops" 1 10.255.0.1 10.255.0.5 2 wg2
    KERNEL_WAIT=20
    lab_down >/dev/null
}

# Scenario gr: a line 1 - 2 - 3 of kittbgpd nodes with graceful restart, [kernel] (on_stop keep)
# and the views; node 2 stops and starts again.
#   g  node 2's tables main, 101 and 102 keep its routes while it is down; after its start the
#      grace ends in each view's table on that view's End-of-RIB (log), well before the restart
#      time (120 s); then every table equals Dijkstra again
scenario_gr() {
    echo "== scenario gr: a line of three, node 2 restarts gracefully"
    KB_LAB_STATE=$STATE_BASE/gr
    local costs="1-2:10 2-1:10 2-3:10 3-2:10" hops="1-2:1 2-1:1 2-3:1 3-2:1" i log from n
    lab_init
    lab_up 3 line
    lab_costs "$costs"
    for i in 1 2 3; do kb_conf "$i" --kernel --gr; kb_views "$i" $VIEWS; done
    for i in 1 2 3; do kb_start "$i" "$BIN"; done
    line_up() { kb_established 1 wg2 && kb_established 2 wg1 && kb_established 2 wg3 && kb_established 3 wg2; }
    wait_for line_up 30 0.2 || true
    KB_NODES="1 2 3" SPAN="1 2 3"
    check_kernel 101 "$costs" "g  before: table 101"
    kb_stop 2
    n=$(lab_kernel_routes 2 | awk '$NF == "main" || $NF == 101 || $NF == 102' | wc -l)
    check "g  node 2 down: its tables main, 101, 102 keep 12 routes (got $n)" test "$n" -eq 12
    log=$(lab_dir 2)/kittbgpd.log; from=$(($(wc -l < "$log") + 1))
    kb_start 2 "$BIN"
    for v in fast hops; do
        if wait_for "tail -n +$from '$log' | grep -q 'graceful restart of this node over in the view view=$v'" 30 0.2; then
            pass "g  node 2 restarted: grace over in view $v (${WAITED_MS} ms after kb_start returned)"
        else fail "g  node 2 restarted: grace over in view $v within 30 s"; fi
    done
    check_kernel main "$costs" "g  after: table main"
    check_kernel 101 "$costs" "g  after: table 101 (fast)"
    check_kernel 102 "$hops" "g  after: table 102 (hops)"
    KB_NODES="1 2 3 4 5" SPAN="1 2 3 4 5"
    lab_down >/dev/null
}

scenario_pair
scenario_ring
scenario_mixed
scenario_latency
scenario_gr
