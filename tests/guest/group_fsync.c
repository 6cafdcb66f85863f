/* Concurrent fsyncs (group commit), for crates/ruml/tests/disks_group_commit.rs.
 *
 *   group_fsync write DIR   PROCS processes of THREADS threads, each with
 *                           its own file DIR/wN: RECS 4 KiB records
 *                           appended with an fsync after each, then each
 *                           record rewritten in place with fsync or
 *                           fdatasync after each; prints ALL-SYNCED when
 *                           every writer's last fsync has returned, then
 *                           keeps writing a scratch file unsynced until
 *                           it is killed.
 *   group_fsync check DIR   every record of every file is the rewritten
 *                           one ("wN ok"), then 200 fsyncs of a file
 *                           with nothing new ("refsync done").
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROCS 3
#define THREADS 2
#define RECS 40
#define REC 4096

static const char *dir;

static void fill(char *b, int w, int k, int pass)
{
    for (int i = 0; i < REC; i++)
        b[i] = (char)(w * 31 + k * 7 + pass * 13 + i);
}

static void die(const char *what, int w)
{
    printf("writer %d: %s: %s\n", w, what, strerror(errno));
    fflush(stdout);
    exit(1);
}

static void *writer(void *arg)
{
    int w = (int)(long)arg;
    char path[4200], buf[REC];
    snprintf(path, sizeof path, "%s/w%d", dir, w);
    int fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0644);
    if (fd < 0)
        die("open", w);
    for (int k = 0; k < RECS; k++) {
        fill(buf, w, k, 0);
        if (write(fd, buf, REC) != REC)
            die("write", w);
        if (fsync(fd) != 0)
            die("fsync", w);
    }
    for (int k = 0; k < RECS; k++) {
        fill(buf, w, k, 1);
        if (pwrite(fd, buf, REC, (off_t)k * REC) != REC)
            die("pwrite", w);
        if ((k % 2 ? fdatasync(fd) : fsync(fd)) != 0)
            die("fsync (rewrite)", w);
    }
    close(fd);
    return NULL;
}

static int do_write(void)
{
    for (int p = 0; p < PROCS; p++) {
        pid_t pid = fork();
        if (pid < 0)
            die("fork", -1);
        if (pid == 0) {
            pthread_t t[THREADS];
            for (int i = 0; i < THREADS; i++)
                if (pthread_create(&t[i], NULL, writer, (void *)(long)(p * THREADS + i)) != 0)
                    die("pthread_create", p);
            for (int i = 0; i < THREADS; i++)
                pthread_join(t[i], NULL);
            _exit(0);
        }
    }
    int ok = 1, st;
    for (int p = 0; p < PROCS; p++)
        if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            ok = 0;
    if (!ok) {
        printf("a writer failed\n");
        return 1;
    }
    printf("ALL-SYNCED\n");
    fflush(stdout);
    /* Unsynced work in flight when the kill comes. */
    char path[4200], buf[REC];
    snprintf(path, sizeof path, "%s/scratch", dir);
    int fd = open(path, O_CREAT | O_RDWR, 0644);
    for (long k = 0; fd >= 0; k++) {
        fill(buf, 99, (int)k, 2);
        if (pwrite(fd, buf, REC, (k % 256) * REC) != REC)
            break;
        if (k % 64 == 0)
            usleep(2000);
    }
    for (;;)
        pause();
}

static int do_check(void)
{
    char path[4200], want[REC], got[REC];
    int bad = 0;
    for (int w = 0; w < PROCS * THREADS; w++) {
        snprintf(path, sizeof path, "%s/w%d", dir, w);
        int fd = open(path, O_RDONLY);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0) {
            printf("w%d missing\n", w);
            bad = 1;
            continue;
        }
        int ok = st.st_size == (off_t)RECS * REC;
        for (int k = 0; ok && k < RECS; k++) {
            fill(want, w, k, 1);
            ok = pread(fd, got, REC, (off_t)k * REC) == REC && memcmp(got, want, REC) == 0;
            if (!ok)
                printf("w%d record %d differs\n", w, k);
        }
        close(fd);
        printf("w%d %s\n", w, ok ? "ok" : "BAD");
        bad |= !ok;
    }
    snprintf(path, sizeof path, "%s/w0", dir);
    int fd = open(path, O_RDWR);
    for (int k = 0; fd >= 0 && k < 200; k++)
        if (fsync(fd) != 0)
            die("refsync", 0);
    if (fd >= 0)
        close(fd);
    printf("refsync done\n");
    return bad;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: group_fsync write|check DIR\n");
        return 2;
    }
    dir = argv[2];
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (strcmp(argv[1], "write") == 0)
        return do_write();
    return do_check();
}
