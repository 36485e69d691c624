#!/usr/bin/python3
"""capture_bird.py -- minimal BGP speaker that records what a real BIRD 2 sends.

Standard library only.  Run by interop/capture_bird.sh inside a network
namespace next to one running BIRD; it is not a BGP implementation, just
enough of one to keep BIRD talking.

    capture_bird.py capture --listen 'fe80::2:1%wg1' --out DIR --birdc-sock SOCK
                            --proto wg2 --withdraw-cmd 'ip -n X addr del ...'
                            --bird-log FILE
    capture_bird.py decode FILE...      # annotated hex dump of raw BGP messages

`capture` runs several sessions in a row (BIRD connects to us; we only listen):

  round 1  full session: BIRD's OPEN, KEEPALIVE, UPDATEs (IPv4 via RFC 8950
           MP_REACH and IPv6), End-of-RIB markers; then the wrapper's
           --withdraw-cmd removes one loopback of each family from BIRD's `lo`
           so `protocol direct` withdraws it (MP_UNREACH); then
           `birdc disable PROTO "maintenance"` -> Cease/Administrative Shutdown
           with a shutdown communication (RFC 9003).  Every byte received is
           saved as bird_session_stream.bin.
  round 2  `birdc enable`, session again, `birdc disable PROTO` (no message).
  round 3  we send BIRD a Cease/Administrative Shutdown with a message; the
           wrapper's log excerpt shows BIRD's wording for a received Cease.
  round 4  same without a message.
  round 5  we propose hold time 3 and then stay silent: BIRD's hold timer
           expires; we record its NOTIFICATION (4/0) and BIRD's log wording.
  round 6  we close the TCP connection without a NOTIFICATION (BIRD's wording
           for a lost connection).

Files are written to --out as bird_*.bin (see tests/golden/README.md) plus
NNN-rR-TYPE.bin in --seq-dir for every message in arrival order.
"""

import argparse
import os
import select
import socket
import struct
import subprocess
import sys
import time

MARKER = b"\xff" * 16
TYPES = {1: "OPEN", 2: "UPDATE", 3: "NOTIFICATION", 4: "KEEPALIVE", 5: "ROUTE-REFRESH"}
AS_TRANS = 23456

# ---------------------------------------------------------------- encoding


def msg(mtype, body=b""):
    return MARKER + struct.pack("!HB", 19 + len(body), mtype) + body


def cap(code, value=b""):
    return struct.pack("!BB", code, len(value)) + value


def our_open(asn, router_id, hold, add_paths=False):
    """OPEN with the capabilities the fabric uses (what kittbgpd will send);
    with add_paths, also ADD-PATH receive for IPv4 and IPv6 unicast (RFC 7911)."""
    caps = b"".join([
        cap(1, struct.pack("!HBB", 1, 0, 1)),            # MP IPv4 unicast
        cap(1, struct.pack("!HBB", 2, 0, 1)),            # MP IPv6 unicast
        cap(2),                                          # route refresh
        cap(70),                                         # enhanced route refresh
        cap(5, struct.pack("!HHH", 1, 1, 2)),            # extended next hop: IPv4/unicast over IPv6
        cap(6),                                          # extended message (RFC 8654)
        cap(64, struct.pack("!H", 120)),                 # graceful restart: aware, restart time 120, no AFs
        cap(65, struct.pack("!I", asn)),                 # 4-octet AS
    ] + ([cap(69, struct.pack("!HBBHBB", 1, 1, 1, 2, 1, 1))] if add_paths else []))  # ADD-PATH: receive
    opt = struct.pack("!BB", 2, len(caps)) + caps        # one optional parameter type 2 holding all caps
    my_as = asn if asn <= 0xFFFF else AS_TRANS
    body = struct.pack("!BHH4sB", 4, my_as, hold, socket.inet_aton(router_id), len(opt)) + opt
    return msg(1, body)


def notification(code, sub, data=b""):
    return msg(3, struct.pack("!BB", code, sub) + data)


def shutdown_data(text):
    raw = text.encode()
    return bytes([len(raw)]) + raw


# ---------------------------------------------------------------- session


