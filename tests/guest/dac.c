/* Permission checks for a non-root process (credentials(7)): files made
 * by root with different modes in a scratch directory (argv[1]), then
 * checked after setgid/setuid to 65534. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int failed;
#define CHECK(c) do { if (c) printf("ok: %s\n", #c); else { printf("bad: %s (%s)\n", #c, strerrorname_np(errno)); failed = 1; } } while (0)

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2 || chdir(argv[1]) != 0) return 2;
    umask(0);
    close(open("secret", O_CREAT | O_WRONLY, 0600));
    close(open("public", O_CREAT | O_WRONLY, 0644));
    close(open("shared", O_CREAT | O_WRONLY, 0666));
    mkdir("locked", 0700);
    mkdir("open", 0777);
    mkdir("sticky", 01777);
    close(open("sticky/roots", O_CREAT | O_WRONLY, 0666));
    close(open("script", O_CREAT | O_WRONLY, 0644));
    CHECK(setgid(65534) == 0);
    CHECK(setuid(65534) == 0);
    CHECK(setuid(0) == -1 && errno == EPERM);
    CHECK(open("secret", O_RDONLY) == -1 && errno == EACCES);
    CHECK(open("public", O_RDONLY) >= 0);
    CHECK(open("public", O_WRONLY) == -1 && errno == EACCES);
    CHECK(open("shared", O_RDWR) >= 0);
    CHECK(open("locked/x", O_CREAT | O_WRONLY, 0644) == -1 && errno == EACCES);
    CHECK(open("open/mine", O_CREAT | O_WRONLY, 0644) >= 0);
    CHECK(unlink("public") == -1 && errno == EACCES);
    CHECK(unlink("sticky/roots") == -1 && errno == EPERM);
    CHECK(chmod("public", 0777) == -1 && errno == EPERM);
    CHECK(chmod("open/mine", 0600) == 0);
    CHECK(chown("open/mine", 0, -1) == -1 && errno == EPERM);
    CHECK(access("secret", R_OK) == -1 && errno == EACCES);
    CHECK(access("public", R_OK) == 0);
    CHECK(access("script", X_OK) == -1 && errno == EACCES);
    CHECK(mkdir("locked/d", 0755) == -1 && errno == EACCES);
    printf("result: %s\n", failed ? "FAIL" : "OK");
    return failed;
}
