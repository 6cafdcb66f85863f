/* pidfds beyond the basics (issue 11): pidfd_open's lookup in the caller's
 * PID namespace, thread pidfds (PIDFD_THREAD) with poll, pidfd_send_signal's
 * scope flags and waitid(P_PIDFD), pidfd_getfd, and setns(pidfd, flags).
 * Runs as root (natively and under ruml); prints only deterministic
 * results (return values, errnos, comparisons), never pids. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <grp.h>

#ifndef PIDFD_NONBLOCK
#define PIDFD_NONBLOCK 04000
#endif
#ifndef PIDFD_THREAD
#define PIDFD_THREAD 0200
#endif
#ifndef PIDFD_SIGNAL_THREAD
#define PIDFD_SIGNAL_THREAD 1
#define PIDFD_SIGNAL_THREAD_GROUP 2
#define PIDFD_SIGNAL_PROCESS_GROUP 4
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x80
#endif
#define NR_pidfd_open 434
#define NR_pidfd_send_signal 424
#define NR_pidfd_getfd 438

static const char *err(long r) {
    static char b[64];
    if (r >= 0) snprintf(b, sizeof b, "%ld", r);
    else snprintf(b, sizeof b, "-1 %s", strerrorname_np(errno));
    return b;
}

static int p_open(pid_t pid, unsigned flags) { return syscall(NR_pidfd_open, pid, flags); }
static long p_send(int fd, int sig, siginfo_t *si, unsigned flags) {
    return syscall(NR_pidfd_send_signal, fd, sig, si, flags);
}
static long p_getfd(int pfd, int fd, unsigned flags) { return syscall(NR_pidfd_getfd, pfd, fd, flags); }
static pid_t gettid_(void) { return syscall(SYS_gettid); }

static short poll1(int fd, int ms) {
    struct pollfd q = {fd, POLLIN, 0};
    int r = poll(&q, 1, ms);
    return r < 0 ? -1 : q.revents;
}

/* Runs f in a child and waits for it (each section in its own process). */
static void section(const char *name, void (*f)(void)) {
    printf("== %s\n", name);
    pid_t c = fork();
    if (c == 0) { f(); _exit(0); }
    int st;
    waitpid(c, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) printf("section status %#x\n", st);
}

/* ---- 1. pidfd_open in the caller's PID namespace ---- */
static void ns_lookup(void) {
    pid_t outer = getpid();
    int self = p_open(outer, 0);
    if (unshare(CLONE_NEWPID) != 0) { printf("unshare: %s\n", err(-1)); return; }
    int gate[2], go[2];
    pipe(gate);
    pipe(go);
    pid_t c = fork();
    if (c == 0) {
        char y;
        read(go[0], &y, 1);
        printf("child getpid: %d\n", getpid());
        printf("pidfd_open(outer pid) in child ns: %s\n", err(p_open(outer, 0)));
        int me = p_open(1, 0);
        printf("pidfd_open(1) in child ns: %d\n", me >= 0);
        printf("send to own pidfd: %s\n", err(p_send(me, 0, NULL, 0)));
        printf("send to outer pidfd: %s\n", err(p_send(self, 0, NULL, 0)));
        pid_t g = fork();
        if (g == 0) { char x; read(gate[0], &x, 1); _exit(3); }
        int gfd = p_open(g, 0);
        printf("grandchild pid %d pidfd: %d\n", g, gfd >= 0);
        printf("pidfd_open(3) absent: %s\n", err(p_open(3, 0)));
        write(gate[1], "x", 1);
        siginfo_t si;
        memset(&si, 0, sizeof si);
        long r = syscall(SYS_waitid, P_PIDFD, gfd, &si, WEXITED, NULL);
        printf("waitid grandchild: %s pid %d status %d\n", err(r), si.si_pid, si.si_status);
        _exit(5);
    }
    int cfd = p_open(c, 0);
    printf("outer pidfd_open(child): %d\n", cfd >= 0);
    printf("outer send 0: %s\n", err(p_send(cfd, 0, NULL, 0)));
    write(go[1], "g", 1);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    long r = syscall(SYS_waitid, P_PIDFD, cfd, &si, WEXITED, NULL);
    printf("outer waitid child: %s same pid %d status %d\n", err(r), si.si_pid == c, si.si_status);
}

