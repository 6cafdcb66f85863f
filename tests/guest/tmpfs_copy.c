/*
 * tmpfs_copy: the copies between guest buffers and a tmpfs file's pages
 * (ruml: straight between physmem frames, one copy per stretch contiguous
 * on both sides) keep Linux's semantics. Reads and writes of every size
 * around page edges at unaligned offsets, checked against a model of the
 * file; readv/writev/preadv/pwritev with segments of odd sizes; buffers
 * that run into an unmapped or read-only page (short counts, EFAULT
 * exactly as Linux); buffers that are a shared mapping of the same file
 * (distinct ranges); sendfile and splice out of the file; a read racing a
 * truncate (each byte read is the file's or zero, never another's).
 * Deterministic output, compared with a native run.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/uio.h>
#include <unistd.h>

static int failures;

static void check(const char *what, int ok)
{
    printf("%s: %s\n", what, ok ? "ok" : "FAIL");
    if (!ok)
        failures++;
}

static unsigned char pat(size_t i) { return (unsigned char)(i * 13 + (i >> 12) + 1); }

enum { FSZ = 5 * 4096 + 1234 };
static unsigned char model[32 * 4096];

static unsigned long rng = 12345;
static unsigned long rnd(void)
{
    rng = rng * 6364136223846793005UL + 1442695040888963407UL;
    return rng >> 33;
}

static int tmpfile_in(const char *dir, char *path, size_t n)
{
    snprintf(path, n, "%s/ruml-copy-XXXXXX", dir);
    return mkstemp(path);
}

static volatile int stop;
static int race_fd;

static void *truncator(void *arg)
{
    (void)arg;
    unsigned char *buf = malloc(3 * 4096);
    for (int i = 0; i < 3 * 4096; i++)
        buf[i] = pat(i);
    while (!stop) {
        if (ftruncate(race_fd, 100) != 0)
            break;
        if (pwrite(race_fd, buf, 3 * 4096, 0) != 3 * 4096)
            break;
    }
    free(buf);
    return NULL;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "/dev/shm";
    char path[256], path2[256];
    int fd = tmpfile_in(dir, path, sizeof path);
    if (fd < 0) {
        perror("mkstemp");
        return 1;
    }
    unsigned char *src = malloc(sizeof model), *dst = malloc(sizeof model);
    for (size_t i = 0; i < sizeof model; i++)
        src[i] = pat(i);

    /* Sizes and offsets around page edges: write at unaligned offsets
       from unaligned buffer offsets, check against the model with reads
       of other shapes. */
    int bad = 0;
    size_t size = 0;
    static const int sizes[] = {1, 2, 7, 4095, 4096, 4097, 8191, 8192, 8193, 12289, 65535, 65537};
    for (int round = 0; round < 300; round++) {
        int len = sizes[rnd() % (sizeof sizes / sizeof sizes[0])];
        off_t off = rnd() % FSZ;
        size_t from = rnd() % 5000;
        if (pwrite(fd, src + from, len, off) != len) {
            bad++;
            continue;
        }
        memcpy(model + off, src + from, len);
        if ((size_t)(off + len) > size)
            size = off + len;
        int rlen = sizes[rnd() % (sizeof sizes / sizeof sizes[0])];
        off_t roff = rnd() % (size + 10);
        size_t at = rnd() % 5000;
        ssize_t got = pread(fd, dst + at, rlen, roff);
        ssize_t want = roff >= (off_t)size ? 0 : (ssize_t)(size - roff) < rlen ? (ssize_t)(size - roff) : rlen;
        if (got != want || memcmp(dst + at, model + roff, want > 0 ? want : 0) != 0)
            bad++;
    }
    check("random pwrite/pread against the model", bad == 0);
    check("size as the model", lseek(fd, 0, SEEK_END) == (off_t)size);
    memset(dst, 0, size);
    check("whole read", pread(fd, dst, size + 100, 0) == (ssize_t)size && memcmp(dst, model, size) == 0);

    /* Vectors with odd segments crossing pages. */
    struct iovec w[4] = {{src + 3, 1}, {src + 100, 4095}, {src + 9000, 5000}, {src + 20000, 3}};
    check("pwritev odd segments", pwritev(fd, w, 4, 4093) == 9099);
    memcpy(model + 4093, src + 3, 1);
    memcpy(model + 4094, src + 100, 4095);
    memcpy(model + 8189, src + 9000, 5000);
    memcpy(model + 13189, src + 20000, 3);
    struct iovec r[3] = {{dst, 4097}, {dst + 5000, 1}, {dst + 7000, 20000}};
    ssize_t n = preadv(fd, r, 3, 4090);
    size_t avail = size - 4090;
    check("preadv odd segments", n == (ssize_t)(avail < 24098 ? avail : 24098) &&
                                      memcmp(dst, model + 4090, 4097) == 0 && dst[5000] == model[4090 + 4097] &&
                                      memcmp(dst + 7000, model + 4090 + 4098, 9000) == 0);

    /* Buffers partly unmapped or read-only. */
    unsigned char *three = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(three + 4096, 4096);
    mprotect(three + 2 * 4096, 4096, PROT_READ);
    errno = 0;
    check("read into a buffer ending in a hole is short", pread(fd, three + 1, 8000, 3) == 4095 &&
                                                              memcmp(three + 1, model + 3, 4095) == 0);
    errno = 0;
    check("read into the hole is EFAULT", pread(fd, three + 4096, 10, 0) == -1 && errno == EFAULT);
    errno = 0;
    check("read into a read-only page is EFAULT", pread(fd, three + 2 * 4096 + 5, 10, 0) == -1 && errno == EFAULT);
    errno = 0;
    check("read at EOF into the hole is 0", lseek(fd, 0, SEEK_END) > 0 && read(fd, three + 4096, 10) == 0);
    errno = 0;
    check("pread past EOF into the hole is 0", pread(fd, three + 4096, 10, size + 5) == 0);
    off_t pos = lseek(fd, 4, SEEK_SET);
    errno = 0;
    check("read(2) into the hole is EFAULT", read(fd, three + 4096 + 100, 10) == -1 && errno == EFAULT);
    check("and does not move the position", lseek(fd, 0, SEEK_CUR) == pos);
    struct iovec half[2] = {{three + 10, 100}, {three + 4096, 100}};
    check("readv with a bad second segment is short", preadv(fd, half, 2, 0) == 100);
    memset(three, 'w', 4096);
    check("write from a buffer ending in a hole is short", pwrite(fd, three + 96, 8000, 7) == 4000);
    memset(model + 7, 'w', 4000);
    check("writev with a bad second segment is short", pwritev(fd, half, 2, 50) == 100);
    memset(model + 50, 'w', 100);
    errno = 0;
    check("write from the hole is EFAULT", pwrite(fd, three + 4096, 10, 0) == -1 && errno == EFAULT);
    check("write from a read-only page works", pwrite(fd, three + 2 * 4096, 10, 20) == 10);
    memset(model + 20, 0, 10);
    check("file as the model", pread(fd, dst, size, 0) == (ssize_t)size && memcmp(dst, model, size) == 0);

    /* A buffer that is a shared mapping of the same file (distinct
       ranges: the file's page cache on both sides of the copy). */
    check("extend", ftruncate(fd, 24 * 4096) == 0);
    memset(model + size, 0, 24 * 4096 - size);
    size = 24 * 4096;
    unsigned char *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    check("map the file", m != MAP_FAILED);
    if (m != MAP_FAILED) {
        check("pread into its own mapping", pread(fd, m + 8 * 4096 + 3, 3 * 4096 + 5, 17) == 3 * 4096 + 5);
        memmove(model + 8 * 4096 + 3, model + 17, 3 * 4096 + 5);
        check("the mapping shows it", memcmp(m, model, size) == 0);
        check("pwrite from its own mapping", pwrite(fd, m + 1, 2 * 4096, 12 * 4096 + 100) == 2 * 4096);
        memmove(model + 12 * 4096 + 100, model + 1, 2 * 4096);
        check("read back", pread(fd, dst, size, 0) == (ssize_t)size && memcmp(dst, model, size) == 0);
        check("and in the mapping", memcmp(m, model, size) == 0);
        munmap(m, size);
    }

    /* sendfile and splice out of the file. */
    int fd2 = tmpfile_in(dir, path2, sizeof path2);
    off_t so = 4000;
    check("sendfile to a tmpfs file", sendfile(fd2, fd, &so, 30000) == 30000 && so == 34000);
    check("its data", pread(fd2, dst, 30000, 0) == 30000 && memcmp(dst, model + 4000, 30000) == 0);
    int p[2];
    if (pipe(p) == 0) {
        loff_t lo = 4095;
        check("splice to a pipe", splice(fd, &lo, p[1], NULL, 9000, 0) == 9000 && lo == 4095 + 9000);
        check("pipe has it", read(p[0], dst, 9000) == 9000 && memcmp(dst, model + 4095, 9000) == 0);
        close(p[0]);
        close(p[1]);
    }
    close(fd2);
    unlink(path2);

    /* A read racing a truncate and rewrite: each byte read is the file's
       or zero. */
    race_fd = fd;
    check("reset", ftruncate(fd, 0) == 0 && pwrite(fd, src, 3 * 4096, 0) == 3 * 4096);
    pthread_t t;
    pthread_create(&t, NULL, truncator, NULL);
    int wrong = 0;
    for (int i = 0; i < 3000; i++) {
        off_t o = rnd() % (3 * 4096);
        size_t want = 1 + rnd() % 9000;
        ssize_t got = pread(fd, dst, want, o);
        if (got < 0 || (size_t)got > want) {
            wrong++;
            continue;
        }
        for (ssize_t k = 0; k < got; k++)
            if (dst[k] != pat(o + k) && dst[k] != 0) {
                wrong++;
                break;
            }
    }
    stop = 1;
    pthread_join(t, NULL);
    check("reads racing truncate see the file's bytes or zeros", wrong == 0);

    close(fd);
    unlink(path);
    printf("result: %s\n", failures ? "FAIL" : "OK");
    return failures != 0;
}
