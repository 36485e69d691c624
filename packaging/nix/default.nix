# `nix-build packaging/nix` builds the package; the module is `packaging/nix/module.nix`
# (or `(import ./packaging/nix { }).module`).
{ pkgs ? import <nixpkgs> { } }:
{
  kittbgpd = pkgs.callPackage ./package.nix { };
  module = ./module.nix;
}
