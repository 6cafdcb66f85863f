/* /proc/PID/pagemap: one 64-bit entry per virtual page (present bit 63,
 * swapped 62, file-page/shared-anon 61, exclusively mapped 56, soft-dirty
 * 55, PFN in bits 0-54 only for CAP_SYS_ADMIN), its offset and lseek
 * rules, EINVAL for misaligned reads, and the ptrace-read permission.
 * Prints facts only. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096L
#define PFN_MASK ((1ULL << 55) - 1)

static int pm = -1;

static uint64_t entry(int fd, void *addr) {
    uint64_t e = 0;
    off_t off = (uintptr_t)addr / PG * 8;
    ssize_t n = pread(fd, &e, 8, off);
    if (n != 8) {
        printf("pread: %zd %s\n", n, n < 0 ? strerrorname_np(errno) : "");
        return 0;
    }
    return e;
}

/* The flag bits of an entry, and whether it has a PFN. */
static void show(const char *what, int fd, void *addr) {
    uint64_t e = entry(fd, addr);
    printf("%-28s present=%d swap=%d file=%d excl=%d soft-dirty=%d pfn=%s\n", what,
           (int)(e >> 63 & 1), (int)(e >> 62 & 1), (int)(e >> 61 & 1), (int)(e >> 56 & 1),
           (int)(e >> 55 & 1), (e & PFN_MASK) ? "set" : "zero");
}

static const char *err(long r) { return r >= 0 ? "ok" : strerrorname_np(errno); }

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    pm = open("/proc/self/pagemap", O_RDONLY);
    printf("open: %s\n", err(pm));
    struct stat st;
    fstat(pm, &st);
    printf("mode: %o size: %lld\n", st.st_mode & 07777, (long long)st.st_size);

    /* Private anonymous memory: written, untouched, unmapped. */
    char *a = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    a[0] = 1;
    munmap(a + 3 * PG, PG);
    show("anon written", pm, a);
    show("anon untouched", pm, a + 2 * PG);
    show("unmapped", pm, a + 3 * PG);

    /* A shared anonymous page written: a shmem page (file bit); one
     * never touched is not present. */
    char *s = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    s[0] = 1;
    show("shared anon written", pm, s);
    show("shared anon untouched", pm, s + PG);

    /* A memfd's pages: shared and private mappings. */
    int mfd = memfd_create("pm", 0);
    char buf[2 * PG];
    memset(buf, 7, sizeof buf);
    if (write(mfd, buf, sizeof buf) != (ssize_t)sizeof buf)
        printf("write memfd failed\n");
    char *f = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
    volatile char c = f[0];
    (void)c;
    show("memfd shared read", pm, f);
    char *p = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, mfd, 0);
    c = p[0];
    show("memfd private read", pm, p);
    p[0] = 2;
    show("memfd private written", pm, p);

    /* After fork the child shares the parent's page: not exclusive until
     * it writes its own copy. */
    pid_t pid = fork();
    if (pid == 0) {
        int cfd = open("/proc/self/pagemap", O_RDONLY);
        show("child: anon shared by fork", cfd, a);
        a[0] = 3;
        show("child: anon after write", cfd, a);
        _exit(0);
    }
    waitpid(pid, NULL, 0);

    /* Offsets and lengths: whole entries only. */
    uint64_t e[4];
    off_t base = (uintptr_t)a / PG * 8;
    errno = 0;
    printf("pread off+4: %s\n", err(pread(pm, e, 8, base + 4)));
    printf("pread len 7: %s\n", err(pread(pm, e, 7, base)));
    printf("pread len 0: %zd\n", pread(pm, e, 0, base));
    printf("pread len 24: %zd\n", pread(pm, e, 24, base));
    printf("pread past the top: %zd\n", pread(pm, e, 8, 1LL << 50));
    printf("lseek SET 16: %lld\n", (long long)lseek(pm, 16, SEEK_SET));
    printf("lseek CUR 8: %lld\n", (long long)lseek(pm, 8, SEEK_CUR));
    errno = 0;
    printf("lseek END: %s\n", err(lseek(pm, 0, SEEK_END)));
    printf("lseek DATA: %s\n", err(lseek(pm, 0, SEEK_DATA)));
    printf("lseek SET base: %s\n", err(lseek(pm, base, SEEK_SET)));
    printf("read 16 at base: %zd pos base+%lld\n", read(pm, e, 16),
           (long long)(lseek(pm, 0, SEEK_CUR) - base));
    printf("read 5: %s\n", err(read(pm, e, 5)));
    printf("write: %s\n", err(write(pm, e, 8)));

    /* Another process's pagemap needs ptrace read access; the PFN needs
     * CAP_SYS_ADMIN. */
    pid_t parent = getpid();
    pid = fork();
    if (pid == 0) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/pagemap", parent);
        int fd = open(path, O_RDONLY);
        printf("child as root: parent's pagemap %s\n", err(fd));
        if (fd >= 0) {
            show("child as root: parent page", fd, a);
            close(fd);
        }
        if (setresuid(65534, 65534, 65534) != 0)
            printf("setresuid failed\n");
        printf("child as nobody: parent's pagemap %s\n", err(open(path, O_RDONLY)));
        int own = open("/proc/self/pagemap", O_RDONLY);
        printf("child as nobody: own pagemap %s\n", err(own));
        a[0] = 4;
        show("child as nobody: own page", own, a);
        /* The opener's privilege counts: root's descriptor shows the PFN
         * still. */
        show("child as nobody: root's fd", pm, a);
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    return 0;
}
