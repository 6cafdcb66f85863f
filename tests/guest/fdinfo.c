/* /proc/PID/fdinfo/N for each kind of file: the common lines (pos, flags,
 * mnt_id, ino) and each object's own (inotify and fanotify marks,
 * eventfd, timerfd, signalfd, epoll, pidfd, and what pipes, memfds and
 * sockets show). Values that legitimately differ between kernels (inode
 * numbers, devices, mount ids, eventfd ids, file handles, pids) are
 * checked against what this program learns itself (fstat, statx,
 * name_to_handle_at, fork) and printed as "=" or "!=", so the output is
 * the same natively and under ruml. Also IN_EXCL_UNLINK: events on a
 * file whose name was removed from the watched directory are not
 * reported, though the file still has another name. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/fanotify.h>
#include <sys/inotify.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef AT_HANDLE_FID
#define AT_HANDLE_FID 0x200
#endif

static pid_t child_pid;

/* Linux's kernel-internal dev_t, as fdinfo prints s_dev. */
static unsigned kdev(dev_t d) {
    return (major(d) << 20) | minor(d);
}

static int mnt_id_of(int fd, const char *path) {
    struct statx sx;
    int r = path ? statx(AT_FDCWD, path, 0, STATX_MNT_ID, &sx)
                 : statx(fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &sx);
    if (r < 0 || !(sx.stx_mask & STATX_MNT_ID))
        return -1;
    return (int)sx.stx_mnt_id;
}

/* "fhandle-bytes:%x fhandle-type:%x f_handle:HEX" against the handle
 * name_to_handle_at gives for `path` (AT_HANDLE_FID, as fdinfo encodes). */
static void check_fhandle(const char *rest, const char *path) {
    unsigned bytes, type;
    char hex[600];
    if (sscanf(rest, "fhandle-bytes:%x fhandle-type:%x f_handle:%599s", &bytes, &type, hex) != 3) {
        printf(" [no fhandle: '%s']", rest);
        return;
    }
    struct {
        struct file_handle h;
        unsigned char pad[128];
    } fh;
    fh.h.handle_bytes = 128;
    int mnt;
    if (name_to_handle_at(AT_FDCWD, path, &fh.h, &mnt, AT_HANDLE_FID | AT_SYMLINK_FOLLOW) < 0) {
        printf(" [fhandle present, name_to_handle_at %s]", strerrorname_np(errno));
        return;
    }
    char want[600] = "";
    for (unsigned i = 0; i < fh.h.handle_bytes; i++)
        sprintf(want + 2 * i, "%02x", fh.h.f_handle[i]);
    printf(" fhandle %s", bytes == fh.h.handle_bytes && (int)type == fh.h.handle_type &&
                                  strcmp(hex, want) == 0
                              ? "= name_to_handle_at"
                              : "!= name_to_handle_at");
}

/* Which of the marked objects `paths` (NULL-terminated) inode `ino` is:
 * its index, or -1. */
static int which(const char *const *paths, unsigned long ino, struct stat *st) {
    for (int k = 0; paths && paths[k]; k++)
        if (stat(paths[k], st) == 0 && st->st_ino == ino)
            return k;
    memset(st, 0, sizeof *st);
    return -1;
}

/* Prints /proc/self/fdinfo/FD line by line, normalising what differs
 * between kernels. `paths`: the objects inotify/fanotify marks are on. */
