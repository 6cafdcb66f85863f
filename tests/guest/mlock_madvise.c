/* mlock, mlock2, munlock, mlockall, munlockall with VmLck and
 * RLIMIT_MEMLOCK; madvise's fork flags (DONTFORK, DOFORK, WIPEONFORK,
 * KEEPONFORK) and their errors. Prints facts only. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_mseal
#define SYS_mseal 462
#endif

#define PG 4096L

static long vmlck(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmLck: %ld kB", &v) == 1)
            break;
    if (f)
        fclose(f);
    return v;
}

static const char *err(long r) { return r == 0 ? "ok" : strerrorname_np(errno); }

static int mlock2_(void *a, size_t l, int f) { return syscall(SYS_mlock2, a, l, f); }

/* Forks; the child runs f(arg) and exits with its result. Prints how the
 * child ended. */
static void in_child(const char *what, int (*f)(char *), char *arg) {
    fflush(stdout);
    pid_t p = fork();
    if (p == 0)
        _exit(f(arg));
    int st;
    waitpid(p, &st, 0);
    if (WIFSIGNALED(st))
        printf("%s: child killed by signal %d\n", what, WTERMSIG(st));
    else
        printf("%s: child exit %d\n", what, WEXITSTATUS(st));
}

static int read_byte(char *p) { return *(volatile char *)p; }
static int munmap_page(char *p) { return munmap(p, PG) == 0 ? 0 : errno; }
static int child_vmlck(char *p) { (void)p; return (int)vmlck(); }

static int unprivileged(char *p) {
    struct rlimit r = {2 * PG, 2 * PG};
    setrlimit(RLIMIT_MEMLOCK, &r);
    if (setuid(65534))
        return 99;
    printf("  3 pages over a 2-page limit: %s\n", err(mlock(p, 3 * PG)));
    printf("  1 page: %s\n", err(mlock(p, PG)));
    printf("  mlockall current over the limit: %s\n", err(mlockall(MCL_CURRENT)));
    struct rlimit z = {0, 0};
    setrlimit(RLIMIT_MEMLOCK, &z);
    printf("  with limit 0: %s\n", err(mlock(p + PG, PG)));
    fflush(stdout);
    return 0;
}

