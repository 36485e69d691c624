#!/usr/bin/env bash
# demo.sh -- kittbgpd and BIRD 2 on a WireGuard fabric in network namespaces.
# Default: the step-3 fabric of five nodes, a ring (links 1-2, 2-3, 3-4, 4-5, 5-1) plus the chord
# 1-3 (the lab of test_fabric5.sh, costs KB_FABRIC5_COSTS in lib.sh), kittbgpd on nodes 1, 3 and 5
# and BIRD 2 on nodes 2 and 4 (the migration path: nodes move over one at a time).  Every node
# puts its best routes in the kernel (kittbgpd: proto 200; BIRD: its kernel protocol, proto bird);
# the demo waits until every node has a kernel route to all 8 other loopbacks, shows `ip route` on
# kittbgpd node 1, pings every loopback from it and prints how to look at the lab.
# With --pair: BIRD (node 1) and kittbgpd (node 2) over one tunnel (the step-1 demo).
# With --ring4: the step-2 ring of four (links 1-2, 2-3, 3-4, 4-1), BIRD on nodes 1 and 3,
# kittbgpd on nodes 2 and 4, link costs KB_RING4_COSTS (lib.sh; the lab of test_ring4.sh).
#
# Usage: interop/demo.sh [--pair | --ring4] [--bin PATH] [--no-build] [--hold SECONDS | --no-wait]
#                        [--peer-bird] [--bird-nodes "2 4"]   (root)
#   --pair        the two-node pair instead of the fabric
#   --ring4       the four-node ring instead of the fabric
#   --bin PATH    kittbgpd binary (default: target/release/kittbgpd, built with cargo if absent)
#   --no-build    do not run cargo build
#   --hold S      keep the lab up S seconds instead of waiting for Enter; --no-wait = --hold 0
#   --peer-bird   BIRD everywhere: on node 2 too (--pair), on all nodes (--ring4, fabric)
#   --bird-nodes "I ..."  fabric: the nodes that run BIRD (default "2 4"; "" = kittbgpd everywhere)
#   --lab-tunnels fabric: tunnels of kittbgpd nodes built with wg/ip too (default: each kittbgpd
#                 builds its own from [wireguard] in its config, step 6)
# While it waits, the lab is usable from another shell; the demo prints the commands.
# Installs missing packages with apt (bird2 wireguard-go wireguard-tools iproute2 iputils-ping).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=interop/lib.sh
source "$HERE/lib.sh"

BIN="" BUILD=1 HOLD="" PEER=kittbgpd RING4=0 PAIR=0 BIRD_NODES="2 4" LAB_TUNNELS=0
while (($#)); do
    case $1 in
        --bin) BIN=$2; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --hold) HOLD=$2; shift 2 ;;
        --no-wait) HOLD=0; shift ;;
        --peer-bird) PEER=bird; shift ;;
        --ring4) RING4=1; shift ;;
        --pair) PAIR=1; shift ;;
        --bird-nodes) BIRD_NODES=$2; shift 2 ;;
        --lab-tunnels) LAB_TUNNELS=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "demo.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
((PAIR + RING4 <= 1)) || { echo "demo.sh: --pair and --ring4 exclude each other" >&2; exit 2; }
FABRIC=$((1 - PAIR - RING4))
if ((FABRIC)); then
    [[ $PEER == kittbgpd ]] || BIRD_NODES="1 2 3 4 5"
    for b in $BIRD_NODES; do [[ $b =~ ^[1-5]$ ]] || { echo "demo.sh: --bird-nodes: '$b' is not a node 1..5" >&2; exit 2; }; done
    n_kb=0; for i in 1 2 3 4 5; do [[ " $BIRD_NODES " == *" $i "* ]] || n_kb=$((n_kb + 1)); done
    ((n_kb > 0)) || PEER=bird   # BIRD everywhere: no kittbgpd binary needed
fi
[[ $(id -u) == 0 ]] || { echo "demo.sh: must run as root (network namespaces)" >&2; exit 1; }
lab_ensure_packages

if [[ $PEER == kittbgpd ]]; then
    if [[ -z $BIN ]]; then
        BIN=$ROOT/target/release/kittbgpd
        if [[ ! -x $BIN && $BUILD == 1 ]]; then
            echo "building kittbgpd (cargo build --release)"
            (cd "$ROOT" && cargo build --release)
        fi
    fi
    [[ -x $BIN ]] || { echo "demo.sh: no kittbgpd binary at $BIN" >&2; exit 1; }
fi

hdr() { printf '\n=== %s\n' "$*"; }

