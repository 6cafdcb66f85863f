/* File handles: name_to_handle_at and open_by_handle_at, printed as
 * relations only (handle sizes and types differ between filesystems), so
 * that a run on the host (a fresh directory under /tmp) and under ruml
 * (the guest's /tmp) compare.
 * argv[1]: a directory to create and work in. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void *volatile bad_ptr = (void *)8;

static void res(const char *what, long r) {
    if (r < 0)
        printf("%s: -1 %s\n", what, strerrorname_np(errno));
    else
        printf("%s: %ld\n", what, r);
}

struct handle {
    struct file_handle fh;
    unsigned char data[MAX_HANDLE_SZ];
};

static int get(const char *path, struct handle *h, int *mnt, int flags) {
    h->fh.handle_bytes = MAX_HANDLE_SZ;
    return name_to_handle_at(AT_FDCWD, path, &h->fh, mnt, flags);
}

static int same_file(int fd, const char *path) {
    struct stat a, b;
    if (fstat(fd, &a) < 0 || lstat(path, &b) < 0)
        return -1;
    return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

static int fdinfo_mnt_id(int fd) {
    char p[64], line[256];
    snprintf(p, sizeof p, "/proc/self/fdinfo/%d", fd);
    FILE *f = fopen(p, "r");
    int id = -1;
    while (f && fgets(line, sizeof line, f))
        sscanf(line, "mnt_id: %d", &id);
    if (f)
        fclose(f);
    return id;
}

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    const char *dir = argv[1];
    if (mkdir(dir, 0755) < 0) {
        perror("mkdir");
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* AT_FDCWD as mount_fd means the cwd's filesystem. */
    if (chdir(dir) < 0) {
        perror("chdir");
        return 1;
    }
    char f[512], d[512], l[512], g[512];
    snprintf(f, sizeof f, "%s/file", dir);
    snprintf(d, sizeof d, "%s/dir", dir);
    snprintf(l, sizeof l, "%s/link", dir);
    snprintf(g, sizeof g, "%s/gone", dir);
    int fd = open(f, O_CREAT | O_WRONLY, 0644);
    write(fd, "data", 4);
    close(fd);
    mkdir(d, 0755);
    symlink("file", l);
    close(open(g, O_CREAT | O_WRONLY, 0644));

    struct handle h, h2;
    int mnt = -1, mnt2 = -1;
    /* Too small: the size needed comes back. */
    h.fh.handle_bytes = 0;
    res("size query", name_to_handle_at(AT_FDCWD, f, &h.fh, &mnt, 0));
    printf("needed > 0: %d, type: %d, mount id set: %d\n", h.fh.handle_bytes > 0,
           h.fh.handle_type, mnt >= 0);
    h.fh.handle_bytes = MAX_HANDLE_SZ + 1;
    res("too big", name_to_handle_at(AT_FDCWD, f, &h.fh, &mnt, 0));
    res("bad flags", name_to_handle_at(AT_FDCWD, f, &h.fh, &mnt, 0x8));
    res("enoent", get("/nonexistent/x", &h, &mnt, 0));
    res("efault handle", name_to_handle_at(AT_FDCWD, f, bad_ptr, &mnt, 0));
    res("handle", get(f, &h, &mnt, 0));
    res("handle again", get(f, &h2, &mnt2, 0));
    printf("stable: %d\n", h.fh.handle_bytes == h2.fh.handle_bytes &&
                               memcmp(h.fh.f_handle, h2.fh.f_handle, h.fh.handle_bytes) == 0);
    int mfd = open(dir, O_RDONLY | O_DIRECTORY);
    printf("mount id as fdinfo: %d\n", mnt == fdinfo_mnt_id(mfd));

    fd = open_by_handle_at(mfd, &h.fh, O_RDONLY);
    res("open by handle", fd);
    char buf[16] = {0};
    if (fd >= 0) {
        read(fd, buf, sizeof buf - 1);
        printf("read: %s, same file: %d\n", buf, same_file(fd, f));
        close(fd);
    }
    fd = open_by_handle_at(AT_FDCWD, &h.fh, O_RDWR);
    res("open rdwr, AT_FDCWD", fd);
    if (fd >= 0) {
        res("write", write(fd, "DATA", 4));
        close(fd);
    }
    fd = open_by_handle_at(mfd, &h.fh, O_PATH);
    res("open O_PATH", fd);
    if (fd >= 0) {
        printf("O_PATH same file: %d\n", same_file(fd, f));
        close(fd);
    }
    res("open O_DIRECTORY on a file", open_by_handle_at(mfd, &h.fh, O_RDONLY | O_DIRECTORY));

    res("dir handle", get(d, &h2, &mnt2, 0));
    fd = open_by_handle_at(mfd, &h2.fh, O_RDONLY | O_DIRECTORY);
    res("open dir", fd);
    if (fd >= 0) {
        printf("dir same: %d\n", same_file(fd, d));
        close(fd);
    }
    res("link handle", get(l, &h2, &mnt2, 0));
    res("open link", open_by_handle_at(mfd, &h2.fh, O_RDONLY));
    fd = open_by_handle_at(mfd, &h2.fh, O_PATH);
    printf("link O_PATH same: %d\n", fd >= 0 && same_file(fd, l));
    if (fd >= 0)
        close(fd);
    res("followed link handle", get(l, &h2, &mnt2, AT_SYMLINK_FOLLOW));
    printf("follows to the file: %d\n",
           memcmp(h.fh.f_handle, h2.fh.f_handle, h.fh.handle_bytes) == 0);
    fd = open(f, O_RDONLY);
    h2.fh.handle_bytes = MAX_HANDLE_SZ;
    res("AT_EMPTY_PATH", name_to_handle_at(fd, "", &h2.fh, &mnt2, AT_EMPTY_PATH));
    printf("same as by name: %d\n", memcmp(h.fh.f_handle, h2.fh.f_handle, h.fh.handle_bytes) == 0);
    close(fd);

    /* Deleted: stale. */
    struct handle hg;
    res("gone handle", get(g, &hg, &mnt2, 0));
    unlink(g);
    res("open deleted", open_by_handle_at(mfd, &hg.fh, O_RDONLY));
    /* Garbage. */
    struct handle bad = h;
    memset(bad.fh.f_handle, 0, bad.fh.handle_bytes);
    res("open zeroed handle", open_by_handle_at(mfd, &bad.fh, O_RDONLY));
    bad.fh.handle_bytes = 0;
    res("open zero bytes", open_by_handle_at(mfd, &bad.fh, O_RDONLY));
    bad.fh.handle_bytes = MAX_HANDLE_SZ + 1;
    res("open too big", open_by_handle_at(mfd, &bad.fh, O_RDONLY));
    res("open EBADF", open_by_handle_at(999, &h.fh, O_RDONLY));
    res("open efault", open_by_handle_at(mfd, bad_ptr, O_RDONLY));
    res("procfs", get("/proc/self/stat", &h2, &mnt2, 0));

    /* Unprivileged: may make handles, may not open them. */
    pid_t pid = fork();
    if (pid == 0) {
        if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534))
            _exit(1);
        res("nobody handle", get(f, &h2, &mnt2, 0));
        res("nobody open", open_by_handle_at(mfd, &h.fh, O_RDONLY));
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    printf("child: %d\n", WEXITSTATUS(st));
    fd = open(f, O_RDONLY);
    read(fd, buf, 4);
    printf("content: %.4s\n", buf);
    return 0;
}
