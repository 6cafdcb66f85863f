/* inotify masks as Linux: IN_MODIFY, IN_ATTRIB (chmod, utimes, link
 * count), IN_CLOSE_WRITE vs IN_CLOSE_NOWRITE, IN_OPEN, IN_ACCESS,
 * IN_DELETE_SELF, IN_MOVE_SELF, IN_IGNORED after rm_watch, IN_ONESHOT,
 * IN_MASK_ADD, IN_EXCL_UNLINK, IN_ONLYDIR on a file. Every event queued
 * after a step is read and printed (wd, mask, cookie-nonzero, name). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

static int ifd;

static void drain(const char *what) {
    char buf[4096] __attribute__((aligned(8)));
    printf("%s:", what);
    for (;;) {
        ssize_t n = read(ifd, buf, sizeof buf);
        if (n <= 0)
            break;
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *ev = (struct inotify_event *)p;
            printf(" [wd %d mask %#x%s%s%s]", ev->wd, ev->mask, ev->cookie ? " cookie" : "",
                   ev->len ? " " : "", ev->len ? ev->name : "");
            p += sizeof *ev + ev->len;
        }
    }
    printf("\n");
}

static void r(const char *what, long v) {
    printf("%s: %ld %s\n", what, v, v < 0 ? strerrorname_np(errno) : "-");
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    char dir[] = "/tmp/ruml-inm.XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char f[256], g[256], h[256];
    snprintf(f, sizeof f, "%s/f", dir);
    snprintf(g, sizeof g, "%s/g", dir);
    snprintf(h, sizeof h, "%s/h", dir);
    int fd = open(f, O_CREAT | O_RDWR, 0600);
    write(fd, "abc", 3);
    close(fd);
    ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);

    int w = inotify_add_watch(ifd, f, IN_ALL_EVENTS);
    r("watch f", w);
    fd = open(f, O_RDONLY);
    drain("open ro");
    char b[8];
    read(fd, b, 2);
    drain("read");
    close(fd);
    drain("close ro");
    fd = open(f, O_WRONLY);
    drain("open wo");
    write(fd, "x", 1);
    drain("write");
    close(fd);
    drain("close wo");
    fd = open(f, O_RDWR);
    close(fd);
    drain("open+close rw without write");
    chmod(f, 0644);
    drain("chmod");
    struct timeval tv[2] = {{1, 0}, {2, 0}};
    utimes(f, tv);
    drain("utimes");
    link(f, g);
    drain("link");
    unlink(g);
    drain("unlink other name");
    truncate(f, 1);
    drain("truncate");

    /* IN_MASK_ADD / replace / IN_ONESHOT */
    r("rewatch ATTRIB (replace)", inotify_add_watch(ifd, f, IN_ATTRIB));
    fd = open(f, O_RDONLY);
    close(fd);
    drain("open+close after replace");
    r("MASK_ADD OPEN", inotify_add_watch(ifd, f, IN_OPEN | IN_MASK_ADD));
    fd = open(f, O_RDONLY);
    close(fd);
    drain("open+close after MASK_ADD");
    r("ONESHOT MODIFY", inotify_add_watch(ifd, f, IN_MODIFY | IN_ONESHOT));
    fd = open(f, O_WRONLY);
    write(fd, "1", 1);
    write(fd, "2", 1);
    close(fd);
    drain("two writes oneshot");
    r("rm_watch after oneshot", inotify_rm_watch(ifd, w));

    /* rm_watch: IN_IGNORED */
    w = inotify_add_watch(ifd, f, IN_MODIFY);
    r("watch again", w);
    r("rm_watch", inotify_rm_watch(ifd, w));
    drain("after rm_watch");
    r("rm_watch twice", inotify_rm_watch(ifd, w));

    /* IN_ONLYDIR on a file */
    r("ONLYDIR on file", inotify_add_watch(ifd, f, IN_MODIFY | IN_ONLYDIR));
    r("ONLYDIR on dir", inotify_add_watch(ifd, dir, IN_ONLYDIR | IN_CREATE));
    r("mask 0", inotify_add_watch(ifd, f, 0));
    r("MASK_ADD|MASK_CREATE", inotify_add_watch(ifd, f, IN_MODIFY | IN_MASK_ADD | IN_MASK_CREATE));
    r("MASK_CREATE existing", inotify_add_watch(ifd, dir, IN_MODIFY | IN_MASK_CREATE));
    drain("nothing");

    /* IN_MOVE_SELF, IN_DELETE_SELF */
    w = inotify_add_watch(ifd, f, IN_MOVE_SELF | IN_DELETE_SELF | IN_ATTRIB);
    r("watch self", w);
    rename(f, h);
    drain("rename");
    unlink(h);
    drain("unlink last name");

    /* A watch that did not ask for IN_DELETE_SELF hears only IN_IGNORED. */
    fd = open(h, O_CREAT | O_WRONLY, 0600);
    close(fd);
    drain("create again");
    r("watch modify only", inotify_add_watch(ifd, h, IN_MODIFY));
    unlink(h);
    drain("unlink, modify-only watch");

    /* IN_EXCL_UNLINK: events on an unlinked file's open fd */
    fd = open(f, O_CREAT | O_RDWR, 0600);
    int w1 = inotify_add_watch(ifd, dir, IN_MODIFY | IN_EXCL_UNLINK);
    r("dir EXCL_UNLINK", w1);
    write(fd, "a", 1);
    drain("write linked");
    unlink(f);
    drain("unlink");
    write(fd, "b", 1);
    drain("write unlinked (excl)");
    close(fd);
    drain("close");
    r("rm_watch dir", inotify_rm_watch(ifd, w1));
    drain("rm dir watch");
    rmdir(dir);
    drain("end");
    return 0;
}
