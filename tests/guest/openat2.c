/* openat2(2) RESOLVE_* restrictions, in a scratch directory (argv[1]). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int failed;
#define CHECK(c) do { if (c) printf("ok: %s\n", #c); else { printf("bad: %s (%s)\n", #c, strerrorname_np(errno)); failed = 1; } } while (0)

static int o2(int dfd, const char *p, unsigned long long flags, unsigned long long resolve) {
    struct open_how how = {.flags = flags, .mode = (flags & O_CREAT) ? 0644 : 0, .resolve = resolve};
    return syscall(SYS_openat2, dfd, p, &how, sizeof how);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2 || chdir(argv[1]) != 0) return 2;
    mkdir("root", 0755);
    mkdir("root/sub", 0755);
    close(open("root/file", O_CREAT | O_WRONLY, 0644));
    close(open("outside", O_CREAT | O_WRONLY, 0644));
    symlink("/etc/hostname", "root/abs");
    symlink("../outside", "root/up");
    symlink("file", "root/rel");
    int d = open("root", O_RDONLY | O_DIRECTORY);
    CHECK(o2(d, "file", O_RDONLY, 0) >= 0);
    CHECK(o2(d, "sub/../file", O_RDONLY, RESOLVE_BENEATH) >= 0);
    CHECK(o2(d, "../outside", O_RDONLY, RESOLVE_BENEATH) == -1 && errno == EXDEV);
    CHECK(o2(d, "/etc/hostname", O_RDONLY, RESOLVE_BENEATH) == -1 && errno == EXDEV);
    CHECK(o2(d, "abs", O_RDONLY, RESOLVE_BENEATH) == -1 && errno == EXDEV);
    CHECK(o2(d, "up", O_RDONLY, RESOLVE_BENEATH) == -1 && errno == EXDEV);
    CHECK(o2(d, "rel", O_RDONLY, RESOLVE_BENEATH) >= 0);
    CHECK(o2(d, "rel", O_RDONLY, RESOLVE_NO_SYMLINKS) == -1 && errno == ELOOP);
    CHECK(o2(d, "/file", O_RDONLY, RESOLVE_IN_ROOT) >= 0);
    CHECK(o2(d, "../../file", O_RDONLY, RESOLVE_IN_ROOT) >= 0);
    CHECK(o2(d, "new", O_CREAT | O_WRONLY, RESOLVE_BENEATH) >= 0);
    CHECK(access("root/new", F_OK) == 0);
    CHECK(o2(AT_FDCWD, "/proc/self/fd", O_RDONLY, RESOLVE_NO_XDEV) == -1 && errno == EXDEV);
    CHECK(o2(d, "file", O_RDONLY, RESOLVE_BENEATH | RESOLVE_IN_ROOT) == -1 && errno == EINVAL);
    CHECK(o2(d, "file", O_RDONLY, 0x1000) == -1 && errno == EINVAL);
    printf("result: %s\n", failed ? "FAIL" : "OK");
    return failed;
}
