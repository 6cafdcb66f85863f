/* Key quotas (run as root in a fresh ruml instance, which it changes):
 * kernel.keys.root_maxkeys / root_maxbytes bound uid 0's keys, maxkeys /
 * maxbytes everybody else's; EDQUOT past them; /proc/key-users counts;
 * a key's bytes are its description, a NUL and its payload. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static long add_key(const char *t, const char *d, const void *p, size_t l, long r)
{
	return syscall(SYS_add_key, t, d, p, l, r);
}
static long keyctl(long op, long a, long b, long c, long d)
{
	return syscall(SYS_keyctl, op, a, b, c, d);
}
static void put(const char *path, const char *v)
{
	FILE *f = fopen(path, "w");
	if (!f || fputs(v, f) < 0 || fclose(f) != 0)
		printf("write %s: %s\n", path, strerrorname_np(errno));
}
static void user_line(int uid)
{
	char line[256], want[32];
	snprintf(want, sizeof want, "%5d:", uid);
	FILE *f = fopen("/proc/key-users", "r");
	while (f && fgets(line, sizeof line, f))
		if (strncmp(line, want, strlen(want)) == 0) {
			/* "uid: usage n/n qnkeys/maxkeys qnbytes/maxbytes" */
			char *p = strchr(line, '/');
			p = p ? strchr(p, ' ') : NULL;
			printf("key-users %d:%s", uid, p ? p : "?\n");
		}
	if (f)
		fclose(f);
}
static int fill(long ring, const char *prefix)
{
	char d[32];
	for (int i = 0; i < 100; i++) {
		snprintf(d, sizeof d, "%s%d", prefix, i);
		if (add_key("user", d, "x", 1, ring) < 0) {
			printf("%s: %d added, then %s\n", prefix, i, strerrorname_np(errno));
			return i;
		}
	}
	printf("%s: no limit\n", prefix);
	return 100;
}

int main(void)
{
	put("/proc/sys/kernel/keys/root_maxkeys", "5\n");
	put("/proc/sys/kernel/keys/root_maxbytes", "100\n");
	put("/proc/sys/kernel/keys/maxkeys", "3\n");
	put("/proc/sys/kernel/keys/maxbytes", "-1\n");
	long ses = keyctl(1, 0, 0, 0, 0); /* "_ses": 5 bytes */
	printf("joined: %d\n", ses > 0);
	char pay[200];
	memset(pay, 'p', sizeof pay);
	printf("92 bytes: %ld\n", add_key("user", "b", pay, 90, ses) > 0 ? 0L : -(long)errno);
	user_line(0);
	printf("5 more bytes: %s\n", add_key("user", "c", "abc", 3, ses) < 0 ? strerrorname_np(errno) : "ok");
	printf("update grows past: %s\n",
	       keyctl(2, keyctl(10, ses, (long)"user", (long)"b", 0), (long)pay, 100, 0) < 0
		       ? strerrorname_np(errno)
		       : "ok");
	put("/proc/sys/kernel/keys/root_maxbytes", "100000\n");
	fill(ses, "r");
	user_line(0);
	/* Dropping the session keyring gives its keys' quota back. */
	put("/proc/sys/kernel/keys/root_maxkeys", "100\n");
	printf("rejoined: %d\n", keyctl(1, 0, 0, 0, 0) > 0);
	user_line(0);
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		if (setresgid(1000, 1000, 1000) || setresuid(1000, 1000, 1000)) {
			perror("setresuid");
			_exit(1);
		}
		long s = keyctl(1, 0, 0, 0, 0);
		printf("user joined: %d\n", s > 0);
		fill(s, "u");
		user_line(1000);
		char buf[128];
		long n = keyctl(6, s, (long)buf, sizeof buf, 0);
		printf("describe: %ld %s\n", n, n > 0 ? buf : "");
		/* Another user's key: no permission without possession. */
		fflush(stdout);
		_exit(0);
	}
	int st;
	waitpid(c, &st, 0);
	printf("child status %d\n", WEXITSTATUS(st));
	return 0;
}
