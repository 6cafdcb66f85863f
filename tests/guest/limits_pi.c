/* PI mutexes (FUTEX_LOCK_PI/UNLOCK_PI through glibc's
 * PTHREAD_PRIO_INHERIT, robust PI owner death) and enforced resource
 * limits (RLIMIT_AS, RLIMIT_NOFILE, RLIMIT_STACK reported). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

static int failed;
#define CHECK(c) do { if (c) printf("ok: %s\n", #c); else { printf("FAIL: %s (%s)\n", #c, strerrorname_np(errno)); failed = 1; } } while (0)

static pthread_mutex_t pi;
static long counter;

static void *work(void *a) {
    for (int i = 0; i < 20000; i++) {
        pthread_mutex_lock(&pi);
        counter++;
        pthread_mutex_unlock(&pi);
    }
    return a;
}

static pthread_mutex_t robust;
static void *die_holding(void *a) {
    pthread_mutex_lock(&robust);
    return a;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    pthread_mutexattr_t at;
    pthread_mutexattr_init(&at);
    pthread_mutexattr_setprotocol(&at, PTHREAD_PRIO_INHERIT);
    CHECK(pthread_mutex_init(&pi, &at) == 0);
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, work, NULL);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    CHECK(counter == 80000);
    CHECK(pthread_mutex_trylock(&pi) == 0);
    CHECK(pthread_mutex_unlock(&pi) == 0);

    pthread_mutexattr_setrobust(&at, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&robust, &at);
    pthread_t d;
    pthread_create(&d, NULL, die_holding, NULL);
    pthread_join(d, NULL);
    int r = pthread_mutex_lock(&robust);
    CHECK(r == EOWNERDEAD);
    CHECK(pthread_mutex_consistent(&robust) == 0);
    CHECK(pthread_mutex_unlock(&robust) == 0);

    struct rlimit rl = {256 << 20, 256 << 20};
    CHECK(setrlimit(RLIMIT_AS, &rl) == 0);
    struct rlimit got;
    CHECK(getrlimit(RLIMIT_AS, &got) == 0 && got.rlim_cur == (rlim_t)256 << 20);
    void *big = mmap(NULL, 512 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int big_refused = big == MAP_FAILED;
    CHECK(big_refused && errno == ENOMEM);
    void *small = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int small_mapped = small != MAP_FAILED;
    CHECK(small_mapped);

    rl.rlim_cur = rl.rlim_max = 16;
    CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0);
    int last = 0, fd;
    while ((fd = open("/dev/null", O_RDONLY)) >= 0) last = fd;
    CHECK(errno == EMFILE && last == 15);
    rl.rlim_cur = 2;
    rl.rlim_max = 1;
    CHECK(setrlimit(RLIMIT_CORE, &rl) == -1 && errno == EINVAL);
    printf("result: %s\n", failed ? "FAIL" : "OK");
    return failed;
}
