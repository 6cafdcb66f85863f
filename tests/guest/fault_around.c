/* Fault-around in large anonymous areas (more than 16 MiB, which ruml
 * fills a window at a time on faults): the same contents, protections,
 * errors, signals and mincore results natively and under ruml, for
 * sequential and random first touches, changes to parts of a window
 * (mprotect, munmap, MADV_DONTNEED), guard pages, a stack growing down and
 * fork after a partial touch. Areas get MADV_NOHUGEPAGE so that Linux's
 * own residency (mincore) is deterministic. */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096L
#define BIG (64L << 20)
#define NPG (BIG / PG)

static sigjmp_buf jb;
static volatile int sig;
static void on_sig(int s) { sig = s; siglongjmp(jb, 1); }

/* Reads (write=0) or writes one byte; the signal it got, or 0. */
static int probe(volatile char *p, int write) {
    sig = 0;
    if (sigsetjmp(jb, 1) == 0) {
        if (write)
            *p = 7;
        else
            (void)*p;
    }
    return sig;
}

static char *area(long len, int flags) {
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        _exit(1);
    }
    madvise(p, len, MADV_NOHUGEPAGE);
    return p;
}

static unsigned char vec[NPG];

/* The resident pages of [p, p+n pages), as a count and a hash of which. */
static void residency(const char *what, char *p, long n) {
    if (mincore(p, n * PG, vec)) {
        printf("%s: mincore %s\n", what, strerrorname_np(errno));
        return;
    }
    long count = 0;
    uint64_t h = 1469598103934665603ull;
    for (long i = 0; i < n; i++)
        if (vec[i] & 1) {
            count++;
            h = (h ^ (uint64_t)i) * 1099511628211ull;
        }
    printf("%s: %ld resident, hash %016llx\n", what, count, (unsigned long long)h);
}

static uint64_t sum(char *p, long n) {
    uint64_t s = 0;
    for (long i = 0; i < n; i++)
        s = s * 31 + (unsigned char)p[i * PG] + (unsigned char)p[i * PG + 1] +
            (unsigned char)p[i * PG + PG - 1];
    return s;
}

int main(void) {
    struct sigaction sa = {.sa_handler = on_sig, .sa_flags = SA_NODEFER};
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
    setvbuf(stdout, NULL, _IOLBF, 0);

    /* Sequential first touch: every page written once, read back. */
    char *a = area(BIG, 0);
    for (long i = 0; i < NPG; i++)
        a[i * PG] = (char)(i * 7 + 1);
    printf("sequential sum %016llx\n", (unsigned long long)sum(a, NPG));
    residency("sequential", a, NPG);
    /* Untouched bytes of touched pages read as zeros. */
    printf("untouched byte %d\n", a[5 * PG + 100]);
    munmap(a, BIG);

    /* Random first touch (a fixed pseudo-random order), some read only. */
    a = area(BIG, MAP_NORESERVE);
    uint32_t x = 12345;
    for (int k = 0; k < 3000; k++) {
        x = x * 1103515245 + 12345;
        long i = (x >> 8) % NPG;
        if (k % 3 == 0)
            (void)*(volatile char *)(a + i * PG);
        else
            a[i * PG + 1] = (char)k;
    }
    printf("random sum %016llx\n", (unsigned long long)sum(a, NPG));
    munmap(a, BIG);

    /* A window touched in part, then changed in part. */
    a = area(BIG, 0);
    char *w = a + (8L << 20); /* 2 MiB aligned relative to the area */
    for (long i = 0; i < 40; i++)
        w[i * PG] = 1;
    residency("partial", w, 512);
    /* mprotect part of the window (touched and untouched pages). */
    printf("mprotect ro: %d\n", mprotect(w + 32 * PG, 16 * PG, PROT_READ));
    printf("write ro touched: sig %d\n", probe(w + 33 * PG, 1));
    printf("write ro untouched: sig %d\n", probe(w + 45 * PG, 1));
    printf("read ro untouched: sig %d value %d\n", probe(w + 46 * PG, 0), w[46 * PG]);
    printf("mprotect none: %d\n", mprotect(w + 100 * PG, PG, PROT_NONE));
    printf("read none: sig %d\n", probe(w + 100 * PG, 0));
    printf("write after none: sig %d\n", probe(w + 101 * PG, 1));
    printf("mprotect back: %d\n", mprotect(w + 100 * PG, PG, PROT_READ | PROT_WRITE));
    printf("write back: sig %d\n", probe(w + 100 * PG, 1));
    /* munmap a hole inside the window. */
    printf("munmap hole: %d\n", munmap(w + 200 * PG, 8 * PG));
    printf("read hole: sig %d\n", probe(w + 203 * PG, 0));
    printf("write past hole: sig %d\n", probe(w + 208 * PG, 1));
    /* MADV_DONTNEED over touched and untouched pages. */
    for (long i = 300; i < 320; i++)
        w[i * PG] = 9;
    printf("dontneed: %d\n", madvise(w + 310 * PG, 20 * PG, MADV_DONTNEED));
    printf("after dontneed %d %d %d\n", w[305 * PG], w[312 * PG], w[325 * PG]);
    residency("dontneed", w + 300 * PG, 40);
    printf("window sum %016llx\n", (unsigned long long)sum(w, 200));

    /* Guard pages: PROT_NONE on both sides of a touched run. */
    char *g = area(BIG, 0);
    mprotect(g, PG, PROT_NONE);
    mprotect(g + 64 * PG, PG, PROT_NONE);
    for (long i = 1; i < 64; i++)
        g[i * PG] = 2;
    printf("guard low: sig %d, high: sig %d, high write: sig %d\n", probe(g, 0),
           probe(g + 64 * PG, 0), probe(g + 64 * PG, 1));
    printf("past guard: sig %d value %d\n", probe(g + 65 * PG, 1), g[65 * PG]);
    residency("guarded", g, 80);

    /* A stack growing down: a reservation, 2 MiB free, the stack (where
     * the stack lands by itself depends on the layout: not compared). */
    char *gd;
    char *res = mmap(NULL, 8L << 20, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (res != MAP_FAILED) {
        munmap(res + (2L << 20), 6L << 20);
        gd = mmap(res + (4L << 20), 2 * PG, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN | MAP_FIXED, -1, 0);
        printf("roomy growsdown below: sig %d\n", probe(gd - PG, 1));
        printf("roomy growsdown 64 below: sig %d\n", probe(gd - 64 * PG, 1));
        /* The guard gap against an accessible mapping below. */
        mprotect(res, 2L << 20, PROT_READ);
        printf("growsdown into the gap: sig %d\n", probe(gd - 300 * PG, 1));
        printf("growsdown above the gap: sig %d\n", probe(gd - 200 * PG, 1));
    }

    /* fork after a partial touch: each side sees its own writes only. */
    char *f = area(BIG, 0);
    for (long i = 0; i < 100; i++)
        f[i * PG] = 3;
    pid_t pid = fork();
    if (pid == 0) {
        for (long i = 50; i < 150; i++)
            f[i * PG] = 4;
        printf("child sum %016llx\n", (unsigned long long)sum(f, 200));
        residency("child", f, 200);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    for (long i = 0; i < 10; i++)
        f[i * PG] = 5;
    printf("parent sum %016llx\n", (unsigned long long)sum(f, 200));
    residency("parent", f, 200);
    printf("done\n");
    return 0;
}
