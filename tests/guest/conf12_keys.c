/* Keys (Linux conformance II, #11): a request_key that constructs and
 * fails leaves a negative key (ENOENT or ENOKEY the first time, as the
 * helper is missing or fails; ENOKEY after; /proc/keys shows it with N);
 * revoked and expired keys give EKEYREVOKED and EKEYEXPIRED and the
 * garbage collector unlinks them after kernel.keys.gc_delay; user
 * keyrings are per user namespace. Runs in a fresh session keyring. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/file.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define KEY_SPEC_SESSION_KEYRING -3
#define KEY_SPEC_USER_KEYRING -4
#define KEYCTL_GET_KEYRING_ID 0
#define KEYCTL_JOIN_SESSION_KEYRING 1
#define KEYCTL_REVOKE 3
#define KEYCTL_DESCRIBE 6
#define KEYCTL_READ 11
#define KEYCTL_NEGATE 13
#define KEYCTL_SET_TIMEOUT 15
#define KEYCTL_REJECT 19

static long keyctl(int op, long a, long b, long c, long d) { return syscall(SYS_keyctl, op, a, b, c, d); }
static long add_key(const char *t, const char *d, const void *p, size_t n, long r)
{
    return syscall(SYS_add_key, t, d, p, n, r);
}
static long request_key(const char *t, const char *d, const char *c, long r)
{
    return syscall(SYS_request_key, t, d, c, r);
}
static const char *en(long r) { return r < 0 ? strerrorname_np(errno) : "ok"; }

/* How many keys the session keyring links (KEYCTL_READ of it). */
static long links(long ring)
{
    int ids[64];
    long n = keyctl(KEYCTL_READ, ring, (long)ids, sizeof ids, 0);
    return n < 0 ? -errno : n / 4;
}

/* The flags column of key `id` in /proc/keys, or "gone". */
static const char *flags_of(long id)
{
    static char out[16];
    char line[512];
    FILE *f = fopen("/proc/keys", "r");
    snprintf(out, sizeof out, "gone");
    while (f && fgets(line, sizeof line, f)) {
        unsigned long s;
        char fl[16];
        if (sscanf(line, "%lx %15s", &s, fl) == 2 && (long)s == id) snprintf(out, sizeof out, "%s", fl);
    }
    if (f) fclose(f);
    return out;
}

int main(void)
{
    long ses = keyctl(KEYCTL_JOIN_SESSION_KEYRING, 0, 0, 0, 0);
    printf("new session: %s\n", en(ses));
    int helper = access("/sbin/request-key", X_OK) == 0;
    long r = request_key("user", "conf12:neg", "callout", 0);
    printf("request_key with callout: %s\n",
           r >= 0 ? "key" : errno == (helper ? ENOKEY : ENOENT) ? "as the helper says" : strerrorname_np(errno));
    printf("session links: %ld\n", links(ses));
    int ids[4];
    long neg = keyctl(KEYCTL_READ, ses, (long)ids, sizeof ids, 0) >= 4 ? ids[0] : -1;
    char d[256];
    long n = keyctl(KEYCTL_DESCRIBE, neg, (long)d, sizeof d, 0);
    if (n > 0) {
        char *semi = strchr(d, ';');
        char *last = strrchr(d, ';');
        printf("negative key: %.*s ... %s\n", semi ? (int)(semi - d) : 0, d, last ? last + 1 : "");
    }
    printf("/proc/keys flags: %s\n", flags_of(neg));
    printf("again with callout: %s\n", en(request_key("user", "conf12:neg", "callout", 0)));
    printf("again without: %s\n", en(request_key("user", "conf12:neg", NULL, 0)));
    char buf[16];
    printf("read negative: %s\n", en(keyctl(KEYCTL_READ, neg, (long)buf, sizeof buf, 0)));
    printf("negate without authority: %s\n", en(keyctl(KEYCTL_NEGATE, neg, 10, ses, 0)));
    printf("reject without authority: %s\n", en(keyctl(KEYCTL_REJECT, neg, 10, EKEYREJECTED, ses)));
    printf("session links: %ld\n", links(ses));

    /* gc_delay 1 (before the keys die): expired keys are unlinked within it.
     * It is the whole system's setting: runs of this test at the same time
     * take turns (natively a lock in the host's /tmp), so each puts back
     * the value it found, not another run's 1. */
    int lock = open("/tmp/ruml-test-keys-gc-delay.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (lock >= 0)
        flock(lock, LOCK_EX);
    FILE *g = fopen("/proc/sys/kernel/keys/gc_delay", "r");
    int old = 300;
    if (g) { if (fscanf(g, "%d", &old) != 1) old = 300; fclose(g); }
    g = fopen("/proc/sys/kernel/keys/gc_delay", "w");
    if (g) { fprintf(g, "1\n"); fclose(g); }
    long a = add_key("user", "conf12:a", "x", 1, ses);
    long b = add_key("user", "conf12:b", "y", 1, ses);
    printf("add a, b: %s %s\n", en(a), en(b));
    printf("revoke a: %s\n", en(keyctl(KEYCTL_REVOKE, a, 0, 0, 0)));
    printf("/proc/keys a: %s\n", flags_of(a));
    printf("read revoked: %s\n", en(keyctl(KEYCTL_READ, a, (long)buf, sizeof buf, 0)));
    printf("request revoked: %s\n", en(request_key("user", "conf12:a", NULL, 0)));
    printf("timeout b 1s: %s\n", en(keyctl(KEYCTL_SET_TIMEOUT, b, 1, 0, 0)));
    sleep(2);
    printf("read expired: %s\n", en(keyctl(KEYCTL_READ, b, (long)buf, sizeof buf, 0)));
    printf("request expired: %s\n", en(request_key("user", "conf12:b", NULL, 0)));

    /* The collector unlinks dead keys and destroys them in a later pass:
     * wait (10 s at most) for both, so the lines below do not race it. */
    long left = links(ses);
    for (int i = 0; i < 100 && (left > 1 || strcmp(flags_of(a), "gone") || strcmp(flags_of(b), "gone")); i++) {
        usleep(100000);
        left = links(ses);
    }
    printf("session links after gc: %ld\n", left);
    printf("/proc/keys a, b: %s %s\n", flags_of(a), flags_of(b));
    g = fopen("/proc/sys/kernel/keys/gc_delay", "w");
    if (g) { fprintf(g, "%d\n", old); fclose(g); }
    if (lock >= 0)
        close(lock);

    /* The user keyring of uid 0 in a new user namespace is another one. */
    long ur = keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING, 1, 0, 0);
    int p[2];
    if (pipe(p) != 0) return 1;
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        long other = -1;
        if (unshare(CLONE_NEWUSER) == 0) other = keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING, 1, 0, 0);
        char dd[256] = "";
        if (other > 0) keyctl(KEYCTL_DESCRIBE, other, (long)dd, sizeof dd, 0);
        char *last = strrchr(dd, ';');
        printf("user ns: user keyring %s, named %s\n", other < 0 ? "none" : other == ur ? "same" : "other",
               last ? last + 1 : "?");
        fflush(stdout);
        _exit(0);
    }
    waitpid(c, NULL, 0);
    return 0;
}
