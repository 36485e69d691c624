#!/usr/bin/env python3
"""json2toml.py: JSON (stdin) to TOML (stdout), what nixpkgs' pkgs.formats.toml does with
remarshal at build time; enough for kittbgpd.toml (tables, arrays of tables, scalars)."""
import json
import sys


def scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(scalar(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {scalar(x)}" for k, x in v.items()) + " }"
    raise ValueError(f"no TOML for {v!r}")


def table(d, path, out):
    subs = []
    for k, v in d.items():
        if isinstance(v, dict):
            subs.append((k, v, False))
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            subs.append((k, v, True))
        else:
            out.append(f"{json.dumps(k)} = {scalar(v)}")
    for k, v, many in subs:
        name = path + [json.dumps(k)]
        for item in (v if many else [v]):
            out.append("")
            out.append(("[[%s]]" if many else "[%s]") % ".".join(name))
            table(item, name, out)


lines = []
table(json.load(sys.stdin), [], lines)
print("\n".join(lines))
