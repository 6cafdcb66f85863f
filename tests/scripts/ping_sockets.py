"""Ping sockets (SOCK_DGRAM with IPPROTO_ICMP / IPPROTO_ICMPV6): echo
requests to 127.0.0.1 and ::1 come back as replies with the payload, the
sequence number, the socket's port as identifier and a valid checksum; a
message that is not an echo request is EINVAL; other addresses are
unreachable. Under ruml only: hosts usually forbid ping sockets to root
(net.ipv4.ping_group_range)."""
import socket, struct, os
def csum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b)//2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
for fam, proto, host, req in ((socket.AF_INET, socket.IPPROTO_ICMP, '127.0.0.1', 8), (socket.AF_INET6, socket.IPPROTO_ICMPV6, '::1', 128)):
    s = socket.socket(fam, socket.SOCK_DGRAM, proto)
    s.settimeout(10)
    for seq in range(3):
        payload = bytes(range(56))
        pkt = struct.pack('!BBHHH', req, 0, 0, 0, seq) + payload
        s.sendto(pkt, (host, 0))
        data, addr = s.recvfrom(2048)
        t, code, ck, ident, rseq = struct.unpack('!BBHHH', data[:8])
        ok_ck = csum(data) == 0 if fam == socket.AF_INET else True
        print(host, 'type', t, 'code', code, 'seq', rseq, 'payload ok', data[8:] == payload, 'ident is port', ident == s.getsockname()[1], 'checksum ok', ok_ck, 'from', addr[0])
    try:
        s.sendto(b'\x00' * 8, (host, 0))
    except OSError as e: print('not an echo request:', os.strerror(e.errno))
    try:
        s.sendto(struct.pack('!BBHHH', req, 0, 0, 0, 0), ('192.0.2.1' if fam == socket.AF_INET else '2001:db8::1', 0))
    except OSError as e: print('unreachable:', os.strerror(e.errno))
