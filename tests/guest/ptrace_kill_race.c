/* PTRACE_DETACH racing SIGKILL of a tracee in a ptrace stop: SIGKILL
 * always wins (the tracee dies of it, never runs on to its own exit),
 * whatever the order (kill then detach: the kill lands while the tracee
 * sits in its stop, and the detach races the tracee's wake-up). Many
 * iterations, TRACEME and SEIZE tracees; prints a summary. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

static int bad;

static pid_t stopped_child(int seize) {
    pid_t p = fork();
    if (p < 0) {
        perror("fork");
        exit(2);
    }
    if (p == 0) {
        if (!seize)
            ptrace(PTRACE_TRACEME, 0, 0, 0);
        raise(SIGSTOP);
        /* Had it survived the SIGKILL: */
        _exit(1);
    }
    int st;
    if (seize) {
        /* Wait for the plain group stop, then seize and interrupt. */
        if (waitpid(p, &st, WUNTRACED) != p || !WIFSTOPPED(st))
            exit(3);
        if (ptrace(PTRACE_SEIZE, p, 0, 0) != 0)
            exit(4);
        ptrace(PTRACE_INTERRUPT, p, 0, 0);
    }
    if (waitpid(p, &st, __WALL) != p || !WIFSTOPPED(st))
        exit(5);
    return p;
}

static void check(pid_t p, const char *what, int i) {
    int st;
    for (;;) {
        pid_t w = waitpid(p, &st, __WALL);
        if (w < 0) {
            printf("%s %d: waitpid %s\n", what, i, strerror(errno));
            bad++;
            return;
        }
        if (WIFSTOPPED(st)) /* a stop reported before the kill: not an end */
            continue;
        break;
    }
    if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL) {
        printf("%s %d: status %#x (not killed by SIGKILL)\n", what, i, st);
        bad++;
    }
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 200;
    setvbuf(stdout, NULL, _IONBF, 0);
    for (int i = 0; i < n; i++) {
        int seize = i & 1;
        /* kill, then detach: the kill lands while the tracee is stopped */
        pid_t p = stopped_child(seize);
        kill(p, SIGKILL);
        ptrace(PTRACE_DETACH, p, 0, 0);
        check(p, "kill+detach", i);
        /* the same, the tracer resuming it with a signal */
        p = stopped_child(seize);
        kill(p, SIGKILL);
        ptrace(PTRACE_DETACH, p, 0, (void *)(long)SIGCONT);
        check(p, "kill+detach SIGCONT", i);
        /* detach, then kill: a seized tracee detached in a group stop
         * stays stopped. (A TRACEME one resumed from its signal stop may
         * reach its own exit first, on Linux as well: not checked.) */
        if (seize) {
            p = stopped_child(seize);
            ptrace(PTRACE_DETACH, p, 0, 0);
            kill(p, SIGKILL);
            check(p, "detach+kill", i);
        }
    }
    printf("%d rounds, %d bad\n", n, bad);
    return bad != 0;
}
