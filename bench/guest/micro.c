/*
 * ruml microbenchmarks: one static program, run inside every system
 * compared (native chroot, ruml, UML, gVisor, proot).
 *
 *   micro [-q] all [TMPDIR]       run every benchmark once
 *   micro [-q] NAME [TMPDIR]      run one benchmark
 *   micro time CMD ARGS...        run CMD, print its wall time
 *   micro init CMD ARGS...        as init (pid 1): run CMD, then power off
 *   boot-true                     (this program under that name) the same
 *                                 as "micro init /bin/true": UML's init for
 *                                 the boot benchmark
 *
 * Each benchmark times its own loop with clock_gettime(CLOCK_MONOTONIC) and
 * prints one line "BENCH <name> <value> <unit>" on stdout.  Loops are
 * time-bounded rather than iteration-bounded: the iteration count grows
 * until one batch takes at least 0.15 s (0.03 s with -q), so a system 100x
 * slower than the host still finishes quickly; that batch is run 3 times
 * (once with -q) and the figure printed is the cost per operation of the
 * fastest of them.  A benchmark
 * that cannot run prints "BENCH <name> n/a <reason>".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double target = 0.15;
static int batches = 3;
static const char *nop_path = "/bench/nop";
static const char *stat_path = "/bench/file";

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void report(const char *name, double v, const char *unit)
{
    printf("BENCH %s %.4g %s\n", name, v, unit);
    fflush(stdout);
}

static void na(const char *name, const char *why)
{
    printf("BENCH %s n/a %s\n", name, why);
    fflush(stdout);
}

/* Runs fn(n) with n growing until one call lasts >= target, then runs that
 * batch (batches - 1) more times; returns the seconds per iteration of the
 * fastest such batch (the least disturbed by other load on the host), or a
 * negative value on failure. */
typedef int (*loop_fn)(long n);
static double measure(loop_fn fn, long start)
{
    long n = start;
    for (;;) {
        double t0 = now();
        if (fn(n) != 0)
            return -1;
        double dt = now() - t0;
        if (dt >= target || n > (1L << 40)) {
            double best = dt;
            for (int b = 1; b < batches; b++) {
                t0 = now();
                if (fn(n) != 0)
                    return -1;
                dt = now() - t0;
                if (dt < best)
                    best = dt;
            }
            return best / n;
        }
        /* Jump close to the target in one step once we have a reading. */
        if (dt > target / 64)
            n = (long)(n * (target * 1.2 / dt)) + 1;
        else
            n *= 4;
    }
}

/* ---- null system call ---- */
static int loop_getppid(long n)
{
    for (long i = 0; i < n; i++)
        syscall(SYS_getppid);
    return 0;
}

/* ---- fork + exit + wait ---- */
static int loop_fork(long n)
{
    for (long i = 0; i < n; i++) {
        pid_t p = fork();
        if (p < 0)
            return -1;
        if (p == 0)
            _exit(0);
        int st;
        if (waitpid(p, &st, 0) != p || !WIFEXITED(st))
            return -1;
    }
    return 0;
}

