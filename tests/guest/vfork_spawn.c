/* vfork + exec and posix_spawn: the vfork child shares the parent's memory
 * and the parent is suspended until the child execs or exits; exec of a
 * missing path makes the child _exit(127); posix_spawn (glibc uses
 * clone(CLONE_VM|CLONE_VFORK) and reports exec failures through the shared
 * memory) returns ENOENT for a missing file, runs file actions, sets the
 * child's signal mask and defaults. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int failures;
#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        printf(__VA_ARGS__);                                                   \
        if (cond) {                                                            \
            printf(": ok\n");                                                  \
        } else {                                                               \
            printf(": FAIL (%s)\n", #cond);                                    \
            failures++;                                                        \
        }                                                                      \
    } while (0)

static volatile int shared_var;

static int status_of(pid_t pid) {
    int st = 0;
    if (waitpid(pid, &st, 0) != pid)
        return -1;
    return st;
}

static const char *ename(int e) {
    switch (e) {
    case 0: return "0";
    case ENOENT: return "ENOENT";
    case EACCES: return "EACCES";
    case ENOEXEC: return "ENOEXEC";
    default: return strerror(e);
    }
}

/* Reads everything from fd into buf. */
static size_t slurp(int fd, char *buf, size_t cap) {
    size_t n = 0;
    ssize_t r;
    while (n < cap - 1 && (r = read(fd, buf + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    buf[n] = 0;
    return n;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && strcmp(argv[1], "report-mask") == 0) {
        /* Spawned copy of ourselves: report the mask and dispositions. */
        sigset_t m;
        sigprocmask(SIG_SETMASK, NULL, &m);
        struct sigaction sa;
        sigaction(SIGUSR2, NULL, &sa);
        printf("child: SIGUSR1 blocked %s, SIGTERM blocked %s, SIGUSR2 %s\n",
               sigismember(&m, SIGUSR1) ? "yes" : "no",
               sigismember(&m, SIGTERM) ? "yes" : "no",
               sa.sa_handler == SIG_DFL ? "default" : "ignored");
        return 0;
    }

    /* 1. vfork + exec /bin/true. */
    shared_var = 0;
    pid_t pid = vfork();
    if (pid == 0) {
        shared_var = 1; /* visible to the parent: memory is shared */
        execl("/bin/true", "true", (char *)NULL);
        _exit(127);
    }
    int st = status_of(pid);
    CHECK(pid > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "vfork+exec /bin/true: exit 0");
    CHECK(shared_var == 1, "vfork child's store is visible to the parent");

    /* 2. vfork + exec of a missing path: _exit(127). */
    shared_var = 0;
    pid = vfork();
    if (pid == 0) {
        execl("/nonexistent/definitely-not-here", "x", (char *)NULL);
        shared_var = errno; /* the parent sees why */
        _exit(127);
    }
    st = status_of(pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 127, "vfork+exec missing path: exit 127");
    printf("exec error seen through shared memory: %s\n", ename(shared_var));

    /* 3. The parent is suspended until the child execs or exits: the child
     * sleeps before _exit, and its store is seen right after vfork returns. */
    shared_var = 0;
    pid = vfork();
    if (pid == 0) {
        usleep(100 * 1000);
        shared_var = 2;
        _exit(0);
    }
    CHECK(shared_var == 2, "parent resumed only after the child's _exit");
    status_of(pid);

    /* 4. posix_spawn /bin/echo with stdout redirected into a pipe. */
    int p[2];
    if (pipe(p) != 0)
        return 1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_addclose(&fa, p[0]);
    posix_spawn_file_actions_addclose(&fa, p[1]);
    char *echo_argv[] = {"echo", "hello", "spawn", NULL};
    int rc = posix_spawn(&pid, "/bin/echo", &fa, NULL, echo_argv, environ);
    close(p[1]);
    char out[256];
    slurp(p[0], out, sizeof out);
    close(p[0]);
    st = status_of(pid);
    printf("posix_spawn echo: rc=%s output=\"%s\"\n", ename(rc), strtok(out, "\n"));
    CHECK(rc == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "posix_spawn /bin/echo");
    posix_spawn_file_actions_destroy(&fa);

    /* 5. posix_spawn of a missing file fails with ENOENT in the parent. */
    char *none_argv[] = {"none", NULL};
    pid = 0;
    rc = posix_spawn(&pid, "/nonexistent/nope", NULL, NULL, none_argv, environ);
    printf("posix_spawn missing file: %s\n", ename(rc));
    CHECK(rc == ENOENT, "posix_spawn reports ENOENT");
    int dummy;
    errno = 0;
    CHECK(waitpid(-1, &dummy, WNOHANG) == -1 && errno == ECHILD,
          "no child left behind");

    /* 6. posix_spawnp searches PATH. */
    char *true_argv[] = {"true", NULL};
    rc = posix_spawnp(&pid, "true", NULL, NULL, true_argv, environ);
    st = status_of(pid);
    CHECK(rc == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "posix_spawnp true");
    char *false_argv[] = {"false", NULL};
    rc = posix_spawnp(&pid, "false", NULL, NULL, false_argv, environ);
    st = status_of(pid);
    CHECK(rc == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 1, "posix_spawnp false: exit 1");

    /* 7. A file action that fails (open of a missing file) fails the spawn. */
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/nonexistent/input", O_RDONLY, 0);
    rc = posix_spawn(&pid, "/bin/true", &fa, NULL, true_argv, environ);
    printf("posix_spawn with failing addopen: %s\n", ename(rc));
    CHECK(rc == ENOENT, "failing file action reported");
    posix_spawn_file_actions_destroy(&fa);

    /* 8. Spawn attributes: signal mask and default dispositions. */
    signal(SIGUSR2, SIG_IGN);
    posix_spawnattr_t at;
    posix_spawnattr_init(&at);
    sigset_t m, defs;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR1);
    sigemptyset(&defs);
    sigaddset(&defs, SIGUSR2);
    posix_spawnattr_setsigmask(&at, &m);
    posix_spawnattr_setsigdefault(&at, &defs);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    if (pipe(p) != 0)
        return 1;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_addclose(&fa, p[0]);
    posix_spawn_file_actions_addclose(&fa, p[1]);
    char *self_argv[] = {argv[0], "report-mask", NULL};
    rc = posix_spawn(&pid, argv[0], &fa, &at, self_argv, environ);
    close(p[1]);
    slurp(p[0], out, sizeof out);
    close(p[0]);
    st = status_of(pid);
    printf("%s", out);
    CHECK(rc == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0 &&
              strstr(out, "SIGUSR1 blocked yes, SIGTERM blocked no, SIGUSR2 default"),
          "spawn attributes applied");
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);

    printf("result: %s\n", failures ? "FAIL" : "OK");
    return failures ? 1 : 0;
}
