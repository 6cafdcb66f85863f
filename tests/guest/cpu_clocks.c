/* CPU-time clocks: clock_getcpuclockid/pthread_getcpuclockid ids read with
 * clock_gettime/clock_getres, the errors of bad encodings (raw ids), POSIX
 * timers on CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID and another
 * process's clock firing once that much CPU time is used (relative,
 * absolute, periodic with overruns, SIGEV_NONE), and clock_nanosleep on a
 * process clock while another thread spins. Spinning is pure user-mode work
 * bounded by wall time, so a lost expiry fails instead of hanging; nothing
 * printed depends on timing. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
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

#define MAKE_PROCESS_CPUCLOCK(pid, clock) ((int)(~(unsigned)(pid) << 3) | (clock))
#define MAKE_THREAD_CPUCLOCK(tid, clock) (MAKE_PROCESS_CPUCLOCK(tid, clock) | 4)
#define CPUCLOCK_PROF 0
#define CPUCLOCK_VIRT 1
#define CPUCLOCK_SCHED 2

static double ts2d(struct timespec ts) { return ts.tv_sec + ts.tv_nsec / 1e9; }

static double now(clockid_t c) {
    struct timespec ts;
    if (clock_gettime(c, &ts) != 0)
        return -1;
    return ts2d(ts);
}

static long raw_gettime(int clock) {
    struct timespec ts;
    return syscall(SYS_clock_gettime, clock, &ts) == 0 ? 0 : errno;
}

static volatile int fired;
static volatile int last_overrun;
static void on_sig(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    fired++;
    last_overrun = si->si_overrun;
}

/* Spins in user mode until *flag reaches want or `wall` seconds pass;
 * returns whether it did. */
static int spin_until(volatile int *flag, int want, double wall) {
    double end = now(CLOCK_MONOTONIC) + wall;
    while (*flag < want) {
        for (volatile int i = 0; i < 200000; i++)
            ;
        if (now(CLOCK_MONOTONIC) > end)
            return 0;
    }
    return 1;
}

/* Spins until the clock has advanced by `secs` (bounded by wall time). */
static void burn(clockid_t c, double secs) {
    double start = now(c), end = now(CLOCK_MONOTONIC) + 30;
    while (now(c) - start < secs && now(CLOCK_MONOTONIC) < end)
        for (volatile int i = 0; i < 200000; i++)
            ;
}

static timer_t make_timer(clockid_t c, int notify, int *err) {
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = notify;
    sev.sigev_signo = SIGUSR1;
    timer_t t = 0;
    *err = timer_create(c, &sev, &t) == 0 ? 0 : errno;
    return t;
}

static void arm(timer_t t, int flags, double value, double interval) {
    struct itimerspec its;
    its.it_value.tv_sec = (time_t)value;
    its.it_value.tv_nsec = (long)((value - (time_t)value) * 1e9);
    its.it_interval.tv_sec = (time_t)interval;
    its.it_interval.tv_nsec = (long)((interval - (time_t)interval) * 1e9);
    timer_settime(t, flags, &its, NULL);
}

static volatile int stop_spinner;
static void *spinner(void *arg) {
    (void)arg;
    while (!stop_spinner)
        for (volatile int i = 0; i < 100000; i++)
            ;
    return NULL;
}

