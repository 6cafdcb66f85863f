/* clone(CLONE_PIDFD): the pidfd becomes readable when the child exits. */
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
static char stack[65536];
static int child(void *a) { return 5; }
int main(void) {
    int pfd = -1;
    pid_t p = clone(child, stack + sizeof stack, CLONE_PIDFD | SIGCHLD, NULL, &pfd);
    struct pollfd q = {pfd, POLLIN, 0};
    printf("pidfd valid: %d, poll: %d\n", pfd > 2, poll(&q, 1, 5000));
    int st; waitpid(p, &st, 0); printf("status %d\n", WEXITSTATUS(st));
    return 0;
}
