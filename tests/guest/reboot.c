/* reboot(2) inside ruml (never natively: it would power off the host).
 * argv[1] is a directory on a host mount that survives a restart: the
 * first boot checks the argument errors, notes itself there and restarts;
 * the second boot powers off. Prints what each boot saw. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/reboot.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static long rb(unsigned m1, unsigned m2, unsigned cmd) {
    return syscall(SYS_reboot, m1, m2, cmd, 0);
}

static const char *err(long r) { return r == 0 ? "ok" : strerrorname_np(errno); }

int main(int argc, char **argv) {
    if (argc < 2 || chdir(argv[1]))
        return 2;
    if (access("booted-once", F_OK) == 0) {
        printf("second boot: pid %d\n", getpid());
        fflush(stdout);
        sync();
        rb(LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, LINUX_REBOOT_CMD_POWER_OFF);
        printf("still running after POWER_OFF\n");
        return 1;
    }
    printf("bad magic1: %s\n", err(rb(1, LINUX_REBOOT_MAGIC2, LINUX_REBOOT_CMD_HALT)));
    printf("bad magic2: %s\n", err(rb(LINUX_REBOOT_MAGIC1, 7, LINUX_REBOOT_CMD_HALT)));
    printf("bad command: %s\n", err(rb(LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, 12345)));
    printf("CAD_OFF: %s\n", err(rb(LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2C, LINUX_REBOOT_CMD_CAD_OFF)));
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) {
        if (setuid(65534))
            _exit(3);
        printf("as nobody: %s\n", err(rb(LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, LINUX_REBOOT_CMD_HALT)));
        fflush(stdout);
        _exit(0);
    }
    waitpid(p, NULL, 0);
    close(open("booted-once", O_CREAT | O_WRONLY, 0644));
    printf("first boot: restarting\n");
    fflush(stdout);
    rb(LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, LINUX_REBOOT_CMD_RESTART);
    /* The instance ends; this thread may still run briefly. */
    for (;;)
        pause();
}
