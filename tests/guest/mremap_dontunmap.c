/* mremap(MREMAP_DONTUNMAP) as Linux 5.13+: the pages move to the new
 * range, the old range stays mapped but empty (private anonymous memory
 * reads zeros there, a private file mapping the file again, a shared
 * mapping the same object), the new address is a hint unless
 * MREMAP_FIXED, and the errors in Linux's order (no MREMAP_MAYMOVE or a
 * resize: EINVAL; an unaligned or overlapping hint: EINVAL; the vDSO:
 * EINVAL; an unmapped range: EFAULT). Locking stays with the new range.
 * Prints facts only (no addresses). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

#define PG 4096L

static void *anon(long pages, int flags) {
    return mmap(NULL, pages * PG, PROT_READ | PROT_WRITE, flags | MAP_ANONYMOUS, -1, 0);
}

static void fill(char *p, long pages, char first) {
    for (long i = 0; i < pages; i++)
        memset(p + i * PG, first + i, PG);
}

/* The first byte of each page, '.' for a zero byte. */
static const char *bytes(const char *p, long pages) {
    static char ring[4][64];
    static int next;
    char *out = ring[next++ % 4];
    for (long i = 0; i < pages && i < 63; i++)
        out[i] = p[i * PG] ? p[i * PG] : '.';
    out[pages < 63 ? pages : 63] = 0;
    return out;
}

static const char *err(void *r) {
    return r == MAP_FAILED ? strerrorname_np(errno) : "ok";
}

/* Whether the maps list an area containing `p`; `locked`: its smaps
 * Locked row in kB. */
static int mapped(void *p, long *locked) {
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    int in = 0, found = 0;
    *locked = -1;
    while (f && fgets(line, sizeof line, f)) {
        unsigned long s, e;
        if (sscanf(line, "%lx-%lx ", &s, &e) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            in = (unsigned long)p >= s && (unsigned long)p < e;
            found |= in;
            continue;
        }
        long kb;
        if (in && sscanf(line, "Locked: %ld kB", &kb) == 1)
            *locked = kb;
    }
    if (f)
        fclose(f);
    return found;
}

