/* Owners and inode numbers under /proc/PID, compared with the host:
 * /proc/PID and what is in it belong to the process's effective uid and
 * gid (Linux's task_dump_owner), checked after dropping to uid/gid 65534
 * where the test may (as root); once the process is made non-dumpable
 * (PR_SET_DUMPABLE 0) its files and links belong to root but its plain
 * 0555 directories stay its own. Every entry of /proc/self has an inode
 * number of its own. Printed as facts, the same whoever runs it. */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *names[] = {
    "/proc/self/.", "/proc/self/status", "/proc/self/stat", "/proc/self/cmdline",
    "/proc/self/oom_score_adj", "/proc/self/mem", "/proc/self/maps", "/proc/self/environ",
    "/proc/self/fd", "/proc/self/fdinfo", "/proc/self/cwd", "/proc/self/exe",
    "/proc/self/fd/0", "/proc/self/ns", "/proc/self/ns/pid", "/proc/self/uid_map",
    "/proc/self/task", "/proc/thread-self/.", "/proc/thread-self/status",
};

static void owners(const char *when) {
    uid_t u = geteuid();
    gid_t g = getegid();
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        struct stat st;
        if (lstat(names[i], &st) != 0) {
            printf("%s %s: lstat failed\n", when, names[i]);
            continue;
        }
        const char *who = st.st_uid == u && st.st_gid == g ? "the process"
                          : st.st_uid == 0 && st.st_gid == 0 ? "root"
                                                              : "someone else";
        printf("%s %s: %s\n", when, names[i], who);
    }
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    /* Distinct inode numbers for the entries of /proc/self. */
    DIR *d = opendir("/proc/self");
    if (!d)
        return 1;
    struct dirent *e;
    ino_t seen[128];
    char seen_name[128][64];
    int n = 0, dup = 0;
    while ((e = readdir(d)) && n < 128) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char p[300];
        snprintf(p, sizeof p, "/proc/self/%s", e->d_name);
        struct stat st;
        if (lstat(p, &st) != 0)
            continue;
        for (int i = 0; i < n; i++)
            if (seen[i] == st.st_ino) {
                printf("same inode: %s and %s\n", seen_name[i], e->d_name);
                dup++;
            }
        seen[n] = st.st_ino;
        snprintf(seen_name[n], sizeof seen_name[n], "%.63s", e->d_name);
        n++;
    }
    closedir(d);
    printf("inode numbers of /proc/self's entries: %s\n", dup ? "shared" : "distinct");
    struct stat a, b;
    if (stat("/proc/self/mem", &a) == 0 && stat("/proc/self/uid_map", &b) == 0)
        printf("mem and uid_map: %s\n", a.st_ino == b.st_ino ? "same inode" : "different inodes");

    pid_t c = fork();
    if (c == 0) {
        if (geteuid() == 0 && (setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0))
            _exit(3);
        /* A uid change makes the process non-dumpable: make it dumpable. */
        prctl(PR_SET_DUMPABLE, 1);
        owners("dumpable");
        prctl(PR_SET_DUMPABLE, 0);
        owners("not dumpable");
        _exit(0);
    }
    int st;
    waitpid(c, &st, 0);
    printf("child: %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    return 0;
}
