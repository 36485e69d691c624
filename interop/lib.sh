# shellcheck shell=bash disable=SC2016
# (SC2016: single-quoted $... are meant for the inner bash -c / awk)
# interop/lib.sh -- network-namespace lab for kittbgpd <-> BIRD 2 interop tests.
# Sourced by interop/test_bird_pair.sh, interop/demo.sh and other lab scripts; callers
# run with `set -euo pipefail` and as root.
#
#   source interop/lib.sh
#   lab_init                      # state dir, registries, EXIT/INT/TERM trap that calls lab_down
#   lab_up 2 [line|ring] [--leak] [--link I-J] [--relay] [--kb-tunnels I,J] # N nodes, wireguard-go tunnels, loopbacks
#                                 # --kb-tunnels: those nodes get only the underlay; kittbgpd builds
#                                 # their tunnels from [wireguard] in its config (kb_conf writes it)
#   lab_delay 1 2 40 [JITTER [LOSS]]; lab_blackhole 1 2; lab_unblackhole 1 2   # --relay labs only
#   lab_bird_conf 1 [--hold 9 --keepalive 3] [--leak]; lab_bird_start 1
#   kb_conf 2 [--hold 9 --keepalive 3];  kb_start 2 /path/to/kittbgpd
#   birdc_n 1 show protocols;  kb_show 2 neighbors --json
#   wait_for "bird_established 1 wg2" 20
#   lab_down                      # also run by the trap
#
# Layout (i, j = node numbers; decimal digits everywhere):
#   netns            ${KB_LAB_PREFIX}n<i>, hub ${KB_LAB_PREFIX}hub
#   loopbacks (lo)   10.255.0.<i>/32, fd00:255::<i>/128; with --leak also 192.0.2.<i>/32 and
#                    2001:db8::<i>/128 (outside the loopback ranges: must never travel)
#   underlay         veth per node: "ul0" 172.31.<i>.2/24 in the node <-> "n<i>" 172.31.<i>.1/24
#                    in the hub.  Default (direct): the hub forwards (ip_forward=1), so WireGuard
#                    UDP goes node -> hub -> node directly.  lab_up --relay (or KB_LAB_RELAY=1): the
#                    hub does not forward; one userspace delay relay per link (interop/relay.py, in
#                    the hub) sits between the two endpoints: link #L (line number in
#                    $KB_LAB_STATE/links) listens on 172.31.<i>.1:40000+L and 172.31.<j>.1:40000+L,
#                    node i's wg<j> has the endpoint 172.31.<i>.1:40000+L.  Per link i-j (i < j as
#                    in the links file) a control file $KB_LAB_STATE/relay/<i>-<j>.ctl holds two
#                    lines "DELAY_MS JITTER_MS LOSS_PCT": i->j, then j->i (lab_delay writes it and
#                    sends the relay SIGHUP, so a change applies at once); log <i>-<j>.log there.
#                    Delay applies per direction (RTT = 2 x DELAY + ~1 ms), FIFO (jitter never
#                    reorders), LOSS 100 = blackhole.
#   tunnel           in node i towards node j: "wg<j>", fe80::<i>:<j>/64, UDP port 51000+<j>
#   BGP              TCP 1790 both sides; session/neighbor named "wg<j>", neighbor fe80::<j>:<i>
#   state            $KB_LAB_STATE (default /run/kblab/$KB_LAB_PREFIX): node<i>/ holds configs,
#                    logs, control sockets, wg keys; procs = PID registry; namespaces = netns registry
#
# Environment: KB_LAB_PREFIX (default kb<PID of the sourcing shell>: parallel labs do not clash),
#   KB_LAB_RELAY (1: lab_up --relay),
#   KB_LAB_STATE, KB_ASN (4242421945), KB_PORT (1790), KB_COST (10), KB_BGP_FAST (1: BIRD
#   connect delay 1 s / retry 5 s / error wait 1..30 s), KB_BIRD_DEBUG (BIRD "debug" classes
#   for the BGP template, default "states, events"; "" = none), KB_KEEP_STATE (1: keep logs on down).
#
# Pitfalls handled (see /work/shared/README.md "Pitfalls hit"):
#   1 wireguard-go daemonizes unless -f: run with -f so the recorded PID is the real one.
#   2 its UAPI socket /var/run/wireguard/<if>.sock is a filesystem path, not per netns: each node
#     gets a "holder" process owning a private mount namespace with its own tmpfs on
#     /run/wireguard; everything of node i runs via `nsenter -t HOLDER -m -n` (lab_exec).
#   3 TUN devices get a random link-local when set up: addrgenmode none, then the address nodad.
#   4 one handshake initiation per 5 s: keys+peers everywhere, then endpoints, then link up.
#   5 link-local needs the scope: BIRD `interface "wg<j>"`, kittbgpd `interface = "wg<j>"`.
#   6 BIRD forks: its PID comes from -P; own control socket and log file per node.
#   9 new namespaces have forwarding off: turned on (nodes are transit in a ring).

KB_LAB_PREFIX=${KB_LAB_PREFIX:-kb$$}
KB_LAB_STATE=${KB_LAB_STATE:-/run/kblab/$KB_LAB_PREFIX}
KB_ASN=${KB_ASN:-4242421945}
KB_PORT=${KB_PORT:-1790}
KB_COST=${KB_COST:-10}
KB_BGP_FAST=${KB_BGP_FAST:-1}
KB_BIRD_DEBUG=${KB_BIRD_DEBUG-states, events}
KB_INTEROP_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PYTHON=${PYTHON:-/usr/bin/python3}

lab_die() { echo "lib.sh: $*" >&2; exit 1; }

# lab_pick_bin SCRIPT [BIN]: the kittbgpd binary to test, as an absolute path:
# BIN if given, else the newer of target/release and target/debug; exits 2 with
# a message naming SCRIPT when there is none.
lab_pick_bin() {
    local script=$1 bin=${2:-} b root
    root=$(cd "$KB_INTEROP_DIR/.." && pwd)
    if [[ -z $bin ]]; then
        for b in "$root/target/release/kittbgpd" "$root/target/debug/kittbgpd"; do
            [[ -x $b ]] && { [[ -z $bin || $b -nt $bin ]] && bin=$b; }
        done
    fi
    [[ -n $bin && -x $bin ]] || { echo "$script: kittbgpd binary not found (${bin:-target/*/kittbgpd}); build it or pass its path" >&2; exit 2; }
    readlink -f "$bin"
}

# lab_args "$@": the arguments every kittbgpd-only lab takes: -h/--help (prints the script's
# header comment), [/path/to/kittbgpd]; sets BIN (lab_pick_bin) and requires root
lab_args() {
    local script arg bin=""
    script=$(basename "$0")
    for arg in "$@"; do
        case $arg in
            -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
            -*) echo "$script: unknown option $arg" >&2; exit 2 ;;
            *) bin=$arg ;;
        esac
    done
    BIN=$(lab_pick_bin "$script" "$bin")
    [[ $(id -u) == 0 ]] || lab_die "must run as root (network namespaces)"
}

# lab_checks: PASSED / FAILED counters and pass, fail, info, now_ms (epoch ms) for a lab's checks
lab_checks() {
    PASSED=0 FAILED=0
    pass() { PASSED=$((PASSED+1)); echo "PASS $*"; }
    fail() { FAILED=$((FAILED+1)); echo "FAIL $*"; }
    info() { echo "     $*"; }
    now_ms() { echo $(( ${EPOCHREALTIME/./} / 1000 )); }
}

_LAB_T0=${EPOCHREALTIME/./}
lab_ms() { echo $(( (${EPOCHREALTIME/./} - _LAB_T0) / 1000 )); }   # ms since the lib was sourced
lab_log() { local ms; ms=$(lab_ms); printf '[%3d.%03ds] %s\n' $((ms / 1000)) $((ms % 1000)) "$*" >&2; }

lab_ns() { echo "${KB_LAB_PREFIX}n$1"; }
lab_hub() { echo "${KB_LAB_PREFIX}hub"; }
lab_dir() { echo "$KB_LAB_STATE/node$1"; }
lab_holder() { cat "$(lab_dir "$1")/holder.pid"; }
# run CMD in node i: its network namespace and its private mount namespace (pitfall 2)
lab_exec() { local i=$1; shift; nsenter -t "$(lab_holder "$i")" -m -n -- "$@"; }
lab_peers() { cat "$(lab_dir "$1")/peers"; }     # node numbers adjacent to node i, one a line

# wait_for CMD TIMEOUT_S [INTERVAL_S]: eval CMD until it succeeds; sets WAITED_MS (until the
# successful CMD returned; an upper bound, off by at most INTERVAL_S plus one CMD run).
wait_for() {
    local cmd=$1 timeout=$2 interval=${3:-0.1} t0=${EPOCHREALTIME/./}
    while :; do
        if eval "$cmd" >/dev/null 2>&1; then WAITED_MS=$(( (${EPOCHREALTIME/./} - t0) / 1000 )); return 0; fi
        WAITED_MS=$(( (${EPOCHREALTIME/./} - t0) / 1000 ))
        ((WAITED_MS < timeout * 1000)) || return 1
        sleep "$interval"
    done
}

# ------------------------------------------------------------------ lifecycle