class Speaker:
    def __init__(self, args):
        self.a = args
        self.out = args.out
        self.seq = 0
        self.saved = {}
        self.seqdir = args.seq_dir or os.path.join(self.out, "seq")
        os.makedirs(self.seqdir, exist_ok=True)
        host, _, scope = args.listen.partition("%")
        info = socket.getaddrinfo(args.listen, args.port, socket.AF_INET6, socket.SOCK_STREAM)[0]
        self.ls = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(info[4])
        self.ls.listen(4)
        log(f"listening on [{host}%{scope}]:{args.port}")

    # -- helpers
    def birdc(self, *cmd):
        r = subprocess.run([self.a.birdc, "-s", self.a.birdc_sock, *cmd],
                           capture_output=True, text=True, timeout=20)
        log(f"birdc {' '.join(cmd)!r}: {r.stdout.strip().splitlines()[-1] if r.stdout.strip() else r.stderr.strip()}")

    def save(self, name, data):
        if name in self.saved:
            return
        self.saved[name] = data
        with open(os.path.join(self.out, name), "wb") as f:
            f.write(data)
        log(f"  -> {name} ({len(data)} bytes)")

    def accept(self, timeout=60):
        self.ls.settimeout(timeout)
        c, peer = self.ls.accept()
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        log(f"connection from {peer[0]}%{peer[3]} port {peer[1]}")
        self.conn, self.buf, self.stream = c, b"", b""
        return c

    def recv_msg(self, timeout):
        """Next whole message or None on timeout; raises EOFError on close."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 19:
                if self.buf[:16] != MARKER:
                    raise ValueError("bad marker")
                ln = struct.unpack("!H", self.buf[16:18])[0]
                if len(self.buf) >= ln:
                    m, self.buf = self.buf[:ln], self.buf[ln:]
                    return m
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([self.conn], [], [], left)
            if not r:
                return None
            data = self.conn.recv(65536)
            if not data:
                raise EOFError
            self.buf += data
            self.stream += data

    def record(self, rnd, m):
        self.seq += 1
        kind = classify(m)
        with open(os.path.join(self.seqdir, f"{self.seq:03d}-r{rnd}-{kind}.bin"), "wb") as f:
            f.write(m)
        log(f"r{rnd} recv {kind} ({len(m)} bytes)")
        return kind

    def establish(self, rnd, hold=240):
        """Accept BIRD's connection and exchange OPEN/KEEPALIVE.  Returns kinds seen."""
        self.accept()
        self.conn.sendall(our_open(self.a.asn, self.a.router_id, hold, self.a.add_paths))
        seen = []
        got_open = False
        while True:
            m = self.recv_msg(15)
            if m is None:
                raise TimeoutError("no OPEN/KEEPALIVE from BIRD")
            kind = self.record(rnd, m)
            seen.append((kind, m))
            if kind == "open":
                got_open = True
                self.conn.sendall(msg(4))
            elif kind == "keepalive" and got_open:
                log(f"r{rnd} Established")
                return seen
            elif kind == "notification":
                raise RuntimeError("BIRD refused: " + m[19:].hex())

    def pump(self, rnd, duration, until=None, keepalive=True):
        """Read for `duration` s (or until `until(kinds)` is true), answer with keepalives."""
        end = time.monotonic() + duration
        nextka = time.monotonic() + 1.0
        seen = []
        while time.monotonic() < end:
            if keepalive and time.monotonic() >= nextka:
                self.conn.sendall(msg(4))
                nextka = time.monotonic() + 1.0
            try:
                m = self.recv_msg(min(0.2, max(0.0, end - time.monotonic())))
            except EOFError:
                log(f"r{rnd} BIRD closed the connection")
                seen.append(("eof", b""))
                return seen
            if m is None:
                continue
            seen.append((self.record(rnd, m), m))
            if until and until([k for k, _ in seen]):
                return seen
        return seen

    def close(self):
        try:
            self.conn.close()
        except OSError:
            pass

    # -- rounds
    def run(self):
        a = self.a
        # round 1: everything BIRD sends in a normal session, then withdraw, then disable with message
        seen = self.establish(1)
        want = {"update_v4", "update_v6", "eor_v4", "eor_v6"}
        seen += self.pump(1, 10, until=lambda ks: want <= set(ks))
        seen += self.pump(1, 1.5)     # anything straggling
        log("r1 withdrawing one loopback per family: " + a.withdraw_cmd)
        subprocess.run(a.withdraw_cmd, shell=True, check=True)
        seen += self.pump(1, 8, until=lambda ks: {"withdraw_v4", "withdraw_v6"} <= set(ks))
        seen += self.pump(1, 1.0)
        self.birdc("disable", a.proto, '"%s"' % a.shutdown_msg)   # birdc wants the text quoted
        seen += self.pump(1, 8, until=lambda ks: "eof" in ks)
        for kind, m in seen:
            if kind == "notification":
                self.save("bird_notification_cease.bin", m)
            elif kind not in ("eof",):
                self.save(f"bird_{kind}.bin", m)
        self.save("bird_session_stream.bin", self.stream)
        self.close()

        # round 2: disable without a shutdown communication
        self.birdc("enable", a.proto)
        self.establish(2)
        self.pump(2, 10, until=lambda ks: {"eor_v4", "eor_v6"} <= set(ks))
        self.birdc("disable", a.proto)
        for kind, m in self.pump(2, 8, until=lambda ks: "eof" in ks):
            if kind == "notification":
                self.save("bird_notification_cease_nomsg.bin", m)
        self.close()

        # rounds 3, 4: we send BIRD Cease/Administrative Shutdown (with and without message)
        self.birdc("enable", a.proto)
        for rnd, data in ((3, shutdown_data("kittbgpd capture: shutdown")), (4, b"")):
            self.establish(rnd)
            self.pump(rnd, 10, until=lambda ks: {"eor_v4", "eor_v6"} <= set(ks))
            log(f"r{rnd} sending Cease/Administrative Shutdown data={data!r}")
            self.conn.sendall(notification(6, 2, data))
            time.sleep(0.3)
            self.close()
            log_mark(a.bird_log, f"after round {rnd}")

        # round 5: propose hold time 3, then send nothing: BIRD's hold timer expires
        seen = self.establish(5, hold=3)
        t0 = time.monotonic()
        seen = self.pump(5, 12, until=lambda ks: "eof" in ks, keepalive=False)
        log(f"r5 BIRD closed {time.monotonic() - t0:.1f} s after our last message (hold time 3)")
        for kind, m in seen:
            if kind == "notification":
                self.save("bird_notification_hold_expired.bin", m)
        self.close()
        log_mark(a.bird_log, "after round 5")

        # round 6: TCP close without NOTIFICATION (what a crashed daemon looks like to BIRD)
        self.establish(6)
        self.pump(6, 10, until=lambda ks: {"eor_v4", "eor_v6"} <= set(ks))
        log("r6 closing TCP without NOTIFICATION")
        self.close()
        time.sleep(0.5)
        log_mark(a.bird_log, "after round 6")
        missing = [n for n in ("bird_open.bin", "bird_keepalive.bin", "bird_update_v4.bin",
                               "bird_update_v6.bin", "bird_withdraw_v4.bin", "bird_withdraw_v6.bin",
                               "bird_eor_v4.bin", "bird_eor_v6.bin", "bird_notification_cease.bin")
                   if n not in self.saved]
        if missing:
            log("MISSING: " + " ".join(missing))
            return 1
        log("all golden files captured")
        return 0


