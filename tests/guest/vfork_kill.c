/* A vfork parent waits killably: SIGKILL ends it while its child never
 * execs nor exits (the same natively and under ruml). */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    int p[2];
    if (pipe(p)) return 1;
    pid_t a = fork();
    if (a == 0) {
        pid_t c = vfork();
        if (c == 0) {
            pid_t me = getpid();
            /* Only async-signal-safe calls in the vfork child. */
            if (write(p[1], &me, sizeof me) != sizeof me) _exit(3);
            for (;;) pause();
        }
        _exit(0);
    }
    pid_t c;
    if (read(p[0], &c, sizeof c) != sizeof c) return 2;
    usleep(100000);
    int st = 0;
    printf("parent still waiting: %d\n", waitpid(a, &st, WNOHANG) == 0);
    kill(a, SIGKILL);
    waitpid(a, &st, 0);
    printf("vfork parent: signaled=%d sig=%d\n", WIFSIGNALED(st), WIFSIGNALED(st) ? WTERMSIG(st) : -1);
    kill(c, SIGKILL);
    printf("orphaned child killed\n");
    return 0;
}
