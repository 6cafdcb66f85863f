/* PTRACE_DETACH racing the end of its tracee (hostile tracer input).
 * `ptrace_detach_race kill N`: SIGKILL of a tracee in a ptrace stop
 * always wins (the tracee dies of it, never runs on to its own exit),
 * whatever the order (kill then detach: the kill lands while the tracee
 * sits in its stop, and the detach races the tracee's wake-up); TRACEME
 * and SEIZE tracees.
 * `ptrace_detach_race exit N`: PTRACE_DETACH racing the tracee's own exit:
 * - a tracee stopped at PTRACE_EVENT_EXIT is detached: it finishes its
 *   exit, and its parent sees its status;
 * - the tracer resumes a tracee that goes straight to _exit and detaches
 *   at once: the detach finds it running or dead (ESRCH), never hangs;
 * - a seized, interrupted thread is detached while another thread of its
 *   process calls exit_group: the detach gives 0 or ESRCH, the process
 *   ends with exit_group's status.
 * N rounds; prints a summary (and any odd result), the same natively and
 * inside ruml. A hung tracer or tracee fails by the test's budget. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int bad;

/* Waits for p's end, skipping stops reported before a detach or a kill
 * took; -1 (counted bad) if there is none. */
static int end_status(pid_t p, const char *what, int i) {
    int st;
    for (;;) {
        pid_t w = waitpid(p, &st, __WALL);
        if (w < 0) {
            printf("%s %d: waitpid %s\n", what, i, strerror(errno));
            bad++;
            return -1;
        }
        if (!WIFSTOPPED(st))
            return st;
    }
}

static void want_exit(pid_t p, int code, const char *what, int i) {
    int st = end_status(p, what, i);
    if (st >= 0 && (!WIFEXITED(st) || WEXITSTATUS(st) != code)) {
        printf("%s %d: status %#x (want exit %d)\n", what, i, st, code);
        bad++;
    }
}

static void want_killed(pid_t p, const char *what, int i) {
    int st = end_status(p, what, i);
    if (st >= 0 && (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)) {
        printf("%s %d: status %#x (not killed by SIGKILL)\n", what, i, st);
        bad++;
    }
}

/* A child stopped by its own SIGSTOP under this tracer: TRACEME'd, or
 * (seize) seized in its group stop and interrupted. Left to run, it
 * would _exit(code). */
static pid_t stopped_child(int seize, int code) {
    pid_t p = fork();
    if (p < 0) {
        perror("fork");
        exit(2);
    }
    if (p == 0) {
        if (!seize)
            ptrace(PTRACE_TRACEME, 0, 0, 0);
        raise(SIGSTOP);
        _exit(code);
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
    if (!seize && WSTOPSIG(st) != SIGSTOP)
        exit(6);
    return p;
}

static void kill_round(int i) {
    int seize = i & 1;
    /* kill, then detach: the kill lands while the tracee is stopped */
    pid_t p = stopped_child(seize, 1);
    kill(p, SIGKILL);
    ptrace(PTRACE_DETACH, p, 0, 0);
    want_killed(p, "kill+detach", i);
    /* the same, the tracer resuming it with a signal */
    p = stopped_child(seize, 1);
    kill(p, SIGKILL);
    ptrace(PTRACE_DETACH, p, 0, (void *)(long)SIGCONT);
    want_killed(p, "kill+detach SIGCONT", i);
    /* detach, then kill: a seized tracee detached in a group stop
     * stays stopped. (A TRACEME one resumed from its signal stop may
     * reach its own exit first, on Linux as well: not checked.) */
    if (seize) {
        p = stopped_child(seize, 1);
        ptrace(PTRACE_DETACH, p, 0, 0);
        kill(p, SIGKILL);
        want_killed(p, "detach+kill", i);
    }
}

static void *exiter(void *arg) {
    /* A few yields, so the tracer's stop and detach land around here. */
    long n = (long)arg;
    for (long k = 0; k < n; k++)
        sched_yield();
    syscall(SYS_exit_group, 9);
    return NULL;
}

static void exit_round(int i) {
    /* 1. detach from the exit stop */
    pid_t p = stopped_child(0, 5);
    if (ptrace(PTRACE_SETOPTIONS, p, 0, (void *)PTRACE_O_TRACEEXIT) != 0)
        exit(4);
    ptrace(PTRACE_CONT, p, 0, 0);
    int st;
    if (waitpid(p, &st, __WALL) != p || st >> 8 != (SIGTRAP | (PTRACE_EVENT_EXIT << 8))) {
        printf("exit-stop %d: status %#x\n", i, st);
        bad++;
    }
    unsigned long msg = 0;
    ptrace(PTRACE_GETEVENTMSG, p, 0, &msg);
    if (msg != (5 << 8)) {
        printf("exit-stop %d: event message %#lx\n", i, msg);
        bad++;
    }
    if (ptrace(PTRACE_DETACH, p, 0, 0) != 0) {
        printf("exit-stop %d: detach %s\n", i, strerror(errno));
        bad++;
    }
    want_exit(p, 5, "exit-stop detach", i);

    /* 2. resume towards _exit and detach at once */
    p = stopped_child(0, 6);
    ptrace(PTRACE_CONT, p, 0, 0);
    errno = 0;
    long r = ptrace(PTRACE_DETACH, p, 0, 0);
    if (r != -1 || errno != ESRCH) {
        printf("cont+detach %d: detach %ld %s\n", i, r, strerror(errno));
        bad++;
    }
    want_exit(p, 6, "cont+detach", i);

    /* 3. detach a thread while its process exit_groups */
    p = fork();
    if (p == 0) {
        pthread_t t;
        if (pthread_create(&t, NULL, exiter, (void *)(long)(i % 50)) != 0)
            _exit(40);
        for (;;)
            pause();
    }
    if (ptrace(PTRACE_SEIZE, p, 0, 0) == 0) {
        ptrace(PTRACE_INTERRUPT, p, 0, 0);
        pid_t w = waitpid(p, &st, __WALL);
        if (w == p && WIFSTOPPED(st)) {
            errno = 0;
            r = ptrace(PTRACE_DETACH, p, 0, 0);
            if (r != 0 && errno != ESRCH) {
                printf("exit_group+detach %d: detach %s\n", i, strerror(errno));
                bad++;
            }
            want_exit(p, 9, "exit_group+detach", i);
        } else if (w == p) {
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 9) {
                printf("exit_group+detach %d: status %#x\n", i, st);
                bad++;
            }
        } else {
            printf("exit_group+detach %d: waitpid %s\n", i, strerror(errno));
            bad++;
        }
    } else {
        /* Already gone: a zombie may not be seized (EPERM on Linux). */
        want_exit(p, 9, "exit_group before seize", i);
    }
}

int main(int argc, char **argv) {
    if (argc < 2 || (strcmp(argv[1], "kill") != 0 && strcmp(argv[1], "exit") != 0)) {
        fprintf(stderr, "usage: %s kill|exit [ROUNDS]\n", argv[0]);
        return 2;
    }
    int kill_mode = strcmp(argv[1], "kill") == 0;
    int n = argc > 2 ? atoi(argv[2]) : 100;
    setvbuf(stdout, NULL, _IONBF, 0);
    for (int i = 0; i < n; i++) {
        if (kill_mode)
            kill_round(i);
        else
            exit_round(i);
    }
    printf("%d rounds, %d bad\n", n, bad);
    return bad != 0;
}