static void *thread_clock_reader(void *arg) {
    clockid_t *out = arg;
    burn(CLOCK_THREAD_CPUTIME_ID, 0.02);
    pthread_getcpuclockid(pthread_self(), out);
    return NULL;
}

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sig;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, NULL);
    setvbuf(stdout, NULL, _IOLBF, 0);

    /* --- ids and reading --- */
    clockid_t mine;
    CHECK(clock_getcpuclockid(getpid(), &mine) == 0, "clock_getcpuclockid(self)");
    CHECK(mine == MAKE_PROCESS_CPUCLOCK(getpid(), CPUCLOCK_SCHED), "its encoding");
    burn(CLOCK_PROCESS_CPUTIME_ID, 0.02);
    double a = now(mine), b = now(CLOCK_PROCESS_CPUTIME_ID);
    CHECK(a > 0 && b >= a, "own process clock by pid reads the process clock");
    CHECK(raw_gettime(MAKE_PROCESS_CPUCLOCK(0, CPUCLOCK_PROF)) == 0, "PROF clock of pid 0");
    CHECK(raw_gettime(MAKE_PROCESS_CPUCLOCK(0, CPUCLOCK_VIRT)) == 0, "VIRT clock of pid 0");
    CHECK(raw_gettime(MAKE_PROCESS_CPUCLOCK(0, 3)) == EINVAL, "which=3 is EINVAL");
    CHECK(raw_gettime(MAKE_THREAD_CPUCLOCK(0, CPUCLOCK_SCHED)) == 0, "own thread clock (tid 0)");
    CHECK(raw_gettime(MAKE_THREAD_CPUCLOCK(gettid(), CPUCLOCK_SCHED)) == 0, "own thread clock by tid");
    clockid_t c;
    CHECK(clock_getcpuclockid(999999, &c) == ESRCH, "clock_getcpuclockid(no such pid) ESRCH");
    CHECK(raw_gettime(MAKE_PROCESS_CPUCLOCK(999999, CPUCLOCK_SCHED)) == EINVAL,
          "raw clock of no such pid EINVAL");
    struct timespec res;
    CHECK(clock_getres(mine, &res) == 0, "clock_getres(own pid clock)");
    CHECK(syscall(SYS_clock_getres, MAKE_PROCESS_CPUCLOCK(999999, 2), &res) == -1 && errno == EINVAL,
          "clock_getres(no such pid) EINVAL");
    struct timespec ts = {1, 0};
    CHECK(clock_settime(mine, &ts) == -1 && errno == EPERM, "clock_settime(pid clock) EPERM");
    CHECK(clock_settime(CLOCK_PROCESS_CPUTIME_ID, &ts) == -1 && errno == EINVAL,
          "clock_settime(CLOCK_PROCESS_CPUTIME_ID) EINVAL");

    /* another thread's clock */
    clockid_t tc = 0;
    pthread_t th;
    pthread_create(&th, NULL, thread_clock_reader, &tc);
    pthread_join(th, NULL);
    CHECK(tc != 0, "pthread_getcpuclockid in a thread");
    clockid_t mainc;
    CHECK(pthread_getcpuclockid(pthread_self(), &mainc) == 0 && now(mainc) > 0,
          "pthread_getcpuclockid(self) reads");

    /* a child's clocks: the process clock reads, its thread clock does not */
    pid_t child = fork();
    if (child == 0) {
        for (;;)
            for (volatile int i = 0; i < 100000; i++)
                ;
    }
    clockid_t cc;
    CHECK(clock_getcpuclockid(child, &cc) == 0, "clock_getcpuclockid(child)");
    CHECK(raw_gettime(MAKE_THREAD_CPUCLOCK(child, CPUCLOCK_SCHED)) == EINVAL,
          "thread clock of another process EINVAL");

    /* --- a timer on the child's clock fires as the child spins --- */
    int err;
    fired = 0;
    timer_t ct = make_timer(cc, SIGEV_SIGNAL, &err);
    CHECK(err == 0, "timer_create(child's clock)");
    double cnow = now(cc);
    arm(ct, TIMER_ABSTIME, cnow + 0.05, 0);
    CHECK(spin_until(&fired, 1, 20) || fired, "timer on the child's clock fired");
    CHECK(now(cc) >= cnow + 0.05, "the child had used the time");
    timer_delete(ct);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    CHECK(raw_gettime(cc) == EINVAL, "reaped child's clock EINVAL");
    make_timer(cc, SIGEV_SIGNAL, &err);
    printf("timer_create(reaped child's clock): %s\n", strerror(err));

    /* --- timers on our own clocks --- */
    make_timer(MAKE_PROCESS_CPUCLOCK(0, 3), SIGEV_SIGNAL, &err);
    printf("timer_create(which=3): %s\n", strerror(err));
    make_timer(CLOCK_MONOTONIC_RAW, SIGEV_SIGNAL, &err);
    printf("timer_create(CLOCK_MONOTONIC_RAW): %s\n", strerror(err));

    fired = 0;
    timer_t pt = make_timer(CLOCK_PROCESS_CPUTIME_ID, SIGEV_SIGNAL, &err);
    CHECK(err == 0, "timer_create(CLOCK_PROCESS_CPUTIME_ID)");
    double p0 = now(CLOCK_PROCESS_CPUTIME_ID);
    arm(pt, 0, 0.05, 0);
    struct itimerspec cur;
    timer_gettime(pt, &cur);
    CHECK(ts2d(cur.it_value) > 0 && ts2d(cur.it_value) <= 0.05, "timer_gettime while armed");
    CHECK(spin_until(&fired, 1, 20), "process CPU timer fired");
    CHECK(now(CLOCK_PROCESS_CPUTIME_ID) - p0 >= 0.05, "after 50 ms of CPU time");
    timer_gettime(pt, &cur);
    CHECK(ts2d(cur.it_value) == 0, "one-shot disarmed after firing");

    /* absolute */
    fired = 0;
    arm(pt, TIMER_ABSTIME, now(CLOCK_PROCESS_CPUTIME_ID) + 0.03, 0);
    CHECK(spin_until(&fired, 1, 20), "absolute process CPU timer fired");
    /* a deadline already passed fires at once */
    fired = 0;
    arm(pt, TIMER_ABSTIME, 0.000001, 0);
    CHECK(spin_until(&fired, 1, 20), "past absolute deadline fires");

    /* periodic on the thread clock, with overruns while blocked */
    fired = 0;
    timer_t tt = make_timer(CLOCK_THREAD_CPUTIME_ID, SIGEV_SIGNAL, &err);
    CHECK(err == 0, "timer_create(CLOCK_THREAD_CPUTIME_ID)");
    arm(tt, 0, 0.01, 0.01);
    CHECK(spin_until(&fired, 3, 20), "periodic thread CPU timer fired 3 times");
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    burn(CLOCK_THREAD_CPUTIME_ID, 0.15);
    int before = fired;
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    CHECK(fired == before + 1, "one signal for the expiries while blocked");
    CHECK(last_overrun > 0, "si_overrun counts the others");
    CHECK(timer_getoverrun(tt) == last_overrun, "timer_getoverrun agrees");
    arm(tt, 0, 0, 0);
    timer_delete(tt);

    /* SIGEV_NONE: only timer_gettime shows it counting down */
    timer_t nt = make_timer(CLOCK_PROCESS_CPUTIME_ID, SIGEV_NONE, &err);
    CHECK(err == 0, "timer_create(SIGEV_NONE)");
    arm(nt, 0, 5, 0);
    struct itimerspec n1, n2;
    timer_gettime(nt, &n1);
    burn(CLOCK_PROCESS_CPUTIME_ID, 0.03);
    timer_gettime(nt, &n2);
    CHECK(ts2d(n2.it_value) < ts2d(n1.it_value), "SIGEV_NONE counts down with CPU time");
    timer_delete(nt);
    timer_delete(pt);

    /* --- clock_nanosleep on CPU clocks --- */
    ts.tv_sec = 0;
    ts.tv_nsec = 1000;
    CHECK(clock_nanosleep(CLOCK_THREAD_CPUTIME_ID, 0, &ts, NULL) == EINVAL,
          "clock_nanosleep(CLOCK_THREAD_CPUTIME_ID) EINVAL");
    CHECK(syscall(SYS_clock_nanosleep, CLOCK_THREAD_CPUTIME_ID, 0, &ts, NULL) == -1 &&
              errno == EOPNOTSUPP,
          "raw clock_nanosleep(CLOCK_THREAD_CPUTIME_ID) EOPNOTSUPP");
    CHECK(clock_nanosleep(mainc, 0, &ts, NULL) == EINVAL, "clock_nanosleep(own thread clock) EINVAL");
    struct timespec bad = {0, 2000000000L};
    CHECK(clock_nanosleep(CLOCK_PROCESS_CPUTIME_ID, 0, &bad, NULL) == EINVAL,
          "clock_nanosleep(bad timespec) EINVAL");
    pthread_t sp;
    pthread_create(&sp, NULL, spinner, NULL);
    double s0 = now(CLOCK_PROCESS_CPUTIME_ID);
    ts.tv_nsec = 50 * 1000 * 1000;
    CHECK(clock_nanosleep(CLOCK_PROCESS_CPUTIME_ID, 0, &ts, NULL) == 0,
          "clock_nanosleep(CLOCK_PROCESS_CPUTIME_ID, 50 ms) while a thread spins");
    CHECK(now(CLOCK_PROCESS_CPUTIME_ID) - s0 >= 0.05, "the process used 50 ms meanwhile");
    struct timespec abs;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &abs);
    abs.tv_nsec += 30 * 1000 * 1000;
    if (abs.tv_nsec >= 1000000000) {
        abs.tv_sec++;
        abs.tv_nsec -= 1000000000;
    }
    CHECK(clock_nanosleep(CLOCK_PROCESS_CPUTIME_ID, TIMER_ABSTIME, &abs, NULL) == 0,
          "absolute clock_nanosleep on the process clock");
    CHECK(now(CLOCK_PROCESS_CPUTIME_ID) >= ts2d(abs), "it ended after the deadline");
    stop_spinner = 1;
    pthread_join(sp, NULL);

    printf("result: %s\n", failures ? "FAIL" : "OK");
    return failures != 0;
}
