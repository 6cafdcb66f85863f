/* Extended attributes: the twelve system calls, their errors, the
 * namespaces and the permission rules, printed so that a run on the host
 * (a fresh directory under /tmp) and a run under ruml (the guest's /tmp,
 * the overlay's tmpfs upper layer) compare line by line. Values stay small
 * (ext4 keeps at most a block of them per inode) and listings are sorted
 * (ext4 and tmpfs list in different orders).
 * argv[1]: a directory to create and work in.
 * argv[2]: "priv" to test trusted.* and security.* too (the harness passes
 * it only when the host lets the native run use them). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

static void res(const char *what, long r) {
    if (r < 0)
        printf("%s: -1 %s\n", what, strerrorname_np(errno));
    else
        printf("%s: %ld\n", what, r);
}

/* A bad pointer the compiler cannot see through. */
static void *volatile bad_ptr = (void *)8;

static int cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Prints a listing sorted, hiding nothing. */
static void show_list(const char *what, const char *buf, long n) {
    if (n < 0) {
        res(what, n);
        return;
    }
    const char *names[128];
    int k = 0;
    for (long i = 0; i < n && k < 128; i += strlen(buf + i) + 1)
        names[k++] = buf + i;
    qsort(names, k, sizeof names[0], cmp);
    printf("%s: %ld [", what, n);
    for (int i = 0; i < k; i++)
        printf("%s%s", i ? " " : "", names[i]);
    printf("]\n");
}

static void list(const char *what, const char *path) {
    char buf[4096];
    long n = listxattr(path, buf, sizeof buf);
    show_list(what, buf, n);
}

static void get(const char *what, const char *path, const char *name) {
    char buf[4096];
    long n = getxattr(path, name, buf, sizeof buf);
    if (n < 0) {
        res(what, n);
        return;
    }
    printf("%s: %ld '%.*s'\n", what, n, (int)(n > 60 ? 60 : n), buf);
}

static void basics(const char *f, const char *d) {
    res("set user.a", setxattr(f, "user.a", "hello", 5, 0));
    res("size query", getxattr(f, "user.a", NULL, 0));
    char small[2];
    res("small buffer", getxattr(f, "user.a", small, sizeof small));
    get("get user.a", f, "user.a");
    res("create existing", setxattr(f, "user.a", "x", 1, XATTR_CREATE));
    res("replace missing", setxattr(f, "user.b", "x", 1, XATTR_REPLACE));
    res("replace", setxattr(f, "user.a", "bye", 3, XATTR_REPLACE));
    get("get replaced", f, "user.a");
    res("create", setxattr(f, "user.b", "", 0, XATTR_CREATE));
    get("empty value", f, "user.b");
    res("bad flags", setxattr(f, "user.c", "x", 1, 4));
    res("get missing", getxattr(f, "user.nope", NULL, 0));
    for (int i = 0; i < 5; i++) {
        char n[32], v[32];
        snprintf(n, sizeof n, "user.z%d", 4 - i);
        snprintf(v, sizeof v, "value %d", i);
        setxattr(f, n, v, strlen(v), 0);
    }
    list("list", f);
    res("list size query", listxattr(f, NULL, 0));
    char lbuf[8];
    res("list small", listxattr(f, lbuf, sizeof lbuf));
    res("remove", removexattr(f, "user.z0"));
    res("remove missing", removexattr(f, "user.z0"));
    list("list after remove", f);

    /* Directories carry user.* too. */
    res("dir set", setxattr(d, "user.dir", "D", 1, 0));
    get("dir get", d, "user.dir");
    list("dir list", d);

    /* A value of a few KiB... no: ext4 keeps one block; 1000 bytes. */
    char big[1000];
    memset(big, 'v', sizeof big);
    res("set 1000", setxattr(d, "user.big", big, sizeof big, 0));
    res("get 1000", getxattr(d, "user.big", NULL, 0));
    res("remove 1000", removexattr(d, "user.big"));
}

