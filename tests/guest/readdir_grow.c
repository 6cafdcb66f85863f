/* Lists a directory while another process adds names to it.
 *
 *   readdir_grow DIR NOLD NNEW
 *
 * Creates NOLD files (old-K), forks a child that creates NNEW more
 * (new-K, long names, so an ext4 htree directory's leaves split), and
 * lists DIR over and over with getdents64 and a small buffer (many calls
 * per listing, so the child's splits land between them) until the child
 * is done, then once more. Every listing must name no entry twice and
 * name every old-K (present throughout). Prints "ok old=NOLD" and exits 0,
 * or says what went wrong and exits 1. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* One listing: returns 0 if good. */
static int list_once(const char *dir, int nold, int pass)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) {
        printf("open %s: %s\n", dir, strerror(errno));
        return 1;
    }
    size_t cap = 1024, n = 0;
    char **names = malloc(cap * sizeof *names);
    char buf[512];
    for (;;) {
        long got = syscall(SYS_getdents64, fd, buf, sizeof buf);
        if (got < 0) {
            printf("getdents64: %s\n", strerror(errno));
            return 1;
        }
        if (got == 0)
            break;
        for (long off = 0; off < got;) {
            struct dirent64 *d = (struct dirent64 *)(buf + off);
            if (n == cap) {
                cap *= 2;
                names = realloc(names, cap * sizeof *names);
            }
            names[n++] = strdup(d->d_name);
            off += d->d_reclen;
        }
    }
    close(fd);
    qsort(names, n, sizeof *names, cmp);
    int bad = 0, old = 0;
    for (size_t k = 0; k < n; k++) {
        if (k > 0 && strcmp(names[k], names[k - 1]) == 0) {
            printf("pass %d: %s listed twice\n", pass, names[k]);
            bad = 1;
        }
        if (strncmp(names[k], "old-", 4) == 0 && (k == 0 || strcmp(names[k], names[k - 1]) != 0))
            old++;
    }
    if (old != nold) {
        printf("pass %d: %d of %d old names listed\n", pass, old, nold);
        bad = 1;
    }
    for (size_t k = 0; k < n; k++)
        free(names[k]);
    free(names);
    return bad;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: readdir_grow DIR NOLD NNEW\n");
        return 2;
    }
    const char *dir = argv[1];
    int nold = atoi(argv[2]), nnew = atoi(argv[3]);
    char path[4096];
    for (int k = 0; k < nold; k++) {
        snprintf(path, sizeof path, "%s/old-%d", dir, k);
        int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0644);
        if (fd < 0) {
            printf("create %s: %s\n", path, strerror(errno));
            return 1;
        }
        close(fd);
    }
    int go[2];
    if (pipe(go) != 0)
        return 1;
    pid_t child = fork();
    if (child == 0) {
        char c;
        close(go[1]);
        if (read(go[0], &c, 1) != 0)
            _exit(3);
        for (int k = 0; k < nnew; k++) {
            snprintf(path, sizeof path, "%s/new-%d-a-longer-name-to-fill-leaves-sooner", dir, k);
            int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0644);
            if (fd < 0)
                _exit(4);
            close(fd);
        }
        _exit(0);
    }
    close(go[0]);
    close(go[1]); /* the child starts now */
    int bad = 0, pass = 0, status = 0;
    for (;;) {
        pid_t w = waitpid(child, &status, WNOHANG);
        bad |= list_once(dir, nold, pass++);
        if (w == child)
            break;
    }
    bad |= list_once(dir, nold, pass++);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        printf("the creating child failed (status %d)\n", status);
        bad = 1;
    }
    if (!bad)
        printf("ok old=%d\n", nold);
    return bad;
}
