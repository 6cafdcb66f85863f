/* kcmp(2) and reboot(2)'s order of checks for an unprivileged caller
 * (CAP_SYS_BOOT before the magic numbers). With "root" (the host runs the
 * test as root) the parts that drop to uid/gid 65534 run too. With
 * "nosys" it prints only the calls of kernel features ruml is built
 * without (Linux gives ENOSYS when they are configured out). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/kcmp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int has(int argc, char **argv, const char *w) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], w)) return 1;
    return 0;
}

static void show(const char *what, long r) {
    if (r < 0) printf("%s: -1 %s\n", what, strerrorname_np(errno));
    else printf("%s: %ld\n", what, r);
    fflush(stdout);
}

/* kcmp's result as equal / different (the order of different objects is
 * the kernel's obfuscated pointer order, not comparable across kernels). */
static void cmp(const char *what, pid_t a, pid_t b, int type, unsigned long i1, unsigned long i2) {
    long r = syscall(SYS_kcmp, a, b, type, i1, i2);
    if (r < 0) printf("%s: -1 %s\n", what, strerrorname_np(errno));
    else printf("%s: %s\n", what, r == 0 ? "equal" : (r == 1 || r == 2) ? "different" : "bad");
    fflush(stdout);
}

static pid_t main_pid;
static void *thread_fn(void *arg) {
    (void)arg;
    pid_t t = syscall(SYS_gettid);
    cmp("thread vm", main_pid, t, KCMP_VM, 0, 0);
    cmp("thread files", main_pid, t, KCMP_FILES, 0, 0);
    cmp("thread fs", main_pid, t, KCMP_FS, 0, 0);
    cmp("thread sighand", main_pid, t, KCMP_SIGHAND, 0, 0);
    return NULL;
}

struct slot { uint32_t efd, tfd, toff; };

static void kcmp_part(int root) {
    pid_t me = getpid();
    main_pid = me;
    int pa[2], pc[2];
    if (pipe(pa) || pipe(pc)) return;
    int a = pa[0], b = dup(a), c = pc[0];
    cmp("file dup", me, me, KCMP_FILE, a, b);
    cmp("file other", me, me, KCMP_FILE, a, c);
    cmp("file badfd", me, me, KCMP_FILE, a, 900);
    cmp("bad type", me, me, 99, 0, 0);
    cmp("no such pid", me, 4000000, KCMP_VM, 0, 0);
    cmp("self vm", me, me, KCMP_VM, 0, 0);
    pthread_t th;
    pthread_create(&th, NULL, thread_fn, NULL);
    pthread_join(th, NULL);
    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN };
    epoll_ctl(ep, EPOLL_CTL_ADD, a, &ev);
    struct slot s = { ep, a, 0 };
    cmp("epoll target", me, me, KCMP_EPOLL_TFD, a, (unsigned long)&s);
    cmp("epoll other file", me, me, KCMP_EPOLL_TFD, c, (unsigned long)&s);
    struct slot s2 = { ep, c, 0 };
    cmp("epoll not watched", me, me, KCMP_EPOLL_TFD, a, (unsigned long)&s2);
    struct slot s3 = { ep, a, 1 };
    cmp("epoll toff 1", me, me, KCMP_EPOLL_TFD, a, (unsigned long)&s3);
    struct slot s4 = { a, a, 0 };
    cmp("epoll not epoll", me, me, KCMP_EPOLL_TFD, a, (unsigned long)&s4);
    struct slot s5 = { 901, a, 0 };
    cmp("epoll bad efd", me, me, KCMP_EPOLL_TFD, a, (unsigned long)&s5);
    cmp("epoll efault", me, me, KCMP_EPOLL_TFD, a, 8);
    int p[2], q[2];
    if (pipe(p) || pipe(q)) return;
    pid_t child = fork();
    if (child == 0) {
        pid_t pp = getppid(), cme = getpid();
        char x;
        cmp("fork vm", pp, cme, KCMP_VM, 0, 0);
        cmp("fork files", pp, cme, KCMP_FILES, 0, 0);
        cmp("fork fs", pp, cme, KCMP_FS, 0, 0);
        cmp("fork sighand", pp, cme, KCMP_SIGHAND, 0, 0);
        cmp("fork same open file", pp, cme, KCMP_FILE, a, a);
        if (write(p[1], "x", 1) != 1 || read(q[0], &x, 1) != 1) _exit(1);
        if (root) {
            setgroups(0, NULL);
            if (setgid(65534) || setuid(65534)) _exit(1);
            cmp("unprivileged vs root", pp, cme, KCMP_VM, 0, 0);
            cmp("unprivileged self", cme, cme, KCMP_VM, 0, 0);
        }
        _exit(0);
    }
    char x;
    if (read(p[0], &x, 1) != 1) return;
    if (write(q[1], "x", 1) != 1) return;
    waitpid(child, NULL, 0);
}

int main(int argc, char **argv) {
    if (has(argc, argv, "nosys")) {
        show("init_module", syscall(SYS_init_module, "x", 1, ""));
        show("finit_module", syscall(SYS_finit_module, 0, "", 0));
        show("delete_module", syscall(SYS_delete_module, "nope", 0));
        show("acct", syscall(SYS_acct, NULL));
        show("iopl", syscall(SYS_iopl, 3));
        show("ioperm", syscall(SYS_ioperm, 0x80, 1, 1));
        show("bpf", syscall(SYS_bpf, 0, NULL, 0));
        show("perf_event_open", syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0));
        show("userfaultfd", syscall(SYS_userfaultfd, 0));
        show("kexec_load", syscall(SYS_kexec_load, 0, 0, NULL, 0));
        show("swapon", syscall(SYS_swapon, "/nonexistent", 0));
        show("quotactl", syscall(SYS_quotactl, 0, NULL, 0, NULL));
        return 0;
    }
    int root = has(argc, argv, "root");
    kcmp_part(root);
    if (root) {
        setgroups(0, NULL);
        if (setgid(65534) || setuid(65534)) {
            perror("drop");
            return 1;
        }
        show("reboot bad magic, unprivileged", syscall(SYS_reboot, 1, 2, 0, NULL));
        show("reboot, unprivileged", syscall(SYS_reboot, 0xfee1dead, 672274793, 0xcdef0123, NULL));
    }
    return 0;
}
