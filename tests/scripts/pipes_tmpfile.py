# F_GETPIPE_SZ/F_SETPIPE_SZ, tee(2), O_TMPFILE.
import os, fcntl, ctypes
libc = ctypes.CDLL(None, use_errno=True)
r, w = os.pipe()
print(fcntl.fcntl(w, 1032))               # F_GETPIPE_SZ
print(fcntl.fcntl(w, 1031, 100000))       # F_SETPIPE_SZ -> 131072
os.write(w, b"x" * 100000); print("big write ok")
r2, w2 = os.pipe(); os.read(r, 100000)
os.write(w, b"tee data")
print(libc.tee(r, w2, 100, 0), os.read(r2, 100), os.read(r, 100))
fd = os.open("/tmp", os.O_TMPFILE | os.O_RDWR, 0o600)
os.write(fd, b"anonymous"); os.lseek(fd, 0, 0); print(os.read(fd, 100), any(n.startswith(".ruml-tmpfile") for n in os.listdir("/tmp")))
