/* RLIMIT_SIGPENDING: real-time signals queued by sigqueue or tgkill
 * beyond the limit fail with EAGAIN; kill()'s succeed but merge into the
 * pending instance; a classic signal is still delivered. Run as root, it
 * first becomes a user of its own (the limit counts the user's signals
 * queued anywhere on the machine). */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *res(int r) {
    return r == 0 ? "0" : strerrorname_np(errno);
}

int main(void) {
    if (getuid() == 0 && setuid(54321)) {
        perror("setuid");
        return 1;
    }
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, NULL);
    struct rlimit rl = { 4, 4 };
    if (setrlimit(RLIMIT_SIGPENDING, &rl)) {
        perror("setrlimit");
        return 1;
    }
    int ok = 0, err = 0;
    union sigval v = { .sival_int = 7 };
    for (int i = 0; i < 10; i++) {
        if (sigqueue(getpid(), SIGRTMIN, v) == 0) ok++;
        else if (errno == EAGAIN) err++;
    }
    printf("sigqueue: %d queued, %d EAGAIN\n", ok, err);
    int queued = ok;
    printf("sigqueue SIGRTMIN+1: %s\n", res(sigqueue(getpid(), SIGRTMIN + 1, v)));
    printf("tgkill: %s\n", res(syscall(SYS_tgkill, getpid(), gettid(), SIGRTMIN)));
    printf("kill: %s\n", res(kill(getpid(), SIGRTMIN)));
    printf("sigqueue SIGUSR1: %s\n", res(sigqueue(getpid(), SIGUSR1, v)));
    siginfo_t si;
    struct timespec zero = { 0, 0 };
    int n = 0, user = 0;
    sigset_t rt;
    sigemptyset(&rt);
    sigaddset(&rt, SIGRTMIN);
    while (sigtimedwait(&rt, &si, &zero) == SIGRTMIN) {
        n++;
        if (si.si_code == SI_USER) user++;
    }
    printf("SIGRTMIN taken: %s (%d from kill)\n", n == queued ? "as queued" : "other", user);
    printf("after draining: %s\n", res(sigqueue(getpid(), SIGRTMIN, v)));
    return 0;
}
