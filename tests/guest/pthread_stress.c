/* pthread stress: 8 threads hammer a mutex-protected counter, run a bounded
 * condvar producer/consumer queue and meet at a pthread_barrier for many
 * rounds. Prints only totals, so the output is deterministic. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NTHREADS 8
#define INCS 10000
#define ITEMS 2000 /* per producer */
#define QCAP 16
#define ROUNDS 200

static int failures;
#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (cond) {                                                            \
            printf(__VA_ARGS__);                                               \
            printf(": ok\n");                                                  \
        } else {                                                               \
            printf(__VA_ARGS__);                                               \
            printf(": FAIL (%s)\n", #cond);                                    \
            failures++;                                                        \
        }                                                                      \
    } while (0)

/* --- mutex counter --- */
static pthread_mutex_t cmu = PTHREAD_MUTEX_INITIALIZER;
static long counter;

static void *inc_thread(void *arg) {
    (void)arg;
    for (int i = 0; i < INCS; i++) {
        pthread_mutex_lock(&cmu);
        long v = counter;
        __asm__ volatile("" ::: "memory");
        counter = v + 1;
        pthread_mutex_unlock(&cmu);
    }
    return NULL;
}

/* --- condvar bounded queue: 4 producers, 4 consumers --- */
static pthread_mutex_t qmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t notfull = PTHREAD_COND_INITIALIZER;
static pthread_cond_t notempty = PTHREAD_COND_INITIALIZER;
static long queue[QCAP];
static int qhead, qlen;
static int producers_left;
static long consumed_count, consumed_sum;

static void *producer(void *arg) {
    long base = (long)arg * ITEMS;
    for (long i = 1; i <= ITEMS; i++) {
        pthread_mutex_lock(&qmu);
        while (qlen == QCAP)
            pthread_cond_wait(&notfull, &qmu);
        queue[(qhead + qlen) % QCAP] = base + i;
        qlen++;
        pthread_cond_signal(&notempty);
        pthread_mutex_unlock(&qmu);
    }
    pthread_mutex_lock(&qmu);
    producers_left--;
    pthread_cond_broadcast(&notempty);
    pthread_mutex_unlock(&qmu);
    return NULL;
}

static void *consumer(void *arg) {
    (void)arg;
    long n = 0, sum = 0;
    for (;;) {
        pthread_mutex_lock(&qmu);
        while (qlen == 0 && producers_left > 0)
            pthread_cond_wait(&notempty, &qmu);
        if (qlen == 0) {
            pthread_mutex_unlock(&qmu);
            break;
        }
        long v = queue[qhead];
        qhead = (qhead + 1) % QCAP;
        qlen--;
        pthread_cond_signal(&notfull);
        pthread_mutex_unlock(&qmu);
        n++;
        sum += v;
    }
    pthread_mutex_lock(&qmu);
    consumed_count += n;
    consumed_sum += sum;
    pthread_mutex_unlock(&qmu);
    return NULL;
}

/* --- barrier rounds --- */
static pthread_barrier_t bar;
static int slots[ROUNDS];
static int serial_count;
static int round_errors;

static void *barrier_thread(void *arg) {
    (void)arg;
    for (int r = 0; r < ROUNDS; r++) {
        __atomic_fetch_add(&slots[r], 1, __ATOMIC_SEQ_CST);
        int rc = pthread_barrier_wait(&bar);
        if (rc == PTHREAD_BARRIER_SERIAL_THREAD)
            __atomic_fetch_add(&serial_count, 1, __ATOMIC_SEQ_CST);
        else if (rc != 0)
            __atomic_fetch_add(&round_errors, 1, __ATOMIC_SEQ_CST);
        /* Everyone arrived for round r before anyone left it. */
        if (__atomic_load_n(&slots[r], __ATOMIC_SEQ_CST) != NTHREADS)
            __atomic_fetch_add(&round_errors, 1, __ATOMIC_SEQ_CST);
        /* Nobody has gone past the next barrier: round r+2 is untouched. */
        if (r + 2 < ROUNDS && __atomic_load_n(&slots[r + 2], __ATOMIC_SEQ_CST) != 0)
            __atomic_fetch_add(&round_errors, 1, __ATOMIC_SEQ_CST);
    }
    return NULL;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    pthread_t t[NTHREADS];

    for (int i = 0; i < NTHREADS; i++)
        if (pthread_create(&t[i], NULL, inc_thread, NULL) != 0) {
            printf("pthread_create failed\n");
            return 1;
        }
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    printf("mutex counter total: %ld\n", counter);
    CHECK(counter == (long)NTHREADS * INCS, "mutex counter");

    producers_left = NTHREADS / 2;
    for (int i = 0; i < NTHREADS / 2; i++)
        pthread_create(&t[i], NULL, producer, (void *)(long)i);
    for (int i = NTHREADS / 2; i < NTHREADS; i++)
        pthread_create(&t[i], NULL, consumer, NULL);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    long n = (long)ITEMS * (NTHREADS / 2);
    printf("queue consumed: %ld items, sum %ld\n", consumed_count, consumed_sum);
    CHECK(consumed_count == n && consumed_sum == n * (n + 1) / 2,
          "producer/consumer totals");

    pthread_barrier_init(&bar, NULL, NTHREADS);
    for (int i = 0; i < NTHREADS; i++)
        pthread_create(&t[i], NULL, barrier_thread, NULL);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&bar);
    printf("barrier rounds: %d, serial threads: %d, errors: %d\n", ROUNDS,
           serial_count, round_errors);
    CHECK(serial_count == ROUNDS && round_errors == 0, "barrier");

    /* Detached threads and join of an already-exited thread. */
    pthread_t late;
    pthread_create(&late, NULL, inc_thread, NULL);
    pthread_join(late, NULL);
    CHECK(counter == (long)(NTHREADS + 1) * INCS, "join after exit");

    printf("result: %s\n", failures ? "FAIL" : "OK");
    return failures ? 1 : 0;
}
