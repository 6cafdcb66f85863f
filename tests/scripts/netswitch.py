"""Two instances on one switch (network_switch.rs). Runs inside ruml.

  netswitch.py serve
      UDP echo (upper-cased) on port 6000; TCP on port 5000: reads each
      connection to its end and answers with the SHA-256 of what it read;
      a connection whose data is b"quit" ends the server.
  netswitch.py client PEER MIB [quit]
      ping PEER through an ICMP ping socket until 3 echo replies came back,
      a UDP round trip, MIB MiB over TCP with the checksum compared with
      the server's; with "quit", tells the server to stop.

The peer may not be up yet: the client retries (ping, UDP, connect) within
a generous liveness budget, never a timing assertion.
"""

import hashlib
import select
import socket
import struct
import sys
import threading
import time

BUDGET = 120.0


def udp_echo():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 6000))
    while True:
        d, a = s.recvfrom(4096)
        s.sendto(d.upper(), a)


def serve():
    threading.Thread(target=udp_echo, daemon=True).start()
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", 5000))
    ls.listen(8)
    served = 0
    while True:
        c, _ = ls.accept()
        h = hashlib.sha256()
        first = b""
        while True:
            d = c.recv(1 << 16)
            if not d:
                break
            if len(first) < 4:
                first += d[:4]
            h.update(d)
        c.sendall(h.hexdigest().encode())
        c.close()
        served += 1
        if first == b"quit":
            print("served", served)
            return


def ping(peer):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
    got = 0
    seq = 0
    end = time.time() + BUDGET
    while got < 3 and time.time() < end:
        seq += 1
        payload = b"ruml-switch-%d" % seq
        s.sendto(struct.pack("!BBHHH", 8, 0, 0, 0, seq) + payload, (peer, 0))
        deadline = time.time() + 1.0
        while time.time() < deadline:
            r, _, _ = select.select([s], [], [], max(0.0, deadline - time.time()))
            if not r:
                break
            d, a = s.recvfrom(4096)
            typ, _, _, _, rseq = struct.unpack("!BBHHH", d[:8])
            if typ == 0 and rseq == seq and d[8:] == payload and a[0] == peer:
                got += 1
                break
    print("ping", peer, "replies", got)
    return got == 3


def udp(peer):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1.0)
    ok = 0
    end = time.time() + BUDGET
    i = 0
    while ok < 5 and time.time() < end:
        msg = b"datagram %d over the switch" % i
        s.sendto(msg, (peer, 6000))
        try:
            d, a = s.recvfrom(4096)
        except socket.timeout:
            continue
        if d == msg.upper() and a == (peer, 6000):
            ok += 1
            i += 1
    print("udp", ok)
    return ok == 5


def connect(peer):
    end = time.time() + BUDGET
    while True:
        try:
            return socket.create_connection((peer, 5000), timeout=BUDGET)
        except (ConnectionRefusedError, socket.timeout, OSError):
            if time.time() > end:
                raise
            time.sleep(0.2)


def tcp(peer, mib):
    c = connect(peer)
    block = hashlib.sha256(b"seed").digest() * 2048  # 64 KiB
    h = hashlib.sha256()
    for i in range(mib * 16):
        b = block[i % 251:] + block[: i % 251]
        c.sendall(b)
        h.update(b)
    c.shutdown(socket.SHUT_WR)
    answer = b""
    while True:
        d = c.recv(256)
        if not d:
            break
        answer += d
    same = answer.decode() == h.hexdigest()
    print("tcp", mib, "MiB", "checksum", "same" if same else "DIFFERENT")
    return same


def quit(peer):
    c = connect(peer)
    c.sendall(b"quit")
    c.shutdown(socket.SHUT_WR)
    while c.recv(256):
        pass


def main():
    if sys.argv[1] == "serve":
        serve()
        return 0
    peer, mib = sys.argv[2], int(sys.argv[3])
    ok = ping(peer) and udp(peer) and tcp(peer, mib)
    if len(sys.argv) > 4 and sys.argv[4] == "quit":
        quit(peer)
    return 0 if ok else 1


sys.exit(main())
