/* File system semantics, printed so that a run on the host (in a fresh
 * directory under /tmp) and a run under ruml (in the guest's /tmp, the
 * overlay's tmpfs upper layer) can be compared line by line. Only
 * relations are printed (no inode numbers, no absolute times), and nothing
 * that differs between host filesystems (block counts, directory sizes).
 * argv[1]: a directory to create and work in. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static void res(const char *what, long r) {
    if (r < 0)
        printf("%s: -1 %s\n", what, strerrorname_np(errno));
    else
        printf("%s: %ld\n", what, r);
}

static int ren2(const char *a, const char *b, unsigned flags) {
    return syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, flags);
}

static void list(const char *d) {
    DIR *dir = opendir(d);
    if (!dir) {
        printf("opendir %s: %s\n", d, strerrorname_np(errno));
        return;
    }
    char names[64][260];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dir)) && n < 64) {
        snprintf(names[n++], 260, "%s%s", e->d_name, e->d_type == DT_DIR ? "/" : "");
    }
    closedir(dir);
    qsort(names, n, 260, (int (*)(const void *, const void *))strcmp);
    printf("ls %s:", d);
    for (int i = 0; i < n; i++)
        printf(" %s", names[i]);
    printf("\n");
}

static long nlink(const char *p) {
    struct stat st;
    if (lstat(p, &st) < 0)
        return -1;
    return st.st_nlink;
}

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    umask(022);
    res("mkdir", mkdir(argv[1], 0755));
    if (chdir(argv[1]) < 0)
        return 3;

    /* regular files, holes, sizes */
    int fd = open("f", O_CREAT | O_EXCL | O_RDWR, 0644);
    res("create", fd >= 0 ? 0 : -1);
    res("excl again", open("f", O_CREAT | O_EXCL | O_RDWR, 0644));
    res("pwrite far", pwrite(fd, "tail", 4, 100000));
    struct stat st;
    fstat(fd, &st);
    printf("size %ld sparse %d mode %o\n", (long)st.st_size, st.st_blocks * 512 < st.st_size, st.st_mode);
    char buf[16];
    memset(buf, 'x', sizeof buf);
    res("pread hole", pread(fd, buf, 8, 5000));
    printf("hole zero %d\n", buf[0] == 0 && buf[7] == 0);
    res("ftruncate", ftruncate(fd, 50));
    res("ftruncate grow", ftruncate(fd, 70000));
    res("pread tail gone", pread(fd, buf, 4, 100000));
    fstat(fd, &st);
    printf("size %ld\n", (long)st.st_size);
    res("lseek end", lseek(fd, 0, SEEK_END));
    res("write", write(fd, "abc", 3));
    res("fallocate keep", fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 200000));
    fstat(fd, &st);
    printf("size after keep-size fallocate %ld\n", (long)st.st_size);
    res("fallocate", fallocate(fd, 0, 0, 80000));
    fstat(fd, &st);
    printf("size after fallocate %ld\n", (long)st.st_size);
    res("fsync", fsync(fd));
    res("fdatasync", fdatasync(fd));
    int ro = open("f", O_RDONLY);
    res("ftruncate rdonly", ftruncate(ro, 0));
    close(ro);
    res("open dir on file", open("f/", O_RDONLY));
    res("O_DIRECTORY on file", open("f", O_RDONLY | O_DIRECTORY));

    /* times */
    struct timespec ts[2] = {{1000, 5}, {2000, 7}};
    res("utimensat", utimensat(AT_FDCWD, "f", ts, 0));
    stat("f", &st);
    printf("atime %ld.%ld mtime %ld.%ld\n", (long)st.st_atim.tv_sec, st.st_atim.tv_nsec, (long)st.st_mtim.tv_sec,
           st.st_mtim.tv_nsec);
    struct timespec omit[2] = {{0, UTIME_OMIT}, {3000, 0}};
    res("utimensat omit", utimensat(AT_FDCWD, "f", omit, 0));
    stat("f", &st);
    printf("atime %ld mtime %ld\n", (long)st.st_atim.tv_sec, (long)st.st_mtim.tv_sec);
    struct timespec bad[2] = {{0, 2000000000}, {0, 0}};
    res("utimensat bad nsec", utimensat(AT_FDCWD, "f", bad, 0));
    res("write bumps mtime", pwrite(fd, "z", 1, 0));
    stat("f", &st);
    printf("mtime moved %d\n", st.st_mtim.tv_sec > 3000);
    time_t c0 = st.st_ctime;
    res("chmod", chmod("f", 04751));
    stat("f", &st);
    printf("mode %o ctime kept or later %d\n", st.st_mode, st.st_ctime >= c0);
    res("fchmod", fchmod(fd, 0600));
    fstat(fd, &st);
    printf("mode %o\n", st.st_mode);
    res("chown same", chown("f", getuid(), getgid()));

    /* links */
    res("link", link("f", "g"));
    printf("nlink f %ld g %ld\n", nlink("f"), nlink("g"));
    struct stat a, b;
    stat("f", &a);
    stat("g", &b);
    printf("same inode %d\n", a.st_ino == b.st_ino && a.st_dev == b.st_dev);
    res("link exists", link("f", "g"));
    res("unlink f", unlink("f"));
    printf("nlink g %ld\n", nlink("g"));
    fstat(fd, &st);
    printf("open file nlink %ld\n", (long)st.st_nlink);
    res("unlink g", unlink("g"));
    fstat(fd, &st);
    printf("open file nlink %ld\n", (long)st.st_nlink);
    res("pread unlinked", pread(fd, buf, 3, 50));
    close(fd);
    res("unlink gone", unlink("g"));

    /* symlinks */
    res("symlink", symlink("target/../x", "s"));
    char lb[64] = {0};
    res("readlink", readlink("s", lb, sizeof lb));
    printf("link text %s\n", lb);
    lstat("s", &st);
    printf("lstat size %ld islnk %d\n", (long)st.st_size, S_ISLNK(st.st_mode));
    res("stat dangling", stat("s", &st));
    res("open nofollow", open("s", O_RDONLY | O_NOFOLLOW));

    /* directories */
    res("mkdir d", mkdir("d", 0700));
    res("mkdir d again", mkdir("d", 0700));
    res("mkdir d/e", mkdir("d/e", 0755));
    res("creat d/e/x", close(creat("d/e/x", 0600)));
    res("rmdir nonempty", rmdir("d"));
    res("rmdir file", rmdir("d/e/x"));
    res("unlink dir", unlink("d/e"));
    res("link dir", link("d", "dd"));
    res("rename into own child", rename("d", "d/e/inside"));
    res("rename dir over file", rename("d/e", "d/e/x"));
    res("rename file over dir", rename("d/e/x", "d"));
    res("mkdir d2", mkdir("d2", 0755));
    res("creat d2/y", close(creat("d2/y", 0600)));
    res("rename over nonempty dir", rename("d/e", "d2"));
    res("unlink d2/y", unlink("d2/y"));
    res("rename over empty dir", rename("d/e", "d2"));
    list(".");
    list("d2");
    list("d");

    /* renameat2 */
    res("creat p", close(creat("p", 0644)));
    res("creat q", close(creat("q", 0600)));
    res("noreplace existing", ren2("p", "q", RENAME_NOREPLACE));
    res("noreplace new", ren2("p", "r", RENAME_NOREPLACE));
    res("exchange", ren2("r", "q", RENAME_EXCHANGE));
    stat("r", &st);
    printf("r mode %o\n", st.st_mode & 07777);
    res("exchange missing", ren2("r", "nothere", RENAME_EXCHANGE));
    res("exchange+noreplace", ren2("r", "q", RENAME_EXCHANGE | RENAME_NOREPLACE));
    res("exchange dir and file", ren2("d2", "q", RENAME_EXCHANGE));
    lstat("d2", &st);
    printf("d2 is reg %d\n", S_ISREG(st.st_mode));
    res("rename same", rename("r", "r"));
    res("rename to itself noreplace", ren2("r", "r", RENAME_NOREPLACE));

    /* special files */
    res("mkfifo", mkfifo("fifo", 0644));
    lstat("fifo", &st);
    printf("fifo %d\n", S_ISFIFO(st.st_mode));
    res("mknod reg", mknod("mreg", S_IFREG | 0600, 0));
    res("mknod dir", mknod("mdir", S_IFDIR | 0600, 0));
    res("mknod bad type", mknod("mbad", 0170000 | 0600, 0));

    /* truncate by path */
    fd = open("big", O_CREAT | O_RDWR | O_TRUNC, 0644);
    char page[8192];
    memset(page, 'q', sizeof page);
    res("write big", write(fd, page, sizeof page));
    res("truncate", truncate("big", 4097));
    fstat(fd, &st);
    printf("size %ld\n", (long)st.st_size);
    res("truncate grow", truncate("big", 9000));
    memset(buf, 'x', sizeof buf);
    res("pread regrown", pread(fd, buf, 4, 4096));
    printf("bytes %d %d %d %d\n", buf[0], buf[1], buf[2], buf[3]);
    res("truncate dir", truncate("d", 0));
    res("truncate negative", truncate("big", -1));
    res("O_TRUNC", close(open("big", O_WRONLY | O_TRUNC)));
    fstat(fd, &st);
    printf("size %ld\n", (long)st.st_size);
    close(fd);
    list(".");

    /* readdir while removing */
    mkdir("many", 0755);
    for (int i = 0; i < 40; i++) {
        char n[32];
        snprintf(n, sizeof n, "many/f%02d", i);
        close(creat(n, 0644));
    }
    DIR *dir = opendir("many");
    struct dirent *e;
    int seen = 0;
    while ((e = readdir(dir))) {
        if (e->d_name[0] == '.')
            continue;
        seen++;
        unlinkat(dirfd(dir), e->d_name, 0);
    }
    closedir(dir);
    printf("seen while removing %d\n", seen);
    res("rmdir many", rmdir("many"));

    /* cleanup so that native runs leave nothing */
    unlink("s"); unlink("fifo"); unlink("mreg"); unlink("big"); unlink("r"); unlink("d2");
    rmdir("q"); unlink("d/e/x"); rmdir("d/e"); rmdir("d"); rmdir("q");
    res("chdir ..", chdir(".."));
    res("rmdir top", rmdir(argv[1]));
    return 0;
}
