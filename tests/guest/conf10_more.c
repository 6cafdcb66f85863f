/* Issue 10, more: O_NOATIME for owners only, personality(2), time
 * namespaces. Run as root; parts drop to uid 65534. Prints only values
 * that are the same natively and under ruml.
 *   conf10_more noatime DIR
 *   conf10_more personality
 *   conf10_more timens
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int failed;
double fabs_like(double x);
#define CHECK(c) do { if (c) printf("ok: %s\n", #c); else { printf("FAIL: %s (%s)\n", #c, strerrorname_np(errno)); failed = 1; } } while (0)

static const char *en(long r) { return r < 0 ? strerrorname_np(errno) : "0"; }

/* ---- O_NOATIME ---- */
static int noatime(const char *dir)
{
    if (chdir(dir) != 0 || chmod(".", 0777) != 0) return 2;
    umask(0);
    close(open("roots", O_CREAT | O_WRONLY, 0644));
    close(open("secret", O_CREAT | O_WRONLY, 0600));
    close(open("theirs", O_CREAT | O_WRONLY, 0644));
    CHECK(chown("theirs", 65534, 65534) == 0);
    /* Root (CAP_FOWNER) may use it on anybody's file. */
    int fd = open("theirs", O_RDONLY | O_NOATIME);
    CHECK(fd >= 0);
    CHECK(fcntl(fd, F_GETFL) & O_NOATIME);
    close(fd);
    pid_t p = fork();
    if (p == 0) {
        CHECK(setgid(65534) == 0 && setuid(65534) == 0);
        printf("user open roots O_NOATIME: %s\n", en(open("roots", O_RDONLY | O_NOATIME)));
        printf("user open secret O_NOATIME: %s\n", en(open("secret", O_RDONLY | O_NOATIME)));
        printf("user open theirs O_NOATIME: %s\n", en(open("theirs", O_RDONLY | O_NOATIME)));
        printf("user create mine O_NOATIME: %s\n",
               en(open("mine", O_CREAT | O_EXCL | O_WRONLY | O_NOATIME, 0644) < 0 ? -1 : 0));
        int r = open("roots", O_RDONLY);
        printf("user F_SETFL O_NOATIME on roots: %s\n", en(fcntl(r, F_SETFL, O_NOATIME)));
        printf("user F_SETFL O_NONBLOCK on roots: %s\n", en(fcntl(r, F_SETFL, O_NONBLOCK)));
        int t = open("theirs", O_RDONLY);
        printf("user F_SETFL O_NOATIME on own: %s\n", en(fcntl(t, F_SETFL, O_NOATIME)));
        printf("user F_GETFL has O_NOATIME: %d\n", !!(fcntl(t, F_GETFL) & O_NOATIME));
        printf("user F_SETFL clear O_NOATIME on own: %s\n", en(fcntl(t, F_SETFL, 0)));
        fflush(stdout);
        _exit(0);
    }
    int st;
    waitpid(p, &st, 0);
    /* Root opened a descriptor with O_NOATIME; a user inheriting it may
     * keep the flag (no change) but not clear it. */
    fd = open("roots", O_RDONLY | O_NOATIME);
    p = fork();
    if (p == 0) {
        setgid(65534);
        setuid(65534);
        printf("user F_SETFL keep O_NOATIME: %s\n", en(fcntl(fd, F_SETFL, O_NOATIME | O_NONBLOCK)));
        printf("user F_SETFL clear inherited O_NOATIME: %s\n", en(fcntl(fd, F_SETFL, 0)));
        fflush(stdout);
        _exit(0);
    }
    waitpid(p, &st, 0);
    printf("result: %s\n", failed ? "FAIL" : "OK");
    return failed;
}

/* ---- personality ---- */
static long pers(unsigned long v) { return syscall(SYS_personality, v); }

static char *maps_perms(void *addr, char *out)
{
    char line[512];
    FILE *f = fopen("/proc/self/maps", "r");
    strcpy(out, "?");
    while (f && fgets(line, sizeof line, f)) {
        unsigned long a, b;
        char perm[8];
        if (sscanf(line, "%lx-%lx %7s", &a, &b, perm) == 3 && (unsigned long)addr >= a && (unsigned long)addr < b) {
            strcpy(out, perm);
            break;
        }
    }
    if (f) fclose(f);
    return out;
}

