/* Hostile input for the calls of "Linux conformance II": mlock*, mincore,
 * madvise, remap_file_pages, mseal, fcntl leases/notify/owner/sig,
 * fanotify, file handles, xattrs, epoll, inotify, splice/vmsplice/tee,
 * Linux AIO, io_uring, futex/futex_waitv, keyrings, kcmp, close_range,
 * pidfds, waitid and clone, /proc/self/pagemap, all with random arguments from a seeded
 * generator (the seed is printed) for SECONDS seconds.
 *
 * Pointers are drawn from: NULL, a pool of valid read-write memory
 * filled with random bytes and pool pointers, a read-only page, an
 * unmapped page, non-canonical and kernel addresses. The fuzzer never
 * passes its own stack or data, and memory-management calls only touch
 * the pool, so whatever the kernel does with the arguments cannot kill
 * the fuzzer itself. Blocking calls are cut short by a 20 ms interval
 * timer (handlers without SA_RESTART). Every signal a random call can
 * send is caught; a genuine fault in the fuzzer ends it with status 3.
 *
 * Usage: conf2_fuzz SECONDS SEED [MARKDIR|-] [v|-] [SKIP]: v prints each
 * call's case number to stderr, SKIP lists case numbers not to make
 * (comma-separated), both for narrowing a failure down. With MARKDIR, writes
 * MARKDIR/warm after the first fifth of the time and MARKDIR/end at the
 * end, then waits (bounded) for MARKDIR/go, so that the host can sample
 * the kernel's memory in between. Prints "survived N calls" at the end. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_mseal
#define SYS_mseal 462
#endif
#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_io_uring_setup
#define SYS_io_uring_setup 425
#define SYS_io_uring_enter 426
#define SYS_io_uring_register 427
#endif
#ifndef SYS_io_pgetevents
#define SYS_io_pgetevents 333
#endif

static uint64_t state;
static uint64_t rnd64(void) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}
static uint32_t rnd(void) { return (uint32_t)(rnd64() >> 17); }
static uint32_t below(uint32_t n) { return n ? rnd() % n : 0; }

#define POOL_SIZE (256 * 1024)
static unsigned char *pool;   /* read-write, random contents */
static unsigned char *ropage; /* read-only */
static unsigned char *hole;   /* unmapped */
static unsigned char *mempool; /* target of mm calls: 64 pages */
#define MEMPOOL_PAGES 64

/* Descriptors the calls get: the fuzzer's own objects, refreshed. */
#define NFDS 24
static int fds[NFDS];
static pid_t kids[4];

static void refill_pool(void) {
    for (size_t i = 0; i < POOL_SIZE; i += 8) {
        uint64_t v = rnd64();
        switch (v % 8) {
        case 0: v = (uint64_t)(uintptr_t)(pool + below(POOL_SIZE - 64)); break;
        case 1: v = below(64); break;
        case 2: v = 0; break;
        default: break;
        }
        memcpy(pool + i, &v, 8);
    }
}

static uint64_t ptr(void) {
    switch (below(12)) {
    case 0: return 0;
    case 1: return (uint64_t)(uintptr_t)ropage + below(4096);
    case 2: return (uint64_t)(uintptr_t)hole + below(4096);
    case 3: return 0xffff800000000000ULL + below(1 << 20);
    case 4: return 0x0000800000000000ULL - below(4096);
    case 5: return (uint64_t)(uintptr_t)pool + POOL_SIZE - below(64);
    case 6: return (uint64_t)-1 - below(4096);
    default: return (uint64_t)(uintptr_t)pool + below(POOL_SIZE);
    }
}

static uint64_t num(void) {
    switch (below(10)) {
    case 0: return 0;
    case 1: return 1;
    case 2: return (uint64_t)-1;
    case 3: return 1ULL << below(64);
    case 4: return below(4096) + 1;
    case 5: return 0x7fffffff;
    case 6: return rnd64();
    case 7: return below(16);
    default: return below(1 << 20);
    }
}

