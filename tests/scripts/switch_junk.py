"""A hostile peer on a UML switch (network_switch.rs). Runs on the host.

  switch_junk.py CONTROL_SOCKET TARGET_MAC TARGET_IP

Joins the switch as a port (UML's daemon transport: request_v3 on the
control socket naming our datagram socket) and sends junk: random
datagrams of every size (shorter than an Ethernet header, up to far beyond
a frame), frames to the target's MAC and to broadcast with random IPv4 and
ARP payloads, IPv4 headers whose lengths lie, fragments, TCP, UDP and ICMP
with bad and good checksums, and a burst of SYNs from addresses nobody
has. Prints how many datagrams it sent.
"""

import os
import random
import socket
import struct
import sys


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ipv4(src, dst, proto, payload, total=None, frag=0x4000, ihl=5, good=True):
    total = 20 + len(payload) if total is None else total
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, total & 0xFFFF, random.getrandbits(16),
                    frag, 64, proto, 0, src, dst)
    if good:
        h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + payload


def l4(src, dst, proto, seg):
    pseudo = src + dst + struct.pack("!BBH", 0, proto, len(seg))
    c = csum(pseudo + seg)
    off = {6: 16, 17: 6}[proto]
    return seg[:off] + struct.pack("!H", c) + seg[off + 2:]


def main():
    ctl_path, mac_s, ip_s = sys.argv[1], sys.argv[2], sys.argv[3]
    target = bytes(int(x, 16) for x in mac_s.split(":"))
    tip = socket.inet_aton(ip_s)
    me_mac = bytes([0x02, 0x66, 0x66, 0x66, 0x66, 0x66])
    rnd = random.Random(1234)
    random.seed(1234)

    ctl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ctl.connect(ctl_path)
    data = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    name = b"\0ruml-junk-%d" % os.getpid()
    name = name + b"\0" * (108 - len(name))
    data.bind(name)
    ctl.sendall(struct.pack("=IIIH", 0xFEEDFACE, 3, 0, socket.AF_UNIX) + name)
    reply = b""
    while len(reply) < 110:
        d = ctl.recv(110 - len(reply))
        if not d:
            sys.exit("the switch closed the control connection")
        reply += d
    switch = reply[2:]
    sent = 0

    def send(frame):
        nonlocal sent
        try:
            data.sendto(frame, switch)
            sent += 1
        except OSError:
            pass

    def eth(dst, etype, payload):
        return dst + me_mac + struct.pack("!H", etype) + payload

    bcast = b"\xff" * 6
    for i in range(3000):
        kind = i % 10
        dst = target if i % 2 else bcast
        src = bytes([10, 9, 0, 100 + rnd.randrange(100)])
        if kind == 0:
            send(os.urandom(rnd.randrange(0, 14)))
        elif kind == 1:
            send(os.urandom(rnd.randrange(14, 4000)))
        elif kind == 2:
            send(eth(dst, 0x0800, os.urandom(rnd.randrange(0, 1500))))
        elif kind == 3:
            send(eth(dst, 0x0806, os.urandom(rnd.randrange(0, 60))))
        elif kind == 4:
            # Lying lengths, odd header lengths, fragments.
            p = ipv4(src, tip, rnd.choice([1, 6, 17]), os.urandom(rnd.randrange(0, 100)),
                     total=rnd.randrange(0, 70000), ihl=rnd.randrange(0, 16),
                     frag=rnd.randrange(0, 65536), good=rnd.random() < 0.5)
            send(eth(dst, 0x0800, p))
        elif kind == 5:
            # UDP with a length that lies, good IP checksum.
            seg = struct.pack("!HHHH", 7, rnd.choice([6000, 9, 0]), rnd.randrange(0, 65536), 0)
            seg += os.urandom(rnd.randrange(0, 64))
            send(eth(dst, 0x0800, ipv4(src, tip, 17, seg)))
        elif kind == 6:
            # Well-formed UDP to the echo port: answered (to nobody).
            seg = struct.pack("!HHHH", 4000, 6000, 8 + 16, 0) + os.urandom(16)
            send(eth(target, 0x0800, ipv4(src, tip, 17, l4(src, tip, 17, seg))))
        elif kind == 7:
            # ICMP: short, bad checksum, echo requests, echo replies.
            m = bytes([rnd.choice([0, 8, 3, 11, 255]), 0]) + os.urandom(rnd.randrange(0, 40))
            if len(m) >= 4 and rnd.random() < 0.5:
                m = m[:2] + b"\0\0" + m[4:]
                m = m[:2] + struct.pack("!H", csum(m)) + m[4:]
            send(eth(dst, 0x0800, ipv4(src, tip, 1, m)))
        elif kind == 8:
            # TCP with random flags and options, good checksums.
            off = rnd.randrange(0, 16)
            seg = struct.pack("!HHIIBBHHH", rnd.randrange(1, 65536), rnd.choice([5000, 22, 0]),
                              rnd.getrandbits(32), rnd.getrandbits(32), off << 4,
                              rnd.getrandbits(8), rnd.getrandbits(16), 0, 0)
            seg += os.urandom(rnd.randrange(0, 60))
            send(eth(target, 0x0800, ipv4(src, tip, 6, l4(src, tip, 6, seg))))
        else:
            # A SYN from an address nobody has (a half-open connection).
            seg = struct.pack("!HHIIBBHHH", 1024 + i, 5000, rnd.getrandbits(32), 0, 5 << 4,
                              0x02, 65535, 0, 0)
            send(eth(target, 0x0800, ipv4(src, tip, 6, l4(src, tip, 6, seg))))
    print("sent", sent)


main()