/* ---- 2. thread pidfds ---- */
static volatile pid_t handled_tid;
static volatile int handled_code;
static void on_usr1(int s, siginfo_t *si, void *u) {
    (void)s; (void)u;
    handled_tid = gettid_();
    handled_code = si->si_code;
}

static int tpipe[2];
static volatile pid_t worker_tid;
static void *worker(void *a) {
    (void)a;
    worker_tid = gettid_();
    char x;
    /* Wait for a byte; signals interrupt the read, so loop. */
    while (read(tpipe[0], &x, 1) != 1) {}
    return NULL;
}

static void thread_pidfds(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_usr1;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, NULL);
    pipe(tpipe);
    pthread_t th;
    pthread_create(&th, NULL, worker, NULL);
    while (!worker_tid) sched_yield();
    pid_t tid = worker_tid;
    printf("pidfd_open(tid, 0): %s\n", err(p_open(tid, 0)));
    printf("pidfd_open(tid, bad flag): %s\n", err(p_open(tid, 1)));
    int tfd = p_open(tid, PIDFD_THREAD);
    printf("pidfd_open(tid, PIDFD_THREAD): %d\n", tfd >= 0);
    int nbfd = p_open(tid, PIDFD_THREAD | PIDFD_NONBLOCK);
    printf("pidfd_open(tid, THREAD|NONBLOCK): %d flags %#x\n", nbfd >= 0,
           fcntl(nbfd, F_GETFL) & (O_NONBLOCK | 0200));
    int pfd = p_open(getpid(), 0);
    int lfd = p_open(getpid(), PIDFD_THREAD);
    printf("thread pidfd of leader: %d cloexec %d\n", lfd >= 0, fcntl(lfd, F_GETFD));
    printf("F_GETFL thread %#x process %#x\n", fcntl(tfd, F_GETFL) & 0200, fcntl(pfd, F_GETFL) & 0200);
    printf("poll thread alive: %d\n", poll1(tfd, 0));

    /* Scope flags. */
    printf("flags THREAD|GROUP: %s\n", err(p_send(tfd, 0, NULL, PIDFD_SIGNAL_THREAD | PIDFD_SIGNAL_THREAD_GROUP)));
    printf("flags GROUP|PGRP: %s\n", err(p_send(pfd, 0, NULL, PIDFD_SIGNAL_THREAD_GROUP | PIDFD_SIGNAL_PROCESS_GROUP)));
    printf("flags 8: %s\n", err(p_send(pfd, 0, NULL, 8)));
    sigset_t blk, old;
    sigemptyset(&blk);
    sigaddset(&blk, SIGUSR1);
    /* The main thread blocks SIGUSR1: a thread-directed signal to the
     * worker runs the handler there; a process-directed one also goes to
     * the worker (the only thread that does not block it). */
    pthread_sigmask(SIG_BLOCK, &blk, &old);
    struct { const char *what; int fd; unsigned flags; } cases[] = {
        {"thread pidfd, flags 0", tfd, 0},
        {"thread pidfd, SIGNAL_THREAD", tfd, PIDFD_SIGNAL_THREAD},
        {"thread pidfd, SIGNAL_THREAD_GROUP", tfd, PIDFD_SIGNAL_THREAD_GROUP},
        {"process pidfd, flags 0", pfd, 0},
    };
    for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        handled_tid = 0;
        long r = p_send(cases[i].fd, SIGUSR1, NULL, cases[i].flags);
        while (r == 0 && !handled_tid) sched_yield();
        printf("%s: %s in worker %d code %d\n", cases[i].what, err(r), handled_tid == tid, handled_code);
    }
    /* Signal the leader thread itself through a process pidfd with
     * PIDFD_SIGNAL_THREAD: pending on the main thread (blocked). */
    printf("process pidfd, SIGNAL_THREAD: %s\n", err(p_send(pfd, SIGUSR1, NULL, PIDFD_SIGNAL_THREAD)));
    sigset_t pend;
    sigpending(&pend);
    printf("pending on main: %d\n", sigismember(&pend, SIGUSR1));
    handled_tid = 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    printf("handled in main: %d code %d\n", handled_tid == gettid_(), handled_code);

    /* Forged siginfo: to our own process pidfd from the leader is fine;
     * through a thread pidfd of another thread is not. */
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = SIGUSR1;
    si.si_code = SI_USER;
    printf("forged via own thread pidfd (leader): %s\n", err(p_send(lfd, SIGUSR1, &si, 0)));
    printf("forged via worker thread pidfd: %s\n", err(p_send(tfd, SIGUSR1, &si, 0)));
    printf("forged with SIGNAL_PROCESS_GROUP: %s\n", err(p_send(pfd, SIGUSR1, &si, PIDFD_SIGNAL_PROCESS_GROUP)));
    si.si_code = SI_QUEUE;
    printf("SI_QUEUE via worker thread pidfd: %s\n", err(p_send(tfd, 0, &si, 0)));

    /* PIDFD_SELF_THREAD and PIDFD_SELF_THREAD_GROUP (Linux 6.15), from
     * the main thread with SIGUSR1 unblocked. */
    handled_tid = 0;
    printf("PIDFD_SELF_THREAD: %s", err(p_send(-10000, SIGUSR1, NULL, 0)));
    printf(" in main %d code %d\n", handled_tid == gettid_(), handled_code);
    handled_tid = 0;
    long sr = p_send(-10001, SIGUSR1, NULL, 0);
    while (sr == 0 && !handled_tid) sched_yield();
    printf("PIDFD_SELF_THREAD_GROUP: %s code %d\n", err(sr), handled_code);
    printf("PIDFD_SELF_THREAD_GROUP, SIGNAL_THREAD sig 0: %s\n", err(p_send(-10001, 0, NULL, PIDFD_SIGNAL_THREAD)));
    printf("PIDFD_SELF_THREAD, SIGNAL_PROCESS_GROUP: %s\n", err(p_send(-10000, 0, NULL, PIDFD_SIGNAL_PROCESS_GROUP)));
    printf("fd -10002: %s\n", err(p_send(-10002, 0, NULL, 0)));
    printf("pidfd_getfd(PIDFD_SELF_THREAD): %s\n", err(p_getfd(-10000, 1, 0)));
    printf("setns(PIDFD_SELF_THREAD): %s\n", err(setns(-10000, CLONE_NEWUTS)));

    /* waitid on thread pidfds. */
    memset(&si, 0, sizeof si);
    printf("waitid worker thread pidfd: %s\n", err(syscall(SYS_waitid, P_PIDFD, tfd, &si, WEXITED | WNOHANG, NULL)));
    printf("waitid NONBLOCK thread pidfd: %s\n", err(syscall(SYS_waitid, P_PIDFD, nbfd, &si, WEXITED, NULL)));

    /* The worker exits: its thread pidfd becomes readable, the process's
     * does not. */
    write(tpipe[1], "x", 1);
    pthread_join(th, NULL);
    printf("poll thread exited: %d\n", poll1(tfd, 30000) & POLLIN);
    printf("poll process (alive): %d\n", poll1(pfd, 0));
    printf("send to exited thread: %s\n", err(p_send(tfd, 0, NULL, 0)));
    printf("send to exited thread, GROUP: %s\n", err(p_send(tfd, 0, NULL, PIDFD_SIGNAL_THREAD_GROUP)));
    printf("pidfd_open(exited tid, THREAD): %s\n", err(p_open(tid, PIDFD_THREAD)));
}

