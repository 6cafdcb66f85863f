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
 *   shapes   - the other shapes, as exact bytes of our own: `mov $nr,%rax;
 *              syscall`, glibc's syscall(3) (`mov 0x8(%rsp),%r9; syscall`,
 *              its 7th argument really loaded: mmap's offset) and `mov
 *              $imm,%edi; syscall`; four threads racing through them while
 *              they are patched, branches onto each `syscall` with the
 *              number in rax, and a fault of the displaced load (reported
 *              at the site, as natively)
 *   shapes-restart - a blocking read through each of those shapes,
 *              interrupted by a signal with and without SA_RESTART
 *   cross    - sites across a page boundary (`mov $nr,%eax`, `mov
 *              $nr,%rax`, `mov $imm,%edi` before the `syscall`), at every
 *              split: five threads racing through each while it is
 *              patched, then the second page made writable (the original
 *              bytes on both pages) and discarded (the first page's
 *              bytes original); last, a site restored (process_vm_readv
 *              of our own code) while four threads run through it
 * With "patched" as a last argument, `code`, `restart`, `shapes`,
 * `shapes-restart` and `cross` also check that ruml did rewrite their
 * sites (exit 3 if not; `cross`: exactly the sites whose displaced
 * instruction lies on the first page): only for runs with patch=on. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <ucontext.h>
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

/* ---- shapes ---------------------------------------------------------- */

/* Functions of exact bytes, each ending in a site of one shape. */
struct shapes {
    long (*rax)(void);                 /* mov $SYS_getppid,%rax; syscall */
    long (*rax_read)(long, void *, long); /* mov $SYS_read,%rax; syscall */
    long (*rax_branch)(long nr);       /* mov %rdi,%rax; jmp to rax's syscall */
    long (*sc)(long nr, long, long, long, long, long, long); /* glibc's syscall(3) */
    long (*sc_branch)(long nr);
    long (*edi1)(long nr, const void *, long);   /* mov $1,%edi */
    long (*edifd)(long nr, const char *, long);  /* mov $AT_FDCWD,%edi */
    long (*edi_branch)(long nr);
    void (*fault)(void *rsp);          /* rsp = arg; jmp to sc's site */
    const uint8_t *site_rax, *site_sc, *site_edi1, *site_edifd;
};

static uint8_t *put(uint8_t *p, const uint8_t *b, size_t n)
{
    memcpy(p, b, n);
    return p + n;
}

static uint8_t *put_jmp(uint8_t *p, const uint8_t *to)
{
    int32_t rel = (int32_t)(to - (p + 5));
    *p++ = 0xe9;
    memcpy(p, &rel, 4);
    return p + 4;
}

static const uint8_t MOV_RDI_RAX[] = {0x48, 0x89, 0xf8};

/* Lays the functions out in the 1024 bytes at c (same page). */
static void emit_shapes(uint8_t *c, struct shapes *s)
{
    uint8_t *p;
    /* mov $SYS_getppid,%rax; syscall; ret */
    p = c;
    const uint8_t rax[] = {0x48, 0xc7, 0xc0, SYS_getppid, 0, 0, 0, 0x0f, 0x05, 0xc3};
    put(p, rax, sizeof rax);
    s->rax = (long (*)(void))p;
    s->site_rax = p;
    p = c + 64;
    s->rax_branch = (long (*)(long))p;
    p = put(p, MOV_RDI_RAX, 3);
    put_jmp(p, c + 7);
    p = c + 128;
    const uint8_t rax_read[] = {0x48, 0xc7, 0xc0, SYS_read, 0, 0, 0, 0x0f, 0x05, 0xc3};
    put(p, rax_read, sizeof rax_read);
    s->rax_read = (long (*)(long, void *, long))p;
    /* glibc's syscall(3), without its errno handling */
    p = c + 192;
    const uint8_t sc[] = {
        0x48, 0x89, 0xf8, 0x48, 0x89, 0xf7, 0x48, 0x89, 0xd6, 0x48, 0x89, 0xca, 0x4d, 0x89,
        0xc2, 0x4d, 0x89, 0xc8, 0x4c, 0x8b, 0x4c, 0x24, 0x08, 0x0f, 0x05, 0xc3,
    };
    put(p, sc, sizeof sc);
    s->sc = (long (*)(long, long, long, long, long, long, long))p;
    s->site_sc = p + 18;
    p = c + 256;
    s->sc_branch = (long (*)(long))p;
    p = put(p, MOV_RDI_RAX, 3);
    put_jmp(p, s->site_sc + 5);
    /* mov %rdi,%rax; mov $1,%edi; syscall; ret */
    p = c + 320;
    const uint8_t edi1[] = {0x48, 0x89, 0xf8, 0xbf, 1, 0, 0, 0, 0x0f, 0x05, 0xc3};
    put(p, edi1, sizeof edi1);
    s->edi1 = (long (*)(long, const void *, long))p;
    s->site_edi1 = p + 3;
    p = c + 384;
    const uint8_t edifd[] = {0x48, 0x89, 0xf8, 0xbf, 0x9c, 0xff, 0xff, 0xff, 0x0f, 0x05, 0xc3};
    put(p, edifd, sizeof edifd);
    s->edifd = (long (*)(long, const char *, long))p;
    s->site_edifd = p + 3;
    p = c + 448;
    s->edi_branch = (long (*)(long))p;
    p = put(p, MOV_RDI_RAX, 3);
    put_jmp(p, s->site_edi1 + 5);
    /* mov %rdi,%rsp; jmp to sc's site */
    p = c + 512;
    s->fault = (void (*)(void *))p;
    const uint8_t rsp[] = {0x48, 0x89, 0xfc};
    p = put(p, rsp, 3);
    put_jmp(p, s->site_sc);
}

static uint8_t *new_shapes(struct shapes *s)
{
    long pg = sysconf(_SC_PAGESIZE);
    uint8_t *p = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    check(p != MAP_FAILED, "mmap shapes");
    memset(p, 0xcc, pg);
    emit_shapes(p, s);
    check(mprotect(p, pg, PROT_READ | PROT_EXEC) == 0, "mprotect shapes");
    return p;
}

static void require_shape_patched(const uint8_t *site, const char *what)
{
    require_patched((void *)site, what);
}

static struct shapes race;
static int mapfd;

static void *shape_worker(void *arg)
{
    long bad = 0, pg = sysconf(_SC_PAGESIZE);
    (void)arg;
    pthread_barrier_wait(&bar);
    for (int i = 0; i < ROUNDS; i++) {
        bad += race.rax() != parent_pid;
        bad += race.sc(SYS_getppid, 0, 0, 0, 0, 0, 0) != parent_pid;
        bad += race.sc(SYS_write, -1, 0, 0, 0, 0, 0) != -EBADF;
        bad += race.edi1(SYS_write, "", 0) != 0;
        long fd = race.edifd(SYS_openat, "/dev/null", O_RDONLY);
        bad += fd < 0;
        if (fd >= 0)
            close(fd);
        bad += race.rax_branch(SYS_getpid) != getpid();
        bad += race.sc_branch(SYS_getppid) != parent_pid;
        bad += race.edi_branch(SYS_getpid) != getpid();
        if (i % 64 == 0) {
            /* The 7th argument (mmap's offset, in r9) is the second page. */
            long a = race.sc(SYS_mmap, 0, pg, PROT_READ, MAP_PRIVATE, mapfd, pg);
            bad += a < 0 || ((volatile uint8_t *)a)[0] != 2;
            if (a >= 0)
                munmap((void *)a, pg);
        }
    }
    return (void *)bad;
}

static sigjmp_buf fault_jb;
static volatile uintptr_t fault_rip, fault_addr;

static void on_segv(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    fault_rip = ((ucontext_t *)uc)->uc_mcontext.gregs[REG_RIP];
    fault_addr = (uintptr_t)si->si_addr;
    siglongjmp(fault_jb, 1);
}

static void shapes(void)
{
    long pg = sysconf(_SC_PAGESIZE);
    parent_pid = getppid();
    /* A file of two pages, 1s then 2s, for mmap's offset. */
    char path[] = "/tmp/patch_shapes_XXXXXX";
    mapfd = mkstemp(path);
    check(mapfd >= 0, "mkstemp");
    uint8_t buf[8192];
    memset(buf, 1, 4096);
    memset(buf + 4096, 2, 4096);
    check(write(mapfd, buf, sizeof buf) == (ssize_t)sizeof buf, "write map file");
    unlink(path);

    /* Four threads reach the fresh sites together: they are patched
     * while the others run through them. */
    new_shapes(&race);
    pthread_t t[THREADS];
    pthread_barrier_init(&bar, NULL, THREADS);
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, shape_worker, NULL);
    long bad = 0;
    for (int i = 0; i < THREADS; i++) {
        void *r;
        pthread_join(t[i], &r);
        bad += (long)r;
    }
    check(bad == 0, "threads through mov-rax, syscall(3), mov-edi sites and branches onto them");
    require_shape_patched(race.site_rax, "mov $nr,%rax site");
    require_shape_patched(race.site_sc, "syscall(3) site");
    require_shape_patched(race.site_edi1, "mov $1,%edi site");
    require_shape_patched(race.site_edifd, "mov $AT_FDCWD,%edi site");
    /* The mov-edi site writes to fd 1: its own line. */
    check(race.edi1(SYS_write, "written by a mov-edi site\n", 26) == 26, "write through it");

    /* The displaced load faults: SIGSEGV at the site, as natively. */
    uint8_t *stk = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    check(stk != MAP_FAILED && munmap(stk + pg, pg) == 0, "stack with a hole above");
    static uint8_t alt[65536];
    stack_t ss = {.ss_sp = alt, .ss_size = sizeof alt};
    check(sigaltstack(&ss, NULL) == 0, "sigaltstack");
    struct sigaction sa = {0};
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigaction(SIGSEGV, &sa, NULL);
    for (int k = 0; k < 3; k++) {
        fault_rip = 0;
        if (sigsetjmp(fault_jb, 1) == 0)
            race.fault(stk + pg - 8);
        check(fault_rip == (uintptr_t)race.site_sc && fault_addr == (uintptr_t)(stk + pg),
              "fault of the displaced load at the site");
    }
    signal(SIGSEGV, SIG_DFL);
    check(race.sc(SYS_getppid, 0, 0, 0, 0, 0, 0) == parent_pid, "site works after the fault");
    munmap(stk, pg);
    close(mapfd);
}

/* A blocking read through each shape, restarted (SA_RESTART: the restart
 * returns to the `syscall`'s address, a `ud2` once patched) or not. */
static void shapes_restart(void)
{
    struct shapes s;
    long pg = sysconf(_SC_PAGESIZE);
    check(pipe(rfd) == 0, "pipe");
    uint8_t *page = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    check(page != MAP_FAILED, "mmap");
    memset(page, 0xcc, pg);
    emit_shapes(page, &s);
    /* mov %rdi,%rax; mov $rfd[0],%edi; syscall; ret */
    uint8_t *er = page + 768;
    const uint8_t edi_read[] = {0x48, 0x89, 0xf8, 0xbf, (uint8_t)rfd[0], 0, 0, 0, 0x0f, 0x05, 0xc3};
    put(er, edi_read, sizeof edi_read);
    check(mprotect(page, pg, PROT_READ | PROT_EXEC) == 0, "mprotect");
    long (*edi_read_fn)(long, void *, long) = (long (*)(long, void *, long))er;
    for (int k = 0; k < 3; k++) {
        const char *name = k == 0 ? "mov-rax" : k == 1 ? "syscall(3)" : "mov-edi";
        char c, line[128];
        long bad = 0;
        for (int i = 0; i < 200; i++) {
            long r;
            bad += write(rfd[1], "a", 1) != 1;
            c = 0;
            if (k == 0)
                r = s.rax_read(rfd[0], &c, 1);
            else if (k == 1)
                r = s.sc(SYS_read, rfd[0], (long)&c, 1, 0, 0, 0);
            else
                r = edi_read_fn(SYS_read, &c, 1);
            bad += r != 1 || c != 'a';
        }
        snprintf(line, sizeof line, "%s: reads through the site", name);
        check(bad == 0, line);
        require_shape_patched(k == 0 ? (const uint8_t *)s.rax_read : k == 1 ? s.site_sc : er + 3, name);
        for (int restart = 1; restart >= 0; restart--) {
            struct sigaction sa = {0};
            sa.sa_handler = on_alarm;
            sa.sa_flags = restart ? SA_RESTART : 0;
            sigaction(SIGALRM, &sa, NULL);
            int before = alarms;
            struct itimerval it = {{0, 0}, {0, 20000}};
            setitimer(ITIMER_REAL, &it, NULL);
            long r;
            c = 0;
            if (k == 0)
                r = s.rax_read(rfd[0], &c, 1);
            else if (k == 1)
                r = s.sc(SYS_read, rfd[0], (long)&c, 1, 0, 0, 0);
            else
                r = edi_read_fn(SYS_read, &c, 1);
            if (restart) {
                snprintf(line, sizeof line, "%s: read restarted after the handler", name);
                check(r == 1 && c == 'r' && alarms == before + 1, line);
            } else {
                snprintf(line, sizeof line, "%s: read interrupted (EINTR)", name);
                check(r == -EINTR && alarms == before + 1, line);
                check(read(rfd[0], &c, 1) == 1 && c == 'r', "byte there after");
            }
        }
    }
    close(rfd[0]);
    close(rfd[1]);
}

/* ---- trace ----------------------------------------------------------- */

static void trace(void)
{
    int go[2], ready[2];
    check(pipe(go) == 0 && pipe(ready) == 0, "pipes");
    long pg = sysconf(_SC_PAGESIZE);
    uint8_t *p = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    emit(p + 16, SYS_getppid);
    struct shapes sh;
    emit_shapes(p + 1024, &sh);
    mprotect(p, pg, PROT_READ | PROT_EXEC);
    pid_t c = fork();
    if (c == 0) {
        long (*fn)(void) = (long (*)(void))(p + 16);
        for (int i = 0; i < 500; i++) {
            fn();
            sh.rax();
            sh.sc(SYS_getppid, 0, 0, 0, 0, 0, 0);
            sh.edi1(SYS_write, "", 0);
        }
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
    /* The other shapes' sites too. */
    for (int k = 0; k < 3; k++) {
        const uint8_t *site = k == 0 ? sh.site_rax : k == 1 ? sh.site_sc : sh.site_edi1;
        uint8_t want = k == 0 ? 0x48 : k == 1 ? 0x4c : 0xbf;
        errno = 0;
        word = ptrace(PTRACE_PEEKTEXT, c, site, 0);
        check(errno == 0 && (word & 0xff) == want, "PEEKTEXT sees another shape's original site");
    }
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

/* ---- cross ------------------------------------------------------------ */

static pthread_barrier_t xbar;
static uint8_t *xfn;
static long xwant, xarg, xcalls = 300;

static void *cross_worker(void *arg)
{
    (void)arg;
    long (*f)(long) = (long (*)(long))xfn;
    long bad = 0;
    pthread_barrier_wait(&xbar);
    for (long i = 0; i < xcalls; i++)
        bad += f(xarg) != xwant;
    return (void *)bad;
}

/* Five threads (this one and four) reach the fresh site together; with
 * `look`, this one instead reads its own code with process_vm_readv
 * while the four run through it (ruml restores every site then, one page
 * after the other for a site across two). */
static void cross_threads(const char *what, int look)
{
    pthread_t t[4];
    long bad = 0;
    pthread_barrier_init(&xbar, NULL, 5);
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, cross_worker, NULL);
    if (look) {
        uint8_t got[16];
        struct iovec l = {got, sizeof got}, r = {xfn, sizeof got};
        pthread_barrier_wait(&xbar);
        usleep(2000);
        check(process_vm_readv(getpid(), &l, 1, &r, 1, 0) == (ssize_t)sizeof got,
              "process_vm_readv of our own code");
    } else {
        bad += (long)cross_worker(NULL);
    }
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        bad += (long)r;
    }
    pthread_barrier_destroy(&xbar);
    check(bad == 0, what);
}

static void cross_race(const char *what)
{
    cross_threads(what, 0);
}

static void cross(void)
{
    long pg = sysconf(_SC_PAGESIZE);
    long ppid = getppid(), pgid = getpgid(0);
    /* getppid by `mov $110,%eax`, by `mov $110,%rax`, and getpgid(0) by
     * `mov $121,%eax` before a `mov $0,%edi; syscall` site (the caller's
     * edi, a pid that is not there, would give -ESRCH). */
    static const uint8_t nr32[] = {0xb8, 0x6e, 0, 0, 0, 0x0f, 0x05, 0xc3};
    static const uint8_t nr64[] = {0x48, 0xc7, 0xc0, 0x6e, 0, 0, 0, 0x0f, 0x05, 0xc3};
    static const uint8_t edi[] = {0xb8, 0x79, 0, 0, 0, 0xbf, 0, 0, 0, 0, 0x0f, 0x05, 0xc3};
    struct {
        const char *name;
        const uint8_t *code;
        int n, before, len;
        long want;
    } sh[] = {
        {"mov $nr,%eax", nr32, sizeof nr32, 0, 7, ppid},
        {"mov $nr,%rax", nr64, sizeof nr64, 0, 9, ppid},
        {"mov $imm,%edi", edi, sizeof edi, 5, 7, pgid},
    };
    uint8_t *p = mmap(NULL, 3 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    check(p != MAP_FAILED, "mmap cross");
    xarg = 0x7ffffff0;
    for (int s = 0; s < 3; s++) {
        for (int k = 1; k < sh[s].len; k++) {
            char line[160];
            uint8_t *site = p + pg - k;
            check(mprotect(p, 3 * pg, PROT_READ | PROT_WRITE) == 0, "mprotect cross rw-");
            memset(p, 0xcc, 3 * pg);
            memcpy(site - sh[s].before, sh[s].code, sh[s].n);
            check(mprotect(p, 3 * pg, PROT_READ | PROT_EXEC) == 0, "mprotect cross r-x");
            xfn = site - sh[s].before;
            xwant = sh[s].want;
            snprintf(line, sizeof line, "%s site, %d bytes on the first page: calls", sh[s].name, k);
            cross_race(line);
            if (expect_patched && (site[0] == 0xff) != (k >= sh[s].len - 2)) {
                printf("%s site, %d bytes on the first page: %s\n", sh[s].name, k,
                       site[0] == 0xff ? "patched" : "not patched");
                exit(3);
            }
            /* The second page made writable: both pages' bytes original. */
            check(mprotect(p + pg, pg, PROT_READ | PROT_WRITE) == 0, "mprotect second page rw-");
            snprintf(line, sizeof line, "%s site, %d bytes on the first page: original bytes", sh[s].name, k);
            check(memcmp(site - sh[s].before, sh[s].code, sh[s].n) == 0, line);
            check(mprotect(p + pg, pg, PROT_READ | PROT_EXEC) == 0, "mprotect second page r-x");
            snprintf(line, sizeof line, "%s site, %d bytes on the first page: calls again", sh[s].name, k);
            cross_race(line);
            /* The second page discarded: the first page's bytes original. */
            check(madvise(p + pg, pg, MADV_DONTNEED) == 0, "madvise second page");
            snprintf(line, sizeof line, "%s site, %d bytes on the first page: first page after discard", sh[s].name, k);
            check(memcmp(site - sh[s].before, sh[s].code, k + sh[s].before) == 0, line);
        }
    }
    /* Last (it turns patching off for good): a site across two pages,
     * patched, then restored while four threads run through it. */
    uint8_t *site = p + pg - 6;
    check(mprotect(p, 3 * pg, PROT_READ | PROT_WRITE) == 0, "mprotect cross rw-");
    memset(p, 0xcc, 3 * pg);
    memcpy(site - 5, edi, sizeof edi);
    check(mprotect(p, 3 * pg, PROT_READ | PROT_EXEC) == 0, "mprotect cross r-x");
    xfn = site - 5;
    xwant = pgid;
    cross_race("site across two pages: calls before the restore");
    require_patched(site, "site across two pages, before the restore");
    xcalls = 3000;
    cross_threads("site across two pages: calls while it is restored", 1);
    check(memcmp(site - 5, edi, sizeof edi) == 0, "site across two pages: original bytes after the restore");
    munmap(p, 3 * pg);
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
    if (all || !strcmp(what, "shapes"))
        shapes();
    if (all || !strcmp(what, "shapes-restart"))
        shapes_restart();
    if (all || !strcmp(what, "cross"))
        cross();
    return 0;
}
