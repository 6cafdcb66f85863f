/* System V IPC: message queues, semaphores, shared memory. Success paths
 * and Linux's errors, blocking calls woken by another process (a message,
 * a semaphore change, IPC_RMID, a signal), SEM_UNDO at exit, shared memory
 * across fork and exec, /proc/PID/maps and /proc/sysvipc.
 * Prints no ids, keys, pids, addresses or times. With argument "perm"
 * (run as root) it checks the permission rules after dropping to uid 65534.
 * Every object is private or keyed by the pid, and removed at the end. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int failed;
#define CHECK(c) do { if (c) printf("ok: %s\n", #c); else { printf("FAIL: %s (%s)\n", #c, strerrorname_np(errno)); failed = 1; } } while (0)
#define ERR(call, e) do { errno = 0; long r_ = (long)(call); if (r_ == -1 && errno == (e)) printf("ok: %s -> %s\n", #call, #e); else { printf("FAIL: %s -> %ld %s (want %s)\n", #call, r_, strerrorname_np(errno), #e); failed = 1; } } while (0)

union semun { int val; struct semid_ds *buf; unsigned short *array; struct seminfo *__buf; };

struct mbuf { long mtype; char mtext[64]; };

static void on_sig(int s) { (void)s; }

static long read_proc_long(const char *path) {
    FILE *f = fopen(path, "r");
    long v = -1;
    if (f) { if (fscanf(f, "%ld", &v) != 1) v = -1; fclose(f); }
    return v;
}

static int child_status(pid_t p) {
    int st;
    if (waitpid(p, &st, 0) != p) return -1;
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    return 128 + WTERMSIG(st);
}

/* Waits until `n` tasks sleep on semaphore `num` (GETNCNT or GETZCNT). */
static int wait_cnt(int id, int num, int cmd, int n) {
    for (int i = 0; i < 200000; i++) {
        if (semctl(id, num, cmd) == n) return 1;
        usleep(1000);
    }
    return 0;
}

/* Sends SIGUSR1 to `p` until it exits; returns its status. */
static int poke_until_exit(pid_t p) {
    for (;;) {
        int st;
        pid_t r = waitpid(p, &st, WNOHANG);
        if (r == p) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        kill(p, SIGUSR1);
        usleep(20000);
    }
}

