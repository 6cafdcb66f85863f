# Reads files at many offsets and sizes (pread, readv over several
# buffers, read() in odd chunks, reads across holes and past the end)
# and prints a digest of each result: the same output natively and on a
# disk filesystem under ruml. `make DIR` writes the files first.
import hashlib
import os
import sys


def pattern(n, seed):
    out = bytearray(n)
    x = seed or 1
    for i in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        out[i] = x >> 16 & 0xFF
    return bytes(out)


def make(d):
    with open(os.path.join(d, "odd"), "wb") as f:
        data = pattern(1_234_567, 7)
        k = 0
        step = 1
        while k < len(data):
            f.write(data[k:k + step])
            k += step
            step = step * 3 % 70_001 + 1
    fd = os.open(os.path.join(d, "sparse"), os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    for off, n, seed in [(0, 100, 1), (5000, 9000, 2), (70_000, 4096, 3),
                         (300_000, 150_000, 4), (1_000_003, 777, 5)]:
        os.pwrite(fd, pattern(n, seed), off)
    os.close(fd)


def digest(b):
    return "%d:%s" % (len(b), hashlib.sha256(b).hexdigest()[:16])


def read_all(d, rounds):
    for name in ("odd", "sparse"):
        p = os.path.join(d, name)
        fd = os.open(p, os.O_RDONLY)
        size = os.fstat(fd).st_size
        for r in range(rounds):
            res = []
            x = 12345 + r
            for k in range(120):
                x = (x * 6364136223846793005 + 1442695040888963407) & (2**64 - 1)
                off = (x >> 20) % (size + 9000)
                n = [1, 511, 4096, 4097, 8191, 65536, 70_000, 262_144][(x >> 8) % 8]
                res.append(digest(os.pread(fd, n, off)))
            bufs = [bytearray(3), bytearray(4093), bytearray(70_000)]
            os.lseek(fd, 4090, os.SEEK_SET)
            got = os.readv(fd, bufs)
            res.append("readv %d %s" % (got, digest(b"".join(bytes(b) for b in bufs))))
            os.lseek(fd, 0, os.SEEK_SET)
            chunks = []
            while True:
                c = os.read(fd, 7000)
                if not c:
                    break
                chunks.append(c)
            res.append("seq " + digest(b"".join(chunks)))
            res.append("end " + digest(os.pread(fd, 100, size)))
            print(name, r, hashlib.sha256(" ".join(res).encode()).hexdigest()[:24])
        os.close(fd)


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2])
    else:
        read_all(sys.argv[2], int(sys.argv[3]))