/* ---- fork + exec + wait ---- */
static int loop_exec(long n)
{
    for (long i = 0; i < n; i++) {
        pid_t p = fork();
        if (p < 0)
            return -1;
        if (p == 0) {
            char *argv[] = {(char *)nop_path, NULL};
            char *envp[] = {NULL};
            execve(nop_path, argv, envp);
            _exit(127);
        }
        int st;
        if (waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            return -1;
    }
    return 0;
}

/* ---- first-touch page faults on anonymous memory ---- */
#define FAULT_REGION (64L << 20)
static int loop_fault(long n)
{
    /* n pages, touched in regions of at most FAULT_REGION. */
    long page = sysconf(_SC_PAGESIZE);
    long per = FAULT_REGION / page;
    while (n > 0) {
        long pages = n < per ? n : per;
        char *p = mmap(NULL, pages * page, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return -1;
        for (long i = 0; i < pages; i++)
            p[i * page] = 1;
        munmap(p, pages * page);
        n -= pages;
    }
    return 0;
}

/* ---- pipe round trip between two processes ---- */
static int loop_pipe(long n)
{
    int a[2], b[2];
    if (pipe(a) || pipe(b))
        return -1;
    pid_t p = fork();
    if (p < 0)
        return -1;
    char c = 0;
    if (p == 0) {
        close(a[1]);
        close(b[0]);
        while (read(a[0], &c, 1) == 1)
            if (write(b[1], &c, 1) != 1)
                break;
        _exit(0);
    }
    close(a[0]);
    close(b[1]);
    int rc = 0;
    for (long i = 0; i < n; i++) {
        if (write(a[1], &c, 1) != 1 || read(b[0], &c, 1) != 1) {
            rc = -1;
            break;
        }
    }
    close(a[1]);
    close(b[0]);
    waitpid(p, NULL, 0);
    return rc;
}

/* ---- futex round trip between two threads ---- */
static _Atomic int fword;
static long futex_iters;

static void fwait(int val)
{
    while (atomic_load(&fword) == val)
        syscall(SYS_futex, &fword, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void fset(int val)
{
    atomic_store(&fword, val);
    syscall(SYS_futex, &fword, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void *futex_partner(void *arg)
{
    (void)arg;
    for (long i = 0; i < futex_iters; i++) {
        fwait(0); /* wait for ping (1) */
        fset(0);  /* pong */
    }
    return NULL;
}

static int loop_futex(long n)
{
    pthread_t t;
    futex_iters = n;
    atomic_store(&fword, 0);
    if (pthread_create(&t, NULL, futex_partner, NULL))
        return -1;
    for (long i = 0; i < n; i++) {
        fset(1);
        /* wait for pong: fword back to 0 */
        while (atomic_load(&fword) == 1)
            syscall(SYS_futex, &fword, FUTEX_WAIT_PRIVATE, 1, NULL, NULL, 0);
    }
    pthread_join(t, NULL);
    return 0;
}

/* ---- thread create + join ---- */
static void *thread_nop(void *arg) { return arg; }
static int loop_thread(long n)
{
    for (long i = 0; i < n; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, thread_nop, NULL))
            return -1;
        if (pthread_join(t, NULL))
            return -1;
    }
    return 0;
}

/* ---- open + close, stat of an existing file ---- */
static int loop_open(long n)
{
    for (long i = 0; i < n; i++) {
        int fd = open(stat_path, O_RDONLY);
        if (fd < 0)
            return -1;
        close(fd);
    }
    return 0;
}

static int loop_stat(long n)
{
    struct stat st;
    for (long i = 0; i < n; i++)
        if (stat(stat_path, &st))
            return -1;
    return 0;
}

/* ---- tmpfs write and read throughput: 64 MiB in 64 KiB blocks ---- */
#define FILE_SIZE (64L << 20)
#define BLOCK (64L << 10)
static void bench_file(const char *dir)
{
    if (!dir || !*dir) {
        const char *why = getenv("BENCH_NA_REASON");
        if (!why || !*why)
            why = "no writable directory";
        na("tmpfs_write", why);
        na("tmpfs_read", why);
        return;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/ruml-bench.%d", dir, (int)getpid());
    static char buf[BLOCK];
    memset(buf, 0x5a, sizeof buf);
    double tw = 0, tr = 0;
    int rounds = 0;
    /* At least one round; more until the time budget is used. */
    double start = now();
    do {
        int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
        if (fd < 0) {
            na("tmpfs_write", strerror(errno));
            na("tmpfs_read", strerror(errno));
            return;
        }
        double t0 = now();
        for (long off = 0; off < FILE_SIZE; off += BLOCK)
            if (write(fd, buf, BLOCK) != BLOCK) {
                int e = errno;
                close(fd);
                unlink(path);
                na("tmpfs_write", e ? strerror(e) : "short write");
                na("tmpfs_read", "write failed");
                return;
            }
        close(fd);
        double t1 = now();
        fd = open(path, O_RDONLY);
        if (fd < 0) {
            unlink(path);
            report("tmpfs_write", FILE_SIZE / (double)(1 << 20) / (t1 - t0), "MiB/s");
            na("tmpfs_read", strerror(errno));
            return;
        }
        double t2 = now();
        long total = 0;
        ssize_t r;
        while ((r = read(fd, buf, BLOCK)) > 0)
            total += r;
        double t3 = now();
        close(fd);
        unlink(path);
        if (total != FILE_SIZE) {
            report("tmpfs_write", FILE_SIZE / (double)(1 << 20) / (t1 - t0), "MiB/s");
            na("tmpfs_read", "short read");
            return;
        }
        tw += t1 - t0;
        tr += t3 - t2;
        rounds++;
    } while (now() - start < 4 * target && rounds < 8);
    double mib = FILE_SIZE / (double)(1 << 20) * rounds;
    report("tmpfs_write", mib / tw, "MiB/s");
    report("tmpfs_read", mib / tr, "MiB/s");
}

/* ---- a disk: sequential write + fsync, read, many small files ---- */
#define DISK_FILE_SIZE (64L << 20)
#define SMALL_FILES 1000
#define RANDOM_OPS 4096
#define RANDOM_FSYNC_EVERY 64

/* Random 4 KiB pwrites at 4 KiB-aligned offsets of the file at `path`
   (`size` bytes), fsync after every RANDOM_FSYNC_EVERY and at the end,
   then as many random 4 KiB preads; reports µs per operation. */
static void disk_random(const char *path, long size)
{
    int fd = open(path, O_RDWR);
    if (fd < 0) {
        na("disk_randwrite", strerror(errno));
        na("disk_randread", strerror(errno));
        return;
    }
    static char page[4096];
    memset(page, 0x5a, sizeof page);
    long pages = size / 4096;
    int n = batches == 1 ? RANDOM_OPS / 4 : RANDOM_OPS;
    unsigned long x = 88172645463325252UL; /* xorshift64: the same offsets everywhere */
    double t0 = now();
    for (int k = 0; k < n; k++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        off_t off = (off_t)(x % (unsigned long)pages) * 4096;
        page[0] = (char)k;
        if (pwrite(fd, page, sizeof page, off) != (ssize_t)sizeof page ||
            ((k + 1) % RANDOM_FSYNC_EVERY == 0 && fsync(fd) != 0)) {
            na("disk_randwrite", errno ? strerror(errno) : "short write");
            na("disk_randread", "the random writes failed");
            close(fd);
            return;
        }
    }
    if (fsync(fd) != 0) {
        na("disk_randwrite", strerror(errno));
        na("disk_randread", "the random writes failed");
        close(fd);
        return;
    }
    double t1 = now();
    report("disk_randwrite", (t1 - t0) / n * 1e6, "us");
    double t2 = now();
    for (int k = 0; k < n; k++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        off_t off = (off_t)(x % (unsigned long)pages) * 4096;
        if (pread(fd, page, sizeof page, off) != (ssize_t)sizeof page) {
            na("disk_randread", errno ? strerror(errno) : "short read");
            close(fd);
            return;
        }
    }
    double t3 = now();
    close(fd);
    report("disk_randread", (t3 - t2) / n * 1e6, "us");
}
static void bench_disk(const char *dir)
{
    const char *rows[] = {"disk_write", "disk_read", "disk_files", "disk_randwrite", "disk_randread"};
    if (!dir || !*dir) {
        for (int k = 0; k < 5; k++)
            na(rows[k], "no disk directory");
        return;
    }
    long size = batches == 1 ? DISK_FILE_SIZE / 4 : DISK_FILE_SIZE;
    char path[4096];
    snprintf(path, sizeof path, "%s/seq.%d", dir, (int)getpid());
    static char buf[BLOCK];
    memset(buf, 0xa5, sizeof buf);
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    if (fd < 0) {
        for (int k = 0; k < 5; k++)
            na(rows[k], strerror(errno));
        return;
    }
    double t0 = now();
    for (long off = 0; off < size; off += BLOCK)
        if (write(fd, buf, BLOCK) != BLOCK) {
            int e = errno;
            close(fd);
            unlink(path);
            for (int k = 0; k < 5; k++)
                na(rows[k], e ? strerror(e) : "short write");
            return;
        }
    if (fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(path);
        for (int k = 0; k < 5; k++)
            na(rows[k], strerror(e));
        return;
    }
    double t1 = now();
    close(fd);
    report("disk_write", size / (double)(1 << 20) / (t1 - t0), "MiB/s");
    fd = open(path, O_RDONLY);
    long total = 0;
    double t2 = now();
    ssize_t r;
    while (fd >= 0 && (r = read(fd, buf, BLOCK)) > 0)
        total += r;
    double t3 = now();
    if (fd >= 0)
        close(fd);
    if (total != size)
        na("disk_read", "short read");
    else
        report("disk_read", size / (double)(1 << 20) / (t3 - t2), "MiB/s");
    /* Random 4 KiB writes into that file (fsync after every 64), then
       random 4 KiB reads of it; per operation. */
    disk_random(path, size);
    unlink(path);
    /* Many small files: create + write 100 bytes + close, stat, unlink,
       in one directory, then sync; per file. */
    char d[4096];
    snprintf(d, sizeof d, "%s/many.%d", dir, (int)getpid());
    if (mkdir(d, 0700) != 0) {
        na("disk_files", strerror(errno));
        return;
    }
    int n = batches == 1 ? SMALL_FILES / 4 : SMALL_FILES;
    double t4 = now();
    for (int pass = 0; pass < 3; pass++)
        for (int k = 0; k < n; k++) {
            char f[4200];
            snprintf(f, sizeof f, "%s/file-%d", d, k);
            struct stat st;
            int ok;
            if (pass == 0) {
                int g = open(f, O_CREAT | O_EXCL | O_WRONLY, 0600);
                ok = g >= 0 && write(g, buf, 100) == 100;
                if (g >= 0)
                    close(g);
            } else if (pass == 1) {
                ok = stat(f, &st) == 0 && st.st_size == 100;
            } else {
                ok = unlink(f) == 0;
            }
            if (!ok) {
                na("disk_files", errno ? strerror(errno) : "bad size");
                return;
            }
        }
    sync();
    double t5 = now();
    rmdir(d);
    report("disk_files", (t5 - t4) / n * 1e6, "us");
}

/* ---- TCP over loopback: a server process on 127.0.0.1 ---- */

/* A listening socket on 127.0.0.1 with a port the kernel picks. */
static int tcp_listener(struct sockaddr_in *addr)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    if (l < 0)
        return -1;
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof *addr;
    if (bind(l, (struct sockaddr *)addr, len) || listen(l, 1) ||
        getsockname(l, (struct sockaddr *)addr, &len)) {
        close(l);
        return -1;
    }
    return l;
}

/* Forks a server that accepts one connection and runs serve(fd) on it;
 * returns the client's connected socket (or -1), the server's pid in *pid. */
static int tcp_pair(void (*serve)(int), pid_t *pid)
{
    struct sockaddr_in addr;
    int l = tcp_listener(&addr);
    if (l < 0)
        return -1;
    *pid = fork();
    if (*pid < 0) {
        close(l);
        return -1;
    }
    if (*pid == 0) {
        int c = accept(l, NULL, NULL);
        close(l);
        if (c >= 0)
            serve(c);
        _exit(0);
    }
    close(l);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    if (c < 0 || setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) ||
        connect(c, (struct sockaddr *)&addr, sizeof addr)) {
        if (c >= 0)
            close(c);
        kill(*pid, SIGKILL);
        waitpid(*pid, NULL, 0);
        return -1;
    }
    return c;
}

/* Echoes each byte back (request/response). */
static void serve_echo(int c)
{
    int one = 1;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char b;
    while (read(c, &b, 1) == 1)
        if (write(c, &b, 1) != 1)
            break;
}

static int loop_tcp_rr(long n)
{
    pid_t p;
    int c = tcp_pair(serve_echo, &p);
    if (c < 0)
        return -1;
    int rc = 0;
    char b = 'x';
    for (long i = 0; i < n; i++)
        if (write(c, &b, 1) != 1 || read(c, &b, 1) != 1) {
            rc = -1;
            break;
        }
    close(c);
    waitpid(p, NULL, 0);
    return rc;
}

/* Reads everything, then answers the byte count (8 bytes) at EOF. */
static void serve_sink(int c)
{
    static char buf[BLOCK];
    long total = 0;
    ssize_t r;
    while ((r = read(c, buf, sizeof buf)) > 0)
        total += r;
    if (write(c, &total, sizeof total) != sizeof total)
        _exit(1);
}

/* Bulk transfer: n blocks of 64 KiB from client to server, the server's
 * count checked at the end (the time includes the connection set-up,
 * which is small against the stream at the sizes measure() picks). */
static int loop_tcp_stream(long n)
{
    pid_t p;
    int c = tcp_pair(serve_sink, &p);
    if (c < 0)
        return -1;
    static char buf[BLOCK];
    memset(buf, 0x5a, sizeof buf);
    int rc = 0;
    for (long i = 0; i < n && rc == 0; i++) {
        long off = 0;
        while (off < BLOCK) {
            ssize_t w = write(c, buf + off, BLOCK - off);
            if (w <= 0) {
                rc = -1;
                break;
            }
            off += w;
        }
    }
    long total = -1;
    if (rc == 0 && (shutdown(c, SHUT_WR) || read(c, &total, sizeof total) != sizeof total ||
                    total != n * BLOCK))
        rc = -1;
    close(c);
    waitpid(p, NULL, 0);
    return rc;
}

struct bench {
    const char *name;
    loop_fn fn;
    long start;
    double scale;
    const char *unit;
};

static const struct bench benches[] = {
    {"getppid", loop_getppid, 1000, 1e9, "ns"},
    {"fork_exit_wait", loop_fork, 4, 1e6, "us"},
    {"fork_exec_wait", loop_exec, 4, 1e6, "us"},
    {"page_fault", loop_fault, 256, 1e9, "ns"},
    {"pipe_rtt", loop_pipe, 100, 1e6, "us"},
    {"futex_rtt", loop_futex, 100, 1e6, "us"},
    {"thread_create_join", loop_thread, 8, 1e6, "us"},
    {"open_close", loop_open, 100, 1e6, "us"},
    {"stat", loop_stat, 100, 1e6, "us"},
    {"tcp_rr", loop_tcp_rr, 100, 1e6, "us"},
    /* seconds per 64 KiB block, turned into MiB/s by run_one. */
    {"tcp_stream", loop_tcp_stream, 16, 0, "MiB/s"},
};

static void run_one(const struct bench *b)
{
    double s = measure(b->fn, b->start);
    if (s < 0) {
        char why[128];
        snprintf(why, sizeof why, "failed (%s)", errno ? strerror(errno) : "error");
        for (char *p = why; *p; p++)
            if (*p == ' ')
                *p = '_';
        na(b->name, why);
    } else if (b->scale == 0) {
        report(b->name, BLOCK / (double)(1 << 20) / s, b->unit);
    } else {
        report(b->name, s * b->scale, b->unit);
    }
}

static int cmd_time(char **argv)
{
    double t0 = now();
    pid_t p = fork();
    if (p < 0) {
        perror("fork");
        return 1;
    }
    if (p == 0) {
        execvp(argv[0], argv);
        perror(argv[0]);
        _exit(127);
    }
    int st;
    if (waitpid(p, &st, 0) != p) {
        perror("waitpid");
        return 1;
    }
    double dt = now() - t0;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        printf("TIME %.4f\n", dt);
        fflush(stdout);
        return 0;
    }
    fprintf(stderr, "micro time: %s failed (status %#x)\n", argv[0], st);
    return 1;
}

static int cmd_init(char **argv)
{
    int st = 0;
    pid_t p = fork();
    if (p == 0) {
        execvp(argv[0], argv);
        perror(argv[0]);
        _exit(127);
    }
    if (p > 0)
        while (waitpid(p, &st, 0) < 0 && errno == EINTR)
            ;
    if (getpid() == 1) {
        sync();
        reboot(RB_POWER_OFF);
    }
    return p > 0 && WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

int main(int argc, char **argv)
{
    const char *base = strrchr(argv[0], '/');
    base = base ? base + 1 : argv[0];
    if (strcmp(base, "boot-true") == 0) {
        char *true_argv[] = {"/bin/true", NULL};
        return cmd_init(true_argv);
    }
    int i = 1;
    if (i < argc && strcmp(argv[i], "-q") == 0) {
        target = 0.03;
        batches = 1;
        i++;
    }
    if (i >= argc) {
        fprintf(stderr, "usage: micro [-q] all|NAME [TMPDIR] | micro [-q] disk DIR | micro time CMD...\n");
        return 2;
    }
    const char *what = argv[i++];
    if (strcmp(what, "time") == 0)
        return cmd_time(argv + i);
    if (strcmp(what, "init") == 0)
        return cmd_init(argv + i);
    const char *dir = i < argc ? argv[i] : NULL;
    if (getenv("BENCH_NOP"))
        nop_path = getenv("BENCH_NOP");
    if (getenv("BENCH_FILE"))
        stat_path = getenv("BENCH_FILE");
    int found = 0;
    for (size_t k = 0; k < sizeof benches / sizeof benches[0]; k++) {
        if (strcmp(what, "all") == 0 || strcmp(what, benches[k].name) == 0) {
            errno = 0;
            run_one(&benches[k]);
            found = 1;
        }
    }
    if (strcmp(what, "disk") == 0) {
        bench_disk(dir);
        return 0;
    }
    if (strcmp(what, "all") == 0 || strncmp(what, "tmpfs", 5) == 0) {
        bench_file(dir);
        found = 1;
    }
    if (!found) {
        fprintf(stderr, "micro: unknown benchmark %s\n", what);
        return 2;
    }
    return 0;
}