def log_mark(path, what):
    if path and os.path.exists(path):
        with open(path, "a") as f:
            f.write(f"--- capture_bird.py: {what} ---\n")


def log(s):
    print(f"[{time.strftime('%H:%M:%S')}] {s}", flush=True)


# ---------------------------------------------------------------- decoding

def mp_afi(attrs, code):
    for t, flags, v in attrs:
        if t == code and len(v) >= 3:
            return struct.unpack("!HB", v[:3])
    return None


def parse_attrs(b):
    out, i = [], 0
    while i < len(b):
        flags, t = b[i], b[i + 1]
        if flags & 0x10:
            ln = struct.unpack("!H", b[i + 2:i + 4])[0]
            hl = 4
        else:
            ln = b[i + 2]
            hl = 3
        out.append((t, flags, b[i + hl:i + hl + ln]))
        i += hl + ln
    return out


def split_update(m):
    body = m[19:]
    wl = struct.unpack("!H", body[:2])[0]
    withdrawn = body[2:2 + wl]
    al = struct.unpack("!H", body[2 + wl:4 + wl])[0]
    attrs = body[4 + wl:4 + wl + al]
    nlri = body[4 + wl + al:]
    return withdrawn, attrs, nlri


def classify(m):
    t = m[18]
    if t == 2:
        withdrawn, attrs, nlri = split_update(m)
        if not withdrawn and not attrs and not nlri:
            return "eor_v4"                              # RFC 4724: empty UPDATE = IPv4 unicast EoR
        pa = parse_attrs(attrs)
        fam = {(1, 1): "v4", (2, 1): "v6"}
        r = mp_afi(pa, 14)
        if r:
            return "update_" + fam.get(r, f"afi{r[0]}_{r[1]}")
        u = mp_afi(pa, 15)
        if u:
            val = [v for tt, _, v in pa if tt == 15][0]
            kind = "eor_" if len(val) == 3 and len(pa) == 1 else "withdraw_"
            return kind + fam.get(u, f"afi{u[0]}_{u[1]}")
        if nlri:
            return "update_v4legacy"
        if withdrawn:
            return "withdraw_v4legacy"
        return "update_other"
    return TYPES.get(t, f"type{t}").lower().replace("-", "_")


