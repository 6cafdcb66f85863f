/* Processes and threads made and ended concurrently, and MADV_DONTNEED's
 * contents across fork: what ruml's stub spawning, host-thread reuse and
 * in-place discarding must keep exactly as Linux has it.
 *
 *   spawn_churn [WORKERS [ROUNDS]]
 *
 * Each of WORKERS processes runs ROUNDS rounds of: fork+exec of itself
 * (argument "child N", exit status N), two threads created and joined
 * (each sums a range on its own stack), fork+exit+wait, vfork+exec.
 * Output: the DONTNEED checks, then one deterministic line per worker. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096

static int all_bytes(const char *p, size_t n, char c)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != c)
            return 0;
    return 1;
}

static void dontneed_checks(void)
{
    /* Private anonymous: written, discarded, reads zeros, writable again. */
    char *a = mmap(NULL, 64 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(a, 'a', 64 * PG);
    printf("anon discard: %d\n", madvise(a + 8 * PG, 16 * PG, MADV_DONTNEED));
    printf("anon zeros: %d kept: %d %d\n", all_bytes(a + 8 * PG, 16 * PG, 0),
           all_bytes(a, 8 * PG, 'a'), all_bytes(a + 24 * PG, 40 * PG, 'a'));
    memset(a + 8 * PG, 'b', PG);
    printf("anon rewrite: %d\n", all_bytes(a + 8 * PG, PG, 'b'));

    /* After fork the pages are shared copy-on-write: the child's discard
     * leaves the parent's data, the parent's leaves the child's. */
    int p2c[2], c2p[2];
    if (pipe(p2c) || pipe(c2p))
        exit(1);
    pid_t pid = fork();
    if (pid == 0) {
        char b;
        madvise(a, 4 * PG, MADV_DONTNEED);
        int ok = all_bytes(a, 4 * PG, 0) && all_bytes(a + 4 * PG, 4 * PG, 'a');
        if (write(c2p[1], &ok, sizeof ok) != sizeof ok || read(p2c[0], &b, 1) != 1)
            _exit(2);
        /* The parent has discarded [4, 8) meanwhile: ours stays. */
        _exit(all_bytes(a + 4 * PG, 4 * PG, 'a') ? 0 : 3);
    }
    int ok = 0;
    if (read(c2p[0], &ok, sizeof ok) != sizeof ok)
        exit(1);
    printf("child's discard: child zeros %d, parent kept %d\n", ok, all_bytes(a, 4 * PG, 'a'));
    madvise(a + 4 * PG, 4 * PG, MADV_DONTNEED);
    printf("parent's discard: parent zeros %d\n", all_bytes(a + 4 * PG, 4 * PG, 0));
    if (write(p2c[1], "g", 1) != 1)
        exit(1);
    int st;
    waitpid(pid, &st, 0);
    printf("child kept its copy: %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);

    /* Private file mapping: a written (copied) page goes back to the
     * file's contents. */
    char path[] = "/tmp/spawn_churn.XXXXXX";
    int fd = mkstemp(path);
    char buf[2 * PG];
    memset(buf, 'f', sizeof buf);
    if (fd < 0 || write(fd, buf, sizeof buf) != sizeof buf)
        exit(1);
    unlink(path);
    char *f = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    memset(f, 'w', 2 * PG);
    madvise(f, 2 * PG, MADV_DONTNEED);
    printf("private file discard reads the file: %d\n", all_bytes(f, 2 * PG, 'f'));
    close(fd);

    /* Shared anonymous: the data stays. */
    char *s = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    memset(s, 's', 4 * PG);
    madvise(s, 4 * PG, MADV_DONTNEED);
    printf("shared anon kept: %d\n", all_bytes(s, 4 * PG, 's'));
    fflush(stdout);
}

static void *summer(void *arg)
{
    long base = (long)arg;
    volatile long local[512];
    for (int i = 0; i < 512; i++)
        local[i] = base + i;
    long sum = 0;
    for (int i = 0; i < 512; i++)
        sum += local[i];
    return (void *)sum;
}

static int worker(int w, int rounds, const char *self)
{
    long threads = 0;
    int execs = 0, forks = 0, vforks = 0;
    for (int r = 0; r < rounds; r++) {
        char n[16];
        snprintf(n, sizeof n, "%d", (w * 7 + r) % 100);
        pid_t p = fork();
        if (p == 0) {
            execl(self, self, "child", n, (char *)NULL);
            _exit(127);
        }
        int st;
        if (p > 0 && waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == atoi(n))
            execs++;
        pthread_t t[2];
        for (int i = 0; i < 2; i++)
            pthread_create(&t[i], NULL, summer, (void *)(long)(w * 1000 + r * 10 + i));
        for (int i = 0; i < 2; i++) {
            void *v;
            pthread_join(t[i], &v);
            long base = w * 1000 + r * 10 + i;
            if ((long)v == 512 * base + 511 * 512 / 2)
                threads++;
        }
        p = fork();
        if (p == 0)
            _exit(r % 2);
        if (p > 0 && waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == r % 2)
            forks++;
        p = vfork();
        if (p == 0) {
            execl(self, self, "child", "3", (char *)NULL);
            _exit(127);
        }
        if (p > 0 && waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == 3)
            vforks++;
    }
    printf("worker %d: %d/%d exec, %ld/%d threads, %d/%d fork, %d/%d vfork\n", w, execs, rounds,
           threads, 2 * rounds, forks, rounds, vforks, rounds);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "child") == 0)
        return atoi(argv[2]);
    int workers = argc > 1 ? atoi(argv[1]) : 4;
    int rounds = argc > 2 ? atoi(argv[2]) : 20;
    const char *self = "/proc/self/exe";
    dontneed_checks();
    /* Each worker writes its line into its own pipe: the output's order
     * is the workers', not the scheduler's. */
    int fds[64][2];
    pid_t pids[64];
    if (workers > 64)
        workers = 64;
    for (int w = 0; w < workers; w++) {
        if (pipe(fds[w]))
            return 1;
        pids[w] = fork();
        if (pids[w] == 0) {
            dup2(fds[w][1], 1);
            _exit(worker(w, rounds, self));
        }
        close(fds[w][1]);
    }
    for (int w = 0; w < workers; w++) {
        char line[256];
        ssize_t n = read(fds[w][0], line, sizeof line - 1);
        if (n > 0)
            fwrite(line, 1, n, stdout);
        int st;
        waitpid(pids[w], &st, 0);
        printf("worker %d status %d\n", w, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    }
    return 0;
}
