/* epoll wake-ups: a thread asleep in epoll_wait on an epoll that holds
 * another epoll (which holds a pipe) wakes when the pipe gets data, as
 * does poll() on the outer epoll's descriptor; with EPOLLEXCLUSIVE, one
 * write to an eventfd watched by four epoll instances (one thread asleep
 * on each) wakes exactly one of them, which consumes the count, so the
 * others sleep on to their timeouts and report nothing (the nested
 * waits have no timeout: a wake-up that never comes hangs the run, which
 * the harness ends as a failure). The same
 * natively and under ruml. Threads are known to be asleep when their
 * /proc/self/task/TID/stat state is S after they said they would wait. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

static volatile int tids[8];
static volatile int ready;

static char state_of(int tid) {
    char p[64], b[512];
    snprintf(p, sizeof p, "/proc/self/task/%d/stat", tid);
    FILE *f = fopen(p, "r");
    if (!f)
        return '?';
    size_t n = fread(b, 1, sizeof b - 1, f);
    fclose(f);
    b[n] = 0;
    char *c = strrchr(b, ')');
    return c && c[1] == ' ' ? c[2] : '?';
}

/* Waits (bounded) until `n` threads said they would wait and all are S. */
static void until_asleep(int n) {
    for (int tries = 0; tries < 6000; tries++) {
        int all = __atomic_load_n(&ready, __ATOMIC_SEQ_CST) == n;
        for (int i = 0; all && i < n; i++)
            all = state_of(tids[i]) == 'S';
        if (all) {
            usleep(50000);
            return;
        }
        usleep(5000);
    }
    printf("threads never slept\n");
}

static int nested_outer;
static int nested_events;
static void *nested_waiter(void *a) {
    (void)a;
    struct epoll_event ev[4];
    tids[0] = syscall(SYS_gettid);
    __atomic_add_fetch(&ready, 1, __ATOMIC_SEQ_CST);
    nested_events = epoll_wait(nested_outer, ev, 4, -1);
    return 0;
}

static int poll_revents;
static void *poll_waiter(void *a) {
    (void)a;
    struct pollfd p = {.fd = nested_outer, .events = POLLIN};
    tids[0] = syscall(SYS_gettid);
    __atomic_add_fetch(&ready, 1, __ATOMIC_SEQ_CST);
    int r = poll(&p, 1, -1);
    poll_revents = r > 0 ? p.revents : -1;
    return 0;
}

static int efd;
static int eps[4];
static int got[4];
static void *excl_waiter(void *a) {
    int i = (int)(intptr_t)a;
    struct epoll_event ev;
    tids[i] = syscall(SYS_gettid);
    __atomic_add_fetch(&ready, 1, __ATOMIC_SEQ_CST);
    int r = epoll_wait(eps[i], &ev, 1, 4000);
    if (r > 0) {
        uint64_t v;
        if (read(efd, &v, 8) == 8)
            got[i] = 1;
        else
            got[i] = 2; /* woken, but another took the count */
    }
    return 0;
}

int main(void) {
    pthread_t t[4];
    int p[2];
    if (pipe(p) != 0)
        return 1;
    int inner = epoll_create1(0), outer = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN};
    ev.data.u64 = 1;
    epoll_ctl(inner, EPOLL_CTL_ADD, p[0], &ev);
    ev.data.u64 = 2;
    epoll_ctl(outer, EPOLL_CTL_ADD, inner, &ev);
    nested_outer = outer;

    /* epoll_wait on the outer epoll. */
    ready = 0;
    pthread_create(&t[0], 0, nested_waiter, 0);
    until_asleep(1);
    if (write(p[1], "x", 1) != 1)
        return 1;
    pthread_join(t[0], 0);
    printf("nested epoll_wait: %d event(s)\n", nested_events);
    char c;
    if (read(p[0], &c, 1) != 1)
        return 1;

    /* poll() on the outer epoll's descriptor. */
    ready = 0;
    pthread_create(&t[0], 0, poll_waiter, 0);
    until_asleep(1);
    if (write(p[1], "y", 1) != 1)
        return 1;
    pthread_join(t[0], 0);
    printf("poll on nested epoll: revents %#x\n", poll_revents);
    if (read(p[0], &c, 1) != 1)
        return 1;

    /* EPOLLEXCLUSIVE: one write, one thread woken. */
    efd = eventfd(0, EFD_NONBLOCK);
    for (int i = 0; i < 4; i++) {
        eps[i] = epoll_create1(0);
        struct epoll_event x = {.events = EPOLLIN | EPOLLEXCLUSIVE};
        if (epoll_ctl(eps[i], EPOLL_CTL_ADD, efd, &x) != 0)
            printf("add exclusive: %s\n", strerror(errno));
    }
    ready = 0;
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], 0, excl_waiter, (void *)(intptr_t)i);
    until_asleep(4);
    uint64_t one = 1;
    if (write(efd, &one, 8) != 8)
        return 1;
    int woken = 0, took = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], 0);
        woken += got[i] != 0;
        took += got[i] == 1;
    }
    printf("EPOLLEXCLUSIVE: %d woken, %d took the count\n", woken, took);
    printf("done\n");
    return 0;
}