static void msg_tests(void) {
    printf("-- msg\n");
    int q = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    CHECK(q >= 0);
    struct mbuf m;
    long types[] = {3, 1, 2, 5, 2};
    for (int i = 0; i < 5; i++) {
        m.mtype = types[i];
        snprintf(m.mtext, sizeof m.mtext, "msg%d-type%ld", i, types[i]);
        CHECK(msgsnd(q, &m, strlen(m.mtext) + 1, 0) == 0);
    }
    struct msqid_ds ds;
    CHECK(msgctl(q, IPC_STAT, &ds) == 0);
    printf("qnum %lu cbytes %lu qbytes %lu mode %o lspid-is-me %d lrpid %d\n", (unsigned long)ds.msg_qnum,
           (unsigned long)ds.msg_cbytes, (unsigned long)ds.msg_qbytes, ds.msg_perm.mode & 0777,
           ds.msg_lspid == getpid(), ds.msg_lrpid);
    CHECK(ds.msg_qbytes == (unsigned long)read_proc_long("/proc/sys/kernel/msgmnb"));
    /* MSG_COPY: the message at an index, left in place. */
    ssize_t n = msgrcv(q, &m, sizeof m.mtext, 1, MSG_COPY | IPC_NOWAIT);
    printf("copy #1: %zd type %ld %s\n", n, m.mtype, m.mtext);
    ERR(msgrcv(q, &m, sizeof m.mtext, 9, MSG_COPY | IPC_NOWAIT), ENOMSG);
    ERR(msgrcv(q, &m, sizeof m.mtext, 1, MSG_COPY), EINVAL);
    ERR(msgrcv(q, &m, sizeof m.mtext, 1, MSG_COPY | MSG_EXCEPT | IPC_NOWAIT), EINVAL);
    n = msgrcv(q, &m, sizeof m.mtext, 2, 0);
    printf("type 2: %zd %s\n", n, m.mtext);
    n = msgrcv(q, &m, sizeof m.mtext, -4, 0);
    printf("type <= 4: %zd type %ld %s\n", n, m.mtype, m.mtext);
    n = msgrcv(q, &m, sizeof m.mtext, 3, MSG_EXCEPT);
    printf("type != 3: %zd type %ld %s\n", n, m.mtype, m.mtext);
    ERR(msgrcv(q, &m, 3, 0, 0), E2BIG);
    n = msgrcv(q, &m, 3, 0, MSG_NOERROR);
    printf("truncated: %zd type %ld %.3s\n", n, m.mtype, m.mtext);
    n = msgrcv(q, &m, sizeof m.mtext, 0, 0);
    printf("any: %zd type %ld %s\n", n, m.mtype, m.mtext);
    ERR(msgrcv(q, &m, sizeof m.mtext, 0, IPC_NOWAIT), ENOMSG);
    CHECK(msgctl(q, IPC_STAT, &ds) == 0);
    printf("after: qnum %lu cbytes %lu lrpid-is-me %d\n", (unsigned long)ds.msg_qnum,
           (unsigned long)ds.msg_cbytes, ds.msg_lrpid == getpid());
    /* Errors. */
    m.mtype = 0;
    ERR(msgsnd(q, &m, 4, 0), EINVAL);
    m.mtype = 1;
    ERR(msgsnd(q, &m, (size_t)read_proc_long("/proc/sys/kernel/msgmax") + 1, 0), EINVAL);
    ERR(msgsnd(q, (void *)8, 4, 0), EFAULT);
    ERR(msgsnd(-1, &m, 4, 0), EINVAL);
    ERR(msgrcv(q, &m, (size_t)-1, 0, IPC_NOWAIT), EINVAL);
    ERR(msgctl(q, 999, &ds), EINVAL);
    ERR(msgctl(q, IPC_STAT, (void *)8), EFAULT);
    /* A full queue. */
    ds.msg_qbytes = 10;
    CHECK(msgctl(q, IPC_SET, &ds) == 0);
    CHECK(msgsnd(q, &m, 8, IPC_NOWAIT) == 0);
    ERR(msgsnd(q, &m, 8, IPC_NOWAIT), EAGAIN);
    CHECK(msgctl(q, IPC_STAT, &ds) == 0 && ds.msg_qbytes == 10);
    /* Limits. */
    struct msginfo mi;
    CHECK(msgctl(0, IPC_INFO, (struct msqid_ds *)&mi) >= 0);
    CHECK(mi.msgmax == read_proc_long("/proc/sys/kernel/msgmax"));
    CHECK(mi.msgmnb == read_proc_long("/proc/sys/kernel/msgmnb"));
    CHECK(mi.msgmni == read_proc_long("/proc/sys/kernel/msgmni"));
    printf("msgssz %d msgseg %d\n", mi.msgssz, mi.msgseg);
    int maxidx = msgctl(0, MSG_INFO, (struct msqid_ds *)&mi);
    CHECK(maxidx >= 0 && mi.msgpool >= 1);
    /* MSG_STAT by index finds our queue somewhere at or below maxidx. */
    int found = 0;
    for (int i = 0; i <= maxidx; i++)
        if (msgctl(i, MSG_STAT, &ds) == q) found = 1;
    CHECK(found);
    CHECK(msgctl(q, IPC_RMID, NULL) == 0);
    ERR(msgsnd(q, &m, 4, IPC_NOWAIT), EINVAL);
    ERR(msgctl(q, IPC_RMID, NULL), EINVAL);

    /* Keys. */
    key_t key = 0x52000000 | (getpid() & 0xffffff);
    ERR(msgget(key, 0600), ENOENT);
    int k = msgget(key, IPC_CREAT | 0600);
    CHECK(k >= 0);
    ERR(msgget(key, IPC_CREAT | IPC_EXCL | 0600), EEXIST);
    CHECK(msgget(key, 0) == k);
    CHECK(msgget(key, IPC_CREAT | 0600) == k);
    CHECK(msgctl(k, IPC_STAT, &ds) == 0 && ds.msg_perm.__key == key);
    CHECK(msgctl(k, IPC_RMID, NULL) == 0);

    /* A blocked receiver is woken by a message. */
    q = msgget(IPC_PRIVATE, 0600);
    pid_t p = fork();
    if (p == 0) {
        struct mbuf r;
        ssize_t got = msgrcv(q, &r, sizeof r.mtext, 7, 0);
        _exit(got == 8 && strcmp(r.mtext, "wake up") == 0 ? 0 : 1);
    }
    usleep(100000);
    m.mtype = 7;
    strcpy(m.mtext, "wake up");
    int sent = msgsnd(q, &m, 8, 0);
    CHECK(child_status(p) == 0 && sent == 0);
    /* ... interrupted by a signal (EINTR, even with SA_RESTART) ... */
    p = fork();
    if (p == 0) {
        struct sigaction sa = {.sa_handler = on_sig, .sa_flags = SA_RESTART};
        sigaction(SIGUSR1, &sa, NULL);
        struct mbuf r;
        errno = 0;
        ssize_t got = msgrcv(q, &r, sizeof r.mtext, 7, 0);
        printf("child msgrcv: %zd %s\n", got, strerrorname_np(errno));
        fflush(stdout);
        _exit(0);
    }
    CHECK(poke_until_exit(p) == 0);
    /* ... and by the queue's removal. */
    p = fork();
    if (p == 0) {
        struct mbuf r;
        errno = 0;
        ssize_t got = msgrcv(q, &r, sizeof r.mtext, 7, 0);
        _exit(got == -1 && (errno == EIDRM || errno == EINVAL) ? 0 : 1);
    }
    usleep(200000);
    int removed = msgctl(q, IPC_RMID, NULL);
    CHECK(child_status(p) == 0 && removed == 0);
    printf("child msgrcv after removal: EIDRM (or EINVAL)\n");
    /* A blocked sender is woken by a receive. */
    q = msgget(IPC_PRIVATE, 0600);
    CHECK(msgctl(q, IPC_STAT, &ds) == 0);
    ds.msg_qbytes = 8;
    CHECK(msgctl(q, IPC_SET, &ds) == 0);
    m.mtype = 1;
    CHECK(msgsnd(q, &m, 8, 0) == 0);
    p = fork();
    if (p == 0) {
        _exit(msgsnd(q, &m, 8, 0) == 0 ? 0 : 1);
    }
    usleep(100000);
    ssize_t rcvd = msgrcv(q, &m, sizeof m.mtext, 0, 0);
    CHECK(child_status(p) == 0 && rcvd == 8);
    CHECK(msgrcv(q, &m, sizeof m.mtext, 0, IPC_NOWAIT) == 8);
    CHECK(msgctl(q, IPC_RMID, NULL) == 0);
}

