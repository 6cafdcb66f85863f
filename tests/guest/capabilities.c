/* Capabilities as capabilities(7) describes them: capget/capset (versions
 * 1-3, EPERM rules, pid 0/self/other), the bounding set, keepcaps and
 * securebits across setuid, seteuid/setfsuid effects, ambient capabilities
 * and the execve transformation, as root and as an unprivileged user
 * (setuid inside). Run as root. Prints only capabilities every root has
 * (MASK), so the host's own bounding set does not matter. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <signal.h>
#include <linux/capability.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define B(c) (1ULL << (c))
static const uint64_t MASK = B(CAP_CHOWN) | B(CAP_DAC_OVERRIDE) | B(CAP_FOWNER) | B(CAP_KILL) |
                             B(CAP_SETGID) | B(CAP_SETUID) | B(CAP_SETPCAP) |
                             B(CAP_NET_BIND_SERVICE) | B(CAP_NET_RAW) | B(CAP_SYS_CHROOT);

struct sets {
    uint64_t eff, prm, inh;
};

static int get(int version, int pid, struct sets *s) {
    struct __user_cap_header_struct h = {version, pid};
    struct __user_cap_data_struct d[2];
    memset(d, 0, sizeof d);
    if (syscall(SYS_capget, &h, d) < 0)
        return -errno;
    s->eff = d[0].effective | (uint64_t)d[1].effective << 32;
    s->prm = d[0].permitted | (uint64_t)d[1].permitted << 32;
    s->inh = d[0].inheritable | (uint64_t)d[1].inheritable << 32;
    return 0;
}

static int set(struct sets s) {
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2] = {
        {(uint32_t)s.eff, (uint32_t)s.prm, (uint32_t)s.inh},
        {(uint32_t)(s.eff >> 32), (uint32_t)(s.prm >> 32), (uint32_t)(s.inh >> 32)},
    };
    return syscall(SYS_capset, &h, d) < 0 ? -errno : 0;
}

static void show(const char *what) {
    struct sets s;
    int r = get(_LINUX_CAPABILITY_VERSION_3, 0, &s);
    printf("%-28s r=%d eff=%09llx prm=%09llx inh=%09llx eff==prm:%d amb_bind=%ld\n", what, r,
           (unsigned long long)(s.eff & MASK), (unsigned long long)(s.prm & MASK),
           (unsigned long long)(s.inh & MASK), s.eff == s.prm,
           (long)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_NET_BIND_SERVICE, 0, 0));
}

static long open_close(const char *path, int flags) {
    int fd = open(path, flags);
    if (fd >= 0)
        close(fd);
    return fd < 0 ? -1 : 0;
}

static void res(const char *what, long r) {
    printf("%-28s %ld %s\n", what, r, r < 0 ? strerror(errno) : "");
}

/* /proc/self/status agrees with capget. */
static void status_check(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    unsigned long long eff = 0, bnd = 0;
    while (f && fgets(line, sizeof line, f)) {
        sscanf(line, "CapEff: %llx", &eff);
        sscanf(line, "CapBnd: %llx", &bnd);
    }
    if (f)
        fclose(f);
    struct sets s;
    get(_LINUX_CAPABILITY_VERSION_3, 0, &s);
    printf("status CapEff matches: %d, CapBnd has NET_RAW: %d\n", eff == s.eff,
           (int)((bnd >> CAP_NET_RAW) & 1));
}

static int wait_child(pid_t p) {
    int st = 0;
    waitpid(p, &st, 0);
    fflush(stdout);
    return st;
}

static void on_usr1(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    printf("SIGUSR1 %d from self: %d si_uid=%d si_code=%d\n", sig, si->si_pid == getpid(),
           (int)si->si_uid, si->si_code);
}

static void versions(void) {
    struct __user_cap_header_struct h = {0x12345678, 0};
    struct __user_cap_data_struct d[2];
    errno = 0;
    long r = syscall(SYS_capget, &h, d);
    printf("bad version: %ld errno=%d version now %#x\n", r, errno, h.version);
    h.version = 0x12345678;
    r = syscall(SYS_capget, &h, NULL);
    printf("bad version, null data: %ld version now %#x\n", r, h.version);
    struct sets s;
    int v[] = {_LINUX_CAPABILITY_VERSION_1, _LINUX_CAPABILITY_VERSION_2,
               _LINUX_CAPABILITY_VERSION_3};
    for (int i = 0; i < 3; i++) {
        memset(&s, 0, sizeof s);
        int r = get(v[i], 0, &s);
        printf("v%d: r=%d eff=%09llx\n", i + 1, r, (unsigned long long)(s.eff & MASK));
    }
    printf("pid self: %d\n", get(_LINUX_CAPABILITY_VERSION_3, getpid(), &s));
    printf("pid -1: %d\n", get(_LINUX_CAPABILITY_VERSION_3, -1, &s));
    printf("pid absent: %d\n", get(_LINUX_CAPABILITY_VERSION_3, 4000000, &s));
    res("bad pointer", syscall(SYS_capget, (void *)8, d));
    pid_t kid = fork();
    if (kid == 0) {
        pause();
        _exit(0);
    }
    struct __user_cap_header_struct other = {_LINUX_CAPABILITY_VERSION_3, kid};
    memset(d, 0, sizeof d);
    res("capget child", syscall(SYS_capget, &other, d));
    res("capset child pid", syscall(SYS_capset, &other, d));
    kill(kid, SIGKILL);
    waitpid(kid, NULL, 0);
}

