/* /proc/sys files common programs read: each exists and reads as what its
 * kind is (integers, a word, text) — values are the machine's own and not
 * compared; the unprivileged user cannot open them for writing (EACCES),
 * and a read-only file stays so. Nothing is written: the same program runs
 * natively as root. */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *ints[] = {
    "kernel/pid_max", "kernel/threads-max", "kernel/ngroups_max", "kernel/cap_last_cap",
    "kernel/overflowuid", "kernel/overflowgid", "kernel/printk", "kernel/panic",
    "kernel/tainted", "kernel/randomize_va_space", "kernel/dmesg_restrict",
    "kernel/shmmax", "kernel/shmall", "kernel/shmmni", "kernel/msgmax", "kernel/msgmnb",
    "kernel/msgmni", "kernel/sem", "kernel/random/entropy_avail", "kernel/random/poolsize",
    "vm/overcommit_memory", "vm/max_map_count", "vm/mmap_min_addr", "fs/file-max",
    "fs/nr_open", "fs/pipe-max-size", "fs/pipe-user-pages-hard", "fs/pipe-user-pages-soft",
    "fs/protected_fifos", "fs/protected_hardlinks", "fs/protected_regular",
    "fs/protected_symlinks", "fs/inotify/max_queued_events", "fs/inotify/max_user_instances",
    "fs/inotify/max_user_watches", "fs/mqueue/msg_max", "fs/mqueue/msgsize_max",
    "fs/mqueue/queues_max", "fs/aio-max-nr", "net/core/somaxconn", NULL};
static const char *texts[] = {"kernel/ostype", "kernel/osrelease", "kernel/version",
                              "kernel/hostname", "kernel/domainname",
                              "kernel/random/boot_id", "kernel/random/uuid", NULL};

static int readall(const char *rel, char *buf, size_t n) {
    char path[256];
    snprintf(path, sizeof path, "/proc/sys/%s", rel);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -errno;
    ssize_t r = read(fd, buf, n - 1);
    int e = errno;
    close(fd);
    if (r < 0)
        return -e;
    buf[r] = 0;
    return (int)r;
}

/* "N integers" or what is wrong with the text. */
static void describe_ints(const char *rel) {
    char buf[512];
    int r = readall(rel, buf, sizeof buf);
    if (r < 0) {
        printf("%s: %s\n", rel, strerrorname_np(-r));
        return;
    }
    int n = 0;
    char *p = buf;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\n' || !*p)
            break;
        char *end;
        strtoll(p, &end, 10);
        if (end == p) {
            printf("%s: not an integer: %s", rel, buf);
            return;
        }
        n++;
        p = end;
    }
    printf("%s: %d integer%s%s\n", rel, n, n == 1 ? "" : "s",
           buf[r - 1] == '\n' ? ", newline" : ", NO NEWLINE");
}

static void describe_text(const char *rel) {
    char buf[512];
    int r = readall(rel, buf, sizeof buf);
    if (r < 0)
        printf("%s: %s\n", rel, strerrorname_np(-r));
    else
        printf("%s: text, one line: %s\n", rel,
               (r > 1 && strchr(buf, '\n') == buf + r - 1) ? "yes" : "no");
}

static void open_for_write(const char *rel) {
    char path[256];
    snprintf(path, sizeof path, "/proc/sys/%s", rel);
    int fd = open(path, O_WRONLY);
    printf("write open %s: %s\n", rel, fd >= 0 ? "ok" : strerrorname_np(errno));
    if (fd >= 0)
        close(fd);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 0; ints[i]; i++)
        describe_ints(ints[i]);
    for (int i = 0; texts[i]; i++)
        describe_text(texts[i]);
    const char *dirs[] = {"fs/inotify", "net/core", "fs/mqueue", "kernel/random", NULL};
    for (int i = 0; dirs[i]; i++) {
        char path[256];
        snprintf(path, sizeof path, "/proc/sys/%s", dirs[i]);
        printf("%s is a directory: %s\n", dirs[i], access(path, X_OK) == 0 ? "yes" : "no");
    }
    /* As an unprivileged user every one is closed for writing. */
    pid_t c = fork();
    if (c == 0) {
        if (setresgid(12345, 12345, 12345) || setresuid(12345, 12345, 12345))
            return 1;
        const char *w[] = {"fs/pipe-max-size", "kernel/printk", "kernel/dmesg_restrict",
                           "kernel/hostname", "vm/max_map_count", "fs/nr_open",
                           "kernel/tainted", NULL};
        for (int i = 0; w[i]; i++)
            open_for_write(w[i]);
        return 0;
    }
    int st;
    waitpid(c, &st, 0);
    printf("child: %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    printf("result: OK\n");
    return 0;
}
