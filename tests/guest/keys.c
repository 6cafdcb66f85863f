/* Keyrings through the raw system calls: add_key, request_key and keyctl
 * on a fresh anonymous session keyring, printing results and errnos that do
 * not depend on serial numbers or on keys the host already holds. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define KEY_SPEC_THREAD_KEYRING -1
#define KEY_SPEC_PROCESS_KEYRING -2
#define KEY_SPEC_SESSION_KEYRING -3
#define KEY_SPEC_USER_KEYRING -4
#define KEY_SPEC_USER_SESSION_KEYRING -5
#define KEY_SPEC_GROUP_KEYRING -6
#define KEY_SPEC_REQKEY_AUTH_KEY -7

static long add_key(const char *t, const char *d, const void *p, size_t l, long r)
{
	return syscall(SYS_add_key, t, d, p, l, r);
}
static long request_key(const char *t, const char *d, const char *c, long r)
{
	return syscall(SYS_request_key, t, d, c, r);
}
static long keyctl(long op, long a, long b, long c, long d)
{
	return syscall(SYS_keyctl, op, a, b, c, d);
}

static void show(const char *what, long r)
{
	if (r < 0)
		printf("%s: -1 %s\n", what, strerrorname_np(errno));
	else
		printf("%s: ok\n", what);
}
static void showv(const char *what, long r)
{
	if (r < 0)
		printf("%s: -1 %s\n", what, strerrorname_np(errno));
	else
		printf("%s: %ld\n", what, r);
}

/* DESCRIBE without the serial-dependent parts: type;uid;gid;perm;desc */
static void describe(const char *what, long id)
{
	char buf[256];
	long n = keyctl(6, id, (long)buf, sizeof buf, 0);
	if (n < 0) {
		printf("%s: -1 %s\n", what, strerrorname_np(errno));
		return;
	}
	printf("%s: %ld '%s'\n", what, n, buf);
}

static int in_keyring(long ring, long key)
{
	int ids[64];
	long n = keyctl(11, ring, (long)ids, sizeof ids, 0);
	if (n < 0)
		return -errno;
	for (long i = 0; i < n / 4 && i < 64; i++)
		if (ids[i] == key)
			return 1;
	return 0;
}

/* Lines of /proc/keys for the keys in ids (another test of the same
 * user may hold keys too), without the serial and the usage count (the
 * latter depends on when Linux's garbage collector runs), sorted. */
static int cmp_line(const void *a, const void *b)
{
	return strcmp(a, b);
}
static void proc_keys_lines(const long *ids, int nids)
{
	char line[512], out[8][512];
	int n = 0;
	FILE *f = fopen("/proc/keys", "r");
	while (f && fgets(line, sizeof line, f)) {
		char flags[16], timeout[16], rest[400];
		int usage, mine = 0;
		unsigned long serial;
		if (sscanf(line, "%lx %15s %d %15s %399[^\n]", &serial, flags, &usage, timeout, rest) != 5)
			continue;
		for (int i = 0; i < nids; i++)
			mine |= ids[i] == (long)serial;
		if (mine && n < 8)
			snprintf(out[n++], sizeof out[0], "%s %s %s", flags, timeout, rest);
	}
	if (f)
		fclose(f);
	/* By description: serials, which order the file, are random. */
	qsort(out, n, sizeof out[0], cmp_line);
	for (int i = 0; i < n; i++)
		printf("proc keys: %s\n", out[i]);
}