static void sem_tests(void) {
    printf("-- sem\n");
    ERR(semget(IPC_PRIVATE, 0, 0600), EINVAL);
    ERR(semget(IPC_PRIVATE, -1, 0600), EINVAL);
    ERR(semget(IPC_PRIVATE, (int)read_proc_long("/proc/sys/kernel/sem") + 1, 0600), EINVAL);
    int s = semget(IPC_PRIVATE, 3, IPC_CREAT | 0600);
    CHECK(s >= 0);
    union semun arg;
    unsigned short vals[3] = {1, 2, 3};
    arg.array = vals;
    CHECK(semctl(s, 0, SETALL, arg) == 0);
    unsigned short got[3] = {0};
    arg.array = got;
    CHECK(semctl(s, 0, GETALL, arg) == 0);
    printf("getall %d %d %d\n", got[0], got[1], got[2]);
    arg.val = 5;
    CHECK(semctl(s, 1, SETVAL, arg) == 0);
    printf("getval %d\n", semctl(s, 1, GETVAL));
    CHECK(semctl(s, 1, GETPID) == getpid());
    arg.val = -1;
    ERR(semctl(s, 1, SETVAL, arg), ERANGE);
    arg.val = 32768;
    ERR(semctl(s, 1, SETVAL, arg), ERANGE);
    arg.val = 1;
    ERR(semctl(s, 3, SETVAL, arg), EINVAL);
    ERR(semctl(s, -1, GETVAL), EINVAL);
    ERR(semctl(s, 0, 999), EINVAL);
    ERR(semctl(-1, 0, GETVAL), EINVAL);
    struct sembuf op[2] = {{0, -1, 0}, {1, -2, 0}};
    CHECK(semop(s, op, 2) == 0);
    arg.array = got;
    CHECK(semctl(s, 0, GETALL, arg) == 0);
    printf("after semop %d %d %d\n", got[0], got[1], got[2]);
    struct sembuf dec = {0, -1, IPC_NOWAIT};
    ERR(semop(s, &dec, 1), EAGAIN);
    /* All or nothing: the first would succeed, the second blocks. */
    struct sembuf two[2] = {{1, -1, 0}, {0, -1, IPC_NOWAIT}};
    ERR(semop(s, two, 2), EAGAIN);
    printf("sem1 unchanged %d\n", semctl(s, 1, GETVAL));
    struct sembuf bad = {3, 1, 0};
    ERR(semop(s, &bad, 1), EFBIG);
    ERR(semop(s, op, 0), EINVAL);
    ERR(semop(s, (void *)8, 1), EFAULT);
    struct sembuf many[501];
    memset(many, 0, sizeof many);
    ERR(semop(s, many, 501), E2BIG);
    struct sembuf big = {2, 32767, 0};
    ERR(semop(s, &big, 1), ERANGE);
    struct timespec ts = {0, 10000000};
    struct sembuf wait0 = {0, -1, 0};
    ERR(semtimedop(s, &wait0, 1, &ts), EAGAIN);
    struct timespec badts = {0, 2000000000L};
    ERR(semtimedop(s, &wait0, 1, &badts), EINVAL);
    struct sembuf zero = {0, 0, 0};
    CHECK(semop(s, &zero, 1) == 0);
    struct semid_ds ds;
    arg.buf = &ds;
    CHECK(semctl(s, 0, IPC_STAT, arg) == 0);
    printf("nsems %lu mode %o\n", (unsigned long)ds.sem_nsems, ds.sem_perm.mode & 0777);
    struct seminfo si;
    arg.__buf = &si;
    CHECK(semctl(0, 0, IPC_INFO, arg) >= 0);
    printf("semvmx %d semaem %d\n", si.semvmx, si.semaem);
    CHECK(si.semmsl == read_proc_long("/proc/sys/kernel/sem"));
    CHECK(si.semopm == 500);
    CHECK(semctl(0, 0, SEM_INFO, arg) >= 0 && si.semusz >= 1 && si.semaem >= 3);

    /* Blocked waiters: counted by GETNCNT/GETZCNT, woken by a change. */
    arg.val = 0;
    semctl(s, 0, SETVAL, arg);
    pid_t p = fork();
    if (p == 0) {
        struct sembuf d = {0, -2, 0};
        _exit(semop(s, &d, 1) == 0 ? 0 : 1);
    }
    CHECK(wait_cnt(s, 0, GETNCNT, 1));
    CHECK(semctl(s, 0, GETZCNT) == 0);
    struct sembuf inc = {0, 1, 0};
    CHECK(semop(s, &inc, 1) == 0);
    CHECK(semctl(s, 0, GETNCNT) == 1);
    CHECK(semop(s, &inc, 1) == 0);
    CHECK(child_status(p) == 0);
    printf("sem0 after child %d, ncnt %d\n", semctl(s, 0, GETVAL), semctl(s, 0, GETNCNT));
    /* Wait-for-zero. */
    arg.val = 1;
    semctl(s, 2, SETVAL, arg);
    p = fork();
    if (p == 0) {
        struct sembuf z = {2, 0, 0};
        _exit(semop(s, &z, 1) == 0 ? 0 : 1);
    }
    CHECK(wait_cnt(s, 2, GETZCNT, 1));
    struct sembuf dec2 = {2, -1, 0};
    CHECK(semop(s, &dec2, 1) == 0);
    CHECK(child_status(p) == 0);
    /* EINTR. */
    p = fork();
    if (p == 0) {
        struct sigaction sa = {.sa_handler = on_sig, .sa_flags = SA_RESTART};
        sigaction(SIGUSR1, &sa, NULL);
        struct sembuf d = {0, -1, 0};
        errno = 0;
        int r = semop(s, &d, 1);
        printf("child semop: %d %s\n", r, strerrorname_np(errno));
        fflush(stdout);
        _exit(0);
    }
    CHECK(poke_until_exit(p) == 0);

    /* SEM_UNDO: undone when the process exits. */
    arg.val = 5;
    semctl(s, 1, SETVAL, arg);
    p = fork();
    if (p == 0) {
        struct sembuf u[2] = {{1, -2, SEM_UNDO}, {1, 7, SEM_UNDO}};
        semop(s, u, 2);
        struct sembuf u2 = {1, -1, SEM_UNDO};
        semop(s, &u2, 1);
        printf("child sees %d\n", semctl(s, 1, GETVAL));
        fflush(stdout);
        _exit(0);
    }
    CHECK(child_status(p) == 0);
    printf("after child exit %d\n", semctl(s, 1, GETVAL));
    /* SETVAL clears the adjustments. */
    p = fork();
    if (p == 0) {
        struct sembuf u = {1, 3, SEM_UNDO};
        semop(s, &u, 1);
        union semun a = {.val = 10};
        semctl(s, 1, SETVAL, a);
        _exit(0);
    }
    CHECK(child_status(p) == 0);
    printf("after SETVAL and exit %d\n", semctl(s, 1, GETVAL));
    /* Undo clamped at 0. */
    p = fork();
    if (p == 0) {
        struct sembuf u = {1, 5, SEM_UNDO};
        semop(s, &u, 1);
        union semun a = {.val = 10};
        semctl(s, 1, SETVAL, a); /* clears */
        semop(s, &u, 1);         /* adj -5 */
        a.val = 2;
        semctl(s, 2, SETVAL, a);  /* other sem: adj kept */
        struct sembuf d = {1, -13, 0};
        semop(s, &d, 1);          /* value 2 */
        _exit(0);
    }
    CHECK(child_status(p) == 0);
    printf("clamped undo %d\n", semctl(s, 1, GETVAL));

    /* A blocked semop is woken by the set's removal. */
    arg.val = 0;
    semctl(s, 0, SETVAL, arg);
    p = fork();
    if (p == 0) {
        struct sembuf d = {0, -1, 0};
        errno = 0;
        int r = semop(s, &d, 1);
        _exit(r == -1 ? errno : 255);
    }
    int waited = wait_cnt(s, 0, GETNCNT, 1);
    int rm = semctl(s, 0, IPC_RMID);
    int cst = child_status(p);
    CHECK(waited && rm == 0);
    printf("child semop after removal: %s\n", strerrorname_np(cst));
    ERR(semctl(s, 0, GETVAL), EINVAL);

    key_t key = 0x53000000 | (getpid() & 0xffffff);
    int k = semget(key, 2, IPC_CREAT | IPC_EXCL | 0600);
    CHECK(k >= 0);
    ERR(semget(key, 3, 0600), EINVAL);
    CHECK(semget(key, 1, 0600) == k);
    CHECK(semget(key, 0, 0600) == k);
    ERR(semget(key, 2, IPC_CREAT | IPC_EXCL), EEXIST);
    CHECK(semctl(k, 0, IPC_RMID) == 0);
}

