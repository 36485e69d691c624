#!/usr/bin/env bash
# packaging/nix/test.sh [KITTBGPD] -- the NixOS module, evaluated offline with nixpkgs' lib
# (../shared/nixpkgs-lib, or NIXPKGS_LIB) by Debian's nix-instantiate (apt: nix-bin):
#   - a sample config: the unit (Type=notify, ExecReload, capabilities, hardening, the
#     wireguard-go path, reload on config change), the user and group, the rendered TOML,
#     and the build-time check, which is run here for real: the rendered TOML (with the
#     throwaway key the module's check uses) passes `kittbgpd check`;
#   - the unit's [Service] keys match packaging/systemd/kittbgpd.service;
#   - bad values (AS -1, port 70000, router id "10.255.0", cost "fast", metrics listen 9179)
#     are rejected by the module's types; settings and configFile together fail an assertion.
# Prints PASS/FAIL lines and "N passed, M failed".
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="$(realpath "${1:-$root/target/release/kittbgpd}")"
lib="${NIXPKGS_LIB:-$(realpath "$root/../shared/nixpkgs-lib/lib" 2>/dev/null || echo /work/shared/nixpkgs-lib/lib)}"
export NIX_CONFIG="build-users-group ="
PASSED=0 FAILED=0
pass() { PASSED=$((PASSED + 1)); echo "PASS $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $*"; }
check() { local what=$1; shift; if "$@"; then pass "$what"; else fail "$what"; fi; }
finish() { echo "$PASSED passed, $FAILED failed"; ((FAILED == 0)); exit; }

command -v nix-instantiate >/dev/null || { fail "nix-instantiate not installed (apt: nix-bin)"; finish; }
[[ -f $lib/default.nix ]] || { fail "nixpkgs lib not found at $lib (NIXPKGS_LIB)"; finish; }
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
ev() { nix-instantiate --eval --strict --json "$here/eval.nix" --arg libPath "$lib" --argstr case "$1"; }

if ! ev good > "$tmp/good.json" 2> "$tmp/err"; then cat "$tmp/err"; fail "sample config evaluates"; finish; fi
pass "sample config evaluates"
q() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(json.dumps(eval(sys.argv[2], {"d": d})))' "$tmp/good.json" "$1"; }
is() { local what=$1 expr=$2 want=$3 got; got=$(q "$expr"); check "$what ($got)" test "$got" = "$want"; }
sc='d["service"]["serviceConfig"]'
is "unit Type=notify" "$sc[\"Type\"]" '"notify"'
is "unit ExecReload = kittbgpd reload" "$sc[\"ExecReload\"].endswith(\"/bin/kittbgpd reload -c /etc/kittbgpd/kittbgpd.toml\")" true
is "unit Restart=on-failure, WatchdogSec set" "[$sc[\"Restart\"], $sc[\"WatchdogSec\"]]" '["on-failure", "30s"]'
is "unit runs as user kittbgpd" "[$sc[\"User\"], $sc[\"Group\"], d[\"user\"][\"isSystemUser\"], d[\"groups\"]]" '["kittbgpd", "kittbgpd", true, ["kittbgpd"]]'
is "port 1790: only NET_ADMIN and NET_RAW ambient" "$sc[\"AmbientCapabilities\"]" '["CAP_NET_ADMIN", "CAP_NET_RAW"]'
is "hardening" "[$sc[k] for k in [\"ProtectSystem\", \"ProtectHome\", \"PrivateTmp\", \"NoNewPrivileges\", \"SystemCallFilter\", \"RestrictAddressFamilies\"]]" \
    '["strict", true, true, true, ["@system-service"], ["AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"]]'
is "state and runtime directories" "[$sc[\"StateDirectory\"], $sc[\"RuntimeDirectory\"]]" '["kittbgpd", ["kittbgpd", "wireguard"]]'
is "wireguard-go path for the userspace backend" "d[\"service\"][\"environment\"][\"WG_USERSPACE_IMPLEMENTATION\"]" \
    '"/nix/store/00000000000000000000000000000000-wireguard-go/bin/wireguard-go"'
is "wireguard-go survives a restart (KillMode=process)" "$sc[\"KillMode\"]" '"process"'
is "config change reloads (reloadTriggers = checked file)" "d[\"service\"][\"reloadTriggers\"][0].endswith(\"kittbgpd-checked.toml\")" true
is "build-time check runs kittbgpd check" "\"kittbgpd check -c check.toml\" in d[\"check_script\"]" true
is "TOML: control_group and metrics" "[d[\"toml\"][\"control_group\"], d[\"toml\"][\"metrics\"]]" '["kittbgpd", {"listen": "127.0.0.1:9179"}]'
is "TOML: unset neighbor options left out (no null)" "sorted(d[\"toml\"][\"neighbor\"][0])" '["address", "cost", "interface", "wireguard"]'
is "TOML: key file kept; the check uses a throwaway key" "[d[\"toml\"][\"wireguard\"][\"private_key_file\"], d[\"check_toml\"][\"wireguard\"][\"private_key_file\"]]" \
    '["/var/lib/kittbgpd/wg.key", "check.key"]'
is "no failed assertion; settings + configFile fails one" "[d[\"failed_assertions\"], len(d[\"both_failed_assertions\"])]" '[[], 1]'

# The build-time check, for real: the TOML the module renders passes `kittbgpd check`.
q 'd["check_toml"]' | python3 -c 'import json,sys; print(json.dumps(json.loads(sys.stdin.read())))' | python3 "$here/json2toml.py" > "$tmp/check.toml"
if [[ -x $bin ]]; then
    "$bin" wg genkey -o "$tmp/check.key" >/dev/null 2>&1
    check "rendered TOML passes kittbgpd check" "$bin" check -c "$tmp/check.toml"
else
    fail "kittbgpd binary not found ($bin)"
fi

# The module's unit and the repository's unit name the same [Service] keys.
unit_keys=$(sed -n '/^\[Service\]/,/^\[/p' "$here/../systemd/kittbgpd.service" | grep -oE '^[A-Za-z]+=' | tr -d = | grep -v ExecStartPre | sort -u)
mod_keys=$(q "sorted($sc)" | python3 -c 'import json,sys; print("\n".join(json.load(sys.stdin)))' | grep -v KillMode | sort -u)
check "module unit and packaging/systemd/kittbgpd.service have the same [Service] keys" \
    diff <(echo "$unit_keys") <(echo "$mod_keys")

for c in bad-as bad-port bad-router-id bad-cost bad-metrics; do
    if ev "$c" > "$tmp/out" 2> "$tmp/err"; then
        fail "$c rejected (evaluated to $(cat "$tmp/out"))"
    else
        check "$c rejected by the module's types: $(grep -oE "is not of type.*" "$tmp/err" | head -1)" grep -q "is not of type" "$tmp/err"
    fi
done
finish
