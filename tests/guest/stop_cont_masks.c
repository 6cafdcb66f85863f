/* A task waiting with a temporary signal mask (sigsuspend, ppoll,
 * pselect6, epoll_pwait) is stopped by SIGSTOP and continued by SIGCONT,
 * as killall5 does to every process at shutdown: no signal is left to
 * deliver, so the call restarts with its mask and the task's own mask is
 * back in between. Then a handled SIGUSR1 ends the call with EINTR, and
 * after the handler the mask is the one from before the call. Also a
 * SIGCONT alone (nothing stopped) and SIGCHLD at default (ignored) must
 * not end the wait. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t got_usr1;
static char c_sink;

static void on_usr1(int sig) {
    (void)sig;
    got_usr1++;
}

enum how { SUSPEND, PPOLL, PSELECT, EPWAIT };
static const char *names[] = {"sigsuspend", "ppoll", "pselect6", "epoll_pwait"};

/* The child: blocks SIGUSR1 and SIGUSR2, then waits with a mask that lets
 * SIGUSR1 in; reports through the pipe what the wait returned and which
 * mask it found afterwards. */
static void child(enum how how, int report, int go) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    sigset_t block, wait_mask, after;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigaddset(&block, SIGUSR2);
    sigprocmask(SIG_BLOCK, &block, NULL);
    sigemptyset(&wait_mask);
    sigaddset(&wait_mask, SIGUSR2);
    int pfd[2];
    if (pipe(pfd) != 0)
        _exit(90);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN};
    epoll_ctl(ep, EPOLL_CTL_ADD, pfd[0], &ev);
    /* Ready to be signalled. */
    if (write(report, "r", 1) != 1)
        _exit(91);
    long r = 0;
    switch (how) {
    case SUSPEND:
        r = sigsuspend(&wait_mask);
        break;
    case PPOLL: {
        struct pollfd p = {.fd = pfd[0], .events = POLLIN};
        r = ppoll(&p, 1, NULL, &wait_mask);
        break;
    }
    case PSELECT: {
        fd_set rd;
        FD_ZERO(&rd);
        FD_SET(pfd[0], &rd);
        r = pselect(pfd[0] + 1, &rd, NULL, NULL, NULL, &wait_mask);
        break;
    }
    case EPWAIT: {
        struct epoll_event out;
        r = epoll_pwait(ep, &out, 1, -1, &wait_mask);
        break;
    }
    }
    int e = errno;
    sigprocmask(SIG_SETMASK, NULL, &after);
    char buf[160];
    int n = snprintf(buf, sizeof buf, "%s: %ld %s, handler ran %d, after: usr1 %s usr2 %s\n",
                     names[how], r, r < 0 ? strerror(e) : "-", (int)got_usr1,
                     sigismember(&after, SIGUSR1) ? "blocked" : "open",
                     sigismember(&after, SIGUSR2) ? "blocked" : "open");
    if (write(report, buf, n) != n)
        _exit(92);
    /* Stay until the parent has seen the continue (a zombie would be
     * reported first): epoll_pwait returns at SIGCONT already. */
    close(report);
    while (read(go, &c_sink, 1) > 0)
        ;
    _exit(0);
}

static void run(enum how how) {
    int rp[2], gp[2];
    if (pipe(rp) != 0 || pipe(gp) != 0) {
        perror("pipe");
        exit(1);
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(rp[0]);
        close(gp[1]);
        child(how, rp[1], gp[0]);
    }
    close(rp[1]);
    close(gp[0]);
    char c;
    if (read(rp[0], &c, 1) != 1) {
        printf("%s: child did not start\n", names[how]);
        exit(1);
    }
    /* Let it reach the wait; whether it has or not, the outcome is the
     * same (a signal before the wait stays pending: SIGUSR1 is blocked). */
    usleep(50000);
    int st;
    kill(pid, SIGSTOP);
    pid_t w = waitpid(pid, &st, WUNTRACED);
    printf("%s: stopped %d\n", names[how], w == pid && WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP);
    kill(pid, SIGCONT);
    w = waitpid(pid, &st, WCONTINUED);
    printf("%s: continued %d\n", names[how], w == pid && WIFCONTINUED(st));
    /* SIGCONT with nothing stopped and SIGCHLD at its default: ignored. */
    kill(pid, SIGCONT);
    kill(pid, SIGCHLD);
    usleep(50000);
    kill(pid, SIGUSR1);
    char buf[200];
    ssize_t n;
    size_t have = 0;
    while ((n = read(rp[0], buf + have, sizeof buf - 1 - have)) > 0)
        have += n;
    buf[have] = 0;
    fputs(buf, stdout);
    close(gp[1]);
    w = waitpid(pid, &st, 0);
    printf("%s: exit %d\n", names[how], w == pid && WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    close(rp[0]);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    for (int how = SUSPEND; how <= EPWAIT; how++)
        run((enum how)how);
    printf("result: OK\n");
    return 0;
}
