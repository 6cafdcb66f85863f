/* Tries to reach files outside the guest's root. Each argument is a path
 * to open and print (the first line of it, or the errno), or
 * "mount:TARGET:HOSTDIR" to mount a hostfs, or "write:PATH" to create a
 * file there, or "race:N:PATH" to open PATH up to N times while something
 * else swaps it, printing each distinct outcome once and stopping once it
 * has seen both a successful read and an error. The test checks that no
 * host secret ever shows. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

/* One open and read of `path`: "[first line]" or the errno's name in `out`;
 * returns 1 if the read succeeded. */
static int try_read(const char *path, char *out, size_t len) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        snprintf(out, len, "open %s: %s", path, strerrorname_np(errno));
        return 0;
    }
    char buf[128] = {0};
    ssize_t n = read(fd, buf, sizeof buf - 1);
    int e = errno;
    close(fd);
    if (n < 0) {
        snprintf(out, len, "read %s: %s", path, strerrorname_np(e));
        return 0;
    }
    char *nl = strchr(buf, '\n');
    if (nl)
        *nl = 0;
    snprintf(out, len, "read %s: [%s]", path, buf);
    return 1;
}

static void race(long n, const char *path) {
    char seen[16][200];
    int nseen = 0, ok = 0, failed = 0;
    for (long i = 0; i < n && !(ok && failed); i++) {
        char out[200];
        if (try_read(path, out, sizeof out))
            ok = 1;
        else
            failed = 1;
        int known = 0;
        for (int j = 0; j < nseen; j++)
            known |= !strcmp(seen[j], out);
        if (!known && nseen < 16) {
            strcpy(seen[nseen++], out);
            printf("%s\n", out);
        }
    }
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (!strncmp(a, "race:", 5)) {
            char *p = strchr(a + 5, ':');
            if (p)
                race(atol(a + 5), p + 1);
            continue;
        }
        if (!strncmp(a, "mount:", 6)) {
            char *t = a + 6, *h = strchr(t, ':');
            if (!h)
                continue;
            *h++ = 0;
            int r = mount("none", t, "hostfs", 0, h);
            printf("mount %s %s: %s\n", t, h, r ? strerrorname_np(errno) : "ok");
            continue;
        }
        if (!strncmp(a, "write:", 6)) {
            int fd = open(a + 6, O_CREAT | O_WRONLY | O_TRUNC, 0644);
            printf("write %s: %s\n", a + 6, fd < 0 ? strerrorname_np(errno) : "ok");
            if (fd >= 0) {
                write(fd, "guest\n", 6);
                close(fd);
            }
            continue;
        }
        char out[200];
        try_read(a, out, sizeof out);
        printf("%s\n", out);
    }
    return 0;
}
