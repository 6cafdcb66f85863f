/* The seccomp stub's signal-less system-call entry (crate::patch,
 * "patch=on"), driven the way a patched site drives it: rax = the
 * arithmetic flags (lahf, seto), rcx = the GS base (the thread's control
 * page), r11 = a block holding the return address (+32) and the number
 * (+40), then jmp *%gs:88. With a GS base of zero (natively, the ptrace
 * backend, patch=off) the same calls go through a plain `syscall`, so the
 * output must be the same everywhere: a differential test.
 *
 * Checks: results, every register the ABI preserves across `syscall`
 * (general, flags, SSE and AVX), rcx/r11 as `syscall` leaves them, EINTR
 * and SA_RESTART (a restart re-executes the `syscall` just before the
 * return address), threads hammering the entry while signals hit them,
 * fork. With "require", exits 3 if the entry is not there. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

struct blk {
    char pad[32];
    uint64_t ret;
    uint32_t nr;
    uint32_t pad2;
};

static __thread struct blk tb;

static uint64_t gsbase(void)
{
    uint64_t v;
    asm volatile("rdgsbase %0" : "=r"(v));
    return v;
}

static int have_entry;

/* One system call through the entry (or a plain syscall when there is
 * none); returns rax, and rcx/r11 as they came back. */
static long sc(long nr, long a0, long a1, long a2, long a3, long a4, long a5, uint64_t *rcx_out,
               uint64_t *r11_out)
{
    register long r10 asm("r10") = a3;
    register long r8 asm("r8") = a4;
    register long r9 asm("r9") = a5;
    long ret;
    uint64_t rcx;
    register uint64_t r11 asm("r11");
    if (have_entry) {
        tb.nr = (uint32_t)nr;
        asm volatile("lea 1f(%%rip), %%rax\n\t"
                     "mov %%rax, 32(%[b])\n\t"
                     "mov %[b], %%r11\n\t"
                     "lahf\n\t"
                     "seto %%al\n\t"
                     "rdgsbase %%rcx\n\t"
                     "jmp *%%gs:88\n\t"
                     "mov %[nr], %%eax\n\t" /* a restart lands on this syscall */
                     "syscall\n\t"
                     "1:\n\t"
                     : "=&a"(ret), "=&c"(rcx), "=&r"(r11)
                     : [b] "r"(&tb), [nr] "i"(0), "D"(a0), "S"(a1), "d"(a2), "r"(r10), "r"(r8),
                       "r"(r9)
                     : "memory", "cc");
        (void)nr;
    } else {
        asm volatile("syscall"
                     : "=a"(ret), "=c"(rcx), "=r"(r11)
                     : "a"(nr), "D"(a0), "S"(a1), "d"(a2), "r"(r10), "r"(r8), "r"(r9)
                     : "memory", "cc");
    }
    uint64_t r11v = r11;
    if (rcx_out)
        *rcx_out = rcx;
    if (r11_out)
        *r11_out = r11v;
    return ret;
}

#define SC0(nr) sc(nr, 0, 0, 0, 0, 0, 0, 0, 0)
#define SC3(nr, a, b, c) sc(nr, (long)(a), (long)(b), (long)(c), 0, 0, 0, 0, 0)

static void check(int ok, const char *what)
{
    printf("%s: %s\n", what, ok ? "ok" : "FAILED");
    if (!ok)
        exit(1);
}

