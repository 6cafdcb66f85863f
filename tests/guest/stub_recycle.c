/* What a process must not inherit from one that ended before it: ruml's
 * seccomp backend keeps the stub process of an ended single-threaded
 * process (every guest mapping removed, its thread parked) and gives it
 * to a later fork or exec. Dirty children leave secrets in their
 * registers (xmm8-15, MXCSR, the x87 control word), in a page at a fixed
 * address and in their CPU time, then end; fresh images exec'd after
 * them report what they start with. Linux's answers are the reference.
 *
 *   stub_recycle [ROUNDS]
 *
 * Output is deterministic. */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define SECRET_ADDR ((void *)0x3e0000000000UL)
#define PG 4096

static sigjmp_buf env;

static void on_segv(int sig)
{
    (void)sig;
    siglongjmp(env, 1);
}

static long cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec * 1000000L + ru.ru_utime.tv_usec +
           ru.ru_stime.tv_sec * 1000000L + ru.ru_stime.tv_usec;
}

static void *thread_fn(void *arg)
{
    return arg;
}

/* Fills a page at SECRET_ADDR and the registers with a pattern, burns
 * 300 ms of CPU if asked, and ends with the registers still set. Kind 1
 * makes and joins a thread first, kind 2 vforks a child that execs
 * itself: a process that had more than one thread. */
static void dirty_child(int burn, int kind, const char *self)
{
    if (kind == 1) {
        pthread_t t;
        if (pthread_create(&t, NULL, thread_fn, NULL) != 0 || pthread_join(t, NULL) != 0)
            _exit(6);
    } else if (kind == 2) {
        pid_t v = vfork();
        if (v == 0) {
            char *args[] = {(char *)self, "nop", NULL};
            execv(self, args);
            _exit(7);
        }
        int st;
        if (v < 0 || waitpid(v, &st, 0) != v || st != 0)
            _exit(8);
    }
    char *p = mmap(SECRET_ADDR, PG, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (p == MAP_FAILED)
        _exit(3);
    memset(p, 0x5a, PG);
    volatile double x = 1.0;
    while (burn && cpu_us() < 300000)
        for (long i = 0; i < 100000; i++)
            x *= 1.0000001;
    static const uint64_t pat[2] = {0x5a5a5a5a5a5a5a5aULL, 0xa5a5a5a5a5a5a5a5ULL};
    uint32_t mxcsr = 0x7f80; /* round toward zero, all masked */
    uint16_t fcw = 0x0c7f;   /* x87: round toward zero, all masked */
    __asm__ volatile(
        "movdqu (%0), %%xmm8\n\t"
        "movdqa %%xmm8, %%xmm9\n\t"
        "movdqa %%xmm8, %%xmm10\n\t"
        "movdqa %%xmm8, %%xmm11\n\t"
        "movdqa %%xmm8, %%xmm12\n\t"
        "movdqa %%xmm8, %%xmm13\n\t"
        "movdqa %%xmm8, %%xmm14\n\t"
        "movdqa %%xmm8, %%xmm15\n\t"
        "ldmxcsr (%1)\n\t"
        "fldcw (%2)\n\t"
        "mov $60, %%eax\n\t"
        "xor %%edi, %%edi\n\t"
        "syscall\n\t"
        :
        : "r"(pat), "r"(&mxcsr), "r"(&fcw)
        : "rax", "rdi", "memory");
    _exit(4);
}

/* A freshly exec'd image: what it starts with. */
static int check(void)
{
    uint64_t x[16];
    uint32_t mxcsr;
    uint16_t fcw;
    __asm__ volatile(
        "movdqu %%xmm8, 0(%0)\n\t"
        "movdqu %%xmm9, 16(%0)\n\t"
        "movdqu %%xmm10, 32(%0)\n\t"
        "movdqu %%xmm11, 48(%0)\n\t"
        "movdqu %%xmm12, 64(%0)\n\t"
        "movdqu %%xmm13, 80(%0)\n\t"
        "movdqu %%xmm14, 96(%0)\n\t"
        "movdqu %%xmm15, 112(%0)\n\t"
        "stmxcsr (%1)\n\t"
        "fnstcw (%2)\n\t"
        :
        : "r"(x), "r"(&mxcsr), "r"(&fcw)
        : "memory");
    int pattern = 0;
    for (int i = 0; i < 16; i++)
        if (x[i] == 0x5a5a5a5a5a5a5a5aULL || x[i] == 0xa5a5a5a5a5a5a5a5ULL)
            pattern++;
    printf("xmm8-15 hold the old pattern: %d words; mxcsr %#x; fcw %#x\n",
           pattern, mxcsr & ~0x3fu, fcw);
    struct sigaction sa = {0};
    sa.sa_handler = on_segv;
    sigaction(SIGSEGV, &sa, NULL);
    if (sigsetjmp(env, 1) == 0) {
        volatile char c = *(volatile char *)SECRET_ADDR;
        printf("old page readable: yes (%#x)\n", (unsigned char)c);
    } else {
        printf("old page readable: no\n");
    }
    /* A fresh image has used far less than a dirty child's 300 ms. */
    printf("cpu time of a fresh image under 200 ms: %s\n",
           cpu_us() < 200000 ? "yes" : "no");
    fflush(stdout);
    return 0;
}

static int wait_child(pid_t p)
{
    int st;
    if (waitpid(p, &st, 0) != p)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "check") == 0)
        return check();
    if (argc > 1 && strcmp(argv[1], "nop") == 0)
        return 0;
    int rounds = argc > 1 ? atoi(argv[1]) : 3;
    for (int r = 0; r < rounds; r++) {
        /* Dirty children first (single-threaded, with a thread, with a
         * vfork), so that a stub they leave is what the next fork and
         * exec take. */
        for (int d = 0; d < 3; d++) {
            pid_t p = fork();
            if (p == 0)
                dirty_child(d == 0, (r + d) % 3, "/proc/self/exe");
            int st = wait_child(p);
            if (st != 0)
                printf("round %d: dirty child ended with %d\n", r, st);
        }
        pid_t p = fork();
        if (p == 0) {
            char *args[] = {argv[0], "check", NULL};
            execv("/proc/self/exe", args);
            _exit(5);
        }
        int st = wait_child(p);
        printf("round %d: checker ended with %d\n", r, st);
        fflush(stdout);
    }
    /* A fork child after a dirty one: its CPU time starts near zero too
     * (the parent itself has used little). */
    pid_t p = fork();
    if (p == 0)
        dirty_child(1, 0, "/proc/self/exe");
    wait_child(p);
    p = fork();
    if (p == 0) {
        printf("fork child's cpu time under 200 ms: %s\n",
               cpu_us() < 200000 ? "yes" : "no");
        fflush(stdout);
        _exit(0);
    }
    wait_child(p);
    return 0;
}
