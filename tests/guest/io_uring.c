/* io_uring through raw system calls, liburing-style: rings mapped from the
 * ring fd, SQEs filled by hand, CQEs reaped from shared memory. The output
 * is deterministic, so it is compared with the host's (differential).
 * With "fuzz N" as arguments it submits N random SQEs instead (ruml only:
 * the kernel must survive them). */
#include "uring_ring.h"

static void errors(void) {
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    SHOW("setup(0)", setup(0, &p));
    memset(&p, 0, sizeof p);
    SHOW("setup(100000)", setup(100000, &p));
    memset(&p, 0, sizeof p);
    p.flags = IORING_SETUP_CLAMP;
    int fd = setup(100000, &p);
    printf("setup clamp: ok=%d sq=%u cq=%u\n", fd >= 0, p.sq_entries, p.cq_entries);
    close(fd);
    memset(&p, 0, sizeof p);
    p.flags = 1u << 31;
    SHOW("setup bad flags", setup(4, &p));
    memset(&p, 0, sizeof p);
    p.resv[1] = 1;
    SHOW("setup resv", setup(4, &p));
    SHOW("setup bad params", setup(4, (void *)8));
    memset(&p, 0, sizeof p);
    p.flags = IORING_SETUP_CQSIZE;
    p.cq_entries = 2;
    SHOW("setup cq < sq", setup(4, &p));
    memset(&p, 0, sizeof p);
    p.flags = IORING_SETUP_CQSIZE;
    p.cq_entries = 100;
    fd = setup(4, &p);
    printf("setup cqsize: sq=%u cq=%u\n", p.sq_entries, p.cq_entries);
    close(fd);
    int pfd[2];
    CHECK(pipe(pfd) == 0);
    SHOW("enter on pipe", enter(pfd[0], 0, 0, 0, NULL, 0));
    SHOW("enter on bad fd", enter(999, 0, 0, 0, NULL, 0));
    SHOW("register on pipe", reg(pfd[0], IORING_REGISTER_PROBE, NULL, 0));
    close(pfd[0]);
    close(pfd[1]);
}

