# Unix sockets from Python: socketpair, SCM_RIGHTS, abstract stream and
# datagram sockets, SO_PEERCRED, EOF; run natively and under ruml.
import socket, os, select, array
a, b = socket.socketpair()
a.sendall(b"hello"); print(b.recv(10))
r, w = os.pipe()
a.sendmsg([b"x"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [r]))])
msg, anc, flags, addr = b.recvmsg(10, socket.CMSG_LEN(4))
fd = array.array("i", anc[0][2])[0]
os.write(w, b"via passed fd"); print(msg, os.read(fd, 100))
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.bind("\0ruml-test"); s.listen(1)
c = socket.socket(socket.AF_UNIX); c.connect("\0ruml-test"); conn, _ = s.accept()
c.send(b"ping"); print(conn.recv(4)); conn.send(b"pong"); print(c.recv(4))
print(select.select([c], [], [], 0)[0] == [])
d1 = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); d1.bind("\0d1")
d2 = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); d2.sendto(b"dgram", "\0d1"); print(d1.recvfrom(100)[0])
import struct; print(struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[0] == os.getpid())
c.close(); print(conn.recv(10))
