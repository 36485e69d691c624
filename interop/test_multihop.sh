#!/usr/bin/env bash
# test_multihop.sh -- issue 12 part 1: multihop iBGP sessions over loopbacks. Three nodes in a
# line of wireguard-go tunnels, 1 - 2 - 3: nodes 1 and 3 are not adjacent. Link sessions as
# always (1-2, 2-3) carry the loopbacks into the kernel; over them, a multihop session joins
# node 1's loopback to node 3's. Node 1 and node 2 run kittbgpd; node 3 runs BIRD 2 first,
# then kittbgpd.
#
# Usage: interop/test_multihop.sh [/path/to/kittbgpd]   (root; run with KB_LAB_PREFIX=mh)
# Prints one PASS/FAIL line per check and a final "N passed, M failed"; exit 1 on any failure.
#
#   a  link sessions up; kernel routes between the loopbacks of nodes 1 and 3; pings
#   b  kittbgpd (node 1, `multihop = 255`, default source) <-> BIRD (node 3, `multihop 2`,
#      `source address`, `ttl security on`: it takes only TTL >= 254, so the session shows that
#      kittbgpd sends with the configured hop limit): Established on both, the TCP connection
#      is between 10.255.0.1 and 10.255.0.3 (`ss` in node 1), show neighbors says so
#   c  it survives: same "since" on both ends after KB_STABLE_S (20) s, link sessions untouched
#   d  node 3 becomes kittbgpd with link sessions only; a reload adds two multihop neighbors
#      (IPv4 and IPv6 loopbacks): both Established with node 1, TCP between the loopbacks of
#      each family, node 3's link session not reset by the reload
#   e  they survive KB_STABLE_S s (same "since" on node 1)
#   f  a reload removes them: node 1's sessions leave Established, node 3's link session stays
#   g  `kittbgpd check` locates a multihop neighbor with an interface (file:line: key)
# Environment: KB_STABLE_S (20), KB_LAB_PREFIX, KB_KEEP_STATE=1, see lib.sh.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=interop/lib.sh
source "$HERE/lib.sh"
lab_args "$@"
lab_checks
check() { local what=$1; shift; if "$@"; then pass "$what"; else fail "$what"; fi; }
STABLE_S=${KB_STABLE_S:-20}
CONF=(--kernel --hold 9 --keepalive 3)

lab_exit_hook() {
    local rc=$1 i
    if ((rc != 0 || FAILED > 0)) && [[ -d $KB_LAB_STATE ]]; then
        for i in 1 2 3; do
            [[ -f $(lab_dir "$i")/kittbgpd.log ]] || continue
            echo "== node $i: kittbgpd log, last lines"
            tail -n 20 "$(lab_dir "$i")/kittbgpd.log" 2>/dev/null || true
        done
        [[ ! -f $(lab_bird_log 3) ]] || { echo "== node 3: BIRD log, last lines"; tail -n 20 "$(lab_bird_log 3)"; }
    fi
    ((rc == 0)) || echo "interrupted or aborted (status $rc) after the checks above"
    echo "$PASSED passed, $FAILED failed"
    ((FAILED == 0))
}

# tcp_between I A B: node i has an established TCP connection between addresses A and B, one
# end on port $KB_PORT (ss prints IPv6 addresses in brackets, IPv4 on the dual-stack listener
# v4-mapped)
tcp_between() {
    ip netns exec "$(lab_ns "$1")" ss -Htn state established | awk -v a="$2" -v b="$3" -v p="$KB_PORT" '
        function host(x) { sub(/:[0-9]+$/, "", x); gsub(/[][]/, "", x); sub(/^::ffff:/, "", x); return x }
        function port(x) { sub(/.*:/, "", x); return x }
        { l = $(NF-1); r = $NF
          if (((host(l) == a && host(r) == b) || (host(l) == b && host(r) == a)) && (port(l) == p || port(r) == p)) f = 1 }
        END { exit !f }'
}
since() { echo "$(kb_neighbor_state "$1" "$2") $(kb_neighbor_field "$1" "$2" since)"; }
links_up() { kb_established 1 wg2 && kb_established 2 wg1 && kb_established 2 wg3 && "$@"; }
routes_1_3() {
    [[ $(lab_nh 1 10.255.0.3/32) != - && $(lab_nh 3 10.255.0.1/32) != - ]] &&
        [[ $(lab_nh 1 fd00:255::3/128) != - && $(lab_nh 3 fd00:255::1/128) != - ]]
}
pings_1_3() { ! lab_ping_matrix 1 3 -- 1 3 | grep -q lost; }

lab_ensure_packages
lab_init
lab_up 3 line
kb_conf 1 "${CONF[@]}" --multihop 3:255 --multihop6 3
kb_conf 2 "${CONF[@]}"
lab_bird_conf 3 --hold 9 --keepalive 3 --multihop 1:2 --mh-gtsm
lab_bird_start 3
kb_start 1 "$BIN"
kb_start 2 "$BIN"

# a
if wait_for "links_up bird_established 3 wg2" 30 && wait_for routes_1_3 20; then
    check "a: link sessions up; kernel routes between nodes 1 and 3 (via node 2)" pings_1_3
