/* Shared anonymous memory as a shmem object (Linux's "/dev/zero
 * (deleted)"): remap_file_pages inside a MAP_SHARED|MAP_ANONYMOUS area
 * (and a shared /dev/zero mapping) shows another page of the same object;
 * writes through one view are read through the other, in a fork child
 * made before the remap and in one made after; the call's errors; what
 * /proc/self/maps shows (addresses as page numbers from the area's start,
 * no device or inode numbers); MADV_DONTNEED keeps the data, MADV_REMOVE
 * zeros it in every view; an area grown by mremap past the object's end
 * gives SIGBUS there. Prints facts only. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096L

static sigjmp_buf jb;
static volatile int last_sig;

static void on_sig(int s) {
    last_sig = s;
    siglongjmp(jb, 1);
}

/* Reads one byte; prints it or the signal the read raised. */
static void peek(const char *what, volatile char *p) {
    last_sig = 0;
    if (sigsetjmp(jb, 1) == 0) {
        int v = *p;
        printf("%-44s %d\n", what, v);
    } else {
        printf("%-44s signal %s\n", what, sigabbrev_np(last_sig));
    }
}

static const char *err(long r) { return r >= 0 ? "ok" : strerrorname_np(errno); }

/* The lines of /proc/self/maps within [base, base + pages): page numbers
 * from base, protection, file offset in pages, name. */
static void maps(const char *what, char *base, long pages) {
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    printf("maps %s:\n", what);
    while (f && fgets(line, sizeof line, f)) {
        unsigned long a, b, off, ino;
        char perms[8], dev[16];
        int n = 0;
        if (sscanf(line, "%lx-%lx %7s %lx %15s %lu %n", &a, &b, perms, &off, dev, &ino, &n) < 6)
            continue;
        if (a < (unsigned long)base || b > (unsigned long)base + pages * PG)
            continue;
        char *name = line + n;
        name[strcspn(name, "\n")] = 0;
        printf("  %2ld-%2ld %s off=%lu ino>0=%d %s\n", (long)(a - (unsigned long)base) / PG,
               (long)(b - (unsigned long)base) / PG, perms, off / PG, ino > 0, name);
    }
    if (f)
        fclose(f);
}

static void fill(char *m, long pages) {
    for (long i = 0; i < pages; i++)
        memset(m + i * PG, (int)(10 * i), PG);
}

