/* /proc/PID's cwd, root and exe links of exited processes and threads,
 * compared with the host. A zombie's fs context, files and memory are
 * gone, so readlink and stat of the links fail with ENOENT
 * (proc_cwd_link/proc_root_link find no fs_struct, proc_exe_link no
 * mm). The same holds for a process whose leader thread exited while
 * another thread runs: /proc/PID's links are the leader's, so ENOENT,
 * while the running thread's own (/proc/thread-self) still resolve.
 * The zombie's /proc/PID itself stays until it is reaped: listed in
 * /proc, its stat and status say state Z, its comm is its name, its
 * cmdline is empty, and it belongs to the process's euid and egid. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void links(const char *who, const char *dir) {
    static const char *names[] = {"cwd", "root", "exe"};
    for (int i = 0; i < 3; i++) {
        char path[96], target[256];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        errno = 0;
        ssize_t n = readlink(path, target, sizeof target - 1);
        if (n >= 0) {
            target[n] = 0;
            printf("%s %s: readlink gives %s\n", who, names[i], i == 2 ? "the program" : target);
        } else {
            printf("%s %s: readlink fails %s\n", who, names[i], strerrorname_np(errno));
        }
        struct stat st;
        errno = 0;
        int r = stat(path, &st);
        printf("%s %s: stat %s\n", who, names[i], r == 0 ? "works" : strerrorname_np(errno));
    }
}

/* /proc/PID of a zombie: there, listed, state Z, name, empty cmdline. */
static void zombie_dir(const char *dir, pid_t pid) {
    struct stat st;
    printf("zombie dir: %s\n", stat(dir, &st) == 0 ? "exists" : strerrorname_np(errno));
    if (stat(dir, &st) == 0)
        printf("zombie dir owner: %s\n",
               st.st_uid == geteuid() && st.st_gid == getegid() ? "the process's euid/egid" : "other");
    int listed = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (atoi(e->d_name) == pid)
            listed = 1;
    if (d)
        closedir(d);
    printf("zombie listed in /proc: %s\n", listed ? "yes" : "no");
    char path[96], buf[4096];
    snprintf(path, sizeof path, "%s/stat", dir);
    FILE *f = fopen(path, "r");
    if (f && fgets(buf, sizeof buf, f)) {
        char *r = strrchr(buf, ')');
        char *sp = strchr(buf, ' ');
        int n = 0;
        for (char *q = buf; *q; q++)
            n += *q == ' ';
        printf("stat: %.*s state %c, %d fields\n", (int)(r - sp), sp + 1, r ? r[2] : '?', n + 1);
    } else {
        printf("stat: %s\n", strerrorname_np(errno));
    }
    if (f)
        fclose(f);
    snprintf(path, sizeof path, "%s/status", dir);
    f = fopen(path, "r");
    while (f && fgets(buf, sizeof buf, f))
        if (!strncmp(buf, "Name:", 5) || !strncmp(buf, "State:", 6) || !strncmp(buf, "Uid:", 4) ||
            !strncmp(buf, "Gid:", 4))
            printf("status %s", buf);
    if (f)
        fclose(f);
    snprintf(path, sizeof path, "%s/cmdline", dir);
    f = fopen(path, "r");
    printf("cmdline: %zu bytes\n", f ? fread(buf, 1, sizeof buf, f) : (size_t)-1);
    if (f)
        fclose(f);
    snprintf(path, sizeof path, "%s/comm", dir);
    f = fopen(path, "r");
    if (f && fgets(buf, sizeof buf, f))
        printf("comm: %s", buf);
    if (f)
        fclose(f);
}

static pid_t leader;

static void *survivor(void *arg) {
    (void)arg;
    /* Wait until the leader thread has gone: its /proc/PID/task entry
     * stays (a zombie leader), but its status says so. */
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task/%d/cwd", leader, leader);
    for (int i = 0; i < 500; i++) {
        char t[256];
        if (readlink(path, t, sizeof t) < 0) break;
        usleep(10000);
    }
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d", leader);
    links("zombie leader", dir);
    links("running thread", "/proc/thread-self");
    fflush(stdout);
    _exit(0);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (chdir("/tmp") != 0) return 1;
    links("live self", "/proc/self");
    pid_t c = fork();
    if (c == 0) _exit(3);
    /* Wait for the child to become a zombie, without reaping it. */
    siginfo_t si;
    if (waitid(P_PID, c, &si, WEXITED | WNOWAIT) != 0) return 1;
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d", c);
    links("zombie", dir);
    zombie_dir(dir, c);
    int status;
    waitpid(c, &status, 0);
    printf("reaped, status %d\n", WEXITSTATUS(status));
    links("reaped", dir);
    struct stat gone;
    printf("reaped dir: %s\n", stat(dir, &gone) == 0 ? "exists" : strerrorname_np(errno));
    /* A child whose leader thread exits first. */
    c = fork();
    if (c == 0) {
        leader = getpid();
        pthread_t t;
        if (pthread_create(&t, NULL, survivor, NULL) != 0) _exit(1);
        syscall(SYS_exit, 0);
    }
    waitpid(c, &status, 0);
    printf("leader-exited child: status %d\n", WEXITSTATUS(status));
    return 0;
}