ATTR_NAMES = {1: "ORIGIN", 2: "AS_PATH", 3: "NEXT_HOP", 4: "MULTI_EXIT_DISC", 5: "LOCAL_PREF",
              6: "ATOMIC_AGGREGATE", 7: "AGGREGATOR", 8: "COMMUNITIES", 9: "ORIGINATOR_ID",
              10: "CLUSTER_LIST", 14: "MP_REACH_NLRI", 15: "MP_UNREACH_NLRI", 16: "EXT_COMMUNITIES",
              32: "LARGE_COMMUNITIES"}
CAP_NAMES = {1: "Multiprotocol", 2: "Route refresh", 5: "Extended next hop (RFC 8950)",
             6: "Extended message (RFC 8654)", 9: "BGP role", 64: "Graceful restart",
             65: "4-octet AS number", 69: "ADD-PATH", 70: "Enhanced route refresh",
             71: "Long-lived graceful restart", 73: "FQDN"}
NOTIF = {(6, 2): "Cease / Administrative Shutdown", (6, 4): "Cease / Administrative Reset",
         (4, 0): "Hold Timer Expired", (6, 3): "Cease / Peer De-configured"}


def hx(b):
    return b.hex(" ") if b else "(none)"


# Set by `decode --add-paths`: prefix lists carry a 4-octet Path Identifier first (RFC 7911).
ADD_PATHS = False


def prefixes(afi, b):
    out, i = [], 0
    while i < len(b):
        path = ""
        if ADD_PATHS:
            path = f"path {int.from_bytes(b[i:i + 4], 'big')} "
            b = b[:i] + b[i + 4:]
        plen = b[i]
        n = (plen + 7) // 8
        raw = b[i + 1:i + 1 + n]
        if afi == 1:
            addr = socket.inet_ntop(socket.AF_INET, raw + b"\0" * (4 - n))
        else:
            addr = socket.inet_ntop(socket.AF_INET6, raw + b"\0" * (16 - n))
        out.append((b[i:i + 1 + n], f"{path}{addr}/{plen}"))
        i += 1 + n
    return out


