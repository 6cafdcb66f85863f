/* Random arguments to the pidfd calls (pidfd_open, pidfd_send_signal,
 * pidfd_getfd, setns on pidfds, waitid(P_PIDFD), the pidfd ioctls): the
 * kernel must answer every one with a result or an errno, never crash or
 * hang. Signals are limited to ignored ones so the fuzzer survives.
 * Prints "fuzz done" at the end; its other output is not compared. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static uint64_t state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

static char scratch[256];
static void *bad_page;

static uint64_t rnd_ptr(void) {
    switch (rnd() % 6) {
    case 0: return 0;
    case 1: return 1;
    case 2: return (uint64_t)scratch;
    case 3: return (uint64_t)bad_page;
    case 4: return 0xffff800000000000ull;
    default: return (uint64_t)scratch + 250; /* runs off the end of scratch into other data: read only */
    }
}

static int pick_fd(int *fds, int n) {
    switch (rnd() % 8) {
    case 0: return -1;
    case 1: return -10000;
    case 2: return -10001;
    case 3: return (int)(rnd() % 2048);
    case 4: return (int)rnd();
    default: return fds[rnd() % n];
    }
}

static int pick_sig(void) {
    static const int sigs[] = {0, SIGUSR1, SIGUSR2, 65, -1, 1000, SIGWINCH, SIGURG};
    return sigs[rnd() % 8];
}

static void *idle_thread(void *a) {
    (void)a;
    for (;;) pause();
    return NULL;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGUSR1, SIG_IGN);
    signal(SIGUSR2, SIG_IGN);
    bad_page = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    pthread_t th;
    pthread_create(&th, NULL, idle_thread, NULL);
    pid_t kids[3];
    for (int i = 0; i < 3; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            signal(SIGUSR1, SIG_IGN);
            signal(SIGUSR2, SIG_IGN);
            if (i == 2) _exit(0); /* a zombie */
            for (;;) pause();
        }
    }
    int base[8];
    int n = 0;
    base[n++] = syscall(434, getpid(), 0);
    base[n++] = syscall(434, getpid(), 0200);
    base[n++] = syscall(434, kids[0], 0);
    base[n++] = syscall(434, kids[1], 04000);
    usleep(10000);
    base[n++] = syscall(434, kids[2], 0);
    base[n++] = 0;
    base[n++] = 1;
    int firstfree = dup(0);
    close(firstfree);
    unsigned long calls = 0;
    for (int it = 0; it < 20000; it++) {
        long r = -1;
        int fd = pick_fd(base, n);
        switch (rnd() % 7) {
        case 0: {
            pid_t pids[] = {getpid(), kids[0], kids[2], 0, -1, (pid_t)rnd(), 1, 99999};
            r = syscall(434, pids[rnd() % 8], (unsigned)(rnd() % 3 == 0 ? rnd() : rnd() % 2 ? 0200 : 04000));
            break;
        }
        case 1: {
            uint64_t info = rnd_ptr();
            if (info == (uint64_t)scratch)
                for (int i = 0; i < 128; i++) scratch[i] = (char)rnd();
            r = syscall(424, fd, pick_sig(), info, (unsigned)(rnd() % 3 == 0 ? rnd() : rnd() % 8));
            break;
        }
        case 2:
            r = syscall(438, fd, (int)(rnd() % 3 ? rnd() % 16 : rnd()), (unsigned)(rnd() % 4 ? 0 : rnd()));
            break;
        case 3: {
            /* Namespaces of our own or our children's: nothing changes
             * but the checks run. Never CLONE_NEWNS (it would move our
             * root and cwd; harmless, but keep the run simple). */
            static const unsigned long fl[] = {0, 0x04000000, 0x08000000, 0x10000000, 0x20000000,
                                               0x02000000, 0x40000000, 0x80, 0x100, 0x7e000080};
            r = syscall(SYS_setns, fd, fl[rnd() % 10] | ((rnd() % 5 == 0 ? rnd() : 0) & ~0x20000ul));
            break;
        }
        case 4: {
            siginfo_t si;
            r = syscall(SYS_waitid, 3, fd, rnd() % 2 ? &si : (void *)rnd_ptr(),
                        (int)(WEXITED | WNOHANG | (rnd() % 4 == 0 ? rnd() : 0)), NULL);
            break;
        }
        case 5: {
            unsigned long cmds[] = {0xff01, 0xff05, 0xff09, 0xff0a, 0xff0b, 0xc040ff0b, (unsigned)rnd(),
                                    0xff00 | (rnd() % 16)};
            r = ioctl(fd, cmds[rnd() % 8], rnd() % 3 ? 0 : rnd_ptr());
            break;
        }
        default: {
            struct pollfd { int fd; short ev, rev; } q = {fd, 1, 0};
            r = syscall(SYS_poll, &q, 1, 0);
            break;
        }
        }
        calls++;
        (void)r;
        /* Close whatever new descriptors the calls made. */
        if (it % 64 == 0) {
            for (int f = firstfree; f < firstfree + 256; f++) close(f);
        }
    }
    for (int i = 0; i < 2; i++) kill(kids[i], SIGKILL);
    while (wait(NULL) > 0) {}
    printf("fuzz done: %lu calls\n", calls);
    return 0;
}
