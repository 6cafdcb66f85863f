/*
 * cow_fork: fork is copy-on-write.
 *
 * Before fork the parent fills a global, a static array, a heap block, a
 * stack array and a big malloc'd array (mmap-backed) with a known pattern.
 * After fork, child and parent each write their own values into the same
 * variables; a handshake over pipes makes sure both have written before
 * either checks. Each then verifies it still sees its own values, that a
 * region neither touched still holds the pre-fork pattern, and that it sees
 * none of the other's values. The child reports through a pipe and the
 * parent prints everything, so the output is deterministic. The parent also
 * checks the child's wait status (exit 42).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define BIG (8u << 20)      /* 8 MiB: glibc serves this with mmap */
#define SMALL 4096
#define UNTOUCHED (1u << 20) /* tail of big[] nobody writes after fork */

static volatile long global_var = 1000;
static unsigned char static_arr[3 * 4096 + 17];

static int xwrite(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n) {
        ssize_t r = write(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static ssize_t xread_all(int fd, char *buf, size_t cap)
{
    size_t got = 0;
    while (got < cap) {
        ssize_t r = read(fd, buf + got, cap - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

static void fill(unsigned char *p, size_t n, unsigned char seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(seed + i * 7);
}

static size_t count_bad(const unsigned char *p, size_t n, unsigned char seed)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(seed + i * 7))
            bad++;
    return bad;
}

struct mem {
    unsigned char *heap;
    unsigned char *big;
    unsigned char *stack;
};

/* Write this side's values: `seed` differs between parent and child. */
static void scribble(struct mem *m, unsigned char seed, long gval)
{
    global_var = gval;
    fill(static_arr, sizeof static_arr, seed);
    fill(m->heap, SMALL, seed + 1);
    fill(m->stack, SMALL, seed + 2);
    /* Every page of big[] except its untouched tail. */
    fill(m->big, BIG - UNTOUCHED, seed + 3);
}

static int check(const char *who, struct mem *m, unsigned char seed, long gval,
                 char *out, size_t cap)
{
    size_t b_static = count_bad(static_arr, sizeof static_arr, seed);
    size_t b_heap = count_bad(m->heap, SMALL, seed + 1);
    size_t b_stack = count_bad(m->stack, SMALL, seed + 2);
    size_t b_big = count_bad(m->big, BIG - UNTOUCHED, seed + 3);
    size_t b_tail = count_bad(m->big + BIG - UNTOUCHED, UNTOUCHED, 0x55);
    int ok = global_var == gval && !b_static && !b_heap && !b_stack && !b_big && !b_tail;
    snprintf(out, cap,
             "%s: global=%ld (expect %ld) static_bad=%zu heap_bad=%zu "
             "stack_bad=%zu big_bad=%zu untouched_bad=%zu => %s\n",
             who, (long)global_var, gval, b_static, b_heap, b_stack, b_big, b_tail,
             ok ? "OK" : "FAIL");
    return ok;
}

int main(void)
{
    unsigned char stack_arr[SMALL];
    struct mem m;
    m.heap = malloc(SMALL);
    m.big = malloc(BIG);
    m.stack = stack_arr;
    if (!m.heap || !m.big) {
        printf("malloc failed\n");
        return 1;
    }

    /* The pre-fork state, which both sides inherit. */
    scribble(&m, 0x10, 1000);
    fill(m.big + BIG - UNTOUCHED, UNTOUCHED, 0x55);
    char line[512];
    check("before fork", &m, 0x10, 1000, line, sizeof line);
    fputs(line, stdout);
    fflush(stdout);

    int to_child[2], to_parent[2], report[2];
    if (pipe(to_child) || pipe(to_parent) || pipe(report)) {
        printf("pipe failed\n");
        return 1;
    }

    pid_t pid = fork();
    if (pid < 0) {
        printf("fork failed\n");
        return 1;
    }
    if (pid == 0) {
        close(to_child[1]);
        close(to_parent[0]);
        close(report[0]);
        char buf[1024];
        size_t len = 0;
        /* The child first sees the pre-fork values... */
        check("child inherited", &m, 0x10, 1000, buf, sizeof buf);
        len = strlen(buf);
        /* ...then writes its own and tells the parent. */
        scribble(&m, 0xc0, 2222);
        char c = 'c';
        if (xwrite(to_parent[1], &c, 1))
            _exit(3);
        /* Wait until the parent has written its values too. */
        if (read(to_child[0], &c, 1) != 1)
            _exit(4);
        int ok = check("child after both wrote", &m, 0xc0, 2222, buf + len, sizeof buf - len);
        len = strlen(buf);
        if (xwrite(report[1], buf, len))
            _exit(5);
        close(report[1]);
        _exit(ok ? 42 : 43);
    }

    close(to_child[0]);
    close(to_parent[1]);
    close(report[1]);
    char c;
    /* Let the child write first, then write over the same variables. */
    if (read(to_parent[0], &c, 1) != 1) {
        printf("child did not signal\n");
        return 1;
    }
    check("parent after child wrote", &m, 0x10, 1000, line, sizeof line);
    fputs(line, stdout);
    scribble(&m, 0x90, 3333);
    if (xwrite(to_child[1], &c, 1)) {
        printf("write to child failed\n");
        return 1;
    }
    int ok = check("parent after both wrote", &m, 0x90, 3333, line, sizeof line);

    char rep[1024];
    ssize_t n = xread_all(report[0], rep, sizeof rep - 1);
    if (n < 0)
        n = 0;
    rep[n] = 0;
    fputs(rep, stdout);
    fputs(line, stdout);

    int status = 0;
    pid_t w = waitpid(pid, &status, 0);
    printf("waitpid returned the child: %s\n", w == pid ? "yes" : "no");
    if (WIFEXITED(status))
        printf("child exited with status %d\n", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        printf("child killed by signal %d\n", WTERMSIG(status));
    else
        printf("child status %#x\n", status);
    int child_ok = WIFEXITED(status) && WEXITSTATUS(status) == 42;
    /* No child remains. */
    errno = 0;
    w = waitpid(-1, &status, WNOHANG);
    printf("second waitpid: ret=%d errno=%s\n", (int)w, errno == ECHILD ? "ECHILD" : "other");

    free(m.big);
    free(m.heap);
    printf("result: %s\n", ok && child_ok ? "OK" : "FAIL");
    return ok && child_ok ? 0 : 1;
}