/* A child process with two threads whose leader exits first. */
static int lead_pipe[2];
static void *lingering(void *a) {
    (void)a;
    char x;
    while (read(lead_pipe[0], &x, 1) != 1) {}
    _exit(4);
}

static void leader_exit(void) {
    pipe(lead_pipe);
    int ready[2];
    pipe(ready);
    pid_t c = fork();
    if (c == 0) {
        pthread_t th;
        pthread_create(&th, NULL, lingering, NULL);
        write(ready[1], "r", 1);
        syscall(SYS_exit, 0);
    }
    char x;
    read(ready[0], &x, 1);
    int pfd = p_open(c, 0);
    int lfd = p_open(c, PIDFD_THREAD);
    printf("pidfds: %d %d\n", pfd >= 0, lfd >= 0);
    /* The leader has exited (or is about to): neither kind is readable
     * while the other thread lives. */
    printf("poll process pidfd: %d\n", poll1(pfd, 300));
    printf("poll leader thread pidfd: %d\n", poll1(lfd, 300));
    siginfo_t si;
    memset(&si, 0, sizeof si);
    printf("waitid WNOHANG: %s pid0 %d\n",
           err(syscall(SYS_waitid, P_PIDFD, lfd, &si, WEXITED | WNOHANG, NULL)), si.si_pid == 0);
    write(lead_pipe[1], "x", 1);
    printf("poll process pidfd after: %d\n", poll1(pfd, 30000) & POLLIN);
    printf("poll leader thread pidfd after: %d\n", poll1(lfd, 30000) & POLLIN);
    memset(&si, 0, sizeof si);
    long r = syscall(SYS_waitid, P_PIDFD, lfd, &si, WEXITED, NULL);
    printf("waitid leader thread pidfd: %s pid %d status %d\n", err(r), si.si_pid == c, si.si_status);
    printf("poll after reap: %#x %#x\n", poll1(pfd, 0), poll1(lfd, 0));
}