static void names_and_limits(const char *f) {
    res("empty name", setxattr(f, "", "x", 1, 0));
    res("get empty name", getxattr(f, "", NULL, 0));
    char n[300];
    memcpy(n, "user.", 5);
    memset(n + 5, 'n', sizeof n - 5);
    n[256] = 0;
    res("name 256", setxattr(f, n, "x", 1, 0));
    res("get name 256", getxattr(f, n, NULL, 0));
    res("remove name 256", removexattr(f, n));
    n[255] = 0;
    res("name 255", setxattr(f, n, "x", 1, 0));
    res("get name 255", getxattr(f, n, NULL, 0));
    res("remove name 255", removexattr(f, n));
    res("prefix only", setxattr(f, "user.", "x", 1, 0));
    res("get prefix only", getxattr(f, "user.", NULL, 0));
    res("unknown prefix", setxattr(f, "foo.bar", "x", 1, 0));
    res("get unknown prefix", getxattr(f, "foo.bar", NULL, 0));
    res("no prefix", setxattr(f, "user", "x", 1, 0));
    res("system other", setxattr(f, "system.nosuch", "x", 1, 0));
    res("get system other", getxattr(f, "system.nosuch", NULL, 0));
    char *huge = malloc(65537);
    memset(huge, 'h', 65537);
    res("value 65537", setxattr(f, "user.huge", huge, 65537, 0));
    free(huge);
    res("enoent", setxattr("/nonexistent/x", "user.a", "x", 1, 0));
    res("get enoent", getxattr("/nonexistent/x", "user.a", NULL, 0));
    res("list enoent", listxattr("/nonexistent/x", NULL, 0));
    res("efault name", setxattr(f, (const char *)bad_ptr, "x", 1, 0));
    res("efault value", setxattr(f, "user.f", (const char *)bad_ptr, 4, 0));
    res("efault path", getxattr((const char *)bad_ptr, "user.a", NULL, 0));
    /* An output buffer that cannot be written. */
    void *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    res("efault out", getxattr(f, "user.a", ro, 100));
    res("efault list", listxattr(f, ro, 100));
    munmap(ro, 4096);
}

static void types(const char *dir, const char *f) {
    char l[512], p[512];
    snprintf(l, sizeof l, "%s/link", dir);
    snprintf(p, sizeof p, "%s/fifo", dir);
    symlink("file", l);
    mkfifo(p, 0644);
    res("lset symlink", lsetxattr(l, "user.x", "x", 1, 0));
    res("lget symlink", lgetxattr(l, "user.x", NULL, 0));
    list("llist symlink", l); /* follows */
    char buf[256];
    show_list("llist symlink nofollow", buf, llistxattr(l, buf, sizeof buf));
    get("get through symlink", l, "user.a");
    res("set through symlink", setxattr(l, "user.via", "L", 1, 0));
    get("get via on file", f, "user.via");
    res("lremove symlink", lremovexattr(l, "user.via"));
    res("remove through symlink", removexattr(l, "user.via"));
    res("set fifo", setxattr(p, "user.x", "x", 1, 0));
    res("get fifo", getxattr(p, "user.x", NULL, 0));
    res("remove fifo", removexattr(p, "user.x"));
    show_list("list fifo", buf, listxattr(p, buf, sizeof buf));
}

