#!/usr/bin/env bash
# test_add_paths.sh -- ADD-PATH (RFC 7911) with BIRD 2. Four nodes: a line 1 - 2 - 3 - 4 and a
# link 2 - 4. Node 1 runs kittbgpd (`add_paths = "both"`), nodes 2, 3, 4 BIRD; node 2's session
# to node 1 has `add paths on` (rx and tx). Nodes 3 and 4 both put the anycast address
# 10.255.0.100/32 on lo: BIRD on node 2 holds two paths to it (via wg3 and via wg4) and sends
# both to kittbgpd, each with its path id.
#
# Usage: interop/test_add_paths.sh [/path/to/kittbgpd]   (root)
# Prints PASS/FAIL lines and a final "N passed, M failed"; exit 1 on any failure. Cleans up only
# its own namespaces and PIDs (lib.sh), also when interrupted.
#
#   0  every session Established; kittbgpd's session to BIRD negotiated ADD-PATH both ways
#      for IPv4 and IPv6 unicast (show neighbors --json)
#   a  kittbgpd holds two paths of 10.255.0.100/32 from the one neighbor, with distinct path
#      ids, one of them best (show routes; show explain names the path that won)
#   b  the anycast address removed from node 3: node 3 now relays node 4's instance, so
#      kittbgpd still holds two paths, both with ORIGINATOR_ID 10.255.0.4 (replaced under their
#      path ids), and the prefix never disappeared in between; then removed from node 4 too:
#      every path withdrawn
#   c  BIRD on node 2 learned kittbgpd's loopback 10.255.0.1/32 over the ADD-PATH session
#      (kittbgpd's path-id encoding parsed by BIRD)
#   z  every daemon still running
# Environment: KB_KEEP_STATE=1 (keep logs), KB_LAB_PREFIX, RUST_LOG (lib.sh).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=interop/lib.sh
source "$HERE/lib.sh"

lab_args "$@"
lab_checks
ANY=10.255.0.100/32
# a `show --json` answer: the list itself, or inside {"neighbors"|"routes"|"result": ...}
UNWRAP='(if type == "object" then (.neighbors // .routes // .result) else . end)'

lab_exit_hook() {
    local rc=$1
    if ((rc != 0 || FAILED > 0)) && [[ -d $KB_LAB_STATE ]]; then
        kb_show 1 routes 2>&1 | sed 's/^/   /' || true
        grep -aE ' (WARN|ERROR) ' "$(lab_dir 1)/kittbgpd.log" 2>/dev/null | tail -n 20 || true
        tail -n 15 "$(lab_bird_log 2)" 2>/dev/null || true
    fi
    ((rc == 0)) || echo "interrupted or aborted (status $rc) after the checks above"
    echo "$PASSED passed, $FAILED failed"
    ((FAILED == 0))
}

# paths_of PREFIX: the path ids kittbgpd on node 1 holds for PREFIX, one a line ("best" marked)
paths_of() {
    kb_show 1 routes --json 2>/dev/null \
        | jq -r --arg p "$1" "$UNWRAP"' | .[] | select(.prefix == $p) | "\(.path_id) \(.best)"'
}
npaths() { paths_of "$1" | grep -c . || true; }
# origins PREFIX: the distinct ORIGINATOR_IDs of its paths at node 1, space separated
origins() {
    kb_show 1 routes --json 2>/dev/null \
        | jq -r --arg p "$1" "$UNWRAP"' | .[] | select(.prefix == $p) | .originator_id' | sort -u | xargs
}

lab_init
lab_up 4 line --link 2-4
for i in 2 3 4; do lab_bird_conf "$i"; done
# node 2: ADD-PATH both ways on its session to node 1 (both channels)
awk '/^protocol bgp wg1 /{s=1} s && /next hop self;/{print; print "    add paths on;"; next} /^}/{s=0} {print}' \
    "$(lab_dir 2)/bird.conf" > "$(lab_dir 2)/bird.conf.ap"
