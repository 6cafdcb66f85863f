/* madvise's discarding advice walked over the areas of a range, as
 * Linux's madvise_walk_vmas: a range with an unmapped hole is ENOMEM but
 * every mapped part is still discarded (MADV_DONTNEED, MADV_DONTNEED_LOCKED,
 * MADV_REMOVE); a locked (mlock) area refuses MADV_DONTNEED and MADV_FREE
 * with EINVAL, what came before it in the range being discarded already;
 * MADV_DONTNEED_LOCKED (24) discards locked memory, which stays locked.
 * Prints facts only: what MADV_FREE may drop lazily is not printed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_DONTNEED_LOCKED
#define MADV_DONTNEED_LOCKED 24
#endif

#define PG 4096L

static const char *err(int r) { return r == 0 ? "ok" : strerrorname_np(errno); }

static char *map(int shared, long pages) {
    int fl = (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS;
    char *p = mmap(NULL, pages * PG, PROT_READ | PROT_WRITE, fl, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    return p;
}

/* Fills every mapped page of the 5-page range but `hole` with 'a'. */
static void fill(char *p, int hole) {
    for (int i = 0; i < 5; i++)
        if (i != hole)
            memset(p + i * PG, 'a', PG);
}

/* First byte of each page ('.' for zero, '-' for the hole). */
static void show(const char *what, int r, char *p, long pages, int hole) {
    printf("%-36s %-7s", what, err(r));
    for (int i = 0; i < pages; i++)
        putchar(i == hole ? '-' : p[i * PG] ? p[i * PG] : '.');
    putchar('\n');
}

static long vmlck_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmLck: %ld", &v) == 1)
            break;
    if (f)
        fclose(f);
    return v;
}

static void holes(void) {
    int advice[] = {MADV_DONTNEED, MADV_DONTNEED_LOCKED};
    const char *names[] = {"DONTNEED", "DONTNEED_LOCKED"};
    char what[64];
    for (int k = 0; k < 2; k++) {
        char *p = map(0, 5);
        munmap(p + 2 * PG, PG);
        fill(p, 2);
        snprintf(what, sizeof what, "private, hole, %s", names[k]);
        errno = 0;
        int r = madvise(p, 5 * PG, advice[k]);
        show(what, r, p, 5, 2);
        munmap(p, 5 * PG);
    }
    /* A hole at the start and at the end. */
    char *p = map(0, 5);
    munmap(p, PG);
    munmap(p + 4 * PG, PG);
    for (int i = 1; i < 4; i++)
        memset(p + i * PG, 'a', PG);
    errno = 0;
    int r = madvise(p, 5 * PG, MADV_DONTNEED);
    printf("%-36s %-7s-", "private, holes at both ends", err(r));
    for (int i = 1; i < 4; i++)
        putchar(p[i * PG] ? p[i * PG] : '.');
    printf("-\n");
    munmap(p, 5 * PG);
    /* Shared anonymous memory: DONTNEED keeps its data, REMOVE drops it. */
    p = map(1, 5);
    munmap(p + 2 * PG, PG);
    fill(p, 2);
    errno = 0;
    r = madvise(p, 5 * PG, MADV_DONTNEED);
    show("shared, hole, DONTNEED", r, p, 5, 2);
    errno = 0;
    r = madvise(p, 5 * PG, MADV_REMOVE);
    show("shared, hole, REMOVE", r, p, 5, 2);
    munmap(p, 5 * PG);
    /* MADV_FREE over a hole: ENOMEM (its pages may go lazily: not shown). */
    p = map(0, 5);
    munmap(p + 2 * PG, PG);
    fill(p, 2);
    errno = 0;
    r = madvise(p, 5 * PG, MADV_FREE);
    printf("%-36s %s\n", "private, hole, FREE", err(r));
    munmap(p, 5 * PG);
}

