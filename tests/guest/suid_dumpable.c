/* fs.suid_dumpable's three modes (run as root; it changes a global
 * sysctl, so the test runs it under ruml only): 0 (a credential change
 * makes the process undumpable), 1 (it stays dumpable: cores as the
 * process), 2 (PR_GET_DUMPABLE says 2, /proc/self belongs to root, a
 * core is written as root only to an absolute core_pattern and never
 * over an existing file). Fork copies dumpability; PR_SET_DUMPABLE 2 is
 * EINVAL. Prints facts only. Argument: a directory for the cores. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *dir;

static int put(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_TRUNC);
    if (fd < 0)
        return -errno;
    int r = write(fd, text, strlen(text)) < 0 ? -errno : 0;
    close(fd);
    return r;
}

static void show(const char *path) {
    char b[256] = "";
    int fd = open(path, O_RDONLY);
    int n = fd < 0 ? 0 : read(fd, b, sizeof b - 1);
    if (n > 0)
        b[n] = 0;
    b[strcspn(b, "\n")] = 0;
    printf("%s: %s\n", path, b);
    if (fd >= 0)
        close(fd);
}

static void set_mode(const char *v) {
    int r = put("/proc/sys/fs/suid_dumpable", v);
    printf("write %s: %s\n", v, r ? strerrorname_np(-r) : "ok");
}

/* A child that changes its effective uid to 1000, reports its
 * dumpability, its fork child's and /proc/self's owner, then dies of
 * SIGSEGV in `dir`; the parent reports the core bit and the file. */
static void crash(const char *what, const char *core) {
    unlink(core);
    pid_t pid = fork();
    if (pid == 0) {
        struct rlimit rl = {RLIM_INFINITY, RLIM_INFINITY};
        setrlimit(RLIMIT_CORE, &rl);
        if (chdir(dir))
            _exit(3);
        if (setresuid(-1, 1000, -1))
            _exit(4);
        struct stat st;
        stat("/proc/self/status", &st);
        int gc = -1;
        pid_t c = fork();
        if (c == 0)
            _exit(prctl(PR_GET_DUMPABLE));
        int cs;
        waitpid(c, &cs, 0);
        gc = WEXITSTATUS(cs);
        printf("%s: dumpable %d, fork child %d, /proc/self/status owner %u\n", what,
               prctl(PR_GET_DUMPABLE), gc, st.st_uid);
        fflush(stdout);
        raise(SIGSEGV);
        _exit(5);
    }
    int status;
    waitpid(pid, &status, 0);
    struct stat st;
    int have = stat(core, &st) == 0;
    printf("%s: signal %d, core dumped %d, file %d", what, WTERMSIG(status),
           WCOREDUMP(status) ? 1 : 0, have);
    if (have)
        printf(", owner %u, mode %o", st.st_uid, st.st_mode & 07777);
    printf("\n");
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    dir = argc > 1 ? argv[1] : "/tmp";
    chmod(dir, 01777);
    char rel[512], abs_core[512];
    snprintf(rel, sizeof rel, "%s/core", dir);
    snprintf(abs_core, sizeof abs_core, "%s/abs-core", dir);

    show("/proc/sys/fs/suid_dumpable");
    set_mode("3");
    set_mode("-1");
    set_mode("x");
    printf("PR_SET_DUMPABLE 2: %s\n",
           prctl(PR_SET_DUMPABLE, 2) ? strerrorname_np(errno) : "ok");
    put("/proc/sys/kernel/core_pattern", "core");

    crash("mode 0", rel);

    set_mode("1");
    show("/proc/sys/fs/suid_dumpable");
    crash("mode 1", rel);

    set_mode("2");
    crash("mode 2, relative pattern", rel);
    char pat[600];
    snprintf(pat, sizeof pat, "%s", abs_core);
    put("/proc/sys/kernel/core_pattern", pat);
    show("/proc/sys/kernel/core_pattern");
    crash("mode 2, absolute pattern", abs_core);
    /* An existing file is not replaced (O_EXCL). */
    int fd = open(abs_core, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    close(fd);
    pid_t pid = fork();
    if (pid == 0) {
        struct rlimit rl = {RLIM_INFINITY, RLIM_INFINITY};
        setrlimit(RLIMIT_CORE, &rl);
        if (setresuid(-1, 1000, -1))
            _exit(4);
        raise(SIGSEGV);
        _exit(5);
    }
    int status;
    waitpid(pid, &status, 0);
    struct stat st;
    stat(abs_core, &st);
    printf("mode 2, existing file: core dumped %d, size %lld\n", WCOREDUMP(status) ? 1 : 0,
           (long long)st.st_size);
    /* Without a credential change a process stays dumpable as itself. */
    pid = fork();
    if (pid == 0) {
        printf("mode 2, unchanged credentials: dumpable %d\n", prctl(PR_GET_DUMPABLE));
        _exit(0);
    }
    waitpid(pid, &status, 0);

    put("/proc/sys/kernel/core_pattern", "core");
    set_mode("0");
    unlink(rel);
    unlink(abs_core);
    return 0;
}