# hold_lab: keep the lab up (Enter, or --hold S); lab_down then runs from lab_init's EXIT trap
hold_lab() {
    if [[ -z $HOLD ]]; then
        read -r -p "press Enter to tear down " _ || true
    elif ((HOLD > 0)); then
        echo "holding for $HOLD s"; sleep "$HOLD"
    fi
}

# ---- default: the five-node fabric, BIRD on BIRD_NODES, kittbgpd on the others
if ((FABRIC)); then
    declare -A KIND
    for i in 1 2 3 4 5; do
        if [[ " $BIRD_NODES " == *" $i "* ]]; then KIND[$i]=bird; else KIND[$i]=kittbgpd; fi
    done
    SHOW=""   # the kittbgpd node whose kernel table is shown (the first one)
    for i in 1 2 3 4 5; do [[ -n $SHOW || ${KIND[$i]} != kittbgpd ]] || SHOW=$i; done
    lab_init
    links=(); for l in $KB_FABRIC5_LINKS; do links+=(--link "$l"); done
    # step 6: the kittbgpd nodes build their own tunnels from their config; BIRD nodes keep
    # wg-built ones (--lab-tunnels: lib.sh builds them all)
    kbt=""; for i in 1 2 3 4 5; do [[ ${KIND[$i]} == bird ]] || kbt+="$i,"; done
    if ((LAB_TUNNELS)); then kbt=""; fi
    lab_up 5 ring "${links[@]}" --kb-tunnels "$kbt"
    lab_costs "$KB_FABRIC5_COSTS"
    t_start=$(( ${EPOCHREALTIME/./} / 1000 ))
    for i in 1 2 3 4 5; do
        if [[ ${KIND[$i]} == bird ]]; then lab_bird_conf "$i"; lab_bird_start "$i"
        else kb_conf "$i" --kernel; kb_start "$i" "$BIN"; fi
    done
    echo
    printf 'nodes:'; for i in 1 2 3 4 5; do printf '  %s %s' "$i" "${KIND[$i]}"; done; echo
    echo "links: ring 1-2-3-4-5-1 plus $KB_FABRIC5_LINKS"
    echo "costs (node I adds C to the MED of routes learned from node J, as I-J:C): $KB_FABRIC5_COSTS"
    # shellcheck disable=SC2317  # called through wait_for (eval)
    fabric_up() {
        local i j
        for i in 1 2 3 4 5; do
            for j in $(lab_peers "$i"); do
                if [[ ${KIND[$i]} == bird ]]; then bird_established "$i" "wg$j" || return 1
                else kb_established "$i" "wg$j" || return 1; fi
            done
        done
    }
    # converged: every node has exactly one kernel route to each of the 8 other loopbacks
    # shellcheck disable=SC2317
    fabric_converged() {
        [[ $(lab_kernel_routes 1 2 3 4 5 | awk '{ print $1, $2 }' | sort -u | wc -l) == 40 \
           && $(lab_kernel_routes 1 2 3 4 5 | wc -l) == 40 ]]
    }
    if wait_for fabric_up 30; then echo "all 12 session ends Established after ${WAITED_MS} ms"
    else echo "not every session Established after 30 s; logs: $KB_LAB_STATE/node*/*.log"; fi
    if wait_for fabric_converged 30; then
        echo "every node has a kernel route to all 8 other loopbacks $(( ${EPOCHREALTIME/./} / 1000 - t_start )) ms after the daemons started"
    else
        echo "not every node has kernel routes to all other loopbacks after 30 s"
    fi
    # kernel next hops against the paths the costs imply (Dijkstra, lib.sh)
    lab_expected_paths "$KB_FABRIC5_COSTS" "1 2 3 4 5" | awk '{ print $1, $2, $3 }' > "$KB_LAB_STATE/expected"
    lab_kernel_routes 1 2 3 4 5 | awk '{ print $1, $2, $3 }' > "$KB_LAB_STATE/kernel"
    if cmp -s "$KB_LAB_STATE/expected" "$KB_LAB_STATE/kernel"; then
        echo "every kernel next hop is the one of the lowest-cost path (40 routes, BIRD and kittbgpd nodes alike)"
    else
        echo "kernel next hops that differ from the lowest-cost path (< expected, > kernel):"
        diff "$KB_LAB_STATE/expected" "$KB_LAB_STATE/kernel" | grep '^[<>]' || true
    fi

    if [[ -n $SHOW ]]; then
        hdr "node $SHOW (kittbgpd): ip route; ip -6 route   (proto 200 = kittbgpd)"
        ip -n "$(lab_ns "$SHOW")" route
        ip -n "$(lab_ns "$SHOW")" -6 route
        hdr "node $SHOW (kittbgpd): kittbgpd show neighbors"; kb_show "$SHOW" neighbors || true
        hdr "node $SHOW (kittbgpd): kittbgpd show routes --best"; kb_show "$SHOW" routes --best || true
        if lab_kb_tunnels "$SHOW"; then
            hdr "node $SHOW (kittbgpd): kittbgpd show tunnels   (built from its config)"; kb_show "$SHOW" tunnels || true
        fi
    fi
    for i in 1 2 3 4 5; do
        [[ ${KIND[$i]} == bird ]] || continue
        hdr "node $i (BIRD): ip route   (proto bird = BIRD's kernel protocol)"
        ip -n "$(lab_ns "$i")" route | grep -E '^10\.255\.' || true
        break
    done
    P=${SHOW:-1}
    hdr "pings from node $P (${KIND[$P]}) to every loopback, from its own loopback"
    lab_ping_matrix "$P" -- 1 2 3 4 5 | while read -r _ dst r; do
        printf '  %-14s %s\n' "$dst" "$([[ $r == ok ]] && echo ok || echo LOST)"
    done

    hdr "how to look at it (from this host, while the lab is up)"
    for i in 1 2 3 4 5; do
        if [[ ${KIND[$i]} == bird ]]; then
            echo "node $i BIRD:      birdc -s $(lab_dir "$i")/bird.ctl show route all        (also: show protocols all wg<j>)"
        else
            echo "node $i kittbgpd:  $(kb_bin "$i") show neighbors|routes|tunnels|explain PREFIX -s $(kb_sock "$i")   (config: $(lab_dir "$i")/kittbgpd.toml)"
        fi
    done
    [[ -z $SHOW ]] || echo "  e.g.            $(kb_bin "$SHOW") show explain 10.255.0.4/32 -s $(kb_sock "$SHOW")"
    echo "kernel routes:    ip -n $(lab_ns 1) route; ip -n $(lab_ns 1) -6 route      (likewise $(lab_ns 2)..$(lab_ns 5))"
    echo "ping:             ip netns exec $(lab_ns 1) ping -I 10.255.0.1 10.255.0.4"
    echo "tunnels:          nsenter -t \$(cat $(lab_dir 1)/holder.pid) -m -n wg show        (node 1; likewise node2..5)"
    echo "a shell in node:  ip netns exec $(lab_ns 1) bash      (namespaces $(lab_ns 1)..$(lab_ns 5), hub $(lab_hub))"
    echo "a link down:      ip -n $(lab_ns 1) link set wg3 down   (up again: also ip -n $(lab_ns 1) addr add fe80::1:3/64 dev wg3 nodad)"
    echo "logs:             $KB_LAB_STATE/node<i>/{bird.log,kittbgpd.log}"
    echo "test it:          interop/test_fabric5.sh [BIN]   (kittbgpd on all five: kernel routes, pings, link down, restart)"
    echo
    echo "lab prefix $KB_LAB_PREFIX, state in $KB_LAB_STATE"
    hold_lab
    exit 0
