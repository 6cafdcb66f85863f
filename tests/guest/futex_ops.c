/* futex(2) directly through syscall(): WAIT with a timeout (ETIMEDOUT), WAIT
 * on a changed value (EAGAIN), WAKE counts, REQUEUE and CMP_REQUEUE, WAKE_OP,
 * WAIT_BITSET/WAKE_BITSET with an absolute CLOCK_REALTIME timeout, and a
 * shared (non-private) futex across fork.
 *
 * To get an exact number of waiters parked on a word without racing, threads
 * first wait on a private "gate" word and are then moved with CMP_REQUEUE
 * (nr_wake 0) until all of them have been moved: the return value counts
 * them, so every later WAKE count is deterministic. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int failures;
#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        printf(__VA_ARGS__);                                                   \
        if (cond) {                                                            \
            printf(": ok\n");                                                  \
        } else {                                                               \
            printf(": FAIL (%s)\n", #cond);                                    \
            failures++;                                                        \
        }                                                                      \
    } while (0)

static long futex(uint32_t *uaddr, int op, uint32_t val, const void *timeout_or_val2,
                  uint32_t *uaddr2, uint32_t val3) {
    return syscall(SYS_futex, uaddr, op, val, timeout_or_val2, uaddr2, val3);
}

static const char *ename(int e) {
    switch (e) {
    case 0: return "0";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EAGAIN: return "EAGAIN";
    case EINTR: return "EINTR";
    case EINVAL: return "EINVAL";
    case ENOSYS: return "ENOSYS";
    default: return strerror(e);
    }
}

static double mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* --- parked waiters --- */
#define MAXW 8
struct waiter {
    pthread_t t;
    uint32_t *gate;
    uint32_t bitset; /* 0: plain FUTEX_WAIT */
    long ret;
    int err;
    volatile int done;
};
static struct waiter ws[MAXW];
static int nws;