/* PIDFD_SIGNAL_PROCESS_GROUP. */
static void pgrp_signal(void) {
    int gate[2], rep[2];
    pipe(gate);
    pipe(rep);
    signal(SIGUSR2, SIG_IGN);
    pid_t a = fork();
    if (a == 0) {
        setpgid(0, 0);
        signal(SIGUSR2, SIG_DFL);
        pid_t b = fork();
        if (b == 0) { write(rep[1], "b", 1); char x; read(gate[0], &x, 1); _exit(0); }
        write(rep[1], "a", 1);
        int st;
        waitpid(b, &st, 0);
        _exit(WIFSIGNALED(st) ? 100 + WTERMSIG(st) : WEXITSTATUS(st));
    }
    char x;
    read(rep[0], &x, 1);
    read(rep[0], &x, 1);
    int afd = p_open(a, 0);
    /* Our own process is not a group leader. */
    int self = p_open(getpid(), 0);
    printf("PGRP on non-leader self: %s\n", err(p_send(self, 0, NULL, PIDFD_SIGNAL_PROCESS_GROUP)));
    printf("PGRP sig 0: %s\n", err(p_send(afd, 0, NULL, PIDFD_SIGNAL_PROCESS_GROUP)));
    printf("PGRP SIGUSR2: %s\n", err(p_send(afd, SIGUSR2, NULL, PIDFD_SIGNAL_PROCESS_GROUP)));
    siginfo_t si;
    memset(&si, 0, sizeof si);
    long r = syscall(SYS_waitid, P_PIDFD, afd, &si, WEXITED, NULL);
    printf("group leader: %s code %d status %d\n", err(r), si.si_code, si.si_status);
}

