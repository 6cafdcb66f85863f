/* Hostile input to System V IPC and POSIX message queues: absurd sizes and
 * counts, bad pointers, the same key created by many processes at once,
 * and IPC_RMID racing with use by several processes (waiters woken with
 * EIDRM, users see only EIDRM or EINVAL). Every line is Linux's errno;
 * run natively and under ruml, outputs compared. Objects are private or
 * keyed by the pid, and removed at the end. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

union semun {
    int val;
    struct semid_ds *buf;
    unsigned short *array;
};

struct mbuf {
    long mtype;
    char text[64];
};

static int failed;

#define SHOW(what, call)                                                       \
    do {                                                                       \
        errno = 0;                                                             \
        long r_ = (long)(call);                                                \
        printf("%s: %s\n", what, r_ == -1 ? strerrorname_np(errno) : "ok");   \
    } while (0)

#define CHECK(c)                                                               \
    do {                                                                       \
        if (!(c)) {                                                            \
            printf("FAIL line %d: %s (%s)\n", __LINE__, #c, strerrorname_np(errno)); \
            failed = 1;                                                        \
        }                                                                      \
    } while (0)

static int status_of(pid_t p) {
    int st;
    if (waitpid(p, &st, 0) != p)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Liveness only: waits until cond() holds, up to about 60 s. */
static int wait_until(int (*cond)(long), long arg) {
    for (int i = 0; i < 60000; i++) {
        if (cond(arg))
            return 1;
        usleep(1000);
    }
    return 0;
}

static void sizes_and_counts(void) {
    printf("-- sizes and counts\n");
    SHOW("semget nsems 32001", semget(IPC_PRIVATE, 32001, 0600));
    SHOW("semget nsems -1", semget(IPC_PRIVATE, -1, 0600));
    SHOW("semget nsems 0 private", semget(IPC_PRIVATE, 0, 0600));
    int s = semget(IPC_PRIVATE, 3, 0600);
    struct sembuf op = {0, 1, 0};
    SHOW("semop nsops 0", semop(s, &op, 0));
    SHOW("semop nsops 501", semop(s, &op, 501));
    struct sembuf big = {0, 32767, 0};
    SHOW("semop to 32767", semop(s, &big, 1));
    SHOW("semop past SEMVMX", semop(s, &op, 1));
    union semun u = {.val = 32768};
    SHOW("SETVAL 32768", semctl(s, 1, SETVAL, u));
    u.val = -1;
    SHOW("SETVAL -1", semctl(s, 1, SETVAL, u));
    SHOW("GETVAL semnum 3", semctl(s, 3, GETVAL));
    SHOW("GETVAL semnum -1", semctl(s, -1, GETVAL));
    SHOW("semctl cmd 999", semctl(s, 0, 999));
    SHOW("semctl id -1", semctl(-1, 0, GETVAL));
    struct sembuf slow = {1, -1, 0};
    struct timespec badts = {0, 1000000000};
    SHOW("semtimedop bad timeout", semtimedop(s, &slow, 1, &badts));
    struct timespec negts = {-1, 0};
    SHOW("semtimedop negative timeout", semtimedop(s, &slow, 1, &negts));
    CHECK(semctl(s, 0, IPC_RMID) == 0);

    int q = msgget(IPC_PRIVATE, 0600);
    struct mbuf m = {1, "x"};
    static char huge[70000];
    ((struct mbuf *)huge)->mtype = 1;
    SHOW("msgsnd 8193 bytes", msgsnd(q, huge, 8193, IPC_NOWAIT));
    SHOW("msgsnd size -1", msgsnd(q, &m, (size_t)-1, IPC_NOWAIT));
    m.mtype = 0;
    SHOW("msgsnd mtype 0", msgsnd(q, &m, 1, IPC_NOWAIT));
    m.mtype = -5;
    SHOW("msgsnd mtype -5", msgsnd(q, &m, 1, IPC_NOWAIT));
    SHOW("msgrcv size -1", msgrcv(q, &m, (size_t)-1, 0, IPC_NOWAIT));
    SHOW("msgrcv bad flags", msgrcv(q, &m, 8, 0, 0x7000000 | IPC_NOWAIT));
    SHOW("msgctl cmd 999", msgctl(q, 999, NULL));
    SHOW("msgget bad id use", msgsnd(0x7fffffff, &m, 1, IPC_NOWAIT));
    /* fill the queue to msgmnb: then EAGAIN, nothing unbounded */
    m.mtype = 1;
    int n = 0;
    while (msgsnd(q, huge, 8192, IPC_NOWAIT) == 0 && n < 100)
        n++;
    printf("queue full after %d messages: %s\n", n, strerrorname_np(errno));
    /* a message received into a bad buffer is EFAULT */
    SHOW("msgrcv into bad pointer", msgrcv(q, (void *)8, 8192, 0, IPC_NOWAIT));
    CHECK(msgctl(q, IPC_RMID, NULL) == 0);

    SHOW("shmget size 0", shmget(IPC_PRIVATE, 0, 0600));
    SHOW("shmget size 2^62", shmget(IPC_PRIVATE, 1UL << 62, 0600));
    int sh = shmget(IPC_PRIVATE, 8192, 0600);
    SHOW("shmat unaligned", (long)shmat(sh, (void *)0x10000123, 0));
    SHOW("shmat SHM_REMAP without address", (long)shmat(sh, NULL, SHM_REMAP));
    SHOW("shmat bad flags id", (long)shmat(-1, NULL, 0));
    SHOW("shmat above the user space", (long)shmat(sh, (void *)0xffff800000000000UL, 0));
    SHOW("shmdt not attached", shmdt((void *)0x10000000));
    SHOW("shmdt unaligned", shmdt((void *)0x10000001));
    SHOW("shmctl cmd 999", shmctl(sh, 999, NULL));
    SHOW("shmctl IPC_STAT bad pointer", shmctl(sh, IPC_STAT, (void *)8));
    CHECK(shmctl(sh, IPC_RMID, NULL) == 0);
}