static int personality_test(const char *self)
{
    char buf[8];
    long base = pers(0xffffffff);
    printf("query: %#lx\n", base);
    printf("set PER_LINUX: %#lx\n", pers(PER_LINUX));
    printf("set 0xdead: %#lx\n", pers(0xdead));
    printf("query: %#lx\n", pers(0xffffffff));
    /* The argument is an unsigned int: the upper half is ignored. */
    printf("set 1<<32|0x10: %#lx\n", pers(0x100000010ul));
    printf("query 1<<32|0xffffffff: %#lx\n", pers(0x1fffffffful));
    pers(PER_LINUX);

    struct utsname u0, u1;
    uname(&u0);
    pers(UNAME26);
    uname(&u1);
    /* Linux: "2.6.(60 + minor)" and what follows the numeric release. */
    unsigned maj, min;
    const char *rest = u0.release;
    int dots = 0;
    while (*rest) {
        if (*rest == '.' && ++dots >= 3) break;
        if (*rest != '.' && (*rest < '0' || *rest > '9')) break;
        rest++;
    }
    char want[80];
    sscanf(u0.release, "%u.%u", &maj, &min);
    snprintf(want, sizeof want, "2.6.%u%s", 60 + min, rest);
    printf("UNAME26 release as Linux computes it: %d\n", strcmp(u1.release, want) == 0);
    printf("UNAME26 release starts 2.6.: %d\n", strncmp(u1.release, "2.6.", 4) == 0);
    char osr[80] = "";
    FILE *f = fopen("/proc/sys/kernel/osrelease", "r");
    if (f) { fgets(osr, sizeof osr, f); fclose(f); }
    osr[strcspn(osr, "\n")] = 0;
    printf("UNAME26 leaves osrelease: %d\n", strcmp(osr, u0.release) == 0);
    pers(PER_LINUX);

    pers(READ_IMPLIES_EXEC);
    void *a = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("READ_IMPLIES_EXEC mmap PROT_READ: %s\n", maps_perms(a, buf));
    void *b = mmap(NULL, 4096, PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("READ_IMPLIES_EXEC mmap PROT_WRITE: %s\n", maps_perms(b, buf));
    void *c = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    mprotect(c, 4096, PROT_READ | PROT_WRITE);
    printf("READ_IMPLIES_EXEC mprotect RW: %s\n", maps_perms(c, buf));
    pers(PER_LINUX);
    void *d = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("PER_LINUX mmap PROT_READ: %s\n", maps_perms(d, buf));

    /* ADDR_NO_RANDOMIZE: inherited by fork and kept across exec; two
     * programs started with it lay out the same. */
    pers(ADDR_NO_RANDOMIZE);
    char out[2][128];
    for (int i = 0; i < 2; i++) {
        int pfd[2];
        pipe(pfd);
        pid_t p = fork();
        if (p == 0) {
            dup2(pfd[1], 1);
            execl(self, self, "layout", (char *)NULL);
            _exit(127);
        }
        close(pfd[1]);
        ssize_t n = read(pfd[0], out[i], sizeof out[i] - 1);
        out[i][n > 0 ? n : 0] = 0;
        close(pfd[0]);
        waitpid(p, NULL, 0);
    }
    printf("exec keeps ADDR_NO_RANDOMIZE: %d\n", strncmp(out[0], "pers 0x40000 ", 13) == 0);
    printf("same layout twice: %d\n", out[0][0] && strcmp(out[0], out[1]) == 0);
    pers(PER_LINUX);
    printf("result: %s\n", failed ? "FAIL" : "OK");
    return failed;
}

static int layout(void)
{
    int local;
    void *m = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("pers %#lx stack %p mmap %p brk %p\n", pers(0xffffffff), (void *)&local, m, sbrk(0));
    return 0;
}

/* ---- time namespaces ---- */
static double mono(int clk) { struct timespec t; clock_gettime(clk, &t); return t.tv_sec + t.tv_nsec / 1e9; }
static double mono_sys(int clk) { struct timespec t; syscall(SYS_clock_gettime, clk, &t); return t.tv_sec + t.tv_nsec / 1e9; }

static const char *wr(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY);
    if (fd < 0) return strerrorname_np(errno);
    ssize_t n = write(fd, text, strlen(text));
    int e = errno;
    close(fd);
    if (n < 0) return strerrorname_np(e);
    return n == (ssize_t)strlen(text) ? "ok" : "short";
}

