/* Two things nesting ruml inside ruml relies on (docs/debugging.md,
 * Nesting):
 *  holes: a MAP_SHARED read-only mapping of a memfd hole, read first,
 *  shows what is written to the file afterwards (write(2), another
 *  mapping) and, once made writable with mprotect, writes the file;
 *  a private mapping shows the file's later writes until it writes.
 *  fork: a process whose other thread keeps writing a page while the
 *  main thread forks and then has the kernel write into that same page
 *  (read(2) from a pipe) loses none of the thread's writes, and the
 *  child sees the page as it was at fork. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096

static void check(int ok, const char *what) {
    printf("%s: %s\n", what, ok ? "ok" : "FAILED");
}

static void holes(void) {
    int fd = memfd_create("hole", 0);
    if (fd < 0 || ftruncate(fd, 4 * PG) < 0) { perror("memfd"); exit(1); }
    volatile char *ro = mmap(NULL, 4 * PG, PROT_READ, MAP_SHARED, fd, 0);
    volatile char *rw = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    volatile char *pv = mmap(NULL, 4 * PG, PROT_READ, MAP_PRIVATE, fd, 0);
    if (ro == MAP_FAILED || rw == MAP_FAILED || pv == MAP_FAILED) { perror("mmap"); exit(1); }
    /* Read every hole first, through each mapping. */
    int zero = 1;
    for (int i = 0; i < 4; i++) zero &= ro[i * PG] == 0 && pv[i * PG] == 0;
    check(zero, "holes read as zeros");
    pwrite(fd, "hello", 5, 0);
    check(memcmp((const char *)ro, "hello", 5) == 0, "write(2) shows in a read-only shared mapping");
    check(memcmp((const char *)pv, "hello", 5) == 0, "write(2) shows in a private mapping");
    memcpy((char *)rw + PG, "other", 5);
    check(memcmp((const char *)ro + PG, "other", 5) == 0, "another mapping's write shows");
    if (mprotect((void *)ro, 4 * PG, PROT_READ | PROT_WRITE) < 0) { perror("mprotect"); exit(1); }
    memcpy((char *)ro + 2 * PG, "world", 5);
    char buf[6] = {0};
    pread(fd, buf, 5, 2 * PG);
    check(strcmp(buf, "world") == 0, "mprotect'ed writable mapping writes the file");
    check(memcmp((const char *)rw + 2 * PG, "world", 5) == 0, "and the other mapping sees it");
    close(fd);
}

static volatile unsigned long *page;
static atomic_int stop;
static atomic_ulong lost;

static void *writer(void *arg) {
    (void)arg;
    unsigned long n = 0;
    while (!atomic_load(&stop)) {
        page[0] = ++n;
        if (page[0] != n) atomic_fetch_add(&lost, 1);
        /* page[1] is written by the kernel (read(2)) in the main thread */
    }
    return NULL;
}

static atomic_ulong bad_kernel_write;

/* A third thread keeps the kernel writing into the page (read(2) into
 * page[2]): a copy-on-write break by the kernel while the fork's
 * write-protection is still on its way to the host is what lost the
 * writer's stores. */
static void *reader(void *arg) {
    (void)arg;
    int p[2];
    if (pipe(p) < 0) return NULL;
    unsigned long n = 0;
    while (!atomic_load(&stop)) {
        n++;
        if (write(p[1], &n, sizeof n) != sizeof n) break;
        if (read(p[0], (void *)&page[2], sizeof n) != sizeof n || page[2] != n)
            atomic_fetch_add(&bad_kernel_write, 1);
    }
    close(p[0]);
    close(p[1]);
    return NULL;
}

static void fork_while_writing(void) {
    page = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    page[0] = 0;
    pthread_t t, t2;
    pthread_create(&t, NULL, writer, NULL);
    pthread_create(&t2, NULL, reader, NULL);
    int bad_child = 0, bad_read = 0;
    for (int i = 0; i < 200; i++) {
        int p[2];
        if (pipe(p) < 0) { perror("pipe"); exit(1); }
        unsigned long v = 1000 + i;
        write(p[1], &v, sizeof v);
        pid_t c = fork();
        if (c == 0) {
            unsigned long a = page[0];
            usleep(2000);
            /* The child's copy does not move. */
            _exit(page[0] == a ? 0 : 1);
        }
        unsigned long got;
        if (read(p[0], (void *)&page[1], sizeof got) != sizeof got || page[1] != v) bad_read++;
        int st;
        waitpid(c, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) bad_child++;
        close(p[0]);
        close(p[1]);
    }
    atomic_store(&stop, 1);
    pthread_join(t, NULL);
    pthread_join(t2, NULL);
    check(atomic_load(&lost) == 0, "no write of the running thread lost across fork");
    check(bad_read == 0 && atomic_load(&bad_kernel_write) == 0,
          "the kernel's writes into the page land");
    check(bad_child == 0, "the child's page stays as it was at fork");
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    holes();
    fork_while_writing();
    return 0;
}
