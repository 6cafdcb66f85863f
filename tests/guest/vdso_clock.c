/*
 * vdso_clock: the clocks glibc reads (through the vDSO where there is one)
 * agree with the system calls. Interleaved reads of CLOCK_MONOTONIC and
 * CLOCK_BOOTTIME through glibc and through syscall(2) never go backwards;
 * REALTIME, gettimeofday and time agree with the system call within a
 * generous tolerance; the COARSE clocks stay within their resolution plus
 * tolerance; a sleep of D measures at least D; getcpu names a CPU the
 * process may run on; clock_getres agrees; threads see the same. Prints
 * only verdicts (deterministic), so the output is compared with a native
 * run.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int failures;

static void check(const char *what, int ok)
{
    printf("%s: %s\n", what, ok ? "ok" : "FAIL");
    if (!ok)
        failures++;
}

static long long ns_of(struct timespec t)
{
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static long long lib_ns(clockid_t c)
{
    struct timespec t;
    if (clock_gettime(c, &t) != 0)
        return -1;
    return ns_of(t);
}

static long long sys_ns(clockid_t c)
{
    struct timespec t;
    if (syscall(SYS_clock_gettime, c, &t) != 0)
        return -1;
    return ns_of(t);
}

/* Interleaved library and system-call reads never go backwards. */
static int interleaved(clockid_t c, int rounds)
{
    long long last = 0;
    for (int i = 0; i < rounds; i++) {
        long long a = lib_ns(c), b = sys_ns(c), d = lib_ns(c);
        if (a < 0 || b < 0 || d < 0 || a < last || b < a || d < b)
            return 0;
        last = d;
    }
    return 1;
}

/* |library - system call| within tol ns (read in both orders). */
static int close_to(clockid_t c, long long tol)
{
    for (int i = 0; i < 20; i++) {
        long long a = lib_ns(c), b = sys_ns(c);
        long long d = a > b ? a - b : b - a;
        if (a < 0 || b < 0 || d > tol)
            return 0;
    }
    return 1;
}

static void *thread_main(void *arg)
{
    (void)arg;
    return (void *)(long)interleaved(CLOCK_MONOTONIC, 200);
}

int main(void)
{
    const long long TOL = 500000000LL; /* 0.5 s: a loaded machine */

    check("monotonic interleaved", interleaved(CLOCK_MONOTONIC, 2000));
    check("boottime interleaved", interleaved(CLOCK_BOOTTIME, 500));
    /* A tight loop of library reads alone is monotonic too. */
    {
        long long last = lib_ns(CLOCK_MONOTONIC);
        int ok = last > 0;
        for (int i = 0; i < 200000 && ok; i++) {
            long long n = lib_ns(CLOCK_MONOTONIC);
            ok = n >= last;
            last = n;
        }
        check("monotonic tight loop", ok);
    }
    check("realtime close to the system call", close_to(CLOCK_REALTIME, TOL));
    check("boottime close to the system call", close_to(CLOCK_BOOTTIME, TOL));
    check("boottime >= monotonic", lib_ns(CLOCK_MONOTONIC) <= lib_ns(CLOCK_BOOTTIME));

    struct timespec res;
    int ok = clock_getres(CLOCK_MONOTONIC_COARSE, &res) == 0 && res.tv_sec == 0 && res.tv_nsec > 0;
    long long coarse_res = res.tv_nsec;
    check("coarse resolution", ok);
    check("monotonic_coarse close",
          close_to(CLOCK_MONOTONIC_COARSE, TOL + coarse_res));
    check("realtime_coarse close", close_to(CLOCK_REALTIME_COARSE, TOL + coarse_res));
    {
        long long last = 0;
        int ok2 = 1;
        for (int i = 0; i < 10000 && ok2; i++) {
            long long n = lib_ns(CLOCK_MONOTONIC_COARSE);
            ok2 = n >= last;
            last = n;
        }
        check("monotonic_coarse never backwards", ok2);
        check("coarse not ahead of fine",
              lib_ns(CLOCK_MONOTONIC_COARSE) <= lib_ns(CLOCK_MONOTONIC));
    }

    /* The other clocks take the system call path. */
    check("monotonic_raw", lib_ns(CLOCK_MONOTONIC_RAW) > 0);
    check("process cputime", lib_ns(CLOCK_PROCESS_CPUTIME_ID) > 0);
    {
        struct timespec t;
        errno = 0;
        check("bad clock EINVAL", clock_gettime(12345, &t) == -1 && errno == EINVAL);
    }

    for (int c = 0; c <= 7; c++) {
        struct timespec a = {0, 0}, b = {0, 0};
        int ra = clock_getres(c, &a);
        int rb = (int)syscall(SYS_clock_getres, c, &b);
        if (ra != rb || a.tv_sec != b.tv_sec || a.tv_nsec != b.tv_nsec) {
            printf("clock_getres(%d) disagrees\n", c);
            failures++;
        }
    }
    check("clock_getres(NULL)", clock_getres(CLOCK_MONOTONIC, NULL) == 0);

    {
        struct timeval tv;
        struct timezone tz = {123, 456};
        long long s = sys_ns(CLOCK_REALTIME);
        int r = gettimeofday(&tv, &tz);
        long long e = sys_ns(CLOCK_REALTIME);
        long long g = (long long)tv.tv_sec * 1000000000LL + tv.tv_usec * 1000LL;
        check("gettimeofday", r == 0 && g >= s - TOL && g <= e + TOL && tv.tv_usec < 1000000);
        struct timeval *volatile none = NULL;
        check("gettimeofday(NULL, NULL)", gettimeofday(none, NULL) == 0);
    }
    {
        time_t t0 = (time_t)syscall(SYS_time, NULL);
        time_t mine;
        time_t t1 = time(&mine);
        check("time", t1 == mine && t1 >= t0 && t1 <= t0 + 2);
        check("time(NULL)", time(NULL) >= t1);
    }

    /* A sleep of 30 ms measures at least 30 ms, by either path. */
    {
        long long a = lib_ns(CLOCK_MONOTONIC), sa = sys_ns(CLOCK_MONOTONIC);
        struct timespec d = {0, 30000000};
        nanosleep(&d, NULL);
        long long b = lib_ns(CLOCK_MONOTONIC), sb = sys_ns(CLOCK_MONOTONIC);
        check("sleep measured by the library", b - a >= 30000000);
        check("sleep measured by the system call", sb - sa >= 30000000);
    }

    {
        int cpu = sched_getcpu();
        unsigned c1 = 9999, n1 = 9999;
        long r = syscall(SYS_getcpu, &c1, &n1, NULL);
        long ncpu = sysconf(_SC_NPROCESSORS_CONF);
        check("sched_getcpu", cpu >= 0 && cpu < ncpu);
        check("getcpu system call", r == 0 && c1 < (unsigned)ncpu && n1 < 64);
        check("getcpu(NULL, NULL)", syscall(SYS_getcpu, NULL, NULL, NULL) == 0);
        check("getcpu EFAULT", syscall(SYS_getcpu, (void *)8, NULL, NULL) == -1 && errno == EFAULT);
    }

    {
        pthread_t th[3];
        int ok3 = 1;
        for (int i = 0; i < 3; i++)
            pthread_create(&th[i], NULL, thread_main, NULL);
        for (int i = 0; i < 3; i++) {
            void *rv;
            pthread_join(th[i], &rv);
            ok3 &= rv != NULL;
        }
        check("threads interleaved", ok3);
    }

    printf("result: %s\n", failures ? "FAIL" : "OK");
    return failures ? 1 : 0;
}
