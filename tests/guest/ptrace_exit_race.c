/* PTRACE_DETACH racing the tracee's own exit (hostile tracer input):
 * - a tracee stopped at PTRACE_EVENT_EXIT is detached: it finishes its
 *   exit, and its parent sees its status;
 * - the tracer resumes a tracee that goes straight to _exit and detaches
 *   at once: the detach finds it running or dead (ESRCH), never hangs;
 * - a seized, interrupted thread is detached while another thread of its
 *   process calls exit_group: the detach gives 0 or ESRCH, the process
 *   ends with exit_group's status.
 * Many rounds; prints a summary (and any odd result), the same natively
 * and inside ruml. A hung tracer or tracee fails by the test's budget. */
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

/* Waits for p's end, skipping stops reported before a detach took. */
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

static pid_t traceme_stopped(int code) {
    pid_t p = fork();
    if (p < 0) {
        perror("fork");
        exit(2);
    }
    if (p == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        raise(SIGSTOP);
        _exit(code);
    }
    int st;
    if (waitpid(p, &st, __WALL) != p || !WIFSTOPPED(st) || WSTOPSIG(st) != SIGSTOP)
        exit(3);
    return p;
}

static void *exiter(void *arg) {
    /* A few yields, so the tracer's stop and detach land around here. */
    long n = (long)arg;
    for (long k = 0; k < n; k++)
        sched_yield();
    syscall(SYS_exit_group, 9);
    return NULL;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 100;
    setvbuf(stdout, NULL, _IONBF, 0);
    for (int i = 0; i < n; i++) {
        /* 1. detach from the exit stop */
        pid_t p = traceme_stopped(5);
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
        p = traceme_stopped(6);
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
    printf("%d rounds, %d bad\n", n, bad);
    return bad != 0;
}