static long resident(void *p, long pages) {
    unsigned char v[64];
    if (mincore(p, pages * PG, v))
        return -1;
    long n = 0;
    for (long i = 0; i < pages; i++)
        n += v[i] & 1;
    return n;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    int D = MREMAP_DONTUNMAP;
    /* Four pages with a hole after them (so that no neighbour merges). */
    char *a = anon(6, MAP_PRIVATE);
    munmap(a + 4 * PG, 2 * PG);
    fill(a, 4, 'a');

    /* Errors. */
    printf("%-40s %s\n", "no MAYMOVE", err(mremap(a, PG, PG, D, NULL)));
    printf("%-40s %s\n", "resize", err(mremap(a, PG, 2 * PG, D | MREMAP_MAYMOVE, NULL)));
    printf("%-40s %s\n", "old length 0",
           err(mremap(a, 0, PG, D | MREMAP_MAYMOVE, NULL)));
    printf("%-40s %s\n", "unaligned hint",
           err(mremap(a, PG, PG, D | MREMAP_MAYMOVE, (void *)0x10000123)));
    printf("%-40s %s\n", "hint overlapping the old range",
           err(mremap(a, 2 * PG, 2 * PG, D | MREMAP_MAYMOVE, a + PG)));
    printf("%-40s %s\n", "FIXED overlapping the old range",
           err(mremap(a, 2 * PG, 2 * PG, D | MREMAP_MAYMOVE | MREMAP_FIXED, a + PG)));
    printf("%-40s %s\n", "range past the area",
           err(mremap(a + 3 * PG, 2 * PG, 2 * PG, D | MREMAP_MAYMOVE, NULL)));
    char *hole = anon(1, MAP_PRIVATE);
    munmap(hole, PG);
    printf("%-40s %s\n", "unmapped", err(mremap(hole, PG, PG, D | MREMAP_MAYMOVE, NULL)));
    void *vdso = (void *)getauxval(AT_SYSINFO_EHDR);
    if (vdso)
        printf("%-40s %s\n", "vDSO", err(mremap(vdso, PG, PG, D | MREMAP_MAYMOVE, NULL)));
    printf("%-40s %s\n", "after the errors", bytes(a, 4));

    /* Private anonymous, the whole area. */
    char *n = mremap(a, 4 * PG, 4 * PG, D | MREMAP_MAYMOVE, NULL);
    printf("%-40s %s\n", "private anon whole", err(n));
    if (n != MAP_FAILED) {
        long lk;
        printf("%-40s new %s old %s\n", "  contents", bytes(n, 4), bytes(a, 4));
        printf("%-40s %d\n", "  old still mapped", mapped(a, &lk));
        printf("%-40s %ld\n", "  old resident after reading", resident(a, 4));
        a[PG] = 'x';
        printf("%-40s old %s new %s\n", "  write to old", bytes(a, 4), bytes(n, 4));
        munmap(n, 4 * PG);
    }
    munmap(a, 4 * PG);

    /* Pages 1-2 of four. */
    a = anon(4, MAP_PRIVATE);
    fill(a, 4, 'a');
    n = mremap(a + PG, 2 * PG, 2 * PG, D | MREMAP_MAYMOVE, NULL);
    printf("%-40s %s\n", "private anon middle", err(n));
    if (n != MAP_FAILED) {
        printf("%-40s new %s old %s\n", "  contents", bytes(n, 2), bytes(a, 4));
        munmap(n, 2 * PG);
    }
    munmap(a, 4 * PG);

    /* The hint is taken when free; MREMAP_FIXED replaces what is there. */
    a = anon(2, MAP_PRIVATE);
    fill(a, 2, 'a');
    char *spot = anon(8, MAP_PRIVATE);
    munmap(spot, 8 * PG);
    n = mremap(a, 2 * PG, 2 * PG, D | MREMAP_MAYMOVE, spot + 2 * PG);
    printf("%-40s %s at hint %d\n", "free hint", err(n), n == spot + 2 * PG);
    if (n != MAP_FAILED)
        munmap(n, 2 * PG);
    char *busy = anon(2, MAP_PRIVATE);
    fill(busy, 2, 'p');
    fill(a, 2, 'a');
    n = mremap(a, 2 * PG, 2 * PG, D | MREMAP_MAYMOVE | MREMAP_FIXED, busy);
    printf("%-40s %s at dst %d new %s old %s\n", "FIXED over a mapping", err(n), n == busy,
           n != MAP_FAILED ? bytes(n, 2) : "-", bytes(a, 2));
    munmap(busy, 2 * PG);
    munmap(a, 2 * PG);

    /* Shared anonymous: the old range shows the same object. */
    a = anon(2, MAP_SHARED);
    fill(a, 2, 's');
    n = mremap(a, 2 * PG, 2 * PG, D | MREMAP_MAYMOVE, NULL);
    printf("%-40s %s\n", "shared anon", err(n));
    if (n != MAP_FAILED) {
        n[0] = 'S';
        printf("%-40s new %s old %s\n", "  contents", bytes(n, 2), bytes(a, 2));
        munmap(n, 2 * PG);
    }
    munmap(a, 2 * PG);

    /* Private and shared mappings of a memfd. */
    int fd = memfd_create("dontunmap", 0);
    char buf[2 * PG];
    memset(buf, 'f', PG);
    memset(buf + PG, 'g', PG);
    if (write(fd, buf, sizeof buf) != sizeof buf)
        return 1;
    a = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    a[0] = 'X';
    n = mremap(a, 2 * PG, 2 * PG, D | MREMAP_MAYMOVE, NULL);
    printf("%-40s %s\n", "private file", err(n));
    if (n != MAP_FAILED) {
        printf("%-40s new %s old %s\n", "  contents", bytes(n, 2), bytes(a, 2));
        munmap(n, 2 * PG);
    }
    munmap(a, 2 * PG);
    a = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    n = mremap(a, 2 * PG, 2 * PG, D | MREMAP_MAYMOVE, NULL);
    printf("%-40s %s\n", "shared file", err(n));
    if (n != MAP_FAILED) {
        n[PG] = 'G';
        char c;
        pread(fd, &c, 1, PG);
        printf("%-40s new %s old %s file %c\n", "  contents", bytes(n, 2), bytes(a, 2), c);
        munmap(n, 2 * PG);
    }
    munmap(a, 2 * PG);
    close(fd);

    /* A locked area: the lock goes with the pages. */
    a = anon(2, MAP_PRIVATE);
    fill(a, 2, 'l');
    if (mlock(a, 2 * PG) == 0) {
        n = mremap(a, 2 * PG, 2 * PG, D | MREMAP_MAYMOVE, NULL);
        printf("%-40s %s\n", "locked", err(n));
        if (n != MAP_FAILED) {
            long lo, ln;
            mapped(a, &lo);
            mapped(n, &ln);
            printf("%-40s new %ld kB old %ld kB\n", "  smaps Locked", ln, lo);
            printf("%-40s new %s old %s\n", "  contents", bytes(n, 2), bytes(a, 2));
            munmap(n, 2 * PG);
        }
    } else {
        printf("mlock: %s\n", strerrorname_np(errno));
    }
    munmap(a, 2 * PG);
    printf("done\n");
    return 0;
}
