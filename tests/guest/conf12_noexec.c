/* noexec, nodev and nosuid mounts (Linux conformance II, #11): the flags
 * are recorded per mount (mount(2), remount, mount_setattr) and shown by
 * /proc/self/mountinfo, /proc/mounts and statvfs; a file of a noexec mount
 * cannot be executed (execve, execveat: EACCES; access X_OK: EACCES),
 * mapped executable (mmap PROT_EXEC: EPERM) or made executable
 * (mprotect PROT_EXEC: EACCES); a device node of a nodev mount cannot be
 * opened (EACCES). Needs root (natively: the test runs it only as root);
 * works in a mount namespace of its own under the directory argv[2]. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MOUNT_ATTR_NOEXEC
#define MOUNT_ATTR_RDONLY 0x1
#define MOUNT_ATTR_NOSUID 0x2
#define MOUNT_ATTR_NODEV 0x4
#define MOUNT_ATTR_NOEXEC 0x8
struct mount_attr { unsigned long long attr_set, attr_clr, propagation, userns_fd; };
#endif

static const char *en(long r) { return r < 0 ? strerrorname_np(errno) : "ok"; }

/* The options of the mount at `at` as mountinfo shows them (field 6). */
static void show(const char *at)
{
    char line[1024];
    FILE *f = fopen("/proc/self/mountinfo", "r");
    if (!f) { printf("mountinfo: %s\n", strerrorname_np(errno)); return; }
    char found[256] = "(none)";
    while (fgets(line, sizeof line, f)) {
        char mp[512], opts[256];
        if (sscanf(line, "%*d %*d %*s %*s %511s %255s", mp, opts) == 2 && !strcmp(mp, at))
            snprintf(found, sizeof found, "%s", opts);
    }
    fclose(f);
    char *rel = strstr(found, ",relatime");
    if (rel) *rel = 0;
    struct statvfs sv;
    unsigned long fl = statvfs(at, &sv) == 0 ? sv.f_flag & (ST_RDONLY | ST_NOSUID | ST_NODEV | ST_NOEXEC) : 999;
    printf("  mountinfo %s, statvfs flags %#lx\n", found, fl);
    f = fopen("/proc/mounts", "r");
    int seen = 0;
    while (f && fgets(line, sizeof line, f)) {
        char mp[512], opts[256];
        if (sscanf(line, "%*s %511s %*s %255s", mp, opts) == 2 && !strcmp(mp, at)) {
            char *r = strstr(opts, ",relatime");
            if (r) *r = 0;
            printf("  /proc/mounts %s\n", opts);
            seen = 1;
        }
    }
    if (f) fclose(f);
    if (!seen) printf("  /proc/mounts: not listed\n");
}

static void try_exec(const char *prog)
{
    pid_t p = fork();
    if (p == 0) {
        char *argv[] = {(char *)prog, "child", NULL};
        execve(prog, argv, environ);
        _exit(errno == EACCES ? 40 : 41);
    }
    int st = 0;
    waitpid(p, &st, 0);
    int c = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    printf("  execve: %s\n", c == 7 ? "ran" : c == 40 ? "EACCES" : "other");
    p = fork();
    if (p == 0) {
        int fd = open(prog, O_RDONLY | O_CLOEXEC);
        char *argv[] = {(char *)prog, "child", NULL};
        syscall(SYS_execveat, fd, "", argv, environ, AT_EMPTY_PATH);
        _exit(errno == EACCES ? 40 : 41);
    }
    waitpid(p, &st, 0);
    c = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    printf("  execveat(AT_EMPTY_PATH): %s\n", c == 7 ? "ran" : c == 40 ? "EACCES" : "other");
    printf("  access X_OK: %s\n", en(access(prog, X_OK)));
    int fd = open(prog, O_RDONLY);
    void *m = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
    printf("  mmap PROT_EXEC private: %s\n", m == MAP_FAILED ? strerrorname_np(errno) : "ok");
    if (m != MAP_FAILED) munmap(m, 4096);
    m = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0);
    printf("  mmap PROT_EXEC shared: %s\n", m == MAP_FAILED ? strerrorname_np(errno) : "ok");
    if (m != MAP_FAILED) munmap(m, 4096);
    m = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
    printf("  mmap PROT_READ: %s\n", m == MAP_FAILED ? strerrorname_np(errno) : "ok");
    if (m != MAP_FAILED) {
        printf("  mprotect +PROT_EXEC: %s\n", en(mprotect(m, 4096, PROT_READ | PROT_EXEC)));
        printf("  mprotect PROT_READ|PROT_WRITE: %s\n", en(mprotect(m, 4096, PROT_READ | PROT_WRITE)));
        munmap(m, 4096);
    }
    close(fd);
}

