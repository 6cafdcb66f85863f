/*
 * A burst of system calls (enough for the seccomp backend's handoff to
 * settle into the mode it prefers, spinning included), then sleep: two
 * threads, one in nanosleep and one waiting to join it. Prints "idle"
 * when the burst is over. The test measures the CPU the instance uses
 * while the guest sleeps.
 *
 *   busy_then_idle [CALLS] [SECONDS]
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

static unsigned secs = 30;

static void *sleeper(void *arg)
{
    (void)arg;
    sleep(secs);
    return NULL;
}

int main(int argc, char **argv)
{
    long calls = argc > 1 ? atol(argv[1]) : 20000;
    if (argc > 2)
        secs = (unsigned)atoi(argv[2]);
    long sum = 0;
    for (long i = 0; i < calls; i++)
        sum += syscall(SYS_getppid);
    if (sum != calls * getppid()) {
        fprintf(stderr, "getppid changed during the burst\n");
        return 1;
    }
    pthread_t t;
    if (pthread_create(&t, NULL, sleeper, NULL) != 0) {
        perror("pthread_create");
        return 1;
    }
    printf("idle\n");
    fflush(stdout);
    pthread_join(t, NULL);
    return 0;
}
