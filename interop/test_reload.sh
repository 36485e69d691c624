#!/usr/bin/env bash
# test_reload.sh -- `kittbgpd reload` and SIGHUP change a running daemon without costing the
# sessions they do not concern. A ring of three kittbgpd nodes 1 - 2 - 3 - 1 (wireguard-go
# tunnels, kernel routes on); node 1 builds its own tunnels from its config ([wireguard],
# `[neighbor.wireguard]`) and measures both links (cost = "auto"); node 1's file is edited and
# reloaded while node 1 pings node 2's loopbacks (over wg2, a session no reload touches) every 50 ms.
#
# Usage: interop/test_reload.sh [/path/to/kittbgpd]   (root)
# Default binary: target/release/kittbgpd or target/debug/kittbgpd, whichever is newer (copied to
# /tmp for the run). Prints PASS/FAIL lines and a final "N passed, M failed"; exit 1 on any
# failure. Cleans up only its own namespaces and PIDs (lib.sh), also when interrupted.
#
#   0  every session Established (6 ends)
#   a  --dry-run lists the removal of wg3 and applies nothing (wg3 still Established)
#   b  wg3 removed from node 1's file, reload: wg3 gone from node 1 (node 3's end goes down,
#      Cease/Peer De-configured), its tunnel deleted; wg2 "since" unchanged; 10.255.0.3 still
#      reached (via node 2)
#   c  wg3 (with its [neighbor.wireguard]) added back, reload: tunnel built, Established again,
#      its prober runs (the link cost becomes a measured one); wg2 "since" unchanged
#   d  costs (wg3: "auto" -> 777, its prober stops) and import limit changed: applied live (link
#      cost of node 3's routes is the new one, limit shown), wg2 and wg3 "since" unchanged
#   e  a broken file: reload fails with the same errors as `check`, state unchanged
#   f  SIGHUP: the daemon keeps running (it used to die), sessions unchanged
#   r  a session parameter (wg3 passive) changed: only wg3 restarts (node 3 gets Cease / Other
#      Configuration Change), Established again; wg2 "since" unchanged
#   k  [cost] changed (offset = 50000): wg2's prober applies it at once, wg2 "since" unchanged
#   t  wg3's tunnel changed in place (persistent_keepalive 10 -> 7): set on the running
#      interface, the wg2 and wg3 sessions untouched
#   o  loopbacks.originate changed by reload, then an address added on lo: node 2 has both
#      (the lo watcher does not bring back the start-up set)
#   g  show protocols / show route PREFIX / show config answer (text and --json)
#   h  the ping to node 2 never lost a packet during a..r
#   p  listen_port changed by reload (1790 -> 1791 -> 1790): node 1 listens on the new port only,
#      no session touched
#   i  router_id changed by reload (after h: every session restarts with a Cease, so the
#      neighbors drop node 1's routes meanwhile): both sessions restart and come back, the
#      neighbors see the new BGP Identifier, node 1's loopback is learned again
# Environment: KB_KEEP_STATE=1 (keep logs), KB_LAB_PREFIX, RUST_LOG (lib.sh).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=interop/lib.sh
source "$HERE/lib.sh"

lab_args "$@"
lab_checks

NODES=(1 2 3)
TMPD=$(mktemp -d /tmp/kbreload.XXXXXX)
trap 'rm -rf "$TMPD"' EXIT   # until lab_init's trap takes over (lab_exit_hook removes it then)

lab_exit_hook() {
    local rc=$1 i
    [[ -z ${PING_PID:-} ]] || kill "$PING_PID" 2>/dev/null || true
    if ((rc != 0 || FAILED > 0)) && [[ -d $KB_LAB_STATE ]]; then
        for i in "${NODES[@]}"; do
            echo "== node $i: neighbors / last log lines"
            kb_show "$i" neighbors 2>&1 | sed 's/^/   /' || true
            grep -aE ' (WARN|ERROR|INFO) ' "$(lab_dir "$i")/kittbgpd.log" 2>/dev/null | tail -n 12 || true
        done
    fi
    ((rc == 0)) || echo "interrupted or aborted (status $rc) after the checks above"
    rm -rf "$TMPD"
    echo "$PASSED passed, $FAILED failed"
    ((FAILED == 0))
}