/* ---- 3. pidfd_getfd ---- */
static void getfd(void) {
    int p[2], gate[2];
    pipe(p);
    pipe(gate);
    pid_t c = fork();
    if (c == 0) {
        dup2(p[1], 42);
        close(p[1]);
        close(p[0]);
        char x;
        read(gate[0], &x, 1);
        _exit(0);
    }
    close(p[1]);
    int pfd = p_open(c, 0);
    /* Until the child has dup'ed fd 42, retry EBADF. */
    long nfd;
    while ((nfd = p_getfd(pfd, 42, 0)) < 0 && errno == EBADF) sched_yield();
    printf("getfd: %d cloexec %d\n", nfd >= 0, fcntl(nfd, F_GETFD));
    printf("write through it: %zd\n", write(nfd, "hi", 2));
    char buf[8] = {0};
    printf("read other end: %zd %s\n", read(p[0], buf, sizeof buf - 1), buf);
    printf("getfd flags 1: %s\n", err(p_getfd(pfd, 42, 1)));
    printf("getfd bad target fd: %s\n", err(p_getfd(pfd, 99, 0)));
    printf("getfd negative target fd: %s\n", err(p_getfd(pfd, -1, 0)));
    printf("getfd on non-pidfd: %s\n", err(p_getfd(p[0], 0, 0)));
    printf("getfd on fd -1: %s\n", err(p_getfd(-1, 0, 0)));
    printf("getfd on closed fd: %s\n", err(p_getfd(500, 0, 0)));
    int tfd = p_open(gettid_(), PIDFD_THREAD);
    printf("getfd via own thread pidfd: %d\n", p_getfd(tfd, 0, 0) >= 0);
    /* RLIMIT_NOFILE. */
    int lowest = dup(0);
    close(lowest);
    struct rlimit old, rl;
    getrlimit(RLIMIT_NOFILE, &old);
    rl.rlim_cur = lowest;
    rl.rlim_max = old.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    printf("getfd at RLIMIT_NOFILE: %s\n", err(p_getfd(pfd, 42, 0)));
    setrlimit(RLIMIT_NOFILE, &old);
    /* An unprivileged caller may not take a root process's files. */
    pid_t u = fork();
    if (u == 0) {
        setgroups(0, NULL);
        if (setresgid(1000, 1000, 1000) || setresuid(1000, 1000, 1000)) { printf("setresuid failed\n"); _exit(1); }
        printf("unprivileged getfd from root: %s\n", err(p_getfd(pfd, 42, 0)));
        int me = p_open(getpid(), 0);
        printf("unprivileged getfd from self: %d\n", p_getfd(me, 1, 0) >= 0);
        _exit(0);
    }
    waitpid(u, NULL, 0);
    /* Exited (zombie) and reaped. */
    write(gate[1], "x", 1);
    printf("poll: %d\n", poll1(pfd, 30000) & POLLIN);
    printf("getfd zombie: %s\n", err(p_getfd(pfd, 42, 0)));
    int zfd = p_open(c, 0);
    printf("pidfd_open zombie: %d poll %#x\n", zfd >= 0, poll1(zfd, 0));
    printf("send 0 to zombie via new pidfd: %s\n", err(p_send(zfd, 0, NULL, 0)));
    waitpid(c, NULL, 0);
    printf("getfd reaped: %s\n", err(p_getfd(pfd, 42, 0)));
    printf("poll reaped: %#x %#x\n", poll1(pfd, 0), poll1(zfd, 0));
    printf("pidfd_open reaped: %s\n", err(p_open(c, 0)));
}

/* ---- 4. setns(pidfd, flags) ---- */
static int same_ns(pid_t pid, const char *name) {
    char a[64], b[64], la[64] = {0}, lb[64] = {0};
    snprintf(a, sizeof a, "/proc/%d/ns/%s", pid, name);
    snprintf(b, sizeof b, "/proc/self/ns/%s", name);
    if (readlink(a, la, sizeof la - 1) < 0 || readlink(b, lb, sizeof lb - 1) < 0) return -1;
    return strcmp(la, lb) == 0;
}

