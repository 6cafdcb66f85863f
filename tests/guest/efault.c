/*
 * efault: system calls given bad user pointers fail with EFAULT, and the
 * process survives. Raw syscall() is used wherever a glibc wrapper would
 * touch the pointer itself first (and crash) or would take the vDSO path.
 *
 * Bad pointers tried: a low address (1), NULL, a non-canonical address, a
 * kernel-half address, a PROT_NONE page, a read-only page used as an output
 * buffer, and a buffer that runs off the end of a mapping.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static void report(const char *what, long ret, int err)
{
    if (ret == -1)
        printf("%-44s ret=-1 errno=%s\n", what, strerrorname_np(err) ? strerrorname_np(err) : "?");
    else
        printf("%-44s ret=%ld\n", what, ret);
    fflush(stdout);
}

#define TRY(what, call)                 \
    do {                                \
        errno = 0;                      \
        long r_ = (long)(call);         \
        report(what, r_, errno);        \
    } while (0)

#define BAD1 ((void *)1)
#define NONCANON ((void *)0x0000800000000000UL)
#define KERNEL ((void *)0xffffffff81000000UL)

int main(void)
{
    long page = sysconf(_SC_PAGESIZE);
    /* Two pages: the first read-write, the second PROT_NONE. */
    char *rw = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *ro = mmap(NULL, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (rw == MAP_FAILED || ro == MAP_FAILED || mprotect(rw + page, page, PROT_NONE)) {
        printf("setup failed\n");
        return 1;
    }
    char *none = rw + page;
    int p[2];
    if (pipe(p)) {
        printf("pipe failed\n");
        return 1;
    }
    /* Data in the pipe, so a read does not block. */
    if (write(p[1], "0123456789abcdefghij", 20) != 20) {
        printf("pipe write failed\n");
        return 1;
    }

    TRY("read(pipe, 1, 10)", syscall(SYS_read, p[0], BAD1, 10));
    TRY("read(pipe, NULL, 10)", syscall(SYS_read, p[0], NULL, 10));
    TRY("read(pipe, PROT_NONE page, 10)", syscall(SYS_read, p[0], none, 10));
    TRY("read(pipe, read-only page, 10)", syscall(SYS_read, p[0], ro, 10));
    TRY("read(pipe, kernel address, 10)", syscall(SYS_read, p[0], KERNEL, 10));
    TRY("write(1, 1, 10)", syscall(SYS_write, 1, BAD1, 10));
    TRY("write(1, NULL, 10)", syscall(SYS_write, 1, NULL, 10));
    TRY("write(1, non-canonical, 10)", syscall(SYS_write, 1, NONCANON, 10));
    TRY("write(1, kernel address, 10)", syscall(SYS_write, 1, KERNEL, 10));
    TRY("write(pipe, PROT_NONE page, 10)", syscall(SYS_write, p[1], none, 10));
    TRY("write(1, 0 bytes from 1)", syscall(SYS_write, 1, BAD1, 0));
    TRY("open(1, O_RDONLY)", syscall(SYS_open, BAD1, O_RDONLY));
    TRY("open(NULL, O_RDONLY)", syscall(SYS_open, NULL, O_RDONLY));
    TRY("openat(AT_FDCWD, PROT_NONE page)", syscall(SYS_openat, AT_FDCWD, none, O_RDONLY));
    TRY("stat(\"/\", 1)", syscall(SYS_stat, "/", BAD1));
    TRY("stat(1, buf)", syscall(SYS_stat, BAD1, rw));
    TRY("stat(\"/\", read-only page)", syscall(SYS_stat, "/", ro));
    TRY("lstat(\"/\", 1)", syscall(SYS_lstat, "/", BAD1));
    TRY("fstat(0, 1)", syscall(SYS_fstat, 0, BAD1));
    TRY("newfstatat(AT_FDCWD, \"/\", 1, 0)", syscall(SYS_newfstatat, AT_FDCWD, "/", BAD1, 0));
    TRY("statx(AT_FDCWD, \"/\", 0, ALL, 1)", syscall(SYS_statx, AT_FDCWD, "/", 0, 0xfff, BAD1));
    TRY("access(1, F_OK)", syscall(SYS_access, BAD1, F_OK));
    TRY("chdir(1)", syscall(SYS_chdir, BAD1));
    TRY("getcwd(1, 4096)", syscall(SYS_getcwd, BAD1, 4096));
    TRY("readlink(\"/proc/self\", 1, 64)", syscall(SYS_readlink, "/proc/self", BAD1, 64));
    TRY("uname(1)", syscall(SYS_uname, BAD1));
    TRY("pipe(1)", syscall(SYS_pipe, BAD1));
    TRY("pipe2(read-only page, 0)", syscall(SYS_pipe2, ro, 0));
    TRY("clock_gettime(REALTIME, 1)", syscall(SYS_clock_gettime, CLOCK_REALTIME, BAD1));
    TRY("clock_gettime(MONOTONIC, NULL)", syscall(SYS_clock_gettime, CLOCK_MONOTONIC, NULL));
    TRY("gettimeofday(1, NULL)", syscall(SYS_gettimeofday, BAD1, NULL));
    TRY("nanosleep(1, NULL)", syscall(SYS_nanosleep, BAD1, NULL));
    TRY("getrlimit(NOFILE, 1)", syscall(SYS_getrlimit, RLIMIT_NOFILE, BAD1));
    TRY("sysinfo(1)", syscall(SYS_sysinfo, BAD1));
    TRY("rt_sigaction(SIGUSR1, 1, NULL, 8)", syscall(SYS_rt_sigaction, SIGUSR1, BAD1, NULL, 8));
    TRY("rt_sigaction(SIGUSR1, NULL, 1, 8)", syscall(SYS_rt_sigaction, SIGUSR1, NULL, BAD1, 8));
    TRY("rt_sigprocmask(SIG_BLOCK, 1, NULL, 8)", syscall(SYS_rt_sigprocmask, SIG_BLOCK, BAD1, NULL, 8));
    TRY("execve(1, NULL, NULL)", syscall(SYS_execve, BAD1, NULL, NULL));
    TRY("execve(\"/bin/true\", 1, NULL)", syscall(SYS_execve, "/bin/true", BAD1, NULL));
    TRY("wait4(-1, 1, WNOHANG, NULL) without children", syscall(SYS_wait4, -1, BAD1, 1, NULL));
    TRY("getdents64(dirfd, 1, 4096)", ({
        long fd_ = syscall(SYS_open, "/", O_RDONLY | O_DIRECTORY);
        long r2_ = syscall(SYS_getdents64, fd_, BAD1, 4096);
        int e_ = errno;
        close((int)fd_);
        errno = e_;
        r2_;
    }));

    /* A buffer that runs off the end of its mapping: the first part copies. */
    memcpy(none - 5, "TAIL!", 5);
    TRY("write(pipe, 5 good bytes then PROT_NONE, 10)", syscall(SYS_write, p[1], none - 5, 10));

    /* Still alive, and the pipe still works. */
    char buf[64];
    long n = syscall(SYS_read, p[0], buf, sizeof buf);
    printf("survived; drained %s bytes from the pipe\n", n > 0 ? "some" : "no");
    return 0;
}