fi

# ---- --ring4: BIRD on nodes 1 and 3, kittbgpd on nodes 2 and 4 (all BIRD with --peer-bird)
if ((RING4)); then
    declare -A KIND=([1]=bird [2]=kittbgpd [3]=bird [4]=kittbgpd)
    [[ $PEER == kittbgpd ]] || KIND=([1]=bird [2]=bird [3]=bird [4]=bird)
    lab_init
    lab_up 4 ring
    lab_costs "$KB_RING4_COSTS"
    for i in 1 2 3 4; do
        if [[ ${KIND[$i]} == bird ]]; then lab_bird_conf "$i"; lab_bird_start "$i"; fi
    done
    for i in 1 2 3 4; do
        if [[ ${KIND[$i]} == kittbgpd ]]; then kb_conf "$i"; kb_start "$i" "$BIN"; fi
    done
    # shellcheck disable=SC2317  # called through wait_for (eval)
    ring_up() {
        local i j
        for i in 1 2 3 4; do
            for j in $(lab_peers "$i"); do
                if [[ ${KIND[$i]} == bird ]]; then bird_established "$i" "wg$j" || return 1
                else kb_established "$i" "wg$j" || return 1; fi
            done
        done
    }
    if wait_for ring_up 30; then echo "all 8 session ends Established after ${WAITED_MS} ms"
    else echo "not every session Established after 30 s; logs: $KB_LAB_STATE/node*/*.log"; fi
    # give the routes a moment: until BIRD's node 3 has node 1's loopbacks (needs reflection by
    # node 2 or 4), at most 5 s
    wait_for "birdc_n 3 show route | grep -q '^fd00:255::1/128'" 5 || true

    echo
    echo "costs (node I adds C to the MED of routes learned from node J, as I-J:C): $KB_RING4_COSTS"
    for i in 1 2 3 4; do
        if [[ ${KIND[$i]} == bird ]]; then
            hdr "node $i (BIRD): show protocols"; birdc_n "$i" show protocols
            hdr "node $i (BIRD): show route (the best route of each prefix is marked *)"; birdc_n "$i" show route
        else
            hdr "node $i (kittbgpd): show neighbors"; kb_show "$i" neighbors || true
            hdr "node $i (kittbgpd): show routes"; kb_show "$i" routes || true
        fi
    done

    hdr "how to look at it (from this host, while the lab is up)"
    for i in 1 2 3 4; do
        if [[ ${KIND[$i]} == bird ]]; then
            echo "node $i BIRD:      birdc -s $(lab_dir "$i")/bird.ctl show route all        (also: show protocols all wg<j>)"
        else
            echo "node $i kittbgpd:  $(kb_bin "$i") show neighbors|routes [--json] -s $(kb_sock "$i")"
        fi
    done
    echo "tunnels:          nsenter -t \$(cat $(lab_dir 1)/holder.pid) -m -n wg show        (node 1; likewise node2..4)"
    echo "a shell in node:  ip netns exec $(lab_ns 1) bash      (namespaces $(lab_ns 1)..$(lab_ns 4), hub $(lab_hub))"
    echo "logs:             $KB_LAB_STATE/node<i>/{bird.log,kittbgpd.log}"
    echo "test it:          interop/test_ring4.sh [BIN]   (all-BIRD reference ring, then this mixed ring, compared)"
    echo
    echo "lab prefix $KB_LAB_PREFIX, state in $KB_LAB_STATE"
    hold_lab
    exit 0
