#!/usr/bin/env bash
# demo.sh -- BIRD 2 (node 1) and kittbgpd (node 2) peering over a wireguard-go tunnel in
# network namespaces; shows both sides' sessions and routes, then tears everything down.
#
# Usage: interop/demo.sh [--bin PATH] [--no-build] [--hold SECONDS | --no-wait] [--peer-bird]   (root)
#   --bin PATH    kittbgpd binary (default: target/release/kittbgpd, built with cargo if absent)
#   --no-build    do not run cargo build
#   --hold S      keep the lab up S seconds instead of waiting for Enter; --no-wait = --hold 0
#   --peer-bird   run BIRD on node 2 too (no kittbgpd needed)
# While it waits, the lab is usable from another shell, e.g.
#   birdc -s /run/kblab/<prefix>/node1/bird.ctl show route all
#   nsenter -t $(cat /run/kblab/<prefix>/node2/holder.pid) -m -n wg show
# Installs missing packages with apt (bird2 wireguard-go wireguard-tools iproute2 iputils-ping).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=interop/lib.sh
source "$HERE/lib.sh"

BIN="" BUILD=1 HOLD="" PEER=kittbgpd
while (($#)); do
    case $1 in
        --bin) BIN=$2; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --hold) HOLD=$2; shift 2 ;;
        --no-wait) HOLD=0; shift ;;
        --peer-bird) PEER=bird; shift ;;
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
if [[ -z $HOLD ]]; then
    read -r -p "press Enter to tear down " _ || true
elif ((HOLD > 0)); then
    echo "holding for $HOLD s"; sleep "$HOLD"
fi
# lab_down runs from the EXIT trap set by lab_init
