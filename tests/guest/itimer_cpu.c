/* ITIMER_VIRTUAL and ITIMER_PROF: signals arrive as the process burns CPU
 * time; getitimer reports the interval. Prints facts only. The busy loops
 * make no system call (a busy host then slows the run but cannot starve
 * the timers); their step budget, some 15 s of CPU, ends a broken run. */
#include <signal.h>
#include <stdio.h>
#include <sys/time.h>

static volatile int vt, prof;
static void on_vt(int s) { (void)s; vt++; }
static void on_prof(int s) { (void)s; prof++; }

#define BUDGET (1UL << 34)

int main(void) {
    signal(SIGVTALRM, on_vt);
    signal(SIGPROF, on_prof);
    struct itimerval it = {{0, 20000}, {0, 20000}}, g;
    setitimer(ITIMER_VIRTUAL, &it, 0);
    for (volatile unsigned long i = 0; vt < 3 && i < BUDGET; i++) {}
    it.it_value.tv_usec = it.it_interval.tv_usec = 0;
    setitimer(ITIMER_VIRTUAL, &it, 0);
    it.it_value.tv_usec = it.it_interval.tv_usec = 30000;
    setitimer(ITIMER_PROF, &it, 0);
    for (volatile unsigned long i = 0; prof < 3 && i < BUDGET; i++) {}
    getitimer(ITIMER_PROF, &g);
    printf("SIGVTALRM delivered: %s\n", vt >= 3 ? "yes" : "no");
    printf("SIGPROF delivered: %s\n", prof >= 3 ? "yes" : "no");
    printf("interval kept: %s\n", g.it_interval.tv_usec == 30000 ? "yes" : "no");
    int ok = vt >= 3 && prof >= 3 && g.it_interval.tv_usec == 30000;
    printf("result: %s\n", ok ? "OK" : "FAIL");
    return !ok;
}
