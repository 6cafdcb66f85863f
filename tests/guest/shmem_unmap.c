/* Shared mappings of tmpfs files after the file changes under them, in the
 * process that changed it and in another one: truncation (SIGBUS past the
 * end of the file, zeros in the part of the last page cut off), hole
 * punching with fallocate and MADV_REMOVE (zeros, and the mapping follows
 * later writes to the file), MADV_REMOVE's errors, and remap_file_pages.
 * Prints facts only. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096L

static sigjmp_buf jb;
static volatile int last_sig;

static void on_sig(int s) {
    last_sig = s;
    siglongjmp(jb, 1);
}

/* Reads one byte; prints it or the signal the read raised. */
static void peek(const char *what, volatile char *p) {
    last_sig = 0;
    if (sigsetjmp(jb, 1) == 0) {
        int v = *p;
        printf("%-40s %d\n", what, v);
    } else {
        printf("%-40s signal %s\n", what, sigabbrev_np(last_sig));
    }
}

static const char *err(long r) { return r >= 0 ? "ok" : strerrorname_np(errno); }

static int make_file(const char *name, int pages, int fill) {
    int fd = memfd_create(name, 0);
    char buf[PG];
    for (int i = 0; i < pages; i++) {
        memset(buf, fill + i, PG);
        if (write(fd, buf, PG) != PG)
            printf("write failed\n");
    }
    return fd;
}

/* Two processes map the same file; the child waits on a pipe while the
 * parent changes the file, then reads. */
static void across_processes(void) {
    int fd = make_file("x", 4, 10);
    char *m = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    for (int i = 0; i < 4; i++)
        m[i * PG] = 10 + i; /* every page mapped in both */
    int go[2], done[2];
    if (pipe(go) || pipe(done))
        printf("pipe failed\n");
    pid_t pid = fork();
    if (pid == 0) {
        char c;
        for (int i = 0; i < 4; i++)
            (void)*(volatile char *)(m + i * PG);
        if (write(done[1], "r", 1) != 1 || read(go[0], &c, 1) != 1)
            _exit(1);
        peek("child: page 1 after punch", m + PG);
        peek("child: page 0 after punch", m);
        if (write(done[1], "r", 1) != 1 || read(go[0], &c, 1) != 1)
            _exit(1);
        peek("child: page 1 after refill", m + PG);
        peek("child: page 3 after truncate", m + 3 * PG);
        peek("child: page 2 byte 99 after truncate", m + 2 * PG + 99);
        peek("child: page 2 byte 100 after truncate", m + 2 * PG + 100);
        if (write(done[1], "r", 1) != 1 || read(go[0], &c, 1) != 1)
            _exit(1);
        peek("child: page 3 after regrow", m + 3 * PG);
        _exit(0);
    }
    char c;
    if (read(done[0], &c, 1) != 1)
        printf("sync failed\n");
    printf("punch page 1: %s\n",
           err(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, PG, PG)));
    peek("parent: page 1 after punch", m + PG);
    if (write(go[1], "g", 1) != 1 || read(done[0], &c, 1) != 1)
        printf("sync failed\n");
    /* Writing the file fills the hole; both mappings see the new page. */
    char b = 77;
    printf("pwrite into hole: %s\n", err(pwrite(fd, &b, 1, PG)));
    printf("ftruncate to 2 pages + 100: %s\n", err(ftruncate(fd, 2 * PG + 100)));
    if (write(go[1], "g", 1) != 1 || read(done[0], &c, 1) != 1)
        printf("sync failed\n");
    printf("ftruncate to 4 pages: %s\n", err(ftruncate(fd, 4 * PG)));
    if (write(go[1], "g", 1) != 1)
        printf("sync failed\n");
    int st;
    waitpid(pid, &st, 0);
    printf("child: exit %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    peek("parent: page 3 after regrow", m + 3 * PG);
    munmap(m, 4 * PG);
    close(fd);
}

/* A private mapping keeps the pages it wrote over a punched hole, and
 * loses them to truncation. */
static void private_copies(void) {
    int fd = make_file("p", 3, 20);
    char *p = mmap(NULL, 3 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    p[0] = 99; /* a private copy */
    (void)*(volatile char *)(p + PG);
    printf("punch pages 0-1: %s\n",
           err(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 2 * PG)));
    peek("private: written page after punch", p);
    peek("private: read page after punch", p + PG);
    printf("ftruncate to 0: %s\n", err(ftruncate(fd, 0)));
    peek("private: written page after truncate", p);
    munmap(p, 3 * PG);
    close(fd);
}