static uint64_t len(void) {
    switch (below(8)) {
    case 0: return 0;
    case 1: return (uint64_t)-1;
    case 2: return 1ULL << below(40);
    case 3: return 0x7ffff000;
    default: return below(70000);
    }
}

static uint64_t flags(void) {
    switch (below(6)) {
    case 0: return 0;
    case 1: return rnd64();
    case 2: return 1ULL << below(32);
    default: return rnd() & rnd();
    }
}

static uint64_t fd(void) {
    switch (below(10)) {
    case 0: return (uint64_t)-1;
    case 1: return 3 + below(1100);
    case 2: return (uint64_t)(int64_t)-100; /* AT_FDCWD */
    default: return (uint64_t)(int64_t)fds[below(NFDS)];
    }
}

/* An address inside the mm pool (page-aligned mostly), or a wild one. */
static uint64_t mmaddr(void) {
    uint64_t a = (uint64_t)(uintptr_t)mempool + (uint64_t)below(MEMPOOL_PAGES) * 4096;
    switch (below(10)) {
    case 0: return a + below(4096);
    case 1: return 0;
    case 2: return (uint64_t)(uintptr_t)hole;
    case 3: return 0xffff800000000000ULL;
    default: return a;
    }
}
static uint64_t mmlen(uint64_t addr) {
    uint64_t end = (uint64_t)(uintptr_t)mempool + MEMPOOL_PAGES * 4096;
    if (below(8) == 0)
        return len();
    if (addr < (uint64_t)(uintptr_t)mempool || addr >= end)
        return below(8) * 4096;
    return below((uint32_t)(end - addr) + 1);
}

static const char *paths[] = {
    "f0", "f1", "d0", "d0/f2", "p0", "/tmp", "/", "/proc/self/status", "nonexistent", "",
    "/dev/null", "l0",
};
static uint64_t path(void) {
    if (below(6) == 0)
        return ptr();
    return (uint64_t)(uintptr_t)paths[below(sizeof paths / sizeof paths[0])];
}
static const char *xnames[] = {
    "user.a", "user.b", "trusted.t", "security.s", "system.posix_acl_access", "user.", "bogus.x",
    "user.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
};
static uint64_t xname(void) {
    if (below(6) == 0)
        return ptr();
    return (uint64_t)(uintptr_t)xnames[below(sizeof xnames / sizeof xnames[0])];
}

static volatile sig_atomic_t caught;
static void on_signal(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    /* No call sends these (F_SETSIG never names them), so one with a
       kernel si_code is a fault of the fuzzer's own. */
    if ((sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE) && si->si_code > 0) {
        static const char m[] = "genuine fault in the fuzzer\n";
        (void)!write(2, m, sizeof m - 1);
        _exit(3);
    }
    caught++;
}

static void open_objects(void) {
    for (int i = 0; i < NFDS; i++)
        if (fds[i] >= 3)
            close(fds[i]);
    int p[2], n = 0;
    fds[n++] = open("f0", O_RDWR | O_CREAT, 0644);
    fds[n++] = open("f1", O_RDWR | O_CREAT | O_APPEND, 0644);
    fds[n++] = open("d0", O_RDONLY | O_DIRECTORY);
    fds[n++] = open("f0", O_RDONLY);
    if (pipe2(p, O_NONBLOCK) == 0) {
        fds[n++] = p[0];
        fds[n++] = p[1];
    }
    if (pipe(p) == 0) {
        fds[n++] = p[0];
        fds[n++] = p[1];
    }
    fds[n++] = syscall(SYS_epoll_create1, 0);
    fds[n++] = syscall(SYS_epoll_create1, 0);
    fds[n++] = syscall(SYS_inotify_init1, 0);
    fds[n++] = syscall(SYS_eventfd2, 0, 0);
    fds[n++] = syscall(SYS_fanotify_init, 0, O_RDONLY);
    fds[n++] = syscall(SYS_io_uring_setup, 4, pool + below(POOL_SIZE - 256));
    fds[n++] = kids[0] > 0 ? (int)syscall(SYS_pidfd_open, kids[0], 0) : -1;
    fds[n++] = (int)syscall(SYS_pidfd_open, getpid(), 0);
    fds[n++] = open("/proc/self/status", O_RDONLY);
    fds[n++] = open("/dev/null", O_RDWR);
    int sv[2];
    if (socketpair(1, 1, 0, sv) == 0) {
        fds[n++] = sv[0];
        fds[n++] = sv[1];
    }
    while (n < NFDS)
        fds[n++] = 3 + (int)below(40);
}

