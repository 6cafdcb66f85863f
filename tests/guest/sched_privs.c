/* Scheduling and nice privilege rules: setpriority/getpriority (PRIO_PROCESS,
 * PRIO_USER), sched_setscheduler/sched_setparam/sched_setattr/sched_getattr
 * with their argument errors, SCHED_RESET_ON_FORK and inheritance at fork, as
 * root and, in children, as an unprivileged user with RLIMIT_NICE and
 * RLIMIT_RTPRIO at 0 and then raised. Must start as root (uid 12345 has no
 * other processes, so PRIO_USER touches only this test's). */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define UID 12345

struct attr {
    uint32_t size, policy;
    uint64_t flags;
    int32_t nice;
    uint32_t priority;
    uint64_t runtime, deadline, period;
    uint32_t util_min, util_max;
};

static const char *err(long r) {
    static char buf[64];
    if (r >= 0) {
        snprintf(buf, sizeof buf, "%ld", r);
        return buf;
    }
    return strerrorname_np(errno) ? strerrorname_np(errno) : "?";
}

#define SHOW(what, call)                                                       \
    do {                                                                       \
        errno = 0;                                                             \
        long r_ = (long)(call);                                                \
        printf("%s: %s\n", what, err(r_));                                     \
    } while (0)

static long setsched(pid_t pid, int policy, int prio) {
    struct sched_param p = {.sched_priority = prio};
    return syscall(SYS_sched_setscheduler, pid, policy, &p);
}

static long setattr(pid_t pid, struct attr *a, unsigned flags) {
    return syscall(SYS_sched_setattr, pid, a, flags);
}

static long getattr(pid_t pid, struct attr *a, unsigned size, unsigned flags) {
    return syscall(SYS_sched_getattr, pid, a, size, flags);
}

/* getpriority's value, or its error, as a line. */
static void showprio(const char *what, int which, int who) {
    errno = 0;
    int r = getpriority(which, who);
    if (errno)
        printf("%s: %s\n", what, strerrorname_np(errno));
    else
        printf("%s: nice %d\n", what, r);
}

static void state(const char *tag) {
    struct sched_param p;
    sched_getparam(0, &p);
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, 0);
    printf("%s: policy=%#x prio=%d nice=%d\n", tag, sched_getscheduler(0), p.sched_priority,
           nice);
}

static void drop(rlim_t nice, rlim_t rtprio) {
    struct rlimit n = {nice, nice}, r = {rtprio, rtprio};
    setrlimit(RLIMIT_NICE, &n);
    setrlimit(RLIMIT_RTPRIO, &r);
    if (setresgid(UID, UID, UID) || setresuid(UID, UID, UID)) {
        printf("cannot drop privileges\n");
        exit(1);
    }
}