int fuzz(long count);

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    if (argc > 2 && !strcmp(argv[1], "fuzz"))
        return fuzz(atol(argv[2]));
    errors();

    struct ring r;
    CHECK(ring_init(&r, 8) == 0);
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    int fd2 = setup(8, &p);
    printf("params: sq=%u cq=%u features_ok=%d\n", p.sq_entries, p.cq_entries,
           (p.features & OUR_FEATURES) == OUR_FEATURES);
    close(fd2);

    /* enter's own errors */
    SHOW("enter bad flags", enter(r.fd, 0, 0, 1u << 30, NULL, 0));
    struct io_uring_getevents_arg ga;
    memset(&ga, 0, sizeof ga);
    SHOW("ext_arg bad size", enter(r.fd, 0, 1, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &ga, 8));
    struct __kernel_timespec ts = {0, 20 * 1000 * 1000};
    ga.ts = (uint64_t)(uintptr_t)&ts;
    SHOW("ext_arg timeout", enter(r.fd, 0, 1, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &ga, sizeof ga));

    /* probe */
    struct io_uring_probe *pr = calloc(1, sizeof *pr + 256 * sizeof(struct io_uring_probe_op));
    CHECK(reg(r.fd, IORING_REGISTER_PROBE, pr, 256) == 0);
    static const int ours[] = {IORING_OP_NOP, IORING_OP_READV, IORING_OP_WRITEV, IORING_OP_FSYNC,
                               IORING_OP_READ_FIXED, IORING_OP_WRITE_FIXED, IORING_OP_POLL_ADD,
                               IORING_OP_POLL_REMOVE, IORING_OP_SENDMSG, IORING_OP_RECVMSG,
                               IORING_OP_TIMEOUT, IORING_OP_TIMEOUT_REMOVE, IORING_OP_ACCEPT,
                               IORING_OP_ASYNC_CANCEL, IORING_OP_CONNECT, IORING_OP_OPENAT,
                               IORING_OP_CLOSE, IORING_OP_STATX, IORING_OP_READ, IORING_OP_WRITE,
                               IORING_OP_SEND, IORING_OP_RECV};
    int all = 1;
    for (unsigned i = 0; i < sizeof ours / sizeof ours[0]; i++)
        all &= (pr->ops[ours[i]].flags & IO_URING_OP_SUPPORTED) != 0;
    printf("probe: ops_len>=%d all_supported=%d\n", pr->ops_len >= 28, all);

    /* NOPs, one of them IOSQE_ASYNC (the worker) */
    prep(get_sqe(&r), IORING_OP_NOP, -1, 0, 0, 0, 1);
    prep(get_sqe(&r), IORING_OP_NOP, -1, 0, 0, 0, 2);
    struct io_uring_sqe *s = get_sqe(&r);
    prep(s, IORING_OP_NOP, -1, 0, 0, 0, 3);
    s->flags = IOSQE_ASYNC;
    printf("submit nops: %d\n", submit(&r, 3));
    reap(&r, 3, "nop");

    /* bad SQEs: unknown opcode, unknown flag */
    s = get_sqe(&r);
    prep(s, 250, -1, 0, 0, 0, 10);
    printf("submit bad op: %d\n", submit(&r, 0));
    reap(&r, 1, "bad op");
    s = get_sqe(&r);
    prep(s, IORING_OP_NOP, -1, 0, 0, 0, 11);
    s->flags = 0x80;
    submit(&r, 0);
    reap(&r, 1, "bad flags");

    /* files: write, fsync, read, vectored, current position */
    char dir[] = "/tmp/iouring.XXXXXX";
    CHECK(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/data", dir);
    int f = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(f >= 0);
    const char *msg = "hello io_uring world\n";
    char buf[256];
    memset(buf, 0, sizeof buf);
    s = get_sqe(&r);
    prep(s, IORING_OP_WRITE, f, msg, strlen(msg), 0, 20);
    s->flags = IOSQE_IO_LINK;
    s = get_sqe(&r);
    prep(s, IORING_OP_FSYNC, f, 0, 0, 0, 21);
    s->flags = IOSQE_IO_LINK;
    prep(get_sqe(&r), IORING_OP_READ, f, buf, 100, 6, 22);
    printf("submit rw: %d\n", submit(&r, 3));
    reap(&r, 3, "rw");
    printf("read back: %s", buf);
    char a[8], b[8];
    struct iovec iov[2] = {{a, 5}, {b, 6}};
    memset(a, 0, sizeof a);
    memset(b, 0, sizeof b);
    prep(get_sqe(&r), IORING_OP_READV, f, iov, 2, 0, 23);
    submit(&r, 1);
    reap(&r, 1, "readv");
    printf("readv: '%s' '%s'\n", a, b);
    struct iovec wv[2] = {{"ABC", 3}, {"defg", 4}};
    prep(get_sqe(&r), IORING_OP_WRITEV, f, wv, 2, 100, 24);
    submit(&r, 1);
    reap(&r, 1, "writev");
    lseek(f, 2, SEEK_SET);
    memset(buf, 0, sizeof buf);
    prep(get_sqe(&r), IORING_OP_READ, f, buf, 4, (uint64_t)-1, 25);
    submit(&r, 1);
    reap(&r, 1, "read at pos");
    printf("at pos: '%s' now %ld\n", buf, (long)lseek(f, 0, SEEK_CUR));
    struct stat st;
    fstat(f, &st);
    printf("size %ld\n", (long)st.st_size);
    prep(get_sqe(&r), IORING_OP_READ, f, (void *)16, 10, 0, 26);
    prep(get_sqe(&r), IORING_OP_READ, 999, buf, 10, 0, 27);
    prep(get_sqe(&r), IORING_OP_READ, f, buf, 10, (uint64_t)-5, 28);
    submit(&r, 3);
    reap(&r, 3, "rw errors");

    /* a failed link cancels the rest of its chain; a hard link does not */
    s = get_sqe(&r);
    prep(s, IORING_OP_READ, 999, buf, 10, 0, 30);
    s->flags = IOSQE_IO_LINK;
    s = get_sqe(&r);
    prep(s, IORING_OP_NOP, -1, 0, 0, 0, 31);
    s->flags = IOSQE_IO_LINK;
    prep(get_sqe(&r), IORING_OP_NOP, -1, 0, 0, 0, 32);
    s = get_sqe(&r);
    prep(s, IORING_OP_READ, 999, buf, 10, 0, 33);
    s->flags = IOSQE_IO_HARDLINK;
    prep(get_sqe(&r), IORING_OP_NOP, -1, 0, 0, 0, 34);
    submit(&r, 5);
    reap(&r, 5, "links");

    /* registered buffers and files */
    static char fixed[2][64];
    struct iovec bufs[2] = {{fixed[0], 64}, {fixed[1], 64}};
    printf("register buffers: %d\n", reg(r.fd, IORING_REGISTER_BUFFERS, bufs, 2));
    SHOW("register buffers again", reg(r.fd, IORING_REGISTER_BUFFERS, bufs, 2));
    s = get_sqe(&r);
    prep(s, IORING_OP_READ_FIXED, f, fixed[1], 10, 0, 40);
    s->buf_index = 1;
    s = get_sqe(&r);
    prep(s, IORING_OP_READ_FIXED, f, fixed[1] + 60, 10, 0, 41);
    s->buf_index = 1;
    s = get_sqe(&r);
    prep(s, IORING_OP_READ_FIXED, f, fixed[0], 10, 0, 42);
    s->buf_index = 7;
    strcpy(fixed[0], "FIXED");
    s = get_sqe(&r);
    prep(s, IORING_OP_WRITE_FIXED, f, fixed[0], 5, 200, 43);
    s->buf_index = 0;
    submit(&r, 4);
    reap(&r, 4, "fixed");
    printf("fixed read: '%.10s'\n", fixed[1]);
    printf("unregister buffers: %d\n", reg(r.fd, IORING_UNREGISTER_BUFFERS, NULL, 0));
    SHOW("unregister buffers again", reg(r.fd, IORING_UNREGISTER_BUFFERS, NULL, 0));
    int fds[3] = {-1, f, -1};
    printf("register files: %d\n", reg(r.fd, IORING_REGISTER_FILES, fds, 3));
    memset(buf, 0, sizeof buf);
    s = get_sqe(&r);
    prep(s, IORING_OP_READ, 1, buf, 5, 0, 44);
    s->flags = IOSQE_FIXED_FILE;
    s = get_sqe(&r);
    prep(s, IORING_OP_READ, 0, buf + 10, 5, 0, 45);
    s->flags = IOSQE_FIXED_FILE;
    s = get_sqe(&r);
    prep(s, IORING_OP_READ, 9, buf + 10, 5, 0, 46);
    s->flags = IOSQE_FIXED_FILE;
    submit(&r, 3);
    reap(&r, 3, "fixed file");
    printf("fixed file read: '%s'\n", buf);
    int self[1] = {r.fd};
    struct io_uring_files_update up = {.offset = 2, .fds = (uint64_t)(uintptr_t)self};
    SHOW("files update with ring", reg(r.fd, IORING_REGISTER_FILES_UPDATE, &up, 1));
    printf("unregister files: %d\n", reg(r.fd, IORING_UNREGISTER_FILES, NULL, 0));

    /* openat, statx, close */
    struct statx sx;
    prep(get_sqe(&r), IORING_OP_STATX, AT_FDCWD, path, STATX_SIZE, (uint64_t)(uintptr_t)&sx, 50);
    submit(&r, 1);
    reap(&r, 1, "statx");
    printf("statx size %llu\n", (unsigned long long)sx.stx_size);
    s = get_sqe(&r);
    prep(s, IORING_OP_OPENAT, AT_FDCWD, path, 0, 0, 51);
    s->open_flags = O_RDONLY;
    submit(&r, 1);
    unsigned head = *r.cq_head;
    while (cq_ready(&r) == 0)
        enter(r.fd, 0, 1, IORING_ENTER_GETEVENTS, NULL, 0);
    int nfd = r.cqes[head & *r.cq_mask].res;
    *r.cq_head = head + 1;
    printf("openat: ok=%d\n", nfd >= 0);
    prep(get_sqe(&r), IORING_OP_CLOSE, nfd, 0, 0, 0, 52);
    prep(get_sqe(&r), IORING_OP_CLOSE, nfd, 0, 0, 0, 53);
    submit(&r, 2);
    reap(&r, 2, "close");
    s = get_sqe(&r);
    prep(s, IORING_OP_OPENAT, AT_FDCWD, "/nonexistent/x", 0, 0, 54);
    submit(&r, 1);
    reap(&r, 1, "openat missing");

    /* pipes: a read that waits, a poll, cancel, drain */
    int pp[2];
    CHECK(pipe(pp) == 0);
    memset(buf, 0, sizeof buf);
    prep(get_sqe(&r), IORING_OP_READ, pp[0], buf, 100, 0, 60);
    int sub1 = submit(&r, 0);
    printf("submit pipe read: %d ready=%u\n", sub1, cq_ready(&r));
    CHECK(write(pp[1], "through the pipe", 16) == 16);
    reap(&r, 1, "pipe read");
    printf("pipe data: '%s'\n", buf);
    s = get_sqe(&r);
    prep(s, IORING_OP_POLL_ADD, pp[0], 0, 0, 0, 61);
    s->poll32_events = POLLIN;
    submit(&r, 0);
    printf("poll pending: ready=%u\n", cq_ready(&r));
    CHECK(write(pp[1], "x", 1) == 1);
    reap(&r, 1, "poll");
    CHECK(read(pp[0], buf, 1) == 1);
    s = get_sqe(&r);
    prep(s, IORING_OP_POLL_ADD, pp[0], 0, 0, 0, 62);
    s->poll32_events = POLLIN;
    s = get_sqe(&r);
    prep(s, IORING_OP_POLL_REMOVE, -1, 0, 0, 0, 63);
    s->addr = 62;
    s = get_sqe(&r);
    prep(s, IORING_OP_POLL_REMOVE, -1, 0, 0, 0, 64);
    s->addr = 12345;
    submit(&r, 3);
    reap(&r, 3, "poll remove");
    prep(get_sqe(&r), IORING_OP_READ, pp[0], buf, 10, 0, 65);
    s = get_sqe(&r);
    prep(s, IORING_OP_ASYNC_CANCEL, -1, 0, 0, 0, 66);
    s->addr = 65;
    s = get_sqe(&r);
    prep(s, IORING_OP_ASYNC_CANCEL, -1, 0, 0, 0, 67);
    s->addr = 999;
    submit(&r, 3);
    reap(&r, 3, "cancel");
    memset(buf, 0, sizeof buf);
    prep(get_sqe(&r), IORING_OP_READ, pp[0], buf, 10, 0, 70);
    s = get_sqe(&r);
    prep(s, IORING_OP_NOP, -1, 0, 0, 0, 71);
    s->flags = IOSQE_IO_DRAIN;
    submit(&r, 0);
    printf("drain: ready=%u\n", cq_ready(&r));
    CHECK(write(pp[1], "drained", 7) == 7);
    reap(&r, 2, "drain");
    /* writes to a pipe with no reader */
    close(pp[0]);
    prep(get_sqe(&r), IORING_OP_WRITE, pp[1], "x", 1, 0, 72);
    submit(&r, 1);
    reap(&r, 1, "epipe");
    close(pp[1]);

    /* timeouts */
    struct __kernel_timespec t10 = {0, 10 * 1000 * 1000};
    prep(get_sqe(&r), IORING_OP_TIMEOUT, -1, &t10, 1, 0, 80);
    submit(&r, 1);
    reap(&r, 1, "timeout");
    struct __kernel_timespec t100s = {100, 0};
    prep(get_sqe(&r), IORING_OP_TIMEOUT, -1, &t100s, 1, 1, 81);
    prep(get_sqe(&r), IORING_OP_NOP, -1, 0, 0, 0, 82);
    submit(&r, 2);
    reap(&r, 2, "timeout count");
    prep(get_sqe(&r), IORING_OP_TIMEOUT, -1, &t100s, 1, 0, 83);
    s = get_sqe(&r);
    prep(s, IORING_OP_TIMEOUT_REMOVE, -1, 0, 0, 0, 84);
    s->addr = 83;
    s = get_sqe(&r);
    prep(s, IORING_OP_TIMEOUT_REMOVE, -1, 0, 0, 0, 85);
    s->addr = 83;
    submit(&r, 3);
    reap(&r, 3, "timeout remove");
    prep(get_sqe(&r), IORING_OP_TIMEOUT, -1, &t10, 2, 0, 86);
    submit(&r, 1);
    reap(&r, 1, "timeout bad len");
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    struct __kernel_timespec abs = {now.tv_sec, now.tv_nsec};
    s = get_sqe(&r);
    prep(s, IORING_OP_TIMEOUT, -1, &abs, 1, 0, 87);
    s->timeout_flags = IORING_TIMEOUT_ABS;
    submit(&r, 1);
    reap(&r, 1, "timeout abs");

    /* sockets: socketpair send/recv, sendmsg/recvmsg; TCP accept/connect */
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    memset(buf, 0, sizeof buf);
    prep(get_sqe(&r), IORING_OP_RECV, sv[1], buf, 100, 0, 90);
    submit(&r, 0);
    printf("recv pending: ready=%u\n", cq_ready(&r));
    prep(get_sqe(&r), IORING_OP_SEND, sv[0], "sent by io_uring", 16, 0, 91);
    submit(&r, 0);
    reap(&r, 2, "send/recv");
    printf("received: '%s'\n", buf);
    struct iovec miov = {(void *)"message", 7};
    struct msghdr mh = {.msg_iov = &miov, .msg_iovlen = 1};
    prep(get_sqe(&r), IORING_OP_SENDMSG, sv[1], &mh, 1, 0, 92);
    submit(&r, 1);
    reap(&r, 1, "sendmsg");
    char mb[32];
    memset(mb, 0, sizeof mb);
    struct iovec riov = {mb, sizeof mb};
    struct msghdr rh = {.msg_iov = &riov, .msg_iovlen = 1};
    prep(get_sqe(&r), IORING_OP_RECVMSG, sv[0], &rh, 1, 0, 93);
    submit(&r, 1);
    reap(&r, 1, "recvmsg");
    printf("recvmsg: '%s'\n", mb);
    prep(get_sqe(&r), IORING_OP_SEND, f, "x", 1, 0, 94);
    submit(&r, 1);
    reap(&r, 1, "send on file");
    close(sv[0]);
    close(sv[1]);

    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK(bind(ls, (void *)&sa, sizeof sa) == 0);
    CHECK(listen(ls, 4) == 0);
    socklen_t sl = sizeof sa;
    getsockname(ls, (void *)&sa, &sl);
    prep(get_sqe(&r), IORING_OP_ACCEPT, ls, 0, 0, 0, 100);
    submit(&r, 0);
    printf("accept pending: ready=%u\n", cq_ready(&r));
    int cs = socket(AF_INET, SOCK_STREAM, 0);
    prep(get_sqe(&r), IORING_OP_CONNECT, cs, &sa, 0, sizeof sa, 101);
    submit(&r, 0);
    unsigned seen = 0;
    int afd = -1;
    while (seen < 2) {
        while (cq_ready(&r) == 0)
            enter(r.fd, 0, 1, IORING_ENTER_GETEVENTS, NULL, 0);
        struct io_uring_cqe c = r.cqes[*r.cq_head & *r.cq_mask];
        (*r.cq_head)++;
        if (c.user_data == 100)
            afd = c.res;
        else
            printf("connect: %d\n", c.res);
        seen++;
    }
    printf("accepted: ok=%d\n", afd >= 0);
    memset(buf, 0, sizeof buf);
    prep(get_sqe(&r), IORING_OP_RECV, afd, buf, 5, 0, 102);
    prep(get_sqe(&r), IORING_OP_SEND, cs, "tcp!!", 5, 0, 103);
    submit(&r, 0);
    reap(&r, 2, "tcp");
    printf("tcp data: '%s'\n", buf);
    close(afd);
    close(cs);
    close(ls);

    /* eventfd notification, dropped SQ entries */
    int efd = eventfd(0, EFD_NONBLOCK);
    printf("register eventfd: %d\n", reg(r.fd, IORING_REGISTER_EVENTFD, &efd, 1));
    prep(get_sqe(&r), IORING_OP_NOP, -1, 0, 0, 0, 110);
    prep(get_sqe(&r), IORING_OP_NOP, -1, 0, 0, 0, 111);
    submit(&r, 2);
    reap(&r, 2, "eventfd nop");
    uint64_t ev = 0;
    int got = (int)read(efd, &ev, 8);
    printf("eventfd: %d signalled=%d\n", got, ev >= 1);
    printf("unregister eventfd: %d\n", reg(r.fd, IORING_UNREGISTER_EVENTFD, NULL, 0));
    unsigned idx = r.local_tail & *r.sq_mask;
    r.sq_array[idx] = 1000;
    r.local_tail++;
    int sub = submit(&r, 0);
    printf("submit dropped: %d dropped=%u\n", sub, *r.sq_dropped);
    prep(get_sqe(&r), IORING_OP_NOP, -1, 0, 0, 0, 112);
    submit(&r, 1);
    reap(&r, 1, "after drop");

    /* the rings really are shared: a second mapping sees the same CQ */
    char *again = mmap(0, 4096, PROT_READ, MAP_SHARED, r.fd, IORING_OFF_CQ_RING);
    CHECK(again != MAP_FAILED);
    printf("second mapping agrees: %d\n", *(unsigned *)(again + ((char *)r.cq_tail - r.cq_base)) == *r.cq_tail);
    close(r.fd);
    unlink(path);
    rmdir(dir);
    printf("done\n");
    return 0;
}