int main(void)
{
	/* A fresh anonymous session keyring: nothing the host holds shows. */
	long ses = keyctl(1, 0, 0, 0, 0);
	show("join anon", ses);
	showv("session id is it", keyctl(0, KEY_SPEC_SESSION_KEYRING, 0, 0, 0) == ses);
	describe("describe session", KEY_SPEC_SESSION_KEYRING);
	showv("read empty session", keyctl(11, ses, 0, 0, 0));

	/* Thread and process keyrings: none until asked to create. */
	show("thread no create", keyctl(0, KEY_SPEC_THREAD_KEYRING, 0, 0, 0));
	show("process no create", keyctl(0, KEY_SPEC_PROCESS_KEYRING, 0, 0, 0));
	long th = keyctl(0, KEY_SPEC_THREAD_KEYRING, 1, 0, 0);
	show("thread create", th);
	showv("thread again same", keyctl(0, KEY_SPEC_THREAD_KEYRING, 0, 0, 0) == th);
	long pr = keyctl(0, KEY_SPEC_PROCESS_KEYRING, 1, 0, 0);
	show("process create", pr);
	describe("describe thread", th);
	describe("describe process", pr);
	show("group keyring", keyctl(0, KEY_SPEC_GROUP_KEYRING, 0, 0, 0));
	show("reqkey auth", keyctl(0, KEY_SPEC_REQKEY_AUTH_KEY, 0, 0, 0));
	show("requestor keyring", keyctl(0, -8, 0, 0, 0));
	show("bad special", keyctl(0, -9, 0, 0, 0));
	show("id 0", keyctl(0, 0, 0, 0, 0));
	show("unknown id", keyctl(0, 0x7ffffff0, 0, 0, 0));
	long us = keyctl(0, KEY_SPEC_USER_KEYRING, 0, 0, 0);
	show("user keyring", us);
	long uss = keyctl(0, KEY_SPEC_USER_SESSION_KEYRING, 0, 0, 0);
	show("user session keyring", uss);
	showv("user != user session", us != uss);

	/* add_key: user keys. */
	long k1 = add_key("user", "k1", "hello", 5, ses);
	show("add user", k1);
	describe("describe k1", k1);
	char buf[64];
	memset(buf, 0, sizeof buf);
	long n = keyctl(11, k1, (long)buf, sizeof buf, 0);
	printf("read k1: %ld '%s'\n", n, buf);
	memset(buf, 0, sizeof buf);
	n = keyctl(11, k1, (long)buf, 3, 0);
	printf("read k1 short: %ld '%s'\n", n, buf);
	showv("read k1 null", keyctl(11, k1, 0, 0, 0));
	showv("k1 in session", in_keyring(ses, k1));
	long k1b = add_key("user", "k1", "world!", 6, ses);
	showv("add same desc updates", k1b == k1);
	memset(buf, 0, sizeof buf);
	n = keyctl(11, k1, (long)buf, sizeof buf, 0);
	printf("read k1 updated: %ld '%s'\n", n, buf);
	show("update k1", keyctl(2, k1, (long)"xyz", 3, 0));
	memset(buf, 0, sizeof buf);
	n = keyctl(11, k1, (long)buf, sizeof buf, 0);
	printf("read k1 after update: %ld '%s'\n", n, buf);
	show("update k1 empty", keyctl(2, k1, (long)"", 0, 0));
	show("update k1 fault", keyctl(2, k1, 8, 3, 0));
	show("update k1 huge", keyctl(2, k1, (long)buf, 1 << 20, 0));

	/* add_key errors. */
	show("add bad type", add_key("nosuchtype", "x", "a", 1, ses));
	show("add dot type", add_key(".user", "x", "a", 1, ses));
	show("add empty type", add_key("", "x", "a", 1, ses));
	show("add type fault", add_key((char *)8, "x", "a", 1, ses));
	show("add long type", add_key("abcdefghijklmnopqrstuvwxyzabcdefghij", "x", "a", 1, ses));
	show("add empty desc", add_key("user", "", "a", 1, ses));
	show("add null desc", add_key("user", NULL, "a", 1, ses));
	show("add desc fault", add_key("user", (char *)8, "a", 1, ses));
	show("add empty payload", add_key("user", "e", "", 0, ses));
	show("add null payload", add_key("user", "e", NULL, 0, ses));
	show("add payload fault", add_key("user", "e", (char *)8, 4, ses));
	show("add null payload len", add_key("user", "e", NULL, 4, ses));
	show("add huge payload", add_key("user", "e", buf, 1 << 20, ses));
	char *big = calloc(1, 40000);
	show("add 32768 payload", add_key("user", "e", big, 32768, ses));
	show("add 32767 payload", add_key("user", "e32767", big, 32767, ses));
	show("add to key", add_key("user", "e", "a", 1, k1));
	show("add to ring 0", add_key("user", "e", "a", 1, 0));
	show("add to unknown", add_key("user", "e", "a", 1, 0x7ffffff0));
	show("add keyring payload", add_key("keyring", "r", "a", 1, ses));

	/* logon keys: description svc:name, never readable. */
	show("logon no colon", add_key("logon", "nocolon", "pw", 2, ses));
	show("logon leading colon", add_key("logon", ":x", "pw", 2, ses));
	long lg = add_key("logon", "svc:name", "pw", 2, ses);
	show("logon add", lg);
	describe("describe logon", lg);
	show("logon read", keyctl(11, lg, (long)buf, sizeof buf, 0));
	show("logon update", keyctl(2, lg, (long)"pw2", 3, 0));

	/* Keyrings: nested, link, unlink, search, clear. */
	long r1 = add_key("keyring", "ring1", NULL, 0, ses);
	show("add keyring", r1);
	describe("describe ring1", r1);
	long k2 = add_key("user", "k2", "two", 3, r1);
	show("add k2 in ring1", k2);
	showv("search k2 from session", keyctl(10, ses, (long)"user", (long)"k2", 0) == k2);
	show("search missing", keyctl(10, ses, (long)"user", (long)"nope", 0));
	show("search in key", keyctl(10, k1, (long)"user", (long)"k1", 0));
	show("search bad type", keyctl(10, ses, (long)"bogus", (long)"k2", 0));
	showv("search keyring type", keyctl(10, ses, (long)"keyring", (long)"ring1", 0) == r1);
	showv("request_key k2", request_key("user", "k2", NULL, 0) == k2);
	show("request_key missing", request_key("user", "missing", NULL, 0));
	show("request_key missing callout", request_key("user", "missing2", "info", 0));
	show("request_key bad type", request_key("bogus", "x", NULL, 0));
	show("request_key dot type", request_key(".x", "x", NULL, 0));
	show("request_key null desc", request_key("user", NULL, NULL, 0));
	show("link k2 to session", keyctl(8, k2, ses, 0, 0));
	showv("k2 in session", in_keyring(ses, k2));
	show("link ring to itself", keyctl(8, r1, r1, 0, 0));
	show("link session into ring1", keyctl(8, ses, r1, 0, 0));
	show("link into key", keyctl(8, k2, k1, 0, 0));
	show("unlink k2 from session", keyctl(9, k2, ses, 0, 0));
	showv("k2 in session after", in_keyring(ses, k2));
	show("unlink again", keyctl(9, k2, ses, 0, 0));
	show("unlink from key", keyctl(9, k2, k1, 0, 0));
	showv("read ring1 len", keyctl(11, r1, 0, 0, 0));
	show("clear ring1", keyctl(7, r1, 0, 0, 0));
	showv("read ring1 len cleared", keyctl(11, r1, 0, 0, 0));
	show("clear a key", keyctl(7, k1, 0, 0, 0));

	/* Permissions. */
	long k3 = add_key("user", "k3", "three", 5, ses);
	show("setperm bad bits", keyctl(5, k3, 0x40000000, 0, 0));
	show("setperm view only", keyctl(5, k3, 0x01010000, 0, 0));
	describe("describe k3", k3);
	show("read k3 no read perm", keyctl(11, k3, (long)buf, sizeof buf, 0));
	show("update k3 no write", keyctl(2, k3, (long)"x", 1, 0));
	show("setperm k3 no setattr", keyctl(5, k3, 0x3f010000, 0, 0));
	show("timeout k3 no setattr", keyctl(15, k3, 10, 0, 0));
	show("link k3 no link", keyctl(8, k3, r1, 0, 0));
	long k4 = add_key("user", "k4", "four", 4, ses);
	show("setperm k4 all", keyctl(5, k4, 0x3f3f3f3f, 0, 0));
	show("chown k4 same", keyctl(4, k4, -1, -1, 0));
	show("chown k4 uid 0", keyctl(4, k4, 0, -1, 0));
	show("chown k4 gid 0", keyctl(4, k4, -1, 0, 0));
	describe("describe k4", k4);

	/* Revoke, invalidate, timeouts. */
	show("revoke k4", keyctl(3, k4, 0, 0, 0));
	show("read revoked", keyctl(11, k4, (long)buf, sizeof buf, 0));
	show("describe revoked", keyctl(6, k4, (long)buf, sizeof buf, 0));
	show("revoke again", keyctl(3, k4, 0, 0, 0));
	show("update revoked", keyctl(2, k4, (long)"x", 1, 0));
	show("search revoked", keyctl(10, ses, (long)"user", (long)"k4", 0));
	show("unlink revoked", keyctl(9, k4, ses, 0, 0));
	long k5 = add_key("user", "k5", "five", 4, ses);
	show("invalidate k5", keyctl(21, k5, 0, 0, 0));
	show("describe invalidated", keyctl(6, k5, (long)buf, sizeof buf, 0));
	long k6 = add_key("user", "k6", "six", 3, ses);
	show("timeout k6 1000", keyctl(15, k6, 1000, 0, 0));
	show("timeout k6 0", keyctl(15, k6, 0, 0, 0));
	show("timeout k6 1", keyctl(15, k6, 1, 0, 0));
	long k7 = add_key("user", "k7-timed", "seven", 5, ses);
	keyctl(15, k7, 5400, 0, 0);
	long ids[] = {k1, k3, lg, r1, k7};
	proc_keys_lines(ids, 5);
	sleep(2);
	show("read expired", keyctl(11, k6, (long)buf, sizeof buf, 0));
	show("describe expired", keyctl(6, k6, (long)buf, sizeof buf, 0));
	show("search expired", keyctl(10, ses, (long)"user", (long)"k6", 0));

	/* Instantiation without authority; persistent; unsupported ops. */
	show("instantiate no auth", keyctl(12, k1, (long)"x", 1, 0));
	show("negate no auth", keyctl(13, k1, 10, 0, 0));
	show("reject no auth", keyctl(19, k1, 10, EKEYREJECTED, 0));
	show("assume authority 0", keyctl(16, 0, 0, 0, 0));
	show("assume authority k1", keyctl(16, k1, 0, 0, 0));
	showv("reqkey default", keyctl(14, -1, 0, 0, 0));
	showv("reqkey set session", keyctl(14, 3, 0, 0, 0));
	showv("reqkey get", keyctl(14, -1, 0, 0, 0));
	show("reqkey bad", keyctl(14, 9, 0, 0, 0));
	show("dh compute", keyctl(23, 0, 0, 0, 0));
	show("unknown op", keyctl(1000, 0, 0, 0, 0));
	memset(buf, 'x', sizeof buf);
	n = keyctl(17, k1, (long)buf, sizeof buf, 0);
	if (n < 0)
		printf("security: -1 %s\n", strerrorname_np(errno));
	else
		printf("security: %ld '%s'\n", n, buf);
	show("restrict bad type", keyctl(29, r1, (long)"nosuch", (long)"x", 0));
	show("restrict ring1", keyctl(29, r1, 0, 0, 0));
	show("restrict again", keyctl(29, r1, 0, 0, 0));
	show("add into restricted", add_key("user", "k7", "seven", 5, r1));
	show("link into restricted", keyctl(8, k1, r1, 0, 0));

	/* Move. */
	long r2 = add_key("keyring", "ring2", NULL, 0, ses);
	long k8 = add_key("user", "k8", "eight", 5, ses);
	show("move k8", keyctl(30, k8, ses, r2, 0));
	showv("k8 in ring2", in_keyring(r2, k8));
	showv("k8 in session", in_keyring(ses, k8));
	show("move bad flags", keyctl(30, k8, r2, ses, 2));
	long k8b = add_key("user", "k8", "eight", 5, ses);
	show("move excl", keyctl(30, k8, r2, ses, 1));
	showv("k8b differs", k8b != k8);

	/* fork: the child shares the session keyring, gets no thread or
	 * process keyring. */
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		showv("child session same", keyctl(0, KEY_SPEC_SESSION_KEYRING, 0, 0, 0) == ses);
		show("child thread keyring", keyctl(0, KEY_SPEC_THREAD_KEYRING, 0, 0, 0));
		show("child process keyring", keyctl(0, KEY_SPEC_PROCESS_KEYRING, 0, 0, 0));
		showv("child reads k1", keyctl(11, k1, (long)buf, sizeof buf, 0));
		long cs = keyctl(1, (long)"named-ses", 0, 0, 0);
		show("child joins named", cs);
		describe("child describe named", cs);
		fflush(stdout);
		_exit(0);
	}
	int st;
	waitpid(c, &st, 0);
	showv("parent session unchanged", keyctl(0, KEY_SPEC_SESSION_KEYRING, 0, 0, 0) == ses);

	/* Joining a named keyring twice gives the same one. */
	long a = keyctl(1, (long)"ruml-test-named", 0, 0, 0);
	long b = keyctl(1, (long)"ruml-test-named", 0, 0, 0);
	showv("named join same", a == b && a > 0);
	show("join empty name", keyctl(1, (long)"", 0, 0, 0));
	show("join fault", keyctl(1, 8, 0, 0, 0));

	/* /proc/keys shows a possessed key. */
	FILE *f = fopen("/proc/keys", "r");
	int seen = 0;
	char line[512];
	while (f && fgets(line, sizeof line, f)) {
		if (strstr(line, " ruml-test-named: empty"))
			seen = 1;
	}
	if (f)
		fclose(f);
	printf("proc keys shows named: %d\n", seen);
	f = fopen("/proc/key-users", "r");
	printf("proc key-users opens: %d\n", f != NULL);
	if (f)
		fclose(f);
	return 0;
}
