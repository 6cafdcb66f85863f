/* CPU time accounting with parallel threads: two threads spin for ~1 s of
 * wall time; the process's CPU time (getrusage user+sys and
 * CLOCK_PROCESS_CPUTIME_ID) must exceed 1.3x the wall time, which needs the
 * threads to really run in parallel and both to be accounted. If the machine
 * is busy, the measurement is repeated (up to 3 times). Also checks that
 * the per-thread clocks and RUSAGE_THREAD add up. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static double ts2d(struct timespec ts) { return ts.tv_sec + ts.tv_nsec / 1e9; }
static double tv2d(struct timeval tv) { return tv.tv_sec + tv.tv_usec / 1e6; }

static double clock_now(clockid_t c) {
    struct timespec ts;
    clock_gettime(c, &ts);
    return ts2d(ts);
}

static double rusage_cpu(int who) {
    struct rusage ru;
    getrusage(who, &ru);
    return tv2d(ru.ru_utime) + tv2d(ru.ru_stime);
}

struct spin {
    double until;
    double thread_cpu;   /* CLOCK_THREAD_CPUTIME_ID at the end */
    double thread_ru;    /* RUSAGE_THREAD at the end */
    volatile unsigned long iters;
};

static void *spin_main(void *arg) {
    struct spin *s = arg;
    /* Mostly pure user-mode work: the clock is read every ~100k steps. */
    volatile unsigned long n = 0;
    while (clock_now(CLOCK_MONOTONIC) < s->until)
        for (int i = 0; i < 100000; i++)
            n++;
    s->iters = n;
    s->thread_cpu = clock_now(CLOCK_THREAD_CPUTIME_ID);
    s->thread_ru = rusage_cpu(RUSAGE_THREAD);
    return NULL;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    int passed = 0, attempts = 0, clocks_ok = 0, threads_ok = 0;
    double ratio_ru = 0, ratio_clk = 0;
    while (!passed && attempts < 3) {
        attempts++;
        double wall0 = clock_now(CLOCK_MONOTONIC);
        double ru0 = rusage_cpu(RUSAGE_SELF);
        double clk0 = clock_now(CLOCK_PROCESS_CPUTIME_ID);
        struct spin s[2];
        pthread_t t[2];
        for (int i = 0; i < 2; i++) {
            memset(&s[i], 0, sizeof s[i]);
            s[i].until = wall0 + 1.0;
            pthread_create(&t[i], NULL, spin_main, &s[i]);
        }
        for (int i = 0; i < 2; i++)
            pthread_join(t[i], NULL);
        double wall = clock_now(CLOCK_MONOTONIC) - wall0;
        double ru = rusage_cpu(RUSAGE_SELF) - ru0;
        double clk = clock_now(CLOCK_PROCESS_CPUTIME_ID) - clk0;
        ratio_ru = ru / wall;
        ratio_clk = clk / wall;
        /* Each thread ran (almost) the whole second on its own clock, and its
         * RUSAGE_THREAD agrees with its thread clock to within 50 ms. */
        threads_ok = 1;
        for (int i = 0; i < 2; i++) {
            double d = s[i].thread_cpu - s[i].thread_ru;
            if (s[i].iters == 0 || d > 0.05 || d < -0.05)
                threads_ok = 0;
        }
        /* The process clock and getrusage agree to within 10%. */
        clocks_ok = clk > 0 && ru > 0 && (clk - ru) < 0.1 * clk && (ru - clk) < 0.1 * clk;
        passed = ratio_ru > 1.3 && ratio_clk > 1.3 && threads_ok && clocks_ok;
        if (!passed)
            fprintf(stderr, "attempt %d: wall %.3f rusage %.3f clock %.3f threads_ok %d\n",
                    attempts, wall, ru, clk, threads_ok);
    }
    printf("cpu > wall: %s\n", ratio_ru > 1.3 && ratio_clk > 1.3 ? "yes" : "no");
    printf("rusage and process clock agree: %s\n", clocks_ok ? "yes" : "no");
    printf("thread clocks and RUSAGE_THREAD agree: %s\n", threads_ok ? "yes" : "no");
    printf("result: %s\n", passed ? "OK" : "FAIL");
    return passed ? 0 : 1;
}
