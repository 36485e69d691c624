#!/usr/bin/env bash
# capture_bird.sh -- record golden BGP messages from a real BIRD 2 into tests/golden/.
#
# Usage: interop/capture_bird.sh [OUTDIR]        (root; default OUTDIR = tests/golden)
#
# Two network namespaces joined by one veth pair:
#   ${P}b  "node 1": BIRD 2 with the fabric's config (as lab.sh generates it), the veth end
#          named wg2 with fe80::1:2/64; loopbacks 10.255.0.1, 10.255.0.11, fd00:255::1,
#          fd00:255::11 on lo (two per family, so one can be withdrawn)
#   ${P}s  "node 2": interop/capture_bird.py listening on [fe80::2:1%wg1]:1790; BIRD connects
# A veth stands in for the WireGuard tunnel: for the bytes BIRD sends, only the
# link-local addressing matters, and that is the same (fe80::i:j/64 on wg<j>).
# Everything is torn down on exit (trap): BIRD's PID (checked), the namespaces, the state dir.
# Environment: KB_LAB_PREFIX (namespace prefix, default kbcap<PID>), PYTHON (default /usr/bin/python3),
# KB_CAPTURE_SEQ (directory that keeps every received message in arrival order; default: discarded),
# KB_CAPTURE_ADD_PATHS=1 (BIRD sends with `add paths tx`, the speaker announces ADD-PATH receive:
# RFC 7911 path ids in every prefix list; e.g. OUTDIR tests/golden/add_paths).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=${1:-$HERE/../tests/golden}
P=${KB_LAB_PREFIX:-kbcap$$}
NSB="${P}b" NSS="${P}s"
PYTHON=${PYTHON:-/usr/bin/python3}
ASN=4242421945
STATE=$(mktemp -d "/tmp/$P.XXXXXX")
NAMESPACES=()
ADD_PATHS=${KB_CAPTURE_ADD_PATHS:-0}
AP_CHANNEL="" AP_ARG=()
if [[ $ADD_PATHS == 1 ]]; then AP_CHANNEL="add paths tx;"; AP_ARG=(--add-paths); fi
spid=""

[[ $(id -u) == 0 ]] || { echo "capture_bird.sh: must run as root" >&2; exit 1; }
for c in bird birdc ip nsenter; do command -v "$c" >/dev/null || { echo "missing $c" >&2; exit 1; }; done

# shellcheck disable=SC2317  # invoked by the trap
cleanup() {
    local rc=$? pid
    set +e
    if [[ -s $STATE/bird.pid ]]; then
        pid=$(cat "$STATE/bird.pid")
        # only our BIRD: right command line and right network namespace
        if [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF "$STATE/bird.conf" \
           && [[ $(stat -L -c %i "/proc/$pid/ns/net") == $(stat -L -c %i "/run/netns/$NSB") ]]; then
            kill -TERM "$pid"
            # a zombie counts as gone (the container's init reaps late)
            for _ in $(seq 50); do [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || echo Z) == Z ]] && break; sleep 0.1; done
            [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || echo Z) == Z ]] || kill -KILL "$pid"
        fi
    fi
    [[ -n ${spid:-} ]] && kill -TERM "$spid" 2>/dev/null   # the capture speaker, our own child
    for ns in "${NAMESPACES[@]}"; do ip netns del "$ns" 2>/dev/null; done
    rm -rf "$STATE"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for ns in "$NSB" "$NSS"; do
    [[ ! -e /run/netns/$ns ]] || { echo "netns $ns exists" >&2; exit 1; }
    ip netns add "$ns"; NAMESPACES+=("$ns")
    ip -n "$ns" link set lo up
done
ip -n "$NSB" addr add 10.255.0.1/32 dev lo
ip -n "$NSB" addr add 10.255.0.11/32 dev lo
ip -n "$NSB" addr add fd00:255::1/128 dev lo
ip -n "$NSB" addr add fd00:255::11/128 dev lo
ip link add wg2 netns "$NSB" type veth peer name wg1 netns "$NSS"
# only the planned link-local on the link (shared/README pitfall 3); nodad: usable at once
for x in "$NSB wg2 fe80::1:2" "$NSS wg1 fe80::2:1"; do
    read -r ns ifc addr <<< "$x"
    ip -n "$ns" link set "$ifc" addrgenmode none
    ip -n "$ns" addr add "$addr/64" dev "$ifc" nodad
    ip -n "$ns" link set "$ifc" up
