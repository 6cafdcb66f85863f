/* Error cases of splice, vmsplice, tee, readahead, pwritev2 and accept in
 * Linux's order, and statx's STATX_MNT_ID agreeing with
 * /proc/self/mountinfo. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

static void show(const char *what, long r) {
    if (r < 0) printf("%s: -1 %s\n", what, strerrorname_np(errno));
    else printf("%s: %ld\n", what, r);
    fflush(stdout);
}

/* The mount id mountinfo gives the mount at `point`, or -1. */
static long mountinfo_id(const char *point) {
    FILE *f = fopen("/proc/self/mountinfo", "r");
    if (!f) return -1;
    char line[4096];
    long id = -1;
    while (fgets(line, sizeof line, f)) {
        long mid, parent;
        char dev[64], root[1024], mp[1024];
        if (sscanf(line, "%ld %ld %63s %1023s %1023s", &mid, &parent, dev, root, mp) == 5 &&
            strcmp(mp, point) == 0)
            id = mid; /* the last one mounted there is the visible one */
    }
    fclose(f);
    return id;
}

static void mnt_id(const char *path) {
    struct statx sx;
    if (statx(AT_FDCWD, path, 0, STATX_MNT_ID, &sx) < 0) {
        printf("statx %s: -1 %s\n", path, strerrorname_np(errno));
        return;
    }
    printf("statx %s: mask has MNT_ID %s, matches mountinfo %s\n", path,
           sx.stx_mask & STATX_MNT_ID ? "yes" : "no",
           (long)sx.stx_mnt_id == mountinfo_id(path) ? "yes" : "no");
}

int main(void) {
    mnt_id("/");
    mnt_id("/proc");

    char tmpl[] = "/tmp/io_errnosXXXXXX";
    int file = mkstemp(tmpl);
    unlink(tmpl);
    if (file < 0 || write(file, "0123456789", 10) != 10) return 1;
    int wronly = open("/dev/null", O_WRONLY);
    int p[2], q[2];
    if (pipe(p) || pipe(q)) return 1;
    if (write(p[1], "abc", 3) != 3) return 1;
    loff_t off = 0;

    show("splice bad fd", splice(900, NULL, p[1], NULL, 1, 0));
    show("splice no pipe", splice(file, NULL, wronly, NULL, 1, 0));
    show("splice bad flags", splice(p[0], NULL, q[1], NULL, 1, 0x100));
    show("splice offset on pipe", splice(p[0], &off, q[1], NULL, 1, 0));
    show("splice same pipe", splice(p[0], NULL, p[1], NULL, 1, 0));
    show("splice zero length", splice(p[0], NULL, q[1], NULL, 0, 0));
    show("splice pipe to pipe", splice(p[0], NULL, q[1], NULL, 1, 0));
    show("splice bad offset pointer", splice(file, (loff_t *)8, p[1], NULL, 1, 0));
    off = -1;
    show("splice negative offset", splice(file, &off, p[1], NULL, 1, 0));
    int app = open("/dev/null", O_WRONLY | O_APPEND);
    show("splice to O_APPEND", splice(p[0], NULL, app, NULL, 1, 0));

    struct iovec iv = { "xy", 2 };
    show("vmsplice bad fd", vmsplice(900, &iv, 1, 0));
    show("vmsplice not a pipe", vmsplice(file, &iv, 1, 0));
    show("vmsplice bad flags", vmsplice(q[1], &iv, 1, 0x100));
    show("vmsplice too many segments", vmsplice(q[1], &iv, IOV_MAX + 1, 0));
    show("vmsplice zero segments", vmsplice(q[1], &iv, 0, 0));
    show("vmsplice", vmsplice(q[1], &iv, 1, 0));
    {
        int r[2];
        char got[8] = {0};
        if (pipe(r) || write(r[1], "pq", 2) != 2) return 1;
        struct iovec rv = { got, sizeof got };
        show("vmsplice to user", vmsplice(r[0], &rv, 1, 0));
        printf("vmsplice read: %s\n", got);
        show("vmsplice empty nonblock", vmsplice(r[0], &rv, 1, SPLICE_F_NONBLOCK));
        close(r[0]);
        close(r[1]);
    }

    show("tee bad fd", tee(900, q[1], 1, 0));
    show("tee not pipes", tee(file, q[1], 1, 0));
    show("tee same pipe", tee(q[0], q[1], 1, 0));
    show("tee bad flags", tee(q[0], p[1], 1, 0x100));
    show("tee", tee(q[0], p[1], 2, 0));

    show("readahead bad fd", readahead(900, 0, 10));
    show("readahead write-only", readahead(wronly, 0, 10));
    show("readahead pipe", readahead(p[0], 0, 10));
    show("readahead file", readahead(file, 0, 10));

    struct iovec wv = { "zz", 2 };
    show("pwritev2 bad fd", pwritev2(900, &wv, 1, 0, 0));
    show("pwritev2 bad flags", pwritev2(file, &wv, 1, 0, 0x100000));
    show("pwritev2 negative offset", pwritev2(file, &wv, 1, -2, 0));
    show("pwritev2 current position", pwritev2(file, &wv, 1, -1, 0));
    show("pwritev2 pipe with offset", pwritev2(p[1], &wv, 1, 0, 0));
    show("pwritev2 pipe at current", pwritev2(p[1], &wv, 1, -1, 0));
    show("pwritev2 read-only fd", pwritev2(p[0], &wv, 1, -1, 0));
    show("pwritev2 RWF_HIPRI", pwritev2(file, &wv, 1, 0, RWF_HIPRI));

    int s = socket(AF_INET, SOCK_STREAM, 0);
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    show("accept bad fd", accept(900, NULL, NULL));
    show("accept not a socket", accept(file, NULL, NULL));
    show("accept not listening", accept(s, NULL, NULL));
    show("accept udp", accept(u, NULL, NULL));
    show("accept4 bad flags", accept4(s, NULL, NULL, 0x1));
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    bind(s, (struct sockaddr *)&a, sizeof a);
    listen(s, 1);
    fcntl(s, F_SETFL, O_NONBLOCK);
    socklen_t bad = (socklen_t)-1;
    struct sockaddr_in peer;
    show("accept nothing pending", accept(s, NULL, NULL));
    show("accept negative addrlen", accept(s, (struct sockaddr *)&peer, &bad));
    show("accept bad addrlen pointer", accept(s, (struct sockaddr *)&peer, (socklen_t *)8));
    return 0;
}
