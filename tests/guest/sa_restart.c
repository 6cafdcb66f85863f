/* SA_RESTART vs EINTR: a timer signal interrupts read() on an empty pipe.
 * Without SA_RESTART the read fails with EINTR; with SA_RESTART it is
 * restarted and returns the data written later (by the handler itself, or by
 * a child). Calls that are never restarted (select, nanosleep) still fail
 * with EINTR under SA_RESTART. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/time.h>
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

static int pfd[2];
static volatile int alarms;
static volatile int handler_writes;

static void on_alarm(int sig) {
    (void)sig;
    alarms++;
    if (handler_writes) {
        int e = errno;
        if (write(pfd[1], "late", 4) != 4)
            alarms += 100;
        errno = e;
    }
}

static void arm_ms(int ms) {
    struct itimerval it = {{0, 0}, {ms / 1000, (ms % 1000) * 1000}};
    setitimer(ITIMER_REAL, &it, NULL);
}

static void set_handler(int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = flags;
    sigaction(SIGALRM, &sa, NULL);
}

static const char *ename(int e) {
    return e == EINTR ? "EINTR" : e == 0 ? "0" : strerror(e);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    char buf[64];
    ssize_t n;

    if (pipe(pfd) != 0)
        return 1;

    /* 1. No SA_RESTART: read is interrupted. */
    set_handler(0);
    alarms = 0;
    handler_writes = 0;
    arm_ms(100);
    errno = 0;
    n = read(pfd[0], buf, sizeof buf);
    printf("read without SA_RESTART: %zd errno=%s alarms=%d\n", n,
           ename(n < 0 ? errno : 0), alarms);
    CHECK(n == -1 && errno == EINTR && alarms == 1, "EINTR without SA_RESTART");

    /* 2. SA_RESTART, the handler writes the data: the restarted read gets it. */
    set_handler(SA_RESTART);
    alarms = 0;
    handler_writes = 1;
    arm_ms(100);
    n = read(pfd[0], buf, sizeof buf);
    printf("read with SA_RESTART (handler writes): %zd \"%.*s\" alarms=%d\n", n,
           n > 0 ? (int)n : 0, buf, alarms);
    CHECK(n == 4 && memcmp(buf, "late", 4) == 0 && alarms == 1,
          "restarted read returns the handler's data");

    /* 3. SA_RESTART, a child writes well after the signal. */
    handler_writes = 0;
    alarms = 0;
    pid_t pid = fork();
    if (pid == 0) {
        struct timespec ts = {0, 400 * 1000 * 1000};
        nanosleep(&ts, NULL);
        if (write(pfd[1], "hello", 5) != 5)
            _exit(1);
        _exit(0);
    }
    arm_ms(100);
    n = read(pfd[0], buf, sizeof buf);
    printf("read with SA_RESTART (child writes): %zd \"%.*s\" alarms=%d\n", n,
           n > 0 ? (int)n : 0, buf, alarms);
    CHECK(n == 5 && memcmp(buf, "hello", 5) == 0 && alarms == 1,
          "restarted read returns the child's data");
    int st;
    waitpid(pid, &st, 0);

    /* 4. Several signals during one restarted read (interval timer). */
    alarms = 0;
    pid = fork();
    if (pid == 0) {
        struct timespec ts = {0, 500 * 1000 * 1000};
        nanosleep(&ts, NULL);
        if (write(pfd[1], "x", 1) != 1)
            _exit(1);
        _exit(0);
    }
    struct itimerval it = {{0, 100 * 1000}, {0, 100 * 1000}};
    setitimer(ITIMER_REAL, &it, NULL);
    n = read(pfd[0], buf, sizeof buf);
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    int many = alarms;
    printf("read across several signals: %zd\n", n);
    CHECK(n == 1 && many >= 2, "read restarted across several signals");
    waitpid(pid, &st, 0);

    /* 5. select is never restarted, even with SA_RESTART. */
    alarms = 0;
    arm_ms(100);
    fd_set rf;
    FD_ZERO(&rf);
    FD_SET(pfd[0], &rf);
    struct timeval tv = {5, 0};
    errno = 0;
    int r = select(pfd[0] + 1, &rf, NULL, NULL, &tv);
    printf("select with SA_RESTART: %d errno=%s\n", r, ename(r < 0 ? errno : 0));
    CHECK(r == -1 && errno == EINTR, "select gives EINTR regardless");

    /* 6. nanosleep likewise. */
    arm_ms(100);
    struct timespec req = {5, 0}, rem = {0, 0};
    errno = 0;
    r = nanosleep(&req, &rem);
    printf("nanosleep with SA_RESTART: %d errno=%s\n", r,
           ename(r < 0 ? errno : 0));
    CHECK(r == -1 && errno == EINTR && rem.tv_sec >= 3, "nanosleep gives EINTR");

    /* 7. wait4 on a child is restarted under SA_RESTART. */
    alarms = 0;
    pid = fork();
    if (pid == 0) {
        struct timespec ts = {0, 300 * 1000 * 1000};
        nanosleep(&ts, NULL);
        _exit(9);
    }
    arm_ms(100);
    pid_t w = waitpid(pid, &st, 0);
    CHECK(w == pid && WIFEXITED(st) && WEXITSTATUS(st) == 9 && alarms == 1,
          "waitpid restarted and reaps the child");

    /* 8. Same without SA_RESTART: EINTR. */
    set_handler(0);
    alarms = 0;
    pid = fork();
    if (pid == 0) {
        struct timespec ts = {0, 300 * 1000 * 1000};
        nanosleep(&ts, NULL);
        _exit(9);
    }
    arm_ms(100);
    errno = 0;
    w = waitpid(pid, &st, 0);
    CHECK(w == -1 && errno == EINTR, "waitpid without SA_RESTART: EINTR");
    w = waitpid(pid, &st, 0);
    CHECK(w == pid && WEXITSTATUS(st) == 9, "then reaps the child");

    printf("result: %s\n", failures ? "FAIL" : "OK");
    return failures ? 1 : 0;
}
