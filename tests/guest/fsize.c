/* RLIMIT_FSIZE and SIGXFSZ: writes of every kind (write, pwrite, writev,
 * O_APPEND, copy_file_range, sendfile, splice) are cut at the soft limit,
 * and one starting at the limit fails with EFBIG and raises SIGXFSZ
 * (sendfile and splice crossing it raise it too when their source had
 * more to give past the limit)
 * (counted by a handler, its si_code printed); growing by ftruncate,
 * truncate or fallocate past the limit does the same; shrinking, empty
 * writes and pipes are not limited. SIGXFSZ ignored: just EFBIG; at its
 * default it kills the writer. Run in a fresh directory and, when it
 * exists, /dev/shm; the output is the same for both. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define LIM 10000

static volatile int nsig, lastcode;
static char buf[20000];

static void on_xfsz(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    nsig++;
    lastcode = si->si_code;
}

/* The output is kept in memory and printed with no limit: stdout may
 * be a regular file. */
static char out[65536];
static size_t outn;
#define say(...) (outn += snprintf(out + outn, sizeof out - outn, __VA_ARGS__))

static void show(const char *what, long r) {
    say("%-28s %ld %s sig %d%s\n", what, r, r < 0 ? strerrorname_np(errno) : "-", nsig,
        nsig ? (lastcode == SI_USER ? " SI_USER" : " other") : "");
}

static void set_limit(rlim_t l) {
    struct rlimit r = {l, RLIM_INFINITY};
    if (setrlimit(RLIMIT_FSIZE, &r) < 0)
        perror("setrlimit"), exit(1);
}

static long size_of(const char *p) {
    struct stat st;
    return stat(p, &st) < 0 ? -1 : (long)st.st_size;
}

static int fresh(const char *dir, const char *name, char *path, int flags) {
    snprintf(path, 256, "%s/%s", dir, name);
    unlink(path);
    return open(path, O_RDWR | O_CREAT | O_TRUNC | flags, 0600);
}

