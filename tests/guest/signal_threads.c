/* Signals and threads: a process-directed signal goes to the one thread that
 * does not block it; pthread_kill targets exactly the named thread; sigwait
 * in a thread that blocks the signal collects it; a process-directed signal
 * blocked everywhere stays pending for the process. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
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

#define NT 4
static pid_t tids[NT];
static pthread_t th[NT];
static volatile pid_t handled_by;
static volatile int handled_sig;
static volatile int handled_count;
static sem_t handled;
static volatile int stop;
static sem_t ready;

static void handler(int sig) {
    handled_by = gettid();
    handled_sig = sig;
    handled_count++;
    sem_post(&handled);
}

static int which_thread(pid_t tid) {
    for (int i = 0; i < NT; i++)
        if (tids[i] == tid)
            return i;
    if (tid == getpid())
        return -1; /* main */
    return -2;
}

/* Wait for the handler with a timeout, so a lost signal fails, not hangs. */
static int wait_handled(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 3;
    while (sem_timedwait(&handled, &ts) != 0)
        if (errno != EINTR)
            return -1;
    return 0;
}

static void *worker(void *arg) {
    int i = (int)(long)arg;
    tids[i] = gettid();
    /* Thread 2 is the only one that accepts SIGUSR1. */
    if (i == 2) {
        sigset_t s;
        sigemptyset(&s);
        sigaddset(&s, SIGUSR1);
        pthread_sigmask(SIG_UNBLOCK, &s, NULL);
    }
    sem_post(&ready);
    while (!stop) {
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static sem_t waiter_ready;
static int waited_sig;
static int waited_code;
static pid_t waited_pid;
static pid_t waited_tid;

static void *sigwaiter(void *arg) {
    (void)arg;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGHUP);
    waited_tid = gettid();
    sem_post(&waiter_ready);
    int sig = 0;
    if (sigwait(&s, &sig) == 0)
        waited_sig = sig;
    /* Then a thread-directed one through sigwaitinfo. */
    sigemptyset(&s);
    sigaddset(&s, SIGQUIT);
    siginfo_t si;
    if (sigwaitinfo(&s, &si) == SIGQUIT) {
        waited_code = si.si_signo;
        waited_pid = si.si_pid;
    }
    return NULL;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    sem_init(&handled, 0, 0);
    sem_init(&ready, 0, 0);
    sem_init(&waiter_ready, 0, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);

    /* Main blocks SIGUSR1 (and SIGHUP, SIGQUIT, SIGTERM) before creating
     * threads, so they inherit the mask. */
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    sigaddset(&s, SIGHUP);
    sigaddset(&s, SIGQUIT);
    sigaddset(&s, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    for (int i = 0; i < NT; i++) {
        pthread_create(&th[i], NULL, worker, (void *)(long)i);
        sem_wait(&ready);
    }

    /* 1. Process-directed SIGUSR1, several times: always thread 2. */
    int all_t2 = 1;
    for (int k = 0; k < 5; k++) {
        kill(getpid(), SIGUSR1);
        if (wait_handled() != 0) {
            printf("SIGUSR1 #%d was never handled\n", k);
            all_t2 = 0;
            break;
        }
        if (which_thread(handled_by) != 2 || handled_sig != SIGUSR1)
            all_t2 = 0;
    }
    CHECK(all_t2, "kill() handled by the only unblocking thread");

    /* 2. pthread_kill each thread (and main) with SIGUSR2: the target
     * itself handles it. */
    int targeted_ok = 1;
    for (int i = 0; i < NT; i++) {
        pthread_kill(th[i], SIGUSR2);
        if (wait_handled() != 0 || which_thread(handled_by) != i ||
            handled_sig != SIGUSR2) {
            printf("pthread_kill to thread %d handled by %d\n", i,
                   which_thread(handled_by));
            targeted_ok = 0;
        }
    }
    pthread_kill(pthread_self(), SIGUSR2);
    if (wait_handled() != 0 || which_thread(handled_by) != -1)
        targeted_ok = 0;
    CHECK(targeted_ok, "pthread_kill handled by the target thread");

    /* 3. pthread_kill of SIGUSR1 to a thread that blocks it: stays pending
     * on that thread only, not taken by thread 2. */
    int before = handled_count;
    pthread_kill(pthread_self(), SIGUSR1);
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
    sigset_t pend;
    sigpending(&pend);
    CHECK(handled_count == before && sigismember(&pend, SIGUSR1),
          "thread-directed blocked signal stays pending on its thread");
    /* Unblocking delivers it here, in main. */
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, SIGUSR1);
    pthread_sigmask(SIG_UNBLOCK, &one, NULL);
    CHECK(handled_count == before + 1 && which_thread(handled_by) == -1,
          "delivered to main on unblock");
    sem_wait(&handled);
    pthread_sigmask(SIG_BLOCK, &one, NULL);

    /* 4. Process-directed SIGTERM blocked by all threads: pending for the
     * process; sigtimedwait in main collects it. */
    kill(getpid(), SIGTERM);
    sigpending(&pend);
    CHECK(sigismember(&pend, SIGTERM), "SIGTERM pending for the process");
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    struct timespec zero = {0, 0};
    siginfo_t si;
    int r = sigtimedwait(&term, &si, &zero);
    CHECK(r == SIGTERM && si.si_code == SI_USER && si.si_pid == getpid(),
          "sigtimedwait takes it (SI_USER, si_pid is us)");
    r = sigtimedwait(&term, &si, &zero);
    CHECK(r == -1 && errno == EAGAIN, "nothing left: EAGAIN");

    /* 5. sigwait in a dedicated thread. */
    pthread_t w;
    pthread_create(&w, NULL, sigwaiter, NULL);
    sem_wait(&waiter_ready);
    nanosleep(&ts, NULL);
    kill(getpid(), SIGHUP);
    ts.tv_nsec = 20 * 1000 * 1000;
    nanosleep(&ts, NULL);
    pthread_kill(w, SIGQUIT);
    pthread_join(w, NULL);
    CHECK(waited_sig == SIGHUP, "sigwait in a thread got SIGHUP");
    CHECK(waited_code == SIGQUIT && waited_pid == getpid(),
          "sigwaitinfo in a thread got pthread_kill's SIGQUIT (si_pid is us)");

    /* 6. tgkill to a thread id that is gone: ESRCH. */
    stop = 1;
    for (int i = 0; i < NT; i++)
        pthread_join(th[i], NULL);
    r = syscall(SYS_tgkill, getpid(), tids[0], 0);
    CHECK(r == -1 && errno == ESRCH, "tgkill to an exited thread: ESRCH");
    r = syscall(SYS_tgkill, getpid(), gettid(), 0);
    CHECK(r == 0, "tgkill signal 0 to self");

    printf("result: %s\n", failures ? "FAIL" : "OK");
    return failures ? 1 : 0;
}