# kb_since I NAME: "since" of neighbor NAME in node i's `show neighbors --json` ("" if not listed)
kb_since() {
    kb_show "$1" neighbors --json 2>/dev/null | "$PYTHON" -c '
import json, sys
print(next((n["since"] for n in json.load(sys.stdin) if n["name"] == sys.argv[1]), ""))' "$2"
}
listed() { kb_show 1 neighbors --json | "$PYTHON" -c '
import json, sys; sys.exit(0 if any(n["name"] == sys.argv[1] for n in json.load(sys.stdin)) else 1)' "$1"; }
# link_cost_from I PEER PREFIX: link_cost of PEER's candidate for PREFIX in node i
link_cost_from() {
    kb_show "$1" routes --json | "$PYTHON" -c '
import json, sys
print(next((r.get("link_cost") for r in json.load(sys.stdin) if r["peer"] == sys.argv[1] and r["prefix"] == sys.argv[2]), "-"))' "$2" "$3"
}
CONF=; ORIG="$TMPD/node1.orig.toml"
reload1() { kb_ctl 1 reload "$@"; }
# drop_neighbor NAME < FILE: the file without the [[neighbor]] block named NAME
drop_neighbor() {
    "$PYTHON" -c '
import re, sys
blocks = re.split(r"(?m)^(?=\[\[neighbor\]\])", sys.stdin.read())
sys.stdout.write("".join(b for b in blocks if not re.search(r"(?m)^name = \"%s\"$" % sys.argv[1], b)))' "$1"
}
same_since() {   # LABEL NAME BEFORE
    local now; now=$(kb_since 1 "$2")
    if [[ -n $3 && $now == "$3" ]]; then pass "$1: $2 since unchanged ($3)"
    else fail "$1: $2 since unchanged (before $3, now $now)"; fi
}

cp "$BIN" "$TMPD/kittbgpd"
echo "kittbgpd: $BIN (running a copy: $TMPD/kittbgpd)"
lab_init
lab_up 3 ring --kb-tunnels 1
lab_cost 1 2 auto; lab_cost 1 3 auto
for i in "${NODES[@]}"; do kb_conf "$i" --hold 9 --keepalive 3 --kernel; done
CONF=$(lab_dir 1)/kittbgpd.toml
cp "$CONF" "$ORIG"
for i in "${NODES[@]}"; do kb_start "$i" "$TMPD/kittbgpd"; done

# ---------------------------------------------------------------- 0
all_up() { kb_established 1 wg2 && kb_established 1 wg3 && kb_established 2 wg1 && kb_established 2 wg3 \
    && kb_established 3 wg1 && kb_established 3 wg2; }
if wait_for all_up 30; then pass "0  all 6 session ends Established"; else fail "0  all 6 session ends Established within 30 s"; fi
wait_for "kb_has_prefix 1 10.255.0.2/32 && kb_has_prefix 1 10.255.0.3/32" 15 || true
wait_for "ip netns exec $(lab_ns 1) ping -c1 -W1 -q 10.255.0.2" 15 || true
sleep 1.1   # "since" has a resolution of one second
S2=$(kb_since 1 wg2)
ip netns exec "$(lab_ns 1)" ping -D -O -i 0.05 -W 1 10.255.0.2 > "$TMPD/ping.log" 2>&1 &
PING_PID=$!

# ---------------------------------------------------------------- a
drop_neighbor wg3 < "$ORIG" > "$CONF"
out=$(reload1 --dry-run 2>&1) || true
sleep 0.5
if grep -q "\[remove\] neighbor wg3" <<< "$out" && grep -q "dry run" <<< "$out" && kb_established 1 wg3; then
    pass "a  --dry-run: $(grep remove <<< "$out" | sed 's/^ *//'); nothing applied"
else
    fail "a  --dry-run lists the removal and applies nothing: $out"
fi

# ---------------------------------------------------------------- b
out=$(reload1 2>&1) || true
info "reload: $(tr '\n' ' ' <<< "$out")"
if wait_for "! listed wg3" 5 && wait_for "! kb_established 3 wg1" 10; then
    pass "b  wg3 removed from node 1 (node 3's end: $(kb_neighbor_state 3 wg1))"
else
    fail "b  wg3 removed from node 1 and node 3's session down"
fi
same_since "b" wg2 "$S2"
if wait_for "! ip -n $(lab_ns 1) link show wg3 >/dev/null 2>&1" 5; then pass "b  node 1's tunnel wg3 deleted"
else fail "b  node 1's tunnel wg3 deleted"; fi
if wait_for "grep -q 'Cease / Peer De-configured' '$(lab_dir 3)/kittbgpd.log'" 5; then
    pass "b  node 3 got Cease / Peer De-configured"
else
    fail "b  node 3 got Cease / Peer De-configured (its log: $(grep -a 'wg1' "$(lab_dir 3)/kittbgpd.log" | grep -ai 'notification\|cease' | tail -n 2))"
fi
if wait_for "ip netns exec $(lab_ns 1) ping -c1 -W1 -q 10.255.0.3" 10; then pass "b  10.255.0.3 still reached (via node 2)"
else fail "b  10.255.0.3 reached via node 2"; fi

# ---------------------------------------------------------------- c
cp "$ORIG" "$CONF"
out=$(reload1 2>&1) || true
info "reload: $(tr '\n' ' ' <<< "$out")"
if grep -q "\[add\] neighbor wg3" <<< "$out" && wait_for "kb_established 1 wg3 && kb_established 3 wg1" 30; then
    pass "c  wg3 added back: Established in $WAITED_MS ms"
else
    fail "c  wg3 added back and Established within 30 s"
fi
same_since "c" wg2 "$S2"
# (the output is captured first: `| grep -q` may close the pipe before the CLI is done)
tunnel_listed() { local j; j=$(kb_show 1 tunnels --json) && grep -q '"interface": *"wg3"' <<< "$j"; }
if ip -n "$(lab_ns 1)" link show wg3 >/dev/null 2>&1 && wait_for tunnel_listed 10; then
    pass "c  tunnel wg3 built again by node 1"
else fail "c  tunnel wg3 built again by node 1"; fi
# measured_cost I NAME: the applied cost of link NAME in `show links --json` ("" if none)
measured_cost() { kb_show "$1" links --json | "$PYTHON" -c '
import json, sys
print(next((str(l["cost"]) for l in json.load(sys.stdin) if l["name"] == sys.argv[1] and l.get("cost") is not None), ""))' "$2"; }
if wait_for "[[ -n \$(measured_cost 1 wg3) && \$(link_cost_from 1 wg3 10.255.0.3/32) == \$(measured_cost 1 wg3) ]]" 20; then
    pass "c  wg3's prober runs: measured link cost $(measured_cost 1 wg3) on its routes"
else fail "c  wg3's prober runs (measured: '$(measured_cost 1 wg3)', on routes: $(link_cost_from 1 wg3 10.255.0.3/32))"; fi
sleep 1.1
S3=$(kb_since 1 wg3)

# ---------------------------------------------------------------- d
"$PYTHON" - "$ORIG" "$CONF" <<'EOF'
import re, sys
t = open(sys.argv[1]).read()
t = t.replace('import_limit = 1000', 'import_limit = 500')
blocks = re.split(r"(?m)^(?=\[\[neighbor\]\])", t)
blocks = [re.sub(r"(?m)^cost = .*$", "cost = 777", b) if 'name = "wg3"' in b else b for b in blocks]
open(sys.argv[2], "w").write("".join(blocks))
EOF
out=$(reload1 2>&1) || true
info "reload: $(tr '\n' ' ' <<< "$out")"
if grep -q "\[live\] neighbor wg3: cost .* -> 777" <<< "$out" && grep -q "\[live\] neighbor wg2: import_limit 1000 .* -> 500" <<< "$out" \
    && ! grep -q "restart" <<< "$out"; then
    pass "d  cost and import limit changes are live"
else
    fail "d  cost and import limit changes are live: $out"
fi
if wait_for "[[ \$(link_cost_from 1 wg3 10.255.0.3/32) == 777 ]]" 5; then pass "d  routes from wg3 carry link cost 777"
else fail "d  routes from wg3 carry link cost 777 (now $(link_cost_from 1 wg3 10.255.0.3/32))"; fi
lim=$(kb_show 1 neighbors --json | "$PYTHON" -c 'import json,sys; print([n["routes"]["limit"] for n in json.load(sys.stdin) if n["name"]=="wg2"][0])' || true)
if [[ $lim == 500 ]]; then pass "d  wg2 import limit 500"; else fail "d  wg2 import limit 500 (shown: $lim)"; fi
same_since "d" wg2 "$S2"
same_since "d" wg3 "$S3"

# ---------------------------------------------------------------- e
GOOD="$TMPD/good.toml"; cp "$CONF" "$GOOD"
printf '\n[[neighbor]]\nname = "wg9"\naddress = "not an address"\n' >> "$CONF"
rc=0; out=$(reload1 2>&1) || rc=$?
chk=$("$TMPD/kittbgpd" check -c "$CONF" 2>&1 >/dev/null | head -n 1) || true
if ((rc != 0)) && [[ -n $chk ]] && grep -qF "$chk" <<< "$out"; then
    pass "e  broken file refused (exit $rc) with check's error: $chk"
else
    fail "e  broken file refused with check's error (exit $rc): $out / check: $chk"
fi
if [[ $(kb_show 1 config --json | "$PYTHON" -c 'import json,sys; print(len(json.load(sys.stdin)["neighbor"]))') == 2 ]] \
    && [[ $(link_cost_from 1 wg3 10.255.0.3/32) == 777 ]]; then pass "e  running state unchanged"
else fail "e  running state unchanged"; fi
same_since "e" wg2 "$S2"
same_since "e" wg3 "$S3"
cp "$GOOD" "$CONF"

# ---------------------------------------------------------------- f
lab_exec 1 kill -HUP "$(lab_pid kittbgpd-1)"
sleep 1
if kill -0 "$(lab_pid kittbgpd-1)" 2>/dev/null && grep -q "SIGHUP: reloading" "$(lab_dir 1)/kittbgpd.log"; then
    pass "f  SIGHUP reloads; the daemon keeps running"
else
    fail "f  SIGHUP reloads and the daemon keeps running"
fi
same_since "f" wg2 "$S2"
same_since "f" wg3 "$S3"

# ---------------------------------------------------------------- r
"$PYTHON" - "$GOOD" "$CONF" <<'EOF'
import re, sys
blocks = re.split(r"(?m)^(?=\[\[neighbor\]\])", open(sys.argv[1]).read())
blocks = [re.sub(r'(?m)^(name = "wg3")$', r'\1\npassive = true', b) for b in blocks]
open(sys.argv[2], "w").write("".join(blocks))
EOF
out=$(reload1 2>&1) || true
info "reload: $(tr '\n' ' ' <<< "$out")"
if grep -q "\[restart\] neighbor wg3: passive false -> true" <<< "$out" \
    && wait_for "grep -q 'Cease / Other Configuration Change' '$(lab_dir 3)/kittbgpd.log'" 5 \
    && wait_for "kb_established 1 wg3" 30 && [[ $(kb_since 1 wg3) != "$S3" ]]; then
    pass "r  passive changed: wg3 alone restarted (Cease / Other Configuration Change), Established again"
else
    fail "r  passive changed: wg3 alone restarted and Established again: $out"
fi
same_since "r" wg2 "$S2"
wait_for "[[ \$(link_cost_from 1 wg3 10.255.0.3/32) == 777 ]]" 15 || true

# ---------------------------------------------------------------- k
printf '\n[cost]\noffset = 50000\n' >> "$CONF"
out=$(reload1 2>&1) || true
info "reload: $(tr '\n' ' ' <<< "$out")"
if grep -q "\[live\] \[cost\] changed" <<< "$out" && ! grep -q "restart" <<< "$out" \
    && wait_for "[[ \$(link_cost_from 1 wg2 10.255.0.2/32) -ge 50000 ]]" 5; then
    pass "k  [cost] applied live: wg2's measured cost now $(link_cost_from 1 wg2 10.255.0.2/32)"
else
    fail "k  [cost] applied live (wg2's cost $(link_cost_from 1 wg2 10.255.0.2/32)): $out"
fi
same_since "k" wg2 "$S2"

# ---------------------------------------------------------------- t
S3=$(kb_since 1 wg3)
"$PYTHON" - "$CONF" <<'EOF'
import re, sys
blocks = re.split(r"(?m)^(?=\[\[neighbor\]\])", open(sys.argv[1]).read())
blocks = [re.sub(r"(?m)^endpoint = ", "persistent_keepalive = 7\nendpoint = ", b) if 'name = "wg3"' in b else b
          for b in blocks]
open(sys.argv[1], "w").write("".join(blocks))
EOF
out=$(reload1 2>&1) || true
info "reload: $(tr '\n' ' ' <<< "$out")"
if grep -q "\[live\] neighbor wg3: tunnel wg3 updated in place" <<< "$out" \
    && wait_for "lab_exec 1 wg show wg3 persistent-keepalive | grep -qw 7" 5; then
    pass "t  wg3's tunnel updated in place (persistent keepalive 7)"
else
    fail "t  wg3's tunnel updated in place ($(lab_exec 1 wg show wg3 persistent-keepalive 2>&1 | xargs)): $out"
fi
same_since "t" wg2 "$S2"
same_since "t" wg3 "$S3"

# ---------------------------------------------------------------- o
sed -i 's|^originate = \[|originate = ["10.255.0.101/32", |' "$CONF"
out=$(reload1 2>&1) || true
info "reload: $(tr '\n' ' ' <<< "$out")"
ip -n "$(lab_ns 1)" addr add 10.255.0.201/32 dev lo
if wait_for "kb_has_prefix 2 10.255.0.201/32" 10 && kb_has_prefix 2 10.255.0.101/32; then
    pass "o  node 2 has 10.255.0.101 (reload) and 10.255.0.201 (lo, added after it)"
else
    fail "o  node 2 has 10.255.0.101 (reload: $(kb_has_prefix 2 10.255.0.101/32 && echo yes || echo no)) and 10.255.0.201 (lo)"
fi
same_since "o" wg2 "$S2"

# ---------------------------------------------------------------- g
# (output taken whole first: `grep -q` quitting early would break the pipe under pipefail)
p=$(kb_show 1 protocols); pj=$(kb_show 1 protocols --json)
if grep -qE '^wg2 +Established' <<< "$p" && grep -q '"since"' <<< "$pj"; then
    pass "g  show protocols"
else fail "g  show protocols"; fi
r=$(kb_show 1 route 10.255.0.3); rj=$(kb_show 1 route 10.255.0.3/32 --json)
if grep -q "link_cost *777" <<< "$r" && grep -q '"as_path"' <<< "$rj"; then
    pass "g  show route PREFIX (every attribute, --json)"
else fail "g  show route PREFIX"; fi
if grep -q '^cost = 777' <<< "$(kb_show 1 config)"; then pass "g  show config is the running config"
else fail "g  show config is the running config"; fi

# ---------------------------------------------------------------- h
kill -INT "$PING_PID" 2>/dev/null || true
wait "$PING_PID" 2>/dev/null || true
PING_PID=
summary=$(grep -E "packets transmitted" "$TMPD/ping.log" || true)
sent=$(sed -nE 's/^([0-9]+) packets transmitted.*/\1/p' <<< "$summary")
# The last echo sent is not counted: the SIGINT may come before its reply could.
lost=$(lab_ping_lost "$TMPD/ping.log")
if [[ -n $sent && $sent -gt 20 && $lost == 0 ]]; then pass "h  ping 1 -> 10.255.0.2 never lost a packet ($summary; the last one sent aside)"
else fail "h  ping 1 -> 10.255.0.2 never lost a packet ($summary; lost, the last one sent aside: $lost)"; fi

# ---------------------------------------------------------------- p
S2=$(kb_since 1 wg2); S3=$(kb_since 1 wg3)
listening() { [[ -n $(ip netns exec "$(lab_ns 1)" ss -Hltn "sport = :$1") ]]; }
sed -i '0,/^listen_port = .*/s//listen_port = 1791/' "$CONF"   # the first: [neighbor.wireguard] have theirs
out=$(reload1 2>&1) || true
info "reload: $(tr '\n' ' ' <<< "$out")"
if grep -q "\[live\] listen_port 1790 -> 1791" <<< "$out" && wait_for "listening 1791 && ! listening 1790" 5; then
    pass "p  listen_port 1790 -> 1791 by reload: node 1 listens on 1791 only"
else fail "p  listen_port 1790 -> 1791 by reload: node 1 listens on 1791 only ($out)"; fi
sed -i '0,/^listen_port = .*/s//listen_port = 1790/' "$CONF"
out=$(reload1 2>&1) || true
if wait_for "listening 1790 && ! listening 1791" 5; then pass "p  and back to 1790"
else fail "p  and back to 1790 ($out)"; fi
same_since "p" wg2 "$S2"
same_since "p" wg3 "$S3"

# ---------------------------------------------------------------- i
S2=$(kb_since 1 wg2); S3=$(kb_since 1 wg3)
sed -i 's|^router_id = .*|router_id = "10.255.0.91"|' "$CONF"
out=$(reload1 2>&1) || true
info "reload: $(tr '\n' ' ' <<< "$out")"
new_id() { [[ $(kb_neighbor_field 2 wg1 remote_id) == 10.255.0.91 && $(kb_neighbor_field 3 wg1 remote_id) == 10.255.0.91 ]]; }
if grep -q "\[live\] router_id 10.255.0.1 -> 10.255.0.91" <<< "$out" && grep -q "\[restart\] neighbor wg2" <<< "$out" \
    && wait_for "kb_established 1 wg2 && kb_established 1 wg3 && new_id" 30 \
    && [[ $(kb_since 1 wg2) != "$S2" && $(kb_since 1 wg3) != "$S3" ]]; then
    pass "i  router_id changed by reload: both sessions restarted, nodes 2 and 3 see router id 10.255.0.91"
else
    fail "i  router_id changed by reload: sessions restarted with it (node 2 sees $(kb_neighbor_field 2 wg1 remote_id)): $out"
fi
if wait_for "kb_has_prefix 2 10.255.0.1/32 && kb_has_prefix 3 10.255.0.1/32" 10 \
    && grep -q '^router_id = "10.255.0.91"' <<< "$(kb_show 1 config)"; then
    pass "i  node 1's loopback learned again under the new identity; show config has it"
else fail "i  node 1's loopback learned again under the new identity; show config has it"; fi
