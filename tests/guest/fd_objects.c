/* eventfd, timerfd, signalfd, pidfd and epoll: each object's semantics,
 * printed as facts (no times, no pids) for the differential oracle. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int failed;
#define CHECK(cond) do { if (cond) printf("ok: %s\n", #cond); else { printf("FAIL: %s (errno %s)\n", #cond, strerrorname_np(errno)); failed = 1; } } while (0)

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* eventfd: counter, semaphore mode, nonblocking reads. */
    int e = eventfd(3, EFD_NONBLOCK);
    uint64_t v = 0;
    CHECK(e >= 0);
    CHECK(read(e, &v, 8) == 8 && v == 3);
    CHECK(read(e, &v, 8) == -1 && errno == EAGAIN);
    v = 2;
    CHECK(write(e, &v, 8) == 8);
    CHECK(read(e, &v, 4) == -1 && errno == EINVAL);
    int s = eventfd(2, EFD_SEMAPHORE | EFD_NONBLOCK);
    CHECK(read(s, &v, 8) == 8 && v == 1);
    CHECK(read(s, &v, 8) == 8 && v == 1);
    CHECK(read(s, &v, 8) == -1 && errno == EAGAIN);
    CHECK(eventfd(0, 0x1234) == -1 && errno == EINVAL);

    /* epoll: level-triggered, edge-triggered, oneshot, errors. */
    int ep = epoll_create1(EPOLL_CLOEXEC);
    CHECK(ep >= 0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 42}, out[4];
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, e, &ev) == 0);
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, e, &ev) == -1 && errno == EEXIST);
    CHECK(epoll_wait(ep, out, 4, 0) == 1 && out[0].data.u64 == 42 && (out[0].events & EPOLLIN));
    CHECK(epoll_wait(ep, out, 4, 0) == 1); /* level-triggered: still ready */
    ev.events = EPOLLIN | EPOLLET;
    CHECK(epoll_ctl(ep, EPOLL_CTL_MOD, e, &ev) == 0);
    CHECK(epoll_wait(ep, out, 4, 0) == 1);
    CHECK(epoll_wait(ep, out, 4, 0) == 0); /* edge-triggered: reported once */
    v = 1;
    CHECK(write(e, &v, 8) == 8);
    CHECK(epoll_wait(ep, out, 4, 0) == 1); /* a new event */
    ev.events = EPOLLIN | EPOLLONESHOT;
    CHECK(epoll_ctl(ep, EPOLL_CTL_MOD, e, &ev) == 0);
    CHECK(epoll_wait(ep, out, 4, 0) == 1);
    CHECK(epoll_wait(ep, out, 4, 0) == 0);
    CHECK(epoll_ctl(ep, EPOLL_CTL_DEL, e, NULL) == 0);
    CHECK(epoll_ctl(ep, EPOLL_CTL_DEL, e, NULL) == -1 && errno == ENOENT);
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, ep, &ev) == -1 && errno == EINVAL);
    CHECK(epoll_wait(ep, out, 0, 0) == -1 && errno == EINVAL);
    CHECK(epoll_wait(e, out, 4, 0) == -1 && errno == EINVAL);
    int p[2];
    pipe(p);
    ev.events = EPOLLIN;
    ev.data.fd = p[0];
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev) == 0);
    if (fork() == 0) {
        usleep(50000);
        write(p[1], "x", 1);
        _exit(0);
    }
    CHECK(epoll_wait(ep, out, 4, 5000) == 1 && out[0].data.fd == p[0]); /* blocks until the child writes */
    wait(NULL);

    /* timerfd: relative one-shot, interval counting, gettime. */
    int t = timerfd_create(CLOCK_MONOTONIC, 0);
    CHECK(t >= 0);
    struct itimerspec its = {.it_value = {0, 20 * 1000 * 1000}, .it_interval = {0, 10 * 1000 * 1000}};
    CHECK(timerfd_settime(t, 0, &its, NULL) == 0);
    usleep(100 * 1000);
    CHECK(read(t, &v, 8) == 8 && v >= 5);
    struct itimerspec cur;
    CHECK(timerfd_gettime(t, &cur) == 0 && cur.it_interval.tv_nsec == 10 * 1000 * 1000);
    its.it_value.tv_nsec = 0;
    its.it_interval.tv_nsec = 0;
    CHECK(timerfd_settime(t, 0, &its, NULL) == 0);
    int tn = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    CHECK(read(tn, &v, 8) == -1 && errno == EAGAIN);
    CHECK(timerfd_create(12345, 0) == -1 && errno == EINVAL);

    /* signalfd: blocked signals read as records. */
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR1);
    sigprocmask(SIG_BLOCK, &m, NULL);
    int sf = signalfd(-1, &m, SFD_NONBLOCK);
    CHECK(sf >= 0);
    struct signalfd_siginfo si;
    CHECK(read(sf, &si, sizeof si) == -1 && errno == EAGAIN);
    kill(getpid(), SIGUSR1);
    CHECK(read(sf, &si, sizeof si) == sizeof si && si.ssi_signo == SIGUSR1 && si.ssi_code == SI_USER);
    CHECK(read(sf, &si, 10) == -1 && errno == EINVAL);

    /* pidfd: signal through it, readable once the process exits. */
    pid_t c = fork();
    if (c == 0) {
        pause();
        _exit(7);
    }
    int pfd = syscall(SYS_pidfd_open, c, 0);
    CHECK(pfd >= 0);
    CHECK(syscall(SYS_pidfd_send_signal, pfd, SIGTERM, NULL, 0) == 0);
    struct epoll_event pev = {.events = EPOLLIN, .data.u32 = 7};
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, pfd, &pev) == 0);
    int n = epoll_wait(ep, out, 4, 5000);
    CHECK(n >= 1);
    int st;
    CHECK(waitpid(c, &st, 0) == c && WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
    CHECK(syscall(SYS_pidfd_open, 0, 0) == -1 && errno == EINVAL);
    printf("result: %s\n", failed ? "FAIL" : "OK");
    return failed;
}
