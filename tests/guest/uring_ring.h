/* The ring helpers the io_uring guest programs share: raw io_uring_setup /
 * io_uring_enter / io_uring_register, the rings mapped from the ring fd,
 * SQEs filled by hand and CQEs reaped from shared memory (liburing-style,
 * without liburing). Included by io_uring.c and io_uring_splice.c. */
#ifndef RUML_URING_RING_H
#define RUML_URING_RING_H
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define OUR_FEATURES (IORING_FEAT_SINGLE_MMAP | IORING_FEAT_NODROP | IORING_FEAT_SUBMIT_STABLE | \
                      IORING_FEAT_RW_CUR_POS | IORING_FEAT_FAST_POLL | IORING_FEAT_POLL_32BITS | \
                      IORING_FEAT_EXT_ARG)

struct ring {
    int fd;
    unsigned sq_entries, cq_entries;
    unsigned *sq_head, *sq_tail, *sq_mask, *sq_array, *sq_dropped, *sq_flags;
    unsigned *cq_head, *cq_tail, *cq_mask;
    struct io_uring_cqe *cqes;
    struct io_uring_sqe *sqes;
    unsigned local_tail;
    char *cq_base;
};

static inline int setup(unsigned entries, struct io_uring_params *p) {
    return syscall(__NR_io_uring_setup, entries, p);
}
static inline int enter(int fd, unsigned n, unsigned min, unsigned flags, void *arg, size_t sz) {
    return syscall(__NR_io_uring_enter, fd, n, min, flags, arg, sz);
}
static inline int reg(int fd, unsigned op, void *arg, unsigned n) {
    return syscall(__NR_io_uring_register, fd, op, arg, n);
}

static inline int ring_init(struct ring *r, unsigned entries) {
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    int fd = setup(entries, &p);
    if (fd < 0)
        return -1;
    r->fd = fd;
    r->sq_entries = p.sq_entries;
    r->cq_entries = p.cq_entries;
    size_t sqsz = p.sq_off.array + p.sq_entries * 4;
    size_t cqsz = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    char *sq = mmap(0, sqsz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
    char *cq = mmap(0, cqsz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_CQ_RING);
    r->sqes = mmap(0, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
    if (sq == MAP_FAILED || cq == MAP_FAILED || r->sqes == MAP_FAILED) {
        printf("mmap failed: %s\n", strerror(errno));
        exit(1);
    }
    r->sq_head = (unsigned *)(sq + p.sq_off.head);
    r->sq_tail = (unsigned *)(sq + p.sq_off.tail);
    r->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
    r->sq_array = (unsigned *)(sq + p.sq_off.array);
    r->sq_dropped = (unsigned *)(sq + p.sq_off.dropped);
    r->sq_flags = (unsigned *)(sq + p.sq_off.flags);
    r->cq_head = (unsigned *)(cq + p.cq_off.head);
    r->cq_tail = (unsigned *)(cq + p.cq_off.tail);
    r->cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
    r->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
    r->cq_base = cq;
    r->local_tail = *r->sq_tail;
    return 0;
}

static inline struct io_uring_sqe *get_sqe(struct ring *r) {
    unsigned idx = r->local_tail & *r->sq_mask;
    struct io_uring_sqe *s = &r->sqes[idx];
    memset(s, 0, sizeof *s);
    r->sq_array[idx] = idx;
    r->local_tail++;
    return s;
}

static inline int submit(struct ring *r, unsigned wait) {
    unsigned n = r->local_tail - *r->sq_tail;
    __atomic_store_n(r->sq_tail, r->local_tail, __ATOMIC_RELEASE);
    return enter(r->fd, n, wait, wait ? IORING_ENTER_GETEVENTS : 0, NULL, 0);
}

/* Reaps `n` CQEs (waiting for them) and prints them sorted by user_data. */
static inline void reap(struct ring *r, int n, const char *what) {
    struct io_uring_cqe got[64];
    int have = 0;
    while (have < n) {
        unsigned head = *r->cq_head;
        unsigned tail = __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE);
        if (head == tail) {
            int e = enter(r->fd, 0, 1, IORING_ENTER_GETEVENTS, NULL, 0);
            if (e < 0 && errno != EINTR) {
                printf("%s: enter: %s\n", what, strerror(errno));
                exit(1);
            }
            continue;
        }
        got[have++] = r->cqes[head & *r->cq_mask];
        __atomic_store_n(r->cq_head, head + 1, __ATOMIC_RELEASE);
    }
    for (int i = 0; i < have; i++)
        for (int j = i + 1; j < have; j++)
            if (got[j].user_data < got[i].user_data) {
                struct io_uring_cqe t = got[i];
                got[i] = got[j];
                got[j] = t;
            }
    for (int i = 0; i < have; i++) {
        int res = got[i].res;
        if (res < 0)
            printf("%s: ud=%llu res=%s\n", what, (unsigned long long)got[i].user_data, strerrorname_np(-res));
        else
            printf("%s: ud=%llu res=%d\n", what, (unsigned long long)got[i].user_data, res);
    }
}

static inline unsigned cq_ready(struct ring *r) {
    return __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE) - *r->cq_head;
}

static inline void prep(struct io_uring_sqe *s, int op, int fd, const void *addr, unsigned len, uint64_t off,
                 uint64_t ud) {
    s->opcode = op;
    s->fd = fd;
    s->addr = (uint64_t)(uintptr_t)addr;
    s->len = len;
    s->off = off;
    s->user_data = ud;
}

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            printf("FAILED %s:%d: %s (errno %s)\n", __FILE__, __LINE__, #cond,        \
                   strerrorname_np(errno));                                           \
            exit(1);                                                                  \
        }                                                                             \
    } while (0)

#define SHOW(label, expr)                                                   \
    do {                                                                    \
        errno = 0;                                                          \
        long _r = (long)(expr);                                             \
        int _e = errno;                                                     \
        printf("%s: %ld %s\n", label, _r, _r < 0 ? strerrorname_np(_e) : "-"); \
    } while (0)


#endif