static void try_dev(const char *node)
{
    int fd = open(node, O_RDWR);
    printf("  open device node: %s\n", fd < 0 ? strerrorname_np(errno) : "ok");
    if (fd >= 0) close(fd);
}

static int copy(const char *from, const char *to)
{
    int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0755);
    if (in < 0 || out < 0) return -1;
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0)
        if (write(out, buf, n) != n) return -1;
    close(in);
    close(out);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "child")) return 7;
    if (argc < 2) return 2;
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n < 0) return 3;
    self[n] = 0;
    printf("unshare(CLONE_NEWNS): %s\n", en(unshare(CLONE_NEWNS)));
    printf("make / private: %s\n", en(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)));
    if (chdir(argv[1]) != 0) return 4;
    mkdir("m", 0755);
    char at[4096], prog[4200], node[4200];
    if (!getcwd(at, sizeof at - 8)) return 5;
    strcat(at, "/m");
    snprintf(prog, sizeof prog, "%s/prog", at);
    snprintf(node, sizeof node, "%s/null", at);

    printf("mount tmpfs nosuid,nodev,noexec: %s\n",
           en(mount("tmpfs", at, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755")));
    show(at);
    printf("copy program: %s\n", en(copy(self, prog)));
    printf("mknod null: %s\n", en(mknod(node, S_IFCHR | 0666, makedev(1, 3))));
    try_exec(prog);
    try_dev(node);

    printf("remount nosuid only:\n");
    printf("  %s\n", en(mount(NULL, at, NULL, MS_REMOUNT | MS_NOSUID, NULL)));
    show(at);
    try_exec(prog);
    try_dev(node);

    printf("bind mount (keeps the flags) after remount noexec,nodev:\n");
    printf("  %s\n", en(mount(NULL, at, NULL, MS_REMOUNT | MS_NOEXEC | MS_NODEV, NULL)));
    mkdir("b", 0755);
    char b[4200];
    snprintf(b, sizeof b, "%.4000s/../b", at);
    char bres[4200];
    if (!realpath(b, bres)) return 6;
    printf("  bind: %s\n", en(mount(at, bres, NULL, MS_BIND, NULL)));
    show(bres);
    char bprog[4300];
    snprintf(bprog, sizeof bprog, "%s/prog", bres);
    try_exec(bprog);

    printf("mount_setattr clear noexec, set nosuid on the bind:\n");
    struct mount_attr ma = {.attr_set = MOUNT_ATTR_NOSUID, .attr_clr = MOUNT_ATTR_NOEXEC};
    printf("  %s\n", en(syscall(SYS_mount_setattr, AT_FDCWD, bres, 0, &ma, sizeof ma)));
    show(bres);
    try_exec(bprog);
    printf("  the original still noexec:\n");
    show(at);
    ma = (struct mount_attr){.attr_set = MOUNT_ATTR_NOEXEC};
    printf("mount_setattr set noexec on the bind: %s\n",
           en(syscall(SYS_mount_setattr, AT_FDCWD, bres, 0, &ma, sizeof ma)));
    show(bres);
    try_exec(bprog);
    umount2(bres, 0);
    umount2(at, 0);
    return 0;
}