static void *waiter_main(void *arg) {
    struct waiter *w = arg;
    long r;
    if (w->bitset)
        r = futex(w->gate, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, 0, NULL, NULL,
                  w->bitset);
    else
        r = futex(w->gate, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, 0, NULL, NULL, 0);
    w->ret = r;
    w->err = r < 0 ? errno : 0;
    __atomic_store_n(&w->done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

/* Starts n waiters and moves exactly n of them onto *target. Returns how
 * many were moved (n unless the kernel misbehaves; gives up after ~3 s). */
static int park(int n, uint32_t *target, uint32_t bitset) {
    static uint32_t gate;
    gate = 0;
    int first = nws;
    for (int i = 0; i < n; i++) {
        struct waiter *w = &ws[nws++];
        w->gate = &gate;
        w->bitset = bitset;
        w->done = 0;
        pthread_create(&w->t, NULL, waiter_main, w);
    }
    int moved = 0;
    double end = mono() + 3;
    while (moved < n && mono() < end) {
        long r = futex(&gate, FUTEX_CMP_REQUEUE | FUTEX_PRIVATE_FLAG, 0,
                       (void *)(long)INT_MAX, target, 0);
        if (r > 0)
            moved += (int)r;
        else if (r < 0)
            break;
        else
            usleep(1000);
    }
    (void)first;
    return moved;
}

/* Joins every waiter; all must have returned 0 from their wait. */
static int join_all(void) {
    int ok = 1;
    for (int i = 0; i < nws; i++) {
        pthread_join(ws[i].t, NULL);
        if (ws[i].ret != 0)
            ok = 0;
    }
    nws = 0;
    return ok;
}

static int count_done(void) {
    int n = 0;
    for (int i = 0; i < nws; i++)
        n += __atomic_load_n(&ws[i].done, __ATOMIC_SEQ_CST);
    return n;
}

/* Waits until `want` waiters have finished (they were woken). */
static int wait_done(int want) {
    double end = mono() + 3;
    while (count_done() < want && mono() < end)
        usleep(1000);
    return count_done();
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    static uint32_t word, a, b, c;
    long r;
    int e;

    /* 1. WAIT with a relative timeout: ETIMEDOUT after >= 50 ms. */
    word = 0;
    struct timespec rel = {0, 50 * 1000 * 1000};
    double t0 = mono();
    r = futex(&word, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, 0, &rel, NULL, 0);
    e = errno;
    double dt = mono() - t0;
    printf("WAIT with timeout: %s\n", ename(r < 0 ? e : 0));
    CHECK(r == -1 && e == ETIMEDOUT && dt >= 0.049, "ETIMEDOUT after the timeout");

    /* 2. WAIT with the wrong value: EAGAIN at once. */
    word = 1;
    r = futex(&word, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, 0, &rel, NULL, 0);
    e = errno;
    printf("WAIT with wrong value: %s\n", ename(r < 0 ? e : 0));
    CHECK(r == -1 && e == EAGAIN, "EAGAIN");

    /* 3. WAKE with nobody waiting: 0. Bad op: ENOSYS. Bad timeout: EINVAL. */
    CHECK(futex(&word, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1, NULL, NULL, 0) == 0,
          "WAKE with no waiters returns 0");
    r = futex(&word, 99 | FUTEX_PRIVATE_FLAG, 0, NULL, NULL, 0);
    e = errno;
    printf("unknown op: %s\n", ename(r < 0 ? e : 0));
    CHECK(r == -1 && e == ENOSYS, "unknown futex op: ENOSYS");
    word = 0;
    struct timespec bad = {0, 1000000000};
    r = futex(&word, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, 0, &bad, NULL, 0);
    e = errno;
    CHECK(r == -1 && e == EINVAL, "tv_nsec out of range: EINVAL");

    /* 4. WAKE counts: 4 waiters on a. */
    a = 0;
    int moved = park(4, &a, 0);
    CHECK(moved == 4, "four waiters parked on a (CMP_REQUEUE counted them)");
    r = futex(&a, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1, NULL, NULL, 0);
    printf("WAKE 1 of 4: %ld\n", r);
    CHECK(r == 1 && wait_done(1) == 1, "WAKE(1) wakes exactly one");
    r = futex(&a, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, INT_MAX, NULL, NULL, 0);
    printf("WAKE all of the rest: %ld\n", r);
    CHECK(r == 3, "WAKE(INT_MAX) wakes the other three");
    CHECK(join_all(), "every woken waiter returned 0");

    /* 5. REQUEUE and CMP_REQUEUE: 4 on a; wake 1, move 2 to b (1 stays). */
    a = 0;
    b = 0;
    moved = park(4, &a, 0);
    a = 5;
    r = futex(&a, FUTEX_CMP_REQUEUE | FUTEX_PRIVATE_FLAG, 1, (void *)2L, &b, 0);
    e = errno;
    CHECK(r == -1 && e == EAGAIN, "CMP_REQUEUE with a stale value: EAGAIN");
    r = futex(&a, FUTEX_CMP_REQUEUE | FUTEX_PRIVATE_FLAG, 1, (void *)2L, &b, 5);
    printf("CMP_REQUEUE wake 1 + requeue 2: %ld\n", r);
    CHECK(moved == 4 && r == 3 && wait_done(1) == 1, "woke 1, requeued 2");
    r = futex(&b, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, INT_MAX, NULL, NULL, 0);
    CHECK(r == 2, "the two requeued waiters are on b");
    /* Plain REQUEUE of the last one from a to c (no wake). */
    c = 0;
    r = futex(&a, FUTEX_REQUEUE | FUTEX_PRIVATE_FLAG, 0, (void *)1L, &c, 0);
    CHECK(r == 1, "REQUEUE moved the last waiter to c");
    CHECK(futex(&a, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, INT_MAX, NULL, NULL, 0) == 0,
          "a is empty");
    CHECK(futex(&c, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, INT_MAX, NULL, NULL, 0) == 1,
          "c holds it");
    CHECK(join_all(), "all requeued waiters returned 0");

    /* 6. WAKE_OP: 2 on a, 2 on b; op on b: ADD 5, wake on b if old == 0. */
    a = 0;
    b = 0;
    moved = park(2, &a, 0);
    moved += park(2, &b, 0);
    int op = FUTEX_OP(FUTEX_OP_ADD, 5, FUTEX_OP_CMP_EQ, 0);
    r = futex(&a, FUTEX_WAKE_OP | FUTEX_PRIVATE_FLAG, 1, (void *)1L, &b, op);
    printf("WAKE_OP (condition true): %ld, b=%u\n", r, b);
    CHECK(moved == 4 && r == 2 && b == 5, "woke one on each word, b += 5");
    r = futex(&a, FUTEX_WAKE_OP | FUTEX_PRIVATE_FLAG, 1, (void *)1L, &b, op);
    printf("WAKE_OP (condition false): %ld, b=%u\n", r, b);
    CHECK(r == 1 && b == 10, "woke only on a, b += 5 anyway");
    int op2 = FUTEX_OP(FUTEX_OP_OR, 0x100, FUTEX_OP_CMP_GT, 3);
    r = futex(&a, FUTEX_WAKE_OP | FUTEX_PRIVATE_FLAG, 0, (void *)1L, &b, op2);
    printf("WAKE_OP OR/GT: %ld, b=%#x\n", r, b);
    CHECK(r == 1 && b == 0x10a, "OR 0x100, old 10 > 3 wakes the last on b");
    CHECK(join_all(), "WAKE_OP waiters returned 0");

    /* 7. WAIT_BITSET with an absolute CLOCK_REALTIME timeout. */
    word = 0;
    struct timespec absrt;
    clock_gettime(CLOCK_REALTIME, &absrt);
    absrt.tv_nsec += 60 * 1000 * 1000;
    if (absrt.tv_nsec >= 1000000000) {
        absrt.tv_nsec -= 1000000000;
        absrt.tv_sec++;
    }
    r = futex(&word, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME, 0,
              &absrt, NULL, FUTEX_BITSET_MATCH_ANY);
    e = errno;
    struct timespec after;
    clock_gettime(CLOCK_REALTIME, &after);
    int late_enough = after.tv_sec > absrt.tv_sec ||
                      (after.tv_sec == absrt.tv_sec && after.tv_nsec >= absrt.tv_nsec);
    printf("WAIT_BITSET absolute REALTIME: %s\n", ename(r < 0 ? e : 0));
    CHECK(r == -1 && e == ETIMEDOUT && late_enough, "timed out at the deadline");
    struct timespec past = {1, 0};
    r = futex(&word, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME, 0,
              &past, NULL, FUTEX_BITSET_MATCH_ANY);
    e = errno;
    CHECK(r == -1 && e == ETIMEDOUT, "deadline in the past: ETIMEDOUT at once");
    /* Absolute CLOCK_MONOTONIC (no FUTEX_CLOCK_REALTIME) too. */
    struct timespec absm;
    clock_gettime(CLOCK_MONOTONIC, &absm);
    absm.tv_nsec += 30 * 1000 * 1000;
    if (absm.tv_nsec >= 1000000000) {
        absm.tv_nsec -= 1000000000;
        absm.tv_sec++;
    }
    r = futex(&word, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, 0, &absm, NULL,
              FUTEX_BITSET_MATCH_ANY);
    e = errno;
    CHECK(r == -1 && e == ETIMEDOUT, "WAIT_BITSET absolute MONOTONIC: ETIMEDOUT");
    r = futex(&word, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, 0, &absm, NULL, 0);
    e = errno;
    CHECK(r == -1 && e == EINVAL, "bitset 0: EINVAL");

    /* 8. WAKE_BITSET only wakes waiters whose bitset intersects. */
    a = 0;
    moved = park(1, &a, 0x1);
    moved += park(1, &a, 0x6);
    r = futex(&a, FUTEX_WAKE_BITSET | FUTEX_PRIVATE_FLAG, INT_MAX, NULL, NULL, 0x8);
    CHECK(moved == 2 && r == 0, "WAKE_BITSET 0x8 wakes nobody");
    r = futex(&a, FUTEX_WAKE_BITSET | FUTEX_PRIVATE_FLAG, INT_MAX, NULL, NULL, 0x4);
    CHECK(r == 1, "WAKE_BITSET 0x4 wakes the 0x6 waiter");
    r = futex(&a, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, INT_MAX, NULL, NULL, 0);
    CHECK(r == 1, "plain WAKE wakes the 0x1 waiter");
    CHECK(join_all(), "bitset waiters returned 0");

    /* 9. Shared futex in MAP_SHARED memory across fork: the child wakes us. */
    uint32_t *sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                        -1, 0);
    *sh = 0;
    pid_t pid = fork();
    if (pid == 0) {
        usleep(100 * 1000);
        __atomic_store_n(sh, 1, __ATOMIC_SEQ_CST);
        long n = futex(sh, FUTEX_WAKE, 1, NULL, NULL, 0);
        _exit(n == 1 ? 0 : 3);
    }
    struct timespec two = {2, 0};
    r = futex(sh, FUTEX_WAIT, 0, &two, NULL, 0);
    e = errno;
    int st;
    waitpid(pid, &st, 0);
    printf("shared futex wait: %s, child's WAKE found us: %s\n", ename(r < 0 ? e : 0),
           WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "yes" : "no");
    CHECK(r == 0 && *sh == 1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
          "woken across processes");
    /* A private wait is not found by a shared wake of the same word. */
    *sh = 0;
    pid = fork();
    if (pid == 0) {
        struct timespec t = {0, 150 * 1000 * 1000};
        long n = futex(sh, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, 0, &t, NULL, 0);
        _exit(n == -1 && errno == ETIMEDOUT ? 0 : 4);
    }
    usleep(50 * 1000);
    r = futex(sh, FUTEX_WAKE, 1, NULL, NULL, 0);
    waitpid(pid, &st, 0);
    CHECK(r == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
          "a shared WAKE does not find another process's private waiter");

    printf("result: %s\n", failures ? "FAIL" : "OK");
    return failures ? 1 : 0;
}
