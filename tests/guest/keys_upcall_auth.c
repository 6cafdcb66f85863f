/* The request_key helper's authority (keys_upcall.rs): the program
 * installs itself as the handler of "authtest:*" keys in
 * /etc/request-key.d (under ruml the root is a private overlay), then
 * requests keys; as the handler (argv[1] "helper") it drops the
 * authority request-key assumed, checks what needs it (EPERM, ENOKEY),
 * assumes it again, reads the callout through the authorisation key,
 * names the requestor keyring, and constructs the key as the callout
 * says ("inst", "iov", "reject", "nothing"); after the authorisation is
 * used (Linux invalidates it) ASSUME_AUTHORITY gives ENOKEY. The handler's findings go to
 * a file the requester prints. With argv[1] "nohelper" it removes
 * /sbin/request-key first: ENOENT, then the negative key's ENOKEY. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#define KEY_SPEC_SESSION_KEYRING -3
#define KEY_SPEC_REQKEY_AUTH_KEY -7
#define KEY_SPEC_REQUESTOR_KEYRING -8
#define KEYCTL_GET_KEYRING_ID 0
#define KEYCTL_JOIN_SESSION_KEYRING 1
#define KEYCTL_UPDATE 2
#define KEYCTL_DESCRIBE 6
#define KEYCTL_SEARCH 10
#define KEYCTL_READ 11
#define KEYCTL_INSTANTIATE 12
#define KEYCTL_ASSUME_AUTHORITY 16
#define KEYCTL_REJECT 19
#define KEYCTL_INSTANTIATE_IOV 20

static long keyctl(int op, long a, long b, long c, long d) { return syscall(SYS_keyctl, op, a, b, c, d); }
static long request_key(const char *t, const char *d, const char *c, long r)
{
    return syscall(SYS_request_key, t, d, c, r);
}
static const char *en(long r) { return r < 0 ? strerrorname_np(errno) : "ok"; }

static const char *report = "/tmp/ruml-keys-upcall-auth.txt";
static const char *pidfile = "/tmp/ruml-keys-upcall-auth.pid";

/* An error's name, or its number when it has none (KEYCTL_REJECT keeps
 * any error number Linux does not refuse). */
static const char *ename(int e)
{
    static char b[32];
    const char *n = strerrorname_np(e);
    if (n) return n;
    snprintf(b, sizeof b, "errno %d", e);
    return b;
}
static const char *er(long r) { return r < 0 ? ename(errno) : "ok"; }

/* The /proc/keys line of key `id`, without its usage count (the kernel's
 * reference count): flags, timeout (a negative key's 30 s as "30s"
 * whatever second it is read in), permissions, ids, type and the type's
 * description, with the serials of `target` (in hex) and the requester's
 * pid (from pidfile) named. */
static void proc_key_line(FILE *o, const char *label, long id, long target)
{
    FILE *f = fopen("/proc/keys", "r");
    char line[512], hex[32], tgt[32];
    int found = 0;
    snprintf(hex, sizeof hex, "%08lx", id);
    snprintf(tgt, sizeof tgt, "key:%lx ", target);
    long rpid = 0;
    FILE *pf = fopen(pidfile, "r");
    if (pf) {
        if (fscanf(pf, "%ld", &rpid) != 1) rpid = 0;
        fclose(pf);
    }
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, hex, 8) != 0) continue;
        found = 1;
        line[strcspn(line, "\n")] = 0;
        char flags[16], timeout[16], perm[16], type[16];
        int usage, uid, gid, off = 0;
        if (sscanf(line + 9, "%15s %d %15s %15s %d %d %n", flags, &usage, timeout, perm, &uid, &gid, &off) < 6) {
            fprintf(o, " %s: unparsed: %s\n", label, line);
            break;
        }
        /* The type is 9 columns wide (cut), then a space. */
        const char *rest = line + 9 + off;
        snprintf(type, sizeof type, "%.9s", rest);
        const char *desc = strlen(rest) > 10 ? rest + 10 : "";
        if (strcmp(timeout, "29s") == 0) strcpy(timeout, "30s");
        char d[256];
        if (strncmp(desc, tgt, strlen(tgt)) == 0) {
            long pid = -1, ci = -1;
            sscanf(desc + strlen(tgt), "pid:%ld ci:%ld", &pid, &ci);
            snprintf(d, sizeof d, "key:TARGET pid:%s ci:%ld", pid == rpid ? "REQUESTER" : "other", ci);
        } else {
            snprintf(d, sizeof d, "%s", desc);
        }
        fprintf(o, " %s: %s %s %s %d %d [%s] [%s]\n", label, flags, timeout, perm, uid, gid, type, d);
    }
    if (!found) fprintf(o, " %s: not in /proc/keys\n", label);
    if (f) fclose(f);
}