static void locked(void) {
    /* Unlocked pages 0-1, locked 2-3: DONTNEED discards 0-1, then EINVAL. */
    char *p = map(0, 4);
    memset(p, 'a', 4 * PG);
    if (mlock(p + 2 * PG, 2 * PG)) {
        printf("mlock %s\n", strerrorname_np(errno));
        return;
    }
    printf("VmLck after mlock                    %ld kB\n", vmlck_kb());
    errno = 0;
    int r = madvise(p, 4 * PG, MADV_DONTNEED);
    show("unlocked+locked, DONTNEED", r, p, 4, -1);
    memset(p, 'b', 4 * PG);
    errno = 0;
    r = madvise(p + 2 * PG, 2 * PG, MADV_FREE);
    show("locked, FREE", r, p, 4, -1);
    errno = 0;
    r = madvise(p + 2 * PG, 2 * PG, MADV_COLD);
    show("locked, COLD", r, p, 4, -1);
    errno = 0;
    r = madvise(p, 4 * PG, MADV_DONTNEED_LOCKED);
    show("unlocked+locked, DONTNEED_LOCKED", r, p, 4, -1);
    printf("VmLck after DONTNEED_LOCKED          %ld kB\n", vmlck_kb());
    memset(p, 'c', 4 * PG);
    show("written again", 0, p, 4, -1);
    munlock(p + 2 * PG, 2 * PG);
    munmap(p, 4 * PG);
    /* Locked pages 0-1 first: DONTNEED stops at once, nothing discarded. */
    p = map(0, 4);
    memset(p, 'a', 4 * PG);
    mlock(p, 2 * PG);
    errno = 0;
    r = madvise(p, 4 * PG, MADV_DONTNEED);
    show("locked+unlocked, DONTNEED", r, p, 4, -1);
    munlock(p, 2 * PG);
    errno = 0;
    r = madvise(p, 4 * PG, MADV_DONTNEED);
    show("after munlock, DONTNEED", r, p, 4, -1);
    munmap(p, 4 * PG);
    /* A locked shared area and a hole: EINVAL before the hole counts. */
    p = map(1, 3);
    memset(p, 'a', 3 * PG);
    munmap(p + PG, PG);
    mlock(p + 2 * PG, PG);
    errno = 0;
    r = madvise(p, 3 * PG, MADV_DONTNEED);
    show("shared, hole, locked, DONTNEED", r, p, 3, 1);
    munlock(p + 2 * PG, PG);
    munmap(p, 3 * PG);
    /* MADV_DONTNEED_LOCKED on plain memory is MADV_DONTNEED; unaligned is
     * EINVAL; an unknown advice EINVAL. */
    p = map(0, 2);
    memset(p, 'a', 2 * PG);
    errno = 0;
    r = madvise(p, 2 * PG, MADV_DONTNEED_LOCKED);
    show("plain, DONTNEED_LOCKED", r, p, 2, -1);
    errno = 0;
    printf("%-36s %s\n", "unaligned, DONTNEED_LOCKED", err(madvise(p + 1, PG, MADV_DONTNEED_LOCKED)));
    errno = 0;
    printf("%-36s %s\n", "advice 26", err(madvise(p, PG, 26)));
    munmap(p, 2 * PG);
    /* mlockall(MCL_CURRENT): DONTNEED on the locked heap page EINVAL. */
    char *h = map(0, 1);
    h[0] = 'a';
    if (mlockall(MCL_CURRENT) == 0) {
        errno = 0;
        r = madvise(h, PG, MADV_DONTNEED);
        show("mlockall, DONTNEED", r, h, 1, -1);
        errno = 0;
        r = madvise(h, PG, MADV_DONTNEED_LOCKED);
        show("mlockall, DONTNEED_LOCKED", r, h, 1, -1);
        munlockall();
    } else {
        printf("mlockall %s\n", strerrorname_np(errno));
    }
}

/* A zero length inside an area does nothing and succeeds, for every
 * discarding advice, on anonymous and on file memory (ruml once sent the
 * host an unmap of zero bytes for the file area and killed the caller). */
static void zero_length(void) {
    static const int advs[] = {MADV_DONTNEED, MADV_FREE, MADV_REMOVE, 24 /* DONTNEED_LOCKED */};
    char *anon = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int fd = open("/proc/self/exe", O_RDONLY);
    char *file = fd >= 0 ? mmap(NULL, 4 * 4096, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
    if (anon == MAP_FAILED || file == MAP_FAILED) {
        printf("zero length: setup failed\n");
        return;
    }
    anon[4096] = 7;
    volatile char c = file[4096];
    (void)c;
    for (unsigned i = 0; i < sizeof advs / sizeof advs[0]; i++) {
        int a = madvise(anon + 4096, 0, advs[i]);
        int f = madvise(file + 4096, 0, advs[i]);
        printf("zero length, advice %d: anon %d, file %d\n", advs[i], a, f);
    }
    printf("zero length: anon page kept %d\n", anon[4096]);
    munmap(anon, 4 * 4096);
    munmap(file, 4 * 4096);
    close(fd);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    holes();
    locked();
    zero_length();
    return 0;
}
