/* /proc/self/status's RssAnon, RssFile and RssShmem (VmRSS their sum),
 * statm's shared count, and smaps's Rss/Pss/Shared/Private rows, as pages
 * are touched: shared anonymous memory, memfd and System V shared memory
 * count in RssShmem, private anonymous memory in RssAnon. Page counts may
 * legitimately differ from Linux's (what the C library and loader touch),
 * and Linux's status counters are per-CPU and lag by up to a batch of
 * pages per CPU, so the program prints whether each count moved by about
 * the touched size: at least half of it, at most the mapping's size and
 * SLACK more. smaps walks the page tables: its rows are exact. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096L
#define KB(pages) ((pages) * PG / 1024)
/* kB of lag or stray pages allowed in status's counters. */
#define SLACK 512

struct rss {
    long vmrss, anon, file, shmem;
};

static struct rss status(void) {
    struct rss r = {-1, -1, -1, -1};
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f)) {
        sscanf(line, "VmRSS: %ld", &r.vmrss);
        sscanf(line, "RssAnon: %ld", &r.anon);
        sscanf(line, "RssFile: %ld", &r.file);
        sscanf(line, "RssShmem: %ld", &r.shmem);
    }
    if (f)
        fclose(f);
    return r;
}

/* Whether `delta` kB is the touched size, give or take what the mapping
 * around it holds. */
static const char *about(long delta, long touched_kb, long mapped_kb) {
    long lo = touched_kb ? touched_kb / 2 : -SLACK;
    return delta >= lo && delta <= mapped_kb + SLACK ? "yes" : "no";
}

static void report(const char *what, struct rss a, struct rss b, long touched, long mapped,
                   int shmem) {
    long ds = b.shmem - a.shmem, da = b.anon - a.anon;
    if (shmem)
        printf("%-28s RssShmem grew by the touched size: %s, RssAnon about unchanged: %s\n", what,
               about(ds, KB(touched), KB(mapped)), about(da, 0, 0));
    else
        printf("%-28s RssAnon grew by the touched size: %s, RssShmem about unchanged: %s\n", what,
               about(da, KB(touched), KB(mapped)), about(ds, 0, 0));
    printf("%-28s VmRSS = RssAnon + RssFile + RssShmem: %s\n", what,
           b.vmrss == b.anon + b.file + b.shmem ? "yes" : "no");
}

static void touch(char *p, long pages) {
    for (long i = 0; i < pages; i++)
        p[i * PG] = 1;
}

/* smaps's rows for the area starting at p, in kB. */
struct smaps {
    long rss, pss, shared_dirty, private_dirty, anonymous;
};

static struct smaps smaps_of(void *p) {
    struct smaps s = {-1, -1, -1, -1, -1};
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    int in = 0;
    while (f && fgets(line, sizeof line, f)) {
        unsigned long a, b;
        if (sscanf(line, "%lx-%lx ", &a, &b) == 2) {
            in = a == (unsigned long)p;
            continue;
        }
        if (!in)
            continue;
        sscanf(line, "Rss: %ld", &s.rss);
        sscanf(line, "Pss: %ld", &s.pss);
        sscanf(line, "Shared_Dirty: %ld", &s.shared_dirty);
        sscanf(line, "Private_Dirty: %ld", &s.private_dirty);
        sscanf(line, "Anonymous: %ld", &s.anonymous);
    }
    if (f)
        fclose(f);
    return s;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    struct rss r0 = status();
    printf("status has the rows: %s\n", r0.anon >= 0 && r0.file >= 0 && r0.shmem >= 0 ? "yes" : "no");

