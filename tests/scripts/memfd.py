# memfd_create: write, mmap shared, fork, /proc/self/fd name.
import os, mmap
fd = os.memfd_create("demo", os.MFD_CLOEXEC)
os.write(fd, b"hello memfd"); os.ftruncate(fd, 4096)
m = mmap.mmap(fd, 4096)
print(m[:11]); m[0:5] = b"HELLO"
print(os.pread(fd, 11, 0))
print(os.readlink(f"/proc/self/fd/{fd}").startswith("/memfd:demo"))
pid = os.fork()
if pid == 0:
    m[6:11] = b"CHILD"; os._exit(0)
os.waitpid(pid, 0); print(m[:11])
