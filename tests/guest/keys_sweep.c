/* keyctl operations on keys in every state (live, revoked, expired,
 * negative, invalidated), and the operations of configurations a kernel
 * may lack (persistent keyrings, Diffie-Hellman, public keys, key
 * notifications) held against what KEYCTL_CAPABILITIES says, against
 * the host: which error each gives, in Linux's order. Keys live in a
 * fresh session keyring. The negative key comes from /sbin/request-key
 * (Debian's keyutils), which has no rule for it. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static long keyctl(int op, long a, long b, long c, long d) { return syscall(SYS_keyctl, op, a, b, c, d); }
static long add_key(const char *t, const char *d, const void *p, size_t n, long r)
{
    return syscall(SYS_add_key, t, d, p, n, r);
}
static const char *en(long r)
{
    static char b[32];
    if (r >= 0) return "ok";
    const char *n = strerrorname_np(errno);
    if (n) return n;
    snprintf(b, sizeof b, "errno %d", errno);
    return b;
}

#define SES -3

static void ops(const char *state, long k, const char *desc)
{
    char buf[256];
    long ring = add_key("keyring", "other", NULL, 0, SES);
    printf("%s:\n", state);
    printf(" describe %s\n", en(keyctl(6, k, (long)buf, sizeof buf, 0)));
    printf(" read %s\n", en(keyctl(11, k, (long)buf, sizeof buf, 0)));
    printf(" search %s\n", en(keyctl(10, SES, (long)"user", (long)desc, 0)));
    printf(" update %s\n", en(keyctl(2, k, (long)"y", 1, 0)));
    printf(" get_keyring_id %s\n", en(keyctl(0, k, 0, 0, 0)));
    printf(" get_security %s\n", en(keyctl(17, k, (long)buf, sizeof buf, 0)));
    printf(" link %s\n", en(keyctl(8, k, ring, 0, 0)));
    printf(" unlink other %s\n", en(keyctl(9, k, ring, 0, 0)));
    printf(" setperm %s\n", en(keyctl(5, k, 0x3f3f0000, 0, 0)));
    printf(" chown %s\n", en(keyctl(4, k, -1, -1, 0)));
    printf(" set_timeout %s\n", en(keyctl(15, k, 1000, 0, 0)));
    printf(" move %s\n", en(keyctl(30, k, SES, ring, 0)));
    printf(" revoke %s\n", en(keyctl(3, k, 0, 0, 0)));
    printf(" invalidate %s\n", en(keyctl(21, k, 0, 0, 0)));
    printf(" unlink %s\n", en(keyctl(9, k, SES, 0, 0)));
}

int main(void)
{
    long n;
    setvbuf(stdout, NULL, _IONBF, 0);
    if (keyctl(1, 0, 0, 0, 0) < 0) {
        printf("join: %s\n", en(-1));
        return 1;
    }
    long live = add_key("user", "sweep:live", "x", 1, SES);
    ops("live", live, "sweep:live");
    long rev = add_key("user", "sweep:revoked", "x", 1, SES);
    keyctl(3, rev, 0, 0, 0);
    ops("revoked", rev, "sweep:revoked");
    long exp = add_key("user", "sweep:expired", "x", 1, SES);
    keyctl(15, exp, 1, 0, 0);
    sleep(2);
    ops("expired", exp, "sweep:expired");
    /* A negative key: request_key's helper (/sbin/request-key) has no
     * rule to create "sweep:" keys, and the key it leaves is negated. */
    printf("request negative %s\n", en(syscall(SYS_request_key, "user", "sweep:neg", "info", SES)));
    long ids[64];
    n = keyctl(11, SES, (long)ids, sizeof ids, 0);
    long neg = -1;
    for (long j = 0; n > 0 && j < n / 4 && j < 128; j++) {
        char d[256];
        int id = ((int *)ids)[j];
        if (keyctl(6, id, (long)d, sizeof d, 0) > 0 && strstr(d, ";sweep:neg"))
            neg = id;
    }
    if (neg > 0)
        ops("negative", neg, "sweep:neg");
    else
        printf("no negative key in the session keyring\n");
    long ring = add_key("keyring", "sweep:ring", NULL, 0, SES);
    printf("keyring:\n");
    printf(" update %s\n", en(keyctl(2, ring, (long)"y", 1, 0)));
    printf(" read empty %ld\n", keyctl(11, ring, 0, 0, 0));
    printf(" restrict bad type %s\n", en(keyctl(29, ring, (long)"nosuch", (long)"x", 0)));
    printf(" restrict user %s\n", en(keyctl(29, ring, (long)"user", (long)"x", 0)));
    /* What a kernel's configuration decides is held against what its
     * KEYCTL_CAPABILITIES says: each optional operation must be
     * EOPNOTSUPP exactly when its bit is clear. */
    printf("configurations:\n");
    unsigned char caps[8] = {0};
    n = keyctl(31, (long)caps, sizeof caps, 0, 0);
    printf(" capabilities %s %ld, always-on bits %02x\n", en(n), n, caps[0] & 0xe1);
    printf(" capabilities null %ld\n", keyctl(31, 0, 0, 0, 0));
    unsigned char one = 0x55;
    n = keyctl(31, (long)&one, 1, 0, 0);
    printf(" capabilities 1 byte %ld, %s\n", n, one == caps[0] ? "same" : "differs");
    unsigned char big[16];
    memset(big, 0x55, sizeof big);
    n = keyctl(31, (long)big, sizeof big, 0, 0);
    int cleared = 1;
    for (unsigned i = 2; i < sizeof big; i++) cleared &= big[i] == 0;
    printf(" capabilities 16 bytes %ld, rest cleared %d\n", n, cleared);
    printf(" capabilities bad buffer %s\n", en(keyctl(31, 8, 2, 0, 0)));
    printf(" capabilities buffer, length 0 %ld\n", keyctl(31, 8, 0, 0, 0));
    long k = add_key("user", "sweep:cfg", "x", 1, SES);
    errno = 0;
    long r = keyctl(22, -1, SES, 0, 0);
    printf(" get_persistent: %s\n",
           (caps[0] & 0x02) ? (r >= 0 ? "works, as the bit says" : en(r)) : (errno == EOPNOTSUPP ? "EOPNOTSUPP, as the bit says" : en(r)));
    errno = 0;
    r = keyctl(23, 0, 0, 0, 0);
    printf(" dh_compute: %s\n", ((caps[0] & 0x04) != 0) == (errno != EOPNOTSUPP) ? "as the bit says" : en(r));
    for (int op = 25; op <= 28; op++) {
        errno = 0;
        r = keyctl(op, 0, 0, 0, 0);
        printf(" pkey op %d: %s\n", op, ((caps[0] & 0x08) != 0) == (errno != EOPNOTSUPP) ? "as the bit says" : en(r));
    }
    errno = 0;
    r = keyctl(32, k, -1, 0, 0);
    printf(" watch_key: %s\n", ((caps[1] & 0x04) != 0) == (errno != EOPNOTSUPP) ? "as the bit says" : en(r));
    printf(" pkey_query reserved %s\n", en(keyctl(24, k, 1, (long)"", 0)));
    printf(" pkey_query user key %s\n", en(keyctl(24, k, 0, (long)"", 0)));
    for (int op = 33; op <= 36; op++) printf(" op %d %s\n", op, en(keyctl(op, 0, 0, 0, 0)));
    printf(" op -1 %s\n", en(keyctl(-1, 0, 0, 0, 0)));
    return 0;
}
