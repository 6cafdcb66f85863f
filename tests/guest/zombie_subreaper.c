/* Zombies and child subreapers: an exited child stays a zombie until
 * waited for (waitpid WNOHANG finds it, waitid WNOWAIT peeks without
 * reaping); with PR_SET_CHILD_SUBREAPER an orphaned grandchild is reparented
 * to us, and we reap it. Everything is printed by the top process only, in a
 * fixed order. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
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

static void msleep(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* waitpid(WNOHANG) until it returns something other than 0, up to ~3 s. */
static pid_t poll_wait(pid_t pid, int *st, int *polls) {
    for (int i = 0; i < 3000; i++) {
        pid_t r = waitpid(pid, st, WNOHANG);
        if (r != 0)
            return r;
        if (polls)
            (*polls)++;
        msleep(1);
    }
    return 0;
}

static int run(void);

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* Everything runs in a child, so that under ruml (where this program is
     * init, pid 1) the subreaper is not init itself. */
    pid_t top = fork();
    if (top == 0)
        _exit(run());
    int st;
    if (waitpid(top, &st, 0) != top || !WIFEXITED(st)) {
        printf("test process died: status %#x\n", st);
        return 1;
    }
    return WEXITSTATUS(st);
}

static int run(void) {
    int st = 0;

    /* 1. No children: ECHILD, WNOHANG too. */
    errno = 0;
    CHECK(waitpid(-1, &st, WNOHANG) == -1 && errno == ECHILD, "no children: ECHILD");

    /* 2. A running child: WNOHANG returns 0. */
    int gate[2];
    if (pipe(gate) != 0)
        return 1;
    pid_t c = fork();
    if (c == 0) {
        char b;
        close(gate[1]);
        if (read(gate[0], &b, 1) < 0)
            _exit(1);
        _exit(7);
    }
    close(gate[0]);
    CHECK(waitpid(c, &st, WNOHANG) == 0, "running child: WNOHANG returns 0");
    close(gate[1]); /* lets the child exit */

    /* 3. It becomes a zombie: WNOWAIT peeks, WNOHANG reaps, then ECHILD. */
    siginfo_t si;
    int found = 0;
    for (int i = 0; i < 3000 && !found; i++) {
        memset(&si, 0, sizeof si);
        if (waitid(P_PID, c, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == c)
            found = 1;
        else
            msleep(1);
    }
    CHECK(found && si.si_code == CLD_EXITED && si.si_status == 7,
          "waitid(WNOWAIT) sees the zombie: CLD_EXITED status 7");
    memset(&si, 0, sizeof si);
    CHECK(waitid(P_PID, c, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == c,
          "still there after WNOWAIT");
    pid_t r = waitpid(c, &st, WNOHANG);
    CHECK(r == c && WIFEXITED(st) && WEXITSTATUS(st) == 7,
          "waitpid(WNOHANG) reaps the zombie with status 7");
    errno = 0;
    CHECK(waitpid(c, &st, WNOHANG) == -1 && errno == ECHILD, "reaped: ECHILD");

    /* 4. Zombies of several children, reaped in any order by waitpid(-1). */
    pid_t kids[5];
    for (int i = 0; i < 5; i++) {
        kids[i] = fork();
        if (kids[i] == 0)
            _exit(10 + i);
    }
    int seen = 0, sum = 0;
    for (int i = 0; i < 5; i++) {
        r = waitpid(-1, &st, 0);
        for (int j = 0; j < 5; j++)
            if (r == kids[j] && WIFEXITED(st) && WEXITSTATUS(st) == 10 + j) {
                seen |= 1 << j;
                sum += WEXITSTATUS(st);
            }
    }
    CHECK(seen == 0x1f && sum == 60, "five zombies reaped with their statuses");

    /* 5. Subreaper. */
    CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0, "PR_SET_CHILD_SUBREAPER");
    int flag = -1;
    prctl(PR_GET_CHILD_SUBREAPER, &flag, 0, 0, 0);
    CHECK(flag == 1, "PR_GET_CHILD_SUBREAPER says 1");

    pid_t me = getpid();
    int rep[2];
    if (pipe(rep) != 0)
        return 1;
    pid_t middle = fork();
    if (middle == 0) {
        close(rep[0]);
        pid_t mid_pid = getpid();
        pid_t g = fork();
        if (g == 0) {
            /* Grandchild: wait until our parent has died, then report. */
            int i;
            for (i = 0; i < 3000 && getppid() == mid_pid; i++)
                msleep(1);
            char verdict = getppid() == me ? 'Y' : 'N';
            if (write(rep[1], &verdict, 1) != 1)
                _exit(2);
            /* Stay alive a little so the subreaper sees a live child. */
            msleep(50);
            _exit(42);
        }
        /* Middle: tell our parent the grandchild's pid, then die. */
        if (write(rep[1], &g, sizeof g) != sizeof g)
            _exit(2);
        _exit(3);
    }
    close(rep[1]);
    pid_t grandchild = 0;
    if (read(rep[0], &grandchild, sizeof grandchild) != sizeof grandchild)
        printf("middle did not report\n");
    r = waitpid(middle, &st, 0);
    CHECK(r == middle && WIFEXITED(st) && WEXITSTATUS(st) == 3, "middle child exited 3");
    char verdict = '?';
    if (read(rep[0], &verdict, 1) != 1)
        printf("grandchild did not report\n");
    printf("reparented to subreaper: %s\n", verdict == 'Y' ? "yes" : "no");
    CHECK(verdict == 'Y', "grandchild's getppid() is the subreaper");
    r = waitpid(-1, &st, 0);
    CHECK(r == grandchild && WIFEXITED(st) && WEXITSTATUS(st) == 42,
          "subreaper reaps the orphaned grandchild (status 42)");
    errno = 0;
    CHECK(waitpid(-1, &st, 0) == -1 && errno == ECHILD, "nothing left: ECHILD");

    /* 6. A grandchild that already exited when its parent died: its zombie
     * is handed to the subreaper, which reaps it. */
    middle = fork();
    if (middle == 0) {
        pid_t g = fork();
        if (g == 0)
            _exit(43);
        /* Make sure the grandchild is a zombie before we die. */
        siginfo_t gsi;
        waitid(P_PID, g, &gsi, WEXITED | WNOWAIT);
        _exit(4);
    }
    r = waitpid(middle, &st, 0);
    CHECK(r == middle && WEXITSTATUS(st) == 4, "second middle exited 4");
    int polls = 0;
    r = poll_wait(-1, &st, &polls);
    CHECK(r > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 43,
          "inherited zombie reaped by the subreaper (status 43)");

    /* 7. SIGCHLD ignored: children are reaped automatically, wait gives ECHILD. */
    signal(SIGCHLD, SIG_IGN);
    c = fork();
    if (c == 0)
        _exit(5);
    errno = 0;
    r = waitpid(c, &st, 0);
    CHECK(r == -1 && errno == ECHILD, "SIGCHLD SIG_IGN: no zombie, wait gives ECHILD");
    signal(SIGCHLD, SIG_DFL);

    printf("result: %s\n", failures ? "FAIL" : "OK");
    return failures ? 1 : 0;
}
