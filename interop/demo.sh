#!/usr/bin/env bash
# demo.sh -- BIRD 2 (node 1) and kittbgpd (node 2) peering over a wireguard-go tunnel in
# network namespaces; shows both sides' sessions and routes, then tears everything down.
# With --ring4: the step-2 ring of four (links 1-2, 2-3, 3-4, 4-1), BIRD on nodes 1 and 3,
# kittbgpd on nodes 2 and 4, link costs KB_RING4_COSTS (lib.sh; the lab of test_ring4.sh).
#
# Usage: interop/demo.sh [--ring4] [--bin PATH] [--no-build] [--hold SECONDS | --no-wait] [--peer-bird]   (root)
#   --ring4       the four-node ring instead of the pair
#   --bin PATH    kittbgpd binary (default: target/release/kittbgpd, built with cargo if absent)
#   --no-build    do not run cargo build
#   --hold S      keep the lab up S seconds instead of waiting for Enter; --no-wait = --hold 0
#   --peer-bird   run BIRD on node 2 too (with --ring4: on all four nodes; no kittbgpd needed)
# While it waits, the lab is usable from another shell, e.g.
#   birdc -s /run/kblab/<prefix>/node1/bird.ctl show route all
#   nsenter -t $(cat /run/kblab/<prefix>/node2/holder.pid) -m -n wg show
# Installs missing packages with apt (bird2 wireguard-go wireguard-tools iproute2 iputils-ping).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=interop/lib.sh
source "$HERE/lib.sh"

BIN="" BUILD=1 HOLD="" PEER=kittbgpd RING4=0
while (($#)); do
    case $1 in
        --bin) BIN=$2; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --hold) HOLD=$2; shift 2 ;;
        --no-wait) HOLD=0; shift ;;
        --peer-bird) PEER=bird; shift ;;
        --ring4) RING4=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "demo.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
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
# a ping needs a kernel route in both directions; kittbgpd installs none before step 3
have_route() { ip -n "$(lab_ns "$1")" route get "$2" 2>/dev/null | grep -q 'dev wg'; }
for pair in "1 2 10.255.0.2 10.255.0.1" "1 2 fd00:255::2 fd00:255::1" "2 1 10.255.0.1 10.255.0.2" "2 1 fd00:255::1 fd00:255::2"; do
    read -r a b dst back <<< "$pair"
    if have_route "$a" "$dst" && have_route "$b" "$back"; then
        if ip netns exec "$(lab_ns "$a")" ping -c1 -W2 -q "$dst" >/dev/null; then echo "node $a -> $dst: ok"
        else echo "node $a -> $dst: FAILED"; fi
    else
        echo "node $a -> $dst: skipped (no kernel route $([[ $PEER == kittbgpd ]] && echo "on both sides; kittbgpd does not install kernel routes yet"))"
    fi
done

echo
echo "lab prefix $KB_LAB_PREFIX, state in $KB_LAB_STATE"
hold_lab
# lab_down runs from the EXIT trap set by lab_init
