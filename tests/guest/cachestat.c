/* cachestat(2) on a memfd (tmpfs) whose pages are written, mapped,
 * punched and truncated: nr_cache over whole and partial ranges (len 0 =
 * to the end), the other counts 0 (shmem keeps no dirty tag); zeros for
 * a pipe and /dev/null; errors and their order (EBADF, EFAULT, EPERM for
 * a file nobody may write, EINVAL for flags). Run as root. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096L

struct range {
    unsigned long long off, len;
};
struct cs {
    unsigned long long cache, dirty, writeback, evicted, recently;
};

static void show(const char *what, int fd, unsigned long long off, unsigned long long len) {
    struct range r = {off, len};
    struct cs c;
    memset(&c, 0x55, sizeof c);
    errno = 0;
    long ret = syscall(451, fd, &r, &c, 0);
    if (ret)
        printf("%-34s %s\n", what, strerrorname_np(errno));
    else
        printf("%-34s cache %llu dirty %llu writeback %llu evicted %llu recent %llu\n", what, c.cache,
               c.dirty, c.writeback, c.evicted, c.recently);
}

static const char *call(int fd, void *r, void *c, unsigned flags) {
    errno = 0;
    return syscall(451, fd, r, c, flags) ? strerrorname_np(errno) : "ok";
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    int fd = memfd_create("cs", 0);
    char buf[2 * PG];
    memset(buf, 'a', sizeof buf);
    show("empty memfd", fd, 0, 0);
    pwrite(fd, buf, PG, 0);
    pwrite(fd, buf, 2 * PG, 2 * PG);
    ftruncate(fd, 10 * PG);
    show("pages 0, 2, 3 written", fd, 0, 0);
    show("range pages 1-2", fd, PG, 2 * PG);
    show("range from byte 1, 1 byte", fd, 1, 1);
    show("range from page 5 to the end", fd, 5 * PG, 0);
    show("range past the end", fd, 100 * PG, PG);
    show("range to the top of u64", fd, 3 * PG, ~0ULL - 3 * PG);
    char *m = mmap(NULL, 10 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    m[7 * PG] = 1;
    show("page 7 written through a mapping", fd, 0, 0);
    fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 2 * PG, PG);
    show("page 2 punched", fd, 0, 0);
    munmap(m, 10 * PG);
    ftruncate(fd, PG);
    show("truncated to one page", fd, 0, 0);
    int p[2];
    pipe(p);
    write(p[1], "x", 1);
    show("pipe", p[0], 0, 0);
    int null = open("/dev/null", O_RDONLY);
    show("/dev/null", null, 0, 0);

    struct range r = {0, 0};
    struct cs c;
    printf("%-34s %s\n", "flags 1", call(fd, &r, &c, 1));
    printf("%-34s %s\n", "bad fd", call(-1, &r, &c, 0));
    printf("%-34s %s\n", "bad range pointer", call(fd, (void *)8, &c, 0));
    printf("%-34s %s\n", "bad result pointer", call(fd, &r, (void *)8, 0));
    printf("%-34s %s\n", "bad range and flags 1", call(fd, (void *)8, &c, 1));
    printf("%-34s %s\n", "bad fd and bad range", call(-1, (void *)8, &c, 0));
    int ro = open("/etc/passwd", O_RDONLY);
    printf("%-34s %s\n", "root, /etc/passwd read-only", call(ro, &r, &c, 0));
    pid_t k = fork();
    if (k == 0) {
        if (setresuid(65534, 65534, 65534) != 0)
            printf("setresuid failed\n");
        printf("%-34s %s\n", "nobody, /etc/passwd read-only", call(ro, &r, &c, 0));
        printf("%-34s %s\n", "nobody, flags 1 on it", call(ro, &r, &c, 1));
        printf("%-34s %s\n", "nobody, root's memfd (rw)", call(fd, &r, &c, 0));
        int own = memfd_create("own", 0);
        int ro2 = open("/proc/self/fd/0", O_RDONLY);
        (void)ro2;
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", own);
        int own_ro = open(path, O_RDONLY);
        printf("%-34s %s\n", "nobody, own memfd read-only", call(own_ro, &r, &c, 0));
        _exit(0);
    }
    waitpid(k, NULL, 0);
    return 0;
}
