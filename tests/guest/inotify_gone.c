/* inotify's IN_DELETE_SELF and IN_IGNORED come when the inode is really
 * gone, as Linux: its last link and its last open reference (descriptor,
 * dup, fork's copy, mapping) released, not at unlink; a rename over a
 * watched file; rmdir of a watched directory (IN_ISDIR). And a file
 * renamed within its directory while open is still linked: its events
 * reach a directory watch with IN_EXCL_UNLINK, by the new name, as
 * Linux's moved dentry. Every event queued after a step is printed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int ifd;

static void drain(const char *what) {
    char buf[4096] __attribute__((aligned(8)));
    printf("%-34s", what);
    for (;;) {
        ssize_t n = read(ifd, buf, sizeof buf);
        if (n <= 0)
            break;
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *ev = (struct inotify_event *)p;
            printf(" [wd %d %#x%s%s]", ev->wd, ev->mask, ev->len ? " " : "",
                   ev->len ? ev->name : "");
            p += sizeof *ev + ev->len;
        }
    }
    printf("\n");
}

static char dir[] = "/tmp/ruml-ingone.XXXXXX";

static const char *at(const char *name) {
    static char paths[4][256];
    static int next;
    char *p = paths[next++ % 4];
    snprintf(p, 256, "%s/%s", dir, name);
    return p;
}

static void make(const char *name) {
    int fd = open(at(name), O_CREAT | O_WRONLY | O_TRUNC, 0600);
    if (write(fd, "0123456789", 10) != 10)
        exit(2);
    close(fd);
}

/* A watch on the file only: link counts, opens and closes, its end. */
static int watch(const char *name) {
    return inotify_add_watch(ifd, at(name), IN_ATTRIB | IN_CLOSE | IN_DELETE_SELF |
                                                IN_MOVE_SELF);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (!mkdtemp(dir))
        return 1;
    ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);

    /* Unlinked while open: gone at close. */
    make("a");
    watch("a");
    int fd = open(at("a"), O_RDWR);
    unlink(at("a"));
    drain("open, unlink:");
    close(fd);
    drain("close:");

    /* Two descriptors (dup): gone at the second close. */
    make("b");
    watch("b");
    fd = open(at("b"), O_RDONLY);
    int fd2 = dup(fd);
    unlink(at("b"));
    drain("dup, unlink:");
    close(fd);
    drain("close one:");
    close(fd2);
    drain("close the other:");

    /* Held by a mapping after the descriptor is closed. */
    make("c");
    watch("c");
    fd = open(at("c"), O_RDWR);
    char *m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    drain("mmap, close:");
    unlink(at("c"));
    drain("unlink:");
    printf("%-34s %c\n", "mapping still reads:", m[3]);
    munmap(m, 4096);
    drain("munmap:");

    /* Held by a child's inherited descriptor. */
    make("d");
    watch("d");
    fd = open(at("d"), O_RDONLY);
    int p[2];
    if (pipe(p))
        return 1;
    pid_t pid = fork();
    if (pid == 0) {
        char c;
        close(p[1]);
        read(p[0], &c, 1);
        _exit(0);
    }
    close(p[0]);
    close(fd);
    unlink(at("d"));
    drain("fork, close, unlink:");
    write(p[1], "x", 1);
    waitpid(pid, NULL, 0);
    drain("child exited:");
    close(p[1]);

    /* Hard links: the last one counts. */
    make("e");
    link(at("e"), at("e2"));
    watch("e");
    unlink(at("e"));
    drain("unlink one of two links:");
    unlink(at("e2"));
    drain("unlink the last:");

    /* A rename over a watched file, closed and open. */
    make("f");
    make("g");
    watch("g");
    rename(at("f"), at("g"));
    drain("rename over it:");
    make("h");
    make("i");
    watch("i");
    fd = open(at("i"), O_RDONLY);
    rename(at("h"), at("i"));
    drain("rename over it, open:");
    close(fd);
    drain("close:");

    /* rmdir of a watched directory. */
    mkdir(at("sub"), 0700);
    inotify_add_watch(ifd, at("sub"), IN_DELETE_SELF | IN_ATTRIB);
    rmdir(at("sub"));
    drain("rmdir:");

    /* IN_EXCL_UNLINK on the directory: a file renamed within it while
     * open is still there, by its new name; unlinked, it is not. */
    int wd = inotify_add_watch(ifd, dir, IN_MODIFY | IN_EXCL_UNLINK);
    make("j");
    fd = open(at("j"), O_WRONLY);
    rename(at("j"), at("k"));
    drain("dir watch, rename j->k:");
    write(fd, "x", 1);
    drain("write after rename:");
    rename(at("k"), at("l"));
    write(fd, "x", 1);
    drain("write after rename k->l:");
    unlink(at("l"));
    write(fd, "x", 1);
    drain("write after unlink:");
    close(fd);
    inotify_rm_watch(ifd, wd);
    drain("rm_watch:");

    /* Without IN_EXCL_UNLINK: the new name too, then the unlinked one. */
    wd = inotify_add_watch(ifd, dir, IN_MODIFY);
    make("m");
    fd = open(at("m"), O_WRONLY);
    rename(at("m"), at("n"));
    write(fd, "x", 1);
    drain("plain watch, write after rename:");
    unlink(at("n"));
    write(fd, "x", 1);
    drain("write after unlink:");
    close(fd);
    inotify_rm_watch(ifd, wd);
    drain("rm_watch:");

    rmdir(dir);
    printf("done\n");
    return 0;
}
