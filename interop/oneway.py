#!/usr/bin/env python3
"""oneway.py -- one-way packet stream for outage measurements (labs and benchmarks).

  oneway.py send --to ADDR --port P --from SRC --interval-ms MS --seconds S
      sends one UDP datagram (sequence number, send time) every MS ms from SRC to ADDR:P
  oneway.py recv --port P --seconds S --out FILE
      writes "EPOCH_MS SEQ" per datagram received (wall clock: the same clock as the lab's
      EPOCHREALTIME, across namespaces)
  oneway.py gap --file FILE --after EPOCH_MS --interval-ms MS
      prints the longest silence in ms that ends after EPOCH_MS: from the last datagram received
      before it until the next one (the outage a flow sees), minus one interval; "-1" when
      nothing arrived after EPOCH_MS

Direction matters: a datagram from node i to node j crosses the network once, so the outage
of i -> j depends only on the routers on that way, not on the way back.
"""
import argparse
import socket
import struct
import sys
import time

FMT = "!Qd"


def send(a):
    fam = socket.AF_INET6 if ":" in a.to else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.bind((a.src, 0))
    step = a.interval_ms / 1000.0
    end = time.monotonic() + a.seconds
    seq = 0
    nxt = time.monotonic()
    while nxt < end:
        try:
            s.sendto(struct.pack(FMT, seq, time.time()), (a.to, a.port))
        except OSError:
            pass  # no route for a moment: that datagram is lost, as traffic would be
        seq += 1
        nxt += step
        time.sleep(max(0.0, nxt - time.monotonic()))


def recv(a):
    fam = socket.AF_INET6 if a.v6 else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.bind(("::" if a.v6 else "0.0.0.0", a.port))
    end = time.monotonic() + a.seconds
    with open(a.out, "w", buffering=1) as f:
        while True:
            left = end - time.monotonic()
            if left <= 0:
                break
            s.settimeout(left)
            try:
                data = s.recv(64)
            except socket.timeout:
                break
            if len(data) < struct.calcsize(FMT):
                continue
            seq, _ = struct.unpack(FMT, data[: struct.calcsize(FMT)])
            f.write("%d %d\n" % (int(time.time() * 1000), seq))


def gap(a):
    times = []
    with open(a.file) as f:
        for line in f:
            p = line.split()
            if len(p) == 2:
                times.append(int(p[0]))
    times.sort()
    best = -1
    for prev, cur in zip(times, times[1:]):
        if cur >= a.after:
            best = max(best, cur - prev)
    if best < 0:
        print(-1)
    else:
        print(max(0, best - int(a.interval_ms)))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("send")
    s.add_argument("--to", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--from", dest="src", required=True)
    s.add_argument("--interval-ms", type=float, default=5)
    s.add_argument("--seconds", type=float, required=True)
    r = sub.add_parser("recv")
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--seconds", type=float, required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--v6", action="store_true")
    g = sub.add_parser("gap")
    g.add_argument("--file", required=True)
    g.add_argument("--after", type=int, required=True)
    g.add_argument("--interval-ms", type=float, default=5)
    a = p.parse_args()
    {"send": send, "recv": recv, "gap": gap}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
