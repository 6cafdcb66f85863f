/* io_uring IORING_OP_SPLICE and IORING_OP_TEE, and ring mmaps Linux refuses
 * (lengths past a region, offsets naming none): raw system calls, output
 * compared with the host's. Ring helpers in uring_ring.h. */
#include "uring_ring.h"

int main(int argc, char **argv) {
    struct ring r;
    setvbuf(stdout, NULL, _IOLBF, 0);
    CHECK(ring_init(&r, 8) == 0);

    /* mmap of the ring fd: Linux up to 6.4 checks the offset and the
     * length (EINVAL), later kernels map a longer range that faults past
     * the ring, so this part runs under ruml only ("mmap"). */
    if (argc > 1 && strcmp(argv[1], "mmap") == 0) {
    SHOW("mmap cq ring 1 MiB", mmap(0, 1 << 20, PROT_READ, MAP_SHARED, r.fd, IORING_OFF_CQ_RING) == MAP_FAILED ? -1 : 0);
    SHOW("mmap sqes 1 MiB", mmap(0, 1 << 20, PROT_READ, MAP_SHARED, r.fd, IORING_OFF_SQES) == MAP_FAILED ? -1 : 0);
    SHOW("mmap bogus offset", mmap(0, 4096, PROT_READ, MAP_SHARED, r.fd, 0x1234000) == MAP_FAILED ? -1 : 0);
    SHOW("mmap sqes one page", mmap(0, 4096, PROT_READ, MAP_SHARED, r.fd, IORING_OFF_SQES) == MAP_FAILED ? -1 : 0);
    return 0;
    }

    char path[] = "/tmp/ruml-uring-splice-XXXXXX";
    int file = mkstemp(path);
    CHECK(file >= 0);
    unlink(path);
    CHECK(write(file, "hello splice world", 18) == 18);
    int p[2], q[2];
    CHECK(pipe(p) == 0 && pipe(q) == 0);

    /* file -> pipe at an explicit offset, then at the file position. */
    struct io_uring_sqe *s = get_sqe(&r);
    prep(s, IORING_OP_SPLICE, p[1], 0, 5, (uint64_t)-1, 1);
    s->splice_fd_in = file;
    s->splice_off_in = 6;
    submit(&r, 1);
    reap(&r, 1, "splice file->pipe");
    char buf[64] = {0};
    CHECK(read(p[0], buf, sizeof buf) == 5);
    printf("pipe got '%s'\n", buf);
    lseek(file, 0, SEEK_SET);
    s = get_sqe(&r);
    prep(s, IORING_OP_SPLICE, p[1], 0, 5, (uint64_t)-1, 2);
    s->splice_fd_in = file;
    s->splice_off_in = (uint64_t)-1;
    submit(&r, 1);
    reap(&r, 1, "splice at position");
    printf("file position now %ld\n", (long)lseek(file, 0, SEEK_CUR));

    /* tee the pipe into another, then splice the pipe into the file. */
    s = get_sqe(&r);
    prep(s, IORING_OP_TEE, q[1], 0, 64, 0, 3);
    s->splice_fd_in = p[0];
    submit(&r, 1);
    reap(&r, 1, "tee");
    memset(buf, 0, sizeof buf);
    CHECK(read(q[0], buf, sizeof buf) == 5);
    printf("tee copy '%s'\n", buf);
    s = get_sqe(&r);
    prep(s, IORING_OP_SPLICE, file, 0, 64, 100, 4);
    s->splice_fd_in = p[0];
    s->splice_off_in = (uint64_t)-1;
    submit(&r, 1);
    reap(&r, 1, "splice pipe->file");
    memset(buf, 0, sizeof buf);
    printf("pread at 100: %zd '%s'\n", pread(file, buf, sizeof buf, 100), buf);

    /* A splice from an empty pipe waits for data. */
    s = get_sqe(&r);
    prep(s, IORING_OP_SPLICE, q[1], 0, 16, (uint64_t)-1, 5);
    s->splice_fd_in = p[0];
    s->splice_off_in = (uint64_t)-1;
    submit(&r, 0);
    printf("pending before write: %u\n", cq_ready(&r));
    CHECK(write(p[1], "late", 4) == 4);
    reap(&r, 1, "splice waited");
    memset(buf, 0, sizeof buf);
    CHECK(read(q[0], buf, sizeof buf) == 4);
    printf("late data '%s'\n", buf);

    /* Errors. */
    s = get_sqe(&r);
    prep(s, IORING_OP_SPLICE, file, 0, 4, 0, 10);
    s->splice_fd_in = file;
    submit(&r, 1);
    reap(&r, 1, "error");
    s = get_sqe(&r);
    prep(s, IORING_OP_SPLICE, q[1], 0, 4, (uint64_t)-1, 11);
    s->splice_fd_in = p[0];
    s->splice_off_in = 0;
    submit(&r, 1);
    reap(&r, 1, "error");
    s = get_sqe(&r);
    prep(s, IORING_OP_SPLICE, q[1], 0, 4, (uint64_t)-1, 12);
    s->splice_fd_in = 999;
    s->splice_off_in = (uint64_t)-1;
    submit(&r, 1);
    reap(&r, 1, "error");
    s = get_sqe(&r);
    prep(s, IORING_OP_SPLICE, q[1], 0, 4, (uint64_t)-1, 13);
    s->splice_fd_in = p[0];
    s->splice_off_in = (uint64_t)-1;
    s->splice_flags = 0x100;
    submit(&r, 1);
    reap(&r, 1, "error");
    s = get_sqe(&r);
    prep(s, IORING_OP_TEE, q[1], 0, 4, 5, 14);
    s->splice_fd_in = p[0];
    submit(&r, 1);
    reap(&r, 1, "error");
    s = get_sqe(&r);
    prep(s, IORING_OP_SPLICE, q[1], 0, 4, (uint64_t)-1, 15);
    s->splice_fd_in = p[1];
    s->splice_off_in = (uint64_t)-1;
    submit(&r, 1);
    reap(&r, 1, "error");

    close(r.fd);
    printf("done\n");
    return 0;
}
