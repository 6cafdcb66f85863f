/* process_madvise(2): advice over an iovec of ranges in the address space
 * a pidfd names. Its own: any advice, the bytes of the ranges advised
 * (raw lengths), a failing range stopping the walk (its error only if no
 * range was done), MADV_DONTNEED over a hole discarding the mapped parts.
 * Errors: flags, too many or unreadable iovecs, not a pidfd, a zombie or
 * reaped process. Another process: only COLD/PAGEOUT/WILLNEED (EINVAL
 * else), CAP_SYS_NICE needed (EPERM as nobody), PTRACE_MODE_READ (EACCES
 * on root's process as nobody). Run as root. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096L

static long pm(int fd, struct iovec *v, size_t n, int advice, unsigned flags) {
    errno = 0;
    return syscall(440, fd, v, n, advice, flags);
}

static const char *res(long r) {
    static char b[32];
    if (r < 0)
        return strerrorname_np(errno);
    snprintf(b, sizeof b, "%ld", r);
    return b;
}

static int pidfd(pid_t p) { return syscall(SYS_pidfd_open, p, 0); }

static void pages(const char *what, long r, char *p, int n, int hole) {
    printf("%-40s %-8s", what, res(r));
    for (int i = 0; i < n; i++)
        putchar(i == hole ? '-' : p[i * PG] ? p[i * PG] : '.');
    putchar('\n');
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    int self = pidfd(getpid());
    char *p = mmap(NULL, 6 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(p, 'a', 6 * PG);
    struct iovec v[3] = {{p, PG}, {p + 2 * PG, PG + 100}};
    pages("self DONTNEED two ranges", pm(self, v, 2, MADV_DONTNEED, 0), p, 6, -1);
    memset(p, 'b', 6 * PG);
    v[1].iov_base = p + 2 * PG + 1;
    pages("self, second range unaligned", pm(self, v, 2, MADV_DONTNEED, 0), p, 6, -1);
    memset(p, 'c', 6 * PG);
    v[0].iov_base = p + 1;
    pages("self, first range unaligned", pm(self, v, 2, MADV_DONTNEED, 0), p, 6, -1);
    /* An empty range counts 0 bytes, but is still checked. */
    struct iovec e[2] = {{p, 0}, {p + 5 * PG, PG}};
    pages("self, empty range first", pm(self, e, 2, MADV_DONTNEED, 0), p, 6, -1);
    memset(p, 'd', 6 * PG);
    e[0].iov_base = p + 1;
    pages("self, empty unaligned range first", pm(self, e, 2, MADV_DONTNEED, 0), p, 6, -1);
    /* A hole: the mapped parts are discarded, the range fails. */
    munmap(p + 3 * PG, PG);
    memset(p, 'e', 3 * PG);
    memset(p + 4 * PG, 'e', 2 * PG);
    struct iovec h[2] = {{p, 6 * PG}, {p, PG}};
    pages("self, hole in the first range", pm(self, h, 2, MADV_DONTNEED, 0), p, 6, 3);
    memset(p, 'f', 3 * PG);
    h[0].iov_len = PG;
    h[1].iov_base = p + 2 * PG;
    h[1].iov_len = 3 * PG;
    pages("self, hole in the second range", pm(self, h, 2, MADV_DONTNEED, 0), p, 6, 3);
    /* Locked memory and MADV_DONTNEED_LOCKED. */
    memset(p, 'g', 3 * PG);
    mlock(p, PG);
    struct iovec l[1] = {{p, 2 * PG}};
    pages("self, locked, DONTNEED", pm(self, l, 1, MADV_DONTNEED, 0), p, 3, -1);
    pages("self, locked, DONTNEED_LOCKED", pm(self, l, 1, 24, 0), p, 3, -1);
    munlock(p, PG);
    /* Other advice on self: the fork flags. */
    printf("%-40s %s\n", "self DONTFORK", res(pm(self, l, 1, MADV_DONTFORK, 0)));
    pid_t c = fork();
    if (c == 0) {
        _exit(p[0] == 0 ? 3 : 4);
    }
    int st;
    waitpid(c, &st, 0);
    printf("%-40s %s\n", "DONTFORK page in child",
           WIFSIGNALED(st) ? sigabbrev_np(WTERMSIG(st)) : "no signal");
    /* Errors. */
    printf("%-40s %s\n", "flags 1", res(pm(self, l, 1, MADV_COLD, 1)));
    printf("%-40s %s\n", "vlen 1025", res(pm(self, l, 1025, MADV_COLD, 0)));
    printf("%-40s %s\n", "vlen 0", res(pm(self, l, 0, MADV_COLD, 0)));
    printf("%-40s %s\n", "vec unreadable", res(pm(self, (void *)8, 1, MADV_COLD, 0)));
    printf("%-40s %s\n", "bad advice", res(pm(self, l, 1, 77, 0)));
    int null = open("/dev/null", O_RDONLY);
    printf("%-40s %s\n", "not a pidfd", res(pm(null, l, 1, MADV_COLD, 0)));
    printf("%-40s %s\n", "fd -1", res(pm(-1, l, 1, MADV_COLD, 0)));
    printf("%-40s %s\n", "bad fd with flags 1", res(pm(-1, l, 1, MADV_COLD, 1)));
    printf("%-40s %s\n", "bad fd with bad vec", res(pm(-1, (void *)8, 1, MADV_COLD, 0)));

    /* Another process: a child waiting on a pipe. */
    int go[2], ready[2];
    if (pipe(go) || pipe(ready))
        return 1;
    char *cm = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    c = fork();
    if (c == 0) {
        memset(cm, 'x', 4 * PG);
        munmap(cm + 3 * PG, PG);
        mlock(cm + 2 * PG, PG);
        write(ready[1], "r", 1);
        char b;
        read(go[0], &b, 1);
        _exit(0);
    }
    char b;
    read(ready[0], &b, 1);
    int cfd = pidfd(c);
    struct iovec r1[1] = {{cm, 2 * PG}}, r2[1] = {{cm, 4 * PG}}, r3[1] = {{cm + 2 * PG, PG}};
    printf("%-40s %s\n", "child COLD", res(pm(cfd, r1, 1, MADV_COLD, 0)));
    printf("%-40s %s\n", "child PAGEOUT", res(pm(cfd, r1, 1, MADV_PAGEOUT, 0)));
    printf("%-40s %s\n", "child WILLNEED", res(pm(cfd, r1, 1, MADV_WILLNEED, 0)));
    printf("%-40s %s\n", "child WILLNEED over a hole", res(pm(cfd, r2, 1, MADV_WILLNEED, 0)));
    printf("%-40s %s\n", "child COLD on locked", res(pm(cfd, r3, 1, MADV_COLD, 0)));
    printf("%-40s %s\n", "child DONTNEED", res(pm(cfd, r1, 1, MADV_DONTNEED, 0)));
    printf("%-40s %s\n", "child DONTNEED_LOCKED", res(pm(cfd, r1, 1, 24, 0)));
    printf("%-40s %s\n", "child FREE", res(pm(cfd, r1, 1, MADV_FREE, 0)));
    /* As nobody: a nobody sibling (EPERM, no CAP_SYS_NICE), root's child
     * (EACCES), its own pidfd (any advice). */
    pid_t n = fork();
    if (n == 0) {
        if (setresuid(65534, 65534, 65534) != 0)
            printf("setresuid failed\n");
        /* Linux makes a process that changed its ids undumpable (ptrace
         * access refused to its peers): made dumpable again, its child
         * may be reached by ptrace's rules. */
        prctl(PR_SET_DUMPABLE, 1);
        pid_t sib = fork();
        if (sib == 0) {
            pause();
            _exit(0);
        }
        int sfd = pidfd(sib);
        printf("%-40s %s\n", "nobody: nobody's COLD", res(pm(sfd, r1, 1, MADV_COLD, 0)));
        printf("%-40s %s\n", "nobody: nobody's DONTNEED", res(pm(sfd, r1, 1, MADV_DONTNEED, 0)));
        printf("%-40s %s\n", "nobody: root's COLD", res(pm(cfd, r1, 1, MADV_COLD, 0)));
        int me = pidfd(getpid());
        printf("%-40s %s\n", "nobody: own COLD", res(pm(me, r1, 1, MADV_COLD, 0)));
        kill(sib, SIGKILL);
        waitpid(sib, NULL, 0);
        _exit(0);
    }
    waitpid(n, NULL, 0);
    /* Gone: a zombie, then reaped. */
    write(go[1], "g", 1);
    siginfo_t si;
    waitid(P_PID, c, &si, WEXITED | WNOWAIT);
    printf("%-40s %s\n", "zombie child COLD", res(pm(cfd, r1, 1, MADV_COLD, 0)));
    waitpid(c, NULL, 0);
    printf("%-40s %s\n", "reaped child COLD", res(pm(cfd, r1, 1, MADV_COLD, 0)));
    return 0;
}