def decode(m):
    """Annotated dump: list of (hex, meaning) lines."""
    L = []
    ln, t = struct.unpack("!HB", m[16:19])
    L.append((hx(m[:16]), "marker (16 x 0xff)"))
    L.append((hx(m[16:18]), f"length = {ln}"))
    L.append((hx(m[18:19]), f"type = {t} ({TYPES.get(t, '?')})"))
    b = m[19:]
    if t == 1:
        ver, my_as, hold, rid, optlen = struct.unpack("!BHH4sB", b[:10])
        L.append((hx(b[0:1]), f"version = {ver}"))
        L.append((hx(b[1:3]), f"my AS = {my_as}" + (" (AS_TRANS, real AS in capability 65)" if my_as == AS_TRANS else "")))
        L.append((hx(b[3:5]), f"hold time = {hold} s"))
        L.append((hx(b[5:9]), f"BGP identifier = {socket.inet_ntoa(rid)}"))
        L.append((hx(b[9:10]), f"optional parameters length = {optlen}"))
        i = 10
        while i < 10 + optlen:
            pt, pl = b[i], b[i + 1]
            L.append((hx(b[i:i + 2]), f"optional parameter type {pt} (capabilities), length {pl}"))
            j = i + 2
            while j < i + 2 + pl:
                cc, cl = b[j], b[j + 1]
                v = b[j + 2:j + 2 + cl]
                what = CAP_NAMES.get(cc, "unknown")
                if cc == 1:
                    afi, _, safi = struct.unpack("!HBB", v)
                    what += f": AFI {afi} ({'IPv4' if afi == 1 else 'IPv6'}), SAFI {safi} (unicast)"
                elif cc == 65:
                    what += f": AS {struct.unpack('!I', v)[0]}"
                elif cc == 5:
                    tr = [struct.unpack("!HHH", v[k:k + 6]) for k in range(0, len(v), 6)]
                    what += ": " + ", ".join(f"NLRI AFI {x} SAFI {y} via next hop AFI {z}" for x, y, z in tr)
                elif cc == 64:
                    fl = struct.unpack("!H", v[:2])[0]
                    what += f": flags 0x{fl >> 12:x} (R={fl >> 15 & 1}, N={fl >> 14 & 1}), restart time {fl & 0xfff} s"
                    for k in range(2, len(v), 4):
                        afi, safi, af = struct.unpack("!HBB", v[k:k + 4])
                        what += f"; AFI {afi} SAFI {safi} F=0x{af:02x}"
                    if len(v) == 2:
                        what += ", no AFI/SAFI entries"
                elif cc == 71:
                    what += ": " + hx(v)
                L.append((hx(b[j:j + 2 + cl]), f"  capability {cc} {what}, length {cl}"))
                j += 2 + cl
            i += 2 + pl
    elif t == 2:
        wl = struct.unpack("!H", b[:2])[0]
        L.append((hx(b[:2]), f"withdrawn routes length = {wl}"))
        if wl:
            for raw, p in prefixes(1, b[2:2 + wl]):
                L.append((hx(raw), f"  withdrawn {p}"))
        al = struct.unpack("!H", b[2 + wl:4 + wl])[0]
        L.append((hx(b[2 + wl:4 + wl]), f"total path attribute length = {al}"))
        i = 4 + wl
        end = i + al
        while i < end:
            flags, tc = b[i], b[i + 1]
            ext = flags & 0x10
            hl = 4 if ext else 3
            vl = struct.unpack("!H", b[i + 2:i + 4])[0] if ext else b[i + 2]
            v = b[i + hl:i + hl + vl]
            fl = "".join(n for bit, n in ((0x80, "O"), (0x40, "T"), (0x20, "P"), (0x10, "E")) if flags & bit) or "-"
            name = ATTR_NAMES.get(tc, f"type {tc}")
            L.append((hx(b[i:i + hl]), f"attribute flags 0x{flags:02x} ({fl}), type {tc} {name}, length {vl}"))
            if tc == 1:
                L.append((hx(v), f"  ORIGIN = {['IGP', 'EGP', 'INCOMPLETE'][v[0]]}"))
            elif tc == 2:
                L.append((hx(v), "  AS_PATH = empty (iBGP, locally originated)" if not v else "  AS_PATH segments"))
            elif tc in (4, 5):
                L.append((hx(v), f"  {name} = {struct.unpack('!I', v)[0]}"))
            elif tc == 9:
                L.append((hx(v), f"  ORIGINATOR_ID = {socket.inet_ntoa(v)}"))
            elif tc == 10:
                L.append((hx(v), "  CLUSTER_LIST = " + " ".join(socket.inet_ntoa(v[k:k + 4]) for k in range(0, len(v), 4))))
            elif tc == 14:
                afi, safi, nhl = struct.unpack("!HBB", v[:4])
                L.append((hx(v[:3]), f"  AFI {afi}, SAFI {safi}"))
                L.append((hx(v[3:4]), f"  next hop length = {nhl}"))
                nh = v[4:4 + nhl]
                for k in range(0, nhl, 16):
                    part = nh[k:k + 16]
                    if len(part) == 16:
                        L.append((hx(part), f"  next hop {'global' if k == 0 else 'link-local'} = {socket.inet_ntop(socket.AF_INET6, part)}"))
                    else:
                        L.append((hx(part), f"  next hop (IPv4) = {socket.inet_ntoa(part)}"))
                L.append((hx(v[4 + nhl:5 + nhl]), "  reserved (SNPA count) = 0"))
                for raw, p in prefixes(afi, v[5 + nhl:]):
                    L.append((hx(raw), f"  NLRI {p}"))
            elif tc == 15:
                afi, safi = struct.unpack("!HB", v[:3])
                L.append((hx(v[:3]), f"  AFI {afi}, SAFI {safi}" + ("  (no prefixes: End-of-RIB marker, RFC 4724)" if len(v) == 3 else "")))
                for raw, p in prefixes(afi, v[3:]):
                    L.append((hx(raw), f"  withdrawn {p}"))
            else:
                L.append((hx(v), "  value"))
            i += hl + vl
        for raw, p in prefixes(1, b[end:]):
            L.append((hx(raw), f"NLRI {p}"))
        if wl == 0 and al == 0 and len(b) == 4:
            L.append(("", "empty UPDATE = IPv4 unicast End-of-RIB marker (RFC 4724)"))
    elif t == 3:
        code, sub = b[0], b[1]
        L.append((hx(b[:2]), f"error code {code}, subcode {sub}: {NOTIF.get((code, sub), '?')}"))
        d = b[2:]
        if code == 6 and sub in (2, 4) and d:
            L.append((hx(d[:1]), f"shutdown communication length = {d[0]} (RFC 9003)"))
            L.append((hx(d[1:]), f"shutdown communication = {d[1:].decode(errors='replace')!r}"))
        elif d:
            L.append((hx(d), "data"))
        else:
            L.append(("", "no data"))
    return L


