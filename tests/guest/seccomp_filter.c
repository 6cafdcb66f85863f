/* Guest seccomp: filters turning getpid into EPERM and kill into a trap
 * (the SIGSYS handler prints its siginfo), the other actions, stacking
 * and precedence, inheritance across fork and exec, no_new_privs rules,
 * strict mode, bad filters, and a USER_NOTIF supervisor answering a
 * child's calls. Run as root; every test runs in a child so the
 * filters stay there. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define LOAD_NR BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr))
#define ON(nr, ret) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), BPF_STMT(BPF_RET | BPF_K, (ret))
#define ALLOW BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)
#define CHECK_ARCH                                                                  \
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),        \
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),              \
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS)

static long sc(unsigned op, unsigned flags, void *args) {
    return syscall(SYS_seccomp, op, flags, args);
}

static long install(struct sock_filter *f, unsigned short n, unsigned flags) {
    struct sock_fprog p = {n, f};
    return sc(SECCOMP_SET_MODE_FILTER, flags, &p);
}

/* Output of the USER_NOTIF test is collected and printed once the other
 * side is done, so that the two processes' lines come in a fixed order. */
static int buffering;
static char logbuf[16384];
static size_t loglen;

static void out(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (buffering && loglen < sizeof logbuf) {
        int n = vsnprintf(logbuf + loglen, sizeof logbuf - loglen, fmt, ap);
        if (n > 0)
            loglen += n;
        if (loglen > sizeof logbuf)
            loglen = sizeof logbuf;
    } else {
        vprintf(fmt, ap);
    }
    va_end(ap);
}

static void flush_log(void) {
    fwrite(logbuf, 1, loglen, stdout);
    fflush(stdout);
    loglen = 0;
}

static void res(const char *what, long r) {
    int e = errno;
    out("%-34s %ld %s\n", what, r, r < 0 ? strerror(e) : "");
}

static void status(const char *what) {
    int st = 0;
    wait(&st);
    if (WIFSIGNALED(st))
        printf("%s: killed by signal %d core %d\n", what, WTERMSIG(st), WCOREDUMP(st) ? 1 : 0);
    else
        printf("%s: exit %d\n", what, WEXITSTATUS(st));
    fflush(stdout);
}

static void seccomp_lines(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "Seccomp", 7) == 0 || strncmp(line, "NoNewPrivs", 10) == 0)
            fputs(line, stdout);
    if (f)
        fclose(f);
}

static void on_sigsys(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    printf("SIGSYS: signo=%d code=%d errno=%d syscall=%d arch=%#x call_addr_set=%d\n", si->si_signo,
           si->si_code, si->si_errno, si->si_syscall, si->si_arch, si->si_call_addr != NULL);
}

