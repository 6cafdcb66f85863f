/* The errors of mmap, mprotect, msync and munmap, and which comes first
 * when several apply: EBADF against EINVAL, descriptors opened for
 * writing only or reading only, memfd seals against writable shared
 * mappings and mprotect. Prints facts only. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define PG 4096L

static const char *res(void *p) { return p == MAP_FAILED ? strerrorname_np(errno) : "ok"; }
static const char *err(long r) { return r == 0 ? "ok" : strerrorname_np(errno); }

#define MM(what, ...)                                                                    \
    do {                                                                                 \
        errno = 0;                                                                       \
        void *p_ = mmap(__VA_ARGS__);                                                    \
        printf("mmap %-44s %s\n", what, res(p_));                                        \
    } while (0)

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    int rw = memfd_create("rw", 0);
    if (ftruncate(rw, 4 * PG))
        printf("ftruncate failed\n");
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", rw);
    int ro = open(path, O_RDONLY);
    int wo = open(path, O_WRONLY);
    int anon = MAP_PRIVATE | MAP_ANONYMOUS;

    /* mmap: which check comes first. */
    MM("len 0 anon", NULL, 0, PROT_READ, anon, -1, 0);
    MM("len 0 bad fd", NULL, 0, PROT_READ, MAP_PRIVATE, 999, 0);
    MM("bad fd", NULL, PG, PROT_READ, MAP_PRIVATE, 999, 0);
    MM("bad fd unaligned offset", NULL, PG, PROT_READ, MAP_PRIVATE, 999, 1);
    MM("bad fd no map type", NULL, PG, PROT_READ, 0, 999, 0);
    MM("bad fd, anonymous", NULL, PG, PROT_READ, anon, 999, 0);
    MM("no map type anon", NULL, PG, PROT_READ, MAP_ANONYMOUS, -1, 0);
    MM("map type 0xf", NULL, PG, PROT_READ, 0xf | MAP_ANONYMOUS, -1, 0);
    MM("SHARED_VALIDATE unknown flag", NULL, PG, PROT_READ, MAP_SHARED_VALIDATE | 0x200000, rw, 0);
    MM("SHARED unknown flag", NULL, PG, PROT_READ, MAP_SHARED | 0x200000, rw, 0);
    MM("unknown prot", NULL, PG, 0x10, anon, -1, 0);
    MM("unaligned offset", NULL, PG, PROT_READ, MAP_PRIVATE, rw, 100);
    MM("FIXED unaligned addr", (void *)0x10000001, PG, PROT_READ, anon | MAP_FIXED, -1, 0);
    MM("huge len", NULL, 1UL << 62, PROT_READ, anon, -1, 0);
    MM("len -1", NULL, -1UL, PROT_READ, anon, -1, 0);
    MM("offset+len wraps", NULL, 2 * PG, PROT_READ, MAP_SHARED, rw, -PG & ~(PG - 1));
    MM("directory fd", NULL, PG, PROT_READ, MAP_PRIVATE, open("/", O_RDONLY), 0);
    MM("pipe fd", NULL, PG, PROT_READ, MAP_PRIVATE, (pipe((int[2]){0}), 3), 0);

    /* Access modes of the descriptor. */
    MM("SHARED RW of O_RDONLY", NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, ro, 0);
    MM("SHARED R of O_RDONLY", NULL, PG, PROT_READ, MAP_SHARED, ro, 0);
    MM("PRIVATE RW of O_RDONLY", NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, ro, 0);
    MM("SHARED RW of O_WRONLY", NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, wo, 0);
    MM("SHARED W of O_WRONLY", NULL, PG, PROT_WRITE, MAP_SHARED, wo, 0);
    MM("PRIVATE R of O_WRONLY", NULL, PG, PROT_READ, MAP_PRIVATE, wo, 0);
    MM("SHARED none of O_WRONLY", NULL, PG, PROT_NONE, MAP_SHARED, wo, 0);

    /* mprotect on a read-only shared mapping. */
    char *rs = mmap(NULL, PG, PROT_READ, MAP_SHARED, ro, 0);
    printf("mprotect W on SHARED of O_RDONLY: %s\n", err(mprotect(rs, PG, PROT_READ | PROT_WRITE)));
    char *rp = mmap(NULL, PG, PROT_READ, MAP_PRIVATE, ro, 0);
    printf("mprotect W on PRIVATE of O_RDONLY: %s\n", err(mprotect(rp, PG, PROT_READ | PROT_WRITE)));

    /* mprotect's own checks. */
    char *a = mmap(NULL, 4 * PG, PROT_READ, anon, -1, 0);
    printf("mprotect unaligned: %s\n", err(mprotect(a + 1, PG, PROT_READ)));
    printf("mprotect unknown prot: %s\n", err(mprotect(a, PG, 0x10)));
    printf("mprotect unknown prot, unmapped: %s\n", err(mprotect((void *)0x1000, PG, 0x10)));
    printf("mprotect unaligned, unknown prot: %s\n", err(mprotect(a + 1, PG, 0x10)));
    printf("mprotect len 0: %s\n", err(mprotect(a, 0, PROT_READ)));
    printf("mprotect len 0 unaligned: %s\n", err(mprotect(a + 1, 0, PROT_READ)));
    printf("mprotect unmapped: %s\n", err(mprotect((void *)0x1000, PG, PROT_READ)));
    printf("mprotect wraps: %s\n", err(mprotect(a, -PG, PROT_READ)));
    printf("mprotect GROWSDOWN on plain area: %s\n", err(mprotect(a, PG, PROT_READ | PROT_GROWSDOWN)));
    printf("mprotect GROWSUP: %s\n", err(mprotect(a, PG, PROT_READ | PROT_GROWSUP)));
    printf("mprotect GROWSDOWN|GROWSUP: %s\n",
           err(mprotect(a, PG, PROT_READ | PROT_GROWSDOWN | PROT_GROWSUP)));
    munmap(a + 2 * PG, PG);
    printf("mprotect over a hole: %s\n", err(mprotect(a, 4 * PG, PROT_READ | PROT_WRITE)));
    printf("  first page now writable: %s\n",
           err(mprotect(a, PG, PROT_READ | PROT_WRITE)) /* ok either way */);

    /* msync. */
    printf("msync unaligned: %s\n", err(msync(a + 1, PG, MS_SYNC)));
    printf("msync bad flags: %s\n", err(msync(a, PG, 8)));
    printf("msync ASYNC|SYNC: %s\n", err(msync(a, PG, MS_ASYNC | MS_SYNC)));
    printf("msync no flags: %s\n", err(msync(a, PG, 0)));
    printf("msync len 0: %s\n", err(msync(a, 0, MS_SYNC)));
    printf("msync unmapped: %s\n", err(msync((void *)0x1000, PG, MS_SYNC)));
    printf("msync over a hole: %s\n", err(msync(a, 4 * PG, MS_SYNC)));
    printf("msync unaligned, unmapped: %s\n", err(msync((void *)0x1001, PG, MS_SYNC)));
    if (mlock(a, PG) == 0) {
        printf("msync INVALIDATE of locked: %s\n", err(msync(a, PG, MS_INVALIDATE)));
        printf("msync SYNC of locked: %s\n", err(msync(a, PG, MS_SYNC)));
        munlock(a, PG);
    }

    /* munmap. */
    printf("munmap unaligned: %s\n", err(munmap(a + 1, PG)));
    printf("munmap len 0: %s\n", err(munmap(a, 0)));
    printf("munmap unmapped: %s\n", err(munmap((void *)0x1000, PG)));
    printf("munmap wraps: %s\n", err(munmap(a, -PG)));
    printf("munmap beyond the top: %s\n", err(munmap((void *)(1UL << 47), PG)));
    printf("munmap over a hole: %s\n", err(munmap(a, 4 * PG)));

    /* memfd seals. */
    int s = memfd_create("sealed", MFD_ALLOW_SEALING);
    if (ftruncate(s, PG))
        printf("ftruncate failed\n");
    char *w = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, s, 0);
    printf("F_SEAL_WRITE with a writable mapping: %s\n", err(fcntl(s, F_ADD_SEALS, F_SEAL_WRITE)));
    munmap(w, PG);
    char *r = mmap(NULL, PG, PROT_READ, MAP_SHARED, s, 0);
    printf("F_SEAL_WRITE with a read-only mapping: %s\n", err(fcntl(s, F_ADD_SEALS, F_SEAL_WRITE)));
    munmap(r, PG);
    char *pr = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, s, 0);
    printf("F_SEAL_WRITE with a private mapping: %s\n", err(fcntl(s, F_ADD_SEALS, F_SEAL_WRITE)));
    munmap(pr, PG);
    r = mmap(NULL, PG, PROT_READ, MAP_SHARED, s, 0);
    printf("mprotect W of sealed SHARED: %s\n", err(mprotect(r, PG, PROT_READ | PROT_WRITE)));
    MM("SHARED RW of sealed", NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, s, 0);
    MM("SHARED R of sealed", NULL, PG, PROT_READ, MAP_SHARED, s, 0);
    MM("PRIVATE RW of sealed", NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, s, 0);
    char *r2 = mmap(NULL, PG, PROT_READ, MAP_SHARED, s, 0);
    printf("mprotect W of SHARED mapped after the seal: %s\n",
           err(mprotect(r2, PG, PROT_READ | PROT_WRITE)));
    int f = memfd_create("future", MFD_ALLOW_SEALING);
    if (ftruncate(f, PG))
        printf("ftruncate failed\n");
    char *fw = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, f, 0);
    printf("F_SEAL_FUTURE_WRITE with a writable mapping: %s\n",
           err(fcntl(f, F_ADD_SEALS, F_SEAL_FUTURE_WRITE)));
    fw[0] = 1;
    printf("  old mapping still writes: %d\n", fw[0]);
    MM("SHARED RW after FUTURE_WRITE", NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, f, 0);
    char *fr = mmap(NULL, PG, PROT_READ, MAP_SHARED, f, 0);
    printf("mprotect W of SHARED after FUTURE_WRITE: %s\n",
           err(mprotect(fr, PG, PROT_READ | PROT_WRITE)));
    MM("PRIVATE RW after FUTURE_WRITE", NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, f, 0);

    return 0;
}