fi

# ---- --pair: BIRD on node 1, kittbgpd (or BIRD, --peer-bird) on node 2
lab_init
lab_up 2 line
lab_bird_conf 1
lab_bird_start 1
if [[ $PEER == kittbgpd ]]; then kb_conf 2; kb_start 2 "$BIN"; else lab_bird_conf 2; lab_bird_start 2; fi

peer_up() { if [[ $PEER == kittbgpd ]]; then kb_established 2 wg1; else bird_established 2 wg1; fi; }
if wait_for "bird_established 1 wg2 && peer_up" 30; then
    echo "session wg2 (BIRD) <-> wg1 ($PEER) Established after ${WAITED_MS} ms"
else
    echo "session not Established after 30 s; logs: $(lab_dir 1)/bird.log $(lab_dir 2)/*.log"
fi
# let the routes arrive (both loopbacks of node 2 in BIRD)
wait_for "birdc_n 1 show route protocol wg2 | grep -q 'fd00:255::2/128'" 5 || true

hdr "node 1 (BIRD): show protocols"
birdc_n 1 show protocols
hdr "node 1 (BIRD): show route all"
birdc_n 1 show route all
if [[ $PEER == kittbgpd ]]; then
    hdr "node 2 (kittbgpd): show neighbors"
    kb_show 2 neighbors || true
    hdr "node 2 (kittbgpd): show routes"
    kb_show 2 routes || true
else
    hdr "node 2 (BIRD): show route all"
    birdc_n 2 show route all
fi

hdr "pings between loopbacks"
# a ping needs a kernel route in both directions (BIRD: proto bird, kittbgpd: proto 200)
have_route() { ip -n "$(lab_ns "$1")" route get "$2" 2>/dev/null | grep -q 'dev wg'; }
wait_for "have_route 1 fd00:255::2 && have_route 2 fd00:255::1 && have_route 1 10.255.0.2 && have_route 2 10.255.0.1" 5 || true
for pair in "1 2 10.255.0.2 10.255.0.1" "1 2 fd00:255::2 fd00:255::1" "2 1 10.255.0.1 10.255.0.2" "2 1 fd00:255::1 fd00:255::2"; do
    read -r a b dst back <<< "$pair"
    if have_route "$a" "$dst" && have_route "$b" "$back"; then
        if ip netns exec "$(lab_ns "$a")" ping -c1 -W2 -q "$dst" >/dev/null; then echo "node $a -> $dst: ok"
        else echo "node $a -> $dst: FAILED"; fi
    else
        echo "node $a -> $dst: skipped (no kernel route on both sides: ip -n $(lab_ns "$a") route; ip -n $(lab_ns "$b") route)"
    fi
done

echo
echo "lab prefix $KB_LAB_PREFIX, state in $KB_LAB_STATE"
hold_lab
# lab_down runs from the EXIT trap set by lab_init