static void getpid_kill_filter(const char *self) {
    if (fork() == 0) {
        struct sock_filter f[] = {
            CHECK_ARCH,
            LOAD_NR,
            ON(SYS_getpid, SECCOMP_RET_ERRNO | EPERM),
            ON(SYS_kill, SECCOMP_RET_TRAP | 0x42),
            ON(SYS_getppid, SECCOMP_RET_ERRNO | 0xffff),
            ON(SYS_uname, SECCOMP_RET_TRACE | 7),
            ON(SYS_getuid, SECCOMP_RET_LOG),
            ON(SYS_umask, SECCOMP_RET_USER_NOTIF),
            ALLOW,
        };
        struct sigaction sa = {0};
        sa.sa_sigaction = on_sigsys;
        sa.sa_flags = SA_SIGINFO;
        sigaction(SIGSYS, &sa, NULL);
        res("nnp", prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
        res("install", install(f, sizeof f / sizeof f[0], 0));
        res("getpid", syscall(SYS_getpid));
        res("kill (returns rax = nr)", syscall(SYS_kill, 1, 0));
        res("getppid (errno capped)", syscall(SYS_getppid));
        errno = 0;
        res("uname (TRACE, no tracer)", syscall(SYS_uname, NULL));
        res("getuid (LOG)", syscall(SYS_getuid));
        res("umask (USER_NOTIF, no listener)", syscall(SYS_umask, 022));
        res("prctl GET_SECCOMP", prctl(PR_GET_SECCOMP, 0, 0, 0, 0));
        res("strict over filter", sc(SECCOMP_SET_MODE_STRICT, 0, NULL));
        seccomp_lines();
        fflush(stdout);
        /* Inherited by fork... */
        if (fork() == 0) {
            res("child getpid", syscall(SYS_getpid));
            fflush(stdout);
            /* ...and kept across exec. */
            execl(self, self, "after-exec", (char *)NULL);
            _exit(99);
        }
        status("forked child");
        _exit(0);
    }
    status("filter child");
}

static void stacking(void) {
    if (fork() == 0) {
        struct sock_filter errno5[] = {LOAD_NR, ON(SYS_getppid, SECCOMP_RET_ERRNO | 5),
                                       ON(SYS_getpgrp, SECCOMP_RET_ERRNO | 5),
                                       ON(SYS_getsid, SECCOMP_RET_ERRNO | 5), ALLOW};
        struct sock_filter newer[] = {LOAD_NR, ON(SYS_getppid, SECCOMP_RET_ERRNO | 6),
                                      ON(SYS_getpgrp, SECCOMP_RET_LOG),
                                      ON(SYS_getsid, SECCOMP_RET_KILL_PROCESS), ALLOW};
        prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        res("install older", install(errno5, sizeof errno5 / sizeof errno5[0], 0));
        res("install newer (LOG flag)", install(newer, sizeof newer / sizeof newer[0], SECCOMP_FILTER_FLAG_LOG));
        res("getppid: errno 6 vs 5, newest wins", syscall(SYS_getppid));
        res("getpgrp: ERRNO beats LOG", syscall(SYS_getpgrp));
        seccomp_lines();
        fflush(stdout);
        syscall(SYS_getsid, 0);
        printf("not reached\n");
        _exit(0);
    }
    status("KILL_PROCESS beats ERRNO");
    if (fork() == 0) {
        struct sock_filter f[] = {LOAD_NR, ON(SYS_getpid, SECCOMP_RET_KILL_THREAD), ALLOW};
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        install(f, sizeof f / sizeof f[0], 0);
        syscall(SYS_getpid);
        _exit(0);
    }
    status("KILL_THREAD, only thread");
    if (fork() == 0) {
        struct sock_filter f[] = {LOAD_NR, ON(SYS_getpid, SECCOMP_RET_TRAP), ALLOW};
        prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        signal(SIGSYS, SIG_IGN);
        install(f, sizeof f / sizeof f[0], 0);
        syscall(SYS_getpid);
        _exit(0);
    }
    status("TRAP with SIGSYS ignored");
}

static void nnp_rules(void) {
    struct sock_filter f[] = {ALLOW};
    if (fork() == 0) {
        res("get nnp", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
        res("set nnp 2", prctl(PR_SET_NO_NEW_PRIVS, 2, 0, 0, 0));
        res("root without nnp", install(f, 1, 0));
        setresuid(1000, 1000, 1000);
        res("user without nnp", install(f, 1, 0));
        if (fork() == 0) {
            /* Strict mode needs neither no_new_privs nor privilege. */
            long r = prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT, 0, 0, 0);
            syscall(SYS_write, 1, r == 0 ? "user strict: 0\n" : "user strict: failed\n", r == 0 ? 15 : 20);
            syscall(SYS_exit, 3);
        }
        status("user strict child");
        res("set nnp", prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
        res("user with nnp", install(f, 1, 0));
        fflush(stdout);
        if (fork() == 0) {
            res("child nnp", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
            fflush(stdout);
            _exit(0);
        }
        status("nnp child");
        _exit(0);
    }
    status("nnp rules");
}

static void strict_mode(void) {
    if (fork() == 0) {
        res("strict, flags", sc(SECCOMP_SET_MODE_STRICT, 1, NULL));
        res("strict, args", sc(SECCOMP_SET_MODE_STRICT, 0, (void *)8));
        fflush(stdout);
        if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT, 0, 0, 0) == 0) {
            static const char msg[] = "write works in strict mode\n";
            syscall(SYS_write, 1, msg, sizeof msg - 1);
            syscall(SYS_getpid);
            syscall(SYS_write, 1, "not reached\n", 12);
        }
        syscall(SYS_exit, 0);
    }
    status("strict child");
}

static void bad_filters(void) {
    static struct sock_filter big[4096];
    struct sock_filter ok[] = {ALLOW};
    if (fork() == 0) {
        prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        struct sock_filter bad_op[] = {BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 0), ALLOW};
        struct sock_filter unaligned[] = {BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 2), ALLOW};
        struct sock_filter past[] = {BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 64), ALLOW};
        struct sock_filter jump[] = {BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 3, 0), ALLOW};
        struct sock_filter noret[] = {BPF_STMT(BPF_LD | BPF_IMM, 0)};
        struct sock_filter mem[] = {BPF_STMT(BPF_LD | BPF_MEM, 3), ALLOW};
        struct sock_filter div0[] = {BPF_STMT(BPF_ALU | BPF_DIV | BPF_K, 0), ALLOW};
        struct sock_filter mod[] = {BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, 3), ALLOW};
        struct sock_fprog p0 = {0, ok};
        struct sock_fprog pbad = {1, (struct sock_filter *)8};
        res("len 0", sc(SECCOMP_SET_MODE_FILTER, 0, &p0));
        res("len 4097", install(big, 4097 > 65535 ? 0 : 4097, 0));
        res("null fprog", sc(SECCOMP_SET_MODE_FILTER, 0, NULL));
        res("bad filter pointer", sc(SECCOMP_SET_MODE_FILTER, 0, &pbad));
        res("LD B ABS", install(bad_op, 2, 0));
        res("unaligned load", install(unaligned, 2, 0));
        res("load past seccomp_data", install(past, 2, 0));
        res("jump out of range", install(jump, 2, 0));
        res("no RET", install(noret, 1, 0));
        res("load of unset memory", install(mem, 2, 0));
        res("division by 0", install(div0, 2, 0));
        res("MOD", install(mod, 2, 0));
        res("unknown flags", install(ok, 1, 1u << 20));
        res("TSYNC|NEW_LISTENER", install(ok, 1, SECCOMP_FILTER_FLAG_TSYNC | SECCOMP_FILTER_FLAG_NEW_LISTENER));
        res("unknown op", sc(9, 0, NULL));
        unsigned action = SECCOMP_RET_USER_NOTIF;
        res("action avail USER_NOTIF", sc(SECCOMP_GET_ACTION_AVAIL, 0, &action));
        action = 0x00010000;
        res("action avail 0x10000", sc(SECCOMP_GET_ACTION_AVAIL, 0, &action));
        struct seccomp_notif_sizes sizes;
        res("notif sizes", sc(SECCOMP_GET_NOTIF_SIZES, 0, &sizes));
        printf("sizes %d %d %d\n", sizes.seccomp_notif, sizes.seccomp_notif_resp, sizes.seccomp_data);
        /* The total per path is bounded: the eighth 4096-insn filter fails. */
        for (int i = 0; i < 4095; i++)
            big[i] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_IMM, i);
        big[4095] = (struct sock_filter)ALLOW;
        for (int i = 1; i <= 8; i++) {
            long r = install(big, 4096, 0);
            if (r != 0) {
                printf("filter %d of 4096 insns: %ld %s\n", i, r, strerror(errno));
                break;
            }
        }
        fflush(stdout);
        _exit(0);
    }
    status("bad filters");
}

