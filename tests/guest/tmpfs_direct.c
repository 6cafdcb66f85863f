/*
 * tmpfs_direct: read/write/readv/writev/pread/pwrite of tmpfs files (which
 * ruml serves by copying straight between the file's frames and the
 * guest's) and of hostfs files (argv[1] a hostfs directory: the host
 * reads into and writes from the guest's frames) keep Linux's semantics: data across page edges and segments,
 * holes, O_APPEND, buffers that run into an unmapped page (short counts),
 * reads into a shared mapping of another tmpfs file, memfd seals.
 * Deterministic output, compared with a native run.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

static int failures;

static void check(const char *what, int ok)
{
    printf("%s: %s\n", what, ok ? "ok" : "FAIL");
    if (!ok)
        failures++;
}

static unsigned char pat(size_t i) { return (unsigned char)(i * 7 + (i >> 9)); }

int main(int argc, char **argv)
{
    /* The directory to work in: a tmpfs by default, or (argv[1]) a
       hostfs mount, whose files the host reads and writes straight into
       and out of the guest's frames. */
    const char *dir = argc > 1 ? argv[1] : "/dev/shm";
    char path[256], mpath[256];
    snprintf(path, sizeof path, "%s/ruml-direct-XXXXXX", dir);
    snprintf(mpath, sizeof mpath, "/dev/shm/ruml-direct-map-XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0) {
        perror("mkstemp");
        return 1;
    }
    enum { N = 100003 };
    unsigned char *src = malloc(N), *dst = malloc(N);
    for (size_t i = 0; i < N; i++)
        src[i] = pat(i);

    struct iovec w[3] = {{src, 5}, {src + 5, 40000}, {src + 40005, N - 40005}};
    check("writev", writev(fd, w, 3) == N);
    check("size", lseek(fd, 0, SEEK_END) == N);
    lseek(fd, 0, SEEK_SET);
    memset(dst, 0, N);
    struct iovec r[4] = {{dst, 4095}, {dst + 4095, 2}, {dst + 4097, 70000}, {dst + 74097, N - 74097}};
    check("readv", readv(fd, r, 4) == N && memcmp(src, dst, N) == 0);
    check("read at EOF", read(fd, dst, 10) == 0);

    memset(dst, 0, N);
    check("pread across pages", pread(fd, dst, 9000, 4000) == 9000 && memcmp(dst, src + 4000, 9000) == 0);
    check("pread past EOF short", pread(fd, dst, 100, N - 10) == 10 && memcmp(dst, src + N - 10, 10) == 0);
    check("pwrite", pwrite(fd, "XYZ", 3, 4094) == 3);
    check("pread after pwrite", pread(fd, dst, 6, 4093) == 6 && dst[0] == src[4093] &&
                                    memcmp(dst + 1, "XYZ", 3) == 0 && dst[4] == src[4097]);
    check("position untouched by pread/pwrite", lseek(fd, 0, SEEK_CUR) == N);

    /* A hole reads as zeros. */
    check("ftruncate", ftruncate(fd, 300000) == 0);
    memset(dst, 0xaa, 8192);
    check("hole reads zeros", pread(fd, dst, 8192, 200000) == 8192 && dst[0] == 0 && dst[8191] == 0);
    check("write into hole", pwrite(fd, "hole", 4, 250000) == 4);
    check("read back", pread(fd, dst, 6, 249999) == 6 && dst[0] == 0 && memcmp(dst + 1, "hole", 4) == 0 && dst[5] == 0);

    /* O_APPEND */
    int afd = open("/proc/self/fd/0", O_RDONLY);
    close(afd);
    char apath[64];
    snprintf(apath, sizeof apath, "/proc/self/fd/%d", fd);
    afd = open(apath, O_WRONLY | O_APPEND);
    check("O_APPEND write", afd >= 0 && write(afd, "end", 3) == 3 && lseek(fd, 0, SEEK_END) == 300003);
    check("pwrite with O_APPEND appends", pwrite(afd, "!", 1, 0) == 1 && lseek(fd, 0, SEEK_END) == 300004);
    close(afd);

    /* Buffers running into an inaccessible page: short counts. */
    unsigned char *two = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    mprotect(two + 4096, 4096, PROT_NONE);
    check("read into a half-bad buffer is short", pread(fd, two + 4000, 200, 0) == 96 &&
                                                  memcmp(two + 4000, src, 96) == 0);
    errno = 0;
    check("read into a bad buffer is EFAULT", pread(fd, two + 4096, 10, 0) == -1 && errno == EFAULT);
    memset(two, 'q', 4096);
    check("write from a half-bad buffer is short", pwrite(fd, two + 4000, 200, 0) == 96);
    check("its bytes landed", pread(fd, dst, 97, 0) == 97 && dst[0] == 'q' && dst[95] == 'q' && dst[96] == src[96]);
    errno = 0;
    check("write from a bad buffer is EFAULT", pwrite(fd, two + 4096, 10, 0) == -1 && errno == EFAULT);

    /* Into a shared mapping of another tmpfs file, and out of it. */
    int mfd = mkstemp(mpath);
    unlink(mpath);
    ftruncate(mfd, 16384);
    unsigned char *map = mmap(NULL, 16384, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
    check("read into a shared mapping", pread(fd, map + 100, 10000, 200) == 10000 && map[100] == src[200]);
    check("the mapped file has it", pread(mfd, dst, 10, 100) == 10 && memcmp(dst, map + 100, 10) == 0);
    check("write from a shared mapping", pwrite(fd, map + 100, 5000, 50000) == 5000);
    check("and back", pread(fd, dst, 5000, 50000) == 5000 && memcmp(dst, map + 100, 5000) == 0);

    /* A shared mapping of the file itself stays coherent with read and
       write (on hostfs the page cache holds the mapped pages). */
    {
        unsigned char *self = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        check("map the file", self != MAP_FAILED);
        check("pwrite shows in the mapping", pwrite(fd, "MAPPED", 6, 4000) == 6 &&
                                             memcmp(self + 4000, "MAPPED", 6) == 0);
        memcpy(self + 8000, "viamap", 6);
        check("the mapping's write shows to pread", pread(fd, dst, 6, 8000) == 6 &&
                                                    memcmp(dst, "viamap", 6) == 0);
        struct iovec rv[2] = {{dst, 3}, {dst + 3, 3}};
        check("and to preadv", preadv(fd, rv, 2, 4000) == 6 && memcmp(dst, "MAPPED", 6) == 0);
        munmap(self, 8192);
        check("after munmap", pread(fd, dst, 6, 8000) == 6 && memcmp(dst, "viamap", 6) == 0);
    }

    /* Large requests (ruml moves each run of the file's frames with one
       host call): a mapping sees a 1 MiB write at once, read sees the
       mapping's stores, and a write whose source is a mapping of the same
       file lands intact. */
    {
        enum { BIG = 1 << 20 };
        unsigned char *big = malloc(BIG), *back = malloc(BIG);
        for (size_t i = 0; i < BIG; i++)
            big[i] = pat(i * 3 + 1);
        check("truncate for big", ftruncate(fd, 0) == 0);
        check("big unaligned pwrite", pwrite(fd, big, BIG, 777) == BIG);
        unsigned char *m = mmap(NULL, BIG + 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        check("map big", m != MAP_FAILED);
        check("mapping sees big write", memcmp(m + 777, big, BIG) == 0 && m[776] == 0);
        for (size_t i = 0; i < BIG; i += 4096)
            m[777 + i] ^= 0x5a;
        memset(back, 0, BIG);
        check("big pread sees mapping stores", pread(fd, back, BIG, 777) == BIG);
        int same = 1;
        for (size_t i = 0; i < BIG; i++)
            if (back[i] != (unsigned char)(i % 4096 == 0 ? big[i] ^ 0x5a : big[i]))
                same = 0;
        check("big pread matches", same);
        /* Source and destination in the same file. */
        memcpy(back, m + 777, 300000);
        check("write from own mapping", pwrite(fd, m + 777, 300000, 500001) == 300000);
        check("own-mapping write intact", memcmp(m + 500001, back, 300000) == 0);
        check("beyond the end via read", pread(fd, back, 100, BIG + 777 - 50) == 50);
        munmap(m, BIG + 8192);
        /* Extending over a hole then reading it back whole. */
        check("extend", ftruncate(fd, 3 * BIG) == 0);
        check("write after hole", pwrite(fd, big, 4096 * 3, 2 * BIG + 100) == 4096 * 3);
        memset(back, 0xee, BIG);
        check("read hole and data", pread(fd, back, BIG, 2 * BIG - BIG / 2) == BIG &&
                                        back[0] == 0 && back[BIG / 2 + 99] == 0 &&
                                        memcmp(back + BIG / 2 + 100, big, 4096 * 3) == 0);
        free(big);
        free(back);
    }

    /* memfd seals. */
    int sfd = memfd_create("sealed", MFD_ALLOW_SEALING);
    check("memfd write", write(sfd, src, 10000) == 10000);
    check("seal grow", fcntl(sfd, F_ADD_SEALS, F_SEAL_GROW) == 0);
    errno = 0;
    check("write past the end EPERM", pwrite(sfd, src, 10, 9995) == -1 && errno == EPERM);
    check("write within ok", pwrite(sfd, "abc", 3, 10) == 3);
    check("seal write", fcntl(sfd, F_ADD_SEALS, F_SEAL_WRITE) == 0);
    errno = 0;
    check("write EPERM", pwrite(sfd, "abc", 3, 10) == -1 && errno == EPERM);
    check("read still ok", pread(sfd, dst, 3, 10) == 3 && memcmp(dst, "abc", 3) == 0);

    unlink(path);
    printf("result: %s\n", failures ? "FAIL" : "OK");
    return failures ? 1 : 0;
}