static void show_offsets(const char *who)
{
    char buf[256];
    int fd = open("/proc/self/timens_offsets", O_RDONLY);
    ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
    if (fd >= 0) close(fd);
    buf[n > 0 ? n : 0] = 0;
    printf("%s offsets:\n%s", who, buf);
}

/* Inside the namespace: offsets seen through the vDSO and the system
 * call, absolute sleeps and timers in the namespace's clock. */
static void inside(const char *who, double m0, double b0)
{
    double m = mono(CLOCK_MONOTONIC), ms = mono_sys(CLOCK_MONOTONIC);
    double b = mono(CLOCK_BOOTTIME), bs = mono_sys(CLOCK_BOOTTIME);
    double coarse = mono(CLOCK_MONOTONIC_COARSE), raw = mono(CLOCK_MONOTONIC_RAW);
    printf("%s monotonic shifted (vdso): %d\n", who, m - m0 > 86400 && m - m0 < 86400 + 600);
    printf("%s monotonic shifted (syscall): %d\n", who, ms - m0 > 86400 && ms - m0 < 86400 + 600);
    printf("%s coarse and raw shifted: %d\n", who, coarse - m0 > 86300 && raw - m0 > 86300);
    printf("%s boottime shifted (vdso): %d\n", who, b - b0 > 2 * 86400 && b - b0 < 2 * 86400 + 600);
    printf("%s boottime shifted (syscall): %d\n", who, bs - b0 > 2 * 86400 && bs - b0 < 2 * 86400 + 600);
    printf("%s realtime not shifted: %d\n", who, fabs_like(mono(CLOCK_REALTIME) - (double)time(NULL)) < 5);
    alarm(30);
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_nsec += 200000000;
    if (t.tv_nsec >= 1000000000) { t.tv_sec++; t.tv_nsec -= 1000000000; }
    double before = mono(CLOCK_MONOTONIC);
    int r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL);
    double slept = mono(CLOCK_MONOTONIC) - before;
    printf("%s abs sleep: %d slept enough: %d\n", who, r, slept >= 0.19);
    int tfd = timerfd_create(CLOCK_BOOTTIME, 0);
    struct itimerspec its = {0};
    clock_gettime(CLOCK_BOOTTIME, &its.it_value);
    its.it_value.tv_sec += 0;
    its.it_value.tv_nsec += 100000000;
    if (its.it_value.tv_nsec >= 1000000000) { its.it_value.tv_sec++; its.it_value.tv_nsec -= 1000000000; }
    timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
    uint64_t ticks = 0;
    printf("%s timerfd abs fires: %d\n", who, read(tfd, &ticks, 8) == 8 && ticks == 1);
    alarm(0);
    double up = 0;
    FILE *f = fopen("/proc/uptime", "r");
    if (f) { fscanf(f, "%lf", &up); fclose(f); }
    printf("%s /proc/uptime shifted: %d\n", who, up > 2 * 86400);
}