# lab_ensure_packages: apt-get install what the lab needs, only if something is missing.
# --no-install-recommends: wireguard-tools recommends a whole linux-image (shared/README "Packages").
lab_ensure_packages() {
    local missing=() p
    for p in bird2 wireguard-go wireguard-tools iproute2 iputils-ping; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    ((${#missing[@]} == 0)) && return 0
    echo "installing: ${missing[*]}" >&2
    apt-get update && apt-get install -y --no-install-recommends "${missing[@]}"
}

lab_init() {
    [[ $(id -u) == 0 ]] || lab_die "must run as root (network namespaces)"
    local c
    for c in ip nsenter unshare setsid wireguard-go wg bird birdc; do
        command -v "$c" >/dev/null || lab_die "missing $c (apt-get install --no-install-recommends bird2 wireguard-go wireguard-tools iproute2)"
    done
    [[ -c /dev/net/tun ]] || lab_die "/dev/net/tun missing"
    # may be called again after lab_down with another KB_LAB_STATE (one lab after another)
    [[ ! -e $KB_LAB_STATE ]] || lab_die "$KB_LAB_STATE exists (lab of prefix $KB_LAB_PREFIX already up?)"
    mkdir -p "$KB_LAB_STATE/pids"
    : > "$KB_LAB_STATE/procs"; : > "$KB_LAB_STATE/namespaces"
    # a failing or interrupted test must still clean up: only what this lab recorded
    trap '_lab_on_exit' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

_lab_on_exit() {
    local rc=$?
    set +e
    # optional hook of the sourcing script (summary, diagnostics); it must not `exit`
    # (that would skip lab_down); a non-zero return becomes the exit status if rc was 0
    if declare -F lab_exit_hook >/dev/null; then
        lab_exit_hook "$rc"
        local hrc=$?
        ((rc != 0)) || rc=$hrc
    fi
    lab_down >&2
    exit "$rc"
}

# lab_spawn NAME NETNS LOGFILE MATCH CMD...: start CMD detached (own session), record its PID.
# bash writes its own PID then execs CMD (nsenter/ip netns exec/unshare exec too, no fork), so
# the recorded PID is CMD's.  MATCH must be a substring of CMD's final /proc/PID/cmdline.
# NAME may be spawned again once its previous process is gone (a daemon restart): its record is
# updated in place (same position in procs, so lab_down's order stays), the old pid file removed.
lab_spawn() {
    local name=$1 netns=$2 logf=$3 match=$4; shift 4
    local pidfile="$KB_LAB_STATE/pids/$name.pid"
    if awk -v n="$name" '$1 == n { f = 1 } END { exit !f }' "$KB_LAB_STATE/procs"; then
        ! lab_pid "$name" >/dev/null 2>&1 || lab_die "$name is already running (pid $(lab_pid "$name"))"
        rm -f "$pidfile"
        awk -v n="$name" -v r="$name $pidfile $netns $match" '$1 == n { print r; next } { print }' \
            "$KB_LAB_STATE/procs" > "$KB_LAB_STATE/procs.new"
        mv "$KB_LAB_STATE/procs.new" "$KB_LAB_STATE/procs"
    else
        echo "$name $pidfile $netns $match" >> "$KB_LAB_STATE/procs"
    fi
    setsid -f bash -c 'echo $$ > "$0.tmp" && mv "$0.tmp" "$0" && exec "$@"' "$pidfile" "$@" \
        </dev/null >>"$logf" 2>&1
    local n=0
    until [[ -s $pidfile ]]; do
        sleep 0.01; n=$((n+1)); ((n < 500)) || lab_die "$name did not start (see $logf)"
    done
}

# _lab_alive PID: running (a zombie counts as gone: daemons here are reparented to the
# container's init, which may reap late; BIRD's zombie stayed ~2 s)
_lab_alive() { [[ -r /proc/$1/stat ]] && [[ $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) != Z ]]; }

# _lab_pid_ok PID NETNS MATCH: PID is alive, runs MATCH, and is in NETNS
_lab_pid_ok() {
    local pid=$1 netns=$2 match=$3 cmdl
    [[ $pid =~ ^[0-9]+$ ]] && _lab_alive "$pid" || return 1    # gone, or a zombie (empty cmdline)
    cmdl=$(tr '\0' ' ' < "/proc/$pid/cmdline")
    [[ $cmdl == *"$match"* ]] || { echo "lib.sh: pid $pid: cmdline '$cmdl' does not match '$match'" >&2; return 1; }
    if [[ -e /run/netns/$netns ]] && \
       [[ $(stat -L -c %i "/proc/$pid/ns/net" 2>/dev/null) != $(stat -L -c %i "/run/netns/$netns") ]]; then
        echo "lib.sh: pid $pid not in netns $netns" >&2; return 1
    fi
}

# _lab_group PGID NETNS: live members of process group PGID other than PGID itself, in NETNS
_lab_group() {
    local g=$1 netns=$2 m ino
    [[ $g =~ ^[0-9]+$ && -e /run/netns/$netns ]] || return 0
    ino=$(stat -L -c %i "/run/netns/$netns")
    for m in $(ps -eo pid=,pgid= | awk -v g="$g" '$2 == g && $1 != g {print $1}'); do
        _lab_alive "$m" && [[ $(stat -L -c %i "/proc/$m/ns/net" 2>/dev/null) == "$ino" ]] && echo "$m"
    done
    return 0
}

# lab_pid NAME: PID of a recorded, still-valid process (non-zero status if gone)
lab_pid() {
    local name pidfile netns match pid
    while read -r name pidfile netns match; do
        [[ $name == "$1" ]] || continue
        [[ -s $pidfile ]] || return 1
        pid=$(cat "$pidfile")
        _lab_pid_ok "$pid" "$netns" "$match" || return 1
        echo "$pid"; return 0
    done < "$KB_LAB_STATE/procs"
    return 1
}

# lab_kill NAME [SIGNAL] [WAIT_S]: signal one recorded process, wait until it is gone
# (SIGKILL after WAIT_S, default 5; then status 1).  Status 2: no such live process.
# Sets KILL_MS = time until it exited.
lab_kill() {
    local name=$1 sig=${2:-TERM} wait_s=${3:-5} pid t0=${EPOCHREALTIME/./}
    KILL_MS=0
    pid=$(lab_pid "$name") || return 2
    kill -"$sig" "$pid" 2>/dev/null || true
    while _lab_alive "$pid"; do
        KILL_MS=$(( (${EPOCHREALTIME/./} - t0) / 1000 ))
        if ((KILL_MS > wait_s * 1000)); then kill -KILL "$pid" 2>/dev/null || true; return 1; fi
        sleep 0.02
    done
    KILL_MS=$(( (${EPOCHREALTIME/./} - t0) / 1000 ))
}

# lab_down: kill recorded PIDs (checked), delete recorded namespaces, remove the state dir
lab_down() {
    [[ -d $KB_LAB_STATE ]] || return 0
    local name pidfile netns match pid pids=() k=0 alive nsn n=0
    if [[ -f $KB_LAB_STATE/procs ]]; then
        # reverse order: daemons before wireguard-go before holders
        while read -r name pidfile netns match; do
            [[ -s $pidfile ]] || continue
            pid=$(cat "$pidfile")
            if _lab_pid_ok "$pid" "$netns" "$match"; then
                kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
            fi
            # children it left behind: lab_spawn made it a session/group leader, so they are
            # in process group $pid (a PGID is not reused while the group exists); only those
            # inside the recorded netns
            for m in $(_lab_group "$pid" "$netns"); do kill -TERM "$m" 2>/dev/null && pids+=("$m"); done
        done < <(tac "$KB_LAB_STATE/procs")
    fi
    while ((${#pids[@]})); do
        alive=()
        for pid in "${pids[@]}"; do _lab_alive "$pid" && alive+=("$pid"); done
        ((${#alive[@]} == 0)) && break
        if ((k++ >= 50)); then echo "lib.sh: SIGKILL ${alive[*]}"; kill -KILL "${alive[@]}" 2>/dev/null || true; break; fi
        sleep 0.1
    done
    if [[ -f $KB_LAB_STATE/namespaces ]]; then
        # processes the lab did not start itself but that live in its namespaces (wireguard-go
        # started by kittbgpd for its own tunnels, in a session of its own): a process keeps
        # its namespace alive, so they would never go away
        pids=()
        while read -r nsn; do
            [[ -e /run/netns/$nsn ]] || continue
            for pid in $(ip netns pids "$nsn" 2>/dev/null); do kill -TERM "$pid" 2>/dev/null && pids+=("$pid"); done
        done < "$KB_LAB_STATE/namespaces"
        k=0
        while ((${#pids[@]})); do
            alive=()
            for pid in "${pids[@]}"; do _lab_alive "$pid" && alive+=("$pid"); done
            ((${#alive[@]} == 0)) && break
            if ((k++ >= 30)); then kill -KILL "${alive[@]}" 2>/dev/null || true; break; fi
            sleep 0.1
        done
        while read -r nsn; do
            [[ -e /run/netns/$nsn ]] && ip netns del "$nsn" && n=$((n+1))
        done < <(tac "$KB_LAB_STATE/namespaces")
    fi
    echo "lab down: stopped ${#pids[@]} processes, deleted $n namespaces ($KB_LAB_PREFIX)"
    if [[ ${KB_KEEP_STATE:-0} == 1 ]]; then
        echo "state kept in $KB_LAB_STATE"
        : > "$KB_LAB_STATE/procs"; : > "$KB_LAB_STATE/namespaces"   # never act on them twice
    else
        rm -rf "$KB_LAB_STATE"
        # parent dirs only if empty (another lab, or kept state, may be there); under `set -e` a
        # failing last command of an && list would end the caller: hence the `|| true`
        { rmdir "$(dirname "$KB_LAB_STATE")" && rmdir "$(dirname "$(dirname "$KB_LAB_STATE")")"; } 2>/dev/null || true
    fi
}

# ------------------------------------------------------------------ topology

_lab_links() {  # _lab_links N TOPO [I-J...] -> "L i j" per link (extra links I-J after the topology's)
    local n=$1 topo=$2 i L=0 e; shift 2
    for ((i = 1; i < n; i++)); do L=$((L+1)); echo "$L $i $((i+1))"; done
    if [[ $topo == ring && $n -ge 3 ]]; then L=$((L+1)); echo "$L $n 1"; fi
    for e in "$@"; do L=$((L+1)); echo "$L ${e%-*} ${e#*-}"; done
}

# _lab_wg_endpoint I J L: endpoint node i uses to reach node j's wg<i> over link #L: direct over
# the hub, or (--relay) the relay's socket on node i's side of the hub
_lab_wg_endpoint() {
    local i=$1 j=$2 L=$3
    if [[ -f $KB_LAB_STATE/relay/mode ]]; then echo "172.31.$i.1:$((40000 + L))"
    else echo "172.31.$j.2:$((51000 + i))"; fi
}
lab_relay_mode() { [[ -f $KB_LAB_STATE/relay/mode ]]; }
# lab_kb_tunnels I: node i's tunnels are built by its kittbgpd (lab_up --kb-tunnels)
lab_kb_tunnels() { grep -qx "$1" "$KB_LAB_STATE/kb_tunnels" 2>/dev/null; }
# _lab_link_no I J: the number L of link i-j (either order) in the links file
_lab_link_no() { awk -v i="$1" -v j="$2" '($2 == i && $3 == j) || ($2 == j && $3 == i) { print $1; exit }' "$KB_LAB_STATE/links"; }

# lab_up N [line|ring] [--leak] [--link I-J ...] [--relay]
#   --link I-J: one more tunnel between nodes i and j besides the topology's (a chord); repeatable
#   --relay: every link through a delay relay in the hub (no delay until lab_delay); also
#   KB_LAB_RELAY=1
lab_up() {
    local n=${1:-}; shift || true
    local topo=line leak=0 a i j L nsn extra=() relay=${KB_LAB_RELAY:-0} kbwg=${KB_LAB_KB_TUNNELS:-}
    while (($#)); do
        case $1 in
            line|ring) topo=$1 ;;
            --leak) leak=1 ;;
            --relay) relay=1 ;;
            --link) extra+=("${2:-}"); shift ;;
            --kb-tunnels) kbwg=${2:-}; shift ;;
            *) lab_die "lab_up: unknown option $1" ;;
        esac
        shift
    done
    [[ $n =~ ^[0-9]+$ && $n -ge 2 && $n -le 99 ]] || lab_die "usage: lab_up N [line|ring] [--leak] [--link I-J ...] (2 <= N <= 99)"
    for a in "${extra[@]}"; do
        if ! [[ $a =~ ^([0-9]+)-([0-9]+)$ ]] || ((BASH_REMATCH[1] == BASH_REMATCH[2])) \
            || ((BASH_REMATCH[1] < 1 || BASH_REMATCH[1] > n || BASH_REMATCH[2] < 1 || BASH_REMATCH[2] > n)); then
            lab_die "lab_up: --link '$a': want I-J, two different nodes in 1..$n"
        fi
        _lab_links "$n" "$topo" | awk -v i="${BASH_REMATCH[1]}" -v j="${BASH_REMATCH[2]}" \
            '($2 == i && $3 == j) || ($2 == j && $3 == i) { exit 1 }' || lab_die "lab_up: --link $a: that link exists already"
    done
    [[ -f $KB_LAB_STATE/procs ]] || lab_die "lab_init first"
    for i in $(seq 1 "$n") hub; do
        if [[ $i == hub ]]; then nsn=$(lab_hub); else nsn=$(lab_ns "$i"); fi
        [[ ! -e /run/netns/$nsn ]] || lab_die "netns $nsn already exists"
    done
    echo "$n $topo" > "$KB_LAB_STATE/topology"
    # nodes whose tunnels kittbgpd builds itself (step 6): one number a line
    tr ', ' '\n\n' <<< "$kbwg" | grep -E '^[0-9]+$' > "$KB_LAB_STATE/kb_tunnels" || true
    mkdir -p /run/wireguard   # mount point for every node's private tmpfs
    lab_log "lab_up: $n nodes ($topo${extra[*]:+, plus ${extra[*]}}$( ((relay)) && echo ", through delay relays")), prefix $KB_LAB_PREFIX"
    if ((relay)); then
        [[ -r $KB_INTEROP_DIR/relay.py && -x $PYTHON ]] || lab_die "lab_up --relay: needs $KB_INTEROP_DIR/relay.py and $PYTHON"
        mkdir -p "$KB_LAB_STATE/relay"; : > "$KB_LAB_STATE/relay/mode"
    fi

    nsn=$(lab_hub)
    ip netns add "$nsn"; echo "$nsn" >> "$KB_LAB_STATE/namespaces"
    ip -n "$nsn" link set lo up
    # direct underlay: the hub routes node to node; relay mode: only the relays connect nodes
    ip netns exec "$nsn" sysctl -qw net.ipv4.ip_forward=$((relay ? 0 : 1))
    for i in $(seq 1 "$n"); do
        nsn=$(lab_ns "$i"); mkdir -p "$(lab_dir "$i")"; : > "$(lab_dir "$i")/peers"
        ip netns add "$nsn"; echo "$nsn" >> "$KB_LAB_STATE/namespaces"
        ip -n "$nsn" link set lo up
        ip -n "$nsn" addr add "10.255.0.$i/32" dev lo
        ip -n "$nsn" addr add "fd00:255::$i/128" dev lo
        if ((leak)); then
            ip -n "$nsn" addr add "192.0.2.$i/32" dev lo
            ip -n "$nsn" addr add "2001:db8::$i/128" dev lo
        fi
        ip netns exec "$nsn" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1   # pitfall 9
        ip link add ul0 netns "$nsn" type veth peer name "n$i" netns "$(lab_hub)"
        ip -n "$nsn" addr add "172.31.$i.2/24" dev ul0
        ip -n "$(lab_hub)" addr add "172.31.$i.1/24" dev "n$i"
        ip -n "$nsn" link set ul0 up
        ip -n "$(lab_hub)" link set "n$i" up
        ip -n "$nsn" route add 172.31.0.0/16 via "172.31.$i.1"
        # holder: owns a private mount namespace with its own tmpfs on /run/wireguard (pitfall 2)
        lab_spawn "holder-$i" "$nsn" "$(lab_dir "$i")/holder.log" "kbhold-$nsn" \
            ip netns exec "$nsn" unshare -m --propagation private \
            bash -c 'mount -t tmpfs -o size=1m,mode=0755 kbwg /run/wireguard && exec -a "kbhold-$0" sleep infinity' "$nsn"
        ln -sf "$KB_LAB_STATE/pids/holder-$i.pid" "$(lab_dir "$i")/holder.pid"
        (umask 077; wg genkey > "$(lab_dir "$i")/wg.key")
        wg pubkey < "$(lab_dir "$i")/wg.key" > "$(lab_dir "$i")/wg.pub"
    done
    for i in $(seq 1 "$n"); do
        wait_for "lab_exec $i mountpoint -q /run/wireguard" 5 0.01 || lab_die "holder of node $i not ready"
    done

    _lab_links "$n" "$topo" "${extra[@]}" > "$KB_LAB_STATE/links"
    local me peer
    while read -r L i j; do
        echo "$j" >> "$(lab_dir "$i")/peers"; echo "$i" >> "$(lab_dir "$j")/peers"
        echo "$KB_COST" > "$(lab_dir "$i")/cost.$j"; echo "$KB_COST" > "$(lab_dir "$j")/cost.$i"
        for a in "$i $j" "$j $i"; do
            read -r me peer <<< "$a"
            ! lab_kb_tunnels "$me" || continue
            # -f: stay in the foreground so the recorded PID is wireguard-go's (pitfall 1)
            lab_spawn "wg-$me-$peer" "$(lab_ns "$me")" "$(lab_dir "$me")/wg$peer.log" "wireguard-go -f wg$peer" \
                env LOG_LEVEL=error nsenter -t "$(lab_holder "$me")" -m -n -- wireguard-go -f "wg$peer"
        done
    done < "$KB_LAB_STATE/links"
    if ((relay)); then
        while read -r L i j; do _lab_relay_start "$L" "$i" "$j"; done < "$KB_LAB_STATE/links"
        while read -r L i j; do
            wait_for "grep -q ' up\$' '$KB_LAB_STATE/relay/$i-$j.log'" 10 0.02 \
                || lab_die "relay of link $i-$j did not come up (see $KB_LAB_STATE/relay/$i-$j.log)"
        done < "$KB_LAB_STATE/links"
    fi

    # pitfall 4: (1) keys + peer everywhere, (2) endpoints, (3) addresses and link up
    while read -r L i j; do
        for a in "$i $j" "$j $i"; do
            read -r me peer <<< "$a"
            ! lab_kb_tunnels "$me" || continue
            wait_for "lab_exec $me test -S /run/wireguard/wg$peer.sock" 10 0.01 \
                || lab_die "wireguard-go wg$peer in node $me did not come up"
            lab_exec "$me" wg set "wg$peer" private-key "$(lab_dir "$me")/wg.key" listen-port $((51000 + peer)) \
                peer "$(cat "$(lab_dir "$peer")/wg.pub")" allowed-ips 0.0.0.0/0,::/0
        done
    done < "$KB_LAB_STATE/links"
    while read -r L i j; do
        for a in "$i $j" "$j $i"; do
            read -r me peer <<< "$a"
            ! lab_kb_tunnels "$me" || continue
            lab_exec "$me" wg set "wg$peer" peer "$(cat "$(lab_dir "$peer")/wg.pub")" \
                persistent-keepalive 10 endpoint "$(_lab_wg_endpoint "$me" "$peer" "$L")"
        done
    done < "$KB_LAB_STATE/links"
    while read -r L i j; do
        for a in "$i $j" "$j $i"; do
            read -r me peer <<< "$a"
            ! lab_kb_tunnels "$me" || continue
            ip -n "$(lab_ns "$me")" link set "wg$peer" addrgenmode none                # pitfall 3
            ip -n "$(lab_ns "$me")" addr add "fe80::$me:$peer/64" dev "wg$peer" nodad
            ip -n "$(lab_ns "$me")" link set "wg$peer" up
        done
    done < "$KB_LAB_STATE/links"
    lab_log "lab_up: done ($(wc -l < "$KB_LAB_STATE/links") links)"
}

# ------------------------------------------------------------------ delay relay (lab_up --relay)

# _lab_relay_start L I J: the relay of link #L between nodes i and j, in the hub (side A faces
# node i, side B node j), recorded as relay-<i>-<j>; no delay until lab_delay
_lab_relay_start() {
    local L=$1 i=$2 j=$3 r="$KB_LAB_STATE/relay"
    printf '0 0 0\n0 0 0\n' > "$r/$i-$j.ctl"
    lab_spawn "relay-$i-$j" "$(lab_hub)" "$r/$i-$j.log" "relay.py --name link-$i-$j" \
        ip netns exec "$(lab_hub)" "$PYTHON" "$KB_INTEROP_DIR/relay.py" --name "link-$i-$j" \
        --a "172.31.$i.1:$((40000 + L))" --a-peer "172.31.$i.2:$((51000 + j))" \
        --b "172.31.$j.1:$((40000 + L))" --b-peer "172.31.$j.2:$((51000 + i))" \
        --ctl "$r/$i-$j.ctl"
}

# _lab_relay_link I J: "A B" = the link's nodes in the order of the links file (relay sides A, B);
# status 1 if there is no link i-j
_lab_relay_link() {
    awk -v i="$1" -v j="$2" '($2 == i && $3 == j) || ($2 == j && $3 == i) { print $2, $3; f = 1; exit } END { exit !f }' \
        "$KB_LAB_STATE/links"
}

# _lab_relay_set I J LINE_I_TO_J LINE_J_TO_I: write link i-j's control file (lines in the file's
# order) and make the relay read it at once (SIGHUP; it polls every 100 ms anyway)
_lab_relay_set() {
    local i=$1 j=$2 fwd=$3 rev=$4 a b f pid
    lab_relay_mode || lab_die "lab_delay: this lab has no delay relays (lab_up --relay)"
    read -r a b <<< "$(_lab_relay_link "$i" "$j")"
    [[ -n $a ]] || lab_die "lab_delay: no link $i-$j"
    f="$KB_LAB_STATE/relay/$a-$b.ctl"
    if [[ $a == "$i" ]]; then printf '%s\n%s\n' "$fwd" "$rev" > "$f.new"
    else printf '%s\n%s\n' "$rev" "$fwd" > "$f.new"; fi
    mv "$f.new" "$f"
    if pid=$(lab_pid "relay-$a-$b"); then kill -HUP "$pid"; fi
}

# lab_relay_params I J: the current "DELAY JITTER LOSS" of direction i -> j
lab_relay_params() {
    local a b f
    read -r a b <<< "$(_lab_relay_link "$1" "$2")"
    [[ -n $a ]] || lab_die "lab_relay_params: no link $1-$2"
    f="$KB_LAB_STATE/relay/$a-$b.ctl"
    if [[ $a == "$1" ]]; then sed -n 1p "$f"; else sed -n 2p "$f"; fi
}

_lab_relay_args() {  # validate MS [JITTER [LOSS]] -> "MS JITTER LOSS"
    local ms=${1:-} jit=${2:-0} loss=${3:-0} x
    for x in "$ms" "$jit" "$loss"; do
        [[ $x =~ ^[0-9]+(\.[0-9]+)?$ ]] || lab_die "lab_delay: '$x' is not a number (want MS [JITTER_MS [LOSS_PCT]])"
    done
    echo "$ms $jit $loss"
}

# lab_delay I J MS [JITTER_MS [LOSS_PCT]]: one-way delay (+/- jitter, loss) on link i-j, both
# directions (RTT ~ 2 x MS); takes effect at once
lab_delay() {
    local p; p=$(_lab_relay_args "${@:3}")
    _lab_relay_set "$1" "$2" "$p" "$p"
}
# lab_delay_oneway I J MS [JITTER_MS [LOSS_PCT]]: the same for direction i -> j only
lab_delay_oneway() {
    local p; p=$(_lab_relay_args "${@:3}")
    _lab_relay_set "$1" "$2" "$p" "$(lab_relay_params "$2" "$1")"
}
# lab_blackhole I J: 100 % loss on link i-j, both directions (delay and jitter kept for
# lab_unblackhole); the tunnel stays up on both ends, nothing gets through
lab_blackhole() {
    local f r d jt
    read -r d jt _ <<< "$(lab_relay_params "$1" "$2")"; f="$d $jt 100"
    read -r d jt _ <<< "$(lab_relay_params "$2" "$1")"; r="$d $jt 100"
    _lab_relay_set "$1" "$2" "$f" "$r"
}
# lab_unblackhole I J: loss back to 0 on link i-j (delay and jitter as before)
lab_unblackhole() {
    local f r d jt
    read -r d jt _ <<< "$(lab_relay_params "$1" "$2")"; f="$d $jt 0"
    read -r d jt _ <<< "$(lab_relay_params "$2" "$1")"; r="$d $jt 0"
    _lab_relay_set "$1" "$2" "$f" "$r"
}

# lab_nh I PREFIX: node i's kernel next hop for PREFIX, "fe80::x:y%wgN" ("-" if no route);
# one `ip route show`, cheap enough to poll every 50 ms
lab_nh() {
    local fam=-4; [[ $2 == *:* ]] && fam=-6
    ip -n "$(lab_ns "$1")" "$fam" route show "$2" 2>/dev/null | awk '
        { for (k = 1; k < NF; k++) { if ($k == "via") { v = $(k + 1); if (v == "inet6") v = $(k + 2) } if ($k == "dev") d = $(k + 1) } }
        END { print (v == "" ? "-" : v "%" d) }'
}
# lab_wait_nh I PREFIX WANT TIMEOUT_S T0_MS: poll every 50 ms until node i's next hop for PREFIX
# is WANT; prints the ms from T0_MS (epoch ms) until it was seen, -1 (status 1) on timeout
lab_wait_nh() {
    local i=$1 p=$2 want=$3 timeout=$4 t0=$5 t
    while :; do
        t=$(( ${EPOCHREALTIME/./} / 1000 - t0 ))
        [[ $(lab_nh "$i" "$p") == "$want" ]] && { echo "$t"; return 0; }
        ((t < timeout * 1000)) || { echo -1; return 1; }
        sleep 0.05
    done
}

# lab_link_down I J / lab_link_up I J: `ip link set wg<j> down|up` in node i (one side of the link
# only).  Down flushes the interface's IPv6 addresses (keep_addr_on_down=0) and the kernel's routes
# via it; up puts fe80::<i>:<j>/64 back (nodad, pitfall 3) before the link comes up; wireguard-go
# re-binds its UDP port and handshakes again on the next packet.
lab_link_down() { ip -n "$(lab_ns "$1")" link set "wg$2" down; }
lab_link_up() {
    local nsn; nsn=$(lab_ns "$1")
    ip -n "$nsn" -6 addr show dev "wg$2" | grep -q "fe80::$1:$2/64" \
        || ip -n "$nsn" addr add "fe80::$1:$2/64" dev "wg$2" nodad
    ip -n "$nsn" link set "wg$2" up
}

# lab_ping_ll I J: one ping over the tunnel from node i to node j's link-local
lab_ping_ll() { ip netns exec "$(lab_ns "$1")" ping -6 -c1 -W1 -q "fe80::$2:$1%wg$2" >/dev/null 2>&1; }

# ------------------------------------------------------------------ BIRD

# lab_bird_conf I [--hold S] [--keepalive S] [--leak] [--gr] [--multihop J[:HOPS] ...] [--mh-gtsm]
#   writes node i's BIRD config: the fabric's (shared/lab/bird-node1.conf.example), one
#   "protocol bgp wg<j>" per adjacent node.  --hold/--keepalive set "hold time"/"keepalive
#   time" in the BGP template.  --leak: originate 192.0.2.<i>/32 and 2001:db8::<i>/128 (static)
#   and deliberately let them through the export filter: a peer must reject them.
#   --gr: graceful restart (RFC 4724): "graceful restart on" in the BGP template, the kernel
#   protocols keep their routes over a restart ("persist", "graceful restart"; start with -R).
#   --multihop J[:HOPS]: "protocol bgp mh<J>", an IPv4 multihop session between the loopbacks
#   10.255.0.<i> (source address) and 10.255.0.<J>, "multihop HOPS" (default 2), carrying no
#   routes (import none, export none: what travels on it is the overlay's business); repeatable.
#   --mh-gtsm: "ttl security on" on those: BIRD then takes only packets that arrive with
#   TTL >= 256 - HOPS, i.e. sent with TTL 255 (a check that the peer's hop limit is applied).
#   --overlay RANGE4: the multihop sessions carry the IPv4 overlay (prefixes inside RANGE4) instead
#   of nothing: originated from the addresses on lo inside RANGE4 ("protocol direct overlay",
#   ORIGIN IGP), next hop self (our loopback, the session's source), received ones resolved over
#   the underlay ("gateway recursive; igp table master4"), installed by the kernel protocols; the
#   link sessions also copy the loopback's MED (the underlay cost) into igp_metric, which BIRD
#   compares between overlay paths (its "igp metric" step: nearest exit).
#   --rr-clients "J ...": on those multihop sessions "rr client" (a reflector); a reflector's
#   multihop sessions all have "next hop keep" (clients and other reflectors: the originator's
#   loopback stays the next hop; "next hop self" there would make the reflector every exit).
#   --add-paths: ADD-PATH (RFC 7911) on the multihop sessions: "add paths tx" towards rr clients,
#   "add paths on" (both) from a reflector to a non-client (another reflector), "add paths rx"
#   on a client's.
#   --bfd: BFD (RFC 5880/5881) with every link neighbor: "bfd on" in the BGP template and a
#   "protocol bfd" on the tunnels with interval $KB_BFD_INTERVAL_MS ms, multiplier $KB_BFD_MULT
#   (kb_conf --bfd writes the same timers for kittbgpd).
KB_BFD_INTERVAL_MS=${KB_BFD_INTERVAL_MS:-100}
KB_BFD_MULT=${KB_BFD_MULT:-3}
lab_bird_conf() {
    local i=$1; shift
    local hold="" ka="" leak=0 gr=0 d j cost mh=() mhgtsm=0 hops ov="" rrc=" " ap=0 client nh apx bfd=0
    while (($#)); do
        case $1 in
            --hold) hold=$2; shift 2 ;;
            --keepalive) ka=$2; shift 2 ;;
            --leak) leak=1; shift ;;
            --gr) gr=1; shift ;;
            --multihop)
                [[ ${2:-} =~ ^[0-9]+(:[0-9]+)?$ ]] || lab_die "lab_bird_conf: --multihop '${2:-}': want J[:HOPS]"
                mh+=("$2"); shift 2 ;;
            --mh-gtsm) mhgtsm=1; shift ;;
            --overlay) ov=$2; shift 2 ;;
            --rr-clients) rrc+="$2 "; shift 2 ;;
            --add-paths) ap=1; shift ;;
            --bfd) bfd=1; shift ;;
            *) lab_die "lab_bird_conf: unknown option $1" ;;
        esac
    done
    d=$(lab_dir "$i")
    local exp4="lo4()" exp6="lo6()"
    if ((leak)); then
        exp4="lo4() || net = 192.0.2.$i/32"; exp6="lo6() || net = 2001:db8::$i/128"
    fi
    {
        cat <<EOF
# generated by interop/lib.sh for node $i ($(lab_ns "$i"))
log "$d/bird.log" all;
router id 10.255.0.$i;

function lo4() { return net ~ [ 10.255.0.0/16{32,32} ]; }
function lo6() { return net ~ [ fd00:255::/48{128,128} ]; }
function add_cost(int c) {
  if defined(bgp_med) then bgp_med = bgp_med + c; else bgp_med = c;
}

protocol device { scan time 10; }

# originate this node's loopbacks (addresses on lo inside the ranges)
protocol direct loopback {
  ipv4 { import where lo4(); };
  ipv6 { import where lo6(); };
  interface "lo";
}

$([[ -z $ov ]] || printf 'function ov4() { return net ~ [ %s+ ]; }\n# the overlay: addresses on lo inside its range\nprotocol direct overlay { ipv4 { import where ov4(); }; interface "lo"; }\n' "$ov")
protocol kernel kernel4 {
  scan time 20;$( ((gr)) && printf '\n  persist;\n  graceful restart;' )
  ipv4 { import none; export filter { if source = RTS_BGP then { krt_prefsrc = 10.255.0.$i; accept; } reject; }; };
}
protocol kernel kernel6 {
  scan time 20;$( ((gr)) && printf '\n  persist;\n  graceful restart;' )
  ipv6 { import none; export filter { if source = RTS_BGP then { krt_prefsrc = fd00:255::$i; accept; } reject; }; };
}
EOF
        if ((bfd)); then
            printf '\nprotocol bfd {\n  interface "wg*" { interval %s ms; multiplier %s; };\n}\n' \
                "$KB_BFD_INTERVAL_MS" "$KB_BFD_MULT"
        fi
        if ((leak)); then
            cat <<EOF

# TEST ONLY: prefixes outside the loopback ranges, deliberately let through the BGP export
# filters below ("|| net = ...") so that the peer's import filter has something to reject.
protocol static leak4 { ipv4; route 192.0.2.$i/32 blackhole; }
protocol static leak6 { ipv6; route 2001:db8::$i/128 blackhole; }
EOF
        fi
        cat <<EOF

template bgp fabric {
  local port $KB_PORT as $KB_ASN;
  direct;
  rr client;
  path metric off;
EOF
        if [[ $KB_BGP_FAST == 1 ]]; then
            printf '%s\n' "  connect delay time 1;" "  connect retry time 5;" "  error wait time 1, 30;"
        fi
        [[ -z $hold ]] || echo "  hold time $hold;"
        [[ -z $ka ]] || echo "  keepalive time $ka;"
        ((gr == 0)) || echo "  graceful restart on;"
        ((bfd == 0)) || echo "  bfd on;"
        [[ -z $KB_BIRD_DEBUG ]] || echo "  debug { $KB_BIRD_DEBUG };"
        echo "}"
        while read -r j; do
            cost=$(cat "$d/cost.$j")
            [[ $cost =~ ^[0-9]+$ ]] || lab_die "lab_bird_conf: node $i link wg$j: cost '$cost' (BIRD needs a number)"
            cat <<EOF

protocol bgp wg$j from fabric {
  neighbor fe80::$j:$i port $KB_PORT as $KB_ASN;
  interface "wg$j";
  ipv4 {
    extended next hop on;
    next hop self;
    import keep filtered;
    import limit 1000 action block;
    import filter { if !lo4() then reject; add_cost($cost);$([[ -z $ov ]] || echo ' igp_metric = bgp_med;') accept; };
    export where $exp4;
  };
  ipv6 {
    next hop self;
    import keep filtered;
    import limit 1000 action block;
    import filter { if !lo6() then reject; add_cost($cost); accept; };
    export where $exp6;
  };
}
EOF
        done < "$d/peers"
        for j in "${mh[@]}"; do
            hops=2; [[ $j != *:* ]] || hops=${j#*:}
            j=${j%%:*}
            cat <<EOF

protocol bgp mh$j {
  local 10.255.0.$i port $KB_PORT as $KB_ASN;
  neighbor 10.255.0.$j port $KB_PORT as $KB_ASN;
  multihop $hops;
  source address 10.255.0.$i;
  ttl security $( ((mhgtsm)) && echo on || echo off );
EOF
            if [[ $KB_BGP_FAST == 1 ]]; then
                printf '%s\n' "  connect delay time 1;" "  connect retry time 5;" "  error wait time 1, 30;"
            fi
            [[ -z $hold ]] || echo "  hold time $hold;"
            [[ -z $ka ]] || echo "  keepalive time $ka;"
            [[ -z $KB_BIRD_DEBUG ]] || echo "  debug { $KB_BIRD_DEBUG };"
            if [[ -z $ov ]]; then
                printf '%s\n' "  ipv4 { import none; export none; };" "}"
                continue
            fi
            # a client sends its own routes with its loopback (the session's source); a reflector
            # keeps every next hop, towards its clients and the other reflectors alike
            client=0 nh="next hop self" apx=""
            [[ $rrc == " " ]] || nh="next hop keep"
            [[ $rrc != *" $j "* ]] || { client=1; echo "  rr client;"; }
            # a reflector (some --rr-clients) exchanges every path with the other reflectors too
            ((ap == 0)) || { apx="add paths rx;"; ((client == 0)) || apx="add paths tx;"
                             [[ $client == 1 || $rrc == " " ]] || apx="add paths on;"; }
            cat <<EOF
  ipv4 {
    import where ov4();
    export filter { if !ov4() then reject; if source = RTS_DEVICE then bgp_origin = ORIGIN_IGP; accept; };
    $nh;
    gateway recursive;
    igp table master4;${apx:+
    $apx}
  };
}
EOF
        done
    } > "$d/bird.conf.new"
    mv "$d/bird.conf.new" "$d/bird.conf"
    bird -p -c "$d/bird.conf" || lab_die "BIRD config of node $i does not parse ($d/bird.conf)"
}

# lab_bird_start I [ARGS...]: start BIRD in node i (config from lab_bird_conf), ARGS to bird (-R)
lab_bird_start() {
    local i=$1 d; d=$(lab_dir "$i"); shift
    [[ -f $d/bird.conf ]] || lab_bird_conf "$i"
    rm -f "$d/bird.pid"
    # BIRD forks: register its -P pid file (pitfall 6); the match is its command line
    echo "bird-$i $d/bird.pid $(lab_ns "$i") bird -c $d/bird.conf" >> "$KB_LAB_STATE/procs"
    lab_exec "$i" bird -c "$d/bird.conf" -s "$d/bird.ctl" -P "$d/bird.pid" "$@"
    wait_for "[[ -s $d/bird.pid && -S $d/bird.ctl ]]" 5 0.02 || lab_die "BIRD of node $i did not start"
}

birdc_n() { local i=$1; shift; birdc -s "$(lab_dir "$i")/bird.ctl" "$@"; }
lab_bird_log() { echo "$(lab_dir "$1")/bird.log"; }

# bird_proto_line I PROTO: the protocol's line of `show protocols` (name proto table state since info)
bird_proto_line() { birdc_n "$1" show protocols "$2" 2>/dev/null | awk -v p="$2" '$1 == p'; }
bird_established() { bird_proto_line "$1" "$2" | grep -q 'Established'; }
# bird_since_ms LINE: the `since` of a bird_proto_line (HH:MM:SS.mmm) in ms of the day.  BIRD
# computes it at display time from a monotonic clock: it may move by a millisecond between calls,
# so compare two with bird_since_same.
bird_since_ms() { awk '{ split($5, t, /[:.]/); print ((t[1] * 60 + t[2]) * 60 + t[3]) * 1000 + t[4] }' <<< "$1"; }
# bird_since_same A B: two bird_since_ms values within 20 ms (the same session start)
bird_since_same() { local d=$(( $1 - $2 )); (( d >= -20 && d <= 20 )); }
# bird_bfd_state I ADDR: the state of node i's BFD session to ADDR (`show bfd sessions`:
# Up, Down, Init, AdminDown; "-" if none)
bird_bfd_state() {
    birdc_n "$1" show bfd sessions 2>/dev/null | awk -v a="$2" '$1 == a { s = $3 } END { print (s == "" ? "-" : s) }'
}

# ------------------------------------------------------------------ kittbgpd

# kb_conf I [--hold S] [--keepalive S] [--passive] [--passive-to J ...] [--kernel] [--gr]
#         [--kernel-set KEY=VALUE ...] [--cost-set KEY=VALUE ...]: write node i's kittbgpd config from
# interop/kittbgpd-node.toml.tmpl (the control socket lives in the node's state dir).  --passive:
# every neighbor passive; --passive-to J: only neighbor wg<J> (repeatable).  --kernel writes the [kernel] section (step 3) with the values below;
# --kernel-set KEY=VALUE (implies --kernel, repeatable) changes one: enabled, table, protocol,
# metric, on_stop, startup_grace.  Without either, no [kernel] section (the daemon's defaults).
# --cost-set KEY=VALUE (repeatable; VALUE is raw TOML: 1, 2.5, "x"): a [$KB_COST_TABLE] table
# (default "cost": the step-4 link cost estimator) with those keys; none: no such table.  A link
# whose cost (lab_cost) is "auto" gets `cost = "auto"` (measured), a number a static cost.
# --gr: graceful restart (RFC 4724) with every neighbor (`graceful_restart = true` in [defaults]).
# --metrics: `[metrics] listen = "127.0.0.1:$KB_METRICS_PORT"` (kb_metrics scrapes it).
# --multihop J[:HOPS] / --multihop6 J[:HOPS] (repeatable): a multihop neighbor over loopbacks,
# "mh<J>" at 10.255.0.<J> / "mh<J>v6" at fd00:255::<J>, `multihop = HOPS` (default 2), sourced
# from node i's loopback of the family (the default `source`).
# --mh-set [J:]KEY=VALUE (repeatable; VALUE raw TOML): one more key in every multihop neighbor's
# block (with J: only in mh<J>/mh<J>v6's), e.g. rr_client=false, add_paths='"both"'.
# --overlay-set KEY=VALUE (repeatable; raw TOML): an [overlay] table with those keys, e.g.
# ipv4='["10.77.0.0/16"]' from_lo=true.
# --bfd: BFD with every link neighbor (`bfd = true` in [defaults]) and a [bfd] table with
# lab_bird_conf --bfd's timers (KB_BFD_INTERVAL_MS, KB_BFD_MULT).
# KB_UNPRIV=1 adds `control_group = "$KB_UNPRIV_GROUP"` (see kb_start).
KB_METRICS_PORT=${KB_METRICS_PORT:-9179}
KB_UNPRIV_USER=${KB_UNPRIV_USER:-nobody}
KB_UNPRIV_GROUP=${KB_UNPRIV_GROUP:-nogroup}
KB_UNPRIV_CAPS=+net_admin,+net_raw,+net_bind_service
KB_KERNEL_DEFAULTS="enabled=true table=254 protocol=200 metric=32 on_stop=keep startup_grace=30"
kb_conf() {
    local i=$1; shift
    local hold=240 ka="" passive="" d j c tmpl="$KB_INTEROP_DIR/kittbgpd-node.toml.tmpl" nb=""
    local kernel=0 kv k passive_to=" " costtab="" metrics=0 gr=0 mh="" ovtab="" mhset=() bfd=0
    declare -A kset=()
    for kv in $KB_KERNEL_DEFAULTS; do kset[${kv%%=*}]=${kv#*=}; done
    while (($#)); do
        case $1 in
            --hold) hold=$2; shift 2 ;;
            --keepalive) ka=$2; shift 2 ;;
            --passive) passive=1; shift ;;
            --passive-to) passive_to+="$2 "; shift 2 ;;
            --kernel) kernel=1; shift ;;
            --metrics) metrics=1; shift ;;
            --gr) gr=1; shift ;;
            --bfd) bfd=1; shift ;;
            --multihop|--multihop6)
                [[ ${2:-} =~ ^([0-9]+)(:([0-9]+))?$ ]] || lab_die "kb_conf: $1 '${2:-}': want J[:HOPS]"
                k=${BASH_REMATCH[1]}
                if [[ $1 == --multihop ]]; then mh+=$'\n[[neighbor]]\n'"name = \"mh$k\""$'\n'"address = \"10.255.0.$k\""
                else mh+=$'\n[[neighbor]]\n'"name = \"mh${k}v6\""$'\n'"address = \"fd00:255::$k\""; fi
                mh+=$'\n'"multihop = ${BASH_REMATCH[3]:-2}"$'\n'"@MH$k@"$'\n'
                shift 2 ;;
            --mh-set)
                [[ ${2:-} =~ ^([0-9]+:)?[a-z_0-9]+=.+$ ]] || lab_die "kb_conf: --mh-set '${2:-}': want [J:]KEY=VALUE"
                mhset+=("$2"); shift 2 ;;
            --overlay-set)
                [[ ${2:-} =~ ^[a-z_0-9]+=.+$ ]] || lab_die "kb_conf: --overlay-set '${2:-}': want KEY=VALUE"
                ovtab+="${2%%=*} = ${2#*=}"$'\n'; shift 2 ;;
            --kernel-set)
                k=${2%%=*}
                [[ $2 == *=* && -n ${kset[$k]+x} ]] || lab_die "kb_conf: --kernel-set '$2': want KEY=VALUE, KEY one of ${!kset[*]}"
                kset[$k]=${2#*=}; kernel=1; shift 2 ;;
            --cost-set)
                [[ $2 =~ ^[a-z_0-9]+=.+$ ]] || lab_die "kb_conf: --cost-set '$2': want KEY=VALUE"
                costtab+="${2%%=*} = ${2#*=}"$'\n'; shift 2 ;;
            *) lab_die "kb_conf: unknown option $1" ;;
        esac
    done
    local ksed=(-e '/@KERNEL_BEGIN@/,/@KERNEL_END@/d')
    if ((kernel)); then
        ksed=(-e '/@KERNEL_BEGIN@/d' -e '/@KERNEL_END@/d')
        for k in "${!kset[@]}"; do ksed+=(-e "s|@K_${k^^}@|${kset[$k]}|g"); done
    fi
    d=$(lab_dir "$i")
    # the neighbor block, once per adjacent node
    local block; block=$(sed -n '/@NEIGHBOR_BEGIN@/,/@NEIGHBOR_END@/{/@NEIGHBOR_/d;p}' "$tmpl")
    while read -r j; do
        if [[ $passive_to == *" $j "* ]]; then k='s/ *# @PEER_PASSIVE@//'; else k='/@PEER_PASSIVE@/d'; fi
        c=$(cat "$d/cost.$j"); [[ $c =~ ^[0-9]+$ ]] || c="\"$c\""
        nb+=$(sed -e "s/@J@/$j/g" -e "s/@I@/$i/g" -e "s/@COST@/$c/g" -e "$k" <<< "$block")$'\n'
        if lab_kb_tunnels "$i"; then
            # the tunnel wg<j> from the config: same ports, endpoints and addresses as lab_up's
            nb+=$'\n'"[neighbor.wireguard]"$'\n'"public_key = \"$(cat "$(lab_dir "$j")/wg.pub")\""$'\n'
            nb+="listen_port = $((51000 + j))"$'\n'"local_address = \"fe80::$i:$j\""$'\n'
            nb+="endpoint = \"$(_lab_wg_endpoint "$i" "$j" "$(_lab_link_no "$i" "$j")")\""$'\n'
        fi
    done < "$d/peers"
    {
        echo "# generated by interop/lib.sh (kb_conf) from kittbgpd-node.toml.tmpl for node $i ($(lab_ns "$i"))"
        sed -n '/@NEIGHBOR_BEGIN@/q;p' "$tmpl" | sed -e '/^# kittbgpd config for lab node/,/^# adjacent node j (tunnel/d' \
            "${ksed[@]}" \
            -e "${ka:+s/@KEEPALIVE@/$ka/}" -e '/@KEEPALIVE@/d' \
            -e "${passive:+s/ *# @PASSIVE@//}" -e '/@PASSIVE@/d' \
            -e "s|@SOCK@|$d/kittbgpd.sock|g" -e "s/@HOLD@/$hold/g" -e "s/@PORT@/$KB_PORT/g" \
            -e "s/@ASN@/$KB_ASN/g" -e "s/@I@/$i/g" \
            -e "$([[ ${KB_UNPRIV:-0} == 1 ]] && echo "/^control_socket = /a control_group = \"$KB_UNPRIV_GROUP\"" || true)" \
            -e "$( ((gr)) && echo '/^\[defaults\]/a graceful_restart = true' )" \
            -e "$( ((bfd)) && echo '/^\[defaults\]/a bfd = true' )"
        ((metrics == 0)) || printf '\n[metrics]\nlisten = "127.0.0.1:%s"\n' "$KB_METRICS_PORT"
        ((bfd == 0)) || printf '\n[bfd]\ninterval = %s\nmultiplier = %s\n' \
            "$(awk -v m="$KB_BFD_INTERVAL_MS" 'BEGIN { print m / 1000 }')" "$KB_BFD_MULT"
        [[ -z $costtab ]] || printf '\n[%s]\n%s' "${KB_COST_TABLE:-cost}" "$costtab"
        if lab_kb_tunnels "$i"; then
            printf '\n[wireguard]\nprivate_key_file = "%s"\nbackend = "userspace"\nreconcile_interval = %s\n' \
                "$d/wg.key" "${KB_WG_RECONCILE:-5}"
        fi
        [[ -z $ovtab ]] || printf '\n[overlay]\n%s' "$ovtab"
        printf '%s' "$nb"
        _kb_mh_keys "$mh" "${mhset[@]}"
    } > "$d/kittbgpd.toml"
}