    /* Shared anonymous memory: 8 MiB mapped, 1 MiB touched. */
    long big = 2048, n = 256;
    char *sh = mmap(NULL, big * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    struct rss r1 = status();
    printf("shared anon mapped: RssShmem grew by under 64 kB: %s\n",
           r1.shmem - r0.shmem < SLACK ? "yes" : "no");
    touch(sh, n);
    struct rss r2 = status();
    report("shared anon touched", r1, r2, n, big, 1);
    struct smaps s = smaps_of(sh);
    printf("smaps shared anon: Rss about the touched size %s, Private_Dirty = Rss %s, "
           "Shared_Dirty 0 %s, Pss = Rss %s, Anonymous 0 %s\n",
           labs(s.rss - KB(n)) <= 64 ? "yes" : "no", s.private_dirty == s.rss ? "yes" : "no",
           s.shared_dirty == 0 ? "yes" : "no", s.pss == s.rss ? "yes" : "no",
           s.anonymous == 0 ? "yes" : "no");
    /* A child maps the same pages too: now they are shared, Pss halves. */
    int go[2], done[2];
    if (pipe(go) || pipe(done))
        return 1;
    pid_t c = fork();
    if (c == 0) {
        volatile char sum = 0;
        for (long i = 0; i < n; i++)
            sum += sh[i * PG];
        (void)sum;
        write(done[1], "x", 1);
        char b;
        read(go[0], &b, 1);
        _exit(0);
    }
    char b;
    read(done[0], &b, 1);
    s = smaps_of(sh);
    printf("smaps after a child touched them: Shared_Dirty = Rss %s, Private_Dirty 0 %s, "
           "Pss = Rss/2 %s\n",
           s.shared_dirty == s.rss ? "yes" : "no", s.private_dirty == 0 ? "yes" : "no",
           s.pss == s.rss / 2 ? "yes" : "no");
    write(go[1], "x", 1);
    waitpid(c, NULL, 0);
    munmap(sh, big * PG);
    struct rss r3 = status();
    printf("shared anon unmapped: RssShmem back down: %s\n",
           r3.shmem <= r1.shmem + SLACK ? "yes" : "no");

    /* memfd: 4 MiB, 512 kB touched. */
    int fd = memfd_create("rss", 0);
    if (fd < 0 || ftruncate(fd, 1024 * PG))
        return 1;
    char *m = mmap(NULL, 1024 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    r1 = status();
    touch(m, 256);
    r2 = status();
    report("memfd touched", r1, r2, 256, 1024, 1);
    munmap(m, 1024 * PG);
    close(fd);

    /* System V shared memory: 1 MiB, all touched. */
    int id = shmget(IPC_PRIVATE, 256 * PG, IPC_CREAT | 0600);
    char *v = shmat(id, NULL, 0);
    r1 = status();
    touch(v, 256);
    r2 = status();
    report("sysv shm touched", r1, r2, 256, 256, 1);
    shmdt(v);
    shmctl(id, IPC_RMID, NULL);

    /* Private anonymous memory: 4 MiB, 2 MiB touched, then discarded. */
    char *a = mmap(NULL, 1024 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    r1 = status();
    touch(a, 512);
    r2 = status();
    report("private anon touched", r1, r2, 512, 1024, 0);
    s = smaps_of(a);
    printf("smaps private anon: Anonymous = Rss %s, Private_Dirty = Rss %s, at least touched %s\n",
           s.anonymous == s.rss ? "yes" : "no", s.private_dirty == s.rss ? "yes" : "no",
           s.rss >= KB(512) ? "yes" : "no");
    madvise(a, 1024 * PG, MADV_DONTNEED);
    r3 = status();
    printf("private anon DONTNEED: RssAnon back down: %s\n", r3.anon <= r1.anon + SLACK ? "yes" : "no");

    /* statm's third field is RssFile + RssShmem, in pages. */
    FILE *f = fopen("/proc/self/statm", "r");
    long size, res, shared;
    struct rss r4 = status();
    if (f && fscanf(f, "%ld %ld %ld", &size, &res, &shared) == 3)
        printf("statm resident = VmRSS %s, shared = RssFile + RssShmem %s\n",
               labs(res * 4 - r4.vmrss) <= SLACK ? "yes" : "no",
               labs(shared * 4 - (r4.file + r4.shmem)) <= SLACK ? "yes" : "no");
    return 0;
}