static void on_usr2(int sig) {
    (void)sig;
    static const char m[] = "SIGUSR2 handler\n";
    write(1, m, sizeof m - 1);
}

/* USER_NOTIF: the parent supervises its child's umask/getppid/getuid/getgid. */
static void user_notif(void) {
    if (fork() != 0) {
        status("supervisor");
        return;
    }
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    struct sock_filter f[] = {LOAD_NR,
                              ON(SYS_umask, SECCOMP_RET_USER_NOTIF),
                              ON(SYS_getppid, SECCOMP_RET_USER_NOTIF),
                              ON(SYS_getuid, SECCOMP_RET_USER_NOTIF),
                              ON(SYS_getgid, SECCOMP_RET_USER_NOTIF),
                              ALLOW};
    int lfd = install(f, sizeof f / sizeof f[0], SECCOMP_FILTER_FLAG_NEW_LISTENER);
    printf("listener fd > 2: %d, cloexec: %d\n", lfd > 2, (fcntl(lfd, F_GETFD) & FD_CLOEXEC) != 0);
    res("second listener", install(f, sizeof f / sizeof f[0], SECCOMP_FILTER_FLAG_NEW_LISTENER));
    fflush(stdout);
    buffering = 1;
    pid_t kid = fork();
    if (kid == 0) {
        close(lfd);
        res("child umask (answered 4242)", syscall(SYS_umask, 077));
        res("child getppid (answered EPERM)", syscall(SYS_getppid));
        res("child getuid (CONTINUE)", syscall(SYS_getuid));
        long fd = syscall(SYS_getgid);
        struct stat st;
        out("child getgid (ADDFD+SEND) gave an fd: %d, a char device: %d\n", fd > 2,
            fstat(fd, &st) == 0 && S_ISCHR(st.st_mode));
        flush_log();
        _exit(0);
    }
    struct seccomp_notif n;
    struct seccomp_notif_resp r;
    memset(&n, 0, sizeof n);
    n.id = 1;
    res("RECV with dirty buffer", ioctl(lfd, SECCOMP_IOCTL_NOTIF_RECV, &n));
    const char *names[] = {"umask", "getppid", "getuid", "getgid"};
    for (int i = 0; i < 4; i++) {
        memset(&n, 0, sizeof n);
        if (ioctl(lfd, SECCOMP_IOCTL_NOTIF_RECV, &n) != 0) {
            res("RECV", -1);
            break;
        }
        out("notified: %s nr=%d from child: %d arch=%#x arg0=%#llx\n", names[i], n.data.nr,
            n.pid == kid, n.data.arch, i == 0 ? (unsigned long long)n.data.args[0] : 0ULL);
        res("ID_VALID", ioctl(lfd, SECCOMP_IOCTL_NOTIF_ID_VALID, &n.id));
        memset(&r, 0, sizeof r);
        r.id = n.id;
        if (i == 0) {
            r.val = 4242;
            r.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
            res("SEND CONTINUE with val", ioctl(lfd, SECCOMP_IOCTL_NOTIF_SEND, &r));
            r.flags = 0;
            r.id = n.id + 1000;
            res("SEND unknown id", ioctl(lfd, SECCOMP_IOCTL_NOTIF_SEND, &r));
            r.id = n.id;
        } else if (i == 1) {
            r.error = -EPERM;
        } else if (i == 2) {
            r.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
        } else {
            int devnull = open("/dev/null", O_RDWR);
            struct seccomp_notif_addfd a = {0};
            a.id = n.id;
            a.srcfd = devnull;
            a.flags = SECCOMP_ADDFD_FLAG_SEND;
            long fd = ioctl(lfd, SECCOMP_IOCTL_NOTIF_ADDFD, &a);
            out("ADDFD+SEND gave the child an fd: %d\n", fd > 2);
            close(devnull);
            continue;
        }
        res("SEND", ioctl(lfd, SECCOMP_IOCTL_NOTIF_SEND, &r));
        res("ID_VALID after SEND", ioctl(lfd, SECCOMP_IOCTL_NOTIF_ID_VALID, &n.id));
    }
    int st;
    waitpid(kid, &st, 0);
    flush_log();
    buffering = 0;
    printf("notified child: exit %d\n", WEXITSTATUS(st));
    /* A blocked call is interruptible: a signal without SA_RESTART gives EINTR. */
    kid = fork();
    if (kid == 0) {
        close(lfd);
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_usr2;
        sigaction(SIGUSR2, &sa, NULL);
        res("child getuid interrupted", syscall(SYS_getuid));
        fflush(stdout);
        _exit(0);
    }
    memset(&n, 0, sizeof n);
    res("RECV", ioctl(lfd, SECCOMP_IOCTL_NOTIF_RECV, &n));
    kill(kid, SIGUSR2);
    status("interrupted child");
    res("ID_VALID of an interrupted call", ioctl(lfd, SECCOMP_IOCTL_NOTIF_ID_VALID, &n.id));
    memset(&r, 0, sizeof r);
    r.id = n.id;
    res("SEND to an interrupted call", ioctl(lfd, SECCOMP_IOCTL_NOTIF_SEND, &r));
    kid = fork();
    if (kid == 0) {
        close(lfd);
        syscall(SYS_getuid);
        _exit(0);
    }
    memset(&n, 0, sizeof n);
    res("RECV", ioctl(lfd, SECCOMP_IOCTL_NOTIF_RECV, &n));
    kill(kid, SIGKILL);
    status("child killed while notified");
    res("ID_VALID of a dead child's call", ioctl(lfd, SECCOMP_IOCTL_NOTIF_ID_VALID, &n.id));
    /* With the listener closed, notified calls fail with ENOSYS. */
    close(lfd);
    if (fork() == 0) {
        res("umask after listener closed", syscall(SYS_umask, 022));
        fflush(stdout);
        _exit(0);
    }
    status("child after close");
    fflush(stdout);
    _exit(0);
}

/* SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: once received, a notified call
 * is not interrupted by a non-fatal signal; a new listener is allowed once
 * the old one is closed. */
static void killable_recv(void) {
    if (fork() != 0) {
        status("killable supervisor");
        return;
    }
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    struct sock_filter f[] = {LOAD_NR, ON(SYS_getuid, SECCOMP_RET_USER_NOTIF), ALLOW};
    int old = install(f, sizeof f / sizeof f[0], SECCOMP_FILTER_FLAG_NEW_LISTENER);
    close(old);
    res("new listener after close, killable",
        install(f, sizeof f / sizeof f[0],
                SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV) > 2);
    res("KILLABLE_RECV without listener", install(f, 4, SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV));
    int lfd = 3;
    while (fcntl(lfd, F_GETFD) < 0)
        lfd++;
    fflush(stdout);
    pid_t kid = fork();
    if (kid == 0) {
        close(lfd);
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_usr2;
        sigaction(SIGUSR2, &sa, NULL);
        res("getuid, signalled after RECV", syscall(SYS_getuid));
        fflush(stdout);
        _exit(0);
    }
    struct seccomp_notif n;
    memset(&n, 0, sizeof n);
    res("RECV", ioctl(lfd, SECCOMP_IOCTL_NOTIF_RECV, &n));
    kill(kid, SIGUSR2);
    struct seccomp_notif_resp r = {n.id, 77, 0, 0};
    long sent = ioctl(lfd, SECCOMP_IOCTL_NOTIF_SEND, &r);
    status("killable child");
    res("SEND 77", sent);
    _exit(0);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && strcmp(argv[1], "after-exec") == 0) {
        res("after exec getpid", syscall(SYS_getpid));
        res("after exec nnp", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
        seccomp_lines();
        return 0;
    }
    if (geteuid() != 0) {
        printf("needs root\n");
        return 0;
    }
    getpid_kill_filter(argv[0]);
    stacking();
    nnp_rules();
    strict_mode();
    bad_filters();
    user_notif();
    killable_recv();
    printf("done\n");
    return 0;
}
