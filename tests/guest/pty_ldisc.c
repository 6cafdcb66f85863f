/* Pseudo-terminals and the line discipline, compared with the host:
 * posix_openpt/grantpt/unlockpt/ptsname; a child that starts a session
 * and opens the slave (acquiring it as its controlling terminal); the
 * parent drives it through the master: canonical editing with echo,
 * a non-canonical read with VMIN/VTIME, ^C to the foreground process
 * group, and EIO on the master once the slave side is gone.
 * Output is deterministic: no pids, no pty numbers. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static void show(const char *what, const char *buf, int n) {
    printf("%s: \"", what);
    for (int i = 0; i < n; i++) {
        unsigned char c = buf[i];
        if (c == '\n') printf("\\n");
        else if (c == '\r') printf("\\r");
        else if (c == '\b') printf("\\b");
        else if (c < 32 || c >= 127) printf("\\x%02x", c);
        else putchar(c);
    }
    printf("\"\n");
    fflush(stdout);
}

/* Reads the master one byte at a time until `until` has been seen (or
 * 5 s pass without output, or end of data); returns what was read. */
static int read_until(int m, char *buf, int cap, const char *until) {
    int n = 0;
    buf[0] = 0;
    while (n < cap - 1) {
        struct pollfd p = {m, POLLIN, 0};
        int r = poll(&p, 1, 5000);
        if (r <= 0) break;
        int k = read(m, buf + n, 1);
        if (k <= 0) break;
        n += k;
        buf[n] = 0;
        if (until && strstr(buf, until)) break;
    }
    return n;
}

static void child(const char *name) {
    if (setsid() < 0) { perror("setsid"); _exit(10); }
    int fd = open(name, O_RDWR);
    if (fd < 0) { perror("open slave"); _exit(11); }
    dup2(fd, 0); dup2(fd, 1); dup2(fd, 2);
    if (fd > 2) close(fd);
    pid_t me = getpid();
    printf("child: isatty=%d ctty=%d fg=%d sid=%d\n", isatty(0),
           open("/dev/tty", O_RDWR) >= 0, tcgetpgrp(0) == me, tcgetsid(0) == me);
    printf("ready\n");
    fflush(stdout);
    char buf[256];
    int n = read(0, buf, sizeof buf);
    printf("got %d:", n);
    for (int i = 0; i < n; i++) printf(" %02x", (unsigned char)buf[i]);
    printf("\n");
    /* Non-canonical, no echo: VMIN=0 VTIME=2 gives 0 when nothing comes. */
    struct termios t;
    tcgetattr(0, &t);
    t.c_lflag &= ~(ICANON | ECHO);
    t.c_cc[VMIN] = 0;
    t.c_cc[VTIME] = 2;
    tcsetattr(0, TCSANOW, &t);
    n = read(0, buf, sizeof buf);
    printf("timed read %d\n", n);
    t.c_cc[VMIN] = 3;
    t.c_cc[VTIME] = 0;
    tcsetattr(0, TCSANOW, &t);
    printf("raw-ready\n");
    fflush(stdout);
    n = read(0, buf, sizeof buf);
    printf("raw got %d: %.*s\n", n, n, buf);
    /* Back to canonical with echo, then wait for ^C. */
    t.c_lflag |= ICANON | ECHO;
    tcsetattr(0, TCSANOW, &t);
    printf("wait-intr\n");
    fflush(stdout);
    for (;;) pause();
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    if (m < 0) { perror("posix_openpt"); return 1; }
    printf("grantpt %d\n", grantpt(m));
    printf("unlockpt %d\n", unlockpt(m));
    char *name = ptsname(m);
    if (!name) { perror("ptsname"); return 1; }
    printf("ptsname prefix ok %d\n", strncmp(name, "/dev/pts/", 9) == 0);
    struct stat st;
    if (stat(name, &st) == 0)
        printf("slave: chr=%d mode-ok=%d major=%d\n", S_ISCHR(st.st_mode), (st.st_mode & 0600) == 0600 && !(st.st_mode & 07007), major(st.st_rdev) >= 136 && major(st.st_rdev) < 144);
    printf("master isatty=%d\n", isatty(m));
    struct winsize ws = {24, 80, 0, 0};
    printf("set winsize %d\n", ioctl(m, TIOCSWINSZ, &ws));
    /* The slave's erase character becomes ^H (through the master). */
    struct termios t;
    printf("tcgetattr(master) %d\n", tcgetattr(m, &t));
    printf("default lflag icanon=%d echo=%d isig=%d echoe=%d echok=%d echoctl=%d\n", !!(t.c_lflag & ICANON),
           !!(t.c_lflag & ECHO), !!(t.c_lflag & ISIG), !!(t.c_lflag & ECHOE), !!(t.c_lflag & ECHOK), !!(t.c_lflag & ECHOCTL));
    printf("default oflag opost=%d onlcr=%d iflag icrnl=%d vintr=%d verase=%d vkill=%d veof=%d\n", !!(t.c_oflag & OPOST),
           !!(t.c_oflag & ONLCR), !!(t.c_iflag & ICRNL), t.c_cc[VINTR], t.c_cc[VERASE], t.c_cc[VKILL], t.c_cc[VEOF]);
    t.c_cc[VERASE] = '\b';
    printf("tcsetattr(master) %d\n", tcsetattr(m, TCSANOW, &t));

    pid_t pid = fork();
    if (pid == 0) child(name);
    char buf[4096];
    int n = read_until(m, buf, sizeof buf, "ready\r\n");
    show("master got", buf, n);
    /* Canonical editing with echo. */
    write(m, "abc\b\bd\n", 7);
    n = read_until(m, buf, sizeof buf, "\r\n");
    n += read_until(m, buf + n, sizeof buf - n, "0a\r\n");
    show("echo and answer", buf, n);
    n = read_until(m, buf, sizeof buf, "raw-ready\r\n");
    show("master got", buf, n);
    write(m, "xyz", 3);
    n = read_until(m, buf, sizeof buf, "wait-intr\r\n");
    show("master got", buf, n);
    /* Kill the line, then ^C: SIGINT to the child's foreground group. */
    write(m, "zzz\x15", 4);
    n = read_until(m, buf, sizeof buf, "\b \b\b \b\b \b");
    show("kill echo", buf, n);
    write(m, "\x03", 1);
    /* The ^C echo comes after the flush that ISIG does (n_tty echoes the
     * signal character last), and stays readable after the slave closes:
     * read it before the child's end, so that when the slave's close and
     * this read happen is no part of the output. */
    n = read_until(m, buf, sizeof buf, "^C");
    show("intr echo", buf, n);
    int status = 0;
    waitpid(pid, &status, 0);
    printf("child: signaled=%d sig=%d\n", WIFSIGNALED(status), WIFSIGNALED(status) ? WTERMSIG(status) : -1);
    n = read_until(m, buf, sizeof buf, NULL);
    show("after exit", buf, n);
    errno = 0;
    char c;
    int r = read(m, &c, 1);
    printf("master read after hangup: %d %s\n", r, r < 0 ? strerror(errno) : "");
    struct pollfd p = {m, POLLIN, 0};
    r = poll(&p, 1, 0);
    printf("poll: %d revents=%#x\n", r, p.revents);
    close(m);
    return 0;
}
