# inotify on a directory: create, open, modify, close, rename, mkdir, unlink, rmdir.
import ctypes, os, struct, tempfile
libc = ctypes.CDLL(None, use_errno=True)
d = tempfile.mkdtemp()
fd = libc.inotify_init1(os.O_NONBLOCK)
wd = libc.inotify_add_watch(fd, d.encode(), 0xfff)
f = os.path.join(d, "a.txt")
with open(f, "w") as h: h.write("x")
os.rename(f, f + ".2"); os.mkdir(os.path.join(d, "sub")); os.unlink(f + ".2"); os.rmdir(os.path.join(d, "sub"))
buf = os.read(fd, 4096); out = []
while buf:
    w, mask, cookie, ln = struct.unpack("iIII", buf[:16]); name = buf[16:16+ln].rstrip(b"\0").decode()
    out.append((hex(mask), name)); buf = buf[16+ln:]
print(out)
os.rmdir(d)