static void by_fd(const char *f) {
    int fd = open(f, O_RDONLY);
    res("fset", fsetxattr(fd, "user.fd", "F", 1, 0));
    char buf[256];
    long n = fgetxattr(fd, "user.fd", buf, sizeof buf);
    printf("fget: %ld '%.*s'\n", n, (int)(n > 0 ? n : 0), buf);
    show_list("flist", buf, flistxattr(fd, buf, sizeof buf));
    res("fremove", fremovexattr(fd, "user.fd"));
    close(fd);
    int pfd = open(f, O_PATH);
    res("fget O_PATH", fgetxattr(pfd, "user.a", NULL, 0));
    res("fset O_PATH", fsetxattr(pfd, "user.a", "x", 1, 0));
    res("flist O_PATH", flistxattr(pfd, NULL, 0));
    close(pfd);
    res("fget EBADF", fgetxattr(999, "user.a", NULL, 0));
    res("fset EBADF", fsetxattr(-1, "user.a", "x", 1, 0));
    int pp[2];
    if (pipe(pp) == 0) {
        res("fset pipe", fsetxattr(pp[0], "user.a", "x", 1, 0));
        res("flist pipe", flistxattr(pp[0], NULL, 0));
        close(pp[0]);
        close(pp[1]);
    }
}

static void privileged(const char *f) {
    res("set trusted", setxattr(f, "trusted.t", "T", 1, 0));
    get("get trusted", f, "trusted.t");
    res("set security", setxattr(f, "security.s", "S", 1, 0));
    get("get security", f, "security.s");
    res("fcaps garbage", setxattr(f, "security.capability", "xyz", 3, 0));
    unsigned char v2[20] = {0, 0, 0, 2};
    v2[4] = 1; /* CAP_CHOWN permitted */
    res("fcaps v2", setxattr(f, "security.capability", v2, sizeof v2, 0));
    res("fcaps size", getxattr(f, "security.capability", NULL, 0));
    res("remove fcaps", removexattr(f, "security.capability"));
    list("list priv", f);
}

/* As nobody: what an unprivileged process may and may not do. */
static void unprivileged(const char *dir, const char *f, int priv) {
    char ro[512], secret[512], sticky[512];
    snprintf(ro, sizeof ro, "%s/ro", dir);
    snprintf(secret, sizeof secret, "%s/secret", dir);
    snprintf(sticky, sizeof sticky, "%s/sticky", dir);
    close(open(ro, O_CREAT | O_WRONLY, 0644));
    close(open(secret, O_CREAT | O_WRONLY, 0600));
    mkdir(sticky, 0777);
    chmod(sticky, 01777);
    chmod(dir, 0755);
    setxattr(ro, "user.r", "R", 1, 0);
    setxattr(secret, "user.s", "S", 1, 0);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534)) {
            printf("setresuid failed\n");
            _exit(1);
        }
        get("nobody get ro", ro, "user.r");
        res("nobody set ro", setxattr(ro, "user.r", "x", 1, 0));
        res("nobody remove ro", removexattr(ro, "user.r"));
        res("nobody get secret", getxattr(secret, "user.s", NULL, 0));
        res("nobody list secret", listxattr(secret, NULL, 0));
        res("nobody set sticky", setxattr(sticky, "user.x", "x", 1, 0));
        res("nobody get trusted", getxattr(f, "trusted.t", NULL, 0));
        res("nobody set trusted", setxattr(ro, "trusted.t", "x", 1, 0));
        res("nobody set security", setxattr(ro, "security.s", "x", 1, 0));
        if (priv) {
            get("nobody get security", f, "security.s");
            list("nobody list (no trusted)", f);
        }
        fflush(stdout);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    printf("child: %d\n", WEXITSTATUS(st));
}

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    const char *dir = argv[1];
    int priv = argc > 2 && strcmp(argv[2], "priv") == 0;
    if (mkdir(dir, 0755) < 0) {
        perror("mkdir");
        return 1;
    }
    char f[512], d[512];
    snprintf(f, sizeof f, "%s/file", dir);
    snprintf(d, sizeof d, "%s/dir", dir);
    close(open(f, O_CREAT | O_WRONLY, 0644));
    mkdir(d, 0755);
    setvbuf(stdout, NULL, _IOLBF, 0);
    basics(f, d);
    names_and_limits(f);
    types(dir, f);
    by_fd(f);
    if (priv)
        privileged(f);
    unprivileged(dir, f, priv);
    return 0;
}