static void shm_tests(const char *self) {
    printf("-- shm\n");
    ERR(shmget(IPC_PRIVATE, 0, 0600), EINVAL);
    int id = shmget(IPC_PRIVATE, 10000, IPC_CREAT | 0600);
    CHECK(id >= 0);
    struct shmid_ds ds;
    CHECK(shmctl(id, IPC_STAT, &ds) == 0);
    printf("segsz %zu nattch %lu mode %o cpid-is-me %d\n", (size_t)ds.shm_segsz, (unsigned long)ds.shm_nattch,
           ds.shm_perm.mode & 0777, ds.shm_cpid == getpid());
    char *a = shmat(id, NULL, 0);
    CHECK(a != (void *)-1);
    CHECK(shmctl(id, IPC_STAT, &ds) == 0 && ds.shm_nattch == 1 && ds.shm_lpid == getpid());
    strcpy(a, "parent");
    strcpy(a + 9000, "far");
    /* A second attachment sees the same memory. */
    char *b = shmat(id, NULL, SHM_RDONLY);
    CHECK(b != (void *)-1 && b != a);
    printf("second view: %s %s\n", b, b + 9000);
    CHECK(shmctl(id, IPC_STAT, &ds) == 0 && ds.shm_nattch == 2);
    CHECK(shmdt(b) == 0);
    ERR(shmdt(b), EINVAL);
    ERR(shmdt(a + 1), EINVAL);
    /* Shared across fork; the child's attachment counts until it exits. */
    pid_t p = fork();
    if (p == 0) {
        struct shmid_ds cds;
        shmctl(id, IPC_STAT, &cds);
        printf("child sees %s, nattch %lu\n", a, (unsigned long)cds.shm_nattch);
        strcpy(a, "child");
        fflush(stdout);
        _exit(0);
    }
    CHECK(child_status(p) == 0);
    printf("parent sees %s\n", a);
    CHECK(shmctl(id, IPC_STAT, &ds) == 0);
    printf("nattch after child exit %lu\n", (unsigned long)ds.shm_nattch);
    /* Detached at exec. */
    p = fork();
    if (p == 0) {
        char arg[32];
        snprintf(arg, sizeof arg, "%d", id);
        char *c = shmat(id, NULL, 0);
        (void)c;
        execl(self, self, "nattch", arg, (char *)NULL);
        _exit(99);
    }
    CHECK(child_status(p) == 0);
    /* Read-only attachments fault on write. */
    p = fork();
    if (p == 0) {
        char *r = shmat(id, NULL, SHM_RDONLY);
        r[0] = 'x';
        _exit(0);
    }
    printf("write to read-only attachment: status %d\n", child_status(p));
    /* Addresses: SHM_RND, SHM_REMAP, overlap. */
    char *fixed = a + 0x100000;
    ERR(shmat(id, fixed + 100, 0), EINVAL);
    char *c = shmat(id, fixed + 100, SHM_RND);
    CHECK(c == fixed);
    ERR(shmat(id, fixed, 0), EINVAL);
    ERR(shmat(id, NULL, SHM_REMAP), EINVAL);
    c = shmat(id, fixed, SHM_REMAP);
    CHECK(c == fixed);
    printf("remapped sees %s\n", c);
    CHECK(shmdt(fixed) == 0);
    /* /proc/self/maps names the segment. */
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    int sysv = 0;
    while (f && fgets(line, sizeof line, f))
        if (strstr(line, "/SYSV") && strstr(line, "(deleted)") && strstr(line, " rw-s ")) sysv++;
    if (f) fclose(f);
    printf("SYSV lines in maps: %d\n", sysv);
    /* /proc/sysvipc/shm lists it. */
    f = fopen("/proc/sysvipc/shm", "r");
    int listed = 0;
    while (f && fgets(line, sizeof line, f)) {
        int k, i;
        unsigned long size;
        unsigned mode;
        if (sscanf(line, "%d %d %o %lu", &k, &i, &mode, &size) == 4 && i == id)
            listed = size == 10000 && mode == 0600;
    }
    if (f) fclose(f);
    CHECK(listed);
    /* Locks. */
    CHECK(shmctl(id, SHM_LOCK, NULL) == 0);
    CHECK(shmctl(id, IPC_STAT, &ds) == 0 && (ds.shm_perm.mode & SHM_LOCKED));
    CHECK(shmctl(id, SHM_UNLOCK, NULL) == 0);
    CHECK(shmctl(id, IPC_STAT, &ds) == 0 && !(ds.shm_perm.mode & SHM_LOCKED));
    /* Removal while attached: marked, keyless, still usable; gone at the
     * last detach. */
    CHECK(shmctl(id, IPC_RMID, NULL) == 0);
    CHECK(shmctl(id, IPC_STAT, &ds) == 0);
    printf("after RMID: dest %d key %d nattch %lu\n", !!(ds.shm_perm.mode & SHM_DEST), ds.shm_perm.__key,
           (unsigned long)ds.shm_nattch);
    strcpy(a, "still here");
    printf("%s\n", a);
    CHECK(shmdt(a) == 0);
    ERR(shmctl(id, IPC_STAT, &ds), EINVAL);
    /* Limits and info. */
    struct shminfo si;
    CHECK(shmctl(0, IPC_INFO, (struct shmid_ds *)&si) >= 0);
    CHECK(si.shmmni == (unsigned long)read_proc_long("/proc/sys/kernel/shmmni"));
    printf("shmmin %lu shmseg %lu\n", si.shmmin, si.shmseg);
    struct shm_info info;
    CHECK(shmctl(0, SHM_INFO, (struct shmid_ds *)&info) >= 0);
    ERR(shmctl(-1, IPC_STAT, &ds), EINVAL);
    ERR(shmctl(0x7fff0000, IPC_STAT, &ds), EINVAL);
    ERR(shmctl(0, 999, &ds), EINVAL);
    ERR(shmat(-1, NULL, 0), EINVAL);
    /* Keys and sizes. */
    key_t key = 0x54000000 | (getpid() & 0xffffff);
    int k = shmget(key, 8192, IPC_CREAT | IPC_EXCL | 0600);
    CHECK(k >= 0);
    ERR(shmget(key, 8193, 0600), EINVAL);
    CHECK(shmget(key, 100, 0600) == k);
    ERR(shmget(key, 100, IPC_CREAT | IPC_EXCL | 0600), EEXIST);
    ERR(shmget(key + 1, 100, 0600), ENOENT);
    CHECK(shmctl(k, IPC_RMID, NULL) == 0);
    ERR(shmctl(k, IPC_RMID, NULL), EINVAL);
}