static void root_rules(void) {
    pid_t p = fork();
    if (p == 0) {
        struct sets s;
        get(_LINUX_CAPABILITY_VERSION_3, 0, &s);
        s.eff &= ~B(CAP_NET_RAW);
        res("capset drop eff NET_RAW", set(s));
        show("after eff drop");
        s.eff |= B(CAP_NET_RAW);
        res("capset raise eff NET_RAW", set(s));
        s.eff &= ~B(CAP_CHOWN);
        s.prm &= ~B(CAP_CHOWN);
        res("capset drop prm CHOWN", set(s));
        s.prm |= B(CAP_CHOWN);
        res("capset raise prm CHOWN", set(s));
        s.prm &= ~B(CAP_CHOWN);
        s.eff |= B(CAP_CHOWN);
        res("capset eff not in prm", set(s));
        show("after prm drop");
        res("bset read NET_RAW", prctl(PR_CAPBSET_READ, CAP_NET_RAW, 0, 0, 0));
        res("bset read 99", prctl(PR_CAPBSET_READ, 99, 0, 0, 0));
        res("bset drop NET_RAW", prctl(PR_CAPBSET_DROP, CAP_NET_RAW, 0, 0, 0));
        res("bset read NET_RAW", prctl(PR_CAPBSET_READ, CAP_NET_RAW, 0, 0, 0));
        res("bset drop 64", prctl(PR_CAPBSET_DROP, 64, 0, 0, 0));
        /* inheritable beyond the bounding set is refused */
        get(_LINUX_CAPABILITY_VERSION_3, 0, &s);
        s.inh = B(CAP_NET_RAW);
        res("inh outside bounding", set(s));
        status_check();
        /* DAC overrides follow the effective set, not the uid. */
        char path[] = "/tmp/ruml-capsXXXXXX";
        int tfd = mkstemp(path);
        close(tfd);
        chmod(path, 0);
        res("read mode 000, all caps", open_close(path, O_RDONLY));
        get(_LINUX_CAPABILITY_VERSION_3, 0, &s);
        s.eff &= ~B(CAP_DAC_OVERRIDE);
        set(s);
        res("read 000, DAC_READ_SEARCH", open_close(path, O_RDONLY));
        res("write 000, DAC_READ_SEARCH", open_close(path, O_WRONLY));
        res("access W_OK (real uid 0)", access(path, W_OK));
        s.eff &= ~B(CAP_DAC_READ_SEARCH);
        set(s);
        res("read 000, no DAC caps", open_close(path, O_RDONLY));
        res("chmod by owner", chmod(path, 0600));
        res("read 600, owner", open_close(path, O_RDONLY));
        s.eff &= ~B(CAP_CHOWN);
        set(s);
        res("chown without CAP_CHOWN", chown(path, 1000, 1000));
        unlink(path);
        res("keepcaps get", prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0));
        res("keepcaps 2", prctl(PR_SET_KEEPCAPS, 2, 0, 0, 0));
        res("keepcaps 1", prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0));
        res("keepcaps get", prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0));
        res("securebits get", prctl(PR_GET_SECUREBITS, 0, 0, 0, 0));
        res("securebits bad", prctl(PR_SET_SECUREBITS, 0x100, 0, 0, 0));
        res("securebits lock keepcaps", prctl(PR_SET_SECUREBITS, 0x30, 0, 0, 0));
        res("keepcaps 0 when locked", prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0));
        res("securebits unlock", prctl(PR_SET_SECUREBITS, 0x10, 0, 0, 0));
        res("securebits get", prctl(PR_GET_SECUREBITS, 0, 0, 0, 0));
        fflush(stdout);
        _exit(0);
    }
    wait_child(p);
}

