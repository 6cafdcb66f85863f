/* Tries to reach files outside the guest's root. Each argument is a path
 * to open and print (the first line of it, or the errno), or
 * "mount:TARGET:HOSTDIR" to mount a hostfs, or "write:PATH" to create a
 * file there. The test checks that no host secret ever shows. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
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
        int fd = open(a, O_RDONLY);
        if (fd < 0) {
            printf("open %s: %s\n", a, strerrorname_np(errno));
            continue;
        }
        char buf[128] = {0};
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n < 0) {
            printf("read %s: %s\n", a, strerrorname_np(errno));
            continue;
        }
        char *nl = strchr(buf, '\n');
        if (nl)
            *nl = 0;
        printf("read %s: [%s]\n", a, buf);
    }
    return 0;
}