/* One call, then VmLck: in that order (printf's arguments have none). */
#define LOCKCALL(what, call)                                   \
    do {                                                       \
        const char *e_ = err(call);                            \
        printf("%s: %s, VmLck %ld\n", what, e_, vmlck());      \
    } while (0)

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* Ten pages with a hole of two at the end. */
    char *p = mmap(NULL, 10 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(p + 8 * PG, 2 * PG);
    printf("mlock into the hole: %s\n", err(mlock(p + 7 * PG, 2 * PG)));
    printf("madvise into the hole: %s\n", err(madvise(p + 7 * PG, 2 * PG, MADV_DONTFORK)));
    printf("VmLck at start: %ld\n", vmlck());
    LOCKCALL("mlock 3 pages", mlock(p, 3 * PG));
    LOCKCALL("mlock unaligned 1 byte", mlock(p + 5 * PG + 100, 1));
    LOCKCALL("munlock middle page", munlock(p + PG, PG));
    LOCKCALL("mlock2 ONFAULT", mlock2_(p, 2 * PG, 1));
    printf("mlock2 bad flags: %s\n", err(mlock2_(p, PG, 2)));
    in_child("VmLck in a fork child", child_vmlck, p);
    LOCKCALL("munlockall", munlockall());
    printf("mlockall 0: %s\n", err(mlockall(0)));
    printf("mlockall bad flag: %s\n", err(mlockall(MCL_CURRENT | 8)));
    printf("mlockall ONFAULT alone: %s\n", err(mlockall(MCL_ONFAULT)));
    const char *e = err(mlockall(MCL_CURRENT | MCL_FUTURE));
    printf("mlockall current+future: %s, locked %d\n", e, vmlck() > 0);
    long before = vmlck();
    char *q = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("new mapping under MCL_FUTURE adds %ld kB\n", vmlck() - before);
    munmap(q, 2 * PG);
    LOCKCALL("munlockall", munlockall());
    in_child("RLIMIT_MEMLOCK as nobody", unprivileged, p);

    /* madvise fork flags. */
    p[0] = 42;
    p[PG] = 43;
    printf("WIPEONFORK: %s\n", err(madvise(p, PG, MADV_WIPEONFORK)));
    in_child("wiped page in child", read_byte, p);
    in_child("next page in child", read_byte, p + PG);
    printf("parent still has %d\n", p[0]);
    printf("KEEPONFORK: %s\n", err(madvise(p, PG, MADV_KEEPONFORK)));
    in_child("kept page in child", read_byte, p);
    char *s = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    printf("WIPEONFORK on shared memory: %s\n", err(madvise(s, PG, MADV_WIPEONFORK)));
    printf("DONTFORK: %s\n", err(madvise(p + PG, PG, MADV_DONTFORK)));
    in_child("DONTFORK page in child", read_byte, p + PG);
    printf("DOFORK: %s\n", err(madvise(p + PG, PG, MADV_DOFORK)));
    in_child("DOFORK page in child", read_byte, p + PG);
    e = err(madvise(p, PG, MADV_DONTDUMP));
    printf("DONTDUMP: %s, DODUMP: %s\n", e, err(madvise(p, PG, MADV_DODUMP)));
    printf("madvise unaligned: %s\n", err(madvise(p + 1, PG, MADV_DONTFORK)));
    printf("madvise bad advice: %s\n", err(madvise(p, PG, 999)));

    /* mincore shows the pages really touched, not the ones mapped. */
    char *m = mmap(NULL, 16 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    m[0] = 1;
    m[5 * PG] = 1;
    m[15 * PG + 7] = 1;
    unsigned char vec[16];
    printf("mincore: %s ", err(mincore(m, 16 * PG, vec)));
    for (int i = 0; i < 16; i++)
        putchar('0' + (vec[i] & 1));
    printf("\n");
    printf("DONTNEED: %s ", err(madvise(m, 8 * PG, MADV_DONTNEED)));
    mincore(m, 16 * PG, vec);
    for (int i = 0; i < 16; i++)
        putchar('0' + (vec[i] & 1));
    printf("\n");
    printf("mincore unaligned: %s\n", err(mincore(m + 1, PG, vec)));
    printf("mincore unmapped: %s\n", err(mincore(p + 8 * PG, PG, vec)));
    printf("mincore bad vec: %s\n", err(mincore(m, PG, (unsigned char *)8)));
    printf("mincore huge: %s\n", err(mincore(m, 1UL << 46, vec)));

    /* mseal: the sealed range refuses every change, also after fork. */
    char *z = mmap(NULL, 4 * PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("mseal bad flags: %s\n", err(syscall(SYS_mseal, z, PG, 1)));
    printf("mseal unaligned: %s\n", err(syscall(SYS_mseal, z + 1, PG, 0)));
    printf("mseal over a hole: %s\n", err(syscall(SYS_mseal, p + 7 * PG, 2 * PG, 0)));
    printf("mseal zero length: %s\n", err(syscall(SYS_mseal, z, 0, 0)));
    printf("mseal: %s\n", err(syscall(SYS_mseal, z + PG, 2 * PG, 0)));
    printf("munmap sealed: %s\n", err(munmap(z, 2 * PG)));
    printf("munmap unsealed part: %s\n", err(munmap(z, PG)));
    printf("mprotect sealed: %s\n", err(mprotect(z + PG, PG, PROT_READ | PROT_WRITE)));
    printf("mmap FIXED over sealed: %s\n",
           mmap(z + 2 * PG, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED
               ? strerrorname_np(errno) : "mapped");
    printf("mremap sealed: %s\n",
           mremap(z + PG, PG, 2 * PG, MREMAP_MAYMOVE) == MAP_FAILED ? strerrorname_np(errno) : "moved");
    printf("DONTNEED on sealed read-only: %s\n", err(madvise(z + PG, PG, MADV_DONTNEED)));
    printf("WILLNEED on sealed: %s\n", err(madvise(z + PG, PG, MADV_WILLNEED)));
    printf("mseal again: %s\n", err(syscall(SYS_mseal, z + PG, PG, 0)));
    in_child("munmap sealed in a fork child", munmap_page, z + PG);
    char *w = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    syscall(SYS_mseal, w, PG, 0);
    printf("DONTNEED on sealed writable: %s\n", err(madvise(w, PG, MADV_DONTNEED)));
    return 0;
}
