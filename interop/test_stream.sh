#!/usr/bin/env bash
# test_stream.sh -- issue 13 lab: the probe stream between kittbgpd nodes, ICMPv6 echo to BIRD.
# A line A-B-C (nodes 1, 2, 3) of wireguard-go tunnels through the delay relay (lab_up --relay,
# A-B 5 ms each way): A and B run kittbgpd with `cost = "auto"`
# on every neighbor and [cost] interval 0.1 s (probe = "auto", the default); C runs BIRD 2.
#
# Usage: interop/test_stream.sh [/path/to/kittbgpd]   (root)
#
#   0  every session Established (A-B both ends, B-C both ends)
#   a  A-B uses the stream: `show links` on A and on B says probe "stream", the link is up with a
#      cost, RTT samples from kernel timestamps came in, and no stream loss either way
#   b  packets on the A-B tunnel (A's wg2 rx + tx counters, /sys/class/net in the namespace) over
#      KB_COUNT_S (10) s: at most 24/s (the stream's 20/s at 0.1 s plus BGP and slack; 40/s
#      were ICMPv6 echo from both ends)
#   c  B-C (BIRD) fell back to ICMPv6 echo: B's `show links` says probe "icmp", the link is up with
#      a cost, echoes answered
#   d  A-B blackholed (relay: 100 % loss, the tunnels stay up): both ends' links go down within
#      3 x 0.1 s + 0.2 s as the daemons log it (detection counts from the last packet heard); after KB_BLACKHOLE_S (7) s
#      (past the 50 silent intervals after which auto chooses again: both ends on ICMPv6 echo with
#      hellos) the link passes packets again and comes back on the stream at both ends
#   e  B's side of A-B reloaded to a static cost: B only answers A's stream (`show links` on B says
#      probe "answer"), A stays up on the stream with new samples, still at most 24 packets/s
#   z  both daemons still running
# Environment: KB_COUNT_S (10), KB_BLACKHOLE_S (7), KB_LAB_PREFIX, KB_LAB_STATE, KB_KEEP_STATE=1, RUST_LOG (lib.sh).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=interop/lib.sh
source "$HERE/lib.sh"
lab_args "$@"
lab_checks
COUNT_S=${KB_COUNT_S:-10}
BLACKHOLE_S=${KB_BLACKHOLE_S:-7}

# link_field I IFACE EXPR: a Python expression on node i's `show links` entry for IFACE (l)
link_field() {
    kb_show "$1" links --json 2>/dev/null | "$PYTHON" -c '
import json, sys
d = json.load(sys.stdin)
if isinstance(d, dict):
    d = d.get("links", d.get("result", []))
for l in d:
    if l.get("interface") == sys.argv[1]:
        print(eval(sys.argv[2], {}, {"l": l})); break
' "$2" "$3"
}
# down_logged I LINK T0_MS: ms from T0_MS (epoch ms) to node i's first "link down" of LINK logged
# after it (the daemon's own timestamp, free of this script's polling delay); "" if none
down_logged() {
    "$PYTHON" - "$(lab_dir "$1")/kittbgpd.log" "$2" "$3" <<'PY'
import datetime, re, sys
path, link, t0 = sys.argv[1], sys.argv[2], int(sys.argv[3])
for line in open(path, errors="replace"):
    m = re.match(r"(\S+Z)\s", line)
    if not m or "link down" not in line or f"link={link}" not in line:
        continue
    t = datetime.datetime.fromisoformat(m.group(1).replace("Z", "+00:00")).timestamp() * 1000
    if t >= t0:
        print(int(t - t0)); break
PY
}
packets() { # packets I IFACE: rx + tx packet counters of the interface in node i
    lab_exec "$1" cat "/sys/class/net/$2/statistics/rx_packets" "/sys/class/net/$2/statistics/tx_packets" \
        | awk '{ s += $1 } END { print s }'
}

lab_init
lab_up 3 line --relay
lab_delay 1 2 5
for i in 1 2; do
    for j in $(lab_peers "$i"); do lab_cost "$i" "$j" auto; done
    kb_conf "$i" --cost-set interval=0.1 --cost-set down_after=3 --cost-set probe_timeout=0.5
done
lab_bird_conf 3
lab_bird_start 3
for i in 1 2; do kb_start "$i" "$BIN"; done

established() { kb_established 1 wg2 && kb_established 2 wg1 && kb_established 2 wg3 && bird_established 3 wg2; }
if wait_for established 40 0.2; then pass "0  A-B and B-C Established"
else fail "0  sessions Established within 40 s"; fi

# a: the stream on A-B, both ends
stream_up() { [[ $(link_field "$1" "$2" 'l.get("probe") == "stream" and l.get("state") == "up" and l["stream"]["rtt_samples"] > 10') == True ]]; }
if wait_for "stream_up 1 wg2 && stream_up 2 wg1" 20 0.2; then
    pass "a  A-B on the stream: A $(link_field 1 wg2 '"cost %s rtt(kernel) %.3f ms samples %d" % (l.get("cost"), l["stream"]["last_rtt_ms"], l["stream"]["rtt_samples"])'), B $(link_field 2 wg1 '"cost %s rtt(kernel) %.3f ms" % (l.get("cost"), l["stream"]["last_rtt_ms"])')"
