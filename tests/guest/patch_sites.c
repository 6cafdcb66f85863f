/* Patched system-call sites (seccomp backend, patch=on; crates/kernel/src/
 * mm/patch.rs). A differential program: every line it prints must be the
 * same natively and under ruml, patched or not.
 *
 *   calls    - getppid/write/clock_getres/getuid from several threads at
 *              once, each site first reached from several threads
 *   fork     - fork after the sites were patched; the child's calls
 *   code     - a `mov $nr,%eax; syscall; ret` function in a private
 *              mapping of our own, called until patched, then rewritten
 *              (mprotect), remapped (mremap, munmap + mmap), discarded
 *              (MADV_DONTNEED of a file mapping), and a mapping placed over
 *              the whole low area ruml uses for patches
 *   restart  - a read through a patched site of our own, interrupted
 *              by a signal with and without SA_RESTART
 *   gs       - a GS base of our own (arch_prctl) after patching
 *   wrgs     - the same with the wrgsbase instruction
 *   trace    - a child whose sites are patched; the parent attaches with
 *              ptrace, reads the child's code (PEEKTEXT, process_vm_readv,
 *              /proc/PID/mem: the original bytes) and counts the child's
 *              system calls from then on
 * With "patched" as a last argument, `code` also checks that ruml did
 * rewrite its site (exit 3 if not): only for runs with patch=on. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/auxv.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int expect_patched;

static void check(int ok, const char *what)
{
    printf("%s: %s\n", what, ok ? "ok" : "FAILED");
    fflush(stdout);
    if (!ok)
        exit(1);
}

/* ---- calls ----------------------------------------------------------- */

#define THREADS 4
#define ROUNDS 3000

static pid_t parent_pid;
static int devnull;
static pthread_barrier_t bar;

static void *worker(void *arg)
{
    long bad = 0;
    (void)arg;
    pthread_barrier_wait(&bar);
    for (int i = 0; i < ROUNDS; i++) {
        if (getppid() != parent_pid)
            bad++;
        if (write(devnull, "x", 1) != 1)
            bad++;
        struct timespec ts;
        if (clock_getres(CLOCK_MONOTONIC, &ts) != 0 || ts.tv_sec != 0)
            bad++;
        if (getuid() != geteuid())
            bad++;
        if (write(-1, "x", 1) != -1 || errno != EBADF)
            bad++;
    }
    return (void *)bad;
}

static void calls(void)
{
    parent_pid = getppid();
    devnull = open("/dev/null", O_WRONLY);
    check(devnull >= 0, "open /dev/null");
    pthread_t t[THREADS];
    pthread_barrier_init(&bar, NULL, THREADS);
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, worker, NULL);
    long bad = 0;
    for (int i = 0; i < THREADS; i++) {
        void *r;
        pthread_join(t[i], &r);
        bad += (long)r;
    }
    check(bad == 0, "threads: getppid, write, clock_getres, getuid, EBADF");
    /* Once more from one thread, after all that. */
    for (int i = 0; i < ROUNDS; i++)
        bad += getppid() != parent_pid;
    check(bad == 0, "single thread after");
}

/* ---- fork ------------------------------------------------------------ */

static void forks(void)
{
    pid_t me = getpid();
    for (int i = 0; i < 1000; i++)
        (void)getppid();
    for (int k = 0; k < 3; k++) {
        pid_t c = fork();
        if (c == 0) {
            long bad = 0;
            for (int i = 0; i < 2000; i++) {
                bad += getppid() != me;
                bad += write(devnull, "y", 1) != 1;
            }
            _exit(bad ? 1 : 0);
        }
        int st;
        waitpid(c, &st, 0);
        check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child after fork sees its parent");
    }
    long bad = 0;
    for (int i = 0; i < 1000; i++)
        bad += getppid() != parent_pid;
    check(bad == 0, "parent after forks");
}

/* ---- code ------------------------------------------------------------ */

/* mov $nr,%eax; syscall; ret */
static void emit(uint8_t *p, uint32_t nr)
{
    p[0] = 0xb8;
    memcpy(p + 1, &nr, 4);
    p[5] = 0x0f;
    p[6] = 0x05;
    p[7] = 0xc3;
}

static const uint8_t *site_of(void *fn)
{
    return (const uint8_t *)fn;
}

/* Calls the function at p often enough for it to be patched; reports
 * whether its bytes changed, if "patched" was asked for. */
