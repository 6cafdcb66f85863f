/* An init that signals itself: Linux drops a signal sent to a pid
 * namespace's init from inside it when init neither handles nor blocks
 * it (SIGNAL_UNKILLABLE), SIGABRT and SIGKILL included, so UML's
 * uml_abort() loop `for (;;) if (kill(getpid(), SIGABRT) < 0) exit(127);`
 * spins for ever when UML is pid 1 (what nesting::uml_inside_ruml met
 * when UML lost its post-halt timer race). Any other process dies of the
 * same call. A blocked signal stays pending. From the parent namespace,
 * SIGTERM is dropped too but SIGKILL kills. Run natively (root: a new
 * pid namespace) and inside ruml; the output must be the same. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static void status(const char *what, pid_t p) {
    int st;
    if (waitpid(p, &st, 0) != p) {
        printf("%s: waitpid %s\n", what, strerror(errno));
        return;
    }
    if (WIFEXITED(st))
        printf("%s: exited %d\n", what, WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        printf("%s: killed by signal %d\n", what, WTERMSIG(st));
}

static int to_init[2], from_init[2];

static void as_init(void) {
    printf("init: pid %d\n", (int)getpid());
    long r = kill(getpid(), SIGABRT);
    printf("init: kill(self, SIGABRT) = %ld, alive\n", r);
    r = raise(SIGABRT);
    printf("init: raise(SIGABRT) = %ld, alive\n", r);
    int fails = 0;
    for (int i = 0; i < 1000; i++)
        if (kill(getpid(), SIGABRT) < 0)
            fails++;
    printf("init: 1000 more kill(self, SIGABRT), %d failed, alive\n", fails);
    r = kill(getpid(), SIGKILL);
    printf("init: kill(self, SIGKILL) = %ld, alive\n", r);
    sigset_t set, pend;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    kill(getpid(), SIGUSR1);
    sigpending(&pend);
    printf("init: blocked SIGUSR1 pending: %d\n", sigismember(&pend, SIGUSR1));
    int sig = 0;
    sigwait(&set, &sig);
    printf("init: sigwait took %d\n", sig);
    pid_t p = fork();
    if (p == 0) {
        kill(getpid(), SIGABRT);
        _exit(0);
    }
    status("init's child kill(self, SIGABRT)", p);
    /* The parent's SIGTERM comes before this byte. */
    char c;
    if (write(from_init[1], "r", 1) != 1 || read(to_init[0], &c, 1) != 1)
        _exit(3);
    printf("init: alive after the parent's SIGTERM\n");
    if (write(from_init[1], "r", 1) != 1)
        _exit(3);
    for (;;)
        pause();
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    if (pipe(to_init) != 0 || pipe(from_init) != 0)
        return 1;
    if (unshare(CLONE_NEWPID) != 0) {
        printf("unshare(CLONE_NEWPID): %s\n", strerror(errno));
        return 1;
    }
    pid_t p = fork();
    if (p < 0) {
        perror("fork");
        return 1;
    }
    if (p == 0) {
        as_init();
        _exit(0);
    }
    char c;
    if (read(from_init[0], &c, 1) != 1)
        return 1;
    printf("parent: kill(init, SIGTERM) = %d\n", kill(p, SIGTERM));
    if (write(to_init[1], "g", 1) != 1 || read(from_init[0], &c, 1) != 1)
        return 1;
    printf("parent: kill(init, SIGKILL) = %d\n", kill(p, SIGKILL));
    status("namespace init", p);
    return 0;
}