/* KEYCTL_REJECT with the numbers Linux refuses (EINVAL; the key stays
 * under construction). */
static void bad_rejects(FILE *o, long key)
{
    const long bad[] = {0, 512, 513, 514, 516, 4095, 4096, 0xffffffffL, -1L};
    for (unsigned i = 0; i < sizeof bad / sizeof *bad; i++)
        fprintf(o, " reject %ld: %s\n", bad[i], er(keyctl(KEYCTL_REJECT, key, 30, bad[i], 0)));
}

static int helper(long key, const char *callout, long session)
{
    FILE *o = fopen(report, "a");
    if (!o) return 1;
    setvbuf(o, NULL, _IONBF, 0);
    fprintf(o, "helper for %s\n", callout);
    fprintf(o, " drop authority: %ld\n", keyctl(KEYCTL_ASSUME_AUTHORITY, 0, 0, 0, 0));
    fprintf(o, " instantiate without: %s\n", en(keyctl(KEYCTL_INSTANTIATE, key, (long)"x", 1, 0)));
    fprintf(o, " read auth key without: %s\n", en(keyctl(KEYCTL_READ, KEY_SPEC_REQKEY_AUTH_KEY, 0, 0, 0)));
    fprintf(o, " requestor keyring without: %s\n",
            en(keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_REQUESTOR_KEYRING, 0, 0, 0)));
    fprintf(o, " assume other key: %s\n", en(keyctl(KEYCTL_ASSUME_AUTHORITY, key + 1, 0, 0, 0)));
    long auth = keyctl(KEYCTL_ASSUME_AUTHORITY, key, 0, 0, 0);
    fprintf(o, " assume: %s, the auth key: %s\n", en(auth),
            keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_REQKEY_AUTH_KEY, 0, 0, 0) == auth ? "yes" : "no");
    char d[256], want[32];
    long n = keyctl(KEYCTL_DESCRIBE, auth, (long)d, sizeof d, 0);
    snprintf(want, sizeof want, ";%lx", key);
    char *last = n > 0 ? strrchr(d, ';') : NULL;
    fprintf(o, " auth describe: %.*s, names the key: %s\n", n > 0 ? (int)(strchr(d, ';') - d) : 0, d,
            last && strcmp(last, want) == 0 ? "yes" : "no");
    char buf[128];
    n = keyctl(KEYCTL_READ, KEY_SPEC_REQKEY_AUTH_KEY, (long)buf, sizeof buf - 1, 0);
    if (n >= 0) buf[n] = 0;
    fprintf(o, " callout: %s\n", n < 0 ? strerrorname_np(errno) : buf);
    fprintf(o, " requestor keyring is the session: %s\n",
            keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_REQUESTOR_KEYRING, 0, 0, 0) == session ? "yes" : "no");
    fprintf(o, " instantiate another key: %s\n", en(keyctl(KEYCTL_INSTANTIATE, session, (long)"x", 1, 0)));
    fprintf(o, " instantiate into the auth key: %s\n",
            en(keyctl(KEYCTL_INSTANTIATE, key, (long)"x", 1, KEY_SPEC_REQKEY_AUTH_KEY)));
    fprintf(o, " empty payload: %s\n", en(keyctl(KEYCTL_INSTANTIATE, key, (long)"x", 0, 0)));
    long r = 0;
    if (strcmp(callout, "inst") == 0) {
        proc_key_line(o, "auth key", auth, key);
        proc_key_line(o, "target", key, key);
        r = keyctl(KEYCTL_INSTANTIATE, key, (long)"made by the helper", 18, KEY_SPEC_REQUESTOR_KEYRING);
        fprintf(o, " construct: %s\n", en(r));
        proc_key_line(o, "target after", key, key);
        fprintf(o, " again: %s\n", en(keyctl(KEYCTL_INSTANTIATE, key, (long)"x", 1, 0)));
        fprintf(o, " assume after: %s\n", en(keyctl(KEYCTL_ASSUME_AUTHORITY, key, 0, 0, 0)));
        fclose(o);
        return 0;
    } else if (strcmp(callout, "rawerr") == 0) {
        bad_rejects(o, key);
        /* ENOIOCTLCMD, kernel-internal and unnamed: kept. */
        r = keyctl(KEYCTL_REJECT, key, 30, 515, 0);
    } else if (strcmp(callout, "higherr") == 0) {
        /* The error is an unsigned int: the high bits go. */
        r = keyctl(KEYCTL_REJECT, key, 30, (1L << 32) | 4094, 0);
    } else if (strcmp(callout, "iov") == 0) {
        struct iovec iov[3] = {{(void *)"two ", 4}, {NULL, 0}, {(void *)"pieces", 6}};
        r = keyctl(KEYCTL_INSTANTIATE_IOV, key, (long)iov, 3, 0);
    } else if (strcmp(callout, "reject") == 0) {
        r = keyctl(KEYCTL_REJECT, key, 30, EKEYREJECTED, 0);
    } else {
        fprintf(o, " left alone\n");
        return 0;
    }
    fprintf(o, " construct: %s\n", en(r));
    fprintf(o, " again: %s\n", en(keyctl(KEYCTL_INSTANTIATE, key, (long)"x", 1, 0)));
    fprintf(o, " assume after: %s\n", en(keyctl(KEYCTL_ASSUME_AUTHORITY, key, 0, 0, 0)));
    fclose(o);
    return 0;
}