static void setuid_rules(void) {
    /* Without keepcaps, becoming uid 1000 drops everything. */
    pid_t p = fork();
    if (p == 0) {
        res("setresuid 1000", setresuid(1000, 1000, 1000));
        show("user, no keepcaps");
        struct sets s = {B(CAP_NET_RAW), B(CAP_NET_RAW), 0};
        res("user capset raise", set(s));
        res("user bset drop", prctl(PR_CAPBSET_DROP, CAP_NET_RAW, 0, 0, 0));
        res("user setuid 0", setuid(0));
        res("user securebits", prctl(PR_SET_SECUREBITS, 0x10, 0, 0, 0));
        /* kill(2) permission: not root's processes, but our own. */
        res("user kill root parent", kill(getppid(), 0));
        res("user SIGCONT in session", kill(getppid(), SIGCONT));
        pid_t own = fork();
        if (own == 0) {
            pause();
            _exit(0);
        }
        res("user kill own child", kill(own, SIGKILL));
        waitpid(own, NULL, 0);
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_usr1;
        sa.sa_flags = SA_SIGINFO;
        sigaction(SIGUSR1, &sa, NULL);
        kill(getpid(), SIGUSR1);
        fflush(stdout);
        _exit(0);
    }
    wait_child(p);
    /* With keepcaps, permitted stays and effective can be raised again. */
    p = fork();
    if (p == 0) {
        prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0);
        res("keepcaps setresuid 1000", setresuid(1000, 1000, 1000));
        show("user, keepcaps");
        struct sets s;
        get(_LINUX_CAPABILITY_VERSION_3, 0, &s);
        s.eff = s.prm;
        res("raise eff from prm", set(s));
        show("user, eff raised");
        res("kill root parent, CAP_KILL", kill(getppid(), 0));
        res("setuid 0 with CAP_SETUID", setuid(0));
        show("back to root");
        fflush(stdout);
        _exit(0);
    }
    wait_child(p);
    /* seteuid and setfsuid. */
    p = fork();
    if (p == 0) {
        res("seteuid 1000", seteuid(1000));
        show("euid 1000");
        res("seteuid 0", seteuid(0));
        show("euid 0 again");
        setfsuid(1000);
        show("fsuid 1000");
        setfsuid(0);
        show("fsuid 0");
        fflush(stdout);
        _exit(0);
    }
    wait_child(p);
}

static void ambient_and_exec(const char *self) {
    pid_t p = fork();
    if (p == 0) {
        res("ambient raise, not inh", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0));
        res("ambient bad op", prctl(PR_CAP_AMBIENT, 9, CAP_NET_BIND_SERVICE, 0, 0));
        res("ambient bad cap", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, 77, 0, 0));
        res("ambient clear, extra arg", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 1, 0, 0));
        struct sets s;
        get(_LINUX_CAPABILITY_VERSION_3, 0, &s);
        s.inh = B(CAP_NET_BIND_SERVICE) | B(CAP_NET_RAW);
        res("capset inh", set(s));
        res("ambient raise", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0));
        res("ambient raise raw", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_RAW, 0, 0));
        res("ambient lower raw", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_LOWER, CAP_NET_RAW, 0, 0));
        res("ambient is_set raw", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_NET_RAW, 0, 0));
        show("ambient raised");
        /* A uid change away from root clears ambient, even with keepcaps;
         * raised again as the user (permitted kept), it survives exec. */
        prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0);
        res("setresuid 1000", setresuid(1000, 1000, 1000));
        show("user, ambient cleared");
        res("user ambient raise", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0));
        show("user before exec");
        fflush(stdout);
        execl(self, self, "show", (char *)NULL);
        _exit(99);
    }
    wait_child(p);
    /* Root's exec: effective = bounding; a dropped bounding cap is gone. */
    p = fork();
    if (p == 0) {
        prctl(PR_CAPBSET_DROP, CAP_NET_RAW, 0, 0, 0);
        struct sets s;
        get(_LINUX_CAPABILITY_VERSION_3, 0, &s);
        s.eff &= ~B(CAP_CHOWN);
        set(s);
        show("root before exec");
        fflush(stdout);
        execl(self, self, "show", (char *)NULL);
        _exit(99);
    }
    wait_child(p);
    /* Capabilities cleared by ambient clear and setuid without keepcaps. */
    p = fork();
    if (p == 0) {
        struct sets s;
        get(_LINUX_CAPABILITY_VERSION_3, 0, &s);
        s.inh = B(CAP_NET_BIND_SERVICE);
        set(s);
        prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0);
        res("setuid 1000 (no keepcaps)", setuid(1000));
        show("ambient after setuid");
        fflush(stdout);
        execl(self, self, "show", (char *)NULL);
        _exit(99);
    }
    wait_child(p);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && strcmp(argv[1], "show") == 0) {
        show("after exec");
        printf("after exec: uid=%d euid=%d keepcaps=%d\n", getuid(), geteuid(),
               prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0));
        return 0;
    }
    if (geteuid() != 0) {
        printf("needs root\n");
        return 0;
    }
    show("root at start");
    versions();
    root_rules();
    setuid_rules();
    ambient_and_exec(argv[0]);
    printf("done\n");
    return 0;
}
