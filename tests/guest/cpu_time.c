/* CPU time accounting with parallel threads: two threads spin for ~1 s of
 * CPU time each, in user mode only (no system call in the loop, so a busy
 * host slows ruml's run exactly as much as the native one); prints the process's CPU time (the smaller of getrusage
 * user+sys and CLOCK_PROCESS_CPUTIME_ID) over the wall time, which exceeds 1
 * only if the threads ran in parallel and both were accounted, and whether
 * the process clock, getrusage, the per-thread clocks and RUSAGE_THREAD
 * agree. The test compares the ratio with the host's own in the same run. */
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
    unsigned long steps;   /* pure user-mode work, no system call */
    double thread_cpu;     /* CLOCK_THREAD_CPUTIME_ID at the end */
    double thread_ru;      /* RUSAGE_THREAD at the end */
    volatile unsigned long iters;
};

static void *spin_main(void *arg) {
    struct spin *s = arg;
    volatile unsigned long n = 0;
    for (unsigned long i = 0; i < s->steps; i++)
        n++;
    s->iters = n;
    s->thread_cpu = clock_now(CLOCK_THREAD_CPUTIME_ID);
    s->thread_ru = rusage_cpu(RUSAGE_THREAD);
    return NULL;
}

/* Steps worth about `secs` of this thread's CPU time. */
static unsigned long calibrate(double secs) {
    unsigned long steps = 1 << 20;
    for (;;) {
        struct spin s = {.steps = steps};
        double c0 = clock_now(CLOCK_THREAD_CPUTIME_ID);
        spin_main(&s);
        double c = clock_now(CLOCK_THREAD_CPUTIME_ID) - c0;
        if (c > 0.05)
            return (unsigned long)(steps * (secs / c));
        steps *= 2;
    }
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    unsigned long steps = calibrate(1.0);
    double wall0 = clock_now(CLOCK_MONOTONIC);
    double ru0 = rusage_cpu(RUSAGE_SELF);
    double clk0 = clock_now(CLOCK_PROCESS_CPUTIME_ID);
    struct spin s[2];
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        memset(&s[i], 0, sizeof s[i]);
        s[i].steps = steps;
        pthread_create(&t[i], NULL, spin_main, &s[i]);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    double wall = clock_now(CLOCK_MONOTONIC) - wall0;
    double ru = rusage_cpu(RUSAGE_SELF) - ru0;
    double clk = clock_now(CLOCK_PROCESS_CPUTIME_ID) - clk0;
    /* Each thread ran and its RUSAGE_THREAD agrees with its thread clock to
     * within 50 ms. */
    int threads_ok = 1;
    for (int i = 0; i < 2; i++) {
        double d = s[i].thread_cpu - s[i].thread_ru;
        if (s[i].iters == 0 || d > 0.05 || d < -0.05)
            threads_ok = 0;
    }
    /* The process clock and getrusage agree to within 10%. */
    int clocks_ok = clk > 0 && ru > 0 && (clk - ru) < 0.1 * clk && (ru - clk) < 0.1 * clk;
    printf("cpu/wall: %.3f\n", (ru < clk ? ru : clk) / wall);
    printf("rusage and process clock agree: %s\n", clocks_ok ? "yes" : "no");
    printf("thread clocks and RUSAGE_THREAD agree: %s\n", threads_ok ? "yes" : "no");
    return 0;
}