static void show_in(const char *what, int fd, const char *const *paths) {
    const char *path = paths ? paths[0] : NULL;
    char name[64], line[1024];
    snprintf(name, sizeof name, "/proc/self/fdinfo/%d", fd);
    FILE *f = fopen(name, "r");
    if (!f) {
        printf("%s: open %s\n", what, strerrorname_np(errno));
        return;
    }
    struct stat st;
    fstat(fd, &st);
    struct stat pst;
    if (path && stat(path, &pst) < 0)
        memset(&pst, 0, sizeof pst);
    printf("== %s\n", what);
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        unsigned long ul;
        unsigned u, u2, u3, u4;
        int i;
        long long ll;
        char rest[700];
        int k;
        if (sscanf(line, "mnt_id:\t%d", &i) == 1) {
            int want = mnt_id_of(fd, NULL);
            printf("mnt_id: %s\n", i == want ? "= statx" : "!= statx");
        } else if (sscanf(line, "ino:\t%lu", &ul) == 1) {
            printf("ino: %s\n", ul == st.st_ino ? "= fstat" : "!= fstat");
        } else if (sscanf(line, "eventfd-id: %d", &i) == 1) {
            printf("eventfd-id: %s\n", i >= 0 ? "number" : "negative");
        } else if (sscanf(line, "inotify wd:%x ino:%lx sdev:%x mask:%x ignored_mask:%x %n", &u, &ul,
                          &u2, &u3, &u4, &i) == 5) {
            k = which(paths, ul, &pst);
            printf("inotify wd:%x ino = path %d sdev %s mask:%x ignored_mask:%x", u, k,
                   u2 == kdev(pst.st_dev) ? "=" : "!=", u3, u4);
            if (k >= 0)
                check_fhandle(line + i, paths[k]);
            printf("\n");
        } else if (sscanf(line, "fanotify ino:%lx sdev:%x mflags:%x mask:%x ignored_mask:%x %n", &ul,
                          &u2, &u, &u3, &u4, &i) == 5) {
            k = which(paths, ul, &pst);
            printf("fanotify ino = path %d sdev %s mflags:%x mask:%x ignored_mask:%x", k,
                   u2 == kdev(pst.st_dev) ? "=" : "!=", u, u3, u4);
            if (k >= 0)
                check_fhandle(line + i, paths[k]);
            printf("\n");
        } else if (sscanf(line, "fanotify mnt_id:%x %699[^\n]", &u, rest) == 2) {
            printf("fanotify mnt_id %s %s\n", (int)u == mnt_id_of(-1, path) ? "=" : "!=", rest);
        } else if (sscanf(line, "fanotify sdev:%x %699[^\n]", &u, rest) == 2) {
            printf("fanotify sdev %s %s\n", u == kdev(pst.st_dev) ? "=" : "!=", rest);
        } else if (strncmp(line, "tfd: ", 5) == 0) {
            int tfd;
            unsigned ev;
            unsigned long long data;
            if (sscanf(line, "tfd: %d events: %x data: %llx  pos:%lli ino:%lx sdev:%x", &tfd, &ev,
                       &data, &ll, &ul, &u) != 6) {
                printf("bad epoll line '%s'\n", line);
                continue;
            }
            struct stat tst;
            fstat(tfd, &tst);
            /* The fixed-width part verbatim. */
            char head[64];
            snprintf(head, sizeof head, "%.*s", (int)(strstr(line, "  pos:") - line), line);
            printf("%s  pos:%lld ino %s sdev %s\n", head, ll, ul == tst.st_ino ? "=" : "!=",
                   u == kdev(tst.st_dev) ? "=" : "!=");
        } else if (sscanf(line, "it_value: (%llu, %lu)", (unsigned long long *)&ll, &ul) == 2) {
            /* Time left: only its order of magnitude is deterministic. */
            if (ll == 0 && ul == 0)
                printf("it_value: (0, 0)\n");
            else
                printf("it_value: %s\n", ll >= 900 && ll <= 1000 ? "about 1000 s" : "other");
        } else if (strncmp(line, "Pid:\t", 5) == 0 || strncmp(line, "NSpid:\t", 7) == 0) {
            /* The pid in this namespace by name; NSpid's further ones
             * (in the namespaces below) as they are. */
            char *v = strchr(line, '\t');
            *v++ = 0;
            printf("%s", line);
            int first = 1;
            for (char *t = strtok(v, "\t"); t; t = strtok(NULL, "\t"), first = 0) {
                i = atoi(t);
                if (!first)
                    printf(" %d", i);
                else if (i == getpid())
                    printf(" self");
                else if (i == child_pid)
                    printf(" child");
                else
                    printf(" %d", i);
            }
            printf("\n");
        } else {
            printf("%s\n", line);
        }
    }
    fclose(f);
}