/* Absurd sizes, bad pointers, and removal racing with use. */
static void hostile_tests(void) {
    printf("-- hostile\n");
    ERR(shmget(IPC_PRIVATE, 1UL << 40, 0600), ENOMEM);
    ERR(shmget(IPC_PRIVATE, (size_t)-1, 0600), EINVAL);
    int s = semget(IPC_PRIVATE, 2, 0600);
    ERR(semop(s, (void *)8, 1 << 30), E2BIG);
    union semun u = {.array = (void *)8};
    ERR(semctl(s, 0, SETALL, u), EFAULT);
    ERR(semctl(s, 0, GETALL, u), EFAULT);
    u.buf = (void *)8;
    ERR(semctl(s, 0, IPC_SET, u), EFAULT);
    ERR(semctl(s, 0, IPC_STAT, u), EFAULT);
    ERR(semtimedop(s, &(struct sembuf){0, -1, 0}, 1, (void *)8), EFAULT);
    int m = shmget(IPC_PRIVATE, 4096, 0600);
    ERR(shmctl(m, IPC_SET, (void *)8), EFAULT);
    CHECK(shmctl(m, IPC_RMID, NULL) == 0);
    int q = msgget(IPC_PRIVATE, 0600);
    ERR(msgrcv(q, (void *)8, 1UL << 40, 0, IPC_NOWAIT), ENOMSG);
    ERR(msgsnd(q, (void *)8, 1UL << 40, IPC_NOWAIT), EFAULT);
    /* A child keeps using the queue and the set while the parent removes
     * them: it sees EIDRM or EINVAL, nothing else. */
    pid_t p = fork();
    if (p == 0) {
        struct mbuf b = {1, "x"};
        for (;;) {
            if (msgsnd(q, &b, 1, 0) < 0) break;
            if (msgrcv(q, &b, 8, 0, 0) < 0) break;
        }
        int e1 = errno;
        struct sembuf up = {0, 1, 0}, down = {0, -1, 0};
        for (;;) {
            if (semop(s, &up, 1) < 0) break;
            if (semop(s, &down, 1) < 0) break;
        }
        int e2 = errno;
        _exit((e1 == EIDRM || e1 == EINVAL) && (e2 == EIDRM || e2 == EINVAL) ? 0 : 1);
    }
    usleep(50000);
    CHECK(msgctl(q, IPC_RMID, NULL) == 0);
    usleep(50000);
    CHECK(semctl(s, 0, IPC_RMID) == 0);
    CHECK(child_status(p) == 0);
}

