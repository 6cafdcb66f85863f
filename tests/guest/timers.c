/* Timers: alarm, setitimer(ITIMER_REAL) with an interval, POSIX timers
 * (SIGEV_SIGNAL with si_value/SI_TIMER, SIGEV_THREAD_ID to a chosen thread,
 * relative and absolute timer_settime, timer_gettime, timer_getoverrun), and
 * nanosleep interrupted by a handled signal (EINTR, rem set) but not by an
 * ignored one. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
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

static double now(clockid_t c) {
    struct timespec ts;
    clock_gettime(c, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static volatile int alrm_count;
static void on_alrm(int sig) {
    (void)sig;
    alrm_count++;
}

static volatile int rt_count, rt_code, rt_value, rt_overrun;
static volatile pid_t rt_tid;
static void on_rt(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    rt_count++;
    rt_code = si->si_code;
    rt_value = si->si_value.sival_int;
    rt_overrun = si->si_overrun;
    rt_tid = gettid();
}

static void install(int sig, void (*h)(int)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h;
    sigaction(sig, &sa, NULL);
}

static void install_info(int sig) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_rt;
    sa.sa_flags = SA_SIGINFO;
    sigaction(sig, &sa, NULL);
}

/* Waits until *counter (bumped by a handler) reaches want, or 20 s pass,
 * so that a lost signal fails the test instead of hanging it (the budget
 * survives a loaded host; the bounds below are generous for the same
 * reason). */
