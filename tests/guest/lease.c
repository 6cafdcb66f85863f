/* File leases: F_SETLEASE/F_GETLEASE rules and errors, breaks by a
 * non-blocking opener, a blocking opener, a reader against a write lease
 * (downgrade) and truncate(2); the holder's signal (F_SETSIG, si_fd,
 * POLL_MSG). Every wait is a rendezvous, so the output is deterministic:
 * the same natively and under ruml.
 * With the argument "timeout" (ruml only: it changes
 * /proc/sys/fs/lease-break-time), an ignored break ends by itself. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SIG (SIGRTMIN + 4)

static const char *e(long r) { return r < 0 ? strerrorname_np(errno) : "ok"; }
static const char *lt(int t) {
    return t == F_RDLCK ? "F_RDLCK" : t == F_WRLCK ? "F_WRLCK" : t == F_UNLCK ? "F_UNLCK" : "?";
}

static void take(const char *what, int fd) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIG);
    sigaddset(&s, SIGIO);
    siginfo_t si;
    struct timespec ts = {30, 0};
    int r = sigtimedwait(&s, &si, &ts);
    if (r < 0) {
        printf("%s: no signal\n", what);
        return;
    }
    if (r == SIGIO)
        printf("%s: SIGIO code %d\n", what, si.si_code);
    else
        printf("%s: sig+%d code %s band %#lx fd %s\n", what, r - SIGRTMIN,
               si.si_code == POLL_MSG ? "POLL_MSG" : "other", si.si_band,
               si.si_fd == fd ? "right" : "wrong");
}

static char path[64];

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    sigset_t all;
    sigemptyset(&all);
    sigaddset(&all, SIG);
    sigaddset(&all, SIGIO);
    sigprocmask(SIG_BLOCK, &all, NULL);
    char dir[] = "/tmp/ruml-lease.XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    snprintf(path, sizeof path, "%s/f", dir);
    close(open(path, O_CREAT | O_WRONLY, 0644));

    if (argc > 1 && !strcmp(argv[1], "timeout")) {
        int fd = open("/proc/sys/fs/lease-break-time", O_RDWR);
        char b[32] = "";
        read(fd, b, sizeof b - 1);
        printf("lease-break-time: %s", b);
        printf("write 1: %s\n", e(pwrite(fd, "1\n", 2, 0)));
        close(fd);
        fd = open("/proc/sys/fs/lease-break-time", O_RDONLY);
        memset(b, 0, sizeof b);
        read(fd, b, sizeof b - 1);
        printf("now: %s", b);
        close(fd);
        int h = open(path, O_RDONLY);
        fcntl(h, F_SETSIG, SIG);
        printf("F_WRLCK: %s\n", e(fcntl(h, F_SETLEASE, F_WRLCK)));
        pid_t k = fork();
        if (k == 0) {
            int r = open(path, O_RDONLY);
            printf("reader after timeout: %s\n", e(r));
            _exit(0);
        }
        take("holder (ignores it)", h);
        int st;
        waitpid(k, &st, 0);
        printf("lease after timeout: %s\n", lt(fcntl(h, F_GETLEASE)));
        k = fork();
        if (k == 0) {
            int r = open(path, O_WRONLY);
            printf("writer after timeout: %s\n", e(r));
            _exit(0);
        }
        take("holder again", h);
        waitpid(k, &st, 0);
        printf("lease at the end: %s\n", lt(fcntl(h, F_GETLEASE)));
        fd = open("/proc/sys/fs/lease-break-time", O_WRONLY);
        write(fd, "45", 2);
        close(fd);
        unlink(path);
        rmdir(dir);
        return 0;
    }

    /* Errors and grant rules. */
    int p[2];
    pipe(p);
    printf("pipe: %s\n", e(fcntl(p[0], F_SETLEASE, F_RDLCK)));
    close(p[0]);
    close(p[1]);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    printf("directory: %s\n", e(fcntl(dfd, F_SETLEASE, F_RDLCK)));
    close(dfd);
    int r = open(path, O_RDONLY);
    printf("bad type: %s\n", e(fcntl(r, F_SETLEASE, 7)));
    printf("getlease fresh: %s\n", lt(fcntl(r, F_GETLEASE)));
    printf("unlock unleased: %s\n", e(fcntl(r, F_SETLEASE, F_UNLCK)));
    int w = open(path, O_WRONLY);
    printf("rdlck with a writer open: %s\n", e(fcntl(r, F_SETLEASE, F_RDLCK)));
    printf("rdlck on the writer: %s\n", e(fcntl(w, F_SETLEASE, F_RDLCK)));
    close(w);
    int r2 = open(path, O_RDONLY);
    printf("wrlck with another reader: %s\n", e(fcntl(r, F_SETLEASE, F_WRLCK)));
    printf("rdlck: %s\n", e(fcntl(r, F_SETLEASE, F_RDLCK)));
    printf("rdlck second reader: %s\n", e(fcntl(r2, F_SETLEASE, F_RDLCK)));
    printf("getlease: %s\n", lt(fcntl(r, F_GETLEASE)));
    printf("owner is us: %d\n", fcntl(r, F_GETOWN) == getpid());
    printf("wrlck beside a read lease: %s\n", e(fcntl(r, F_SETLEASE, F_WRLCK)));
    printf("unlock second: %s\n", e(fcntl(r2, F_SETLEASE, F_UNLCK)));
    close(r2);
    printf("wrlck alone: %s\n", e(fcntl(r, F_SETLEASE, F_WRLCK)));
    printf("getlease: %s\n", lt(fcntl(r, F_GETLEASE)));
    int dup_r = dup(r);
    printf("dup keeps it: %s\n", lt(fcntl(dup_r, F_GETLEASE)));
    close(dup_r);
    printf("after closing the dup: %s\n", lt(fcntl(r, F_GETLEASE)));
    fcntl(r, F_SETSIG, SIG);

    /* A non-blocking reader against the write lease. */
    pid_t k = fork();
    if (k == 0) {
        int x = open(path, O_RDONLY | O_NONBLOCK);
        printf("nonblocking reader: %s\n", e(x));
        _exit(0);
    }
    int st;
    waitpid(k, &st, 0);
    take("holder", r);
    printf("getlease while breaking: %s\n", lt(fcntl(r, F_GETLEASE)));
    printf("downgrade: %s\n", e(fcntl(r, F_SETLEASE, F_RDLCK)));
    printf("getlease: %s\n", lt(fcntl(r, F_GETLEASE)));

    /* A reader does not break a read lease. */
    k = fork();
    if (k == 0) {
        int x = open(path, O_RDONLY);
        printf("reader beside a read lease: %s\n", e(x));
        _exit(0);
    }
    waitpid(k, &st, 0);

    /* A blocking writer: the holder is told, unlocks, the writer goes on. */
    int ready[2];
    pipe(ready);
    k = fork();
    if (k == 0) {
        write(ready[1], "r", 1);
        int x = open(path, O_WRONLY);
        printf("blocking writer: %s\n", e(x));
        _exit(0);
    }
    char c;
    read(ready[0], &c, 1);
    take("holder", r);
    printf("getlease while breaking: %s\n", lt(fcntl(r, F_GETLEASE)));
    printf("new lease elsewhere meanwhile: ");
    int r3 = open(path, O_RDONLY | O_NONBLOCK);
    printf("%s\n", e(r3));
    if (r3 >= 0)
        close(r3);
    const char *u = e(fcntl(r, F_SETLEASE, F_UNLCK));
    waitpid(k, &st, 0);
    printf("unlock: %s\n", u);
    printf("getlease after: %s\n", lt(fcntl(r, F_GETLEASE)));

    /* A blocking reader against a write lease: the holder downgrades.
     * (The unlock cleared the owner and the F_SETSIG signal, as Linux.) */
    printf("getsig after unlock: %d\n", fcntl(r, F_GETSIG));
    printf("wrlck again: %s\n", e(fcntl(r, F_SETLEASE, F_WRLCK)));
    k = fork();
    if (k == 0) {
        write(ready[1], "r", 1);
        int x = open(path, O_RDONLY);
        printf("blocking reader: %s\n", e(x));
        _exit(0);
    }
    read(ready[0], &c, 1);
    take("holder", r);
    u = e(fcntl(r, F_SETLEASE, F_RDLCK));
    waitpid(k, &st, 0);
    printf("downgrade: %s\n", u);
    printf("getlease after: %s\n", lt(fcntl(r, F_GETLEASE)));

    /* truncate(2) breaks a read lease. */
    k = fork();
    if (k == 0) {
        write(ready[1], "r", 1);
        printf("truncate: %s\n", e(truncate(path, 0)));
        _exit(0);
    }
    read(ready[0], &c, 1);
    take("holder", r);
    u = e(fcntl(r, F_SETLEASE, F_UNLCK));
    waitpid(k, &st, 0);
    printf("unlock: %s\n", u);

    /* Plain SIGIO when no F_SETSIG. */
    fcntl(r, F_SETSIG, 0);
    printf("rdlck: %s\n", e(fcntl(r, F_SETLEASE, F_RDLCK)));
    k = fork();
    if (k == 0) {
        int x = open(path, O_WRONLY | O_NONBLOCK);
        printf("nonblocking writer: %s\n", e(x));
        _exit(0);
    }
    waitpid(k, &st, 0);
    take("holder", r);
    printf("getlease while breaking: %s\n", lt(fcntl(r, F_GETLEASE)));
    close(r);
    /* The lease went with the file: a writer opens at once. */
    k = fork();
    if (k == 0) {
        int x = open(path, O_WRONLY | O_NONBLOCK);
        printf("writer after close: %s\n", e(x));
        _exit(0);
    }
    waitpid(k, &st, 0);
    unlink(path);
    rmdir(dir);
    return 0;
}
