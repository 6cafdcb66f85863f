/* ITIMER_VIRTUAL and ITIMER_PROF: signals arrive as the process burns CPU
 * time; getitimer reports the interval. Prints facts only. */
#include <signal.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>

static volatile int vt, prof;
static void on_vt(int s) { (void)s; vt++; }
static void on_prof(int s) { (void)s; prof++; }

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(void) {
    signal(SIGVTALRM, on_vt);
    signal(SIGPROF, on_prof);
    struct itimerval it = {{0, 20000}, {0, 20000}}, g;
    setitimer(ITIMER_VIRTUAL, &it, 0);
    double t0 = now();
    while (vt < 3 && now() - t0 < 10) {}
    it.it_value.tv_usec = it.it_interval.tv_usec = 0;
    setitimer(ITIMER_VIRTUAL, &it, 0);
    it.it_value.tv_usec = it.it_interval.tv_usec = 30000;
    setitimer(ITIMER_PROF, &it, 0);
    t0 = now();
    while (prof < 3 && now() - t0 < 10) {}
    getitimer(ITIMER_PROF, &g);
    printf("SIGVTALRM delivered: %s\n", vt >= 3 ? "yes" : "no");
    printf("SIGPROF delivered: %s\n", prof >= 3 ? "yes" : "no");
    printf("interval kept: %s\n", g.it_interval.tv_usec == 30000 ? "yes" : "no");
    int ok = vt >= 3 && prof >= 3 && g.it_interval.tv_usec == 30000;
    printf("result: %s\n", ok ? "OK" : "FAIL");
    return !ok;
}
