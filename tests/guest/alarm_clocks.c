/* CLOCK_REALTIME_ALARM and CLOCK_BOOTTIME_ALARM as on a Linux machine with
 * an RTC: readable by anyone (REALTIME and BOOTTIME), not settable
 * (EINVAL); timer_create, timerfd_create and clock_nanosleep on them need
 * CAP_WAKE_ALARM (EPERM without). Root's timers on them fire. Also
 * clock_nanosleep's EOPNOTSUPP for clocks with no sleep. Run as root. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef CLOCK_REALTIME_ALARM
#define CLOCK_REALTIME_ALARM 8
#define CLOCK_BOOTTIME_ALARM 9
#endif

static const char *e(long r) {
    return r >= 0 ? "ok" : strerrorname_np(errno);
}

static double secs(clockid_t c) {
    struct timespec t;
    if (clock_gettime(c, &t))
        return -1;
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void unprivileged(void) {
    struct timespec t;
    timer_t id;
    printf("user gettime: %s %s\n", e(clock_gettime(CLOCK_REALTIME_ALARM, &t)),
           e(clock_gettime(CLOCK_BOOTTIME_ALARM, &t)));
    printf("user timer_create: %s %s\n", e(timer_create(CLOCK_REALTIME_ALARM, NULL, &id)),
           e(timer_create(CLOCK_BOOTTIME_ALARM, NULL, &id)));
    printf("user timerfd_create: %s %s\n", e(timerfd_create(CLOCK_REALTIME_ALARM, 0)),
           e(timerfd_create(CLOCK_BOOTTIME_ALARM, 0)));
    struct timespec d = {0, 1000};
    printf("user clock_nanosleep: %s\n",
           e(syscall(SYS_clock_nanosleep, CLOCK_BOOTTIME_ALARM, 0, &d, NULL)));
    printf("user clock_nanosleep bad pointer: %s\n",
           e(syscall(SYS_clock_nanosleep, CLOCK_BOOTTIME_ALARM, 0, (void *)8, NULL)));
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    double r = secs(CLOCK_REALTIME), ra = secs(CLOCK_REALTIME_ALARM);
    double b = secs(CLOCK_BOOTTIME), ba = secs(CLOCK_BOOTTIME_ALARM);
    printf("REALTIME_ALARM tracks REALTIME: %d\n", ra >= r && ra - r < 5);
    printf("BOOTTIME_ALARM tracks BOOTTIME: %d\n", ba >= b && ba - b < 5);
    struct timespec res;
    printf("getres: %s\n", e(clock_getres(CLOCK_REALTIME_ALARM, &res)));
    struct timespec t = {(time_t)r, 0};
    printf("settime: %s\n", e(clock_settime(CLOCK_REALTIME_ALARM, &t)));
    struct timespec d = {0, 1000};
    printf("nanosleep MONOTONIC_RAW: %s\n",
           e(syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC_RAW, 0, &d, NULL)));
    printf("nanosleep REALTIME_COARSE: %s\n",
           e(syscall(SYS_clock_nanosleep, CLOCK_REALTIME_COARSE, 0, &d, NULL)));

    /* root: a timer on the alarm clock fires */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    struct sigevent sev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1};
    timer_t id;
    printf("root timer_create: %s\n", e(timer_create(CLOCK_BOOTTIME_ALARM, &sev, &id)));
    struct itimerspec its = {.it_value = {0, 10 * 1000 * 1000}};
    printf("root timer_settime: %s\n", e(timer_settime(id, 0, &its, NULL)));
    int sig = 0;
    sigwait(&set, &sig);
    printf("fired: %s\n", sig == SIGUSR1 ? "SIGUSR1" : "?");
    int fd = timerfd_create(CLOCK_REALTIME_ALARM, 0);
    printf("root timerfd_create: %s\n", e(fd));
    printf("root clock_nanosleep: %s\n",
           e(syscall(SYS_clock_nanosleep, CLOCK_REALTIME_ALARM, 0, &d, NULL)));

    pid_t c = fork();
    if (c == 0) {
        if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534))
            _exit(1);
        unprivileged();
        _exit(0);
    }
    int st;
    waitpid(c, &st, 0);
    printf("user part: %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    printf("result: OK\n");
    return 0;
}
