/* SECCOMP_RET_TRACE: without a tracer the call fails with ENOSYS; with a
 * tracer that set PTRACE_O_TRACESECCOMP it stops with
 * PTRACE_EVENT_SECCOMP (the filter's data as the event message), and the
 * tracer may let the call run, change it, or skip it. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

static void install(void) {
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE | 42),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getuid, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE | 7),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog p = {sizeof f / sizeof f[0], f};
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &p)) {
        perror("seccomp");
        _exit(1);
    }
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    pid_t c = fork();
    if (c == 0) {
        install();
        long r = syscall(SYS_getppid);
        printf("untraced getppid: %ld %s\n", r, r < 0 ? strerrorname_np(errno) : "");
        _exit(0);
    }
    int st;
    waitpid(c, &st, 0);
    c = fork();
    if (c == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        raise(SIGSTOP);
        install();
        long r = syscall(SYS_getppid);
        printf("traced getppid ran: %d\n", r == getppid());
        errno = 0;
        r = syscall(SYS_getuid);
        printf("getuid skipped by the tracer: %ld %s\n", r, r < 0 ? strerrorname_np(errno) : "");
        _exit(0);
    }
    waitpid(c, &st, 0);
    ptrace(PTRACE_SETOPTIONS, c, 0, PTRACE_O_TRACESECCOMP);
    ptrace(PTRACE_CONT, c, 0, 0);
    for (;;) {
        if (waitpid(c, &st, 0) != c || WIFEXITED(st) || WIFSIGNALED(st))
            break;
        if (WIFSTOPPED(st) && (st >> 16) == PTRACE_EVENT_SECCOMP) {
            unsigned long msg = 0;
            ptrace(PTRACE_GETEVENTMSG, c, 0, &msg);
            struct user_regs_struct regs;
            ptrace(PTRACE_GETREGS, c, 0, &regs);
            printf("seccomp stop: data %lu, nr is getuid %d\n", msg, regs.orig_rax == SYS_getuid);
            if (msg == 7) {
                regs.orig_rax = -1; /* skip, with our own result */
                regs.rax = -EPERM;
                ptrace(PTRACE_SETREGS, c, 0, &regs);
            }
        }
        ptrace(PTRACE_CONT, c, 0, 0);
    }
    printf("child exit %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    return 0;
}
