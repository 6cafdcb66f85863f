/* request_key's upcall (#11): in a fresh session keyring, keys that
 * /sbin/request-key constructs by Debian's /etc/request-key.conf rules
 * for "debug:*" (request-key-debug.sh instantiates "Debug <callout>";
 * callouts negate/rejected/expired/revoked negate or reject; "debug:loop:"
 * pipes the callout through /bin/cat), a description no rule matches
 * (ENOKEY, then a negative key), concurrent requesters of one key (all
 * get the one key), and the authority calls without an authorisation
 * (EPERM, ENOKEY, EINVAL). Descriptions carry the pid: native runs share
 * the host's keys. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define KEY_SPEC_SESSION_KEYRING -3
#define KEY_SPEC_REQKEY_AUTH_KEY -7
#define KEY_SPEC_REQUESTOR_KEYRING -8
#define KEYCTL_GET_KEYRING_ID 0
#define KEYCTL_JOIN_SESSION_KEYRING 1
#define KEYCTL_DESCRIBE 6
#define KEYCTL_READ 11
#define KEYCTL_INSTANTIATE 12
#define KEYCTL_NEGATE 13
#define KEYCTL_ASSUME_AUTHORITY 16
#define KEYCTL_REJECT 19
#define KEYCTL_INSTANTIATE_IOV 20

static long keyctl(int op, long a, long b, long c, long d) { return syscall(SYS_keyctl, op, a, b, c, d); }
static long request_key(const char *t, const char *d, const char *c, long r)
{
    return syscall(SYS_request_key, t, d, c, r);
}
static const char *en(long r) { return r < 0 ? strerrorname_np(errno) : "ok"; }

static char desc[128];
static const char *name(const char *prefix)
{
    snprintf(desc, sizeof desc, "%s%d", prefix, (int)getpid());
    return desc;
}

/* The payload of key `id`, or the error's name. */
static const char *payload(long id)
{
    static char buf[256];
    long n = keyctl(KEYCTL_READ, id, (long)buf, sizeof buf - 1, 0);
    if (n < 0) return strerrorname_np(errno);
    buf[n] = 0;
    return buf;
}