/* --- fuzz -------------------------------------------------------------- */

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

int fuzz(long count) {
    char dir[] = "/tmp/iofuzz.XXXXXX";
    CHECK(mkdtemp(dir));
    CHECK(chdir(dir) == 0);
    struct ring r;
    CHECK(ring_init(&r, 32) == 0);
    int pp[2], sv[2];
    CHECK(pipe(pp) == 0);
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    int f = open("file", O_RDWR | O_CREAT, 0644);
    fcntl(pp[1], F_SETFL, O_NONBLOCK);
    int fdset[] = {-1, 999, pp[0], pp[1], sv[0], sv[1], f, AT_FDCWD};
    char *scratch = mmap(0, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    static struct iovec regb[2];
    regb[0].iov_base = scratch;
    regb[0].iov_len = 4096;
    regb[1].iov_base = scratch + 8192;
    regb[1].iov_len = 4096;
    reg(r.fd, IORING_REGISTER_BUFFERS, regb, 2);
    int rf[2] = {pp[0], f};
    reg(r.fd, IORING_REGISTER_FILES, rf, 2);
    long submitted = 0;
    while (submitted < count) {
        for (int i = 0; i < 64; i++)
            scratch[rnd() % 65536] = rnd();
        /* a valid short path, iovecs and timespecs somewhere in scratch */
        strcpy(scratch + 1024, (rnd() & 1) ? "file" : "newfile");
        struct iovec *iv = (struct iovec *)(scratch + 2048);
        iv[0].iov_base = scratch + 16384;
        iv[0].iov_len = rnd() % 8192;
        struct __kernel_timespec *ts = (struct __kernel_timespec *)(scratch + 3072);
        ts->tv_sec = 0;
        ts->tv_nsec = rnd() % 2000000;
        unsigned n = 1 + rnd() % 8;
        for (unsigned k = 0; k < n; k++) {
            struct io_uring_sqe *s = get_sqe(&r);
            uint64_t *w = (uint64_t *)s;
            for (int j = 0; j < 8; j++)
                w[j] = rnd();
            s->opcode = (rnd() & 3) ? rnd() % 28 : rnd() % 256;
            s->flags = (rnd() & 3) ? rnd() % 32 & ~IOSQE_FIXED_FILE : rnd() % 256;
            if (s->opcode == IORING_OP_CLOSE || s->opcode == IORING_OP_TIMEOUT)
                s->flags &= ~IOSQE_ASYNC;
            s->fd = (s->flags & IOSQE_FIXED_FILE) ? rnd() % 3 : fdset[rnd() % 8];
            if (s->opcode == IORING_OP_CLOSE)
                s->fd = 999;
            static const uint64_t addrs[] = {0, 8, 0xffff800000000000ull, 0x7fffffffe000ull};
            switch (rnd() % 6) {
            case 0: s->addr = addrs[rnd() % 4]; break;
            case 1: s->addr = (uint64_t)(uintptr_t)(scratch + 1024); break;
            case 2: s->addr = (uint64_t)(uintptr_t)(scratch + 2048); break;
            case 3: s->addr = (uint64_t)(uintptr_t)(scratch + 3072); break;
            default: s->addr = (uint64_t)(uintptr_t)(scratch + rnd() % 65536); break;
            }
            s->len = (rnd() & 1) ? rnd() % 4 : rnd();
            if ((rnd() & 3) == 0)
                s->off = rnd() % 8192;
            if (s->opcode == IORING_OP_OPENAT && (s->open_flags & O_CREAT))
                s->open_flags &= ~(O_DIRECTORY);
            s->personality = 0;
            s->buf_index = rnd() % 3;
        }
        if ((rnd() & 15) == 0) {
            struct io_uring_sqe *s = get_sqe(&r);
            prep(s, IORING_OP_ASYNC_CANCEL, -1, 0, 0, 0, 7);
            s->cancel_flags = IORING_ASYNC_CANCEL_ANY;
        }
        int e = submit(&r, 0);
        if (e < 0 && errno != EBUSY && errno != EINTR) {
            printf("submit: %s\n", strerrorname_np(errno));
            return 1;
        }
        submitted += n;
        /* reap what is there, without waiting long */
        struct __kernel_timespec t = {0, 1000000};
        struct io_uring_getevents_arg ga = {.ts = (uint64_t)(uintptr_t)&t};
        enter(r.fd, 0, 1, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &ga, sizeof ga);
        __atomic_store_n(r.cq_head, __atomic_load_n(r.cq_tail, __ATOMIC_ACQUIRE), __ATOMIC_RELEASE);
        if ((rnd() & 7) == 0) {
            (void)!write(pp[1], "zz", 2);
            send(sv[0], "zz", 2, MSG_DONTWAIT);
            send(sv[1], "zz", 2, MSG_DONTWAIT);
        }
        /* random garbage in the shared ring words the kernel owns */
        if ((rnd() & 15) == 0)
            *r.cq_head += rnd() % 3;
        if ((rnd() & 31) == 0)
            r.sq_array[rnd() % r.sq_entries] = rnd();
    }
    close(r.fd);
    /* one long chain whose head fails: every member is cancelled */
    struct ring big;
    CHECK(ring_init(&big, 4096) == 0);
    for (unsigned i = 0; i < big.sq_entries; i++) {
        struct io_uring_sqe *s = get_sqe(&big);
        prep(s, i ? IORING_OP_NOP : IORING_OP_READ, i ? -1 : 999, scratch, 1, 0, i);
        if (i + 1 < big.sq_entries)
            s->flags = IOSQE_IO_LINK;
    }
    int sub = submit(&big, big.sq_entries);
    unsigned cancelled = 0, seen = 0;
    while (seen < big.sq_entries) {
        while (cq_ready(&big) == 0)
            enter(big.fd, 0, 1, IORING_ENTER_GETEVENTS, NULL, 0);
        struct io_uring_cqe c = big.cqes[*big.cq_head & *big.cq_mask];
        (*big.cq_head)++;
        seen++;
        cancelled += c.res == -ECANCELED;
    }
    printf("long chain: submitted %d, cancelled %u\n", sub, cancelled);
    close(big.fd);
    printf("fuzz: %ld sqes, survived\n", submitted);
    return 0;
}