static int timens_test(const char *self)
{
    double m0 = mono(CLOCK_MONOTONIC), b0 = mono(CLOCK_BOOTTIME);
    printf("write without a new namespace: %s\n", wr("/proc/self/timens_offsets", "monotonic 1 0"));
    printf("unshare(CLONE_NEWTIME): %s\n", en(unshare(CLONE_NEWTIME)));
    show_offsets("new");
    printf("bad clock: %s\n", wr("/proc/self/timens_offsets", "realtime 1 0"));
    printf("clock 2: %s\n", wr("/proc/self/timens_offsets", "2 1 0"));
    printf("nsec too big: %s\n", wr("/proc/self/timens_offsets", "monotonic 1 1000000000"));
    printf("missing field: %s\n", wr("/proc/self/timens_offsets", "monotonic 1"));
    printf("garbage: %s\n", wr("/proc/self/timens_offsets", "not an offset"));
    printf("empty: %s\n", wr("/proc/self/timens_offsets", ""));
    printf("negative clock: %s\n", wr("/proc/self/timens_offsets", "monotonic -9999999999 0"));
    printf("beyond KTIME_SEC_MAX/2: %s\n", wr("/proc/self/timens_offsets", "boottime 5000000000 0"));
    printf("negative small: %s\n", wr("/proc/self/timens_offsets", "monotonic -1 500000000"));
    show_offsets("negative");
    printf("two lines: %s\n", wr("/proc/self/timens_offsets", "monotonic 86400 0\n7 172800 0\n"));
    show_offsets("set");
    printf("self still in old namespace: %d\n", mono(CLOCK_MONOTONIC) - m0 < 600);
    pid_t p = fork();
    if (p == 0) {
        inside("child", m0, b0);
        printf("child write (entered, frozen): %s\n", wr("/proc/self/timens_offsets", "monotonic 5 0"));
        pid_t q = fork();
        if (q == 0) {
            if (setgid(65534) || setuid(65534)) _exit(3);
            printf("user unshare(CLONE_NEWTIME): %s\n", en(unshare(CLONE_NEWTIME)));
            fflush(stdout);
            _exit(0);
        }
        waitpid(q, NULL, 0);
        fflush(stdout);
        _exit(0);
    }
    int st;
    waitpid(p, &st, 0);
    printf("parent write after a child entered: %s\n", wr("/proc/self/timens_offsets", "monotonic 5 0"));
    /* exec enters the namespace too. */
    fflush(stdout);
    p = fork();
    if (p == 0) {
        char a[64], b[64];
        snprintf(a, sizeof a, "%.6f", m0);
        snprintf(b, sizeof b, "%.6f", b0);
        execl(self, self, "timens-exec", a, b, (char *)NULL);
        _exit(127);
    }
    waitpid(p, &st, 0);
    /* vfork (CLONE_VM) children stay in the parent's namespace. */
    p = vfork();
    if (p == 0) {
        int same = mono_sys(CLOCK_MONOTONIC) - m0 < 600;
        _exit(same ? 0 : 1);
    }
    waitpid(p, &st, 0);
    printf("vfork child stays: %d\n", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    printf("result: %s\n", failed ? "FAIL" : "OK");
    return failed;
}

double fabs_like(double x) { return x < 0 ? -x : x; }

/* ---- fspick, open_tree(AT_RECURSIVE) ---- */
static const char *mk(const char *path)
{
    int fd = open(path, O_CREAT | O_WRONLY, 0644);
    if (fd < 0) return strerrorname_np(errno);
    close(fd);
    return "0";
}

static int mountapi(const char *dir)
{
    char a[256], sub[256], p[512];
    if (chdir(dir) != 0) return 2;
    printf("unshare(CLONE_NEWNS): %s\n", en(unshare(CLONE_NEWNS)));
    printf("make / private: %s\n", en(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)));
    snprintf(a, sizeof a, "%s/a", dir);
    snprintf(sub, sizeof sub, "%s/a/sub", dir);
    mkdir(a, 0755);
    CHECK(mount("tmpfs", a, "tmpfs", 0, NULL) == 0);
    mkdir(sub, 0755);
    mkdir("a/plain", 0755);
    CHECK(mount("tmpfs", sub, "tmpfs", 0, NULL) == 0);
    CHECK(strcmp(mk("a/sub/f"), "0") == 0);

    int fc = fspick(AT_FDCWD, "a", FSPICK_CLOEXEC);
    printf("fspick a: %s\n", fc >= 0 ? "fd" : strerrorname_np(errno));
    printf("fspick not a mount root: %s\n", en(fspick(AT_FDCWD, "a/plain", 0)));
    printf("fspick bad flags: %s\n", en(fspick(AT_FDCWD, "a", 0x100)));
    printf("fspick missing: %s\n", en(fspick(AT_FDCWD, "a/none", 0)));
    printf("set ro: %s\n", en(fsconfig(fc, FSCONFIG_SET_FLAG, "ro", NULL, 0)));
    printf("reconfigure ro: %s\n", en(fsconfig(fc, FSCONFIG_CMD_RECONFIGURE, NULL, NULL, 0)));
    printf("create in a: %s\n", mk("a/x"));
    printf("create in a/sub: %s\n", mk("a/sub/y"));
    printf("set rw: %s\n", en(fsconfig(fc, FSCONFIG_SET_FLAG, "rw", NULL, 0)));
    printf("reconfigure rw: %s\n", en(fsconfig(fc, FSCONFIG_CMD_RECONFIGURE, NULL, NULL, 0)));
    printf("create in a: %s\n", mk("a/x"));
    printf("CMD_CREATE on a picked context: %s\n", en(fsconfig(fc, FSCONFIG_CMD_CREATE, NULL, NULL, 0)));
    printf("fsmount of a picked context: %s\n", en(fsmount(fc, 0, 0)));
    int fo = fsopen("tmpfs", 0);
    printf("reconfigure an fsopen context: %s\n", en(fsconfig(fo, FSCONFIG_CMD_RECONFIGURE, NULL, NULL, 0)));
    close(fo);
    close(fc);
    pid_t q = fork();
    if (q == 0) {
        if (setgid(65534) || setuid(65534)) _exit(3);
        printf("user fspick: %s\n", en(fspick(AT_FDCWD, "a", 0)));
        fflush(stdout);
        _exit(0);
    }
    waitpid(q, NULL, 0);

    printf("open_tree AT_RECURSIVE without CLONE: %s\n", en(open_tree(AT_FDCWD, "a", AT_RECURSIVE)));
    int t = open_tree(AT_FDCWD, "a", OPEN_TREE_CLONE | AT_RECURSIVE | OPEN_TREE_CLOEXEC);
    printf("open_tree recursive: %s\n", t >= 0 ? "fd" : strerrorname_np(errno));
    mkdir("b", 0755);
    printf("move_mount recursive: %s\n", en(move_mount(t, "", AT_FDCWD, "b", MOVE_MOUNT_F_EMPTY_PATH)));
    struct stat st;
    printf("b/sub/f (submount copied): %d\n", stat("b/sub/f", &st) == 0);
    printf("b/x: %d\n", stat("b/x", &st) == 0);
    int t2 = open_tree(AT_FDCWD, "a", OPEN_TREE_CLONE);
    mkdir("c", 0755);
    printf("move_mount top only: %s\n", en(move_mount(t2, "", AT_FDCWD, "c", MOVE_MOUNT_F_EMPTY_PATH)));
    printf("c/sub/f (no submount): %d\n", stat("c/sub/f", &st) == 0);
    printf("c/sub exists: %d\n", stat("c/sub", &st) == 0);
    /* Reconfiguring a's filesystem read-only reaches its clones. */
    fc = fspick(AT_FDCWD, "c", 0);
    fsconfig(fc, FSCONFIG_SET_FLAG, "ro", NULL, 0);
    printf("reconfigure through a clone: %s\n", en(fsconfig(fc, FSCONFIG_CMD_RECONFIGURE, NULL, NULL, 0)));
    printf("create in a after: %s\n", mk("a/z"));
    printf("create in b/sub after: %s\n", mk("b/sub/z"));
    snprintf(p, sizeof p, "%s", dir);
    printf("result: %s\n", failed ? "FAIL" : "OK");
    return failed;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 3 && !strcmp(argv[1], "noatime")) return noatime(argv[2]);
    if (argc >= 2 && !strcmp(argv[1], "personality")) return personality_test(argv[0]);
    if (argc >= 2 && !strcmp(argv[1], "layout")) return layout();
    if (argc >= 2 && !strcmp(argv[1], "timens")) return timens_test(argv[0]);
    if (argc >= 3 && !strcmp(argv[1], "mountapi")) return mountapi(argv[2]);
    if (argc >= 4 && !strcmp(argv[1], "timens-exec")) {
        inside("exec", atof(argv[2]), atof(argv[3]));
        show_offsets("exec");
        return 0;
    }
    return 2;
}
