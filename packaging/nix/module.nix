# NixOS module: services.kittbgpd.  Import it (see README "Deployment") and set
#   services.kittbgpd = { enable = true; settings = { router_id = "10.255.0.2"; ... }; };
# The settings become /etc/kittbgpd/kittbgpd.toml, checked at build time by
# `kittbgpd check`; the unit mirrors packaging/systemd/kittbgpd.service.
{ config, options, lib, pkgs, ... }:

let
  inherit (lib) mkOption mkEnableOption mkIf types literalExpression;
  cfg = config.services.kittbgpd;
  format = pkgs.formats.toml { };

  ipv4 = types.strMatching "([0-9]{1,3}\\.){3}[0-9]{1,3}";
  hostPort = types.strMatching ".+:[0-9]{1,5}";

  neighbor = types.submodule {
    freeformType = format.type;
    options = {
      name = mkOption { type = types.nullOr types.str; default = null; description = "Stable neighbor name (default: the interface)."; };
      address = mkOption { type = types.str; description = "Neighbor address (link-local IPv6 on a tunnel)."; };
      interface = mkOption { type = types.nullOr types.str; default = null; description = "Interface of a link-local neighbor."; };
      cost = mkOption {
        type = types.nullOr (types.either types.ints.u32 (types.enum [ "auto" ]));
        default = null;
        description = "Link cost (the MED), or \"auto\" to measure it.";
      };
    };
  };

  settingsType = types.submodule {
    freeformType = format.type;
    options = {
      router_id = mkOption { type = ipv4; description = "BGP identifier (an IPv4 address)."; };
      local_as = mkOption { type = types.ints.u32; description = "Local AS (iBGP: every neighbor's too)."; };
      listen_port = mkOption { type = types.port; default = 179; description = "TCP port for BGP."; };
      control_socket = mkOption { type = types.str; default = "/run/kittbgpd/kittbgpd.sock"; description = "Control socket (`kittbgpd show`)."; };
      control_group = mkOption { type = types.str; default = cfg.group; defaultText = literalExpression "config.services.kittbgpd.group"; description = "Group that may use the control socket (mode 0660)."; };
      neighbor = mkOption { type = types.listOf neighbor; default = [ ]; description = "The BGP neighbors (`[[neighbor]]`)."; };
      metrics = mkOption {
        type = types.nullOr (types.submodule { options.listen = mkOption { type = hostPort; description = "Prometheus endpoint, e.g. 127.0.0.1:9179."; }; });
        default = null;
        description = "`[metrics]`: off unless set.";
      };
    };
  };

  # null values are options left unset: TOML has no null.
  clean = v:
    if builtins.isAttrs v && !(v ? outPath) then lib.mapAttrs (_: clean) (lib.filterAttrs (_: x: x != null) v)
    else if builtins.isList v then map clean v
    else v;
  settings = clean cfg.settings;
  hasTunnels = settings ? wireguard;

  configFile =
    if cfg.configFile != null then cfg.configFile
    else format.generate "kittbgpd.toml" settings;
  # The node's WireGuard key is a secret outside the store: check against a throwaway one.
  checkFile =
    if cfg.configFile == null && hasTunnels
    then format.generate "kittbgpd-check.toml" (lib.recursiveUpdate settings { wireguard.private_key_file = "check.key"; })
    else configFile;
  checkedConfig =
    if !cfg.checkConfig then configFile
    else pkgs.runCommand "kittbgpd-checked.toml" {
      nativeBuildInputs = [ cfg.package ];
      passthru = { inherit configFile checkFile; };
    } ''
      cp ${checkFile} check.toml
      ${lib.optionalString (cfg.configFile == null && hasTunnels) "kittbgpd wg genkey -o check.key"}
      kittbgpd check -c check.toml > /dev/null
      cp ${configFile} $out
    '';
  etcPath = "/etc/kittbgpd/kittbgpd.toml";
  # NET_BIND_SERVICE only for a privileged port (unknown with configFile: kept).
  caps = [ "CAP_NET_ADMIN" "CAP_NET_RAW" ]
    ++ lib.optional (cfg.configFile != null || cfg.settings.listen_port < 1024) "CAP_NET_BIND_SERVICE";