static int go[2];

/* n processes create `key` at once with IPC_EXCL: one wins, the others
 * see EEXIST. Returns the number of winners. */
static int collide(int kind, key_t key, int n) {
    if (pipe(go))
        return -1;
    pid_t kids[16];
    for (int i = 0; i < n; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            char c;
            close(go[1]);
            if (read(go[0], &c, 1) != 0)
                _exit(3);
            int r = kind == 0   ? msgget(key, IPC_CREAT | IPC_EXCL | 0600)
                    : kind == 1 ? semget(key, 2, IPC_CREAT | IPC_EXCL | 0600)
                                : shmget(key, 4096, IPC_CREAT | IPC_EXCL | 0600);
            _exit(r >= 0 ? 0 : errno == EEXIST ? 1 : 2);
        }
    }
    close(go[0]);
    close(go[1]);
    int wins = 0, other = 0;
    for (int i = 0; i < n; i++) {
        int st = status_of(kids[i]);
        if (st == 0)
            wins++;
        else if (st != 1)
            other++;
    }
    return other ? -other : wins;
}

static void key_collisions(void) {
    printf("-- key collisions\n");
    key_t base = 0x5a000000 | ((getpid() & 0xfffff) << 2);
    printf("msgget winners: %d\n", collide(0, base, 8));
    printf("semget winners: %d\n", collide(1, base + 1, 8));
    printf("shmget winners: %d\n", collide(2, base + 2, 8));
    int q = msgget(base, 0);
    int s = semget(base + 1, 0, 0);
    int m = shmget(base + 2, 0, 0);
    CHECK(q >= 0 && s >= 0 && m >= 0);
    /* the key of one kind says nothing of the others */
    SHOW("semget on the msg key", semget(base, 1, 0600));
    SHOW("semget existing, more sems", semget(base + 1, 3, 0600));
    SHOW("shmget existing, larger", shmget(base + 2, 8192, 0600));
    msgctl(q, IPC_RMID, NULL);
    semctl(s, 0, IPC_RMID);
    shmctl(m, IPC_RMID, NULL);
    SHOW("msgget after removal", msgget(base, 0));
}

