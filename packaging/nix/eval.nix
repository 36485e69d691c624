# Offline evaluation of module.nix for packaging/nix/test.sh: nixpkgs' lib only, the
# NixOS options the module writes declared as stubs, pkgs stubbed (formats.toml keeps
# the value it would render; runCommand keeps its script).
{ libPath, case ? "good" }:
let
  lib = import libPath;
  inherit (lib) mkOption types;
  fakePath = name: "/nix/store/00000000000000000000000000000000-${name}";
  tomlValue = with types; let v = nullOr (oneOf [ bool int float str path (attrsOf v) (listOf v) ]) // { description = "TOML value"; }; in v;
  pkgs = {
    formats.toml = { }: {
      type = types.attrsOf tomlValue;
      generate = name: value: { inherit name value; outPath = fakePath name; };
    };
    runCommand = name: env: script: { inherit name env script; outPath = fakePath name; };
    callPackage = _: _: throw "package is set by the test";
  };
  stubs = {
    options = {
      assertions = mkOption { type = types.listOf types.anything; default = [ ]; };
      users.users = mkOption { type = types.attrsOf types.anything; default = { }; };
      users.groups = mkOption { type = types.attrsOf types.anything; default = { }; };
      environment.etc = mkOption { type = types.attrsOf types.anything; default = { }; };
      environment.systemPackages = mkOption { type = types.listOf types.anything; default = [ ]; };
      systemd.services = mkOption { type = types.attrsOf types.anything; default = { }; };
    };
  };
  package = { type = "derivation"; name = "kittbgpd"; outPath = fakePath "kittbgpd"; };
  wireguardGo = { type = "derivation"; name = "wireguard-go"; outPath = fakePath "wireguard-go"; };
  good = {
    services.kittbgpd = {
      enable = true;
      inherit package wireguardGo;
      settings = {
        router_id = "10.255.0.2";
        local_as = 4242421945;
        listen_port = 1790;
        loopbacks = { ipv4 = [ "10.255.0.0/16" ]; ipv6 = [ "fd00:255::/48" ]; originate = [ "10.255.0.2/32" ]; };
        defaults.hold_time = 9;
        kernel.enabled = true;
        metrics.listen = "127.0.0.1:9179";
        wireguard = { private_key_file = "/var/lib/kittbgpd/wg.key"; backend = "userspace"; };
        neighbor = [
          { interface = "wg1"; address = "fe80::1:2"; cost = "auto";
            wireguard = { public_key = "Hs9eZ1dq3ikFh9EJBkMoZ2D2mb6CXyJBsLz3oE6H6Ww="; endpoint = "192.0.2.1:51820"; local_address = "fe80::2:1"; }; }
          { name = "to-node3"; interface = "wg3"; address = "fe80::3:2"; cost = 10; }
        ];
      };
    };
  };
  bad = {
    bad-as = { services.kittbgpd.settings.local_as = -1; };
    bad-port = { services.kittbgpd.settings.listen_port = 70000; };
    bad-router-id = { services.kittbgpd.settings.router_id = "10.255.0"; };
    bad-cost = { services.kittbgpd.settings.neighbor = [ { interface = "wg1"; address = "fe80::1:2"; cost = "fast"; } ]; };
    bad-metrics = { services.kittbgpd.settings.metrics.listen = 9179; };
  };
  eval = extra: lib.evalModules { modules = [ stubs ./module.nix { _module.args = { inherit pkgs; }; } good extra ]; };
  both = eval { services.kittbgpd.configFile = /etc/hostname; };
  cfg = (eval (bad.${case} or { })).config;
  svc = cfg.systemd.services.kittbgpd;
  etc = cfg.environment.etc."kittbgpd/kittbgpd.toml".source;
in
if case == "good" then {
  service = svc;
  user = cfg.users.users.kittbgpd;
  groups = builtins.attrNames cfg.users.groups;
  # the checked file is a runCommand: its script, and the values format.generate renders
  check_script = etc.script;
  toml = etc.env.passthru.configFile.value;
  check_toml = etc.env.passthru.checkFile.value;
  failed_assertions = map (a: a.message) (lib.filter (a: !a.assertion) cfg.assertions);
  both_failed_assertions = map (a: a.message) (lib.filter (a: !a.assertion) both.config.assertions);
}
else builtins.deepSeq svc (builtins.deepSeq (cfg.services.kittbgpd.settings) "accepted")