static void setns_pidfd(void) {
    int gate[2], ready[2];
    pipe(gate);
    pipe(ready);
    pid_t t = fork();
    if (t == 0) {
        if (unshare(CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWCGROUP) != 0) _exit(1);
        sethostname("inner", 5);
        pid_t k = fork(); /* pid 1 of the new PID namespace */
        if (k == 0) {
            char x;
            read(gate[0], &x, 1);
            _exit(0);
        }
        write(ready[1], &k, sizeof k);
        int st;
        waitpid(k, &st, 0);
        _exit(0);
    }
    char x;
    pid_t k;
    read(ready[0], &k, sizeof k);
    int kfd = p_open(k, 0);
    int tfd = p_open(t, 0);
    printf("setns flags 0: %s\n", err(setns(tfd, 0)));
    printf("setns unknown bit: %s\n", err(setns(tfd, CLONE_NEWUTS | CLONE_VM)));
    printf("setns CLONE_THREAD: %s\n", err(setns(tfd, CLONE_THREAD)));
    printf("setns non-pidfd flags 0: %s\n", err(setns(gate[0], CLONE_NEWUTS)));
    char host[64] = {0};
    pid_t c = fork();
    if (c == 0) {
        printf("join UTS|IPC|NS|CGROUP: %s\n",
               err(setns(tfd, CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNS | CLONE_NEWCGROUP)));
        gethostname(host, sizeof host - 1);
        printf("hostname: %s\n", host);
        printf("same uts %d ipc %d mnt %d cgroup %d\n", same_ns(t, "uts"), same_ns(t, "ipc"),
               same_ns(t, "mnt"), same_ns(t, "cgroup"));
        printf("same user %d net %d\n", same_ns(t, "user"), same_ns(t, "net"));
        /* Joining our own user namespace is EINVAL, and nothing else
         * changes with it. */
        int before = same_ns(getppid(), "uts");
        printf("join USER (same): %s\n", err(setns(tfd, CLONE_NEWUSER | CLONE_NEWUTS)));
        printf("uts unchanged: %d\n", same_ns(getppid(), "uts") == before);
        _exit(0);
    }
    waitpid(c, NULL, 0);
    int self_pidfd = p_open(getpid(), 0);
    c = fork();
    if (c == 0) {
        /* The target process t itself is outside its new PID namespace;
         * find its child (the namespace's init) and join that one's. */
        printf("join PID of t: %s\n", err(setns(tfd, CLONE_NEWPID)));
        pid_t g = fork();
        if (g == 0) { _exit(getpid() == 1 ? 0 : 1); }
        int st;
        waitpid(g, &st, 0);
        printf("child after join pid_for_children (t's own): status %d\n", WEXITSTATUS(st));
        printf("join PID of the namespace's init: %s\n", err(setns(kfd, CLONE_NEWPID)));
        printf("getpid unchanged: %d\n", getpid() > 1);
        g = fork();
        if (g == 0) { printf("child in joined namespace: pid %d ppid %d\n", getpid(), getppid()); _exit(0); }
        waitpid(g, &st, 0);
        printf("join PID back up: %s\n", err(setns(self_pidfd, CLONE_NEWPID)));
        _exit(0);
    }
    waitpid(c, NULL, 0);
    /* An unprivileged caller. */
    c = fork();
    if (c == 0) {
        setgroups(0, NULL);
        if (setresgid(1000, 1000, 1000) || setresuid(1000, 1000, 1000)) _exit(1);
        printf("unprivileged setns UTS: %s\n", err(setns(tfd, CLONE_NEWUTS)));
        int me = p_open(getpid(), 0);
        printf("unprivileged setns own UTS: %s\n", err(setns(me, CLONE_NEWUTS)));
        _exit(0);
    }
    waitpid(c, NULL, 0);
    /* A process in a new user namespace: join its user and UTS. */
    int uready[2], ugate[2];
    pipe(uready);
    pipe(ugate);
    pid_t un = fork();
    if (un == 0) {
        if (unshare(CLONE_NEWUSER | CLONE_NEWUTS) != 0) _exit(1);
        sethostname("userns", 6);
        write(uready[1], "r", 1);
        read(ugate[0], &x, 1);
        _exit(0);
    }
    read(uready[0], &x, 1);
    int ufd = p_open(un, 0);
    c = fork();
    if (c == 0) {
        printf("join USER|UTS: %s\n", err(setns(ufd, CLONE_NEWUSER | CLONE_NEWUTS)));
        memset(host, 0, sizeof host);
        gethostname(host, sizeof host - 1);
        printf("hostname: %s uid %d same user %d\n", host, getuid(), same_ns(un, "user"));
        _exit(0);
    }
    waitpid(c, NULL, 0);
    write(ugate[1], "x", 1);
    waitpid(un, NULL, 0);
    printf("setns reaped: %s\n", err(setns(ufd, CLONE_NEWUTS)));
    write(gate[1], "x", 1);
    waitpid(t, NULL, 0);
    printf("setns reaped t: %s\n", err(setns(tfd, CLONE_NEWUTS)));
}