static void spawn_kids(void) {
    for (int i = 0; i < 4; i++) {
        if (kids[i] > 0 && kill(kids[i], 0) == 0)
            continue;
        pid_t k = fork();
        if (k == 0) {
            struct sigaction sa = {.sa_handler = SIG_DFL};
            for (int s = 1; s < 65; s++)
                sigaction(s, &sa, 0);
            alarm(0);
            struct itimerval it = {{0, 0}, {0, 0}};
            setitimer(ITIMER_REAL, &it, 0);
            for (;;)
                pause();
        }
        kids[i] = k;
    }
}

static uint64_t kid(void) {
    switch (below(5)) {
    case 0: return (uint64_t)(int64_t)getpid();
    case 1: return num();
    default: return (uint64_t)(int64_t)kids[below(4)];
    }
}

static uint64_t aio_ctx;
static uint64_t actx(void) { return below(3) ? aio_ctx : num(); }

static const long mm_calls[] = {SYS_mlock, 325 /* mlock2 */, SYS_munlock, SYS_mincore,
                                SYS_madvise, SYS_remap_file_pages, SYS_mseal, SYS_msync,
                                SYS_mprotect};

static int verbose;
static char skip[64];
static long one_call(void) {
    uint64_t a = mmaddr();
    int which = below(41);
    if (skip[which])
        return 0;
    if (verbose)
        fprintf(stderr, "[%d]", which);
    switch (which) {
    case 0: { /* memory calls on the pool */
        long nr = mm_calls[below(sizeof mm_calls / sizeof mm_calls[0])];
        uint64_t third = nr == SYS_madvise ? (below(4) ? below(30) : num())
                       : nr == SYS_mprotect ? (below(3) ? 3 : num())
                       : nr == SYS_mincore ? ptr()
                       : flags();
        if (nr == SYS_madvise && third == 100 /* MADV_HWPOISON */)
            third = 4;
        if (nr == SYS_mseal && below(16))
            a = (uint64_t)(uintptr_t)hole; /* seal rarely: sealed pools stay */
        uint64_t l = mmlen(a);
        /* Calls that change memory act on every mapped part of a range
           even when it has holes (Linux's madvise and mprotect walk the
           areas and say ENOMEM at the end), so their ranges stay inside
           the pool, or one page outside it; lengths that overflow (an
           error before anything is done) are kept. */
        if ((nr == SYS_madvise || nr == SYS_mprotect || nr == SYS_mseal ||
             nr == SYS_remap_file_pages) && l < (1ULL << 62)) {
            uint64_t lo = (uint64_t)(uintptr_t)mempool, end = lo + MEMPOOL_PAGES * 4096;
            if (a >= lo && a < end) {
                if (l > end - a) l = end - a;
            } else if (l > 4096) {
                l = 4096;
            }
        }
        return syscall(nr, a, l, third, num(), flags());
    }
    case 1: {
        /* mlockall and munlockall; MCL_FUTURE is undone at once so the
           fuzzer's own allocations never fail for it. */
        uint64_t f = below(4) ? below(8) : flags();
        if (verbose)
            fprintf(stderr, "<mlockall %#llx>", (unsigned long long)f);
        long r = syscall(SYS_mlockall, f);
        if (verbose)
            fprintf(stderr, "<%ld>", r);
        syscall(SYS_munlockall);
        return r;
    }
    case 2: { /* fcntl: leases, notify, owner, signals, and anything */
        static const int cmds[] = {F_SETLEASE, F_GETLEASE, F_NOTIFY,  F_SETOWN, F_GETOWN,
                                   F_SETOWN_EX, F_GETOWN_EX, F_SETSIG, F_GETSIG, F_SETFL,
                                   F_GETFL,    F_SETLK,     F_SETLKW, F_GETLK,   F_OFD_SETLK,
                                   F_SETPIPE_SZ, F_ADD_SEALS, F_DUPFD};
        int cmd = below(10) ? cmds[below(sizeof cmds / sizeof cmds[0])] : (int)below(1100);
        uint64_t arg = below(2) ? num() : ptr();
        if (cmd == F_SETSIG) {
            arg = below(66);
            if (arg == SIGSEGV || arg == SIGBUS || arg == SIGILL || arg == SIGFPE ||
                arg == SIGKILL || arg == SIGSTOP)
                arg = SIGIO;
        }
        if (cmd == F_SETPIPE_SZ)
            arg = below(1 << 20);
        if (cmd == F_DUPFD && below(2))
            arg = below(200);
        return syscall(SYS_fcntl, fd(), cmd, arg);
    }
    case 3:
        return syscall(SYS_fanotify_init, flags(), flags());
    case 4:
        return syscall(SYS_fanotify_mark, fd(), flags(), flags(), fd(), path());
    case 5:
        return syscall(SYS_name_to_handle_at, fd(), path(), ptr(), ptr(), flags());
    case 6:
        return syscall(SYS_open_by_handle_at, fd(), ptr(), below(2) ? O_RDONLY : flags());
    case 7: {
        static const long xs[] = {SYS_setxattr, SYS_lsetxattr, SYS_getxattr, SYS_lgetxattr,
                                  SYS_listxattr, SYS_llistxattr, SYS_removexattr, SYS_lremovexattr};
        long nr = xs[below(8)];
        if (nr == SYS_listxattr || nr == SYS_llistxattr)
            return syscall(nr, path(), ptr(), len());
        return syscall(nr, path(), xname(), ptr(), len(), below(4));
    }
    case 8: {
        static const long xs[] = {SYS_fsetxattr, SYS_fgetxattr, SYS_flistxattr, SYS_fremovexattr};
        long nr = xs[below(4)];
        if (nr == SYS_flistxattr)
            return syscall(nr, fd(), ptr(), len());
        return syscall(nr, fd(), xname(), ptr(), len(), below(4));
    }
    case 9:
        return syscall(SYS_epoll_create1, below(2) ? 0 : flags());
    case 10:
        return syscall(SYS_epoll_ctl, fd(), below(5), fd(), ptr());
    case 11:
        return syscall(SYS_epoll_pwait, fd(), ptr(), below(2) ? below(8) : num(), below(3),
                       below(2) ? 0 : ptr(), 8);
    case 12:
        return syscall(SYS_inotify_add_watch, fd(), path(), flags());
    case 13:
        return syscall(SYS_inotify_rm_watch, fd(), num());
    case 14:
        return syscall(SYS_splice, fd(), below(2) ? 0 : ptr(), fd(), below(2) ? 0 : ptr(), len(),
                       flags() & 0xf);
    case 15:
        return syscall(SYS_vmsplice, fd(), ptr(), below(4) ? below(8) : num(), flags() & 0xf);
    case 16:
        return syscall(SYS_tee, fd(), fd(), len(), flags() & 0xf);
    case 17:
        if (below(4) == 0)
            aio_ctx = 0;
        return syscall(SYS_io_setup, below(4) ? below(64) : num(),
                       below(2) ? (uint64_t)(uintptr_t)&aio_ctx : ptr());
    case 18:
        return syscall(SYS_io_submit, actx(), below(2) ? below(8) : num(), ptr());
    case 19:
        return syscall(SYS_io_getevents, actx(), below(4), below(8), ptr(), below(2) ? ptr() : 0);
    case 20:
        return syscall(SYS_io_pgetevents, actx(), below(4), below(8), ptr(), ptr(), ptr());
    case 21: {
        uint64_t c = actx(), i = ptr(), e = ptr();
        if (verbose)
            fprintf(stderr, "<cancel %#llx %#llx %#llx>", (unsigned long long)c, (unsigned long long)i,
                    (unsigned long long)e);
        return syscall(SYS_io_cancel, c, i, e);
    }
    case 22:
        return syscall(SYS_io_destroy, actx());
    case 23: {
        long r = syscall(SYS_io_uring_setup, below(4) ? below(64) : num(), ptr());
        if (r >= 0 && below(2)) {
            /* Map its rings and scribble on them. */
            /* One page: every ring has at least that. */
            void *m = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, (int)r,
                           below(3) * 0x8000000ULL);
            if (m != MAP_FAILED) {
                for (int i = 0; i < 64; i++)
                    ((uint32_t *)m)[below(1024)] = (uint32_t)num();
                uint32_t sub = below(8), minc = below(2), fl = flags() & 0x1f;
                if (verbose)
                    fprintf(stderr, "<enter %u %u %#x>", sub, minc, fl);
                syscall(SYS_io_uring_enter, r, sub, minc, fl, 0, 0);
                if (verbose)
                    fprintf(stderr, "<entered>");
                munmap(m, 4096);
            }
        }
        if (r >= 0)
            close((int)r);
        return r;
    }
    case 24:
        return syscall(SYS_io_uring_enter, fd(), below(8), below(4), flags() & 0x3f, ptr(), num());
    case 25:
        return syscall(SYS_io_uring_register, fd(), below(40), ptr(), below(8));
    case 26: {
        uint64_t op = below(3) ? below(14) | (below(2) ? 128 : 0) : flags();
        return syscall(SYS_futex, ptr(), op, num(), below(2) ? 0 : ptr(), ptr(), num());
    }
    case 27:
        return syscall(SYS_futex_waitv, ptr(), below(4) ? below(3) : num(), below(2) ? 0 : flags(),
                       ptr(), below(3));
    case 28: {
        /* keyctl on the standard keyrings (-1..-7) and random serials. */
        uint64_t ser = below(2) ? (uint64_t)(int64_t) - (int)(1 + below(7)) : num();
        return syscall(SYS_keyctl, below(40), ser, below(2) ? num() : ptr(), ptr(), num());
    }
    case 29: {
        static const char *types[] = {"user", "keyring", "logon", "big_key", "bogus"};
        uint64_t t = below(5) ? (uint64_t)(uintptr_t)types[below(5)] : ptr();
        return syscall(SYS_add_key, t, below(2) ? (uint64_t)(uintptr_t) "desc" : ptr(), ptr(),
                       len(), (uint64_t)(int64_t) - (int)(1 + below(7)));
    }
    case 30:
        return syscall(SYS_request_key, below(2) ? (uint64_t)(uintptr_t) "user" : ptr(),
                       below(2) ? (uint64_t)(uintptr_t) "desc" : ptr(), below(2) ? 0 : ptr(),
                       (uint64_t)(int64_t) - (int)(1 + below(7)));
    case 31:
        return syscall(SYS_kcmp, kid(), kid(), below(10), fd(), fd());
    case 32: {
        /* close_range only over descriptors the fuzzer may lose. */
        unsigned lo = 3 + below(40), hi = below(3) ? lo + below(40) : ~0u;
        long r = syscall(SYS_close_range, lo, hi, below(3) ? below(8) : flags());
        return r;
    }
    case 33:
        return syscall(SYS_pidfd_open, kid(), below(2) ? 0 : flags());
    case 34: {
        static const int sigs[] = {0, SIGUSR1, SIGUSR2, SIGURG, SIGWINCH, SIGCONT, 40};
        return syscall(SYS_pidfd_send_signal, fd(), sigs[below(7)], below(2) ? 0 : ptr(),
                       below(2) ? 0 : flags());
    }
    case 35:
        return syscall(SYS_pidfd_getfd, fd(), below(40), below(2) ? 0 : flags());
    case 36: {
        int idtype = below(5);
        uint64_t id = idtype == 3 ? fd() : kid();
        uint64_t opts = below(2) ? (WEXITED | WNOHANG) : flags();
        return syscall(SYS_waitid, idtype, id, ptr(), opts, below(2) ? 0 : ptr());
    }
    case 37: {
        /* clone: no shared memory, exit at once. */
        uint64_t f = (flags() & (0x1000 | 0x100000 | 0x200000 | 0x1000000 | 0x400 | 0x200 |
                                 0x4000 | 0x20000 | 0x4000000 | 0x8000000 | 0x40000000)) |
                     (below(2) ? SIGCHLD : 0);
        long r = syscall(SYS_clone, f, 0, ptr(), ptr(), 0);
        if (r == 0)
            _exit(0);
        return r;
    }
    case 38:
        return syscall(SYS_getrusage, below(2) ? -1 : (int)num(), ptr());
    case 39: {
        /* process_madvise and process_mrelease with pidfds. */
        return syscall(below(2) ? 440 : 448, fd(), below(2) ? ptr() : 0, below(4), below(30), 0);
    }
    default: {
        /* /proc/self/pagemap: reads at random offsets and lengths (whole
           entries mostly, often over the mm pool), and lseek. */
        static int pm = -2;
        if (pm == -2)
            pm = open("/proc/self/pagemap", O_RDONLY);
        uint64_t off = below(2) ? (uint64_t)(uintptr_t)mempool / 4096 * 8 + below(64) * 8 : num();
        if (below(4) == 0)
            return syscall(SYS_lseek, below(2) ? pm : fd(), num(), below(6));
        return syscall(SYS_pread64, below(8) ? pm : fd(), ptr(),
                       below(2) ? below(64) * 8 : below(600), off);
    }
    }
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void mark(const char *dir, const char *name) {
    if (!dir)
        return;
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    int f = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (f >= 0)
        close(f);
}