static void madv_remove(void) {
    int fd = make_file("r", 3, 30);
    char *m = mmap(NULL, 3 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    m[PG] = 31;
    printf("MADV_REMOVE page 1: %s\n", err(madvise(m + PG, PG, MADV_REMOVE)));
    peek("shared: page 1 after MADV_REMOVE", m + PG);
    peek("shared: page 0 after MADV_REMOVE", m);
    char r = 1;
    ssize_t n = pread(fd, &r, 1, PG);
    printf("pread page 1: %zd %d\n", n, r);
    off_t hole = lseek(fd, 0, SEEK_HOLE);
    printf("SEEK_HOLE: page %ld\n", (long)(hole / PG));
    printf("MADV_REMOVE unaligned: %s\n", err(madvise(m + 1, PG, MADV_REMOVE)));
    printf("MADV_REMOVE len 0: %s\n", err(madvise(m, 0, MADV_REMOVE)));

    char *priv = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    printf("MADV_REMOVE private file: %s\n", err(madvise(priv, PG, MADV_REMOVE)));
    char *anon = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("MADV_REMOVE private anon: %s\n", err(madvise(anon, PG, MADV_REMOVE)));
    char *sanon = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    sanon[0] = 5;
    sanon[PG] = 6;
    printf("MADV_REMOVE shared anon: %s\n", err(madvise(sanon, PG, MADV_REMOVE)));
    peek("shared anon: page 0 after", sanon);
    peek("shared anon: page 1 after", sanon + PG);

    /* Read-only descriptor: the mapping may never write. */
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    int ro = open(path, O_RDONLY);
    char *rm = mmap(NULL, PG, PROT_READ, MAP_SHARED, ro, 0);
    printf("MADV_REMOVE read-only fd: %s\n", err(madvise(rm, PG, MADV_REMOVE)));
    /* Read-only mapping of a read-write descriptor: may write, so it works. */
    char *rw = mmap(NULL, 3 * PG, PROT_READ, MAP_SHARED, fd, 0);
    printf("MADV_REMOVE PROT_READ of rw fd: %s\n", err(madvise(rw + 2 * PG, PG, MADV_REMOVE)));
    peek("page 2 after", rw + 2 * PG);
    /* A locked area: EINVAL. */
    if (mlock(m, PG) == 0)
        printf("MADV_REMOVE locked: %s\n", err(madvise(m, PG, MADV_REMOVE)));
    munlock(m, PG);
    /* A range with a hole in it. */
    munmap(m + 2 * PG, PG);
    printf("MADV_REMOVE over a hole: %s\n", err(madvise(m, 3 * PG, MADV_REMOVE)));
    peek("page 0 after hole error", m);
    close(ro);
    close(fd);
}

static void remap(void) {
    int fd = make_file("m", 4, 40);
    char *m = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    /* Page 0 of the area shows page 3 of the file. */
    printf("remap_file_pages: %s\n", err(remap_file_pages(m, PG, 0, 3, 0)));
    peek("page 0 after remap", m);
    peek("page 1 after remap", m + PG);
    m[0] = 101;
    char r = 0;
    ssize_t n = pread(fd, &r, 1, 3 * PG);
    printf("pread file page 3: %zd %d\n", n, r);
    printf("remap two pages: %s\n", err(remap_file_pages(m + PG, 2 * PG, 0, 0, 0)));
    peek("page 1 after second remap", m + PG);
    peek("page 2 after second remap", m + 2 * PG);
    printf("remap with prot: %s\n", err(remap_file_pages(m, PG, PROT_READ, 0, 0)));
    printf("remap with flags: %s\n", err(remap_file_pages(m, PG, 0, 0, MAP_NONBLOCK)));
    printf("remap size 0: %s\n", err(remap_file_pages(m, 0, 0, 0, 0)));
    printf("remap past the area: %s\n", err(remap_file_pages(m, 5 * PG, 0, 0, 0)));
    printf("remap pgoff wraps: %s\n", err(remap_file_pages(m, 2 * PG, 0, -1UL, 0)));
    char *priv = mmap(NULL, PG, PROT_READ, MAP_PRIVATE, fd, 0);
    printf("remap private: %s\n", err(remap_file_pages(priv, PG, 0, 0, 0)));
    char *anon = mmap(NULL, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("remap anon: %s\n", err(remap_file_pages(anon, PG, 0, 0, 0)));
    munmap(anon, PG);
    printf("remap unmapped: %s\n", err(remap_file_pages(anon, PG, 0, 0, 0)));
    /* Unaligned start and size are rounded down. */
    printf("remap unaligned: %s\n", err(remap_file_pages(m + 10, PG + 10, 0, 1, 0)));
    peek("page 0 after unaligned remap", m);
    /* Beyond the end of the file: SIGBUS on access, as any mapping. */
    printf("remap past EOF: %s\n", err(remap_file_pages(m + 3 * PG, PG, 0, 9, 0)));
    peek("page 3 after remap past EOF", m + 3 * PG);
    close(fd);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct sigaction sa = {0};
    sa.sa_handler = on_sig;
    sa.sa_flags = SA_NODEFER;
    sigaction(SIGBUS, &sa, NULL);
    sigaction(SIGSEGV, &sa, NULL);
    across_processes();
    private_copies();
    madv_remove();
    remap();
    return 0;
}
