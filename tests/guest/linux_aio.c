/* Linux AIO through raw system calls, libaio-style: the completion ring's
 * header is read from user space and events reaped from it directly, as
 * libaio does. Deterministic output, compared with the host's. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

struct aio_ring {
    unsigned id, nr, head, tail, magic, compat_features, incompat_features, header_length;
    struct io_event events[];
};

#define SHOW(label, expr)                                                       \
    do {                                                                        \
        errno = 0;                                                              \
        long _r = (long)(expr);                                                 \
        int _e = errno;                                                         \
        printf("%s: %ld %s\n", label, _r, _r < 0 ? strerrorname_np(_e) : "-");  \
    } while (0)

static long setup(unsigned n, aio_context_t *c) { return syscall(__NR_io_setup, n, c); }
static long destroy(aio_context_t c) { return syscall(__NR_io_destroy, c); }
static long submit(aio_context_t c, long n, struct iocb **v) { return syscall(__NR_io_submit, c, n, v); }
static long getev(aio_context_t c, long min, long n, struct io_event *e, struct timespec *t) {
    return syscall(__NR_io_getevents, c, min, n, e, t);
}
static long cancel(aio_context_t c, struct iocb *cb, struct io_event *e) {
    return syscall(__NR_io_cancel, c, cb, e);
}

static void iocb(struct iocb *cb, int op, int fd, void *buf, size_t n, long off, uint64_t data) {
    memset(cb, 0, sizeof *cb);
    cb->aio_lio_opcode = op;
    cb->aio_fildes = fd;
    cb->aio_buf = (uint64_t)(uintptr_t)buf;
    cb->aio_nbytes = n;
    cb->aio_offset = off;
    cb->aio_data = data;
}

static void print_events(const char *what, struct io_event *e, int n) {
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (e[j].data < e[i].data) {
                struct io_event t = e[i];
                e[i] = e[j];
                e[j] = t;
            }
    for (int i = 0; i < n; i++) {
        if (e[i].res < 0)
            printf("%s: data=%llu res=%s\n", what, (unsigned long long)e[i].data, strerrorname_np(-e[i].res));
        else
            printf("%s: data=%llu res=%lld\n", what, (unsigned long long)e[i].data, (long long)e[i].res);
    }
}

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint64_t rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Random iocbs (ruml only): every one gets an errno or an event. */
static int fuzz(long count) {
    char dir[] = "/tmp/aiofuzz.XXXXXX";
    if (!mkdtemp(dir) || chdir(dir))
        return 1;
    int pp[2];
    if (pipe2(pp, O_NONBLOCK))
        return 1;
    int f = open("file", O_RDWR | O_CREAT, 0644);
    int efd = eventfd(0, EFD_NONBLOCK);
    int fds[] = {-1, 999, pp[0], pp[1], f, efd};
    static char scratch[65536];
    aio_context_t ctx = 0;
    if (setup(32, &ctx))
        return 1;
    struct aio_ring *ring = (struct aio_ring *)ctx;
    struct iocb cbs[16], *v[16];
    struct io_event ev[64];
    long done = 0;
    while (done < count) {
        int n = 1 + rnd() % 16;
        for (int i = 0; i < n; i++) {
            uint64_t *w = (uint64_t *)&cbs[i];
            for (unsigned j = 0; j < sizeof cbs[i] / 8; j++)
                w[j] = rnd();
            cbs[i].aio_lio_opcode = rnd() % 10;
            cbs[i].aio_fildes = fds[rnd() % 6];
            cbs[i].aio_reserved2 = (rnd() & 7) ? 0 : rnd();
            cbs[i].aio_flags = rnd() % 4;
            cbs[i].aio_resfd = fds[rnd() % 6];
            cbs[i].aio_nbytes = (rnd() & 1) ? rnd() % 4096 : rnd();
            cbs[i].aio_offset = (rnd() & 1) ? (long)(rnd() % 8192) : (long)rnd();
            cbs[i].aio_rw_flags = (rnd() & 3) ? 0 : rnd();
            switch (rnd() % 4) {
            case 0: cbs[i].aio_buf = (uint64_t)(uintptr_t)(scratch + rnd() % 32768); break;
            case 1: cbs[i].aio_buf = rnd() % 64; break;
            case 2: cbs[i].aio_buf = rnd(); break;
            default: cbs[i].aio_buf = 0; break;
            }
            v[i] = (rnd() % 32) ? &cbs[i] : (struct iocb *)(uintptr_t)rnd();
        }
        (void)!write(pp[1], "zz", 2);
        submit(ctx, n, v);
        struct timespec zero = {0, 0};
        getev(ctx, 0, 64, ev, &zero);
        if ((rnd() & 7) == 0)
            cancel(ctx, &cbs[rnd() % 16], ev);
        if ((rnd() & 15) == 0)
            ring->head = rnd();
        if ((rnd() & 31) == 0) {
            aio_context_t c2 = 0;
            if (setup(1 + rnd() % 512, &c2) == 0)
                destroy(c2);
        }
        done += n;
    }
    if (destroy(ctx))
        return 1;
    printf("fuzz: %ld iocbs, survived\n", done);
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 2 && !strcmp(argv[1], "fuzz"))
        return fuzz(atol(argv[2]));
    aio_context_t ctx = 0;
    SHOW("setup 0", setup(0, &ctx));
    ctx = 1;
    SHOW("setup nonzero ctx", setup(4, &ctx));
    SHOW("setup bad ptr", setup(4, (void *)8));
    SHOW("setup too many", setup(1u << 30, &ctx));
    ctx = 0;
    SHOW("setup", setup(8, &ctx));
    struct aio_ring *ring = (struct aio_ring *)ctx;
    printf("ring: magic=%#x header=%u nr_ok=%d head=%u tail=%u\n", ring->magic, ring->header_length,
           ring->nr >= 8, ring->head, ring->tail);

    char dir[] = "/tmp/linuxaio.XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char path[256];
    snprintf(path, sizeof path, "%s/data", dir);
    int f = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    const char *msg = "asynchronous hello\n";
    char rbuf[64], a[8], b[16];
    memset(rbuf, 0, sizeof rbuf);
    memset(a, 0, sizeof a);
    memset(b, 0, sizeof b);
    struct iocb cbs[8], *v[8];
    for (int i = 0; i < 8; i++)
        v[i] = &cbs[i];
    iocb(&cbs[0], IOCB_CMD_PWRITE, f, (void *)msg, strlen(msg), 0, 1);
    iocb(&cbs[1], IOCB_CMD_FSYNC, f, 0, 0, 0, 2);
    iocb(&cbs[2], IOCB_CMD_FDSYNC, f, 0, 0, 0, 3);
    iocb(&cbs[3], IOCB_CMD_PREAD, f, rbuf, 30, 6, 4);
    SHOW("submit 4", submit(ctx, 4, v));
    struct io_event ev[16];
    long n = getev(ctx, 4, 16, ev, NULL);
    printf("getevents: %ld\n", n);
    print_events("rw", ev, n);
    printf("obj ok: %d\n", ev[0].obj == (uint64_t)(uintptr_t)&cbs[0]);
    printf("read: %s", rbuf);
    struct iovec iv[2] = {{a, 5}, {b, 7}};
    iocb(&cbs[0], IOCB_CMD_PREADV, f, iv, 2, 0, 5);
    struct iovec wv[2] = {{"XY", 2}, {"Z", 1}};
    iocb(&cbs[1], IOCB_CMD_PWRITEV, f, wv, 2, 100, 6);
    SHOW("submit v", submit(ctx, 2, v));
    /* reap from the ring in user space, as libaio can */
    unsigned head = ring->head, tail = __atomic_load_n(&ring->tail, __ATOMIC_ACQUIRE);
    int k = 0;
    while (head != tail) {
        ev[k++] = ring->events[head];
        head = (head + 1) % ring->nr;
    }
    __atomic_store_n(&ring->head, head, __ATOMIC_RELEASE);
    printf("user-space reaped: %d\n", k);
    print_events("vec", ev, k);
    printf("readv: '%s' '%s'\n", a, b);
    struct timespec zero = {0, 0};
    SHOW("getevents empty", getev(ctx, 0, 4, ev, &zero));

    /* errors */
    iocb(&cbs[0], 6, f, 0, 0, 0, 7);
    SHOW("noop", submit(ctx, 1, v));
    iocb(&cbs[0], 42, f, 0, 0, 0, 7);
    SHOW("bad opcode", submit(ctx, 1, v));
    iocb(&cbs[0], IOCB_CMD_PREAD, 999, rbuf, 1, 0, 7);
    SHOW("bad fd", submit(ctx, 1, v));
    iocb(&cbs[0], IOCB_CMD_PREAD, f, rbuf, 1, 0, 7);
    cbs[0].aio_reserved2 = 1;
    SHOW("reserved2", submit(ctx, 1, v));
    iocb(&cbs[0], IOCB_CMD_PREAD, f, rbuf, 1, -1, 7);
    SHOW("negative offset", submit(ctx, 1, v));
    SHOW("negative nr", submit(ctx, -1, v));
    SHOW("zero nr", submit(ctx, 0, v));
    SHOW("bad ctx", submit(12345, 1, v));
    SHOW("min > nr", getev(ctx, 3, 2, ev, &zero));
    SHOW("getevents bad ctx", getev(12345, 0, 1, ev, &zero));
    int wo = open(path, O_WRONLY);
    iocb(&cbs[0], IOCB_CMD_PREAD, wo, rbuf, 1, 0, 7);
    SHOW("read on O_WRONLY", submit(ctx, 1, v));
    int pp[2];
    if (pipe(pp))
        return 1;
    iocb(&cbs[0], IOCB_CMD_FSYNC, pp[0], 0, 0, 0, 7);
    SHOW("fsync pipe", submit(ctx, 1, v));
    iocb(&cbs[0], IOCB_CMD_PREAD, f, rbuf, 1, 0, 8);
    iocb(&cbs[1], IOCB_CMD_PREAD, 999, rbuf, 1, 0, 9);
    SHOW("second fails", submit(ctx, 2, v));
    n = getev(ctx, 1, 4, ev, NULL);
    print_events("first of two", ev, n);

    /* poll: asynchronous, woken by a write; cancel */
    iocb(&cbs[0], IOCB_CMD_POLL, pp[0], (void *)(uintptr_t)POLLIN, 0, 0, 10);
    SHOW("submit poll", submit(ctx, 1, v));
    SHOW("poll not ready", getev(ctx, 0, 4, ev, &zero));
    if (write(pp[1], "x", 1) != 1)
        return 1;
    n = getev(ctx, 1, 4, ev, NULL);
    print_events("poll", ev, n);
    char c;
    if (read(pp[0], &c, 1) != 1)
        return 1;
    iocb(&cbs[0], IOCB_CMD_POLL, pp[0], (void *)(uintptr_t)POLLIN, 0, 0, 11);
    SHOW("submit poll 2", submit(ctx, 1, v));
    SHOW("cancel", cancel(ctx, &cbs[0], ev));
    n = getev(ctx, 1, 4, ev, NULL);
    print_events("cancelled poll", ev, n);
    SHOW("cancel again", cancel(ctx, &cbs[0], ev));

    /* an eventfd told of each completion */
    int efd = eventfd(0, 0);
    iocb(&cbs[0], IOCB_CMD_PREAD, f, rbuf, 4, 0, 12);
    cbs[0].aio_flags = IOCB_FLAG_RESFD;
    cbs[0].aio_resfd = efd;
    SHOW("submit resfd", submit(ctx, 1, v));
    uint64_t cnt = 0;
    SHOW("eventfd read", read(efd, &cnt, 8));
    printf("eventfd count %llu\n", (unsigned long long)cnt);
    n = getev(ctx, 1, 4, ev, NULL);
    print_events("resfd", ev, n);
    cbs[0].aio_resfd = pp[0];
    SHOW("resfd not eventfd", submit(ctx, 1, v));

    /* io_pgetevents with a timeout */
    struct timespec t10 = {0, 10 * 1000 * 1000};
    SHOW("pgetevents timeout", syscall(__NR_io_pgetevents, ctx, 1, 4, ev, &t10, NULL));

    SHOW("destroy", destroy(ctx));
    SHOW("destroy again", destroy(ctx));
    SHOW("submit after destroy", submit(ctx, 1, v));
    unlink(path);
    rmdir(dir);
    printf("done\n");
    return 0;
}
