#!/usr/bin/env bash
# test.sh -- every test of kittbgpd: build, `cargo test` (unit, codec laws, golden BIRD vectors,
# FSM tables), packaging (systemd-analyze verify of the unit, the NixOS module evaluated with
# nix-instantiate), then the interop labs (interop/test_bird_pair.sh, test_ring4.sh, test_fabric5.sh, test_latency.sh,
# test_kernel.sh, test_tunnels.sh, test_reload.sh, test_gr.sh, test_bmp.sh, test_multihop.sh, test_add_paths.sh,
# test_reflectors.sh, test_migration.sh, test_bfd.sh, test_stream.sh, test_views.sh, and test_bird_pair.sh again with KB_UNPRIV=1;
# root, network namespaces).
#
# Usage: ./test.sh
# Environment:
#   KB_SKIP_INTEROP=1     skip the interop lab (quick run; no root needed)
#   KB_PROFILE=debug      build/use target/debug/kittbgpd instead of release
#   KB_INTEROP_ARGS       extra arguments for test_bird_pair.sh (e.g. --peer-bird for its self-test)
# Prints a summary per stage and a final plain line "N passed, M failed" (cargo tests + interop
# checks; a stage that fails without reporting counts, e.g. a build error, counts as 1 failed).
# Exit status non-zero on any failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

PROFILE=${KB_PROFILE:-release}
BIN=target/$PROFILE/kittbgpd
PASSED=0 FAILED=0
SUMMARY=()
LOG=$(mktemp -d "${TMPDIR:-/tmp}/kittbgpd-test.XXXXXX")
trap 'rm -rf "$LOG"' EXIT

stage() { echo; echo "=== $*"; }
# run_lab LABEL LOGNAME CMD...: run a lab, count its final "N passed, M failed" line
# (a lab that exits non-zero without reporting counts as 1 failed)
run_lab() {
    local label=$1 log=$LOG/$2.log rc=0 line p f
    shift 2
    "$@" 2>&1 | tee "$log" || rc=$?
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1 || true)
    if [[ -n $line ]]; then read -r p _ f _ <<< "${line//,/}"; else p=0 f=0; fi
    ((rc == 0 || f > 0)) || f=1
    grep -a '^FAIL' "$log" | sed "s|^|[$label] |" >> "$LOG/failures" || true
    add "$p" "$f" "$label"
}
add() { PASSED=$((PASSED + $1)); FAILED=$((FAILED + $2)); SUMMARY+=("$3: $1 passed, $2 failed"); }

# 1. build
stage "cargo build --$PROFILE"
build_args=(); [[ $PROFILE == release ]] && build_args=(--release)
if cargo build "${build_args[@]}"; then
    SUMMARY+=("build ($PROFILE): ok")
else
    add 0 1 "build ($PROFILE)"
fi

# 2. cargo test: sum the "test result:" lines of every test binary and doc-tests
stage "cargo test"
rc=0
cargo test 2>&1 | tee "$LOG/cargo-test.log" || rc=$?
p=0 f=0
while read -r a b; do p=$((p + a)); f=$((f + b)); done < <(
    sed -nE 's/^test result: [A-Za-z]+\. ([0-9]+) passed; ([0-9]+) failed.*/\1 \2/p' "$LOG/cargo-test.log")
# a non-zero exit without any failed test (compile error, crash) still counts as a failure
((rc == 0 || f > 0)) || f=1
grep -aE '^test .* FAILED$|^error(\[E[0-9]+\])?:' "$LOG/cargo-test.log" | sed 's|^|[cargo test] |' >> "$LOG/failures" || true
add "$p" "$f" "cargo test"

# 3. packaging: the systemd unit (systemd-analyze verify) and the NixOS module (offline eval)
for t in packaging/systemd/verify.sh packaging/nix/test.sh; do
    stage "$t"
    rc=0
    "$t" "$BIN" 2>&1 | tee "$LOG/pkg.log" || rc=$?
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$LOG/pkg.log" | tail -n 1 || true)
    if [[ -n $line ]]; then read -r p _ f _ <<< "${line//,/}"
    elif ((rc == 0)); then p=1 f=0
    else p=0 f=1; fi
    ((rc == 0 || f > 0)) || f=1
    add "$p" "$f" "$t"
done

# 4. interop with BIRD 2
if [[ ${KB_SKIP_INTEROP:-0} == 1 ]]; then
    SUMMARY+=("interop: skipped (KB_SKIP_INTEROP=1)")
elif [[ $(id -u) != 0 ]]; then
    stage "interop"
    echo "interop needs root (network namespaces); run as root or set KB_SKIP_INTEROP=1"
    add 0 1 "interop (not root)"
else
    # shellcheck disable=SC2086  # KB_INTEROP_ARGS is a word list on purpose
    set -- ${KB_INTEROP_ARGS:-}
    if [[ " $* " != *" --peer-bird "* ]]; then set -- "$@" "$BIN"; fi
    for lab in test_bird_pair test_ring4 test_fabric5 test_latency test_kernel test_tunnels test_reload test_gr test_bmp test_multihop test_add_paths test_reflectors test_migration test_bfd test_stream test_views; do
        stage "interop/$lab.sh"
        args=("$@")
        # the ring lab takes --all-bird where the pair lab takes --peer-bird
        if [[ $lab == test_ring4 && " $* " == *" --peer-bird "* ]]; then args=(--all-bird); fi
        # the fabric, latency, kernel, tunnels, reload, bmp, multihop, add-paths, reflectors and migration
        # labs take only a kittbgpd binary: no self-test variant
        if [[ " test_fabric5 test_latency test_kernel test_tunnels test_reload test_bmp test_multihop test_add_paths test_reflectors test_migration test_bfd test_stream test_views " == *" $lab "* ]] \
            && [[ " $* " == *" --peer-bird "* ]]; then continue; fi
        run_lab "interop $lab" "$lab" interop/$lab.sh "${args[@]}"
    done
    # the pair lab again as the systemd unit runs the daemon: a non-root user with exactly
    # NET_ADMIN, NET_RAW, NET_BIND_SERVICE ambient (setpriv), control socket by group
    if [[ " $* " != *" --peer-bird "* ]]; then
        stage "interop/test_bird_pair.sh (KB_UNPRIV=1: unprivileged user, ambient capabilities)"
        KB_UNPRIV=1 KB_STABLE_S=${KB_STABLE_S:-10} \
            run_lab "interop test_bird_pair (unprivileged)" unpriv interop/test_bird_pair.sh "$@"
        # mixed ring with unknown (2^31) and large costs: no BIRD node picks a path that is
        # cheaper only because its MED addition wrapped (kittbgpd advertises at most 2^31-1)
        stage "interop/test_ring4.sh --large"
        run_lab "interop test_ring4 --large" ring4-large interop/test_ring4.sh --large "$@"
    fi
fi

# what failed, repeated here so that the end of the output names it (CI shows the tail)
if [[ -s $LOG/failures ]]; then
    echo
    echo "=== failures"
    cat "$LOG/failures"
fi
echo
echo "=== summary"
printf '%s\n' "${SUMMARY[@]}"
echo "$PASSED passed, $FAILED failed"
((FAILED == 0))
