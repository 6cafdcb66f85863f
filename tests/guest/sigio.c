/* Signal-driven I/O: O_ASYNC with F_SETOWN/F_SETOWN_EX/F_SETSIG on pipes,
 * unix and TCP sockets, a pty and an inotify descriptor; the owner kinds
 * (process, thread, process group) and the fcntl errors. The signal is
 * blocked and taken with sigtimedwait, so the output is deterministic:
 * the same natively and under ruml. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define SIG (SIGRTMIN + 2)

static const char *e(long r) { return r < 0 ? strerrorname_np(errno) : "ok"; }

static const char *code(int c) {
    switch (c) {
    case POLL_IN: return "POLL_IN";
    case POLL_OUT: return "POLL_OUT";
    case POLL_MSG: return "POLL_MSG";
    case POLL_ERR: return "POLL_ERR";
    case POLL_PRI: return "POLL_PRI";
    case POLL_HUP: return "POLL_HUP";
    case SI_KERNEL: return "SI_KERNEL";
    default: return "other";
    }
}

/* Waits (generously) for one signal of the set; prints what came. */
static int take(const char *what, int sig, int fd) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig);
    siginfo_t si;
    struct timespec ts = {20, 0};
    int r = sigtimedwait(&s, &si, &ts);
    if (r < 0) {
        printf("%s: no signal (%s)\n", what, strerrorname_np(errno));
        return -1;
    }
    if (sig == SIGIO)
        printf("%s: SIGIO code %s\n", what, code(si.si_code));
    else
        printf("%s: sig+%d code %s band %#lx fd %s\n", what, r - SIGRTMIN, code(si.si_code),
               si.si_band, si.si_fd == fd ? "right" : "wrong");
    return si.si_code;
}

/* Whether a signal is pending right now (none expected). */
static void none(const char *what, int sig) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig);
    struct timespec ts = {0, 0};
    siginfo_t si;
    int r = sigtimedwait(&s, &si, &ts);
    printf("%s: %s\n", what, r < 0 ? "nothing" : code(si.si_code));
}

static void drain(int sig) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig);
    struct timespec ts = {0, 0};
    while (sigtimedwait(&s, NULL, &ts) > 0) {
    }
}

static void make_async(int fd, int sig) {
    fcntl(fd, F_SETOWN, getpid());
    fcntl(fd, F_SETSIG, sig);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_ASYNC);
}