/* Run as root: drop to 65534 in a child and check the permission rules. */
static void perm_tests(void) {
    printf("-- perm\n");
    key_t key = 0x55000000 | (getpid() & 0xffffff);
    int q = msgget(key, IPC_CREAT | 0600);
    int qo = msgget(IPC_PRIVATE, 0666);
    int s = semget(IPC_PRIVATE, 1, 0600);
    int sr = semget(IPC_PRIVATE, 1, 0644);
    int m = shmget(IPC_PRIVATE, 4096, 0600);
    int mr = shmget(IPC_PRIVATE, 4096, 0644);
    CHECK(q >= 0 && qo >= 0 && s >= 0 && sr >= 0 && m >= 0 && mr >= 0);
    pid_t p = fork();
    if (p == 0) {
        CHECK(setgid(65534) == 0 && setuid(65534) == 0);
        struct mbuf b = {1, "x"};
        struct msqid_ds ds;
        ERR(msgget(key, 0600), EACCES);
        ERR(msgget(key, 0400), EACCES);
        CHECK(msgget(key, 0) == q);
        ERR(msgsnd(q, &b, 1, IPC_NOWAIT), EACCES);
        ERR(msgrcv(q, &b, 8, 0, IPC_NOWAIT), EACCES);
        ERR(msgctl(q, IPC_STAT, &ds), EACCES);
        ERR(msgctl(q, IPC_RMID, NULL), EPERM);
        CHECK(msgsnd(qo, &b, 1, IPC_NOWAIT) == 0);
        CHECK(msgctl(qo, IPC_STAT, &ds) == 0);
        ERR(msgctl(qo, IPC_SET, &ds), EPERM);
        struct sembuf op = {0, 1, IPC_NOWAIT};
        ERR(semop(s, &op, 1), EACCES);
        ERR(semctl(s, 0, GETVAL), EACCES);
        CHECK(semctl(sr, 0, GETVAL) == 0);
        ERR(semop(sr, &op, 1), EACCES);
        struct sembuf z = {0, 0, IPC_NOWAIT};
        CHECK(semop(sr, &z, 1) == 0);
        union semun a = {.val = 1};
        ERR(semctl(sr, 0, SETVAL, a), EACCES);
        ERR(semctl(sr, 0, IPC_RMID), EPERM);
        ERR(shmat(m, NULL, 0), EACCES);
        ERR(shmat(mr, NULL, 0), EACCES);
        void *r = shmat(mr, NULL, SHM_RDONLY);
        CHECK(r != (void *)-1);
        ERR(shmctl(mr, SHM_LOCK, NULL), EPERM);
        ERR(shmctl(mr, IPC_RMID, NULL), EPERM);
        /* An object the unprivileged user owns. */
        int mine = msgget(IPC_PRIVATE, 0600);
        CHECK(msgctl(mine, IPC_STAT, &ds) == 0 && ds.msg_perm.uid == 65534 && ds.msg_perm.cuid == 65534);
        ds.msg_qbytes = ds.msg_qbytes + 1;
        ERR(msgctl(mine, IPC_SET, &ds), EPERM);
        ds.msg_qbytes = 100;
        CHECK(msgctl(mine, IPC_SET, &ds) == 0);
        CHECK(msgctl(mine, IPC_RMID, NULL) == 0);
        ERR(open("/proc/sys/kernel/msgmax", O_WRONLY), EACCES);
        fflush(stdout);
        _exit(failed);
    }
    CHECK(child_status(p) == 0);
    /* Root may change the owner: the new owner may then remove it. */
    struct msqid_ds ds;
    CHECK(msgctl(q, IPC_STAT, &ds) == 0);
    ds.msg_perm.uid = 65534;
    CHECK(msgctl(q, IPC_SET, &ds) == 0);
    p = fork();
    if (p == 0) {
        CHECK(setgid(65534) == 0 && setuid(65534) == 0);
        CHECK(msgctl(q, IPC_RMID, NULL) == 0);
        fflush(stdout);
        _exit(failed);
    }
    CHECK(child_status(p) == 0);
    msgctl(qo, IPC_RMID, NULL);
    semctl(s, 0, IPC_RMID);
    semctl(sr, 0, IPC_RMID);
    shmctl(m, IPC_RMID, NULL);
    shmctl(mr, IPC_RMID, NULL);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* Children inherit it: a SIGUSR1 before they block is harmless. */
    struct sigaction sa = {.sa_handler = on_sig, .sa_flags = SA_RESTART};
    sigaction(SIGUSR1, &sa, NULL);
    if (argc == 3 && strcmp(argv[1], "nattch") == 0) {
        struct shmid_ds ds;
        if (shmctl(atoi(argv[2]), IPC_STAT, &ds) != 0) return 1;
        printf("after exec: nattch %lu\n", (unsigned long)ds.shm_nattch);
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "perm") == 0) {
        perm_tests();
    } else {
        msg_tests();
        sem_tests();
        shm_tests(argv[0]);
        hostile_tests();
    }
    printf("result: %s\n", failed ? "FAIL" : "OK");
    return failed;
}
