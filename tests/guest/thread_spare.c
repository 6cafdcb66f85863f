/* Threads made in a stream while signals arrive, and what a new thread and
 * an exec'd image must (not) inherit: ruml makes a guest thread's host
 * stub thread ahead of time (a spare, parked until the next thread
 * creation of the address space), so a thread must still start with its
 * creator's signal mask and floating-point modes of the moment of its
 * creation, and an exec'd image must see nothing of the previous one.
 *
 *   thread_spare [ROUNDS]
 *
 * Output is deterministic: counts and mismatches, compared with Linux. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xmmintrin.h>

#define MARK_ADDR ((void *)0x3f0000000000UL)
#define PG 4096

static volatile sig_atomic_t got;
static volatile int stop_sender;
/* SSE rounding modes (MXCSR bits 13-14): nearest, down, up, toward zero. */
#define RND_NEAREST 0
static const int rounding[4] = {0, 2, 1, 3};

static int get_round(void)
{
    return (_mm_getcsr() >> 13) & 3;
}

static void set_round(int r)
{
    _mm_setcsr((_mm_getcsr() & ~(3u << 13)) | ((unsigned)r << 13));
}

static void on_usr1(int s)
{
    (void)s;
    got++;
}

struct job {
    int round;
    int want_round;
    int want_usr2_blocked;
    long sum;
    int bad;
};

static void *worker(void *p)
{
    struct job *j = p;
    sigset_t cur;
    pthread_sigmask(SIG_SETMASK, NULL, &cur);
    if (sigismember(&cur, SIGUSR2) != j->want_usr2_blocked)
        j->bad |= 1;
    if (get_round() != j->want_round)
        j->bad |= 2;
    /* The stack is the thread's own: a sum on it. */
    volatile long a[64];
    for (int i = 0; i < 64; i++)
        a[i] = i * (j->round + 1);
    long s = 0;
    for (int i = 0; i < 64; i++)
        s += a[i];
    j->sum = s;
    if (syscall(SYS_gettid) == getpid())
        j->bad |= 4;
    return NULL;
}

static void *sender(void *p)
{
    (void)p;
    while (!stop_sender) {
        kill(getpid(), SIGUSR1);
        usleep(200);
    }
    return NULL;
}

/* The exec'd image: the previous image's marked page must be gone. */
static int exec_child(void)
{
    unsigned char v;
    int gone = mincore(MARK_ADDR, PG, &v) < 0 && errno == ENOMEM;
    void *m = mmap(MARK_ADDR, PG, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    int fresh = m == MARK_ADDR && ((volatile char *)m)[0] == 0;
    sigset_t cur;
    sigprocmask(SIG_SETMASK, NULL, &cur);
    printf("exec: previous mapping gone %d, fresh %d, usr2 blocked %d\n", gone, fresh,
           sigismember(&cur, SIGUSR2));
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "child") == 0)
        return exec_child();
    int rounds = argc > 1 ? atoi(argv[1]) : 100;
    if (rounds < 1 || rounds > 100000)
        rounds = 100;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = 0; /* no SA_RESTART: interrupted calls must cope */
    sigaction(SIGUSR1, &sa, NULL);

    pthread_t snd;
    pthread_create(&snd, NULL, sender, NULL);

    long total = 0;
    int bad = 0, made = 0;
    for (int r = 0; r < rounds; r++) {
        struct job j[3];
        pthread_t t[3];
        int n = 1 + r % 3;
        sigset_t m;
        sigemptyset(&m);
        sigaddset(&m, SIGUSR2);
        pthread_sigmask(r % 2 ? SIG_BLOCK : SIG_UNBLOCK, &m, NULL);
        set_round(rounding[r % 4]);
        for (int i = 0; i < n; i++) {
            j[i] = (struct job){.round = r, .want_round = rounding[r % 4],
                                .want_usr2_blocked = r % 2};
            int e;
            while ((e = pthread_create(&t[i], NULL, worker, &j[i])) == EAGAIN)
                ;
            if (e) {
                printf("pthread_create: %s\n", strerror(e));
                return 1;
            }
        }
        set_round(RND_NEAREST);
        for (int i = 0; i < n; i++) {
            pthread_join(t[i], NULL);
            total += j[i].sum;
            bad |= j[i].bad;
            made++;
        }
        if (r % 10 == 5) {
            /* fork from the multi-threaded process: the child is alone. */
            pid_t c = fork();
            if (c == 0) {
                pthread_t t2;
                struct job jj = {.round = r, .want_round = RND_NEAREST,
                                 .want_usr2_blocked = r % 2};
                pthread_create(&t2, NULL, worker, &jj);
                pthread_join(t2, NULL);
                _exit(jj.bad ? 1 : (int)(jj.sum % 100));
            }
            int st;
            while (waitpid(c, &st, 0) < 0 && errno == EINTR)
                ;
            if (!WIFEXITED(st) || WEXITSTATUS(st) != (int)((2016L * (r + 1)) % 100))
                bad |= 8;
        }
    }
    for (int i = 0; i < 10000 && !got; i++)
        usleep(1000);
    stop_sender = 1;
    pthread_join(snd, NULL);
    printf("threads %d, sum %ld, mismatches %d, signals seen %s\n", made, total, bad,
           got > 0 ? "yes" : "no");

    /* exec from a multi-threaded process, with a page marked. */
    char *mk = mmap(MARK_ADDR, PG, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (mk != MARK_ADDR) {
        printf("mark: %s\n", strerror(errno));
        return 1;
    }
    memset(mk, 0x5a, PG);
    pthread_t t;
    struct job jx = {.round = 0, .want_round = RND_NEAREST, .want_usr2_blocked = 1};
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &m, NULL);
    pthread_create(&t, NULL, worker, &jx);
    pthread_join(t, NULL);
    fflush(stdout);
    execl("/proc/self/exe", argv[0], "child", (char *)NULL);
    printf("exec: %s\n", strerror(errno));
    return 1;
}
