/* Attacks on ruml's stub from inside a guest (crates/ruml/tests/security.rs).
 *
 * `stub_attack victim`: plants a secret in its memory and in a tmpfs file
 * (the kernel's page cache), says "victim-ready", and sleeps.
 * `stub_attack attack`: forks the victim, then attacks. Each process
 * learns where its own stub is by asking the test: it prints "base?" and
 * reads candidate addresses from stdin (the test takes them from the
 * host's /proc/PID/maps of every stub process; the one this process can
 * read is its own). Then:
 *   - jumps into every byte of the stub's code page with crafted
 *     registers (pointers at the stub's pages, the numbers of every system
 *     call the stub makes), and into each `syscall` instruction with each
 *     of those numbers;
 *   - rewrites the stub's writable pages in a tight loop while other
 *     threads map, unmap, protect and create threads;
 *   - calls rt_sigreturn through the stub with a forged frame (all host
 *     signals blocked, a bogus alternate stack);
 *   - runs int 0x80, sysenter, a far jump to a 32-bit code segment, x32
 *     system-call numbers, the vsyscall page;
 *   - maps, unmaps and protects over the stub.
 * Each attack runs in a child (sharing memory when it needs the stub) and
 * reports how that child ended. Finally it scans every page it can read,
 * the stub's included, for the victim's secret, and prints "done".
 * The secret is a function of its offset, never stored whole by the
 * attacker, so finding it means reading the victim's memory.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SECRET_LEN 64
static unsigned char secret_byte(int i) { return (unsigned char)(0x5a ^ (i * 37 + 11)); }

static int victim(void) {
    size_t len = 1 << 20;
    unsigned char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return 1;
    for (size_t off = 0; off + SECRET_LEN <= len; off += SECRET_LEN)
        for (int i = 0; i < SECRET_LEN; i++) m[off + i] = secret_byte(i);
    int fd = open("/tmp/ruml-secret", O_CREAT | O_TRUNC | O_WRONLY, 0600);
    if (fd >= 0) {
        for (int k = 0; k < 256; k++) {
            if (write(fd, m, 4096) != 4096) break;
        }
        close(fd);
    }
    /* One write(2) per line: printf("...\n") becomes puts, which writes
     * the text and the newline separately, and the attacker's "base?"
     * may land between them. */
    if (write(1, "victim-ready\n", 13) != 13) return 1;
    sleep(120);
    return 0;
}

/* ---- reading memory that may not be there ---------------------------- */
static sigjmp_buf probe_jmp;
static void probe_segv(int sig) {
    (void)sig;
    siglongjmp(probe_jmp, 1);
}

static int readable(volatile const unsigned char *p) {
    struct sigaction sa = {0}, o1, o2;
    sa.sa_handler = probe_segv;
    sigaction(SIGSEGV, &sa, &o1);
    sigaction(SIGBUS, &sa, &o2);
    int ok = 0;
    if (sigsetjmp(probe_jmp, 1) == 0) {
        (void)*p;
        ok = 1;
    }
    sigaction(SIGSEGV, &o1, NULL);
    sigaction(SIGBUS, &o2, NULL);
    return ok;
}

static int scan_page(const unsigned char *p) {
    for (int off = 0; off + SECRET_LEN <= 4096; off++) {
        int i = 0;
        while (i < SECRET_LEN && p[off + i] == secret_byte(i)) i++;
        if (i == SECRET_LEN) return 1;
    }
    return 0;
}

static int scan_range(uintptr_t lo, uintptr_t hi) {
    int found = 0;
    for (uintptr_t a = lo; a < hi; a += 4096)
        if (readable((const unsigned char *)a) && scan_page((const unsigned char *)a)) found = 1;
    return found;
}

/* ---- where is my stub? -------------------------------------------------- */
static uintptr_t stub_base;

static int read_line(char *b, int n) {
    int i = 0;
    while (i < n - 1) {
        char c;
        if (read(0, &c, 1) != 1) return -1;
        if (c == '\n') break;
        b[i++] = c;
    }
    b[i] = 0;
    return i;
}

static uintptr_t query_base(void) {
    char line[64];
    uintptr_t found = 0;
    if (write(1, "base?\n", 6) != 6) return 0;
    while (read_line(line, sizeof line) >= 0 && strcmp(line, "end")) {
        uintptr_t a = strtoull(line, NULL, 0);
        if (!found && a && readable((unsigned char *)a)) found = a;
    }
    return found;
}