in
{
  options.services.kittbgpd = {
    enable = mkEnableOption "kittbgpd, a BGP daemon for WireGuard routing fabrics";
    package = mkOption {
      type = types.package;
      default = pkgs.kittbgpd or (pkgs.callPackage ./package.nix { });
      defaultText = literalExpression "pkgs.callPackage ./package.nix { }";
      description = "The kittbgpd package.";
    };
    settings = mkOption {
      type = settingsType;
      default = { };
      example = literalExpression ''
        {
          router_id = "10.255.0.2";
          local_as = 4242421945;
          loopbacks = { ipv4 = [ "10.255.0.0/16" ]; originate = [ "10.255.0.2/32" ]; };
          neighbor = [ { interface = "wg1"; address = "fe80::1:2"; cost = "auto"; } ];
          metrics.listen = "127.0.0.1:9179";
        }
      '';
      description = "kittbgpd.toml as a Nix attribute set (README: configuration reference).";
    };
    configFile = mkOption {
      type = types.nullOr types.path;
      default = null;
      description = "A kittbgpd.toml to use instead of `settings`.";
    };
    checkConfig = mkOption {
      type = types.bool;
      default = true;
      description = "Run `kittbgpd check` on the file at build time (a configFile with a relative key path may need false).";
    };
    user = mkOption { type = types.str; default = "kittbgpd"; description = "User the daemon runs as."; };
    group = mkOption { type = types.str; default = "kittbgpd"; description = "Group of the user; owns the control socket."; };
    wireguardGo = mkOption {
      type = types.nullOr types.package;
      default = null;
      example = literalExpression "pkgs.wireguard-go";
      description = "wireguard-go for `[wireguard] backend = \"userspace\"` (or auto without the kernel module).";
    };
  };

  config = mkIf cfg.enable {
    assertions = [
      {
        # settings left at their default (priority 1500) exactly when configFile is used
        assertion = (cfg.configFile == null) != (options.services.kittbgpd.settings.highestPrio >= 1500);
        message = "services.kittbgpd: set either settings or configFile";
      }
    ];
    users.users.${cfg.user} = { isSystemUser = true; group = cfg.group; description = "kittbgpd daemon"; };
    users.groups.${cfg.group} = { };
    environment.etc."kittbgpd/kittbgpd.toml".source = checkedConfig;
    environment.systemPackages = [ cfg.package ];

    systemd.services.kittbgpd = {
      description = "kittbgpd BGP daemon for WireGuard fabrics";
      wantedBy = [ "multi-user.target" ];
      wants = [ "network-online.target" ];
      after = [ "network-online.target" ];
      # A changed file is reloaded (only the difference applied), not restarted.
      reloadTriggers = [ checkedConfig ];
      environment = lib.optionalAttrs (cfg.wireguardGo != null) {
        WG_USERSPACE_IMPLEMENTATION = "${cfg.wireguardGo}/bin/wireguard-go";
      };
      serviceConfig = {
        Type = "notify";
        NotifyAccess = "main";
        ExecStart = "${cfg.package}/bin/kittbgpd -c ${etcPath}";
        ExecReload = "${cfg.package}/bin/kittbgpd reload -c ${etcPath}";
        Restart = "on-failure";
        RestartSec = "2s";
        WatchdogSec = "30s";
        TimeoutStopSec = "15s";
        User = cfg.user;
        Group = cfg.group;
        AmbientCapabilities = caps;
        CapabilityBoundingSet = caps;
        NoNewPrivileges = true;
        RuntimeDirectory = [ "kittbgpd" "wireguard" ];
        RuntimeDirectoryMode = "0750";
        RuntimeDirectoryPreserve = true;
        StateDirectory = "kittbgpd";
        StateDirectoryMode = "0750";
        ConfigurationDirectory = "kittbgpd";
        ProtectSystem = "strict";
        ProtectHome = true;
        PrivateTmp = true;
        PrivateDevices = false;
        ProtectClock = true;
        ProtectControlGroups = true;
        ProtectHostname = true;
        ProtectKernelLogs = true;
        ProtectKernelModules = true;
        ProtectProc = "invisible";
        ProcSubset = "all";
        RestrictAddressFamilies = [ "AF_UNIX" "AF_INET" "AF_INET6" "AF_NETLINK" ];
        RestrictNamespaces = true;
        RestrictRealtime = true;
        RestrictSUIDSGID = true;
        LockPersonality = true;
        MemoryDenyWriteExecute = true;
        SystemCallArchitectures = "native";
        SystemCallFilter = [ "@system-service" ];
        SystemCallErrorNumber = "EPERM";
        UMask = "0027";
        DevicePolicy = "closed";
        DeviceAllow = [ "/dev/net/tun rw" ];
      } // lib.optionalAttrs (cfg.wireguardGo != null) {
        # wireguard-go runs in this cgroup: a restart must not end the tunnels.
        KillMode = "process";
      };
    };
  };
}