static void show(const char *what, int fd, const char *path) {
    const char *paths[] = {path, NULL};
    show_in(what, fd, path ? paths : NULL);
}

static void show2(const char *what, int fd, const char *p1, const char *p2) {
    const char *paths[] = {p1, p2, NULL};
    show_in(what, fd, paths);
}

/* Sends descriptors `a` and `b` over unix socket `s`. */
static void send_fds(int s, int a, int b) {
    char c = 'x';
    struct iovec iov = {&c, 1};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(2 * sizeof(int))];
    } u;
    struct msghdr mh = {0};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = u.buf;
    mh.msg_controllen = sizeof u.buf;
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(2 * sizeof(int));
    memcpy(CMSG_DATA(cm), (int[]){a, b}, 2 * sizeof(int));
    printf("sendmsg with 2 fds: %zd\n", sendmsg(s, &mh, 0));
}

static void drain(int ifd, const char *what) {
    char buf[4096] __attribute__((aligned(8)));
    printf("%s:", what);
    for (;;) {
        ssize_t n = read(ifd, buf, sizeof buf);
        if (n <= 0)
            break;
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *ev = (struct inotify_event *)p;
            printf(" [wd %d mask %#x%s%s]", ev->wd, ev->mask, ev->len ? " " : "",
                   ev->len ? ev->name : "");
            p += sizeof *ev + ev->len;
        }
    }
    printf("\n");
}