int main(int argc, char **argv) {
    int seconds = argc > 1 ? atoi(argv[1]) : 10;
    state = argc > 2 ? strtoull(argv[2], 0, 0) : 0;
    const char *markdir = argc > 3 && strcmp(argv[3], "-") != 0 ? argv[3] : 0;
    verbose = argc > 4 && strcmp(argv[4], "v") == 0;
    /* SKIP: case numbers not to call, comma-separated (to narrow down). */
    for (char *c = argc > 5 ? argv[5] : 0; c && *c;) {
        int k = atoi(c);
        if (k >= 0 && k < 64)
            skip[k] = 1;
        c = strchr(c, ',');
        c = c ? c + 1 : 0;
    }
    if (state == 0)
        state = (uint64_t)time(0) * 2654435761u + 1;
    printf("seed %llu\n", (unsigned long long)state);
    /* Random pids and pidfds get signals: only inside an instance of its
       own (the fuzzer as its init) may this run. */
    if (getpid() != 1) {
        printf("refusing to fuzz outside an instance of its own (pid %d, not 1)\n", getpid());
        return 2;
    }
    fflush(stdout);

    char dir[] = "/tmp/conf2fuzzXXXXXX";
    if (!mkdtemp(dir) || chdir(dir) != 0) {
        perror("scratch dir");
        return 1;
    }
    mkdir("d0", 0755);
    close(open("d0/f2", O_CREAT | O_WRONLY, 0644));
    mkfifo("p0", 0644);
    symlink("f0", "l0");

    struct rlimit fsz = {1 << 20, 1 << 20};
    setrlimit(RLIMIT_FSIZE, &fsz);
    struct rlimit nofile = {256, 256};
    setrlimit(RLIMIT_NOFILE, &nofile);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO; /* no SA_RESTART: the timer interrupts */
    for (int s = 1; s < 65; s++)
        if (s != SIGKILL && s != SIGSTOP && s != SIGCHLD)
            sigaction(s, &sa, 0);
    struct itimerval it = {{0, 20000}, {0, 20000}};
    setitimer(ITIMER_REAL, &it, 0);

    pool = mmap(0, POOL_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ropage = mmap(0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    hole = mmap(0, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (pool == MAP_FAILED || ropage == MAP_FAILED || hole == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    munmap(hole, 4096);
    refill_pool();

    double start = now(), warm_at = start + seconds / 5.0, end = start + seconds;
    int warm = 0, sealed = 0, keep = 0;
    unsigned long calls = 0;
    spawn_kids();
    open_objects();
    int f0 = open("f0", O_RDWR);
    if (f0 >= 0 && ftruncate(f0, MEMPOOL_PAGES * 4096) != 0)
        perror("ftruncate");
    while (now() < end) {
        /* The mm pool: half file-backed shared, half anonymous, remade
           each round so that seals, locks and advice start afresh. */
        int shared = below(2) && f0 >= 0;
        if (!keep)
            mempool = mmap(0, MEMPOOL_PAGES * 4096, PROT_READ | PROT_WRITE,
                           shared ? MAP_SHARED : MAP_PRIVATE | MAP_ANONYMOUS, shared ? f0 : -1, 0);
        if (mempool == MAP_FAILED) {
            mempool = mmap(0, MEMPOOL_PAGES * 4096, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (mempool == MAP_FAILED) {
                perror("mmap mempool");
                return 1;
            }
        }
        for (int i = 0; i < 500; i++) {
            one_call();
            calls++;
        }
        /* A sealed pool cannot be unmapped: after 64 of them the last
           one is kept for the rounds that follow. */
        if (munmap(mempool, MEMPOOL_PAGES * 4096) != 0 && ++sealed >= 64)
            keep = 1;
        while (waitpid(-1, 0, WNOHANG | __WALL) > 0)
            ;
        refill_pool();
        spawn_kids();
        /* Everything the calls made (pidfds, epolls, rings...) goes. */
        syscall(SYS_close_range, 3, ~0u, 0);
        memset(fds, 0xff, sizeof fds);
        open_objects();
        f0 = open("f0", O_RDWR);
        if (f0 >= 0 && ftruncate(f0, MEMPOOL_PAGES * 4096) != 0)
            f0 = -1;
        if (!warm && now() >= warm_at) {
            warm = 1;
            mark(markdir, "warm");
        }
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, 0);
    for (int i = 0; i < 4; i++)
        if (kids[i] > 0)
            kill(kids[i], SIGKILL);
    /* Every child must end and be reaped (bounded: a child that never
       ends is a kernel bug, reported with what /proc says of it). */
    for (int i = 0; i < 3000; i++) {
        pid_t w = waitpid(-1, 0, __WALL | WNOHANG);
        if (w < 0 && errno == ECHILD)
            break;
        if (w == 0)
            usleep(10000);
        if (i == 2999) {
            char b[4096];
            int f = open("/proc/self/task/1/children", O_RDONLY);
            ssize_t n = f >= 0 ? read(f, b, sizeof b - 1) : -1;
            b[n > 0 ? n : 0] = 0;
            printf("children never reaped: %s\n", b);
            char *save, *tok = strtok_r(b, " ", &save);
            for (; tok; tok = strtok_r(0, " ", &save)) {
                char p[64];
                snprintf(p, sizeof p, "/proc/%s/status", tok);
                f = open(p, O_RDONLY);
                n = f >= 0 ? read(f, b, sizeof b - 1) : -1;
                b[n > 0 ? n : 0] = 0;
                printf("%s\n", b);
            }
            return 4;
        }
    }
    mark(markdir, "end");
    if (markdir) {
        char p[512];
        snprintf(p, sizeof p, "%s/result", markdir);
        FILE *r = fopen(p, "w");
        if (r) {
            fprintf(r, "survived %lu calls\n", calls);
            fclose(r);
        }
    }
    if (markdir) {
        char p[512];
        snprintf(p, sizeof p, "%s/go", markdir);
        for (int i = 0; i < 6000 && access(p, F_OK) != 0; i++)
            usleep(20000);
    }
    printf("survived %lu calls\n", calls);
    fflush(stdout);
    return 0;
}