/* The serial of the key described `d` linked in keyring `ring`. */
static long serial_of(long ring, const char *d)
{
    int ids[256];
    long n = keyctl(KEYCTL_READ, ring, (long)ids, sizeof ids, 0);
    for (long i = 0; i < n / 4 && i < 256; i++) {
        char buf[512];
        long m = keyctl(KEYCTL_DESCRIBE, ids[i], (long)buf, sizeof buf, 0);
        char *last = m > 0 ? strrchr(buf, ';') : NULL;
        if (last && strcmp(last + 1, d) == 0) return ids[i];
    }
    return -1;
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    long ses = keyctl(KEYCTL_JOIN_SESSION_KEYRING, 0, 0, 0, 0);
    printf("join: %s\n", en(ses));

    long k = request_key("user", name("debug:hello"), "callout-data", KEY_SPEC_SESSION_KEYRING);
    printf("constructed: %s\n", en(k));
    printf("payload: %s\n", payload(k));
    char d[256];
    long n = keyctl(KEYCTL_DESCRIBE, k, (long)d, sizeof d, 0);
    printf("describe: %s %.10s\n", en(n), n > 0 ? d : "");
    printf("found again: %s\n", request_key("user", desc, NULL, 0) == k ? "same" : "other");
    printf("again with callout: %s\n",
           request_key("user", desc, "other", 0) == k ? "same" : "other");

    /* The pipe rule: request-key instantiates with the program's output. */
    k = request_key("user", name("debug:loop:"), "through cat", KEY_SPEC_SESSION_KEYRING);
    printf("loop: %s, payload: %s\n", en(k), k < 0 ? "" : payload(k));

    /* Negated and rejected by the helper: the error now and later. */
    const char *bad[] = {"negate", "rejected", "expired", "revoked", "neg"};
    for (int i = 0; i < 5; i++) {
        char p[64];
        snprintf(p, sizeof p, "debug:%s", bad[i]);
        name(p);
        long r = request_key("user", desc, bad[i], KEY_SPEC_SESSION_KEYRING);
        printf("%s: %s", bad[i], en(r));
        r = request_key("user", desc, bad[i], 0);
        printf(", again %s", en(r));
        r = request_key("user", desc, NULL, 0);
        printf(", without callout %s\n", en(r));
    }

    /* No rule for it: request-key fails, the kernel negates the key;
     * asking again finds the negative key (no second construction). */
    long r = request_key("user", name("upcall-nomatch:"), "x", 0);
    printf("no rule: %s", en(r));
    long first = serial_of(ses, desc);
    r = request_key("user", desc, "x", 0);
    printf(", again %s, the same negative key: %s\n", en(r),
           first > 0 && serial_of(ses, desc) == first ? "yes" : "no");

    /* Concurrent requesters: all wait for the one construction. */
    name("debug:conc");
    int fds[2];
    if (pipe(fds) < 0) return 1;
    for (int i = 0; i < 4; i++) {
        if (fork() == 0) {
            long c = request_key("user", desc, "together", KEY_SPEC_SESSION_KEYRING);
            const char *p = c < 0 ? strerrorname_np(errno) : payload(c);
            char line[128];
            int len = snprintf(line, sizeof line, "%ld %s\n", c, p);
            if (write(fds[1], line, len) != len) _exit(1);
            _exit(0);
        }
    }
    close(fds[1]);
    for (int i = 0; i < 4; i++) wait(NULL);
    char all[1024];
    size_t got = 0;
    ssize_t m;
    while ((m = read(fds[0], all + got, sizeof all - 1 - got)) > 0) got += m;
    all[got] = 0;
    long one = request_key("user", desc, NULL, 0);
    int same = 0, lines = 0;
    for (char *line = strtok(all, "\n"); line; line = strtok(NULL, "\n")) {
        long c;
        char p[64];
        lines++;
        if (sscanf(line, "%ld %63[^\n]", &c, p) == 2 && c == one && strcmp(p, "Debug together") == 0) same++;
        else printf("requester got: %s\n", line);
    }
    printf("concurrent: %d of %d requesters got the one key\n", same, lines);

    /* No authority: the instantiation calls are refused. */
    printf("instantiate: %s\n", en(keyctl(KEYCTL_INSTANTIATE, one, (long)"x", 1, 0)));
    struct iovec iov = {(void *)"x", 1};
    printf("instantiate_iov: %s\n", en(keyctl(KEYCTL_INSTANTIATE_IOV, one, (long)&iov, 1, 0)));
    printf("instantiate too big: %s\n", en(keyctl(KEYCTL_INSTANTIATE, one, (long)"x", 1 << 20, 0)));
    printf("instantiate null, too big: %s\n", en(keyctl(KEYCTL_INSTANTIATE, one, 0, 1 << 20, 0)));
    printf("negate: %s\n", en(keyctl(KEYCTL_NEGATE, one, 30, 0, 0)));
    printf("reject: %s\n", en(keyctl(KEYCTL_REJECT, one, 30, EKEYREJECTED, 0)));
    printf("reject bad error: %s\n", en(keyctl(KEYCTL_REJECT, one, 30, 0, 0)));
    printf("assume -1: %s\n", en(keyctl(KEYCTL_ASSUME_AUTHORITY, -1, 0, 0, 0)));
    printf("assume 0: %ld\n", keyctl(KEYCTL_ASSUME_AUTHORITY, 0, 0, 0, 0));
    printf("assume key: %s\n", en(keyctl(KEYCTL_ASSUME_AUTHORITY, one, 0, 0, 0)));
    printf("read auth key: %s\n", en(keyctl(KEYCTL_READ, KEY_SPEC_REQKEY_AUTH_KEY, 0, 0, 0)));
    printf("requestor keyring: %s\n",
           en(keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_REQUESTOR_KEYRING, 0, 0, 0)));
    return 0;
}