def dump(path):
    data = open(path, "rb").read()
    i = 0
    print(f"{os.path.basename(path)}: {len(data)} bytes")
    while i + 19 <= len(data):
        ln = struct.unpack("!H", data[i + 16:i + 18])[0]
        m = data[i:i + ln]
        print(f"  message at offset {i}: {classify(m)}")
        for h, what in decode(m):
            if len(h) > 48:
                chunks = [h[k:k + 48] for k in range(0, len(h), 48)]
                print(f"    {chunks[0]:<48}  {what}")
                for c in chunks[1:]:
                    print(f"    {c}")
            else:
                print(f"    {h:<48}  {what}")
        i += ln


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("capture")
    c.add_argument("--listen", required=True, help="address%%iface to listen on")
    c.add_argument("--port", type=int, default=1790)
    c.add_argument("--out", required=True)
    c.add_argument("--asn", type=int, default=4242421945)
    c.add_argument("--router-id", default="10.255.0.2")
    c.add_argument("--birdc", default="birdc")
    c.add_argument("--birdc-sock", required=True)
    c.add_argument("--proto", default="wg2")
    c.add_argument("--shutdown-msg", default="maintenance")
    c.add_argument("--withdraw-cmd", required=True)
    c.add_argument("--bird-log", default="")
    c.add_argument("--seq-dir", default="", help="where every message is written in arrival order (default OUT/seq)")
    c.add_argument("--add-paths", action="store_true", help="announce ADD-PATH receive (RFC 7911)")
    d = sub.add_parser("decode")
    d.add_argument("--add-paths", action="store_true", help="prefix lists carry path ids")
    d.add_argument("files", nargs="+")
    a = ap.parse_args()
    if a.cmd == "decode":
        global ADD_PATHS
        ADD_PATHS = a.add_paths
        for f in a.files:
            dump(f)
        return 0
    return Speaker(a).run()


if __name__ == "__main__":
    sys.exit(main())
