/* ptrace's access check asks for CAP_SYS_PTRACE in the target's user
 * namespace (Linux's ptrace_has_cap(tcred->user_ns, ...)) where ids do
 * not match, and in its address space's namespace (mm->user_ns, the one
 * of its last exec) where it is not dumpable, not in the initial one;
 * a capability held only in a namespace does not reach a target outside
 * it. Runs as root (it drops to uid 1000 itself). Prints facts. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

static void must(int ok, const char *what) {
    if (!ok) {
        printf("%s failed: %s\n", what, strerrorname_np(errno));
        exit(1);
    }
}

static void write_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY);
    must(fd >= 0, path);
    must(write(fd, text, strlen(text)) == (ssize_t)strlen(text), path);
    close(fd);
}

/* Makes a user namespace owned by the caller and maps its uid to 0. */
static void own_user_ns(void) {
    char map[64];
    uid_t uid = geteuid();
    must(unshare(CLONE_NEWUSER) == 0, "unshare(CLONE_NEWUSER)");
    snprintf(map, sizeof map, "0 %u 1", uid);
    write_file("/proc/self/uid_map", map);
}

/* The write end of the pipe the current target waits on: closing it
 * ends the target (a signal might not be allowed to). */
static int target_done = -1;

/* A child that runs `prep` (if any), makes itself dumpable or not, says
 * so on `ready` and waits until finish(). */
static pid_t target(void (*prep)(void), int dumpable) {
    int p[2], done[2];
    must(pipe(p) == 0 && pipe(done) == 0, "pipe");
    pid_t pid = fork();
    must(pid >= 0, "fork");
    if (pid == 0) {
        close(p[0]);
        close(done[1]);
        if (prep)
            prep();
        prctl(PR_SET_DUMPABLE, dumpable);
        char c = (char)('0' + prctl(PR_GET_DUMPABLE));
        if (write(p[1], &c, 1) != 1)
            _exit(1);
        while (read(done[0], &c, 1) != 0)
            ;
        _exit(0);
    }
    close(done[0]);
    target_done = done[1];
    close(p[1]);
    char c = '?';
    must(read(p[0], &c, 1) == 1, "read ready");
    close(p[0]);
    printf("  target dumpable %c\n", c);
    return pid;
}

static const char *attach(pid_t pid) {
    errno = 0;
    if (ptrace(PTRACE_ATTACH, pid, 0, 0) != 0)
        return strerrorname_np(errno);
    int st;
    waitpid(pid, &st, __WALL);
    ptrace(PTRACE_DETACH, pid, 0, 0);
    return "attached";
}

static void finish(pid_t pid) {
    close(target_done);
    waitpid(pid, NULL, __WALL);
}

static void become_user(void) {
    must(setgroups(0, NULL) == 0, "setgroups");
    must(setresgid(1000, 1000, 1000) == 0, "setresgid");
    must(setresuid(1000, 1000, 1000) == 0, "setresuid");
    prctl(PR_SET_DUMPABLE, 1);
}

/* Runs `fn` in a child: as root, or (in_ns) as uid 1000 in a user
 * namespace it made, whose maps root writes: ids 0-9 there are 1000-1009
 * outside. */
static void run_case(const char *name, void (*fn)(void), int in_ns) {
    printf("%s\n", name);
    fflush(stdout);
    int up[2], down[2];
    must(pipe(up) == 0 && pipe(down) == 0, "pipe");
    pid_t pid = fork();
    must(pid >= 0, "fork");
    if (pid == 0) {
        if (in_ns) {
            become_user();
            must(unshare(CLONE_NEWUSER) == 0, "unshare(CLONE_NEWUSER)");
            char c = 'u';
            must(write(up[1], &c, 1) == 1, "write up");
            must(read(down[0], &c, 1) == 1, "read down");
            must(setresgid(0, 0, 0) == 0, "setresgid in ns");
            must(setresuid(0, 0, 0) == 0, "setresuid in ns");
        }
        fn();
        fflush(stdout);
        _exit(0);
    }
    if (in_ns) {
        char c, path[64];
        must(read(up[0], &c, 1) == 1, "read up");
        snprintf(path, sizeof path, "/proc/%d/uid_map", pid);
        write_file(path, "0 1000 10");
        snprintf(path, sizeof path, "/proc/%d/gid_map", pid);
        write_file(path, "0 1000 10");
        must(write(down[1], &c, 1) == 1, "write down");
    }
    int st;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        printf("  case failed: status %#x\n", st);
    close(up[0]);
    close(up[1]);
    close(down[0]);
    close(down[1]);
}

static void to_uid_5(void) {
    must(setresuid(5, 5, 5) == 0, "setresuid(5)");
}

/* Root of a user namespace (uid 1000 outside) attaches to a dumpable
 * child whose uid there is 5: CAP_SYS_PTRACE in the child's namespace
 * stands in for matching ids. */
static void ns_root_attaches_other_uid(void) {
    pid_t t = target(to_uid_5, 1);
    printf("  attach: %s\n", attach(t));
    finish(t);
}

/* The same child made non-dumpable: its address space still belongs to
 * the initial namespace (made by exec there, copied by fork), where the
 * tracer holds nothing. */
static void ns_root_refused_when_not_dumpable(void) {
    pid_t t = target(to_uid_5, 0);
    printf("  attach: %s\n", attach(t));
    finish(t);
}

/* Without any user namespace, a non-dumpable child of the same uid is
 * out of reach. */
static void plain_user_is_refused(void) {
    become_user();
    pid_t t = target(NULL, 0);
    printf("  attach: %s\n", attach(t));
    finish(t);
}

static void to_uid_2000(void) {
    must(setresuid(2000, 2000, 2000) == 0, "setresuid(2000)");
}

/* Capabilities in one's own namespace do not reach a target in the
 * initial one: the child (uid 2000, dumpable) stays there, the parent
 * moves into a new namespace afterwards. */
static void ns_caps_do_not_reach_outside(void) {
    pid_t t = target(to_uid_2000, 1);
    become_user();
    own_user_ns();
    printf("  attach: %s\n", attach(t));
    finish(t);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (geteuid() != 0) {
        printf("SKIP: needs root\n");
        return 0;
    }
    run_case("namespace root attaches to another uid there", ns_root_attaches_other_uid, 1);
    run_case("namespace root refused by a non-dumpable target", ns_root_refused_when_not_dumpable, 1);
    run_case("plain user is refused", plain_user_is_refused, 0);
    run_case("namespace caps do not reach outside", ns_caps_do_not_reach_outside, 0);
    printf("result: OK\n");
    return 0;
}
