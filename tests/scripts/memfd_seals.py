# memfd seals: SHRINK, GROW, WRITE, SEAL; enforced on truncate, write, shared mmap.
import os, fcntl, mmap
F_ADD_SEALS, F_GET_SEALS = 1033, 1034
F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_GROW, F_SEAL_WRITE = 1, 2, 4, 8
fd = os.memfd_create("s", os.MFD_ALLOW_SEALING)
os.write(fd, b"abc")
print(fcntl.fcntl(fd, F_GET_SEALS))
fcntl.fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW)
for what, f in [("shrink", lambda: os.ftruncate(fd, 1)), ("grow", lambda: os.ftruncate(fd, 10)), ("append", lambda: os.write(fd, b"d"))]:
    try: f(); print(what, "allowed")
    except OSError as e: print(what, e.errno)
os.pwrite(fd, b"X", 0); print(os.pread(fd, 3, 0))
fcntl.fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SEAL)
try: os.pwrite(fd, b"Y", 0)
except OSError as e: print("write", e.errno)
try: mmap.mmap(fd, 3)
except OSError as e: print("map shared", e.errno)
try: fcntl.fcntl(fd, F_ADD_SEALS, F_SEAL_GROW)
except OSError as e: print("add after seal", e.errno)
print(fcntl.fcntl(fd, F_GET_SEALS))
n = os.memfd_create("n"); print(fcntl.fcntl(n, F_GET_SEALS))