else
    fail "a  A-B on the stream: A $(link_field 1 wg2 'l.get("probe"), l.get("state")') B $(link_field 2 wg1 'l.get("probe"), l.get("state")')"
fi
lost=$(link_field 1 wg2 'l["stream"]["lost_to_neighbor"] + l["stream"]["lost_from_neighbor"]')
if [[ $lost == 0 ]]; then pass "a  no stream loss on A-B either way"
else fail "a  stream loss on A-B: $lost packets"; fi

# b: packets per second on the A-B tunnel
p0=$(packets 1 wg2); sleep "$COUNT_S"; p1=$(packets 1 wg2)
rate=$(( (p1 - p0) * 10 / COUNT_S ))
if (( rate <= 240 && rate >= 150 )); then pass "b  A-B tunnel: $((rate / 10)).$((rate % 10)) packets/s both directions (stream at 0.1 s: 20/s)"
else fail "b  A-B tunnel: $((rate / 10)).$((rate % 10)) packets/s (want 15..24)"; fi

# c: ICMPv6 echo to BIRD
icmp_up() { [[ $(link_field 2 wg3 'l.get("probe") == "icmp" and l.get("state") == "up" and l.get("cost") is not None') == True ]]; }
if wait_for icmp_up 20 0.2; then
    pass "c  B-C (BIRD) on ICMPv6 echo: $(link_field 2 wg3 '"cost %s, echo sent %d answered %d, stream packets sent %d (hellos)" % (l.get("cost"), l["icmp"]["sent"], l["icmp"]["received"], l["stream"]["sent"])')"
else fail "c  B-C on ICMPv6 echo: $(link_field 2 wg3 'l.get("probe"), l.get("state"), l.get("cost")')"; fi
info "$(kb_show 2 links)"

# d: dead link, both ends
down_both() { [[ $(link_field 1 wg2 'l.get("state")') == down && $(link_field 2 wg1 'l.get("state")') == down ]]; }
t0=$(now_ms)
lab_blackhole 1 2
if wait_for down_both 5 0.02; then
    seen=$(( $(now_ms) - t0 ))
    a=$(down_logged 1 wg2 "$t0"); b=$(down_logged 2 wg1 "$t0")
    if [[ -n $a && -n $b ]] && ((a <= 500 && b <= 500)); then
        pass "d  A-B down at both ends: A $a ms, B $b ms after the blackhole (logged; bound 3 x 0.1 s + 0.2 s; seen by polling after $seen ms)"
    else fail "d  A-B down at both ends within 500 ms: logged A '$a' ms, B '$b' ms (seen after $seen ms)"; fi
else fail "d  A-B down at both ends within 5 s"; fi
sleep "$BLACKHOLE_S"
info "after $BLACKHOLE_S s of blackhole: A probes by $(link_field 1 wg2 'l.get("probe")'), B by $(link_field 2 wg1 'l.get("probe")')"
t0=$(now_ms)
lab_unblackhole 1 2
if wait_for "stream_up 1 wg2 && stream_up 2 wg1" 30 0.2; then pass "d  A-B back up on the stream $(( $(now_ms) - t0 )) ms after"
else fail "d  A-B back on the stream within 30 s: A $(link_field 1 wg2 'l.get("probe"), l.get("state")')"; fi

# e: B static on A-B: answers only
lab_cost 2 1 10
kb_conf 2 --cost-set interval=0.1 --cost-set down_after=3 --cost-set probe_timeout=0.5
kb_ctl 2 reload >/dev/null
answering() { [[ $(link_field 2 wg1 'l.get("probe")') == answer ]]; }
samples() { link_field 1 wg2 'l["stream"]["rtt_samples"]'; }
if wait_for answering 10 0.2; then
    s0=$(samples); p0=$(packets 1 wg2); sleep "$COUNT_S"; s1=$(samples); p1=$(packets 1 wg2)
    rate=$(( (p1 - p0) * 10 / COUNT_S ))
    if [[ $(link_field 1 wg2 'l.get("probe"), l.get("state")') == "('stream', 'up')" ]] && (( s1 - s0 >= 9 * COUNT_S && rate <= 240 )); then
        pass "e  B static answers A's stream: A up, $(( (s1 - s0) / COUNT_S )) samples/s, $((rate / 10)).$((rate % 10)) packets/s on the tunnel"
    else fail "e  B static answers A's stream: A $(link_field 1 wg2 'l.get("probe"), l.get("state")'), $(( s1 - s0 )) samples in $COUNT_S s, $((rate / 10)).$((rate % 10)) packets/s"; fi
else fail "e  B's wg1 answering after the reload: $(link_field 2 wg1 'l.get("probe")')"; fi

if lab_pid kittbgpd-1 >/dev/null && lab_pid kittbgpd-2 >/dev/null; then pass "z  both daemons running"
else fail "z  a daemon died"; fi
echo "$PASSED passed, $FAILED failed"
((FAILED == 0))
