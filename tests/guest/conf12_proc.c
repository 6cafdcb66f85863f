/* Small process items of Linux conformance II (#11), differential:
 * SA_RESETHAND keeps SA_SIGINFO for the one delivery it handles;
 * close_range's flags and errors; get_robust_list of self and of a
 * missing pid; execve with argc 0 (the program sees argc 1, argv[0] "");
 * execveat of a symlink with AT_SYMLINK_NOFOLLOW (ELOOP). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_UNSHARE
#define CLOSE_RANGE_UNSHARE (1U << 1)
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

static const char *en(long r) { return r < 0 ? strerrorname_np(errno) : "ok"; }
static volatile int got_code = -1, got_value = -1;

static void h(int sig, siginfo_t *si, void *uc)
{
    (void)sig; (void)uc;
    got_code = si->si_code;
    got_value = si->si_value.sival_int;
}

int main(int argc, char **argv)
{
    if (argc == 1 && argv[0] && argv[0][0] == 0) {
        printf("child: argc %d, argv[0] empty\n", argc);
        return 0;
    }
    if (argc == 0) { printf("child: argc 0\n"); return 0; }
    setvbuf(stdout, NULL, _IONBF, 0);
    struct sigaction sa = {0};
    sa.sa_sigaction = h;
    sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
    sigaction(SIGUSR1, &sa, NULL);
    union sigval v = {.sival_int = 42};
    sigqueue(getpid(), SIGUSR1, v);
    printf("SA_RESETHAND delivery: code %d value %d\n", got_code, got_value);
    struct sigaction now;
    sigaction(SIGUSR1, NULL, &now);
    printf("after: handler %s, SA_SIGINFO %d, SA_RESETHAND %d\n",
           now.sa_handler == SIG_DFL ? "SIG_DFL" : "other", !!(now.sa_flags & SA_SIGINFO),
           !!(now.sa_flags & SA_RESETHAND));

    int a = open("/dev/null", O_RDONLY), b = open("/dev/null", O_RDONLY);
    printf("close_range bad flags: %s\n", en(syscall(SYS_close_range, a, b, 0x80)));
    printf("close_range first > last: %s\n", en(syscall(SYS_close_range, b, a, 0)));
    printf("close_range CLOEXEC: %s\n", en(syscall(SYS_close_range, a, b, CLOSE_RANGE_CLOEXEC)));
    printf("  flags %d %d\n", fcntl(a, F_GETFD), fcntl(b, F_GETFD));
    printf("close_range UNSHARE: %s\n", en(syscall(SYS_close_range, a, a, CLOSE_RANGE_UNSHARE)));
    printf("  a open: %d, b open: %d\n", fcntl(a, F_GETFD) >= 0, fcntl(b, F_GETFD) >= 0);
    printf("close_range all above: %s\n", en(syscall(SYS_close_range, b, ~0U, 0)));
    printf("  b open: %d\n", fcntl(b, F_GETFD) >= 0);

    void *head = NULL;
    size_t len = 0;
    printf("get_robust_list self: %s len %zu\n", en(syscall(SYS_get_robust_list, 0, &head, &len)), len);
    printf("get_robust_list missing pid: %s\n", en(syscall(SYS_get_robust_list, 999999, &head, &len)));
    printf("get_robust_list bad pointer: %s\n", en(syscall(SYS_get_robust_list, 0, (void *)8, &len)));

    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n < 0) return 3;
    self[n] = 0;
    pid_t p = fork();
    if (p == 0) {
        char *none[] = {NULL};
        execve(self, none, environ);
        _exit(99);
    }
    int st;
    waitpid(p, &st, 0);
    printf("execve argc 0: exit %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);

    char link[64];
    snprintf(link, sizeof link, "/tmp/conf12-link-%d", getpid());
    symlink(self, link);
    p = fork();
    if (p == 0) {
        char *args[] = {"x", NULL};
        syscall(SYS_execveat, AT_FDCWD, link, args, environ, AT_SYMLINK_NOFOLLOW);
        printf("execveat NOFOLLOW of a symlink: %s\n", strerrorname_np(errno));
        _exit(0);
    }
    waitpid(p, &st, 0);
    printf("execveat bad flags: %s\n", en(syscall(SYS_execveat, AT_FDCWD, link, argv, environ, 0x4)));
    unlink(link);
    return 0;
}
