/* poll, ppoll, select and pselect on pipes, compared with the host:
 * readiness, hangup and error bits, timeouts (and select's updated
 * timeval), POLLNVAL and EBADF, blocking until another process writes,
 * interruption by a signal (EINTR), ppoll's temporary signal mask, and
 * a blocked pipe read with and without SA_RESTART. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile int got_usr1;
static void on_usr1(int s) { (void)s; got_usr1++; }

static long ms_since(struct timespec *a) {
    struct timespec b;
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (b.tv_sec - a->tv_sec) * 1000 + (b.tv_nsec - a->tv_nsec) / 1000000;
}

static void pr(const char *what, int r, short rev) {
    printf("%s: r=%d revents=%#x%s\n", what, r, rev, r < 0 ? strerror(errno) : "");
}

/* A child that sleeps `ms`, then sends SIGUSR1 to the parent and/or writes. */
static pid_t later(int ms, int sig, int wfd) {
    pid_t p = fork();
    if (p == 0) {
        usleep(ms * 1000);
        if (sig) kill(getppid(), sig);
        if (wfd >= 0) { usleep(100 * 1000); write(wfd, "x", 1); }
        _exit(0);
    }
    return p;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    int p[2];
    pipe(p);
    struct pollfd f[4];
    struct timespec t0;

    f[0] = (struct pollfd){p[0], POLLIN, 0};
    f[1] = (struct pollfd){p[1], POLLOUT, 0};
    int r = poll(f, 2, 0);
    printf("empty: r=%d read=%#x write=%#x\n", r, f[0].revents, f[1].revents);

    clock_gettime(CLOCK_MONOTONIC, &t0);
    r = poll(f, 1, 150);
    long el = ms_since(&t0);
    printf("timeout: r=%d waited>=140ms %d <2s %d\n", r, el >= 140, el < 2000);

    write(p[1], "ab", 2);
    r = poll(f, 2, -1);
    printf("data: r=%d read=%#x write=%#x\n", r, f[0].revents, f[1].revents);

    /* Bad and negative descriptors. */
    f[0] = (struct pollfd){p[0], POLLIN, 0};
    f[1] = (struct pollfd){-1, POLLIN, 0};
    f[2] = (struct pollfd){999, POLLIN, 0};
    r = poll(f, 3, 0);
    printf("nval: r=%d %#x %#x %#x\n", r, f[0].revents, f[1].revents, f[2].revents);

    /* select. */
    fd_set rs, ws;
    FD_ZERO(&rs); FD_ZERO(&ws);
    FD_SET(p[0], &rs); FD_SET(p[1], &ws);
    struct timeval tv = {1, 0};
    r = select(p[1] + 1, &rs, &ws, NULL, &tv);
    printf("select: r=%d r=%d w=%d\n", r, FD_ISSET(p[0], &rs), FD_ISSET(p[1], &ws));
    char buf[16];
    read(p[0], buf, sizeof buf);
    FD_ZERO(&rs); FD_SET(p[0], &rs);
    tv = (struct timeval){0, 120000};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    r = select(p[0] + 1, &rs, NULL, NULL, &tv);
    el = ms_since(&t0);
    printf("select timeout: r=%d set=%d tv=%ld.%06ld waited>=110ms %d\n", r, FD_ISSET(p[0], &rs), (long)tv.tv_sec, (long)tv.tv_usec, el >= 110);
    FD_ZERO(&rs); FD_SET(50, &rs);
    tv = (struct timeval){0, 0};
    r = select(51, &rs, NULL, NULL, &tv);
    printf("select bad fd: r=%d %s\n", r, r < 0 ? strerror(errno) : "");
    struct timespec ts = {0, 50000000};
    FD_ZERO(&rs); FD_SET(p[0], &rs);
    r = pselect(p[0] + 1, &rs, NULL, NULL, &ts, NULL);
    printf("pselect timeout: r=%d\n", r);

    /* Blocking until a child writes. */
    pid_t c = later(100, 0, p[1]);
    f[0] = (struct pollfd){p[0], POLLIN, 0};
    r = poll(f, 1, 5000);
    pr("woken by writer", r, f[0].revents);
    waitpid(c, NULL, 0);
    read(p[0], buf, sizeof buf);

    /* Interrupted by a signal: EINTR (no SA_RESTART for poll anyway). */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    c = later(100, SIGUSR1, -1);
    r = poll(f, 1, 5000);
    pr("poll interrupted", r, f[0].revents);
    printf("handler ran %d\n", got_usr1);
    waitpid(c, NULL, 0);

    /* ppoll with SIGUSR1 blocked outside and unblocked inside. */
    sigset_t block, none;
    sigemptyset(&block); sigaddset(&block, SIGUSR1);
    sigprocmask(SIG_BLOCK, &block, NULL);
    sigemptyset(&none);
    got_usr1 = 0;
    c = later(100, SIGUSR1, -1);
    ts = (struct timespec){5, 0};
    r = ppoll(f, 1, &ts, &none);
    pr("ppoll interrupted", r, f[0].revents);
    printf("handler ran %d\n", got_usr1);
    sigset_t cur;
    sigprocmask(SIG_BLOCK, NULL, &cur);
    printf("mask restored %d\n", sigismember(&cur, SIGUSR1));
    waitpid(c, NULL, 0);
    sigprocmask(SIG_UNBLOCK, &block, NULL);

    /* A blocked pipe read: EINTR without SA_RESTART... */
    got_usr1 = 0;
    c = later(100, SIGUSR1, p[1]);
    r = read(p[0], buf, sizeof buf);
    printf("read no SA_RESTART: r=%d %s handler=%d\n", r, r < 0 ? strerror(errno) : "", got_usr1);
    waitpid(c, NULL, 0);
    r = read(p[0], buf, sizeof buf);
    printf("then read %d\n", r);
    /* ...restarted with it. */
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    got_usr1 = 0;
    c = later(100, SIGUSR1, p[1]);
    r = read(p[0], buf, sizeof buf);
    printf("read SA_RESTART: r=%d handler=%d\n", r, got_usr1);
    waitpid(c, NULL, 0);

    /* Hangup and error. */
    write(p[1], "z", 1);
    close(p[1]);
    f[0] = (struct pollfd){p[0], POLLIN, 0};
    r = poll(f, 1, 0);
    printf("writer gone, data left: r=%d %#x\n", r, f[0].revents);
    read(p[0], buf, sizeof buf);
    r = poll(f, 1, 0);
    printf("writer gone, drained: r=%d %#x\n", r, f[0].revents);
    close(p[0]);
    pipe(p);
    close(p[0]);
    f[0] = (struct pollfd){p[1], POLLOUT, 0};
    r = poll(f, 1, 0);
    printf("reader gone: r=%d %#x\n", r, f[0].revents);
    /* A full pipe is not writable. */
    pipe(p);
    fcntl(p[1], F_SETFL, O_NONBLOCK);
    static char big[65536];
    int total = 0, k;
    while ((k = write(p[1], big, sizeof big)) > 0) total += k;
    f[0] = (struct pollfd){p[1], POLLOUT, 0};
    r = poll(f, 1, 0);
    printf("full (%d bytes): r=%d %#x\n", total, r, f[0].revents);
    read(p[0], big, 8192);
    r = poll(f, 1, 0);
    printf("after reading 8K: r=%d %#x\n", r, f[0].revents);
    return 0;
}
