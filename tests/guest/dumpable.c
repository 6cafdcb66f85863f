/* Dumpability follows credential changes (Linux's commit_creds with
 * fs.suid_dumpable 0): changing the effective or filesystem uid or gid
 * makes the process non-dumpable, so PR_GET_DUMPABLE says 0, its
 * /proc/self files belong to root and a same-uid tracer gets EPERM;
 * PR_SET_DUMPABLE 1 restores it; dropping capabilities or setgroups
 * does not, nor does making a user namespace; exec with the effective gid unlike the real one leaves the
 * new image non-dumpable. Runs as root. Prints facts. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void show(const char *what) {
    struct stat st;
    int d = prctl(PR_GET_DUMPABLE);
    if (stat("/proc/self/status", &st) != 0) {
        printf("%s: dumpable %d, stat /proc/self/status: %s\n", what, d, strerror(errno));
        return;
    }
    printf("%s: dumpable %d, /proc/self/status owner %u:%u\n", what, d, st.st_uid, st.st_gid);
}

static void must(int ok, const char *what) {
    if (!ok) {
        printf("%s failed: %s\n", what, strerror(errno));
        exit(1);
    }
}

/* A child with uids 1000 tries PTRACE_ATTACH on `pid`; the result. */
static const char *attach_as_user(pid_t pid) {
    pid_t b = fork();
    must(b >= 0, "fork");
    if (b == 0) {
        if (setresgid(1000, 1000, 1000) != 0 || setresuid(1000, 1000, 1000) != 0)
            _exit(100);
        if (ptrace(PTRACE_ATTACH, pid, 0, 0) != 0)
            _exit(errno == EPERM ? 1 : 101);
        int st;
        if (waitpid(pid, &st, 0) != pid)
            _exit(102);
        ptrace(PTRACE_DETACH, pid, 0, 0);
        _exit(0);
    }
    int st;
    must(waitpid(b, &st, 0) == b, "waitpid");
    if (!WIFEXITED(st))
        return "tracer died";
    switch (WEXITSTATUS(st)) {
    case 0:
        return "attached";
    case 1:
        return "EPERM";
    default:
        return "unexpected error";
    }
}

static void ptrace_check(void) {
    int ready[2], go[2];
    must(pipe(ready) == 0 && pipe(go) == 0, "pipe");
    pid_t a = fork();
    must(a >= 0, "fork");
    if (a == 0) {
        char c;
        if (setresgid(1000, 1000, 1000) != 0 || setresuid(1000, 1000, 1000) != 0)
            _exit(1);
        c = '0' + prctl(PR_GET_DUMPABLE);
        if (write(ready[1], &c, 1) != 1 || read(go[0], &c, 1) != 1)
            _exit(1);
        prctl(PR_SET_DUMPABLE, 1);
        c = '0' + prctl(PR_GET_DUMPABLE);
        if (write(ready[1], &c, 1) != 1)
            _exit(1);
        for (;;)
            pause();
    }
    char c = '?';
    must(read(ready[0], &c, 1) == 1, "read");
    printf("target after setresuid(1000): dumpable %c\n", c);
    printf("same-uid attach to it: %s\n", attach_as_user(a));
    must(write(go[1], "g", 1) == 1, "write");
    must(read(ready[0], &c, 1) == 1, "read");
    printf("target after PR_SET_DUMPABLE 1: dumpable %c\n", c);
    printf("same-uid attach to it: %s\n", attach_as_user(a));
    kill(a, SIGKILL);
    waitpid(a, NULL, 0);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "after-exec") == 0) {
        show("exec with egid 1000, rgid 0");
        return 0;
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    show("start");
    must(setresuid(-1, 1000, -1) == 0, "setresuid(-1, 1000, -1)");
    show("after setresuid(-1, 1000, -1)");
    must(prctl(PR_SET_DUMPABLE, 1) == 0, "PR_SET_DUMPABLE 1");
    show("after PR_SET_DUMPABLE 1");
    must(setresuid(-1, 0, -1) == 0, "setresuid(-1, 0, -1)");
    show("after setresuid back to 0");
    must(prctl(PR_SET_DUMPABLE, 1) == 0, "PR_SET_DUMPABLE 1");
    show("after PR_SET_DUMPABLE 1 as root");
    must(setresuid(-1, 0, -1) == 0, "setresuid(-1, 0, -1)");
    show("after setresuid to the same ids");
    must(setegid(1000) == 0, "setegid(1000)");
    show("after setegid(1000)");
    must(setegid(0) == 0 && prctl(PR_SET_DUMPABLE, 1) == 0, "setegid(0)");
    setfsuid(1000);
    show("after setfsuid(1000)");
    setfsuid(0);
    must(prctl(PR_SET_DUMPABLE, 1) == 0, "PR_SET_DUMPABLE 1");
    gid_t groups[] = {5, 6};
    must(setgroups(2, groups) == 0, "setgroups");
    show("after setgroups");
    printf("PR_SET_DUMPABLE 2: %d\n", prctl(PR_SET_DUMPABLE, 2));

    /* Dropping a permitted capability: a subset, dumpable stays. */
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    must(syscall(SYS_capget, &h, d) == 0, "capget");
    d[0].permitted &= ~(1u << CAP_NET_RAW);
    d[0].effective &= ~(1u << CAP_NET_RAW);
    d[0].inheritable &= ~(1u << CAP_NET_RAW);
    must(syscall(SYS_capset, &h, d) == 0, "capset");
    show("after capset dropping CAP_NET_RAW");

    ptrace_check();

    /* A new user namespace owned by the caller: its full set there is
     * within what the caller has, dumpable stays (root and a user). */
    for (int user = 0; user < 2; user++) {
        pid_t u = fork();
        must(u >= 0, "fork");
        if (u == 0) {
            if (user && (setresgid(1000, 1000, 1000) != 0 || setresuid(1000, 1000, 1000) != 0 ||
                         prctl(PR_SET_DUMPABLE, 1) != 0))
                _exit(1);
            if (unshare(CLONE_NEWUSER) != 0) {
                printf("unshare(CLONE_NEWUSER) as %s: %s\n", user ? "user" : "root", strerror(errno));
                _exit(0);
            }
            printf("after unshare(CLONE_NEWUSER) as %s: dumpable %d\n", user ? "user" : "root",
                   prctl(PR_GET_DUMPABLE));
            _exit(0);
        }
        must(waitpid(u, NULL, 0) == u, "waitpid");
    }

    pid_t e = fork();
    must(e >= 0, "fork");
    if (e == 0) {
        if (setresgid(-1, 1000, -1) != 0)
            _exit(1);
        char *args[] = {argv[0], "after-exec", NULL};
        execv("/proc/self/exe", args);
        printf("execv: %s\n", strerror(errno));
        _exit(1);
    }
    int st;
    must(waitpid(e, &st, 0) == e, "waitpid");
    printf("exec child: exit %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    return 0;
}
