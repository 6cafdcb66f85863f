/* madvise's advice beyond the fork flags: MADV_FREE, MADV_COLD,
 * MADV_PAGEOUT, MADV_WILLNEED on private and shared, anonymous and
 * file (memfd) memory, with their errors; MADV_HWPOISON in a child;
 * mincore of a shared anonymous page after MADV_DONTNEED (it stays in the
 * shmem object). With argument "hwpoison", MADV_HWPOISON as a kernel
 * without CONFIG_MEMORY_FAILURE has it (EINVAL). Prints facts only: what MADV_FREE may drop lazily is not
 * printed. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MADV_COLD
#define MADV_COLD 20
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif
#ifndef MADV_HWPOISON
#define MADV_HWPOISON 100
#endif

#define PG 4096L

static const char *err(long r) { return r == 0 ? "ok" : strerrorname_np(errno); }

static void vec(const char *what, char *p, long n) {
    unsigned char v[16];
    printf("%-40s", what);
    if (mincore(p, n * PG, v)) {
        printf("%s\n", strerrorname_np(errno));
        return;
    }
    for (long i = 0; i < n; i++)
        printf("%d", v[i] & 1);
    printf("\n");
}

static char *map(int shared, int fd) {
    int fl = (shared ? MAP_SHARED : MAP_PRIVATE) | (fd < 0 ? MAP_ANONYMOUS : 0);
    char *p = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, fl, fd, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    return p;
}

static int memfd(void) {
    int fd = memfd_create("madv", 0);
    if (fd < 0 || ftruncate(fd, 4 * PG)) {
        perror("memfd");
        exit(1);
    }
    return fd;
}

static const char *names[] = {"private anon", "shared anon", "private file", "shared file"};

static char *kind(int k) {
    int fd = k >= 2 ? memfd() : -1;
    char *p = map(k & 1, fd);
    if (fd >= 0)
        close(fd);
    return p;
}

static void hints(int advice, const char *an) {
    char line[80];
    for (int k = 0; k < 4; k++) {
        char *p = kind(k);
        memset(p, 'a' + k, 4 * PG);
        long r = madvise(p, 4 * PG, advice);
        /* What MADV_FREE frees may go or stay: not printed. */
        int lazy = advice == MADV_FREE && k == 0;
        if (lazy)
            printf("%-5s %-13s %s\n", an, names[k], err(r));
        else
            printf("%-5s %-13s %-8s data %c%c\n", an, names[k], err(r), p[0], p[3 * PG]);
        snprintf(line, sizeof line, "%s %s after", an, names[k]);
        /* PAGEOUT may swap pages out where the host has swap: their
         * residency is then not fixed. */
        if (!lazy && advice != MADV_PAGEOUT)
            vec(line, p, 4);
        if (advice == MADV_FREE && k == 0) {
            /* Written after FREE: the new data stays. */
            p[PG] = 'z';
            printf("%-5s written after FREE  %c\n", an, p[PG]);
        }
        /* Locked memory. */
        if (mlock(p, 4 * PG) == 0) {
            r = madvise(p, 4 * PG, advice);
            if (lazy)
                printf("%-5s %-13s locked   %s\n", an, names[k], err(r));
            else
                printf("%-5s %-13s locked   %s data %c\n", an, names[k], err(r), p[2 * PG]);
            munlock(p, 4 * PG);
        }
        munmap(p, 4 * PG);
    }
}

static void errors(int advice, const char *an) {
    char *p = kind(0);
    munmap(p + 2 * PG, PG);
    printf("%-5s unaligned %s, hole %s, unmapped %s, len 0 %s, wrap %s\n", an,
           err(madvise(p + 1, PG, advice)), err(madvise(p, 4 * PG, advice)),
           err(madvise(p + 2 * PG, PG, advice)), err(madvise(p + 2 * PG, 0, advice)),
           err(madvise(p, -PG, advice)));
    munmap(p, 4 * PG);
}

static void on_bus(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    char b[80];
    int n = snprintf(b, sizeof b, "child: signal %d code %d\n", sig, si->si_code);
    write(1, b, n);
    _exit(3);
}

static void hwpoison(void) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        char *p = kind(0);
        memset(p, 1, 4 * PG);
        struct sigaction sa = {.sa_sigaction = on_bus, .sa_flags = SA_SIGINFO};
        sigaction(SIGBUS, &sa, NULL);
        printf("child: HWPOISON unaligned %s\n", err(madvise(p + 1, PG, MADV_HWPOISON)));
        long r = madvise(p + PG, PG, MADV_HWPOISON);
        printf("child: HWPOISON %s\n", err(r));
        fflush(stdout);
        volatile char c = p[PG];
        (void)c;
        printf("child: read back\n");
        fflush(stdout);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    printf("HWPOISON child exit %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st));
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* Shared anonymous memory: DONTNEED drops the mapping, not the page. */
    char *s = kind(1);
    vec("shared anon untouched", s, 4);
    memset(s, 7, 2 * PG);
    vec("shared anon written 0,1", s, 4);
    printf("DONTNEED shared anon: %s\n", err(madvise(s, 4 * PG, MADV_DONTNEED)));
    vec("shared anon after DONTNEED", s, 4);
    printf("shared anon data after DONTNEED: %d %d\n", s[0], s[2 * PG]);
    munmap(s, 4 * PG);
    char *f = kind(3);
    memset(f + PG, 9, PG);
    vec("shared file written 1", f, 4);
    printf("DONTNEED shared file: %s\n", err(madvise(f, 4 * PG, MADV_DONTNEED)));
    vec("shared file after DONTNEED", f, 4);
    munmap(f, 4 * PG);
    char *pf = kind(2);
    vec("private file untouched", pf, 4);
    munmap(pf, 4 * PG);

    hints(MADV_FREE, "FREE");
    hints(MADV_COLD, "COLD");
    hints(MADV_PAGEOUT, "PAGEOUT");
    hints(MADV_WILLNEED, "WILLN");
    errors(MADV_FREE, "FREE");
    errors(MADV_COLD, "COLD");
    errors(MADV_PAGEOUT, "PAGEOUT");
    errors(MADV_WILLNEED, "WILLN");
    errors(12345, "bad");
    /* Only where the host kernel has no memory-failure handling (no
     * CONFIG_MEMORY_FAILURE, as ruml): elsewhere, as root, this would
     * poison one of the host's pages. */
    if (argc > 1 && !strcmp(argv[1], "hwpoison")) {
        errors(MADV_HWPOISON, "HWPOI");
        hwpoison();
    }
    return 0;
}