static int sem_id;
static int ncnt_is(long want) {
    return semctl(sem_id, 0, GETNCNT) == want && semctl(sem_id, 1, GETZCNT) == want;
}

/* Several processes blocked on one set: IPC_RMID wakes each with EIDRM. */
static void rmid_wakes_waiters(void) {
    printf("-- IPC_RMID and waiters\n");
    sem_id = semget(IPC_PRIVATE, 2, 0600);
    union semun u = {.val = 1};
    semctl(sem_id, 1, SETVAL, u);
    pid_t kids[6];
    for (int i = 0; i < 6; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            struct sembuf down = {0, -1, 0}, zero = {1, 0, 0};
            int r = i % 2 ? semop(sem_id, &down, 1) : semop(sem_id, &zero, 1);
            _exit(r == -1 && errno == EIDRM ? 0 : 1);
        }
    }
    CHECK(wait_until(ncnt_is, 3));
    CHECK(semctl(sem_id, 0, IPC_RMID) == 0);
    int ok = 0;
    for (int i = 0; i < 6; i++)
        ok += status_of(kids[i]) == 0;
    printf("waiters woken with EIDRM: %d of 6\n", ok);
}

/* Several processes use a queue, a set and a segment while the parent
 * removes them: each sees only success, EAGAIN/ENOMSG, or EIDRM/EINVAL. */
static volatile long *progress;
static int progress_at_least(long n) {
    return *progress >= n;
}

static void rmid_races_use(void) {
    printf("-- IPC_RMID racing with use\n");
    progress = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    int q = msgget(IPC_PRIVATE, 0600);
    int s = semget(IPC_PRIVATE, 1, 0600);
    int m = shmget(IPC_PRIVATE, 65536, 0600);
    pid_t kids[4];
    for (int i = 0; i < 4; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            int gone = 0, bad = 0;
            struct mbuf b = {1, "x"};
            while (gone != 7 && !bad) {
                if (!(gone & 1)) {
                    int r = msgsnd(q, &b, 8, IPC_NOWAIT);
                    if (r == 0)
                        r = msgrcv(q, &b, sizeof b.text, 0, IPC_NOWAIT);
                    if (r < 0 && (errno == EIDRM || errno == EINVAL))
                        gone |= 1;
                    else if (r < 0 && errno != EAGAIN && errno != ENOMSG)
                        bad = errno;
                }
                if (!(gone & 2)) {
                    struct sembuf ops[2] = {{0, 1, 0}, {0, -1, IPC_NOWAIT}};
                    int r = semop(s, ops, 2);
                    if (r < 0 && (errno == EIDRM || errno == EINVAL))
                        gone |= 2;
                    else if (r < 0 && errno != EAGAIN)
                        bad = errno;
                }
                if (!(gone & 4)) {
                    char *p = shmat(m, NULL, 0);
                    if (p == (void *)-1) {
                        if (errno == EIDRM || errno == EINVAL)
                            gone |= 4;
                        else
                            bad = errno;
                    } else {
                        p[i * 100] = 1;
                        if (shmdt(p) != 0)
                            bad = errno;
                    }
                }
                __atomic_fetch_add(progress, 1, __ATOMIC_SEQ_CST);
            }
            if (bad)
                printf("child %d: unexpected %s\n", i, strerrorname_np(bad));
            fflush(stdout);
            _exit(bad ? 1 : 0);
        }
    }
    CHECK(wait_until(progress_at_least, 400));
    CHECK(msgctl(q, IPC_RMID, NULL) == 0);
    CHECK(semctl(s, 0, IPC_RMID) == 0);
    CHECK(shmctl(m, IPC_RMID, NULL) == 0);
    int ok = 0;
    for (int i = 0; i < 4; i++)
        ok += status_of(kids[i]) == 0;
    printf("users that saw only Linux's errors: %d of 4\n", ok);
    /* removed while attached: the segment lives on for its user */
    m = shmget(IPC_PRIVATE, 4096, 0600);
    char *p = shmat(m, NULL, 0);
    CHECK(shmctl(m, IPC_RMID, NULL) == 0);
    p[0] = 42;
    struct shmid_ds ds;
    CHECK(shmctl(m, IPC_STAT, &ds) == 0);
    printf("attached after RMID: nattch %lu dest %d\n", (unsigned long)ds.shm_nattch,
           !!(ds.shm_perm.mode & SHM_DEST));
    CHECK(shmdt(p) == 0);
    SHOW("shmctl after last detach", shmctl(m, IPC_STAT, &ds));
}