mv "$(lab_dir 2)/bird.conf.ap" "$(lab_dir 2)/bird.conf"
bird -p -c "$(lab_dir 2)/bird.conf" || lab_die "node 2's BIRD config with add paths does not parse"
for i in 3 4; do ip -n "$(lab_ns "$i")" addr add "$ANY" dev lo; done
for i in 2 3 4; do lab_bird_start "$i"; done
kb_conf 1
sed -i '/^\[defaults\]/a add_paths = "both"' "$(lab_dir 1)/kittbgpd.toml"
kb_start 1 "$BIN"

# ---------------------------------------------------------------- 0
all_up() {
    kb_established 1 wg2 && bird_established 2 wg1 && bird_established 2 wg3 \
        && bird_established 2 wg4 && bird_established 3 wg4
}
if wait_for all_up 40; then pass "0  all sessions Established"; else fail "0  all sessions Established within 40 s"; fi
neg=$(kb_show 1 neighbors --json | jq -c "$UNWRAP"' | .[] | select(.name == "wg2") | .negotiated | [.add_path_receive, .add_path_send]')
if [[ $neg == '[{"ipv4_unicast":true,"ipv6_unicast":true},{"ipv4_unicast":true,"ipv6_unicast":true}]' ]]; then
    pass "0  ADD-PATH negotiated with BIRD: receive and send, IPv4 and IPv6"
else fail "0  ADD-PATH negotiated with BIRD (got $neg)"; fi

# ---------------------------------------------------------------- a
if wait_for "[[ \$(npaths $ANY) == 2 ]]" 30; then
    ids=$(paths_of "$ANY" | awk '{print $1}' | sort -u | grep -c .)
    best=$(paths_of "$ANY" | grep -c ' true$' || true)
    if ((ids == 2 && best == 1)); then
        pass "a  two paths of $ANY from one neighbor, distinct path ids ($(paths_of "$ANY" | xargs)), one best"
    else fail "a  two paths with distinct ids, one best (got: $(paths_of "$ANY" | xargs))"; fi
else fail "a  two paths of $ANY within 30 s (got $(npaths "$ANY"): $(paths_of "$ANY" | xargs))"; fi
kb_show 1 explain "$ANY" 2>&1 | sed 's/^/     /' || true

# ---------------------------------------------------------------- b
gone=0
( for _ in $(seq 100); do [[ $(npaths "$ANY") == 0 ]] && { echo gone; break; }; sleep 0.1; done ) > "$KB_LAB_STATE/ap_watch" &
watch=$!
ip -n "$(lab_ns 3)" addr del "$ANY" dev lo
# node 3 now relays node 4's instance: still two paths at node 2, both ending at node 4
if wait_for "[[ \$(origins $ANY) == 10.255.0.4 ]]" 30 && [[ $(npaths "$ANY") == 2 ]]; then
    pass "b  node 3's instance withdrawn: both paths now lead to node 4 ($(paths_of "$ANY" | xargs))"
else fail "b  both paths lead to node 4 within 30 s (got: $(paths_of "$ANY" | xargs); originators $(origins "$ANY"))"; fi
wait "$watch" || true
grep -q gone "$KB_LAB_STATE/ap_watch" && gone=1
if ((gone == 0)); then pass "b  $ANY never left kittbgpd's table in between"
else fail "b  $ANY disappeared from kittbgpd's table while a path remained"; fi
ip -n "$(lab_ns 4)" addr del "$ANY" dev lo
if wait_for "[[ \$(npaths $ANY) == 0 ]]" 30; then
    pass "b  node 4's instance withdrawn too: every path of $ANY withdrawn by its id"
else fail "b  every path withdrawn within 30 s (left: $(paths_of "$ANY" | xargs))"; fi

# ---------------------------------------------------------------- c
if wait_for "birdc_n 2 show route 10.255.0.1/32 protocol wg1 | grep -q 10.255.0.1/32" 20; then
    pass "c  BIRD learned 10.255.0.1/32 from kittbgpd over the ADD-PATH session"
else fail "c  BIRD learned 10.255.0.1/32 from kittbgpd ($(birdc_n 2 show route 10.255.0.1/32 all | tail -n +2 | xargs))"; fi

# ---------------------------------------------------------------- z
if lab_pid kittbgpd-1 >/dev/null && [[ -s $(lab_dir 2)/bird.pid ]]; then pass "z  every daemon still running"
else fail "z  every daemon still running"; fi