static const char *payload(long id)
{
    static char buf[256];
    long n = keyctl(KEYCTL_READ, id, (long)buf, sizeof buf - 1, 0);
    if (n < 0) return strerrorname_np(errno);
    buf[n] = 0;
    return buf;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "helper") == 0)
        return helper(atol(argv[2]), argv[3], atol(argv[4]));
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc == 2 && strcmp(argv[1], "nohelper") == 0) {
        /* No /sbin/request-key: ENOENT, and a negative key after. */
        printf("unlink helper: %s\n", en(unlink("/sbin/request-key")));
        printf("join: %s\n", en(keyctl(KEYCTL_JOIN_SESSION_KEYRING, 0, 0, 0, 0)));
        printf("request: %s\n", en(request_key("user", "nohelper:x", "info", 0)));
        printf("again: %s\n", en(request_key("user", "nohelper:x", "info", 0)));
        printf("without callout: %s\n", en(request_key("user", "nohelper:x", NULL, 0)));
        return 0;
    }
    char self[512];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return 1;
    self[n] = 0;
    FILE *c = fopen("/etc/request-key.d/ruml-authtest.conf", "w");
    if (!c) {
        printf("cannot write /etc/request-key.d: %s\n", strerrorname_np(errno));
        return 1;
    }
    fprintf(c, "create user authtest:* * %s helper %%k %%c %%S\n", self);
    fclose(c);
    unlink(report);
    long ses = keyctl(KEYCTL_JOIN_SESSION_KEYRING, 0, 0, 0, 0);
    printf("join: %s\n", en(ses));
    FILE *pf = fopen(pidfile, "w");
    if (pf) {
        fprintf(pf, "%d\n", getpid());
        fclose(pf);
    }
    const char *callouts[] = {"inst", "iov", "reject", "nothing", "rawerr", "higherr"};
    for (int i = 0; i < 6; i++) {
        char desc[64];
        snprintf(desc, sizeof desc, "authtest:%s", callouts[i]);
        long k = request_key("user", desc, callouts[i], KEY_SPEC_SESSION_KEYRING);
        printf("request %s: %s", callouts[i], er(k));
        if (k >= 0) printf(", payload: %s", payload(k));
        printf("\n");
        if (i < 4) continue;
        /* The rejected key keeps the error for every use. */
        printf(" again: %s\n", er(request_key("user", desc, callouts[i], KEY_SPEC_SESSION_KEYRING)));
        printf(" without callout: %s\n", er(request_key("user", desc, NULL, 0)));
        printf(" search: %s\n", er(keyctl(KEYCTL_SEARCH, KEY_SPEC_SESSION_KEYRING, (long)"user", (long)desc, 0)));
        /* The negative key, found by its description in the session
         * keyring's list. */
        long ids[64];
        long n = keyctl(KEYCTL_READ, KEY_SPEC_SESSION_KEYRING, (long)ids, sizeof ids, 0);
        int32_t *ser = (int32_t *)ids;
        for (long j = 0; n > 0 && j < n / 4 && j < 128; j++) {
            char dd[256];
            if (keyctl(KEYCTL_DESCRIBE, ser[j], (long)dd, sizeof dd, 0) > 0 && strstr(dd, desc)) {
                printf(" read: %s\n", er(keyctl(KEYCTL_READ, ser[j], (long)dd, sizeof dd, 0)));
                printf(" update: %s\n", er(keyctl(KEYCTL_UPDATE, ser[j], (long)"x", 1, 0)));
                proc_key_line(stdout, "negative key", ser[j], ser[j]);
            }
        }
    }
    unlink(pidfile);
    FILE *r = fopen(report, "r");
    char line[256];
    while (r && fgets(line, sizeof line, r)) fputs(line, stdout);
    return 0;
}
