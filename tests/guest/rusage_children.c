/* times(2) and getrusage(RUSAGE_CHILDREN) count children once they are
 * reaped (wait4's rusage is the child's own), with the children those
 * children reaped; a zombie not yet reaped and a child reaped
 * automatically (SIGCHLD ignored) count nothing. Prints facts only. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/times.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double tv(struct timeval t) { return t.tv_sec + t.tv_usec / 1e6; }

static double children(void) {
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    return tv(ru.ru_utime) + tv(ru.ru_stime);
}

static double ticks_children(void) {
    struct tms t;
    times(&t);
    return (double)(t.tms_cutime + t.tms_cstime) / sysconf(_SC_CLK_TCK);
}

/* Burns 0.2 s of this process's CPU time. */
static void burn(void) {
    struct timespec ts;
    volatile unsigned long x = 0;
    do {
        for (int i = 0; i < 100000; i++)
            x += i;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    } while (ts.tv_sec + ts.tv_nsec / 1e9 < 0.2);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("at start: rusage %s, times %s\n", children() == 0 ? "zero" : "nonzero",
           ticks_children() == 0 ? "zero" : "nonzero");

    pid_t pid = fork();
    if (pid == 0) {
        burn();
        _exit(0);
    }
    siginfo_t si;
    waitid(P_PID, pid, &si, WEXITED | WNOWAIT);
    printf("zombie, not reaped: rusage %s\n", children() == 0 ? "zero" : "nonzero");
    struct rusage own;
    wait4(pid, NULL, 0, &own);
    double c1 = children(), t1 = ticks_children();
    printf("wait4's rusage >= 0.15 s: %s\n", tv(own.ru_utime) + tv(own.ru_stime) >= 0.15 ? "yes" : "no");
    printf("reaped: rusage >= 0.15 s %s, times >= 0.15 s %s\n", c1 >= 0.15 ? "yes" : "no",
           t1 >= 0.15 ? "yes" : "no");

    /* A child that reaps a grandchild which burned the time. */
    pid = fork();
    if (pid == 0) {
        pid_t g = fork();
        if (g == 0) {
            burn();
            _exit(0);
        }
        waitpid(g, NULL, 0);
        _exit(0);
    }
    wait4(pid, NULL, 0, &own);
    double c2 = children();
    printf("grandchild reaped by the child: child's own < 0.1 s %s, added >= 0.15 s %s\n",
           tv(own.ru_utime) + tv(own.ru_stime) < 0.1 ? "yes" : "no",
           c2 - c1 >= 0.15 ? "yes" : "no");

    /* SIGCHLD ignored: reaped at once, counted nowhere. */
    signal(SIGCHLD, SIG_IGN);
    pid = fork();
    if (pid == 0) {
        burn();
        _exit(0);
    }
    int r = waitpid(pid, NULL, 0);
    printf("SIGCHLD ignored: waitpid %s, added %s\n", r < 0 ? strerrorname_np(errno) : "ok",
           children() - c2 < 0.05 ? "nothing" : "something");
    return 0;
}
