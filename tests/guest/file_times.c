/* utime, utimes and futimesat: the older file-time calls (the same
 * results natively and under ruml). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>

static const char *err(long r) { return r == 0 ? "ok" : strerrorname_np(errno); }

static void show(const char *what, const char *path) {
    struct stat st;
    if (stat(path, &st)) {
        printf("%s: stat %s\n", what, strerrorname_np(errno));
        return;
    }
    printf("%s: atime %ld.%09ld mtime %ld.%09ld\n", what, (long)st.st_atim.tv_sec,
           st.st_atim.tv_nsec, (long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    char dir[] = "/tmp/ruml-ft.XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    char f[64];
    snprintf(f, sizeof f, "%s/f", dir);
    int fd = open(f, O_CREAT | O_WRONLY, 0644);
    struct utimbuf ub = {1000, 2000};
    printf("utime: %s\n", err(utime(f, &ub)));
    show("after utime", f);
    struct timeval tv[2] = {{3000, 500000}, {4000, 999999}};
    printf("utimes: %s\n", err(utimes(f, tv)));
    show("after utimes", f);
    tv[1].tv_usec = 1000000;
    printf("utimes usec 1e6: %s\n", err(utimes(f, tv)));
    tv[1].tv_usec = -1;
    printf("utimes usec -1: %s\n", err(utimes(f, tv)));
    tv[1].tv_usec = 7;
    int d = open(dir, O_RDONLY | O_DIRECTORY);
    printf("futimesat dir+name: %s\n", err(syscall(SYS_futimesat, d, "f", tv)));
    show("after futimesat", f);
    tv[0].tv_sec = 5000;
    printf("futimesat fd, NULL path: %s\n", err(syscall(SYS_futimesat, fd, NULL, tv)));
    show("after futimesat on fd", f);
    printf("futimesat AT_FDCWD, NULL path: %s\n", err(syscall(SYS_futimesat, AT_FDCWD, NULL, tv)));
    time_t before = time(NULL);
    printf("utime NULL: %s\n", err(utime(f, NULL)));
    struct stat st;
    stat(f, &st);
    printf("now-ish: %d\n", st.st_mtime >= before - 5 && st.st_mtime <= time(NULL) + 5);
    printf("utimes NULL: %s\n", err(utimes(f, NULL)));
    printf("utime missing: %s\n", err(utime("/nonexistent/x", &ub)));
    printf("utime bad buf: %s\n", err(syscall(SYS_utime, f, (void *)8)));
    printf("utime bad path: %s\n", err(syscall(SYS_utime, (void *)8, &ub)));
    printf("utimes bad tv: %s\n", err(syscall(SYS_utimes, f, (void *)8)));
    close(fd);
    close(d);
    unlink(f);
    rmdir(dir);
    return 0;
}