static void wait_count(volatile int *counter, int want) {
    double end = now(CLOCK_MONOTONIC) + 20;
    while (*counter < want && now(CLOCK_MONOTONIC) < end) {
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* --- SIGEV_THREAD_ID target --- */
static volatile pid_t target_tid;
static volatile int target_stop;
static void *target_thread(void *arg) {
    (void)arg;
    target_tid = gettid();
    while (!target_stop) {
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);

    /* 1. alarm: remaining seconds, cancel, and one real expiry. */
    install(SIGALRM, on_alrm);
    CHECK(alarm(5) == 0, "alarm(5) with none pending returns 0");
    unsigned left = alarm(0);
    printf("alarm(0) after alarm(5) returns %u\n", left);
    CHECK(left == 5, "remaining seconds");
    double t0 = now(CLOCK_MONOTONIC);
    alarm(1);
    wait_count(&alrm_count, 1);
    double dt = now(CLOCK_MONOTONIC) - t0;
    CHECK(alrm_count == 1 && dt >= 0.95 && dt < 15, "alarm(1) fired once after ~1 s");

    /* 2. setitimer with an interval: three ticks, then disarm. */
    alrm_count = 0;
    struct itimerval it = {{0, 50 * 1000}, {0, 50 * 1000}}, old;
    t0 = now(CLOCK_MONOTONIC);
    setitimer(ITIMER_REAL, &it, NULL);
    wait_count(&alrm_count, 3);
    dt = now(CLOCK_MONOTONIC) - t0;
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, &old);
    printf("ITIMER_REAL ticks >= 3: %s\n", alrm_count >= 3 ? "yes" : "no");
    CHECK(alrm_count >= 3 && dt >= 0.145, "three 50 ms ticks took at least 150 ms");
    CHECK(old.it_interval.tv_sec == 0 && old.it_interval.tv_usec == 50000,
          "old interval reported back");
    CHECK(old.it_value.tv_sec == 0 && old.it_value.tv_usec > 0 &&
              old.it_value.tv_usec <= 50000,
          "old value within the interval");
    getitimer(ITIMER_REAL, &old);
    CHECK(old.it_value.tv_sec == 0 && old.it_value.tv_usec == 0, "disarmed");
    int c3 = alrm_count;
    struct timespec pause_ts = {0, 120 * 1000 * 1000};
    nanosleep(&pause_ts, NULL);
    CHECK(alrm_count == c3, "no ticks after disarming");

    /* 3. timer_create SIGEV_SIGNAL, relative one-shot, si_value and SI_TIMER. */
    install_info(SIGRTMIN);
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_SIGNAL;
    sev.sigev_signo = SIGRTMIN;
    sev.sigev_value.sival_int = 42;
    timer_t tm;
    CHECK(timer_create(CLOCK_MONOTONIC, &sev, &tm) == 0, "timer_create SIGEV_SIGNAL");
    struct itimerspec its = {{0, 0}, {1, 0}}, cur;
    t0 = now(CLOCK_MONOTONIC);
    timer_settime(tm, 0, &its, NULL);
    timer_gettime(tm, &cur);
    CHECK((cur.it_value.tv_sec > 0 || cur.it_value.tv_nsec > 0) &&
              (cur.it_value.tv_sec == 0 || (cur.it_value.tv_sec == 1 && cur.it_value.tv_nsec == 0)),
          "timer_gettime while armed: 0 < value <= 1 s");
    wait_count(&rt_count, 1);
    dt = now(CLOCK_MONOTONIC) - t0;
    printf("SIGEV_SIGNAL: count=%d code=%s value=%d\n", rt_count,
           rt_code == SI_TIMER ? "SI_TIMER" : "other", rt_value);
    CHECK(rt_count == 1 && rt_code == SI_TIMER && rt_value == 42 && dt >= 0.995,
          "relative timer fired after 1 s");
    timer_gettime(tm, &cur);
    CHECK(cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec == 0, "one-shot disarmed");

    /* 4. Absolute timer_settime. */
    rt_count = 0;
    struct timespec abs;
    clock_gettime(CLOCK_MONOTONIC, &abs);
    abs.tv_nsec += 80 * 1000 * 1000;
    if (abs.tv_nsec >= 1000000000) {
        abs.tv_nsec -= 1000000000;
        abs.tv_sec++;
    }
    its.it_value = abs;
    timer_settime(tm, TIMER_ABSTIME, &its, NULL);
    wait_count(&rt_count, 1);
    double fired_at = now(CLOCK_MONOTONIC), deadline = abs.tv_sec + abs.tv_nsec / 1e9;
    CHECK(rt_count == 1, "TIMER_ABSTIME timer fired once");
    CHECK(fired_at >= deadline, "TIMER_ABSTIME not before the deadline");
    if (fired_at < deadline)
        printf("  (fired %.1f ms early)\n", (deadline - fired_at) * 1e3);
    /* An absolute time in the past fires at once. */
    rt_count = 0;
    its.it_value.tv_sec = 1;
    its.it_value.tv_nsec = 0;
    timer_settime(tm, TIMER_ABSTIME, &its, NULL);
    wait_count(&rt_count, 1);
    CHECK(rt_count == 1, "absolute time in the past fires immediately");

    /* 5. Overruns: a 5 ms periodic timer while its signal is blocked. */
    sigset_t rt;
    sigemptyset(&rt);
    sigaddset(&rt, SIGRTMIN);
    sigprocmask(SIG_BLOCK, &rt, NULL);
    struct itimerspec per = {{0, 5 * 1000 * 1000}, {0, 5 * 1000 * 1000}};
    timer_settime(tm, 0, &per, NULL);
    struct timespec wait200 = {0, 200 * 1000 * 1000};
    nanosleep(&wait200, NULL);
    siginfo_t si;
    int s = sigwaitinfo(&rt, &si);
    int ov = timer_getoverrun(tm);
    timer_settime(tm, 0, &(struct itimerspec){{0, 0}, {0, 0}}, NULL);
    printf("overrun >= 10: %s (si_overrun agrees: %s)\n", ov >= 10 ? "yes" : "no",
           si.si_overrun == ov ? "yes" : "no");
    CHECK(s == SIGRTMIN && ov >= 10 && si.si_overrun == ov && si.si_code == SI_TIMER,
          "timer_getoverrun counts missed expiries");
    if (ov < 10)
        printf("  (timer_getoverrun: %d after 200 ms of a 5 ms timer)\n", ov);
    sigprocmask(SIG_UNBLOCK, &rt, NULL);
    CHECK(timer_delete(tm) == 0, "timer_delete");
    errno = 0;
    CHECK(timer_gettime(tm, &cur) == -1 && errno == EINVAL, "deleted timer: EINVAL");

    /* 6. SIGEV_THREAD_ID: delivered to the chosen thread even though main
     * does not block the signal either. */
    pthread_t th;
    pthread_create(&th, NULL, target_thread, NULL);
    while (!target_tid)
        sched_yield();
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = SIGRTMIN + 1;
    sev._sigev_un._tid = target_tid;
    sev.sigev_value.sival_int = 7;
    install_info(SIGRTMIN + 1);
    timer_t tt;
    int ok = 1;
    if (timer_create(CLOCK_MONOTONIC, &sev, &tt) != 0) {
        printf("timer_create SIGEV_THREAD_ID: %s\n", strerror(errno));
        ok = 0;
    } else {
        rt_count = 0;
        struct itimerspec p3 = {{0, 20 * 1000 * 1000}, {0, 20 * 1000 * 1000}};
        timer_settime(tt, 0, &p3, NULL);
        int all_target = 1;
        for (int i = 1; i <= 3; i++) {
            wait_count(&rt_count, i);
            if (rt_tid != target_tid)
                all_target = 0;
        }
        timer_delete(tt);
        ok = rt_count >= 3 && all_target && rt_value == 7;
    }
    target_stop = 1;
    pthread_join(th, NULL);
    CHECK(ok, "SIGEV_THREAD_ID delivered to the target thread (3 ticks)");

    /* 7. nanosleep interrupted by a handled signal: EINTR, rem set. */
    install(SIGALRM, on_alrm);
    alrm_count = 0;
    struct itimerval once = {{0, 0}, {0, 100 * 1000}};
    setitimer(ITIMER_REAL, &once, NULL);
    struct timespec req = {10, 0}, rem = {0, 0};
    errno = 0;
    int r = nanosleep(&req, &rem);
    int e = errno;
    printf("nanosleep interrupted: %s, rem>0: %s, rem<req: %s\n",
           r == -1 && e == EINTR ? "EINTR" : "no",
           rem.tv_sec > 0 || rem.tv_nsec > 0 ? "yes" : "no",
           rem.tv_sec < 10 ? "yes" : "no");
    CHECK(r == -1 && e == EINTR && rem.tv_sec >= 1 && rem.tv_sec < 10,
          "nanosleep EINTR with the remaining time");

    /* 8. ... but not by an ignored signal. */
    signal(SIGALRM, SIG_IGN);
    setitimer(ITIMER_REAL, &once, NULL);
    req.tv_sec = 0;
    req.tv_nsec = 300 * 1000 * 1000;
    t0 = now(CLOCK_MONOTONIC);
    r = nanosleep(&req, &rem);
    dt = now(CLOCK_MONOTONIC) - t0;
    CHECK(r == 0 && dt >= 0.295, "ignored signal does not interrupt nanosleep");

    /* 9. clock_nanosleep TIMER_ABSTIME interrupted: EINTR, then resumed to
     * the same deadline. */
    install(SIGALRM, on_alrm);
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_nsec += 250 * 1000 * 1000;
    if (dl.tv_nsec >= 1000000000) {
        dl.tv_nsec -= 1000000000;
        dl.tv_sec++;
    }
    setitimer(ITIMER_REAL, &once, NULL);
    r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &dl, NULL);
    CHECK(r == EINTR, "clock_nanosleep(TIMER_ABSTIME) interrupted: EINTR");
    r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &dl, NULL);
    CHECK(r == 0 && now(CLOCK_MONOTONIC) >= dl.tv_sec + dl.tv_nsec / 1e9,
          "resumed to the deadline");

    printf("result: %s\n", failures ? "FAIL" : "OK");
    return failures ? 1 : 0;
}