static void message_queues(void) {
    printf("-- POSIX message queues\n");
    char name[64], longname[300];
    snprintf(name, sizeof name, "/ruml-hostile-%d", getpid());
    memset(longname, 'a', sizeof longname);
    longname[0] = '/';
    longname[sizeof longname - 1] = 0;
    struct mq_attr a = {.mq_maxmsg = 0, .mq_msgsize = 16};
    SHOW("mq_open maxmsg 0", mq_open(name, O_CREAT | O_RDWR, 0600, &a));
    a.mq_maxmsg = 1 << 30;
    SHOW("mq_open maxmsg 2^30", mq_open(name, O_CREAT | O_RDWR, 0600, &a));
    a.mq_maxmsg = 4;
    a.mq_msgsize = 1L << 40;
    SHOW("mq_open msgsize 2^40", mq_open(name, O_CREAT | O_RDWR, 0600, &a));
    a.mq_msgsize = -1;
    SHOW("mq_open msgsize -1", mq_open(name, O_CREAT | O_RDWR, 0600, &a));
    SHOW("mq_open long name", mq_open(longname, O_CREAT | O_RDWR, 0600, NULL));
    SHOW("mq_open bad name pointer", syscall(SYS_mq_open, (void *)8, O_RDONLY, 0, NULL));
    SHOW("mq_open bad attr pointer", syscall(SYS_mq_open, name + 1, O_CREAT | O_RDWR, 0600, (void *)8));
    SHOW("mq_unlink missing", mq_unlink(name));
    a.mq_msgsize = 16;
    mqd_t q = mq_open(name, O_CREAT | O_EXCL | O_RDWR, 0600, &a);
    CHECK(q != (mqd_t)-1);
    SHOW("mq_open O_EXCL again", mq_open(name, O_CREAT | O_EXCL | O_RDWR, 0600, &a));
    char buf[64] = "hello";
    SHOW("mq_send too long", mq_send(q, buf, 17, 0));
    SHOW("mq_send prio 32768", mq_send(q, buf, 1, 32768));
    SHOW("mq_send bad pointer", mq_send(q, (void *)8, 8, 0));
    SHOW("mq_receive small buffer", mq_receive(q, buf, 15, NULL));
    struct timespec bad = {0, -1};
    SHOW("mq_timedreceive empty, bad timeout", mq_timedreceive(q, buf, 64, NULL, &bad));
    for (int i = 0; i < 4; i++)
        CHECK(mq_send(q, buf, 5, i) == 0);
    SHOW("mq_timedsend full, bad timeout", mq_timedsend(q, buf, 5, 0, &bad));
    SHOW("mq_timedsend full, bad pointer", mq_timedsend(q, buf, 5, 0, (void *)8));
    SHOW("mq_receive into bad pointer", syscall(SYS_mq_timedreceive, q, (void *)8, 64, NULL, NULL));
    SHOW("mq_getsetattr bad pointer", syscall(SYS_mq_getsetattr, q, (void *)8, NULL));
    SHOW("mq_notify bad pointer", syscall(SYS_mq_notify, q, (void *)8));
    SHOW("mq_send on a non-queue fd", mq_send(0, buf, 1, 0));
    struct mq_attr got;
    CHECK(mq_getattr(q, &got) == 0);
    printf("messages left: %ld\n", got.mq_curmsgs);
    CHECK(mq_close(q) == 0);
    CHECK(mq_unlink(name) == 0);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    sizes_and_counts();
    key_collisions();
    rmid_wakes_waiters();
    rmid_races_use();
    message_queues();
    if (!failed)
        printf("result: OK\n");
    return failed;
}
