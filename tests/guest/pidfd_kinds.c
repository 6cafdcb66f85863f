/* pidfd_send_signal and waitid(P_PIDFD) on every kind of pidfd: pidfd_open
 * (blocking and PIDFD_NONBLOCK), clone(CLONE_PIDFD) and clone3(CLONE_PIDFD).
 * Prints only deterministic results (return values and errnos). */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PIDFD_NONBLOCK
#define PIDFD_NONBLOCK 04000
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x1000
#endif

static int report[2], control[2];

static void on_usr1(int s) { (void)s; char c = 'U'; write(report[1], &c, 1); }

static const char *err(long r) {
    static char b[64];
    if (r >= 0) snprintf(b, sizeof b, "%ld", r);
    else snprintf(b, sizeof b, "-1 %s", strerrorname_np(errno));
    return b;
}

static int child_main(void) {
    char c;
    for (;;) {
        ssize_t n = read(control[0], &c, 1);
        if (n == 1) _exit(7);
        if (n == 0) _exit(9);
    }
}

struct clone_args3 { uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls; };

static long send(int fd, int sig, siginfo_t *info, unsigned flags) {
    return syscall(SYS_pidfd_send_signal, fd, sig, info, flags);
}

static void kind(int k) {
    static const char *names[] = {"pidfd_open", "pidfd_open NONBLOCK", "clone CLONE_PIDFD", "clone3 CLONE_PIDFD"};
    printf("== %s\n", names[k]);
    int pfd = -1;
    pid_t pid;
    if (k <= 1) {
        pid = fork();
        if (pid == 0) child_main();
        pfd = syscall(SYS_pidfd_open, pid, k == 1 ? PIDFD_NONBLOCK : 0);
    } else if (k == 2) {
        pid = syscall(SYS_clone, CLONE_PIDFD | SIGCHLD, 0, &pfd, 0, 0);
        if (pid == 0) child_main();
    } else {
        struct clone_args3 a;
        memset(&a, 0, sizeof a);
        a.flags = CLONE_PIDFD;
        a.pidfd = (uintptr_t)&pfd;
        a.exit_signal = SIGCHLD;
        pid = syscall(SYS_clone3, &a, sizeof a);
        if (pid == 0) child_main();
    }
    printf("pidfd ok: %d\n", pfd > 2);
    printf("sig 0: %s\n", err(send(pfd, 0, NULL, 0)));
    printf("bad flags: %s\n", err(send(pfd, 0, NULL, 0x100)));
    printf("non-pidfd: %s\n", err(send(report[0], 0, NULL, 0)));
    printf("bad sig: %s\n", err(send(pfd, 99, NULL, 0)));
    printf("SIGUSR1: %s\n", err(send(pfd, SIGUSR1, NULL, 0)));
    char c = 0;
    { ssize_t n = read(report[0], &c, 1); printf("child reported: %zd %c\n", n, c); }
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = SIGUSR1;
    si.si_code = SI_USER;
    printf("forged SI_USER: %s\n", err(send(pfd, SIGUSR1, &si, 0)));
    si.si_code = SI_QUEUE;
    printf("forged SI_QUEUE (neg code): %s\n", err(send(pfd, SIGUSR1, &si, 0)));
    if (c) { c = 0; { ssize_t n = read(report[0], &c, 1); printf("child reported: %zd %c\n", n, c); } }
    si.si_signo = SIGUSR2;
    printf("mismatched si_signo: %s\n", err(send(pfd, SIGUSR1, &si, 0)));
    memset(&si, 0, sizeof si);
    long r = syscall(SYS_waitid, P_PIDFD, pfd, &si, WEXITED | WNOHANG, NULL);
    printf("waitid WNOHANG running: %s si_pid0 %d\n", err(r), si.si_pid == 0);
    if (k == 1) {
        r = syscall(SYS_waitid, P_PIDFD, pfd, &si, WEXITED, NULL);
        printf("waitid NONBLOCK running: %s\n", err(r));
    }
    struct pollfd q = {pfd, POLLIN, 0};
    printf("poll running: %d\n", poll(&q, 1, 0));
    write(control[1], "x", 1);
    q.revents = 0;
    int pr = poll(&q, 1, 30000);
    printf("poll exited: %d revents %#x\n", pr, q.revents);
    printf("sig 0 zombie: %s\n", err(send(pfd, 0, NULL, 0)));
    memset(&si, 0, sizeof si);
    r = syscall(SYS_waitid, P_PIDFD, pfd, &si, WEXITED | WNOWAIT, NULL);
    printf("waitid WNOWAIT: %s pid %d code %d status %d\n", err(r), si.si_pid == pid, si.si_code, si.si_status);
    memset(&si, 0, sizeof si);
    r = syscall(SYS_waitid, P_PIDFD, pfd, &si, WEXITED, NULL);
    printf("waitid: %s pid %d code %d status %d\n", err(r), si.si_pid == pid, si.si_code, si.si_status);
    r = syscall(SYS_waitid, P_PIDFD, pfd, &si, WEXITED, NULL);
    printf("waitid again: %s\n", err(r));
    printf("sig 0 reaped: %s\n", err(send(pfd, 0, NULL, 0)));
    close(pfd);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    pipe(report);
    pipe(control);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    for (int k = 0; k < 4; k++) kind(k);

    printf("== misc\n");
    int self = syscall(SYS_pidfd_open, getpid(), 0);
    siginfo_t si;
    long r = syscall(SYS_waitid, P_PIDFD, self, &si, WEXITED | WNOHANG, NULL);
    printf("waitid own pidfd (not a child): %s\n", err(r));
    r = syscall(SYS_waitid, P_PIDFD, report[0], &si, WEXITED | WNOHANG, NULL);
    printf("waitid non-pidfd: %s\n", err(r));
    r = syscall(SYS_waitid, P_PIDFD, -1, &si, WEXITED | WNOHANG, NULL);
    printf("waitid fd -1: %s\n", err(r));
    printf("pidfd_open bad flags: %s\n", err(syscall(SYS_pidfd_open, getpid(), 1)));
    memset(&si, 0, sizeof si);
    si.si_signo = SIGUSR1;
    si.si_code = SI_USER;
    printf("own forged SI_USER: %s\n", err(send(self, SIGUSR1, &si, 0)));
    char c = 0;
    ssize_t n = read(report[0], &c, 1);
    printf("own reported: %zd %c\n", n, c);
    si.si_code = SI_TKILL;
    printf("own SI_TKILL: %s\n", err(send(self, SIGUSR1, &si, 0)));
    return 0;
}