static long call_many(void *p, long want, const char *what)
{
    long (*f)(void) = (long (*)(void))p;
    long bad = 0, r = 0;
    for (int i = 0; i < 200; i++) {
        r = f();
        bad += r != want;
    }
    char line[128];
    snprintf(line, sizeof line, "%s returns as the call", what);
    check(bad == 0, line);
    return r;
}

static void require_patched(void *p, const char *what)
{
    if (!expect_patched)
        return;
    /* A patched site reads back as ruml's jump (the guest's own reads
     * are not hidden; a debugger's are). */
    if (site_of(p)[0] != 0xff) {
        printf("%s: not patched\n", what);
        exit(3);
    }
}

static void code(void)
{
    long pg = sysconf(_SC_PAGESIZE);
    pid_t pid = getpid(), ppid = getppid();

    /* An anonymous private mapping: written, then made r-x. */
    uint8_t *p = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    check(p != MAP_FAILED, "mmap code");
    emit(p + 64, SYS_getppid);
    emit(p + pg + 100, SYS_getpid);
    check(mprotect(p, 4 * pg, PROT_READ | PROT_EXEC) == 0, "mprotect r-x");
    call_many(p + 64, ppid, "getppid site");
    call_many(p + pg + 100, pid, "getpid site");
    require_patched(p + 64, "anon site");

    /* Made writable again: the original bytes are back. */
    check(mprotect(p, pg, PROT_READ | PROT_WRITE) == 0, "mprotect rw-");
    check(p[64] == 0xb8 && p[69] == 0x0f && p[70] == 0x05, "original bytes after mprotect");
    /* Rewritten: now getpid. */
    emit(p + 64, SYS_getpid);
    check(mprotect(p, pg, PROT_READ | PROT_EXEC) == 0, "mprotect r-x again");
    call_many(p + 64, pid, "rewritten site");
    require_patched(p + 64, "rewritten site");

    /* Moved: the site works at its new address, and the old page is gone. */
    uint8_t *q = mmap(NULL, 8 * pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint8_t *m = mremap(p, 4 * pg, 4 * pg, MREMAP_MAYMOVE | MREMAP_FIXED, q + 2 * pg);
    check(m == q + 2 * pg, "mremap");
    call_many(m + 64, pid, "moved site");
    call_many(m + pg + 100, pid, "moved getpid site");
    check(mprotect(m, pg, PROT_READ | PROT_WRITE) == 0, "mprotect moved rw-");
    check(m[64] == 0xb8 && m[70] == 0x05, "original bytes after mremap");
    munmap(q, 8 * pg);

    /* Unmapped and mapped again at the same address with other code. */
    p = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    emit(p + 8, SYS_getppid);
    mprotect(p, pg, PROT_READ | PROT_EXEC);
    call_many(p + 8, ppid, "fresh site");
    munmap(p, pg);
    uint8_t *again = mmap(p, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    check(again == p, "mmap at the same address");
    check(again[8] == 0, "fresh page is zero");
    emit(again + 8, SYS_getpid);
    mprotect(again, pg, PROT_READ | PROT_EXEC);
    call_many(again + 8, pid, "site in the new mapping");
    munmap(again, pg);

    /* A private file mapping of code: patched, then MADV_DONTNEED brings
     * back the file's bytes. */
    char path[] = "/tmp/patch_sites_XXXXXX";
    int fd = mkstemp(path);
    check(fd >= 0, "mkstemp");
    uint8_t buf[4096];
    memset(buf, 0xcc, sizeof buf);
    emit(buf + 200, SYS_getppid);
    check(write(fd, buf, sizeof buf) == (ssize_t)sizeof buf, "write code file");
    uint8_t *f = mmap(NULL, pg, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
    check(f != MAP_FAILED, "mmap code file");
    call_many(f + 200, ppid, "file site");
    require_patched(f + 200, "file site");
    check(madvise(f, pg, MADV_DONTNEED) == 0, "madvise dontneed");
    check(f[200] == 0xb8 && f[205] == 0x0f && f[206] == 0x05, "file bytes after dontneed");
    call_many(f + 200, ppid, "file site again");
    /* A shared mapping of the same file: never patched. */
    uint8_t *s = mmap(NULL, pg, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0);
    call_many(s + 200, ppid, "shared site");
    check(s[200] == 0xb8 && s[206] == 0x05, "shared mapping keeps its bytes");
    munmap(s, pg);

    /* A mapping over the low range ruml keeps its patch blocks in: it
     * must succeed as natively, and the patched sites still work. */
    call_many(f + 200, ppid, "file site before");
    void *low = (void *)0x0b000000;
    void *l = mmap(low, 0x200000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
                   -1, 0);
    check(l == low, "mmap over the low area");
    memset(l, 0x5a, 0x200000);
    check(((uint8_t *)l)[0xf0000] == 0x5a, "low area is ours");
    call_many(f + 200, ppid, "file site after");
    check(getppid() == ppid && getpid() == pid, "libc sites after");
    munmap(l, 0x200000);
    call_many(f + 200, ppid, "file site after unmap");
    munmap(f, pg);
    close(fd);
    unlink(path);
}

/* ---- gs -------------------------------------------------------------- */

/* A program that gives itself a GS base (arch_prctl), with garbage where
 * ruml's entry address would be, after its sites were patched. */
static void gs(void)
{
    static uint64_t area[64];
    for (int i = 0; i < 64; i++)
        area[i] = 0x4141414141414141ull;
    pid_t ppid = getppid();
    for (int i = 0; i < 1000; i++)
        (void)getppid();
    check(syscall(SYS_arch_prctl, 0x1001 /* ARCH_SET_GS */, area) == 0, "arch_prctl SET_GS");
    long bad = 0;
    for (int i = 0; i < 1000; i++)
        bad += getppid() != ppid;
    check(bad == 0, "getppid with a GS base of our own");
    uint64_t got = 0;
    check(syscall(SYS_arch_prctl, 0x1004 /* ARCH_GET_GS */, &got) == 0 && got == (uint64_t)area,
          "GS base kept");
}

/* The same with `wrgsbase`, which ruml cannot see before the next call. */
static void wrgs(void)
{
    static uint64_t area[64];
    for (int i = 0; i < 64; i++)
        area[i] = 0x4141414141414141ull;
    if (!(getauxval(AT_HWCAP2) & 2 /* HWCAP2_FSGSBASE */)) {
        printf("wrgsbase: ok\n"); /* nothing to test on this CPU or kernel */
        return;
    }
    pid_t ppid = getppid();
    for (int i = 0; i < 1000; i++)
        (void)getppid();
    asm volatile("wrgsbase %0" ::"r"((uint64_t)area));
    long bad = 0;
    for (int i = 0; i < 1000; i++)
        bad += getppid() != ppid;
    uint64_t now;
    asm volatile("rdgsbase %0" : "=r"(now));
    asm volatile("wrgsbase %0" ::"r"((uint64_t)0));
    check(bad == 0 && now == (uint64_t)area, "wrgsbase");
}

/* ---- restart --------------------------------------------------------- */

static int rfd[2];
static volatile int alarms;

static void on_alarm(int sig)
{
    (void)sig;
    alarms++;
    if (write(rfd[1], "r", 1) != 1)
        _exit(9);
}

/* A read through a site of our own (`mov $0,%eax` is `b8 00 00 00 00`):
 * patched, then blocked, interrupted by a signal and restarted (the
 * restart returns to the `syscall`, where a patched site has `ud2`), or
 * not restarted (EINTR). */
static void restart(void)
{
    long pg = sysconf(_SC_PAGESIZE);
    uint8_t *p = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    emit(p + 32, SYS_read);
    mprotect(p, pg, PROT_READ | PROT_EXEC);
    long (*rd)(long, void *, long) = (long (*)(long, void *, long))(p + 32);
    check(pipe(rfd) == 0, "pipe");
    char c;
    long bad = 0;
    for (int i = 0; i < 200; i++) {
        bad += write(rfd[1], "a", 1) != 1;
        bad += rd(rfd[0], &c, 1) != 1 || c != 'a';
    }
    check(bad == 0, "reads through our site");
    require_patched(p + 32, "read site");
    struct sigaction sa = {0};
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 0}, {0, 20000}};
    setitimer(ITIMER_REAL, &it, NULL);
    c = 0;
    long r = rd(rfd[0], &c, 1);
    check(r == 1 && c == 'r' && alarms == 1, "read restarted after the handler (SA_RESTART)");
    sa.sa_flags = 0;
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    /* Without SA_RESTART the handler's byte stays in the pipe: EINTR. */
    setitimer(ITIMER_REAL, &it, NULL);
    r = rd(rfd[0], &c, 1);
    check(r == -EINTR && alarms == 2, "read interrupted (EINTR)");
    check(rd(rfd[0], &c, 1) == 1 && c == 'r', "byte there after");
}

/* ---- trace ----------------------------------------------------------- */

static void trace(void)
{
    int go[2], ready[2];
    check(pipe(go) == 0 && pipe(ready) == 0, "pipes");
    long pg = sysconf(_SC_PAGESIZE);
    uint8_t *p = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    emit(p + 16, SYS_getppid);
    mprotect(p, pg, PROT_READ | PROT_EXEC);
    pid_t c = fork();
    if (c == 0) {
        long (*fn)(void) = (long (*)(void))(p + 16);
        for (int i = 0; i < 500; i++)
            fn();
        char b = 1;
        if (write(ready[1], &b, 1) != 1)
            _exit(5);
        if (read(go[0], &b, 1) != 1)
            _exit(6);
        long bad = 0;
        for (int i = 0; i < 100; i++)
            bad += fn() != getppid();
        _exit(bad ? 7 : 0);
    }
    char b;
    check(read(ready[0], &b, 1) == 1, "child ready");
    check(ptrace(PTRACE_SEIZE, c, 0, PTRACE_O_TRACESYSGOOD) == 0, "seize");
    check(ptrace(PTRACE_INTERRUPT, c, 0, 0) == 0, "interrupt");
    int st;
    check(waitpid(c, &st, 0) == c && WIFSTOPPED(st), "stopped");
    errno = 0;
    long word = ptrace(PTRACE_PEEKTEXT, c, p + 16, 0);
    check(errno == 0 && (word & 0xff) == 0xb8 && ((word >> 40) & 0xffff) == 0x050f,
          "PEEKTEXT sees the original site");
    uint8_t got[8] = {0};
    struct iovec l = {got, 7}, r = {p + 16, 7};
    check(process_vm_readv(c, &l, 1, &r, 1, 0) == 7 && got[0] == 0xb8 && got[6] == 0x05,
          "process_vm_readv sees the original site");
    char mp[64];
    snprintf(mp, sizeof mp, "/proc/%d/mem", c);
    int mfd = open(mp, O_RDONLY);
    memset(got, 0, sizeof got);
    check(mfd >= 0 && pread(mfd, got, 7, (off_t)(uintptr_t)(p + 16)) == 7 && got[0] == 0xb8 &&
              got[6] == 0x05,
          "/proc/PID/mem sees the original site");
    close(mfd);
    /* Every system call from here on stops: count the child's getppids
     * (its own site and libc's). */
    check(write(go[1], "g", 1) == 1, "go");
    int getppids = 0, stops = 0;
    for (;;) {
        if (ptrace(PTRACE_SYSCALL, c, 0, 0) != 0)
            check(0, "PTRACE_SYSCALL");
        if (waitpid(c, &st, 0) != c)
            break;
        if (WIFEXITED(st) || WIFSIGNALED(st))
            break;
        if (WIFSTOPPED(st) && WSTOPSIG(st) == (SIGTRAP | 0x80)) {
            struct user_regs_struct regs;
            ptrace(PTRACE_GETREGS, c, 0, &regs);
            stops++;
            if (regs.orig_rax == SYS_getppid && regs.rax == (unsigned long long)-ENOSYS)
                getppids++;
        }
    }
    check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "traced child exited well");
    printf("getppid entries seen by the tracer: %d\n", getppids);
    check(stops > 0, "syscall stops");
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && !strcmp(argv[argc - 1], "patched"))
        expect_patched = 1;
    const char *what = argc > 1 ? argv[1] : "all";
    int all = !strcmp(what, "all");
    if (all || !strcmp(what, "calls"))
        calls();
    if (all || !strcmp(what, "fork")) {
        if (!devnull)
            devnull = open("/dev/null", O_WRONLY);
        parent_pid = getppid();
        forks();
    }
    if (all || !strcmp(what, "code"))
        code();
    if (all || !strcmp(what, "trace"))
        trace();
    if (all || !strcmp(what, "restart"))
        restart();
    if (all || !strcmp(what, "gs"))
        gs();
    if (all || !strcmp(what, "wrgs"))
        wrgs();
    return 0;
}
