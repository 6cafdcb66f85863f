/* Nice is per thread, as Linux: setpriority(PRIO_PROCESS, tid) changes
 * that thread alone (and the process id names the main thread), a new
 * thread and a forked child start with their creator's value, PRIO_PGRP
 * changes every thread of the group's processes, /proc/PID/task/TID/stat
 * shows each thread's own. Raising nice needs no privilege: runs as any
 * user. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int gp(int which, int who) {
    errno = 0;
    int r = getpriority(which, who);
    return errno ? -100 : r;
}

/* Field 19 (nice) of /proc/self/task/TID/stat. */
static int stat_nice(pid_t tid) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -100;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p)
        return -100;
    int field = 2, nice = -100;
    for (char *tok = strtok(p + 1, " "); tok; tok = strtok(NULL, " ")) {
        if (++field == 19) {
            nice = atoi(tok);
            break;
        }
    }
    return nice;
}

static pthread_barrier_t b1, b2, b3;
static pid_t worker_tid;
static int worker_saw_self, worker_saw_main, worker_child;

static void *worker(void *arg) {
    (void)arg;
    worker_tid = syscall(SYS_gettid);
    /* a new thread starts with its creator's nice (3) */
    worker_saw_self = gp(PRIO_PROCESS, 0);
    pthread_barrier_wait(&b1);
    /* main changes us to 7 meanwhile */
    pthread_barrier_wait(&b2);
    worker_saw_main = gp(PRIO_PROCESS, 0);
    /* a child forked by this thread inherits this thread's nice */
    pid_t c = fork();
    if (c == 0)
        _exit(gp(PRIO_PROCESS, 0));
    int st;
    waitpid(c, &st, 0);
    worker_child = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    pthread_barrier_wait(&b3);
    /* PRIO_PGRP from main reaches this thread too */
    pthread_barrier_wait(&b3);
    printf("worker after PRIO_PGRP 12: %d\n", gp(PRIO_PROCESS, 0));
    return NULL;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    pid_t me = getpid();
    /* own process group, so PRIO_PGRP touches only this test */
    setpgid(0, 0);
    printf("start: %d\n", gp(PRIO_PROCESS, 0));
    printf("setpriority self 3: %d\n", setpriority(PRIO_PROCESS, 0, 3));
    pthread_barrier_init(&b1, NULL, 2);
    pthread_barrier_init(&b2, NULL, 2);
    pthread_barrier_init(&b3, NULL, 2);
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    pthread_barrier_wait(&b1);
    printf("new thread started with: %d\n", worker_saw_self);
    printf("setpriority(tid, 7): %d\n", setpriority(PRIO_PROCESS, worker_tid, 7));
    printf("main after: %d\n", gp(PRIO_PROCESS, 0));
    printf("getpriority(pid): %d\n", gp(PRIO_PROCESS, me));
    printf("getpriority(tid): %d\n", gp(PRIO_PROCESS, worker_tid));
    printf("stat nice main %d worker %d\n", stat_nice(me), stat_nice(worker_tid));
    pthread_barrier_wait(&b2);
    pthread_barrier_wait(&b3);
    printf("worker saw itself: %d\n", worker_saw_main);
    printf("worker's child: %d\n", worker_child);
    /* the process id names the main thread alone */
    printf("setpriority(pid, 5): %d\n", setpriority(PRIO_PROCESS, me, 5));
    printf("main %d worker %d\n", gp(PRIO_PROCESS, 0), gp(PRIO_PROCESS, worker_tid));
    /* PRIO_PGRP: every thread; getpriority(PRIO_PGRP) the best (lowest) */
    printf("getpriority(PRIO_PGRP): %d\n", gp(PRIO_PGRP, 0));
    printf("setpriority(PRIO_PGRP, 12): %d\n", setpriority(PRIO_PGRP, 0, 12));
    pthread_barrier_wait(&b3);
    pthread_join(t, NULL);
    printf("main after PRIO_PGRP: %d\n", gp(PRIO_PROCESS, 0));
    printf("bad tid: %s\n", setpriority(PRIO_PROCESS, 0x3ffffff0, 1) == 0 ? "0" : strerrorname_np(errno));
    printf("result: OK\n");
    return 0;
}
