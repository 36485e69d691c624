# The kittbgpd package: `pkgs.callPackage ./package.nix { }`.
{ lib, rustPlatform }:

let
  root = ../..;
in
rustPlatform.buildRustPackage {
  pname = "kittbgpd";
  version = (lib.importTOML (root + "/Cargo.toml")).package.version;
  # Only what cargo reads: no target/, no lab state.
  src = lib.fileset.toSource {
    inherit root;
    fileset = lib.fileset.unions [
      (root + "/Cargo.toml")
      (root + "/Cargo.lock")
      (root + "/src")
      (root + "/benches")
      (root + "/tests")
    ];
  };
  cargoLock.lockFile = root + "/Cargo.lock";
  # `cargo test` runs in ./test.sh (some tests open sockets a build sandbox may refuse).
  doCheck = false;
  meta = {
    description = "BGP daemon for WireGuard routing fabrics: iBGP over link-local IPv6, route reflection, MED as measured path cost";
    license = with lib.licenses; [ mit asl20 ];
    mainProgram = "kittbgpd";
    platforms = lib.platforms.linux;
  };
}
