/* dnotify: fcntl(F_NOTIFY) on a directory: one-shot and DN_MULTISHOT
 * marks, each DN_* event, F_SETSIG with si_fd, plain SIGIO, removal by
 * F_NOTIFY 0 and by close. Signals are blocked and taken with
 * sigtimedwait: the same output natively and under ruml. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SIG (SIGRTMIN + 3)

static const char *e(long r) { return r < 0 ? strerrorname_np(errno) : "ok"; }

/* Counts the signals `sig` pending now (after what happened), printing
 * the first's details. */
static void count(const char *what, int sig, int fd) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig);
    struct timespec ts = {0, 0};
    siginfo_t si;
    int n = 0;
    char first[128] = "";
    while (sigtimedwait(&s, &si, &ts) > 0) {
        if (n++ == 0)
            snprintf(first, sizeof first, " (code %s band %#lx fd %s)",
                     si.si_code == POLL_MSG    ? "POLL_MSG"
                     : si.si_code == SI_KERNEL ? "SI_KERNEL"
                                               : "other",
                     sig == SIGIO ? 0 : si.si_band, sig == SIGIO ? "-" : si.si_fd == fd ? "right" : "wrong");
        if (sig == SIGIO)
            break; /* standard signals do not queue */
    }
    printf("%s: %d%s\n", what, n, first);
}

static char dir[] = "/tmp/ruml-dn.XXXXXX";
static char pa[64], pb[64], pc[64], psub[64];

static int dnfd(unsigned long mask, int sig) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (sig)
        fcntl(fd, F_SETSIG, sig);
    if (fcntl(fd, F_NOTIFY, mask) < 0)
        printf("F_NOTIFY %#lx: %s\n", mask, strerrorname_np(errno));
    return fd;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    sigset_t all;
    sigemptyset(&all);
    sigaddset(&all, SIG);
    sigaddset(&all, SIGIO);
    sigprocmask(SIG_BLOCK, &all, NULL);
    if (!mkdtemp(dir))
        return 1;
    snprintf(pa, sizeof pa, "%s/a", dir);
    snprintf(pb, sizeof pb, "%s/b", dir);
    snprintf(pc, sizeof pc, "%s/c", dir);
    snprintf(psub, sizeof psub, "%s/sub", dir);

    /* Errors. */
    int f = open(pa, O_CREAT | O_RDWR, 0600);
    printf("F_NOTIFY on a file: %s\n", e(fcntl(f, F_NOTIFY, DN_MODIFY)));
    close(f);
    unlink(pa);
    int d = open(dir, O_RDONLY | O_DIRECTORY);
    printf("F_NOTIFY 0 unmarked: %s\n", e(fcntl(d, F_NOTIFY, 0)));
    printf("F_NOTIFY sets owner: %d\n", (e(fcntl(d, F_NOTIFY, DN_CREATE)), fcntl(d, F_GETOWN) == getpid()));
    close(d);

    /* One-shot DN_CREATE. */
    d = dnfd(DN_CREATE, SIG);
    close(open(pa, O_CREAT | O_WRONLY, 0600));
    count("create (oneshot)", SIG, d);
    close(open(pb, O_CREAT | O_WRONLY, 0600));
    count("second create", SIG, d);
    close(d);

    /* DN_MODIFY multishot, then DN_ATTRIB added to the same mark. */
    d = dnfd(DN_MODIFY | DN_MULTISHOT, SIG);
    f = open(pa, O_WRONLY);
    write(f, "1", 1);
    write(f, "2", 1);
    count("two writes (multishot)", SIG, d);
    chmod(pa, 0640);
    count("chmod, not asked", SIG, d);
    fcntl(d, F_NOTIFY, DN_ATTRIB | DN_MULTISHOT);
    chmod(pa, 0600);
    count("chmod after adding DN_ATTRIB", SIG, d);
    write(f, "3", 1);
    count("write still watched", SIG, d);
    close(f);
    /* F_NOTIFY 0 removes the mark. */
    fcntl(d, F_NOTIFY, 0);
    f = open(pa, O_WRONLY);
    write(f, "4", 1);
    close(f);
    count("write after F_NOTIFY 0", SIG, d);
    close(d);

    /* DN_ACCESS. */
    d = dnfd(DN_ACCESS | DN_MULTISHOT, SIG);
    char buf[8];
    f = open(pa, O_RDONLY);
    read(f, buf, sizeof buf);
    count("read", SIG, d);
    read(f, buf, sizeof buf); /* at EOF: no access event */
    count("read at EOF", SIG, d);
    close(f);
    close(d);

    /* DN_DELETE and DN_RENAME. */
    d = dnfd(DN_DELETE | DN_MULTISHOT, SIG);
    unlink(pb);
    count("unlink", SIG, d);
    close(d);
    d = dnfd(DN_RENAME | DN_MULTISHOT, SIG);
    rename(pa, pc);
    count("rename", SIG, d);
    close(d);

    /* Subdirectories: mkdir is a create in dir; a create inside sub is not. */
    d = dnfd(DN_CREATE | DN_MULTISHOT, SIG);
    mkdir(psub, 0700);
    count("mkdir", SIG, d);
    char deep[96];
    snprintf(deep, sizeof deep, "%s/x", psub);
    close(open(deep, O_CREAT | O_WRONLY, 0600));
    count("create in subdir", SIG, d);
    /* Close removes the mark. */
    int d2 = dup(d);
    close(d);
    close(open(pb, O_CREAT | O_WRONLY, 0600));
    count("create after close", SIG, d2);
    close(d2);

    /* Plain SIGIO (no F_SETSIG): the default signal. */
    d = dnfd(DN_DELETE, 0);
    unlink(pb);
    count("plain SIGIO", SIGIO, d);
    close(d);

    unlink(deep);
    rmdir(psub);
    unlink(pc);
    rmdir(dir);
    return 0;
}
