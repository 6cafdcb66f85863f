/* Robust mutexes: the owner (a thread, or a forked child sharing the mutex
 * through MAP_SHARED memory) dies holding the lock; the kernel walks the
 * dead owner's robust list, marks the futex FUTEX_OWNER_DIED and wakes a
 * waiter, so the next locker gets EOWNERDEAD. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int failures;
#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        printf(__VA_ARGS__);                                                   \
        if (cond) {                                                            \
            printf(": ok\n");                                                  \
        } else {                                                               \
            printf(": FAIL (%s)\n", #cond);                                    \
            failures++;                                                        \
        }                                                                      \
    } while (0)

static const char *ename(int e) {
    switch (e) {
    case 0: return "0";
    case EOWNERDEAD: return "EOWNERDEAD";
    case ENOTRECOVERABLE: return "ENOTRECOVERABLE";
    case EBUSY: return "EBUSY";
    case EPERM: return "EPERM";
    case EDEADLK: return "EDEADLK";
    case ETIMEDOUT: return "ETIMEDOUT";
    default: return strerror(e);
    }
}

static void init_robust(pthread_mutex_t *m, int pshared) {
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    if (pshared)
        pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutex_init(m, &a);
    pthread_mutexattr_destroy(&a);
}

static pthread_mutex_t tm;
static pthread_mutex_t tm2;
static volatile int locked_flag;

static void *lock_and_die(void *arg) {
    pthread_mutex_t *m = arg;
    int rc = pthread_mutex_lock(m);
    __atomic_store_n(&locked_flag, rc == 0 ? 1 : -1, __ATOMIC_SEQ_CST);
    return NULL; /* exits holding the lock */
}

static void *lock_hold_then_die(void *arg) {
    pthread_mutex_t *m = arg;
    pthread_mutex_lock(m);
    __atomic_store_n(&locked_flag, 1, __ATOMIC_SEQ_CST);
    struct timespec ts = {0, 150 * 1000 * 1000};
    nanosleep(&ts, NULL);
    return NULL; /* dies while the main thread is blocked in lock */
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    pthread_t t;
    int rc;

    /* 1. A thread dies holding the lock; main locks after join. */
    init_robust(&tm, 0);
    pthread_create(&t, NULL, lock_and_die, &tm);
    pthread_join(t, NULL);
    CHECK(locked_flag == 1, "thread locked the mutex");
    rc = pthread_mutex_lock(&tm);
    printf("lock after owner thread died: %s\n", ename(rc));
    CHECK(rc == EOWNERDEAD, "EOWNERDEAD from dead thread");
    rc = pthread_mutex_consistent(&tm);
    CHECK(rc == 0, "pthread_mutex_consistent");
    rc = pthread_mutex_unlock(&tm);
    CHECK(rc == 0, "unlock after consistent");
    rc = pthread_mutex_lock(&tm);
    CHECK(rc == 0, "relock is clean");
    pthread_mutex_unlock(&tm);

    /* 2. Without pthread_mutex_consistent the mutex becomes unrecoverable. */
    locked_flag = 0;
    init_robust(&tm2, 0);
    pthread_create(&t, NULL, lock_and_die, &tm2);
    pthread_join(t, NULL);
    rc = pthread_mutex_lock(&tm2);
    CHECK(rc == EOWNERDEAD, "second mutex: EOWNERDEAD");
    pthread_mutex_unlock(&tm2);
    rc = pthread_mutex_lock(&tm2);
    printf("lock after unlock without consistent: %s\n", ename(rc));
    CHECK(rc == ENOTRECOVERABLE, "ENOTRECOVERABLE");

    /* 3. A waiter is blocked when the owner thread dies: it must be woken. */
    locked_flag = 0;
    pthread_mutex_destroy(&tm);
    init_robust(&tm, 0);
    pthread_create(&t, NULL, lock_hold_then_die, &tm);
    while (__atomic_load_n(&locked_flag, __ATOMIC_SEQ_CST) == 0)
        sched_yield();
    rc = pthread_mutex_lock(&tm); /* blocks until the owner dies */
    printf("blocked waiter woke with: %s\n", ename(rc));
    CHECK(rc == EOWNERDEAD, "blocked waiter gets EOWNERDEAD");
    if (rc == EOWNERDEAD)
        pthread_mutex_consistent(&tm);
    pthread_mutex_unlock(&tm);
    pthread_join(t, NULL);

    /* 4. A forked child dies holding a process-shared robust mutex. */
    pthread_mutex_t *sm = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sm == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    init_robust(sm, 1);
    pid_t pid = fork();
    if (pid == 0) {
        _exit(pthread_mutex_lock(sm) == 0 ? 0 : 1); /* dies holding it */
    }
    int st;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child locked and exited");
    rc = pthread_mutex_trylock(sm);
    printf("trylock after owner process died: %s\n", ename(rc));
    CHECK(rc == EOWNERDEAD, "EOWNERDEAD from dead process (trylock)");
    pthread_mutex_consistent(sm);
    pthread_mutex_unlock(sm);

    /* 5. The parent is blocked in lock when the child owner dies. */
    int p[2];
    if (pipe(p) != 0)
        return 1;
    pid = fork();
    if (pid == 0) {
        close(p[0]);
        pthread_mutex_lock(sm);
        if (write(p[1], "L", 1) != 1)
            _exit(2);
        struct timespec ts = {0, 150 * 1000 * 1000};
        nanosleep(&ts, NULL);
        _exit(0);
    }
    close(p[1]);
    char c;
    if (read(p[0], &c, 1) != 1)
        printf("child did not report\n");
    rc = pthread_mutex_lock(sm);
    printf("parent blocked in lock woke with: %s\n", ename(rc));
    CHECK(rc == EOWNERDEAD, "EOWNERDEAD for blocked parent");
    if (rc == EOWNERDEAD)
        pthread_mutex_consistent(sm);
    pthread_mutex_unlock(sm);
    waitpid(pid, &st, 0);

    /* 6. A child that exec's while holding the lock also releases it:
     * execve runs the robust list too (mm_release). */
    pid = fork();
    if (pid == 0) {
        pthread_mutex_lock(sm);
        execl("/bin/true", "true", (char *)NULL);
        _exit(127);
    }
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child exec'd /bin/true");
    rc = pthread_mutex_trylock(sm);
    printf("trylock after owner exec'd: %s\n", ename(rc));
    CHECK(rc == EOWNERDEAD, "EOWNERDEAD after owner exec");
    if (rc == EOWNERDEAD)
        pthread_mutex_consistent(sm);
    pthread_mutex_unlock(sm);

    printf("result: %s\n", failures ? "FAIL" : "OK");
    return failures ? 1 : 0;
}