static void run(const char *dir) {
    char p[256], q[256];
    int fd;
    nsig = 0;
    set_limit(RLIM_INFINITY);
    /* A source file of 20000 bytes, made before the limit. */
    int src = fresh(dir, "src", q, 0);
    if (write(src, buf, sizeof buf) != sizeof buf)
        perror("src"), exit(1);
    set_limit(LIM);

    fd = fresh(dir, "w", p, 0);
    show("write 20000", write(fd, buf, 20000));
    show("write again", write(fd, buf, 10));
    show("write 0 at limit", write(fd, buf, 0));
    show("size", size_of(p));
    show("pwrite 100 at 9990", pwrite(fd, buf, 100, 9990));
    show("pwrite 1 at 10000", pwrite(fd, buf, 1, 10000));
    show("pwrite 1 at 50000", pwrite(fd, buf, 1, 50000));
    show("pwrite 10 at 9990", pwrite(fd, buf, 10, 9990));
    close(fd);

    fd = fresh(dir, "v", p, 0);
    struct iovec iov[3] = {{buf, 4000}, {buf, 4000}, {buf, 4000}};
    show("writev 12000", writev(fd, iov, 3));
    show("writev again", writev(fd, iov, 3));
    show("pwritev at 9000", pwritev(fd, iov, 3, 9000));
    show("size", size_of(p));
    close(fd);

    fd = fresh(dir, "exact", p, 0);
    show("write 9000", write(fd, buf, 9000));
    show("write 1000 (to limit)", write(fd, buf, 1000));
    show("write 1 past", write(fd, buf, 1));
    close(fd);

    fd = fresh(dir, "a", p, O_APPEND);
    show("append 9000", write(fd, buf, 9000));
    lseek(fd, 0, SEEK_SET);
    show("append 2000", write(fd, buf, 2000));
    show("append 1", write(fd, buf, 1));
    show("size", size_of(p));
    close(fd);

    fd = fresh(dir, "t", p, 0);
    show("ftruncate 10000", ftruncate(fd, LIM));
    show("ftruncate 10001", ftruncate(fd, LIM + 1));
    show("truncate 20000", truncate(p, 20000));
    show("truncate 500", truncate(p, 500));
    show("size", size_of(p));
    show("ftruncate src 15000 (shrink)", ftruncate(src, 15000));
    show("pwrite 100 at 0 of big", pwrite(src, buf, 100, 0));
    show("ftruncate src 20000", ftruncate(src, 20000));
    close(fd);

    fd = fresh(dir, "f", p, 0);
    show("fallocate 0+5000", fallocate(fd, 0, 0, 5000));
    show("fallocate 5000+6000", fallocate(fd, 0, 5000, 6000));
    show("fallocate 0+10000", fallocate(fd, 0, 0, 10000));
    show("size", size_of(p));
    close(fd);

    fd = fresh(dir, "c", p, 0);
    loff_t in = 0;
    show("copy_file_range 20000", copy_file_range(src, &in, fd, NULL, 20000, 0));
    show("copy_file_range again", copy_file_range(src, &in, fd, NULL, 100, 0));
    show("size", size_of(p));
    close(fd);

    fd = fresh(dir, "s", p, 0);
    off_t off = 0;
    show("sendfile 20000", sendfile(fd, src, &off, 20000));
    show("sendfile offset", off);
    show("sendfile again", sendfile(fd, src, &off, 100));
    close(fd);

    fd = fresh(dir, "sp", p, 0);
    int pp[2];
    if (pipe(pp) < 0)
        perror("pipe"), exit(1);
    show("pipe write 20000", write(pp[1], buf, 20000));
    show("splice 20000", splice(pp[0], NULL, fd, NULL, 20000, 0));
    show("splice again", splice(pp[0], NULL, fd, NULL, 20000, 0));
    show("left in pipe", read(pp[0], buf, sizeof buf));
    close(pp[0]);
    close(pp[1]);
    close(fd);

    /* Across the limit: the copy stops there with the count; SIGXFSZ
     * only when the source had more to give (Linux's splice loops try
     * one more write then), EFBIG once at the limit. */
    fd = fresh(dir, "x", p, 0);
    if (pipe(pp) < 0)
        perror("pipe"), exit(1);
    show("pipe write 500", write(pp[1], buf, 500));
    lseek(fd, LIM - 500, SEEK_SET);
    show("splice 5000, pipe empties", splice(pp[0], NULL, fd, NULL, 5000, 0));
    show("pipe write 1000", write(pp[1], buf, 1000));
    lseek(fd, LIM - 500, SEEK_SET);
    show("splice 500 of 1000", splice(pp[0], NULL, fd, NULL, 500, 0));
    lseek(fd, LIM - 500, SEEK_SET);
    show("splice 1000 of 500 left", splice(pp[0], NULL, fd, NULL, 1000, 0));
    show("pipe write 1000", write(pp[1], buf, 1000));
    lseek(fd, LIM - 500, SEEK_SET);
    show("splice 1000 of 1000", splice(pp[0], NULL, fd, NULL, 1000, 0));
    show("splice 0 at limit", splice(pp[0], NULL, fd, NULL, 0, 0));
    show("splice 10 at limit", splice(pp[0], NULL, fd, NULL, 10, 0));
    loff_t o2 = LIM - 10;
    show("splice at offset 9990", splice(pp[0], NULL, fd, &o2, 1000, 0));
    show("offset", (long)o2);
    show("left in pipe", read(pp[0], buf, sizeof buf));
    close(pp[1]);
    show("splice, no writer, empty", splice(pp[0], NULL, fd, &o2, 1000, 0));
    close(pp[0]);
    long srcsize = size_of(q);
    show("source size", srcsize);
    off = srcsize - 500;
    lseek(fd, LIM - 500, SEEK_SET);
    show("sendfile to the source's end", sendfile(fd, src, &off, 5000));
    off = 0;
    lseek(fd, LIM - 500, SEEK_SET);
    show("sendfile 500 to the limit", sendfile(fd, src, &off, 500));
    off = 0;
    lseek(fd, LIM - 500, SEEK_SET);
    show("sendfile 501", sendfile(fd, src, &off, 501));
    show("sendfile offset", off);
    show("sendfile 0 at limit", sendfile(fd, src, &off, 0));
    lseek(src, srcsize - 300, SEEK_SET);
    lseek(fd, LIM - 500, SEEK_SET);
    show("sendfile, no offset, 300 left", sendfile(fd, src, NULL, 5000));
    lseek(src, 0, SEEK_SET);
    lseek(fd, LIM - 500, SEEK_SET);
    show("sendfile, no offset, 5000", sendfile(fd, src, NULL, 5000));
    show("source position", (long)lseek(src, 0, SEEK_CUR));
    in = 0;
    loff_t o3 = LIM - 500;
    show("copy_file_range 5000", copy_file_range(src, &in, fd, &o3, 5000, 0));
    show("offsets", (long)(in * 100000 + o3));
    show("copy_file_range at limit", copy_file_range(src, &in, fd, &o3, 5000, 0));
    show("copy_file_range 0 at limit", copy_file_range(src, &in, fd, &o3, 0, 0));
    in = srcsize - 200;
    o3 = LIM - 500;
    show("copy_file_range to the end", copy_file_range(src, &in, fd, &o3, 5000, 0));
    in = srcsize;
    show("copy_file_range at the end", copy_file_range(src, &in, fd, &o3, 5000, 0));
    o3 = LIM;
    show("copy_file_range, end, limit", copy_file_range(src, &in, fd, &o3, 5000, 0));
    show("size", size_of(p));
    close(fd);

    /* SIGXFSZ ignored: EFBIG alone. */
    signal(SIGXFSZ, SIG_IGN);
    fd = fresh(dir, "ign", p, 0);
    show("ignored: write 20000", write(fd, buf, 20000));
    show("ignored: write again", write(fd, buf, 1));
    show("ignored: ftruncate 20000", ftruncate(fd, 20000));
    close(fd);

    /* A limit of 0. */
    struct sigaction sa = {.sa_sigaction = on_xfsz, .sa_flags = SA_SIGINFO};
    sigaction(SIGXFSZ, &sa, NULL);
    set_limit(0);
    fd = fresh(dir, "zero", p, 0);
    show("limit 0: write 0", write(fd, buf, 0));
    show("limit 0: write 1", write(fd, buf, 1));
    show("limit 0: ftruncate 0", ftruncate(fd, 0));
    show("limit 0: ftruncate 1", ftruncate(fd, 1));
    if (pipe(pp) < 0)
        perror("pipe"), exit(1);
    show("limit 0: pipe write 100", write(pp[1], buf, 100));
    close(pp[0]);
    close(pp[1]);
    int dn = open("/dev/null", O_WRONLY);
    show("limit 0: /dev/null write", write(dn, buf, 100));
    close(dn);
    close(fd);

    /* At its default, SIGXFSZ kills the writer. */
    pid_t c = fork();
    if (c == 0) {
        struct rlimit core = {0, 0};
        setrlimit(RLIMIT_CORE, &core);
        signal(SIGXFSZ, SIG_DFL);
        int f2 = open(p, O_WRONLY);
        write(f2, buf, 1);
        _exit(0);
    }
    int st;
    waitpid(c, &st, 0);
    say("child: %s %d core %d\n", WIFSIGNALED(st) ? "signal" : "exit",
           WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st), WIFSIGNALED(st) ? WCOREDUMP(st) : 0);

    set_limit(RLIM_INFINITY);
    close(src);
    const char *names[] = {"src", "w", "v", "exact", "a", "t", "f", "c", "s", "sp", "x", "ign", "zero"};
    for (unsigned i = 0; i < sizeof names / sizeof *names; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    memset(buf, 'x', sizeof buf);
    struct sigaction sa = {.sa_sigaction = on_xfsz, .sa_flags = SA_SIGINFO};
    sigaction(SIGXFSZ, &sa, NULL);
    char dir[] = "/tmp/ruml-fsize.XXXXXX";
    if (!mkdtemp(dir))
        perror("mkdtemp"), exit(1);
    say("== directory\n");
    run(dir);
    rmdir(dir);
    struct stat st;
    char shm[] = "/dev/shm/ruml-fsize.XXXXXX";
    say("== /dev/shm or a second directory\n");
    if (stat("/dev/shm", &st) == 0 && mkdtemp(shm)) {
        sigaction(SIGXFSZ, &sa, NULL);
        run(shm);
        rmdir(shm);
    } else {
        sigaction(SIGXFSZ, &sa, NULL);
        run(dir[0] && mkdtemp(strcpy(dir, "/tmp/ruml-fsize.XXXXXX")) ? dir : "/tmp");
        rmdir(dir);
    }
    say("== done\n");
    fwrite(out, 1, outn, stdout);
    return 0;
}