int main(int argc, char **argv) {
    /* "nofan": skip fanotify and the PID namespace (natively they need
     * CAP_SYS_ADMIN). */
    int nofan = argc > 1 && strcmp(argv[1], "nofan") == 0;
    setvbuf(stdout, NULL, _IONBF, 0);
    char dir[] = "/tmp/ruml-fdinfo.XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char a[256], b[256], c[256];
    snprintf(a, sizeof a, "%s/a", dir);
    snprintf(b, sizeof b, "%s/b", dir);
    snprintf(c, sizeof c, "%s/c", dir);
    int fd = open(a, O_CREAT | O_RDWR, 0600);
    write(fd, "hello", 5);

    /* A regular file: position and flags. */
    show("regular file", fd, NULL);
    int fd2 = open(a, O_RDONLY | O_CLOEXEC | O_NOATIME);
    lseek(fd2, 3, SEEK_SET);
    show("regular file, O_CLOEXEC|O_NOATIME at 3", fd2, NULL);
    close(fd2);

    /* inotify: one line per watch, the newest first. */
    int ifd = inotify_init1(IN_NONBLOCK);
    show("inotify, no watch", ifd, NULL);
    int w1 = inotify_add_watch(ifd, a, IN_MODIFY | IN_CLOSE_WRITE);
    show("inotify, a watch on a file", ifd, a);
    inotify_add_watch(ifd, a, IN_ATTRIB | IN_MASK_ADD | IN_EXCL_UNLINK | IN_ONESHOT);
    show("inotify, mask added", ifd, a);
    int w2 = inotify_add_watch(ifd, dir, IN_CREATE | IN_DELETE | IN_ONLYDIR | IN_DONT_FOLLOW);
    printf("watches %d %d\n", w1, w2);
    show2("inotify, file then directory (directory first)", ifd, a, dir);
    inotify_rm_watch(ifd, w2);
    show("inotify, directory removed", ifd, a);
    close(ifd);
    /* Watches on other filesystems: the root, /dev/null, /proc/self (a
     * filesystem without handles of its own: FILEID_INO64_GEN). */
    ifd = inotify_init1(0);
    inotify_add_watch(ifd, "/", IN_OPEN);
    inotify_add_watch(ifd, "/dev/null", IN_CLOSE);
    inotify_add_watch(ifd, "/proc/self", IN_ACCESS);
    {
        const char *paths[] = {"/", "/dev/null", "/proc/self", NULL};
        show_in("inotify on /, /dev/null, /proc/self", ifd, paths);
    }
    close(ifd);

    /* fanotify (natively it needs CAP_SYS_ADMIN). */
    int fan = nofan ? (errno = EPERM, -1) : fanotify_init(FAN_CLASS_NOTIF | FAN_NONBLOCK | FAN_CLOEXEC | FAN_UNLIMITED_QUEUE,
                            O_RDONLY | O_NOATIME);
    if (fan < 0) {
        printf("fanotify_init: %s\n", strerrorname_np(errno));
    } else {
        show("fanotify, no mark", fan, NULL);
        fanotify_mark(fan, FAN_MARK_ADD, FAN_MODIFY | FAN_CLOSE_WRITE, AT_FDCWD, a);
        show("fanotify, an inode mark", fan, a);
        fanotify_mark(fan, FAN_MARK_ADD, FAN_OPEN | FAN_ONDIR | FAN_EVENT_ON_CHILD, AT_FDCWD, dir);
        show2("fanotify, inode marks", fan, a, dir);
        fanotify_mark(fan, FAN_MARK_REMOVE, FAN_OPEN | FAN_ONDIR | FAN_EVENT_ON_CHILD, AT_FDCWD,
                      dir);
        fanotify_mark(fan, FAN_MARK_ADD | FAN_MARK_MOUNT, FAN_ACCESS, AT_FDCWD, dir);
        show2("fanotify, a mount mark", fan, a, dir);
        fanotify_mark(fan, FAN_MARK_FLUSH | FAN_MARK_MOUNT, 0, AT_FDCWD, NULL);
        fanotify_mark(fan, FAN_MARK_FLUSH, 0, AT_FDCWD, NULL);
        fanotify_mark(fan, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FAN_CLOSE_NOWRITE, AT_FDCWD, dir);
        show("fanotify, a filesystem mark", fan, dir);
        close(fan);
        fan = fanotify_init(FAN_CLASS_NOTIF, O_RDWR);
        show("fanotify, plain", fan, NULL);
        close(fan);
    }

    /* eventfd */
    int efd = eventfd(5, EFD_NONBLOCK);
    show("eventfd 5", efd, NULL);
    uint64_t v = 0x1234567890;
    write(efd, &v, 8);
    show("eventfd after a write", efd, NULL);
    close(efd);
    efd = eventfd(0, EFD_SEMAPHORE | EFD_CLOEXEC);
    show("eventfd semaphore", efd, NULL);
    close(efd);

    /* timerfd */
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    show("timerfd disarmed", tfd, NULL);
    struct itimerspec its = {{2, 500}, {1000, 0}};
    timerfd_settime(tfd, 0, &its, NULL);
    show("timerfd armed", tfd, NULL);
    struct itimerspec once = {{0, 0}, {0, 1000000}};
    timerfd_settime(tfd, 0, &once, NULL);
    struct pollfd pfd = {tfd, POLLIN, 0};
    poll(&pfd, 1, 10000);
    show("timerfd expired once", tfd, NULL);
    close(tfd);
    tfd = timerfd_create(CLOCK_BOOTTIME, TFD_CLOEXEC);
    struct timespec now;
    clock_gettime(CLOCK_BOOTTIME, &now);
    struct itimerspec abs = {{0, 0}, {now.tv_sec + 1000, now.tv_nsec}};
    timerfd_settime(tfd, TFD_TIMER_ABSTIME, &abs, NULL);
    show("timerfd boottime absolute", tfd, NULL);
    close(tfd);
    tfd = timerfd_create(CLOCK_REALTIME, 0);
    clock_gettime(CLOCK_REALTIME, &now);
    abs.it_value.tv_sec = now.tv_sec + 1000;
    abs.it_value.tv_nsec = now.tv_nsec;
    timerfd_settime(tfd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &abs, NULL);
    show("timerfd realtime cancel-on-set", tfd, NULL);
    close(tfd);

    /* signalfd: SIGKILL and SIGSTOP are dropped from the mask. */
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGINT);
    sigaddset(&m, SIGKILL);
    sigaddset(&m, SIGUSR1);
    sigaddset(&m, SIGRTMIN + 2);
    sigaddset(&m, 64);
    int sfd = signalfd(-1, &m, SFD_NONBLOCK);
    show("signalfd", sfd, NULL);
    sigemptyset(&m);
    sigaddset(&m, SIGCHLD);
    signalfd(sfd, &m, 0);
    show("signalfd, mask replaced", sfd, NULL);

    /* epoll: one line per watch (one, since Linux orders them by file
     * address). */
    int ep = epoll_create1(EPOLL_CLOEXEC);
    show("epoll, empty", ep, NULL);
    int pp[2];
    pipe(pp);
    struct epoll_event e = {EPOLLIN | EPOLLET, {.u64 = 0xdeadbeef12345678ULL}};
    epoll_ctl(ep, EPOLL_CTL_ADD, pp[0], &e);
    show("epoll, a pipe", ep, NULL);
    e.events = EPOLLOUT | EPOLLONESHOT;
    e.data.u64 = 7;
    epoll_ctl(ep, EPOLL_CTL_MOD, pp[0], &e);
    show("epoll, modified", ep, NULL);
    epoll_ctl(ep, EPOLL_CTL_DEL, pp[0], NULL);
    lseek(fd, 2, SEEK_SET);
    e.events = EPOLLIN | EPOLLONESHOT;
    e.data.u64 = 1;
    epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &e);
    show("epoll, a signalfd", ep, NULL);
    /* A one-shot entry after its event keeps only its private bits. */
    sigset_t blk;
    sigemptyset(&blk);
    sigaddset(&blk, SIGCHLD);
    sigprocmask(SIG_BLOCK, &blk, NULL);
    kill(getpid(), SIGCHLD);
    struct epoll_event out;
    printf("epoll_wait: %d\n", epoll_wait(ep, &out, 1, 5000));
    show("epoll, one-shot fired", ep, NULL);
    close(ep);
    close(sfd);

    /* pidfd: Pid/NSpid of the process, -1 once it is reaped. */
    int self = syscall(SYS_pidfd_open, getpid(), 0);
    show("pidfd self", self, NULL);
    close(self);
    child_pid = fork();
    if (child_pid == 0) {
        pause();
        _exit(0);
    }
    int pfdc = syscall(SYS_pidfd_open, child_pid, O_NONBLOCK);
    show("pidfd child", pfdc, NULL);
    kill(child_pid, SIGKILL);
    siginfo_t si;
    waitid(P_PID, child_pid, &si, WEXITED | WNOWAIT);
    show("pidfd zombie", pfdc, NULL);
    waitpid(child_pid, NULL, 0);
    show("pidfd reaped", pfdc, NULL);
    close(pfdc);

    /* A process in a child PID namespace (natively it needs
     * CAP_SYS_ADMIN): NSpid shows its pid there too. */
    if (!nofan) {
        int up[2], down[2];
        pipe(up);
        pipe(down);
        pid_t mid = fork();
        if (mid == 0) {
            if (unshare(CLONE_NEWPID) < 0)
                _exit(1);
            pid_t inner = fork();
            if (inner == 0) {
                char ch;
                read(down[0], &ch, 1);
                _exit(0);
            }
            write(up[1], &inner, sizeof inner);
            waitpid(inner, NULL, 0);
            _exit(0);
        }
        pid_t inner = 0;
        read(up[0], &inner, sizeof inner);
        child_pid = inner;
        int pin = syscall(SYS_pidfd_open, inner, 0);
        show("pidfd of pid 1 of a child PID namespace", pin, NULL);
        close(pin);
        write(down[1], "x", 1);
        int st = 0;
        waitpid(mid, &st, 0);
        printf("middle process: %d\n", st);
        close(up[0]);
        close(up[1]);
        close(down[0]);
        close(down[1]);
    }

    /* The same file through /proc/self/task/TID/fdinfo. */
    {
        char p1[64], p2[96], x1[512] = "", x2[512] = "";
        snprintf(p1, sizeof p1, "/proc/self/fdinfo/%d", fd);
        snprintf(p2, sizeof p2, "/proc/self/task/%d/fdinfo/%d", gettid(), fd);
        int f1 = open(p1, O_RDONLY), f2 = open(p2, O_RDONLY);
        read(f1, x1, sizeof x1 - 1);
        read(f2, x2, sizeof x2 - 1);
        printf("task fdinfo %s\n", strcmp(x1, x2) == 0 && x1[0] ? "same" : "differs");
        close(f1);
        close(f2);
    }

    /* Files with no lines of their own, and sockets. */
    show("pipe read end", pp[0], NULL);
    show("pipe write end", pp[1], NULL);
    int mfd = memfd_create("x", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    write(mfd, "abc", 3);
    show("memfd", mfd, NULL);
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    show("unix stream socket", sv[0], NULL);
    send_fds(sv[1], pp[0], pp[1]);
    show("unix stream socket, 2 fds in flight", sv[0], NULL);
    show("unix stream socket, the sender", sv[1], NULL);
    int ds = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    show("unix datagram socket", ds, NULL);
    int dp[2];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, dp);
    send_fds(dp[0], 0, 1);
    send_fds(dp[0], 0, 1);
    show("unix datagram socket, 4 fds in flight", dp[1], NULL);
    close(dp[0]);
    close(dp[1]);
    int ls = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un {
        sa_family_t f;
        char p[108];
    } un = {AF_UNIX, ""};
    snprintf(un.p, sizeof un.p, "%s/sock", dir);
    bind(ls, (struct sockaddr *)&un, sizeof un);
    listen(ls, 4);
    show("unix listening socket", ls, NULL);
    int cs = socket(AF_UNIX, SOCK_STREAM, 0);
    connect(cs, (struct sockaddr *)&un, sizeof un);
    send_fds(cs, pp[0], 0);
    show("unix listening socket, 2 fds to a connection not accepted", ls, NULL);
    close(cs);
    int ts = socket(AF_INET, SOCK_STREAM, 0);
    show("tcp socket", ts, NULL);
    close(ts);
    close(ls);
    unlink(un.p);

    /* IN_EXCL_UNLINK: `a` also has the name `b`; once `a` is unlinked,
     * writes through the descriptor opened as `a` are not reported to a
     * watch with IN_EXCL_UNLINK (on the directory or on the file), but
     * are to watches without it; writes through a descriptor opened as
     * `b` still are. */
    link(a, b);
    int fb = open(b, O_WRONLY);
    ifd = inotify_init1(IN_NONBLOCK);
    int wx = inotify_add_watch(ifd, dir, IN_MODIFY | IN_EXCL_UNLINK);
    int wf = inotify_add_watch(ifd, a, IN_MODIFY | IN_EXCL_UNLINK);
    int i2 = inotify_init1(IN_NONBLOCK);
    int wp = inotify_add_watch(i2, dir, IN_MODIFY);
    printf("excl watches %d %d %d\n", wx, wf, wp);
    write(fd, "1", 1);
    drain(ifd, "linked, excl");
    drain(i2, "linked, plain");
    unlink(a);
    drain(ifd, "unlink");
    write(fd, "2", 1);
    drain(ifd, "write via unlinked name, excl");
    drain(i2, "write via unlinked name, plain");
    write(fb, "3", 1);
    drain(ifd, "write via other name, excl");
    drain(i2, "write via other name, plain");
    /* A new file under the old name is not the descriptor's. */
    int fc = open(a, O_CREAT | O_WRONLY, 0600);
    write(fd, "4", 1);
    drain(ifd, "old name reused, excl");
    write(fc, "5", 1);
    drain(ifd, "new file, excl");
    close(fc);
    close(fb);
    close(ifd);
    close(i2);
    close(fd);
    unlink(a);
    unlink(b);
    unlink(c);
    rmdir(dir);
    printf("done\n");
    return 0;
}