/* ---- 5. PIDFD_GET_*_NAMESPACE ioctls ---- */
#define PIDFS_IOCTL_MAGIC 0xFF
static void ns_ioctls(void) {
    int gate[2], ready[2];
    pipe(gate);
    pipe(ready);
    pid_t c = fork();
    if (c == 0) {
        unshare(CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID | CLONE_NEWTIME);
        write(ready[1], "r", 1);
        char x;
        read(gate[0], &x, 1);
        _exit(0);
    }
    char x;
    read(ready[0], &x, 1);
    int pfd = p_open(c, 0);
    static const char *names[] = {"", "cgroup", "ipc", "mnt", "net", "pid", "pid_for_children",
                                  "time", "time_for_children", "user", "uts"};
    for (int i = 1; i <= 10; i++) {
        int fd = ioctl(pfd, _IO(PIDFS_IOCTL_MAGIC, i), 0);
        int e = errno;
        char path[64];
        struct stat a, b;
        snprintf(path, sizeof path, "/proc/%d/ns/%s", c, names[i]);
        if (fd < 0) { errno = e; printf("%s: %s\n", names[i], err(-1)); continue; }
        int same = fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev;
        struct stat mine;
        snprintf(path, sizeof path, "/proc/self/ns/%s", names[i]);
        stat(path, &mine);
        printf("%s: same as target %d as ours %d cloexec %d\n", names[i], same, a.st_ino == mine.st_ino,
               fcntl(fd, F_GETFD));
        close(fd);
    }
    long r = ioctl(pfd, _IO(PIDFS_IOCTL_MAGIC, 10), 1);
    printf("arg 1: %s\n", err(r));
    r = ioctl(pfd, _IO(PIDFS_IOCTL_MAGIC, 12), 0);
    printf("nr 12: %s\n", err(r));
    r = ioctl(pfd, _IO(PIDFS_IOCTL_MAGIC, 0), 0);
    printf("nr 0: %s\n", err(r));
    r = ioctl(pfd, _IOR(PIDFS_IOCTL_MAGIC, 10, int), 0);
    printf("_IOR nr 10: %s\n", err(r));
    int tfd = p_open(gettid_(), PIDFD_THREAD);
    int ufd = ioctl(tfd, _IO(PIDFS_IOCTL_MAGIC, 10), 0);
    printf("thread pidfd uts: %d\n", ufd >= 0);
    pid_t u = fork();
    if (u == 0) {
        setgroups(0, NULL);
        if (setresgid(1000, 1000, 1000) || setresuid(1000, 1000, 1000)) _exit(1);
        printf("unprivileged: %s\n", err(ioctl(pfd, _IO(PIDFS_IOCTL_MAGIC, 10), 0)));
        int me = p_open(getpid(), 0);
        int fd = ioctl(me, _IO(PIDFS_IOCTL_MAGIC, 10), 0);
        printf("unprivileged own: %d\n", fd >= 0);
        _exit(0);
    }
    waitpid(u, NULL, 0);
    write(gate[1], "x", 1);
    poll1(pfd, 30000);
    printf("zombie: %s\n", err(ioctl(pfd, _IO(PIDFS_IOCTL_MAGIC, 10), 0)));
    waitpid(c, NULL, 0);
    printf("reaped: %s\n", err(ioctl(pfd, _IO(PIDFS_IOCTL_MAGIC, 10), 0)));
    printf("reaped arg 1: %s\n", err(ioctl(pfd, _IO(PIDFS_IOCTL_MAGIC, 10), 1)));
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (getuid() != 0) { printf("SKIP: needs root\n"); return 0; }
    section("pidfd_open in the caller's PID namespace", ns_lookup);
    section("thread pidfds", thread_pidfds);
    section("leader exits first", leader_exit);
    section("PIDFD_SIGNAL_PROCESS_GROUP", pgrp_signal);
    section("pidfd_getfd", getfd);
    section("setns(pidfd)", setns_pidfd);
    section("PIDFD_GET_*_NAMESPACE", ns_ioctls);
    printf("result: OK\n");
    return 0;
}
