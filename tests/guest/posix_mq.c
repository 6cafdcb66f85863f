/* POSIX message queues: mq_open's rules and errors, priorities, attributes,
 * non-blocking and timed calls, a blocked receiver woken by another
 * process, mq_notify with SIGEV_SIGNAL and SIGEV_NONE, mq_unlink. Prints
 * nothing that differs between runs. With argument "fs DIR" it reads the
 * queue's file in the mqueue filesystem mounted at DIR. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int failed;
#define CHECK(c) do { if (c) printf("ok: %s\n", #c); else { printf("FAIL: %s (%s)\n", #c, strerrorname_np(errno)); failed = 1; } } while (0)
#define ERR(call, e) do { errno = 0; long r_ = (long)(call); if (r_ == -1 && errno == (e)) printf("ok: %s -> %s\n", #call, #e); else { printf("FAIL: %s -> %ld %s (want %s)\n", #call, r_, strerrorname_np(errno), #e); failed = 1; } } while (0)

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    char name[64], other[64];
    snprintf(name, sizeof name, "/ruml-mq-%d", getpid());
    snprintf(other, sizeof other, "/ruml-mq-%d-b", getpid());
    mq_unlink(name);
    mq_unlink(other);
    if (argc == 3 && strcmp(argv[1], "fs") == 0) {
        mqd_t q = mq_open(name, O_CREAT | O_RDWR, 0600, NULL);
        CHECK(q != (mqd_t)-1);
        CHECK(mq_send(q, "hello", 5, 1) == 0);
        CHECK(mq_send(q, "abc", 3, 2) == 0);
        struct sigevent ev = {.sigev_notify = SIGEV_NONE};
        char path[128], buf[8192];
        snprintf(path, sizeof path, "%s%s", argv[2], name);
        FILE *f = fopen(path, "r");
        CHECK(f != NULL);
        if (f && fgets(buf, sizeof buf, f)) printf("%s", buf);
        if (f) fclose(f);
        CHECK(mq_receive(q, buf, sizeof buf, NULL) == 3);
        CHECK(mq_notify(q, &ev) == 0);
        f = fopen(path, "r");
        int qsize = -1, notify = -1, signo = -1, npid = -1;
        if (f && fgets(buf, sizeof buf, f))
            sscanf(buf, "QSIZE:%d NOTIFY:%d SIGNO:%d NOTIFY_PID:%d", &qsize, &notify, &signo, &npid);
        if (f) fclose(f);
        printf("QSIZE %d NOTIFY %d SIGNO %d NOTIFY_PID-is-me %d\n", qsize, notify, signo, npid == getpid());
        CHECK(unlink(path) == 0);
        ERR(mq_unlink(name), ENOENT);
        /* A queue made by open(2) in the filesystem. */
        snprintf(path, sizeof path, "%s%s", argv[2], other);
        int fd = open(path, O_CREAT | O_RDWR, 0644);
        CHECK(fd >= 0);
        mqd_t q2 = mq_open(other, O_RDWR);
        struct mq_attr a;
        CHECK(mq_getattr(q2, &a) == 0);
        printf("default attrs: maxmsg %ld msgsize %ld\n", a.mq_maxmsg, a.mq_msgsize);
        CHECK(mq_unlink(other) == 0);
        printf("result: %s\n", failed ? "FAIL" : "OK");
        return failed;
    }

    struct mq_attr attr = {.mq_maxmsg = 4, .mq_msgsize = 16};
    ERR(mq_open(name, O_RDWR), ENOENT);
    ERR(mq_open("noslash", O_RDWR | O_CREAT, 0600, &attr), EINVAL);
    ERR(mq_open("/a/b", O_RDWR | O_CREAT, 0600, &attr), EACCES);
    struct mq_attr bad = {.mq_maxmsg = 0, .mq_msgsize = 16};
    ERR(mq_open(name, O_RDWR | O_CREAT, 0600, &bad), EINVAL);
    bad.mq_maxmsg = 100000;
    ERR(mq_open(name, O_RDWR | O_CREAT, 0600, &bad), EINVAL);
    mqd_t q = mq_open(name, O_RDWR | O_CREAT | O_EXCL, 0600, &attr);
    CHECK(q != (mqd_t)-1);
    ERR(mq_open(name, O_RDWR | O_CREAT | O_EXCL, 0600, &attr), EEXIST);
    mqd_t ro = mq_open(name, O_RDONLY);
    CHECK(ro != (mqd_t)-1);
    struct mq_attr a;
    CHECK(mq_getattr(q, &a) == 0);
    printf("attrs: flags %ld maxmsg %ld msgsize %ld curmsgs %ld\n", a.mq_flags, a.mq_maxmsg, a.mq_msgsize,
           a.mq_curmsgs);
    CHECK(mq_send(q, "low", 3, 1) == 0);
    CHECK(mq_send(q, "high", 4, 9) == 0);
    CHECK(mq_send(q, "mid", 3, 5) == 0);
    CHECK(mq_send(q, "high2", 5, 9) == 0);
    ERR(mq_send(ro, "x", 1, 0), EBADF);
    ERR(mq_send(q, "0123456789abcdefX", 17, 0), EMSGSIZE);
    ERR(mq_send(q, "x", 1, 40000), EINVAL);
    ERR(mq_send(0, "x", 1, 0), EBADF);
    struct timespec past = {0, 0};
    ERR(mq_timedsend(q, "x", 1, 0, &past), ETIMEDOUT);
    struct timespec badts = {0, -1};
    ERR(mq_timedsend(q, "x", 1, 0, &badts), EINVAL);
    struct mq_attr nb = {.mq_flags = O_NONBLOCK};
    CHECK(mq_setattr(q, &nb, &a) == 0 && a.mq_flags == 0 && a.mq_curmsgs == 4);
    ERR(mq_send(q, "x", 1, 0), EAGAIN);
    CHECK(mq_getattr(q, &a) == 0 && a.mq_flags == O_NONBLOCK);
    struct pollfd pfd[2] = {{.fd = q, .events = POLLIN | POLLOUT}, {.fd = ro, .events = POLLIN}};
    CHECK(poll(pfd, 2, 0) == 2);
    printf("poll full queue: %s %s\n", pfd[0].revents == POLLIN ? "in" : "other", pfd[1].revents == POLLIN ? "in" : "other");
    char buf[64];
    unsigned prio;
    ERR(mq_receive(q, buf, 8, &prio), EMSGSIZE);
    for (int i = 0; i < 4; i++) {
        ssize_t n = mq_receive(ro, buf, sizeof buf, &prio);
        printf("received %.*s prio %u\n", (int)n, buf, prio);
    }
    ERR(mq_receive(q, buf, sizeof buf, &prio), EAGAIN);
    CHECK(poll(pfd, 2, 0) == 1);
    printf("poll empty queue: %s\n", pfd[0].revents == POLLOUT ? "out" : "other");
    ERR(mq_timedreceive(ro, buf, sizeof buf, &prio, &past), ETIMEDOUT);
    ERR(mq_receive(ro + 100, buf, sizeof buf, &prio), EBADF);
    int plain = open("/dev/null", O_RDONLY);
    ERR(mq_receive(plain, buf, sizeof buf, &prio), EBADF);

    /* A blocked receiver woken by another process's send. */
    pid_t p = fork();
    if (p == 0) {
        ssize_t n = mq_receive(ro, buf, sizeof buf, &prio);
        _exit(n == 4 && memcmp(buf, "ping", 4) == 0 && prio == 3 ? 0 : 1);
    }
    usleep(100000);
    nb.mq_flags = 0;
    mq_setattr(q, &nb, NULL);
    int sent = mq_send(q, "ping", 4, 3);
    int st;
    waitpid(p, &st, 0);
    CHECK(sent == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0);

    /* Notification by signal when the queue becomes non-empty. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    struct sigevent ev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1};
    ev.sigev_value.sival_int = 42;
    CHECK(mq_notify(q, &ev) == 0);
    ERR(mq_notify(q, &ev), EBUSY);
    p = fork();
    if (p == 0) {
        struct sigevent e2 = {.sigev_notify = SIGEV_NONE};
        _exit(mq_notify(q, &e2) == -1 && errno == EBUSY ? 0 : 1);
    }
    waitpid(p, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(mq_send(q, "n", 1, 0) == 0);
    siginfo_t si;
    struct timespec wait = {30, 0};
    CHECK(sigtimedwait(&set, &si, &wait) == SIGUSR1);
    printf("notification: code %s value %d pid-is-me %d\n", si.si_code == SI_MESGQ ? "SI_MESGQ" : "other",
           si.si_value.sival_int, si.si_pid == getpid());
    /* One-shot: registering again works. */
    CHECK(mq_notify(q, &ev) == 0);
    CHECK(mq_notify(q, NULL) == 0);
    ev.sigev_signo = 65;
    ERR(mq_notify(q, &ev), EINVAL);
    ev.sigev_notify = 99;
    ERR(mq_notify(q, &ev), EINVAL);
    CHECK(mq_receive(q, buf, sizeof buf, NULL) == 1);
    /* A registration ends when its process closes the descriptor, or exits. */
    ev.sigev_notify = SIGEV_NONE;
    mqd_t q3 = mq_open(name, O_RDONLY);
    CHECK(mq_notify(q3, &ev) == 0);
    ERR(mq_notify(q, &ev), EBUSY);
    CHECK(mq_close(q3) == 0);
    CHECK(mq_notify(q, &ev) == 0);
    CHECK(mq_notify(q, NULL) == 0);
    p = fork();
    if (p == 0) _exit(mq_notify(q, &ev) == 0 ? 0 : 1);
    waitpid(p, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(mq_notify(q, &ev) == 0);

    CHECK(mq_close(ro) == 0);
    CHECK(mq_close(q) == 0);
    CHECK(mq_unlink(name) == 0);
    ERR(mq_unlink(name), ENOENT);
    ERR(mq_unlink("/"), ENOENT);
    printf("result: %s\n", failed ? "FAIL" : "OK");
    return failed;
}