/* ---- children ------------------------------------------------------------ */
static const char *outcome(int st) {
    static char b[64];
    if (WIFSIGNALED(st)) snprintf(b, sizeof b, "killed by signal %d", WTERMSIG(st));
    else snprintf(b, sizeof b, "exit %d", WEXITSTATUS(st));
    return b;
}

/* Runs fn(arg) in a forked child that first finds its own stub; returns
 * its wait status. A child still running after 10 s is killed. */
static int run_child(void (*fn)(uintptr_t), uintptr_t arg) {
    pid_t pid = fork();
    if (pid == 0) {
        stub_base = query_base();
        if (!stub_base) _exit(99);
        ualarm(50000, 0); /* whatever it does, it ends soon */
        fn(arg);
        _exit(0);
    }
    if (pid < 0) return -1;
    int st = 0;
    for (int i = 0; i < 1000; i++) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) return st;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return st;
}

/* ---- the attacks --------------------------------------------------------- */
static const long nrs[] = {SYS_futex, SYS_rt_sigreturn, SYS_exit, SYS_mmap, SYS_munmap,
                           SYS_mprotect, SYS_pwrite64, SYS_clone, SYS_sigaltstack,
                           SYS_rt_sigprocmask, SYS_seccomp, SYS_getpid, SYS_execve, SYS_open};
#define NNRS (sizeof nrs / sizeof nrs[0])

static uintptr_t jump_target; /* offset in the stub's code page */
static long jump_nr;
/* Jumps to jump_target with every register crafted: pointers at the stub's
 * pages (the requests page, the doorbell, a thread slot far from ours),
 * physmem's fd number, and the system-call number in rax. */
static void do_jump(uintptr_t variant) {
    uintptr_t req = stub_base + 0x1000, bell = stub_base + 0x3000;
    uintptr_t slot = stub_base + 0x10000 + 0x4000 * (40 + variant % 8);
    static uintptr_t regs[8];
    regs[0] = stub_base + jump_target;
    regs[1] = (uintptr_t)jump_nr;
    regs[2] = variant & 1 ? slot : req; /* rdi */
    regs[3] = variant & 2 ? 1 : 4096;   /* rsi */
    regs[4] = variant & 4 ? 3 : 7;      /* rdx */
    regs[5] = variant & 1 ? 0 : (MAP_SHARED | MAP_FIXED); /* r10 */
    regs[6] = 3;                        /* r8: physmem's fd in the stub */
    regs[7] = bell;
    __asm__ volatile(
        "mov %0, %%r15\n"
        "mov 8(%%r15), %%rax\n"
        "mov 16(%%r15), %%rdi\n"
        "mov 24(%%r15), %%rsi\n"
        "mov 32(%%r15), %%rdx\n"
        "mov 40(%%r15), %%r10\n"
        "mov 48(%%r15), %%r8\n"
        "xor %%r9d, %%r9d\n"
        "mov 56(%%r15), %%rbx\n"
        "mov %%rdi, %%r12\n"
        "mov %%rdi, %%r13\n"
        "mov %%rbx, %%r14\n"
        "mov %%rsi, %%rbp\n"
        "mov 0(%%r15), %%rcx\n"
        "mov %%rbx, %%r15\n"
        "jmp *%%rcx\n"
        :
        : "r"(regs)
        : "memory");
}

static void jump_sweep(void) {
    int n = 0, bad = 0;
    const unsigned char *code = (const unsigned char *)stub_base;
    int len = 4096;
    while (len > 0 && code[len - 1] == 0) len--;
    len += 16;
    if (len > 4096) len = 4096;
    for (int off = 0; off < len; off++) {
        jump_target = off;
        jump_nr = nrs[off % NNRS];
        int st = run_child(do_jump, off);
        n++;
        if (st < 0 || (WIFEXITED(st) && WEXITSTATUS(st) == 99)) bad++;
    }
    /* Each syscall instruction with every number. */
    for (int off = 0; off + 1 < len; off++) {
        if (code[off] != 0x0f || code[off + 1] != 0x05) continue;
        for (unsigned k = 0; k < NNRS; k++)
            {
                jump_target = off;
                jump_nr = nrs[k];
                int st = run_child(do_jump, k);
                n++;
                if (st < 0 || (WIFEXITED(st) && WEXITSTATUS(st) == 99)) bad++;
            }
    }
    printf("jump: %d attempts ended, %d could not start\n", n, bad);
}

