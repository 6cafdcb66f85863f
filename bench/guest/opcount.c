/*
 * opcount: a fixed number of one operation, for counting what a system
 * does per operation (host system calls, context switches, ruml's own
 * counters) rather than timing it. bench/opcount runs it twice, with N and
 * with 0, and divides the difference by N.
 *
 *   opcount OP N [NOP]
 *
 * OP is one of:
 *   none     nothing (the baseline)
 *   fork     fork + _exit + wait
 *   exec     fork + execve(NOP) + wait (NOP: a static program that exits 0)
 *   vfork    vfork + execve(NOP) + wait (posix_spawn's way)
 *   thread   pthread_create + pthread_join of a thread that returns at once
 *   fault    first-touch write faults: one anonymous mapping of N pages,
 *            one byte written per page
 *   bigfault the same in a 64 MiB mapping (beyond ruml's map-ahead size),
 *            touching N pages of it
 *   cow      a child writes one byte per page into N pages its parent
 *            wrote before fork (copy-on-write breaks), then exits
 *
 * Exit status 0 on success; a failed operation prints why and exits 1.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *nop = "/bin/true";

static int fail(const char *what)
{
    perror(what);
    return 1;
}

static int wait_ok(pid_t p)
{
    int st;
    if (waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return -1;
    return 0;
}

static void *thread_fn(void *arg)
{
    return arg;
}

static int touch(long pages, size_t len)
{
    long page = sysconf(_SC_PAGESIZE);
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return fail("mmap");
    for (long i = 0; i < pages; i++)
        p[i * page] = 1;
    munmap(p, len);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: opcount OP N [NOP]\n");
        return 2;
    }
    const char *op = argv[1];
    long n = atol(argv[2]);
    if (argc > 3)
        nop = argv[3];
    long page = sysconf(_SC_PAGESIZE);
    char *args[] = {(char *)nop, NULL};
    char *envp[] = {NULL};

    if (strcmp(op, "none") == 0)
        return 0;
    if (strcmp(op, "fork") == 0) {
        for (long i = 0; i < n; i++) {
            pid_t p = fork();
            if (p < 0)
                return fail("fork");
            if (p == 0)
                _exit(0);
            if (wait_ok(p))
                return fail("wait");
        }
        return 0;
    }
    if (strcmp(op, "exec") == 0 || strcmp(op, "vfork") == 0) {
        int v = op[0] == 'v';
        for (long i = 0; i < n; i++) {
            pid_t p = v ? vfork() : fork();
            if (p < 0)
                return fail("fork");
            if (p == 0) {
                execve(nop, args, envp);
                _exit(127);
            }
            if (wait_ok(p))
                return fail("exec");
        }
        return 0;
    }
    if (strcmp(op, "thread") == 0) {
        for (long i = 0; i < n; i++) {
            pthread_t t;
            if (pthread_create(&t, NULL, thread_fn, NULL) != 0)
                return fail("pthread_create");
            if (pthread_join(t, NULL) != 0)
                return fail("pthread_join");
        }
        return 0;
    }
    if (strcmp(op, "fault") == 0)
        return n ? touch(n, n * page) : 0;
    if (strcmp(op, "bigfault") == 0)
        return touch(n, 64L << 20);
    if (strcmp(op, "cow") == 0) {
        size_t len = (n ? n : 1) * page;
        char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return fail("mmap");
        for (long i = 0; i < n; i++)
            p[i * page] = 1;
        pid_t c = fork();
        if (c < 0)
            return fail("fork");
        if (c == 0) {
            for (long i = 0; i < n; i++)
                p[i * page] = 2;
            _exit(0);
        }
        return wait_ok(c) ? fail("cow child") : 0;
    }
    fprintf(stderr, "opcount: unknown operation %s\n", op);
    return 2;
}