done

cat > "$STATE/bird.conf" <<EOF
# capture_bird.sh: node 1 of the fabric, one session (wg2) to the capture speaker
log "$STATE/bird.log" all;
router id 10.255.0.1;

function lo4() { return net ~ [ 10.255.0.0/16{32,32} ]; }
function lo6() { return net ~ [ fd00:255::/48{128,128} ]; }
function add_cost(int c) {
  if defined(bgp_med) then bgp_med = bgp_med + c; else bgp_med = c;
}

protocol device { scan time 10; }

protocol direct loopback {
  ipv4 { import where lo4(); };
  ipv6 { import where lo6(); };
  interface "lo";
}

protocol kernel kernel4 {
  scan time 20;
  ipv4 { import none; export filter { if source = RTS_BGP then { krt_prefsrc = 10.255.0.1; accept; } reject; }; };
}
protocol kernel kernel6 {
  scan time 20;
  ipv6 { import none; export filter { if source = RTS_BGP then { krt_prefsrc = fd00:255::1; accept; } reject; }; };
}

template bgp fabric {
  local port 1790 as $ASN;
  direct;
  rr client;
  path metric off;
  connect delay time 1;
  connect retry time 5;
  error wait time 1, 30;
}

protocol bgp wg2 from fabric {
  neighbor fe80::2:1 port 1790 as $ASN;
  interface "wg2";
  ipv4 {
    extended next hop on;
    next hop self;
    $AP_CHANNEL
    import keep filtered;
    import limit 1000 action block;
    import filter { if !lo4() then reject; add_cost(10); accept; };
    export where lo4();
  };
  ipv6 {
    next hop self;
    $AP_CHANNEL
    import keep filtered;
    import limit 1000 action block;
    import filter { if !lo6() then reject; add_cost(10); accept; };
    export where lo6();
  };
}
EOF
bird -p -c "$STATE/bird.conf"
mkdir -p "$OUT"
cp "$STATE/bird.conf" "$OUT/bird_capture.conf.txt"
sed -i "s|$STATE|/tmp/STATE|" "$OUT/bird_capture.conf.txt"

# Start the listener before BIRD so BIRD's first connect (after 'connect delay time 1') succeeds.
ip netns exec "$NSS" "$PYTHON" "$HERE/capture_bird.py" capture \
    --listen 'fe80::2:1%wg1' --port 1790 --out "$OUT" --birdc-sock "$STATE/bird.ctl" --proto wg2 \
    --shutdown-msg maintenance --bird-log "$STATE/bird.log" --seq-dir "${KB_CAPTURE_SEQ:-$STATE/seq}" "${AP_ARG[@]}" \
    --withdraw-cmd "ip -n $NSB addr del 10.255.0.11/32 dev lo && ip -n $NSB addr del fd00:255::11/128 dev lo" &
spid=$!
sleep 0.3
# BIRD forks; -P gives the daemon's PID (shared/README pitfall 6)
ip netns exec "$NSB" bird -c "$STATE/bird.conf" -s "$STATE/bird.ctl" -P "$STATE/bird.pid"
rc=0
wait "$spid" || rc=$?
{
    echo "# $(bird --version 2>&1)"
    echo "# BIRD log of the capture run (timestamps are the capture host's)"
    sed "s|$STATE|/tmp/STATE|g" "$STATE/bird.log"
} > "$OUT/bird_capture.log.txt"
"$PYTHON" "$HERE/capture_bird.py" decode "${AP_ARG[@]}" "$OUT"/bird_*.bin > "$OUT/decoded.txt"
echo "capture finished (rc=$rc); files in $OUT; decoded dump in $OUT/decoded.txt"
exit "$rc"