static void wait_child(const char *what, pid_t pid) {
    int st = 0;
    waitpid(pid, &st, 0);
    printf("%s exit %d\n", what, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

static void views(void) {
    /* Nine pages reserved: the area is the first eight, the ninth is
     * kept free for another shared area right after it. */
    char *res = mmap(NULL, 9 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *m = mmap(res, 8 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    fill(m, 8);
    maps("fresh area", m, 8);
    /* A child sharing the area from before the remap. */
    int go[2], done[2];
    if (pipe(go) || pipe(done))
        return;
    pid_t early = fork();
    if (early == 0) {
        char c;
        if (read(go[0], &c, 1) != 1)
            _exit(2);
        peek("early child: page 5 (written via parent p1)", m + 5 * PG);
        m[5 * PG + 1] = 66;
        m[2 * PG] = 22;
        if (write(done[1], "x", 1) != 1)
            _exit(3);
        _exit(0);
    }
    /* Page 1 of the area shows page 5 of the object. */
    printf("remap page 1 -> 5: %s\n", err(remap_file_pages(m + PG, PG, 0, 5, 0)));
    peek("page 1 after remap", m + PG);
    peek("page 5 after remap", m + 5 * PG);
    m[PG] = 55;
    peek("page 5 after write via page 1", m + 5 * PG);
    maps("after remap", m, 8);
    if (write(go[1], "x", 1) != 1)
        return;
    char c;
    if (read(done[0], &c, 1) != 1)
        return;
    peek("parent: page 1 byte 1 (written by child p5)", m + PG + 1);
    peek("parent: page 2 (written by child)", m + 2 * PG);
    wait_child("early child", early);
    /* Two pages, unaligned start and size rounded down. */
    printf("remap pages 6-7 -> 0-1: %s\n", err(remap_file_pages(m + 6 * PG + 9, 2 * PG + 9, 0, 0, 0)));
    peek("page 6 after remap", m + 6 * PG);
    peek("page 7 after remap", m + 7 * PG);
    maps("after second remap", m, 8);
    /* A child made after the remaps sees the same layout. */
    pid_t late = fork();
    if (late == 0) {
        peek("late child: page 1", m + PG);
        peek("late child: page 6", m + 6 * PG);
        m[6 * PG + 2] = 77;
        maps("late child", m, 8);
        _exit(0);
    }
    wait_child("late child", late);
    peek("parent: page 0 byte 2 (child wrote p6)", m + 2);
    /* Page 1 back to page 1 of the object: its data was kept. */
    printf("remap page 1 -> 1: %s\n", err(remap_file_pages(m + PG, PG, 0, 1, 0)));
    peek("page 1 back at its own page", m + PG);
    maps("after remap back", m, 8);
    /* DONTNEED keeps shared data; REMOVE zeros it in every view. */
    printf("DONTNEED page 5: %s\n", err(madvise(m + 5 * PG, PG, MADV_DONTNEED)));
    peek("page 5 after DONTNEED", m + 5 * PG);
    printf("REMOVE page 0: %s\n", err(madvise(m, PG, MADV_REMOVE)));
    peek("page 6 (object page 0) after REMOVE", m + 6 * PG);
    /* Beyond the object: the call succeeds, the page gives SIGBUS. */
    printf("remap page 3 -> 8: %s\n", err(remap_file_pages(m + 3 * PG, PG, 0, 8, 0)));
    peek("page 3 after remap past the end", m + 3 * PG);
    printf("remap page 3 -> 3: %s\n", err(remap_file_pages(m + 3 * PG, PG, 0, 3, 0)));
    peek("page 3 after remap back", m + 3 * PG);

    /* Errors. */
    printf("remap with prot: %s\n", err(remap_file_pages(m, PG, PROT_READ, 1, 0)));
    printf("remap with MAP_NONBLOCK: %s\n", err(remap_file_pages(m + 4 * PG, PG, 0, 4, MAP_NONBLOCK)));
    printf("remap with other flags: %s\n", err(remap_file_pages(m + 4 * PG, PG, 0, 4, MAP_PRIVATE | MAP_LOCKED)));
    printf("remap size 0: %s\n", err(remap_file_pages(m, 0, 0, 0, 0)));
    printf("remap size under a page: %s\n", err(remap_file_pages(m, PG - 1, 0, 0, 0)));
    printf("remap pgoff wraps: %s\n", err(remap_file_pages(m, 2 * PG, 0, -1UL, 0)));
    printf("remap past the area: %s\n", err(remap_file_pages(m + 7 * PG, 2 * PG, 0, 0, 0)));
    /* Adjacent areas of one object but different protections. */
    mprotect(m + 4 * PG, PG, PROT_READ);
    printf("remap across protections: %s\n", err(remap_file_pages(m + 3 * PG, 2 * PG, 0, 3, 0)));
    mprotect(m + 4 * PG, PG, PROT_READ | PROT_WRITE);
    maps("after mprotect back", m, 8);
    /* Another shared anonymous area right after: another object. */
    char *n = mmap(m + 8 * PG, PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (n == m + 8 * PG) {
        printf("remap across two objects: %s\n", err(remap_file_pages(m + 7 * PG, 2 * PG, 0, 7, 0)));
        maps("two objects", m, 9);
    }
    munmap(m + 8 * PG, PG);
    char *priv = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("remap private anon: %s\n", err(remap_file_pages(priv, PG, 0, 1, 0)));
    munmap(priv, 2 * PG);
    munmap(m, 8 * PG);
    printf("remap unmapped: %s\n", err(remap_file_pages(m, PG, 0, 0, 0)));
}

/* A shared mapping of /dev/zero is such an object too. */
static void dev_zero(void) {
    int fd = open("/dev/zero", O_RDWR);
    char *z = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    fill(z, 4);
    printf("dev/zero remap page 0 -> 3: %s\n", err(remap_file_pages(z, PG, 0, 3, 0)));
    peek("dev/zero page 0", z);
    maps("dev/zero", z, 4);
    char *p = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, open("/dev/zero", O_RDONLY), 0);
    printf("private dev/zero remap: %s\n", err(remap_file_pages(p, PG, 0, 0, 0)));
    munmap(z, 4 * PG);
    munmap(p, PG);
}

/* Grown by mremap past the object's end: SIGBUS there. A shared
 * anonymous area cannot grow down. */
static void grown(void) {
    void *down = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_GROWSDOWN, -1, 0);
    printf("MAP_GROWSDOWN shared anon: %s\n", down == MAP_FAILED ? strerrorname_np(errno) : "ok");
    char *m = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    fill(m, 2);
    m[PG] = 11;
    char *g = mremap(m, 2 * PG, 4 * PG, MREMAP_MAYMOVE);
    if (g == MAP_FAILED) {
        printf("mremap: %s\n", strerrorname_np(errno));
        return;
    }
    peek("grown: page 1", g + PG);
    peek("grown: page 3", g + 3 * PG);
    maps("grown", g, 4);
    printf("grown remap page 0 -> 1: %s\n", err(remap_file_pages(g, PG, 0, 1, 0)));
    peek("grown: page 0", g);
    munmap(g, 4 * PG);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct sigaction sa = {0};
    sa.sa_handler = on_sig;
    sa.sa_flags = SA_NODEFER;
    sigaction(SIGBUS, &sa, NULL);
    sigaction(SIGSEGV, &sa, NULL);
    views();
    dev_zero();
    grown();
    return 0;
}
