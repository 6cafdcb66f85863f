/* fanotify, notification class, as root on a tmpfs mount: mount and
 * inode marks (FAN_EVENT_ON_CHILD, FAN_ONDIR), the events' masks (merged
 * while unread, as Linux), pids and descriptors, and the errors. The same
 * natively and under ruml. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *e(long r) { return r < 0 ? strerrorname_np(errno) : "ok"; }
static char dir[] = "/tmp/ruml-fan.XXXXXX";

static void dump(const char *what, int fan) {
    char buf[4096] __attribute__((aligned(8)));
    printf("%s:\n", what);
    for (;;) {
        ssize_t n = read(fan, buf, sizeof buf);
        if (n < 0) {
            printf("  read: %s\n", strerrorname_np(errno));
            return;
        }
        struct fanotify_event_metadata *m = (void *)buf;
        for (; FAN_EVENT_OK(m, n); m = FAN_EVENT_NEXT(m, n)) {
            char link[64], target[PATH_MAX] = "";
            snprintf(link, sizeof link, "/proc/self/fd/%d", m->fd);
            ssize_t l = readlink(link, target, sizeof target - 1);
            if (l > 0)
                target[l] = 0;
            const char *rel = strncmp(target, dir, strlen(dir)) ? target : target + strlen(dir);
            printf("  mask %#llx vers %d len %d pid %s fd %s path '%s' flags %#o cloexec %d\n",
                   (unsigned long long)m->mask, m->vers, m->event_len,
                   m->pid == getpid() ? "self" : "other", m->fd >= 0 ? "yes" : "no", rel,
                   m->fd >= 0 ? fcntl(m->fd, F_GETFL) & (O_ACCMODE | O_NONBLOCK | O_APPEND) : 0,
                   m->fd >= 0 ? fcntl(m->fd, F_GETFD) : -1);
            if (m->fd >= 0)
                close(m->fd);
        }
    }
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!mkdtemp(dir))
        return 1;
    if (mount("none", dir, "tmpfs", 0, "size=1m") < 0) {
        printf("mount: %s\n", strerrorname_np(errno));
        rmdir(dir);
        return 1;
    }
    char a[64], sub[64], b[96];
    snprintf(a, sizeof a, "%s/a", dir);
    snprintf(sub, sizeof sub, "%s/sub", dir);
    snprintf(b, sizeof b, "%s/sub/b", dir);
    mkdir(sub, 0755);

    printf("init bad flags: %s\n", e(fanotify_init(0x80000000, O_RDONLY)));
    printf("init bad event flags: %s\n", e(fanotify_init(FAN_CLASS_NOTIF, 3)));
    int fan = fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK, O_RDONLY);
    printf("init: %s\n", e(fan));
    int p[2];
    pipe(p);
    printf("mark on a pipe: %s\n", e(fanotify_mark(p[0], FAN_MARK_ADD, FAN_OPEN, AT_FDCWD, dir)));
    printf("mark bad fd: %s\n", e(fanotify_mark(999, FAN_MARK_ADD, FAN_OPEN, AT_FDCWD, dir)));
    printf("mark no action: %s\n", e(fanotify_mark(fan, 0, FAN_OPEN, AT_FDCWD, dir)));
    printf("mark perm event: %s\n",
           e(fanotify_mark(fan, FAN_MARK_ADD | FAN_MARK_MOUNT, FAN_OPEN_PERM, AT_FDCWD, dir)));
    printf("mark no such path: %s\n",
           e(fanotify_mark(fan, FAN_MARK_ADD, FAN_OPEN, AT_FDCWD, "/nonexistent/x")));
    printf("remove unmarked: %s\n", e(fanotify_mark(fan, FAN_MARK_REMOVE, FAN_OPEN, AT_FDCWD, dir)));
    printf("onlydir on a file: %s\n",
           e(fanotify_mark(fan, FAN_MARK_ADD | FAN_MARK_ONLYDIR, FAN_OPEN, AT_FDCWD, "/etc/hostname")));
    close(p[0]);
    close(p[1]);

    printf("mark mount: %s\n",
           e(fanotify_mark(fan, FAN_MARK_ADD | FAN_MARK_MOUNT,
                           FAN_OPEN | FAN_CLOSE | FAN_MODIFY | FAN_ACCESS, AT_FDCWD, dir)));
    dump("nothing yet", fan);

    int f = open(a, O_CREAT | O_WRONLY, 0644);
    write(f, "hello", 5);
    close(f);
    dump("create, write, close", fan);

    char buf[16];
    f = open(a, O_RDONLY);
    read(f, buf, sizeof buf);
    close(f);
    dump("open, read, close", fan);

    f = open(a, O_RDONLY);
    dump("open only", fan);
    close(f);
    dump("then close", fan);

    /* A directory opened: no event without FAN_ONDIR. */
    f = open(sub, O_RDONLY | O_DIRECTORY);
    close(f);
    dump("directory without FAN_ONDIR", fan);
    fanotify_mark(fan, FAN_MARK_ADD | FAN_MARK_MOUNT, FAN_OPEN | FAN_ONDIR, AT_FDCWD, dir);
    f = open(sub, O_RDONLY | O_DIRECTORY);
    close(f);
    dump("directory with FAN_ONDIR", fan);
    printf("flush mounts: %s\n", e(fanotify_mark(fan, FAN_MARK_FLUSH | FAN_MARK_MOUNT, 0, AT_FDCWD, dir)));
    f = open(a, O_RDONLY);
    close(f);
    dump("after flush", fan);
    close(fan);

    /* An inode mark on a directory with FAN_EVENT_ON_CHILD. */
    fan = fanotify_init(FAN_CLASS_NOTIF | FAN_NONBLOCK, O_RDONLY | O_CLOEXEC);
    printf("mark dir for children: %s\n",
           e(fanotify_mark(fan, FAN_MARK_ADD, FAN_CLOSE_WRITE | FAN_EVENT_ON_CHILD, AT_FDCWD, sub)));
    f = open(b, O_CREAT | O_WRONLY, 0600);
    close(f);
    f = open(a, O_WRONLY);
    close(f);
    dump("close_write in sub and outside", fan);
    /* Without FAN_EVENT_ON_CHILD, a directory's mark sees nothing of its children. */
    printf("remove on-child: %s\n",
           e(fanotify_mark(fan, FAN_MARK_REMOVE, FAN_EVENT_ON_CHILD, AT_FDCWD, sub)));
    f = open(b, O_WRONLY);
    close(f);
    dump("child after removing on-child", fan);
    printf("mark the file: %s\n", e(fanotify_mark(fan, FAN_MARK_ADD, FAN_MODIFY, AT_FDCWD, b)));
    f = open(b, O_WRONLY);
    write(f, "x", 1);
    close(f);
    dump("the file itself", fan);
    close(fan);

    unlink(b);
    rmdir(sub);
    unlink(a);
    umount(dir);
    rmdir(dir);
    return 0;
}
