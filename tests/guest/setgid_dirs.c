/* setgid directories and the set-id bits: new files and directories in a
 * setgid directory take its group, subdirectories its S_ISGID; chmod by an
 * owner outside the file's group drops S_ISGID; a write or truncate by a
 * non-owner and any chown clear S_ISUID (and S_ISGID with group execute),
 * mandatory-locking S_ISGID (no group execute) stays. Runs as root in the
 * directory argv[1], and as uid/gid 12345 in children. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define U 12345
#define G 4242

static char base[512];

static const char *p(const char *rel) {
    static char buf[4][600];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof buf[i], "%s/%s", base, rel);
    return buf[i];
}

static void show(const char *rel) {
    struct stat st;
    if (stat(p(rel), &st) != 0) {
        printf("%s: %s\n", rel, strerrorname_np(errno));
        return;
    }
    printf("%s: mode %04o uid %s gid %s\n", rel, st.st_mode & 07777,
           st.st_uid == 0 ? "root" : st.st_uid == U ? "U" : "?",
           st.st_gid == 0 ? "root" : st.st_gid == G ? "G" : st.st_gid == U ? "U" : "?");
}

static void as_user(void (*f)(void)) {
    pid_t c = fork();
    if (c == 0) {
        if (setgroups(0, NULL) || setresgid(U, U, U) || setresuid(U, U, U))
            _exit(1);
        umask(0);
        f();
        fflush(stdout);
        _exit(0);
    }
    int st;
    waitpid(c, &st, 0);
    printf("user part exit %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

static void user_in_sgid_dir(void) {
    close(open(p("sg/file"), O_CREAT | O_WRONLY, 0644));
    show("sg/file");
    mkdir(p("sg/sub"), 0755);
    show("sg/sub");
    close(open(p("sg/sub/deeper"), O_CREAT | O_WRONLY, 0755));
    show("sg/sub/deeper");
    printf("chmod 2755 (not in group G): %d\n", chmod(p("sg/file"), 02755));
    show("sg/file");
    close(open(p("own"), O_CREAT | O_WRONLY, 0644));
    printf("chmod 6755 own file: %d\n", chmod(p("own"), 06755));
    show("own");
    printf("chmod 2755 dir sg/sub: %d\n", chmod(p("sg/sub"), 02755));
    show("sg/sub");
    mknod(p("sg/fifo"), S_IFIFO | 0600, 0);
    show("sg/fifo");
    /* created with S_ISGID by a non-member: dropped when group-executable
     * (mode_strip_sgid), kept otherwise; directories keep it */
    close(open(p("sg/sgid-x"), O_CREAT | O_WRONLY, 02755));
    show("sg/sgid-x");
    close(open(p("sg/sgid-nx"), O_CREAT | O_WRONLY, 02745));
    show("sg/sgid-nx");
    mkdir(p("sg/sgid-dir"), 02755);
    show("sg/sgid-dir");
    mknod(p("sg/sgid-node"), S_IFREG | 02775, 0);
    show("sg/sgid-node");
    /* outside a setgid directory the creator's own group: kept */
    close(open(p("own-sgid"), O_CREAT | O_WRONLY, 02755));
    show("own-sgid");
}

static void user_writes(void) {
    int fd = open(p("w/suid"), O_WRONLY);
    printf("write: %zd\n", write(fd, "x", 1));
    close(fd);
    show("w/suid");
    fd = open(p("w/mand"), O_WRONLY);
    printf("write: %zd\n", write(fd, "x", 1));
    close(fd);
    show("w/mand");
    printf("truncate: %d\n", truncate(p("w/trunc"), 0));
    show("w/trunc");
    fd = open(p("w/gonly"), O_WRONLY);
    printf("write: %zd\n", write(fd, "x", 1));
    close(fd);
    show("w/gonly");
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2 || geteuid() != 0)
        return 2;
    snprintf(base, sizeof base, "%s", argv[1]);
    umask(0);
    chmod(base, 0777);
    mkdir(p("sg"), 0777);
    chown(p("sg"), U, G);
    chmod(p("sg"), 02777);
    show("sg");
    /* root creating in it: the group too */
    close(open(p("sg/rootfile"), O_CREAT | O_WRONLY, 0755));
    show("sg/rootfile");
    as_user(user_in_sgid_dir);

    mkdir(p("w"), 0777);
    const char *files[] = {"w/suid", "w/mand", "w/trunc", "w/gonly"};
    mode_t modes[] = {06777, 02766, 06777, 02777};
    for (int i = 0; i < 4; i++) {
        close(open(p(files[i]), O_CREAT | O_WRONLY, 0600));
        chmod(p(files[i]), modes[i]);
        show(files[i]);
    }
    as_user(user_writes);

    /* chown clears the set-id bits, for root too; not on directories */
    close(open(p("c1"), O_CREAT | O_WRONLY, 0600));
    chmod(p("c1"), 06755);
    printf("chown: %d\n", chown(p("c1"), 0, 0));
    show("c1");
    close(open(p("c2"), O_CREAT | O_WRONLY, 0600));
    chmod(p("c2"), 06745);
    printf("chown -1 -1: %d\n", chown(p("c2"), -1, -1));
    show("c2");
    close(open(p("c3"), O_CREAT | O_WRONLY, 0600));
    chmod(p("c3"), 02745); /* setgid, no group exec */
    printf("chown: %d\n", chown(p("c3"), U, -1));
    show("c3");
    mkdir(p("d1"), 0755);
    chmod(p("d1"), 06755);
    printf("chown dir: %d\n", chown(p("d1"), U, G));
    show("d1");
    /* root writes do not clear */
    close(open(p("c4"), O_CREAT | O_WRONLY, 0600));
    chmod(p("c4"), 06755);
    int fd = open(p("c4"), O_WRONLY);
    printf("root write: %zd\n", write(fd, "x", 1));
    close(fd);
    show("c4");
    printf("result: OK\n");
    return 0;
}
