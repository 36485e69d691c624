#!/usr/bin/env python3
"""Userspace UDP delay relay for one point-to-point link (stdlib only).

Two UDP sockets, side A and side B.  Every datagram that arrives on side A is
held for DELAY ms (+/- JITTER ms, dropped with probability LOSS %) and then
sent out of side B to B's peer, and vice versa.  Both WireGuard endpoints use
the relay socket of their own side as the peer Endpoint, so all tunnel traffic
of the link passes through here and RTT grows by about 2*DELAY.

Per direction the relay is FIFO: a packet is never sent before the packet that
arrived ahead of it (jitter therefore does not reorder; lowering the delay at
run time drains the queue in order).

Delay/jitter/loss can be changed while running: write "DELAY [JITTER [LOSS]]"
(milliseconds, milliseconds, percent; floats allowed) into the control file.
One line sets both directions; a second line sets the B->A direction apart
(the first line is then A->B only).  LOSS 100 blackholes the direction.  The
file is polled every 100 ms; SIGHUP re-reads it at once.  SIGUSR1 prints
counters to stderr.

(interop/relay.py of kittbgpd: copied from shared/lab/relay.py, with the
optional per-direction second line and drop counters per direction.)

Example:
  relay.py --name n1-n2 --a 172.31.1.1:40001 --a-peer 172.31.1.2:51002 \
           --b 172.31.2.1:40001 --b-peer 172.31.2.2:51001 --ctl /run/lab/link-1-2.delay
  echo "25 2 0.5" > /run/lab/link-1-2.delay
"""
import argparse
import asyncio
import os
import random
import signal
import sys
import time


def hostport(s):
    host, _, port = s.rpartition(":")
    host = host.strip("[]")
    return host, int(port)


class Side(asyncio.DatagramProtocol):
    def __init__(self, relay, name, peer):
        self.relay = relay
        self.name = name
        self.peer = peer          # where datagrams for this side are sent
        self.transport = None
        self.last_out = 0.0       # FIFO: loop time of last scheduled send
        self.rx = 0
        self.tx = 0
        self.dropped = 0

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.rx += 1
        if self.peer != addr:      # learn (e.g. after a WireGuard port change)
            self.peer = addr
        self.relay.forward(self, data)

    def error_received(self, exc):
        # ICMP port unreachable etc. (peer not up yet) -- ignore
        pass

    def send(self, data):
        if self.transport is not None and self.peer is not None:
            self.tx += 1
            self.transport.sendto(data, self.peer)


class Relay:
    def __init__(self, args):
        self.args = args
        # per direction, keyed by the destination side's name: "B" = A->B, "A" = B->A
        p = (args.delay / 1000.0, args.jitter / 1000.0, args.loss / 100.0)
        self.params = {"A": p, "B": p}
        self.ctl_sig = None
        self.loop = None
        self.a = self.b = None

    def forward(self, src, data):
        dst = self.b if src is self.a else self.a
        delay, jitter, loss = self.params[dst.name]
        if loss > 0 and (loss >= 1.0 or random.random() < loss):
            dst.dropped += 1
            return
        d = delay
        if jitter > 0:
            d += random.uniform(-jitter, jitter)
        now = self.loop.time()
        t = now + max(d, 0.0)
        if t < dst.last_out:
            t = dst.last_out
        dst.last_out = t
        if t <= now:
            dst.send(data)
        else:
            self.loop.call_at(t, dst.send, data)

    def read_ctl(self, force=False):
        path = self.args.ctl
        if not path:
            return
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return
        sig = (st.st_mtime_ns, st.st_size, st.st_ino)
        if sig == self.ctl_sig and not force:
            return
        self.ctl_sig = sig
        try:
            with open(path) as f:
                lines = [ln.split() for ln in f.read().splitlines() if ln.strip()]
            parsed = []
            for fields in lines[:2]:
                vals = [float(x) for x in fields[:3]]
                parsed.append((max(vals[0], 0.0) / 1000.0,
                               max(vals[1], 0.0) / 1000.0 if len(vals) > 1 else 0.0,
                               min(max(vals[2], 0.0), 100.0) / 100.0 if len(vals) > 2 else 0.0))
        except (OSError, ValueError, IndexError) as e:
            print(f"relay {self.args.name}: bad control file: {e}", file=sys.stderr, flush=True)
            return
        if not parsed:
            return
        self.params = {"B": parsed[0], "A": parsed[-1]}
        for dst, label in (("B", "A->B"), ("A", "B->A")):
            d, j, l = self.params[dst]
            print(f"{time.strftime('%H:%M:%S')} relay {self.args.name} {label}: delay={d*1000:g}ms "
                  f"jitter={j*1000:g}ms loss={l*100:g}%", file=sys.stderr, flush=True)

    def stats(self):
        for s in (self.a, self.b):
            print(f"relay {self.args.name} side {s.name}: rx={s.rx} tx={s.tx} dropped={s.dropped} "
                  f"peer={s.peer}", file=sys.stderr, flush=True)

    async def run(self):
        self.loop = asyncio.get_running_loop()
        a_bind, b_bind = hostport(self.args.a), hostport(self.args.b)
        a_peer = hostport(self.args.a_peer) if self.args.a_peer else None
        b_peer = hostport(self.args.b_peer) if self.args.b_peer else None
        self.a = Side(self, "A", a_peer)
        self.b = Side(self, "B", b_peer)
        await self.loop.create_datagram_endpoint(lambda: self.a, local_addr=a_bind)
        await self.loop.create_datagram_endpoint(lambda: self.b, local_addr=b_bind)
        self.read_ctl(force=True)
        stop = asyncio.Event()
        self.loop.add_signal_handler(signal.SIGHUP, self.read_ctl)   # re-read if changed (lab_delay: mv + HUP)
        self.loop.add_signal_handler(signal.SIGUSR1, self.stats)
        self.loop.add_signal_handler(signal.SIGTERM, stop.set)
        self.loop.add_signal_handler(signal.SIGINT, stop.set)
        print(f"relay {self.args.name}: A {a_bind} <-> B {b_bind} up", file=sys.stderr, flush=True)
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.args.poll)
            except asyncio.TimeoutError:
                pass
            self.read_ctl()
        self.stats()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", default="relay")
    p.add_argument("--a", required=True, help="bind address of side A, IP:PORT")
    p.add_argument("--a-peer", help="initial peer of side A (learned from traffic otherwise)")
    p.add_argument("--b", required=True, help="bind address of side B, IP:PORT")
    p.add_argument("--b-peer", help="initial peer of side B (learned from traffic otherwise)")
    p.add_argument("--ctl", help="control file: 'DELAY_MS [JITTER_MS [LOSS_PCT]]'")
    p.add_argument("--delay", type=float, default=0.0, help="initial one-way delay, ms")
    p.add_argument("--jitter", type=float, default=0.0, help="initial jitter, +/- ms")
    p.add_argument("--loss", type=float, default=0.0, help="initial loss, percent")
    p.add_argument("--poll", type=float, default=0.1, help="control file poll interval, s")
    args = p.parse_args()
    asyncio.run(Relay(args).run())


if __name__ == "__main__":
    main()