# kb_views I NAME:ID:TABLE:METRIC[:FWMARK[:DSCP6]]...: append a [[view]] per argument to node i's
# kittbgpd.toml (after kb_conf); METRIC latency, static or hops; FWMARK (e.g. 0x1): the view's
# policy rule `{ fwmark = "FWMARK" }`; DSCP6: a rule `{ dscp = DSCP6, from = "::/0" }` (IPv6
# packets of that DSCP, at every node they cross); rules are installed with kb_conf --kernel
kb_views() {
    local i=$1 v name id table metric mark dscp rules; shift
    for v in "$@"; do
        IFS=: read -r name id table metric mark dscp <<< "$v"
        [[ -n $metric ]] || lab_die "kb_views: '$v': want NAME:ID:TABLE:METRIC[:FWMARK[:DSCP6]]"
        rules=()
        [[ -z $mark ]] || rules+=("{ fwmark = \"$mark\" }")
        [[ -z $dscp ]] || rules+=("{ dscp = $dscp, from = \"::/0\" }")
        {
            printf '\n[[view]]\nname = "%s"\nid = %s\ntable = %s\nmetric = "%s"\n' \
                "$name" "$id" "$table" "$metric"
            ((${#rules[@]} == 0)) || (IFS=,; printf 'rules = [ %s ]\n' "${rules[*]}")
        } >> "$(lab_dir "$i")/kittbgpd.toml"
    done
}

# _kb_mh_keys TEXT [J:]KEY=VALUE...: TEXT (kb_conf's multihop blocks) with each "@MH<J>@" line
# replaced by the keys meant for mh<J>
_kb_mh_keys() {
    local text=$1 kv j lines; shift
    local -a js
    mapfile -t js < <(grep -o '^@MH[0-9]*@$' <<< "$text" | tr -d '@MH' | sort -u)
    for j in "${js[@]}"; do
        lines=""
        for kv in "$@"; do
            if [[ $kv =~ ^([0-9]+):(.*)$ ]]; then [[ ${BASH_REMATCH[1]} == "$j" ]] || continue; kv=${BASH_REMATCH[2]}; fi
            lines+="${kv%%=*} = ${kv#*=}"$'\n'
        done
        text=${text//"@MH$j@"$'\n'/$lines}
    done
    printf '%s' "$text"
}

# kb_start I BIN [ARGS...]: run the daemon in node i (net + mount namespace), log to the node dir
kb_start() {
    local i=$1 bin=$2; shift 2
    local d; d=$(lab_dir "$i")
    [[ -f $d/kittbgpd.toml ]] || kb_conf "$i"
    bin=$(readlink -f "$bin")
    echo "$bin" > "$d/kittbgpd.bin"
    local wrap=()
    if [[ ${KB_UNPRIV:-0} == 1 ]]; then
        # As the service runs: a non-root user holding exactly NET_ADMIN, NET_RAW and
        # NET_BIND_SERVICE (ambient, as systemd's AmbientCapabilities=); it owns the node dir
        # (control socket) and nothing else.
        chown "$KB_UNPRIV_USER:$KB_UNPRIV_GROUP" "$d"
        wrap=(setpriv --reuid="$KB_UNPRIV_USER" --regid="$KB_UNPRIV_GROUP" --clear-groups
            --bounding-set=-all,$KB_UNPRIV_CAPS --inh-caps=-all,$KB_UNPRIV_CAPS
            --ambient-caps=-all,$KB_UNPRIV_CAPS --no-new-privs)
    fi
    lab_run "$i" kittbgpd "$d/kittbgpd.log" env RUST_LOG="${RUST_LOG:-debug}" "${wrap[@]}" "$bin" -c "$d/kittbgpd.toml" "$@"
}

# kb_metrics I [PATH]: GET http://127.0.0.1:$KB_METRICS_PORT/metrics inside node i (kb_conf --metrics)
kb_metrics() { ip netns exec "$(lab_ns "$1")" curl -sS -f --max-time 5 "http://127.0.0.1:$KB_METRICS_PORT${2:-/metrics}"; }
# kb_metrics_valid I: node i's scrape passes `promtool check metrics` (apt: prometheus)
kb_metrics_valid() { local t; t=$(kb_metrics "$1") && promtool check metrics <<< "$t"; }

# lab_run I NAME LOGFILE CMD...: any command in node i's net+mount namespace, recorded for cleanup
# as NAME-I (lab_pid/lab_kill NAME-I).  The cmdline check uses CMD's first word that is a path.
lab_run() {
    local i=$1 name=$2 logf=$3; shift 3
    local match="$*" w
    for w in "$@"; do [[ $w == /* ]] && { match=$w; break; }; done
    lab_spawn "$name-$i" "$(lab_ns "$i")" "$logf" "$match" nsenter -t "$(lab_holder "$i")" -m -n -- "$@"
}

# kb_stop I [SIGNAL] [WAIT_S]: stop node i's daemon (lab_kill kittbgpd-I; KILL_MS = time to exit);
# kb_start I "$(kb_bin I)" then starts it again with the same binary and config
kb_stop() { lab_kill "kittbgpd-$1" "${2:-TERM}" "${3:-5}"; }
kb_bin() { cat "$(lab_dir "$1")/kittbgpd.bin"; }
kb_sock() { echo "$(lab_dir "$1")/kittbgpd.sock"; }
# kb_show I neighbors|routes [ARGS]: the control CLI against node i's daemon
kb_show() { local i=$1; shift; "$(kb_bin "$i")" show "$@" -s "$(kb_sock "$i")"; }

# kb_ctl I COMMAND [ARGS]: another control command against node i's daemon (enable|disable NAME)
kb_ctl() { local i=$1; shift; "$(kb_bin "$i")" "$@" -s "$(kb_sock "$i")"; }

# kb_held_down I NAME: why neighbor NAME is held down, from `show neighbors --json` ("a,b"; "" if not)
kb_held_down() {
    kb_show "$1" neighbors --json 2>/dev/null | "$PYTHON" -c '
import json, sys
for n in json.load(sys.stdin):
    if n.get("name") == sys.argv[1]:
        print(",".join(n.get("held_down") or [])); break
' "$2"
}

# kb_bfd_state I NAME [KEY]: the state (or KEY, e.g. remote_state) of node i's BFD session to
# neighbor NAME (`show bfd --json`; states up, down, init, admin_down; "-" if none)
kb_bfd_state() {
    kb_show "$1" bfd --json 2>/dev/null | "$PYTHON" -c '
import json, sys
print(next((str(b.get(sys.argv[2], "-")) for b in json.load(sys.stdin) if b.get("name") == sys.argv[1]), "-"))
' "$2" "${3:-state}"
}

# kb_kernel_state I PREFIX: the state of PREFIX in node i's `show kernel --json`
# (installed, pending, conflict, failed, stale; "-" if not listed)
kb_kernel_state() {
    kb_show "$1" kernel --json 2>/dev/null | "$PYTHON" -c '
import json, sys
print(next((k["state"] for k in json.load(sys.stdin) if k.get("prefix") == sys.argv[1]), "-"))
' "$2"
}

# lab_route_owners I PREFIX: who holds PREFIX in node i's main table: "PROTO/METRIC" per route,
# sorted, space-separated ("" if no route), e.g. "200/32" (kittbgpd's) or "boot/32" (`ip route add`;
# `ip -j` leaves out proto boot)
lab_route_owners() {
    local fam=-4; [[ $2 == *:* ]] && fam=-6
    ip -n "$(lab_ns "$1")" -j "$fam" route show exact "$2" 2>/dev/null | "$PYTHON" -c '
import json, sys
print(" ".join(sorted("%s/%s" % (r.get("protocol", "boot"), r.get("metric", 0)) for r in json.load(sys.stdin) or [])))'
}

# kb_neighbor_field I NAME KEY: field KEY of neighbor NAME from `show neighbors --json`
# ("" if absent or null)
kb_neighbor_field() {
    kb_show "$1" neighbors --json 2>/dev/null | "$PYTHON" -c '
import json, sys
d = json.load(sys.stdin)
if isinstance(d, dict):
    d = d.get("neighbors", d.get("result", []))
for n in d:
    if n.get("name") == sys.argv[1]:
        v = n.get(sys.argv[2]); print("" if v is None else v); break
' "$2" "$3"
}
# kb_neighbor_state I NAME: "state" of neighbor NAME
kb_neighbor_state() { kb_neighbor_field "$1" "$2" state; }
kb_established() { [[ $(kb_neighbor_state "$1" "$2") == Established ]]; }

# kb_routes I [--filtered]: one line per route: "prefix peer next_hop interface med status"
kb_routes() {
    local i=$1; shift
    kb_show "$i" routes "$@" --json | "$PYTHON" -c '
import json, sys
d = json.load(sys.stdin)
if isinstance(d, dict):
    d = d.get("routes", d.get("result", []))
for r in d:
    peer = r.get("peer", r.get("neighbor", "-"))
    print(r.get("prefix"), peer, r.get("next_hop") or "-", r.get("interface") or "-",
          r.get("med") if r.get("med") is not None else "-", r.get("status", "accepted"))
'
}

# ------------------------------------------------------------------ link costs and best routes
# (used by test_ring4.sh and demo.sh --ring4)

# Default ring-4 costs: "I-J:C" = node I adds C to the MED of routes it learns from node J (BIRD:
# add_cost(C) in node I's session wg<J>; kittbgpd: `cost = C` of node I's neighbor wg<J>).
# Links 1-2 10, 2-3 10 / 35 (node 2 pays 35 for routes from node 3: asymmetric), 3-4 50, 4-1 10.
KB_RING4_COSTS=${KB_RING4_COSTS:-"1-2:10 2-1:10 2-3:35 3-2:10 3-4:50 4-3:50 4-1:10 1-4:10"}

# lab_cost I J C: node i's import cost for routes from node j (after lab_up, before *_conf);
# C = auto: measured by kittbgpd (step 4; kb_conf writes cost = "auto", BIRD configs refuse it)
lab_cost() {
    local d; d=$(lab_dir "$1")
    [[ -f $d/cost.$2 ]] || lab_die "lab_cost: node $1 has no link to node $2"
    [[ $3 =~ ^([0-9]+|auto)$ ]] || lab_die "lab_cost: cost '$3' is not a number (or auto)"
    echo "$3" > "$d/cost.$2"
}
# lab_costs "I-J:C ...": several lab_cost at once (format of KB_RING4_COSTS)
lab_costs() {
    local e
    for e in $1; do
        [[ $e =~ ^([0-9]+)-([0-9]+):([0-9]+|auto)$ ]] || lab_die "lab_costs: bad entry '$e' (want I-J:C)"
        lab_cost "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" "${BASH_REMATCH[3]}"
    done
}

# bird_best_routes I: node i's primary (best) BGP routes, one a line: "prefix nexthop%iface med"
# (med "-" if the route has none), from `birdc show route all` (the route marked "*").
bird_best_routes() {
    birdc_n "$1" show route all | awk '
        function flush() { if (best && proto ~ /^wg/) print pfx, nh "%" ifc, med; best = 0 }
        $1 ~ /^[0-9a-f.:]+\/[0-9]+$/ { flush(); pfx = $1 }
        !/^\t/ && /[a-z]+ \[[^] ]+ [^]]*\]/ {   # route header: "[PREFIX] TYPE [PROTO TIME] [*] (PREF)"
            flush()
            match($0, /\[[^] ]+/); proto = substr($0, RSTART + 1, RLENGTH - 1)
            best = ($0 ~ /\] \* /); nh = "-"; ifc = "-"; med = "-"
        }
        /^[ \t]+via / { nh = $2; ifc = $4 }
        /BGP\.med:/ { med = $2 }
        END { flush() }'
}
# bird_has_prefix I PREFIX: node i has any route (best or not) for PREFIX
bird_has_prefix() { birdc_n "$1" show route "$2" | grep -q "^${2//./\\.}[[:space:]]"; }

# kb_best_routes I: node i's best received routes, same format as bird_best_routes.  Uses the
# `best` flag of `show routes --json`; a daemon without it (step 1) has no selection: a prefix
# with one accepted route counts as best, one with several is printed as
# "prefix ?candidates:NH/MED,NH/MED".
kb_best_routes() {
    kb_show "$1" routes --json | "$PYTHON" -c '
import json, sys
d = json.load(sys.stdin)
if isinstance(d, dict):
    d = d.get("routes", d.get("result", []))
learned = [r for r in d if r.get("status", "accepted") == "accepted" and r.get("peer") not in ("self", None)]
def nh(r):
    return "%s%%%s" % (r.get("next_hop") or "-", r.get("interface") or "-")
def med(r):
    return "-" if r.get("med") is None else str(r["med"])
has_best = any("best" in r for r in d)
by = {}
for r in learned:
    if has_best and not r.get("best"):
        continue
    by.setdefault(r["prefix"], []).append(r)
for p, rs in by.items():
    if len(rs) == 1:
        print(p, nh(rs[0]), med(rs[0]))
    else:
        print(p, "?candidates:" + ",".join(nh(r) + "/" + med(r) for r in rs), "-")
'
}
# kb_has_prefix I PREFIX: node i holds an accepted route for PREFIX (from any neighbor)
kb_has_prefix() {
    kb_show "$1" routes --json | "$PYTHON" -c '
import json, sys
d = json.load(sys.stdin)
if isinstance(d, dict):
    d = d.get("routes", d.get("result", []))
sys.exit(0 if any(r.get("prefix") == sys.argv[1] and r.get("status", "accepted") == "accepted"
                  and r.get("peer") not in ("self", None) for r in d) else 1)
' "$2"
}

# ------------------------------------------------------------------ kernel routes (step 3)
# (used by test_fabric5.sh and demo.sh)

# The 5-node fabric: ring 1-2-3-4-5-1 plus the chord 1-3 (KB_FABRIC5_LINKS: lab_up --link).
# Costs as "I-J:C" (node I adds C for routes from node J).  Symmetric except 2-3 (node 3 pays 12);
# the chord (15) carries 1<->3 and 5<->3 (two hops: 5-1-3, 3-1-5), 2->4 goes 2-1-5-4 (three hops),
# 3<->4 stays direct (30 vs 35 the other way); no node has two equal paths, with every link up and
# with any one link down (lab_expected_paths warns about ties).
KB_FABRIC5_LINKS=${KB_FABRIC5_LINKS:-"1-3"}
KB_FABRIC5_COSTS=${KB_FABRIC5_COSTS:-"1-2:10 2-1:10 2-3:10 3-2:12 3-4:30 4-3:30 4-5:10 5-4:10 5-1:10 1-5:10 1-3:15 3-1:15"}

# lab_expected_paths COSTS "NODES" [I-J]: the best path of every node to every other node's
# loopbacks by Dijkstra over the per-direction costs (node I's import adds C for routes from J), with
# link I-J left out if given.  One row per node and prefix, sorted:
#   "I PREFIX fe80::<j>:<i>%wg<j> MED HOPS"   (j = first hop, HOPS = the path, e.g. 5-1-3)
# A node with two equally good paths is reported on stderr (tie-breaking would decide).
lab_expected_paths() {
    "$PYTHON" -c '
import heapq, sys
cost = {}
for e in sys.argv[1].split():
    ij, c = e.split(":"); i, j = ij.split("-")
    cost[(int(i), int(j))] = int(c)
nodes = [int(n) for n in sys.argv[2].split()]
if sys.argv[3]:
    a, b = (int(x) for x in sys.argv[3].split("-"))
    cost = {k: v for k, v in cost.items() if set(k) != {a, b}}
INF = 1 << 62
for d in nodes:
    dist, via = {d: 0}, {}
    pq = [(0, d)]
    while pq:
        dd, u = heapq.heappop(pq)
        if dd > dist.get(u, INF):
            continue
        for (i, j), c in cost.items():          # u = j announces to i
            if j == u and i != d and dd + c < dist.get(i, INF):
                dist[i] = dd + c; via[i] = u; heapq.heappush(pq, (dist[i], i))
    for n in nodes:
        if n == d or n not in dist:
            continue
        offers = sorted(dist[j] + c for (i, j), c in cost.items() if i == n and j in dist and via.get(j) != n)
        if len(offers) > 1 and offers[0] == offers[1]:
            print("warning: node %d has two equal paths to node %d (MED %d)" % (n, d, offers[0]), file=sys.stderr)
        hops, x = [n], n
        while x != d:
            x = via[x]; hops.append(x)
        j = via[n]
        for p in ("10.255.0.%d/32" % d, "fd00:255::%d/128" % d):
            print("%d %s fe80::%d:%d%%wg%d %d %s" % (n, p, j, n, j, dist[n], "-".join(map(str, hops))))
' "$1" "$2" "${3:-}" | LC_ALL=C sort
}

# lab_kernel_routes I...: the kernel's routes (every table) in nodes i... to loopbacks inside
# 10.255.0.0/16 and fd00:255::/48 other than the node's own, one a line, sorted:
#   "I PREFIX NEXTHOP%DEV proto P metric M src S table T"
# (NEXTHOP "-" for none, "multipath:NH%DEV,..." for several; "src -" without prefsrc).  Two lines
# with the same I PREFIX are two kernel routes for one prefix.
lab_kernel_routes() {
    local i args=()
    for i in "$@"; do args+=("$i" "$(lab_ns "$i")"); done
    "$PYTHON" -c '
import ipaddress, json, subprocess, sys
R4, R6 = ipaddress.ip_network("10.255.0.0/16"), ipaddress.ip_network("fd00:255::/48")
a = sys.argv[1:]
for i, ns in zip(a[::2], a[1::2]):
    own = {"10.255.0.%s/32" % i, "fd00:255::%s/128" % i}
    for fam, rng, plen in (("-4", R4, 32), ("-6", R6, 128)):
        out = subprocess.run(["ip", "-n", ns, fam, "-j", "route", "show", "table", "all"],
                             capture_output=True, text=True).stdout
        for r in json.loads(out or "[]"):
            dst = r.get("dst", "")
            if dst in ("default", "") or r.get("type", "unicast") != "unicast":
                continue
            if "/" not in dst:
                dst += "/%d" % plen
            try:
                net = ipaddress.ip_network(dst, strict=False)
            except ValueError:
                continue
            if net.version != rng.version or not net.subnet_of(rng) or dst in own:
                continue
            def hop(h):
                return "%s%%%s" % ((h.get("via") or {}).get("host") or h.get("gateway") or "-", h.get("dev", "-"))
            nh = "multipath:" + ",".join(hop(h) for h in r["nexthops"]) if "nexthops" in r else hop(r)
            print(i, dst, nh, "proto", r.get("protocol", "-"), "metric", r.get("metric", 0),
                  "src", r.get("prefsrc", "-"), "table", r.get("table", "main"))
' "${args[@]}" | LC_ALL=C sort
}

# lab_tx_packets I J: packets sent on node i's tunnel wg<j> since it was made
lab_tx_packets() {
    ip -n "$(lab_ns "$1")" -s -j link show "wg$2" \
        | "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)[0]["stats64"]["tx"]["packets"])'
}

# lab_ping_first_hop I SRC DST [MARK]: COUNT (20) pings from node i (source address SRC, packet
# mark MARK as `ping -m`) to DST, 10 ms apart; prints the tunnel "wg<j>" whose TX packet counter
# grew by at least COUNT while the others grew by less (the first hop the pings took), "lost" if
# a reply was missing, "?" if no single tunnel carried them
lab_ping_first_hop() {
    local i=$1 src=$2 dst=$3 mark=${4:-} n=20 j before after hop="?" ok=1 m=()
    local -A tx0
    [[ -z $mark ]] || m=(-m "$mark")
    for j in $(lab_peers "$i"); do tx0[$j]=$(lab_tx_packets "$i" "$j"); done
    ip netns exec "$(lab_ns "$i")" ping -q -c "$n" -i 0.01 -W 1 "${m[@]}" -I "$src" "$dst" >/dev/null 2>&1 || ok=0
    for j in $(lab_peers "$i"); do
        before=${tx0[$j]}; after=$(lab_tx_packets "$i" "$j")
        if ((after - before >= n)); then [[ $hop == "?" ]] && hop=wg$j || { echo "?"; return; }; fi
    done
    ((ok)) && echo "$hop" || echo lost
}

# lab_ping_lost FILE: the echoes a continuous `ping` (stopped by SIGINT; its output in FILE) got
# no reply for, e.g. "0" or "2 (seq 14 15)"; the last one sent is left out (SIGINT may come
# before its reply could); "?" if FILE holds no summary. With `ping -D -O` a lost one is shown
# with the UTC time ping gave up waiting for it ("seq 14@21:02:07.706"), to match with logs.
lab_ping_lost() {
    awk '
        function utc(t,  s) { s = int(t); return strftime("%H:%M:%S", s, 1) sprintf(".%03d", (t - s) * 1000) }
        /icmp_seq=[0-9]+ .*time=/ { match($0, /icmp_seq=[0-9]+/); ok[substr($0, RSTART + 9, RLENGTH - 9) + 0] = 1 }
        /^\[[0-9.]+\] no answer yet/ { match($0, /icmp_seq=[0-9]+/); at[substr($0, RSTART + 9, RLENGTH - 9) + 0] = substr($1, 2, length($1) - 2) }
        / packets transmitted/ { sent = $1 }
        END {
            if (sent == "") { print "?"; exit }
            for (q = 1; q < sent; q++) if (!(q in ok)) { n++; l = l " " q ((q in at) ? "@" utc(at[q]) : "") }
            print (n ? n " (seq" l ")" : 0)
        }' "$1"
}

# lab_ping_matrix SRC... -- DST...: from every node SRC to every node DST's IPv4 and IPv6 loopback
# (SRC != DST), one ping each (-W 1, from SRC's own loopback), all at once; one line per pair,
# sorted: "SRC DST_ADDRESS ok|lost"
lab_ping_matrix() {
    local srcs=() s d tmp dst src
    while (($#)) && [[ $1 != -- ]]; do srcs+=("$1"); shift; done
    shift || true
    tmp=$(mktemp -d /tmp/kbping.XXXXXX)
    for s in "${srcs[@]}"; do
        for d in "$@"; do
            [[ $s != "$d" ]] || continue
            for dst in "10.255.0.$d" "fd00:255::$d"; do
                if [[ $dst == *:* ]]; then src=fd00:255::$s; else src=10.255.0.$s; fi
                ( r=lost
                  ip netns exec "$(lab_ns "$s")" ping -c1 -W1 -q -I "$src" "$dst" >/dev/null 2>&1 && r=ok
                  echo "$s $dst $r" > "$tmp/$s-$dst" ) &
            done
        done
    done
    wait
    cat "$tmp"/* 2>/dev/null | LC_ALL=C sort -k1,1n -k2,2
    rm -rf "$tmp"
}