else
    fail "a: link sessions or kernel routes missing"
    info "node 1: $(lab_nh 1 10.255.0.3/32); node 3: $(lab_nh 3 10.255.0.1/32)"
fi

# b
if wait_for "kb_established 1 mh3 && bird_established 3 mh1" 30; then
    local_addr=$(kb_neighbor_field 1 mh3 local_address)
    info "node 1 mh3 up after ${WAITED_MS} ms: local $local_addr, remote $(kb_neighbor_field 1 mh3 remote_address)"
    if tcp_between 1 10.255.0.1 10.255.0.3 && [[ $local_addr == 10.255.0.1:* ]]; then
        pass "b: kittbgpd <-> BIRD multihop session between the loopbacks (BIRD takes TTL >= 254 only)"
    else
        fail "b: the multihop session is not between the loopbacks"
        ip netns exec "$(lab_ns 1)" ss -Htn state established | sed 's/^/     /'
    fi
else
    fail "b: multihop session kittbgpd <-> BIRD not Established"
    info "node 1 mh3: $(kb_neighbor_state 1 mh3) $(kb_neighbor_field 1 mh3 last_error); node 3: $(bird_proto_line 3 mh1)"
fi

# c
kb_before=$(since 1 mh3) bird_before=$(bird_proto_line 3 mh1)
link_before=$(since 1 wg2)
sleep "$STABLE_S"
bird_after=$(bird_proto_line 3 mh1)
if [[ $(since 1 mh3) == "$kb_before" && $bird_after == *Established* && $bird_before == *Established* \
      && $(since 1 wg2) == "$link_before" && $kb_before == Established* ]] \
   && bird_since_same "$(bird_since_ms "$bird_after")" "$(bird_since_ms "$bird_before")"; then
    pass "c: the multihop session survives ${STABLE_S} s (hold time 9 s), links untouched"
else
    fail "c: session changed: node 1 '$kb_before' -> '$(since 1 mh3)', BIRD '$bird_before' -> '$bird_after'"
fi

# d: node 3 becomes kittbgpd, first with link sessions only
lab_kill bird-3 TERM 5 || true
kb_conf 3 "${CONF[@]}"
kb_start 3 "$BIN"
if wait_for "links_up kb_established 3 wg2" 30 && wait_for routes_1_3 20; then
    link3=$(since 3 wg2)
    kb_conf 3 "${CONF[@]}" --multihop 1 --multihop6 1
    kb_ctl 3 reload | sed 's/^/     reload: /'
    if wait_for "kb_established 1 mh3 && kb_established 1 mh3v6 && kb_established 3 mh1 && kb_established 3 mh1v6" 30; then
        info "up ${WAITED_MS} ms after the reload"
        if tcp_between 1 10.255.0.1 10.255.0.3 && tcp_between 1 fd00:255::1 fd00:255::3 \
            && [[ $(since 3 wg2) == "$link3" ]]; then
            pass "d: reload adds kittbgpd <-> kittbgpd multihop sessions (IPv4 and IPv6 loopbacks), link session kept"
        else
            fail "d: sessions not between the loopbacks, or the link session was reset ('$link3' -> '$(since 3 wg2)')"
            ip netns exec "$(lab_ns 1)" ss -Htn state established | sed 's/^/     /'
        fi
    else
        fail "d: multihop sessions kittbgpd <-> kittbgpd not Established"
        info "node 1: mh3 $(kb_neighbor_state 1 mh3), mh3v6 $(kb_neighbor_state 1 mh3v6); node 3: mh1 $(kb_neighbor_state 3 mh1), mh1v6 $(kb_neighbor_state 3 mh1v6)"
    fi
else
    fail "d: node 3's kittbgpd link session did not come up"
fi

# e
v4=$(since 1 mh3) v6=$(since 1 mh3v6)
sleep "$STABLE_S"
check "e: both survive ${STABLE_S} s" test "$(since 1 mh3) $(since 1 mh3v6)" == "$v4 $v6" -a "${v4%% *}" == Established

# f
link3=$(since 3 wg2)
kb_conf 3 "${CONF[@]}"
kb_ctl 3 reload | sed 's/^/     reload: /'
if wait_for "! kb_established 1 mh3 && ! kb_established 1 mh3v6" 15; then
    check "f: reload removes them (node 1: $(kb_neighbor_state 1 mh3)), link session kept" test "$(since 3 wg2)" == "$link3"
else
    fail "f: node 1's multihop sessions still Established after node 3 removed them"
fi

# g
bad=$KB_LAB_STATE/bad.toml
sed 's/^multihop = 255$/multihop = 255\ninterface = "wg2"/' "$(lab_dir 1)/kittbgpd.toml" > "$bad"
out=$("$BIN" check -c "$bad" 2>&1) && rc=0 || rc=$?
info "$(grep -m1 'neighbor\[' <<< "$out")"
check "g: kittbgpd check locates a multihop neighbor with an interface" \
    grep -qE "^$bad:[0-9]+:[0-9]+: neighbor\[[0-9]+\]\.interface: a multihop session is not bound" <<< "$out"
((rc != 0)) || fail "g: kittbgpd check accepted it"