static volatile int stop_hammer;
static int hammer_thread(void *arg) {
    uint64_t x = 88172645463325252ull;
    while (!stop_hammer) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        volatile uint32_t *bell = (uint32_t *)(stub_base + 0x3000);
        bell[(x >> 8) % 1024] = (uint32_t)x;
        /* Control pages and stacks of other threads' slots (ours is 0). */
        uintptr_t slot = stub_base + 0x10000 + 0x4000 * (1 + (x >> 20) % 8);
        if (readable((unsigned char *)slot)) {
            volatile uint64_t *w = (uint64_t *)slot;
            w[(x >> 32) % 16] = x;
        }
    }
    return 0;
}

static void rewrite_pages(uintptr_t unused) {
    (void)unused;
    char *stk = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    clone(hammer_thread, stk + (1 << 16) - 64,
          CLONE_VM | CLONE_THREAD | CLONE_SIGHAND | CLONE_FS | CLONE_FILES, NULL);
    /* Requests in flight: maps, protections, unmaps and new processes. */
    for (int i = 0; i < 300; i++) {
        char *p = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) continue;
        p[0] = 1;
        mprotect(p, 4096, PROT_READ);
        munmap(p, 65536);
        if (i % 50 == 0) {
            pid_t c = fork();
            if (c == 0) _exit(0);
            if (c > 0) waitpid(c, NULL, 0);
        }
    }
    stop_hammer = 1;
    /* The read-only pages must stay read-only. */
    int w = 0;
    struct sigaction sa = {0};
    sa.sa_handler = probe_segv;
    sigaction(SIGSEGV, &sa, NULL);
    if (sigsetjmp(probe_jmp, 1) == 0) {
        *(volatile uint64_t *)(stub_base + 0x1000) = 7;
        w = 1;
    }
    _exit(w ? 3 : 0);
}

/* rt_sigreturn through the stub with a forged frame: every host signal
 * blocked, a bogus alternate stack, rip at a spot that then makes a
 * system call (which must not get through). */
static void landing(void) {
    syscall(SYS_getpid);
    syscall(SYS_exit_group, 42);
    for (;;) ;
}
static void forged_sigreturn(uintptr_t variant) {
    static uint64_t frame[128] __attribute__((aligned(16)));
    uintptr_t site = 0;
    const unsigned char *code = (const unsigned char *)stub_base;
    /* The sigreturn site: `mov $15, %eax; syscall` in the stub. */
    for (int off = 0; off + 7 < 4096; off++)
        if (code[off] == 0xb8 && code[off + 1] == 15 && code[off + 2] == 0 && code[off + 5] == 0x0f &&
            code[off + 6] == 0x05)
            site = stub_base + off + 5;
    if (!site) _exit(5);
    memset(frame, 0, sizeof frame);
    uint64_t *uc = frame;                      /* rsp points at the ucontext */
    uc[2] = variant & 1 ? 0x1000 : stub_base;  /* uc_stack.ss_sp */
    uc[4] = 0x10000;                           /* uc_stack.ss_size */
    uint64_t *g = uc + 5;                      /* sigcontext */
    g[15] = (uint64_t)(frame + 120);           /* rsp */
    g[16] = (uint64_t)landing;                 /* rip */
    g[17] = 0x202;                             /* eflags */
    g[18] = variant & 2 ? 0x2b000000000023ull : 0x2b000000000033ull; /* cs/ss */
    uc[37] = ~0ull;                            /* uc_sigmask: block everything */
    __asm__ volatile("mov %0, %%rsp\n mov $15, %%eax\n jmp *%1\n" : : "r"(uc), "r"(site) : "memory");
}

static void int80(uintptr_t nr) {
    long r;
    __asm__ volatile("int $0x80" : "=a"(r) : "a"(nr), "b"(0), "c"(0), "d"(0) : "memory");
    printf("int80 returned %ld\n", r);
}

static void sysenter_(uintptr_t u) {
    (void)u;
    __asm__ volatile("mov $20, %%eax\n sysenter\n" : : : "rax", "rcx", "r11", "memory");
}

