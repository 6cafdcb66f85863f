/* futex_waitv(2): wake one of several, errors, timeouts (the same
 * natively and under ruml). */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif

struct waitv { uint64_t val, uaddr; uint32_t flags, reserved; };
#define U32 0x2
#define PRIV 128

static uint32_t words[3];
static struct waitv wv[3];

static long waitv(struct waitv *w, unsigned n, unsigned fl, struct timespec *t, int clk) {
    return syscall(SYS_futex_waitv, w, n, fl, t, clk);
}
static const char *res(long r) {
    static char b[32];
    if (r >= 0) { snprintf(b, sizeof b, "%ld", r); return b; }
    return strerrorname_np(errno);
}

static void *waker(void *arg) {
    (void)arg;
    usleep(100000);
    __atomic_store_n(&words[2], 1, __ATOMIC_SEQ_CST);
    syscall(SYS_futex, &words[2], FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    return NULL;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 0; i < 3; i++)
        wv[i] = (struct waitv){0, (uintptr_t)&words[i], U32 | PRIV, 0};
    pthread_t t;
    pthread_create(&t, NULL, waker, NULL);
    printf("woken index: %s\n", res(waitv(wv, 3, 0, NULL, 0)));
    pthread_join(t, NULL);
    printf("value changed: %s\n", res(waitv(wv, 3, 0, NULL, 0)));
    words[2] = 0;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += 50000000;
    if (ts.tv_nsec >= 1000000000) { ts.tv_sec++; ts.tv_nsec -= 1000000000; }
    printf("timeout: %s\n", res(waitv(wv, 3, 0, &ts, CLOCK_MONOTONIC)));
    clock_gettime(CLOCK_REALTIME, &ts);
    printf("realtime past: %s\n", res(waitv(wv, 3, 0, &ts, CLOCK_REALTIME)));
    printf("bad clock: %s\n", res(waitv(wv, 3, 0, &ts, CLOCK_BOOTTIME)));
    ts.tv_nsec = 1000000000;
    printf("bad timespec: %s\n", res(waitv(wv, 3, 0, &ts, CLOCK_MONOTONIC)));
    printf("flags: %s\n", res(waitv(wv, 3, 1, NULL, 0)));
    printf("nr 0: %s\n", res(waitv(wv, 0, 0, NULL, 0)));
    printf("nr 129: %s\n", res(waitv(wv, 129, 0, NULL, 0)));
    printf("null: %s\n", res(waitv(NULL, 1, 0, NULL, 0)));
    printf("bad pointer: %s\n", res(waitv((void *)8, 1, 0, NULL, 0)));
    struct waitv bad = wv[0];
    bad.flags = 0 | PRIV; /* size U8 */
    printf("size u8: %s\n", res(waitv(&bad, 1, 0, NULL, 0)));
    bad = wv[0];
    bad.reserved = 1;
    printf("reserved: %s\n", res(waitv(&bad, 1, 0, NULL, 0)));
    bad = wv[0];
    bad.uaddr += 1;
    printf("unaligned: %s\n", res(waitv(&bad, 1, 0, NULL, 0)));
    bad = wv[0];
    bad.val = 1ULL << 32;
    printf("val too big: %s\n", res(waitv(&bad, 1, 0, NULL, 0)));
    bad = wv[0];
    bad.uaddr = 8;
    printf("bad uaddr: %s\n", res(waitv(&bad, 1, 0, NULL, 0)));
    return 0;
}