/* Registers and flags across one getppid through the entry. */
static void registers(void)
{
    uint64_t in[7] = {0x1111111111111111, 0x2222222222222222, 0x3333333333333333,
                      0x4444444444444444, 0x5555555555555555, 0x6666666666666666,
                      0x7777777777777777};
    uint64_t out[7];
    register uint64_t fl asm("r9");
    uint64_t flags;
    tb.nr = SYS_getppid;
    /* One sequence for both ways in: with the entry, jmp *%gs:88 returns
     * to 1 (and a restart would land on the `syscall` just before it);
     * without, the plain `mov $110,%eax; syscall`. jrcxz picks the way
     * without touching the flags set just before. */
    asm volatile("mov %k[e], %%ecx\n\t"
                 "push %%rbx\n\t"
                 "push %%rbp\n\t"
                 "mov 0(%[in]), %%rbx\n\t"
                 "mov 8(%[in]), %%rbp\n\t"
                 "mov 16(%[in]), %%r12\n\t"
                 "mov 24(%[in]), %%r13\n\t"
                 "mov 32(%[in]), %%r14\n\t"
                 "mov 40(%[in]), %%r15\n\t"
                 "mov 48(%[in]), %%r8\n\t"
                 "lea 1f(%%rip), %%rax\n\t"
                 "mov %%rax, 32(%[b])\n\t"
                 "mov %[b], %%r11\n\t"
                 /* CF=1, OF=1, ZF=0, SF=1: 0x7f...ff + 1 */
                 "mov $0x7fffffffffffffff, %%rax\n\t"
                 "add $1, %%rax\n\t"
                 "stc\n\t"
                 "jrcxz 2f\n\t"
                 "lahf\n\t"
                 "seto %%al\n\t"
                 "rdgsbase %%rcx\n\t"
                 "jmp *%%gs:88\n\t"
                 "2:\n\t"
                 "mov $110, %%eax\n\t"
                 "syscall\n\t"
                 "1:\n\t"
                 "pushfq\n\t"
                 "pop %[fl]\n\t"
                 "mov %%rbx, 0(%[out])\n\t"
                 "mov %%rbp, 8(%[out])\n\t"
                 "mov %%r12, 16(%[out])\n\t"
                 "mov %%r13, 24(%[out])\n\t"
                 "mov %%r14, 32(%[out])\n\t"
                 "mov %%r15, 40(%[out])\n\t"
                 "mov %%r8, 48(%[out])\n\t"
                 "pop %%rbp\n\t"
                 "pop %%rbx\n\t"
                 : [fl] "=r"(fl)
                 : [in] "D"(in), [out] "d"(out), [b] "S"(&tb), [e] "m"(have_entry)
                 : "rax", "rcx", "r8", "r11", "r12", "r13", "r14", "r15", "memory", "cc");
    flags = fl;
    check(memcmp(in, out, sizeof in) == 0, "general registers preserved");
    /* CF, PF, AF, SF, OF set; ZF and DF clear. */
    check((flags & 0xcd5) == 0x895, "flags preserved");

    /* rcx = the return address, r11 = rflags, as after `syscall`. */
    uint64_t rcx, r11;
    long r = sc(SYS_getppid, 0, 0, 0, 0, 0, 0, &rcx, &r11);
    check(r == getppid(), "getppid result");
    check((r11 & 0x202) == 0x202 && rcx != 0, "rcx and r11 as syscall leaves them");

    /* SSE and, if there is AVX, the upper halves of the ymm registers. */
    static uint8_t pat[32] __attribute__((aligned(32))), got[32] __attribute__((aligned(32)));
    for (int i = 0; i < 32; i++)
        pat[i] = (uint8_t)(i * 7 + 3);
    memset(got, 0, sizeof got);
    int avx = __builtin_cpu_supports("avx");
    if (avx)
        asm volatile("vmovdqa %0, %%ymm7" ::"m"(pat) : "xmm7");
    else
        asm volatile("movdqa %0, %%xmm7" ::"m"(pat) : "xmm7");
    SC0(SYS_getppid);
    if (avx)
        asm volatile("vmovdqa %%ymm7, %0\n\tvzeroupper" : "=m"(got)::"xmm7");
    else
        asm volatile("movdqa %%xmm7, %0" : "=m"(got)::"xmm7");
    check(memcmp(pat, got, avx ? 32 : 16) == 0, "vector registers preserved");
}

static volatile sig_atomic_t hits;
static int pfd[2];

static void on_alarm(int s)
{
    (void)s;
    hits++;
}

static void on_alarm_write(int s)
{
    (void)s;
    hits++;
    char c = 'x';
    if (write(pfd[1], &c, 1) != 1)
        _exit(9);
}

static void interrupted(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    char c;
    struct itimerval it = {{0, 0}, {0, 50000}};

    /* No SA_RESTART: read fails with EINTR. */
    if (pipe(pfd) != 0)
        exit(2);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, 0);
    setitimer(ITIMER_REAL, &it, 0);
    long r = SC3(SYS_read, pfd[0], &c, 1);
    check(r == -EINTR && hits == 1, "read interrupted: EINTR");

    /* SA_RESTART: the handler writes a byte, the restarted read gets it. */
    sa.sa_handler = on_alarm_write;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, 0);
    setitimer(ITIMER_REAL, &it, 0);
    r = SC3(SYS_read, pfd[0], &c, 1);
    check(r == 1 && c == 'x' && hits == 2, "read restarted after SA_RESTART");
    close(pfd[0]);
    close(pfd[1]);
}

#define NTHREADS 4
#define CALLS 20000
static volatile int stop;
static volatile sig_atomic_t usr1;
static void on_usr1(int s)
{
    (void)s;
    usr1++;
}

static void *hammer(void *arg)
{
    long bad = 0;
    long ppid = getppid();
    long tid = syscall(SYS_gettid);
    for (int i = 0; i < CALLS; i++) {
        if (have_entry && gsbase() == 0)
            bad++;
        if (SC0(SYS_getppid) != ppid)
            bad++;
        if (SC0(SYS_gettid) != tid)
            bad++;
    }
    *(long *)arg = bad;
    return 0;
}

static void threads(void)
{
    pthread_t t[NTHREADS];
    long bad[NTHREADS];
    signal(SIGUSR1, on_usr1);
    for (int i = 0; i < NTHREADS; i++)
        pthread_create(&t[i], 0, hammer, &bad[i]);
    /* Signals into the hammering threads: kicks land anywhere, also in
     * the entry. */
    for (int k = 0; k < 200; k++)
        for (int i = 0; i < NTHREADS; i++)
            pthread_kill(t[i], SIGUSR1);
    long total = 0;
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(t[i], 0);
        total += bad[i];
    }
    check(total == 0, "threads hammering the entry under signals");
}

static void forked(void)
{
    pid_t p = fork();
    if (p == 0) {
        long me = SC0(SYS_getpid);
        _exit(me == getpid() && (!have_entry || gsbase() != 0) ? 0 : 1);
    }
    int st;
    waitpid(p, &st, 0);
    check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "fork: the child uses the entry");
    const char msg[] = "write through the entry\n";
    fflush(stdout);
    check(SC3(SYS_write, 1, msg, sizeof msg - 1) == (long)sizeof msg - 1, "write");
}

int main(int argc, char **argv)
{
    have_entry = gsbase() != 0;
    if (argc > 1 && strcmp(argv[1], "require") == 0 && !have_entry)
        return 3;
    setvbuf(stdout, 0, _IONBF, 0);
    registers();
    interrupted();
    threads();
    forked();
    return 0;
}