static void far32(uintptr_t u) {
    (void)u;
    /* 32-bit code at a low address: int $0x80 (exit) then syscall. */
    unsigned char *p = mmap((void *)0x100000, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (p == MAP_FAILED) _exit(6);
    unsigned char code[] = {0xb8, 20, 0, 0, 0, 0xcd, 0x80, /* getpid via int 0x80 */
                            0xb8, 39, 0, 0, 0, 0x0f, 0x05, /* syscall */
                            0xeb, 0xfe};
    memcpy(p, code, sizeof code);
    struct { uint32_t off; uint16_t sel; } __attribute__((packed)) target = {0x100000, 0x23};
    __asm__ volatile("ljmp *%0" : : "m"(target) : "memory");
}

static void x32(uintptr_t u) {
    (void)u;
    long r = syscall(0x40000000 | SYS_getpid);
    _exit(r == -1 && errno == ENOSYS ? 0 : 7);
}

static void vsyscall(uintptr_t u) {
    (void)u;
    struct { long s, us; } tv;
    long (*gtod)(void *, void *) = (void *)0xffffffffff600000ul;
    long r = gtod(&tv, NULL);
    _exit(r == 0 ? 0 : 8);
}

static void over_stub(void) {
    struct { const char *what; long r; } t[6];
    t[0].what = "mmap MAP_FIXED over the stub";
    t[0].r = (long)mmap((void *)stub_base, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    t[1].what = "mmap hint at the stub";
    void *h = mmap((void *)stub_base, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    t[1].r = (uintptr_t)h >= stub_base && (uintptr_t)h < stub_base + 0x10000 ? 0 : -1;
    t[2].what = "munmap of the stub";
    t[2].r = munmap((void *)stub_base, 0x10000);
    t[3].what = "mprotect of the stub";
    t[3].r = mprotect((void *)stub_base, 4096, PROT_READ | PROT_WRITE | PROT_EXEC);
    t[4].what = "mremap onto the stub";
    void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    t[4].r = (long)mremap(m, 4096, 4096, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)stub_base);
    t[5].what = "munmap of everything";
    t[5].r = 0;
    for (int i = 0; i < 5; i++) {
        int refused = t[i].r == -1 || (i == 1 && t[i].r == -1);
        if (i == 1) refused = t[i].r != 0;
        printf("%s: %s\n", t[i].what, refused ? "refused" : "ALLOWED");
    }
    /* The stub's code is still intact and ours to read. */
    printf("stub still mapped: %s\n", readable((unsigned char *)stub_base) ? "yes" : "no");
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc > 1 && !strcmp(argv[1], "victim")) return victim();
    if (argc < 2 || strcmp(argv[1], "attack")) return 2;
    pid_t v = fork();
    if (v == 0) return victim();
    /* The victim's secret is in place once its file is complete. */
    for (int i = 0; i < 3000; i++) {
        int fd = open("/tmp/ruml-secret", O_RDONLY);
        off_t sz = fd >= 0 ? lseek(fd, 0, SEEK_END) : 0;
        if (fd >= 0) close(fd);
        if (sz == 256 * 4096) break;
        usleep(10000);
    }
    stub_base = query_base();
    if (!stub_base) {
        printf("no stub found\n");
        return 3;
    }
    printf("stub found\n");
    over_stub();
    printf("int80: %s\n", outcome(run_child(int80, SYS_getpid)));
    printf("int80 exit: %s\n", outcome(run_child(int80, 1)));
    printf("sysenter: %s\n", outcome(run_child(sysenter_, 0)));
    printf("far jump to cs 0x23: %s\n", outcome(run_child(far32, 0)));
    printf("x32 getpid: %s\n", outcome(run_child(x32, 0)));
    printf("vsyscall gettimeofday: %s\n", outcome(run_child(vsyscall, 0)));
    for (int k = 0; k < 4; k++)
        printf("forged rt_sigreturn %d: %s\n", k, outcome(run_child(forged_sigreturn, k)));
    printf("rewrite shared pages: %s\n", outcome(run_child(rewrite_pages, 0)));
    jump_sweep();
    /* Everything readable: our own mappings and the stub's area. */
    int found = scan_range(stub_base, stub_base + 0x10000 + 0x4000 * 64);
    FILE *maps = fopen("/proc/self/maps", "r");
    char l[512];
    while (maps && fgets(l, sizeof l, maps)) {
        unsigned long lo, hi;
        char perm[8];
        if (sscanf(l, "%lx-%lx %7s", &lo, &hi, perm) == 3 && perm[0] == 'r' && hi - lo <= (64ul << 20))
            found |= scan_range(lo, hi);
    }
    printf("%s\n", found ? "SECRET FOUND" : "secret not found");
    kill(v, SIGKILL);
    waitpid(v, NULL, 0);
    unlink("/tmp/ruml-secret");
    printf("done\n");
    return 0;
}