static void wait_child(pid_t pid) {
    int st;
    waitpid(pid, &st, 0);
    printf("child exit: %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st));
}

static void unprivileged_no_limits(pid_t root_pid) {
    drop(0, 0);
    printf("-- unprivileged, RLIMIT_NICE 0, RLIMIT_RTPRIO 0\n");
    SHOW("setpriority +5", setpriority(PRIO_PROCESS, 0, 5));
    SHOW("setpriority +3 (lower)", setpriority(PRIO_PROCESS, 0, 3));
    SHOW("setpriority +5 again", setpriority(PRIO_PROCESS, 0, 5));
    showprio("getpriority", PRIO_PROCESS, 0);
    SHOW("setpriority(root's process)", setpriority(PRIO_PROCESS, root_pid, 10));
    showprio("getpriority(root's process)", PRIO_PROCESS, root_pid);
    SHOW("setpriority(PRIO_USER, own uid, 7)", setpriority(PRIO_USER, UID, 7));
    showprio("getpriority(PRIO_USER, own uid)", PRIO_USER, UID);
    showprio("getpriority(PRIO_USER, 0 = own)", PRIO_USER, 0);
    showprio("getpriority(PRIO_USER, unused uid)", PRIO_USER, 54321);
    SHOW("SCHED_FIFO 1", setsched(0, SCHED_FIFO, 1));
    SHOW("SCHED_RR 1", setsched(0, SCHED_RR, 1));
    SHOW("SCHED_BATCH", setsched(0, SCHED_BATCH, 0));
    SHOW("SCHED_IDLE", setsched(0, SCHED_IDLE, 0));
    state("after IDLE");
    SHOW("IDLE -> OTHER without RLIMIT_NICE", setsched(0, SCHED_OTHER, 0));
    SHOW("IDLE -> BATCH", setsched(0, SCHED_BATCH, 0));
    SHOW("OTHER on root's process", setsched(root_pid, SCHED_OTHER, 0));
    struct sched_param p;
    SHOW("sched_getparam(root's process)", sched_getparam(root_pid, &p));
    SHOW("sched_getscheduler(root's process)", sched_getscheduler(root_pid));
    struct attr a = {.size = sizeof a, .policy = SCHED_DEADLINE, .runtime = 10000000,
                     .deadline = 30000000, .period = 30000000};
    SHOW("sched_setattr DEADLINE", setattr(0, &a, 0));
    struct attr o = {.size = 48, .policy = SCHED_OTHER, .nice = 2};
    SHOW("sched_setattr OTHER nice 2 (lower)", setattr(0, &o, 0));
    o.nice = 12;
    SHOW("sched_setattr OTHER nice 12", setattr(0, &o, 0));
    state("after setattr");
    SHOW("sched_setscheduler RESET_ON_FORK", setsched(0, SCHED_OTHER | SCHED_RESET_ON_FORK, 0));
    SHOW("clearing RESET_ON_FORK", setsched(0, SCHED_OTHER, 0));
    fflush(stdout);
    exit(0);
}

static void unprivileged_with_limits(void) {
    drop(30, 20);
    printf("-- unprivileged, RLIMIT_NICE 30, RLIMIT_RTPRIO 20\n");
    SHOW("setpriority -10", setpriority(PRIO_PROCESS, 0, -10));
    SHOW("setpriority -11", setpriority(PRIO_PROCESS, 0, -11));
    showprio("getpriority", PRIO_PROCESS, 0);
    SHOW("SCHED_FIFO 21", setsched(0, SCHED_FIFO, 21));
    SHOW("SCHED_FIFO 20", setsched(0, SCHED_FIFO, 20));
    SHOW("SCHED_FIFO 10", setsched(0, SCHED_FIFO, 10));
    SHOW("SCHED_RR 15", setsched(0, SCHED_RR, 15));
    struct sched_param p = {.sched_priority = 25};
    SHOW("sched_setparam 25", sched_setparam(0, &p));
    p.sched_priority = 5;
    SHOW("sched_setparam 5", sched_setparam(0, &p));
    state("rr");
    SHOW("SCHED_IDLE", setsched(0, SCHED_IDLE, 0));
    SHOW("IDLE -> OTHER with RLIMIT_NICE", setsched(0, SCHED_OTHER, 0));
    state("end");
    fflush(stdout);
    exit(0);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (geteuid() != 0) {
        printf("must start as root\n");
        return 1;
    }
    pid_t me = getpid();
    printf("-- root\n");
    SHOW("setpriority +5", setpriority(PRIO_PROCESS, 0, 5));
    SHOW("setpriority -5", setpriority(PRIO_PROCESS, 0, -5));
    showprio("getpriority", PRIO_PROCESS, 0);
    SHOW("setpriority 100 (clamped)", setpriority(PRIO_PROCESS, 0, 100));
    showprio("getpriority", PRIO_PROCESS, 0);
    SHOW("setpriority bad which", setpriority(7, 0, 0));
    showprio("getpriority no such pid", PRIO_PROCESS, 999999);
    SHOW("setpriority 0", setpriority(PRIO_PROCESS, 0, 0));

    SHOW("SCHED_FIFO 10", setsched(0, SCHED_FIFO, 10));
    state("fifo");
    struct attr a;
    memset(&a, 0, sizeof a);
    SHOW("sched_getattr", getattr(0, &a, sizeof a, 0));
    printf("attr: size=%u policy=%u flags=%llu prio=%u util=%u,%u\n", a.size, a.policy,
           (unsigned long long)a.flags, a.priority, a.util_min, a.util_max);
    SHOW("SCHED_FIFO 0", setsched(0, SCHED_FIFO, 0));
    SHOW("SCHED_FIFO 100", setsched(0, SCHED_FIFO, 100));
    SHOW("SCHED_OTHER 5", setsched(0, SCHED_OTHER, 5));
    SHOW("policy 4", setsched(0, 4, 0));
    SHOW("policy -1", setsched(0, -1, 0));
    SHOW("NULL param", syscall(SYS_sched_setscheduler, 0, SCHED_OTHER, NULL));
    SHOW("bad param pointer", syscall(SYS_sched_setscheduler, 0, SCHED_OTHER, (void *)8));
    SHOW("pid -1", setsched(-1, SCHED_OTHER, 0));
    SHOW("no such pid", setsched(999999, SCHED_OTHER, 0));
    SHOW("sched_getparam NULL", syscall(SYS_sched_getparam, 0, NULL));
    SHOW("SCHED_OTHER", setsched(0, SCHED_OTHER, 0));

    /* sched_setattr / sched_getattr */
    struct attr o;
    memset(&o, 0, sizeof o);
    o.policy = SCHED_OTHER;
    o.nice = 3; /* size 0: VER0 */
    SHOW("sched_setattr size 0 nice 3", setattr(0, &o, 0));
    state("after setattr");
    o.size = 40;
    SHOW("sched_setattr size 40", setattr(0, &o, 0));
    printf("size written back: %u\n", o.size);
    o.size = 4097;
    SHOW("sched_setattr size 4097", setattr(0, &o, 0));
    unsigned char big[80];
    memset(big, 0, sizeof big);
    memcpy(big, &o, sizeof o);
    ((struct attr *)big)->size = 80;
    ((struct attr *)big)->nice = 0;
    SHOW("sched_setattr size 80 zero tail", setattr(0, (struct attr *)big, 0));
    big[70] = 1;
    ((struct attr *)big)->size = 80;
    SHOW("sched_setattr size 80 nonzero tail", setattr(0, (struct attr *)big, 0));
    o.size = 48;
    SHOW("sched_setattr flags arg 1", setattr(0, &o, 1));
    o.flags = 0x80;
    SHOW("sched_setattr unknown sched_flag", setattr(0, &o, 0));
    o.flags = 0x20;
    SHOW("sched_setattr UTIL_CLAMP with VER0 size", setattr(0, &o, 0));
    o.flags = 0;
    o.nice = -100;
    SHOW("sched_setattr nice -100 (clamped)", setattr(0, &o, 0));
    state("clamped");
    o.nice = 0;
    SHOW("sched_setattr nice 0", setattr(0, &o, 0));
    struct attr d = {.size = sizeof d, .policy = SCHED_DEADLINE, .runtime = 40000000,
                     .deadline = 30000000, .period = 30000000};
    SHOW("DEADLINE runtime > deadline", setattr(0, &d, 0));
    d.runtime = 10000000;
    d.deadline = 0;
    SHOW("DEADLINE deadline 0", setattr(0, &d, 0));
    d.deadline = 30000000;
    d.period = 20000000;
    SHOW("DEADLINE period < deadline", setattr(0, &d, 0));
    d.runtime = 100;
    d.period = 30000000;
    SHOW("DEADLINE runtime < 1us", setattr(0, &d, 0));
    o.size = sizeof o;
    o.flags = 0x20;
    SHOW("sched_setattr UTIL_CLAMP_MIN", setattr(0, &o, 0));
    o.flags = 0;
    struct attr f = {.size = 48, .policy = SCHED_FIFO, .priority = 7};
    SHOW("sched_setattr FIFO 7", setattr(0, &f, 0));
    f.flags = 0x18; /* KEEP_POLICY | KEEP_PARAMS */
    f.policy = SCHED_OTHER;
    f.priority = 0;
    SHOW("sched_setattr KEEP_POLICY|KEEP_PARAMS", setattr(0, &f, 0));
    state("kept");
    SHOW("sched_getattr size 47", getattr(0, &a, 47, 0));
    SHOW("sched_getattr flags 1", getattr(0, &a, sizeof a, 1));
    SHOW("sched_getattr NULL", getattr(0, NULL, sizeof a, 0));
    memset(big, 0xff, sizeof big);
    SHOW("sched_getattr size 48", getattr(0, (struct attr *)big, 48, 0));
    printf("size=%u byte48=%#x\n", ((struct attr *)big)->size, big[48]);
    SHOW("sched_getattr size 80", getattr(0, (struct attr *)big, 80, 0));
    printf("size=%u\n", ((struct attr *)big)->size);
    SHOW("sched_get_priority_max(DEADLINE)", sched_get_priority_max(SCHED_DEADLINE));
    SHOW("sched_get_priority_min(FIFO)", sched_get_priority_min(SCHED_FIFO));
    SHOW("sched_get_priority_max(9)", sched_get_priority_max(9));

    /* inheritance and SCHED_RESET_ON_FORK */
    SHOW("SCHED_RR 3", setsched(0, SCHED_RR, 3));
    pid_t c = fork();
    if (c == 0) {
        state("child of RR");
        exit(0);
    }
    wait_child(c);
    SHOW("SCHED_RR 3 | RESET_ON_FORK", setsched(0, SCHED_RR | SCHED_RESET_ON_FORK, 3));
    state("parent");
    c = fork();
    if (c == 0) {
        state("child with reset");
        exit(0);
    }
    wait_child(c);
    SHOW("back to SCHED_OTHER", setsched(0, SCHED_OTHER, 0));
    SHOW("setpriority 2", setpriority(PRIO_PROCESS, 0, 2));
    c = fork();
    if (c == 0) {
        state("child of nice 2");
        exit(0);
    }
    wait_child(c);
    SHOW("setpriority 0", setpriority(PRIO_PROCESS, 0, 0));

    c = fork();
    if (c == 0)
        unprivileged_no_limits(me);
    wait_child(c);
    state("root after children");
    /* Raising the hard limits needs CAP_SYS_RESOURCE, which a container's
     * root may lack: the test asks for this part only where it has it. */
    if (argc > 1 && strcmp(argv[1], "limits") == 0) {
        c = fork();
        if (c == 0)
            unprivileged_with_limits();
        wait_child(c);
    }
    printf("result: OK\n");
    return 0;
}