static int thread_fd;
static void *thread_main(void *arg) {
    (void)arg;
    take("thread owner", SIG, thread_fd);
    return NULL;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* Our own process group: the group owner below signals it whole. */
    setpgid(0, 0);
    sigset_t all;
    sigemptyset(&all);
    sigaddset(&all, SIG);
    sigaddset(&all, SIGIO);
    sigprocmask(SIG_BLOCK, &all, NULL);

    /* fcntl's owner calls and their errors. */
    int p[2];
    pipe(p);
    printf("getown fresh: %d\n", fcntl(p[0], F_GETOWN));
    printf("getsig fresh: %d\n", fcntl(p[0], F_GETSIG));
    printf("setown self: %s\n", e(fcntl(p[0], F_SETOWN, getpid())));
    printf("getown is self: %d\n", fcntl(p[0], F_GETOWN) == getpid());
    printf("setown pgrp: %s\n", e(fcntl(p[0], F_SETOWN, -getpgrp())));
    printf("getown is -pgrp: %d\n", fcntl(p[0], F_GETOWN) == -getpgrp());
    struct f_owner_ex ox = {F_OWNER_TID, (pid_t)syscall(SYS_gettid)};
    printf("setown_ex tid: %s\n", e(fcntl(p[0], F_SETOWN_EX, &ox)));
    memset(&ox, 0, sizeof ox);
    printf("getown_ex: %s", e(fcntl(p[0], F_GETOWN_EX, &ox)));
    printf(" type %d self %d\n", ox.type, ox.pid == (pid_t)syscall(SYS_gettid));
    ox.type = 7;
    printf("setown_ex bad type: %s\n", e(fcntl(p[0], F_SETOWN_EX, &ox)));
    printf("setown_ex EFAULT: %s\n", e(fcntl(p[0], F_SETOWN_EX, (void *)8)));
    printf("getown_ex EFAULT: %s\n", e(fcntl(p[0], F_GETOWN_EX, (void *)8)));
    printf("setown no such pid: %s\n", e(fcntl(p[0], F_SETOWN, 999999)));
    printf("setsig 65: %s\n", e(fcntl(p[0], F_SETSIG, 65)));
    printf("setsig -1: %s\n", e(fcntl(p[0], F_SETSIG, -1)));
    printf("setsig SIG: %s\n", e(fcntl(p[0], F_SETSIG, SIG)));
    printf("getsig: sig+%d\n", fcntl(p[0], F_GETSIG) - SIGRTMIN);
    printf("setown 0: %s", e(fcntl(p[0], F_SETOWN, 0)));
    printf(" getown %d\n", fcntl(p[0], F_GETOWN));
    close(p[0]);
    close(p[1]);

    /* A pipe's read end with F_SETSIG: si_code, si_band, si_fd. */
    pipe(p);
    make_async(p[0], SIG);
    printf("async flag: %d\n", (fcntl(p[0], F_GETFL) & O_ASYNC) != 0);
    none("pipe before write", SIG);
    write(p[1], "abc", 3);
    take("pipe write", SIG, p[0]);
    write(p[1], "def", 3);
    take("pipe second write", SIG, p[0]);
    char buf[65536];
    read(p[0], buf, 2);
    none("pipe after partial read", SIG);
    read(p[0], buf, sizeof buf);
    none("pipe after read", SIG);
    close(p[1]);
    take("pipe writer closed", SIG, p[0]);
    close(p[0]);

    /* The write end: full, then room again. */
    pipe(p);
    fcntl(p[1], F_SETFL, O_NONBLOCK);
    memset(buf, 'x', 4096);
    int chunks = 0;
    while (write(p[1], buf, 4096) == 4096)
        chunks++;
    printf("pipe full after %d chunks\n", chunks);
    make_async(p[1], SIG);
    none("full pipe", SIG);
    read(p[0], buf, 4096);
    take("room again", SIG, p[1]);
    close(p[1]);
    close(p[0]);
    drain(SIG);

    /* Plain SIGIO (no F_SETSIG). */
    pipe(p);
    fcntl(p[0], F_SETOWN, getpid());
    fcntl(p[0], F_SETFL, O_ASYNC);
    write(p[1], "x", 1);
    take("plain SIGIO", SIGIO, p[0]);
    /* O_ASYNC off: nothing. */
    fcntl(p[0], F_SETFL, 0);
    write(p[1], "y", 1);
    none("async off", SIGIO);
    close(p[0]);
    close(p[1]);

    /* A unix socket pair. */
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    make_async(sv[0], SIG);
    write(sv[1], "hello", 5);
    take("unix stream", SIG, sv[0]);
    close(sv[0]);
    close(sv[1]);
    socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
    make_async(sv[0], SIG);
    send(sv[1], "d", 1, 0);
    take("unix dgram", SIG, sv[0]);
    close(sv[0]);
    close(sv[1]);

    /* TCP on loopback: a listener hears of a connection, a socket of data. */
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(l, (struct sockaddr *)&a, sizeof a);
    socklen_t al = sizeof a;
    getsockname(l, (struct sockaddr *)&a, &al);
    listen(l, 4);
    make_async(l, SIG);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    connect(c, (struct sockaddr *)&a, sizeof a);
    take("tcp listener", SIG, l);
    drain(SIG);
    int s = accept(l, NULL, NULL);
    make_async(s, SIG);
    write(c, "data", 4);
    int got_in = 0;
    for (int i = 0; i < 8 && !got_in; i++) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIG);
        siginfo_t si;
        struct timespec ts = {20, 0};
        if (sigtimedwait(&set, &si, &ts) < 0)
            break;
        got_in = si.si_code == POLL_IN && si.si_fd == s;
    }
    printf("tcp data: POLL_IN %s\n", got_in ? "seen" : "missing");
    drain(SIG);
    close(s);
    close(c);
    close(l);

    /* A pty master hears what the slave writes. */
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    grantpt(m);
    unlockpt(m);
    int sl = open(ptsname(m), O_RDWR | O_NOCTTY);
    make_async(m, SIG);
    write(sl, "z", 1);
    take("pty master", SIG, m);
    drain(SIG);
    close(sl);
    close(m);

    /* inotify. */
    char dir[] = "/tmp/ruml-sigio.XXXXXX";
    mkdtemp(dir);
    int in = inotify_init1(0);
    inotify_add_watch(in, dir, IN_CREATE);
    make_async(in, SIG);
    char path[64];
    snprintf(path, sizeof path, "%s/f", dir);
    close(open(path, O_CREAT | O_WRONLY, 0600));
    take("inotify", SIG, in);
    unlink(path);
    rmdir(dir);
    close(in);
    drain(SIG);

    /* A thread as owner (F_OWNER_TID): it gets the signal, not main. */
    pipe(p);
    pthread_t t;
    thread_fd = p[0];
    pthread_create(&t, NULL, thread_main, NULL);
    struct f_owner_ex own = {F_OWNER_TID, 0};
    /* Find the other thread's tid by scanning /proc/self/task. */
    {
        pid_t me = (pid_t)syscall(SYS_gettid);
        for (int tries = 0; tries < 1000 && own.pid == 0; tries++) {
            int dfd = open("/proc/self/task", O_RDONLY | O_DIRECTORY);
            char dbuf[4096];
            long n = syscall(SYS_getdents64, dfd, dbuf, sizeof dbuf);
            for (long off = 0; off < n;) {
                unsigned short reclen = *(unsigned short *)(dbuf + off + 16);
                const char *name = dbuf + off + 19;
                int tid = atoi(name);
                if (tid > 0 && tid != me)
                    own.pid = tid;
                off += reclen;
            }
            close(dfd);
        }
    }
    fcntl(p[0], F_SETOWN_EX, &own);
    fcntl(p[0], F_SETSIG, SIG);
    fcntl(p[0], F_SETFL, O_ASYNC);
    write(p[1], "t", 1);
    pthread_join(t, NULL);
    none("main after thread owner", SIG);
    close(p[0]);
    close(p[1]);

    /* A process group as owner: parent and child both hear. */
    pipe(p);
    int go[2];
    pipe(go);
    pid_t kid = fork();
    if (kid == 0) {
        char ch;
        read(go[0], &ch, 1);
        take("child in pgrp", SIG, p[0]);
        _exit(0);
    }
    fcntl(p[0], F_SETOWN, -getpgrp());
    fcntl(p[0], F_SETSIG, SIG);
    fcntl(p[0], F_SETFL, O_ASYNC);
    write(p[1], "g", 1);
    take("parent in pgrp", SIG, p[0]);
    write(go[1], "x", 1);
    int st;
    waitpid(kid, &st, 0);
    printf("child exit %d\n", WEXITSTATUS(st));
    return 0;
}
