/* Owner of a pty's slave /dev/pts/N, compared with the host: it belongs
 * to the fsuid of the process that opened /dev/ptmx (devpts_pty_new
 * takes current_fsuid()), whoever that is; its group is tty (5, with
 * devpts mounted gid=5) or the opener's fsgid (without), its mode 0620
 * or 0600 by the mount's mode=. Printed as facts that hold on either
 * kind of mount, so the output is the same wherever the test runs. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void probe(const char *who, uid_t uid, gid_t gid) {
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    if (m < 0) {
        printf("%s: posix_openpt failed\n", who);
        return;
    }
    if (unlockpt(m) != 0) printf("%s: unlockpt failed\n", who);
    const char *name = ptsname(m);
    struct stat st;
    if (!name || stat(name, &st) != 0) {
        printf("%s: stat of the slave failed\n", who);
        close(m);
        return;
    }
    printf("%s: owner is the opener %d, group tty or the opener's %d, mode 0620 or 0600 %d\n",
           who, st.st_uid == uid, st.st_gid == 5 || st.st_gid == gid,
           (st.st_mode & 07777) == 0620 || (st.st_mode & 07777) == 0600);
    /* The slave opened through its name is the same node. */
    int s = open(name, O_RDWR | O_NOCTTY);
    struct stat fst;
    printf("%s: slave opens %d, fstat agrees %d\n", who, s >= 0,
           s >= 0 && fstat(s, &fst) == 0 && fst.st_uid == st.st_uid && fst.st_ino == st.st_ino);
    if (s >= 0) close(s);
    close(m);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (geteuid() != 0) {
        printf("run as root\n");
        return 0;
    }
    probe("root", 0, getegid());
    pid_t c = fork();
    if (c == 0) {
        if (setresgid(1234, 1234, 1234) || setresuid(1000, 1000, 1000)) {
            printf("setresuid failed\n");
            _exit(1);
        }
        probe("uid 1000", 1000, 1234);
        _exit(0);
    }
    int status;
    waitpid(c, &status, 0);
    printf("child exited %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    /* fsuid decides, not euid. */
    c = fork();
    if (c == 0) {
        if (setresgid(77, 77, 77) || setresuid(0, 2000, 0)) {
            printf("setresuid failed\n");
            _exit(1);
        }
        probe("euid 2000", 2000, 77);
        _exit(0);
    }
    waitpid(c, &status, 0);
    printf("child exited %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return 0;
}
