/* Namespaces (issue 10, item 2): unshare/setns of each type, /proc/PID/ns
 * files and their ioctls, user namespace id maps and their write rules,
 * PID namespaces (pid 1 inside, the /proc view, kill from outside, init's
 * death), mount namespaces, propagation, pivot_root, and hostile input.
 * Run as root, natively and under ruml; prints only what both must agree
 * on (no pids, no inode numbers). Prints "SKIP" and exits 0 when the host
 * refuses namespaces (a container without CAP_SYS_ADMIN). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>
#include <dirent.h>
#include <grp.h>
#include <sys/msg.h>
#include <netinet/in.h>
#include <sys/socket.h>

#ifndef NS_GET_USERNS
#define NSIO 0xb7
#define NS_GET_USERNS _IO(NSIO, 0x1)
#define NS_GET_PARENT _IO(NSIO, 0x2)
#define NS_GET_NSTYPE _IO(NSIO, 0x3)
#define NS_GET_OWNER_UID _IO(NSIO, 0x4)
#endif
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x80
#endif

static const char *en(int e) {
	switch (e) {
	case 0: return "OK";
	case EINVAL: return "EINVAL";
	case EPERM: return "EPERM";
	case EBUSY: return "EBUSY";
	case ENOENT: return "ENOENT";
	case ENOTDIR: return "ENOTDIR";
	case ESRCH: return "ESRCH";
	case EBADF: return "EBADF";
	case ENOTTY: return "ENOTTY";
	case EUSERS: return "EUSERS";
	case ENODEV: return "ENODEV";
	case EROFS: return "EROFS";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case E2BIG: return "E2BIG";
	default: return strerror(e);
	}
}

#define SHOW(label, expr) do { errno = 0; long r_ = (long)(expr); \
	printf("%s: %s\n", label, r_ < 0 ? en(errno) : "OK"); } while (0)

static int write_file(const char *path, const char *text) {
	int fd = open(path, O_WRONLY);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, text, strlen(text));
	int e = errno;
	close(fd);
	errno = e;
	return n < 0 ? -1 : 0;
}

static void read_file(const char *path, char *buf, size_t len) {
	buf[0] = 0;
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return;
	ssize_t n = read(fd, buf, len - 1);
	buf[n > 0 ? n : 0] = 0;
	close(fd);
}

/* The kind name of an ns link ("uts" of "uts:[4026531838]") and its number. */
static unsigned long ns_ino(const char *kind, char *name, size_t len) {
	char path[64], link[64];
	snprintf(path, sizeof path, "/proc/self/ns/%s", kind);
	ssize_t n = readlink(path, link, sizeof link - 1);
	if (n < 0) {
		snprintf(name, len, "readlink %s", en(errno));
		return 0;
	}
	link[n] = 0;
	char *c = strchr(link, ':');
	unsigned long ino = c ? strtoul(c + 2, NULL, 10) : 0;
	if (c)
		*c = 0;
	snprintf(name, len, "%s", link);
	return ino;
}

static int wait_code(pid_t p) {
	int st;
	if (waitpid(p, &st, 0) < 0)
		return -1;
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return WEXITSTATUS(st);
}

static void section(const char *s) {
	printf("== %s\n", s);
	fflush(stdout);
}

static void ns_files(void) {
	section("ns files");
	const char *kinds[] = {"cgroup", "ipc", "mnt", "net", "pid", "pid_for_children",
			       "time", "time_for_children", "user", "uts"};
	for (unsigned i = 0; i < sizeof kinds / sizeof *kinds; i++) {
		char name[64];
		unsigned long ino = ns_ino(kinds[i], name, sizeof name);
		printf("%s -> %s nonzero=%d\n", kinds[i], name, ino != 0);
	}
	int fd = open("/proc/self/ns/uts", O_RDONLY);
	struct stat st;
	char name[64];
	unsigned long ino = ns_ino("uts", name, sizeof name);
	fstat(fd, &st);
	printf("fstat ino matches link: %d\n", (unsigned long)st.st_ino == ino);
	printf("NSTYPE uts: %d\n", ioctl(fd, NS_GET_NSTYPE) == CLONE_NEWUTS);
	int u = ioctl(fd, NS_GET_USERNS);
	fstat(u, &st);
	printf("USERNS of uts is my user ns: %d\n",
	       (unsigned long)st.st_ino == ns_ino("user", name, sizeof name));
	uid_t owner = 1;
	SHOW("PARENT of initial user ns", ioctl(u, NS_GET_PARENT));
	SHOW("OWNER_UID of uts fd", ioctl(fd, NS_GET_OWNER_UID, &owner));
	SHOW("bad ns ioctl", ioctl(fd, NSIO << 8 | 0x77));
	close(u);
	close(fd);
	int p[2];
	pipe(p);
	SHOW("setns(pipe)", setns(p[0], 0));
	SHOW("setns(bad fd)", setns(999, 0));
	fd = open("/proc/self/ns/uts", O_RDONLY);
	SHOW("setns(uts, CLONE_NEWIPC)", setns(fd, CLONE_NEWIPC));
	SHOW("setns(uts, CLONE_NEWUTS)", setns(fd, CLONE_NEWUTS));
	close(fd);
	close(p[0]);
	close(p[1]);
	SHOW("unshare(bad flag 0x1)", unshare(0x1));
	SHOW("unshare(CLONE_NEWUSER|0x4000 VFORK)", unshare(CLONE_NEWUSER | 0x4000));
	SHOW("clone3-less clone(NEWPID|THREAD)", syscall(SYS_clone, CLONE_NEWPID | CLONE_THREAD | CLONE_SIGHAND | CLONE_VM, 0, 0, 0, 0));
	SHOW("clone(NEWUSER|FS)", syscall(SYS_clone, CLONE_NEWUSER | CLONE_FS | SIGCHLD, 0, 0, 0, 0));
}

static void uts(void) {
	section("uts");
	pid_t c = fork();
	if (c == 0) {
		char before[64], after[64];
		unsigned long b = ns_ino("uts", before, sizeof before);
		int saved = open("/proc/self/ns/uts", O_RDONLY);
		SHOW("unshare(CLONE_NEWUTS)", unshare(CLONE_NEWUTS));
		unsigned long a = ns_ino("uts", after, sizeof after);
		printf("new uts ns: %d\n", a != b);
		SHOW("sethostname", sethostname("inner-ns", 8));
		struct utsname u;
		uname(&u);
		printf("inner hostname: %s\n", u.nodename);
		SHOW("setns back", setns(saved, CLONE_NEWUTS));
		uname(&u);
		printf("after setns back: %s\n", strcmp(u.nodename, "inner-ns") ? "original" : "inner");
		printf("back in old ns: %d\n", ns_ino("uts", after, sizeof after) == b);
		fflush(stdout);
		_exit(0);
	}
	wait_code(c);
	struct utsname u;
	uname(&u);
	printf("parent hostname unchanged: %d\n", strcmp(u.nodename, "inner-ns") != 0);
}

static void userns(void) {
	section("user");
	int init = open("/proc/self/ns/user", O_RDONLY);
	pid_t c = fork();
	if (c == 0) {
		SHOW("unshare(CLONE_NEWUSER)", unshare(CLONE_NEWUSER));
		printf("uid before map: %d gid %d\n", (int)getuid(), (int)getgid());
		char buf[256];
		read_file("/proc/self/uid_map", buf, sizeof buf);
		printf("uid_map before: [%s]\n", buf);
		read_file("/proc/self/setgroups", buf, sizeof buf);
		printf("setgroups: %s", buf);
		SHOW("uid_map count 0", write_file("/proc/self/uid_map", "0 0 0\n"));
		SHOW("uid_map overlap", write_file("/proc/self/uid_map", "0 0 1\n0 5 1\n"));
		SHOW("uid_map lower overlap", write_file("/proc/self/uid_map", "0 0 2\n5 1 1\n"));
		SHOW("uid_map junk", write_file("/proc/self/uid_map", "zero 0 1\n"));
		SHOW("uid_map empty", write_file("/proc/self/uid_map", ""));
		char *many = malloc(400 * 16);
		many[0] = 0;
		for (int i = 0; i < 341; i++)
			sprintf(many + strlen(many), "%d %d 1\n", i, i);
		SHOW("uid_map 341 lines", write_file("/proc/self/uid_map", many));
		free(many);
		SHOW("uid_map two lines (needs CAP_SETUID in parent)",
		     write_file("/proc/self/uid_map", "0 0 1\n1 1 1\n"));
		SHOW("gid_map before setgroups deny", write_file("/proc/self/gid_map", "0 0 1\n"));
		SHOW("setgroups junk", write_file("/proc/self/setgroups", "maybe"));
		SHOW("uid_map own id", write_file("/proc/self/uid_map", "0 0 1\n"));
		SHOW("uid_map again", write_file("/proc/self/uid_map", "0 0 1\n"));
		SHOW("setgroups deny", write_file("/proc/self/setgroups", "deny"));
		SHOW("setgroups allow after deny", write_file("/proc/self/setgroups", "allow"));
		SHOW("gid_map own id", write_file("/proc/self/gid_map", "0 0 1\n"));
		read_file("/proc/self/uid_map", buf, sizeof buf);
		printf("uid_map: %s", buf);
		read_file("/proc/self/setgroups", buf, sizeof buf);
		printf("setgroups: %s", buf);
		printf("uid after map: %d gid %d euid %d\n", (int)getuid(), (int)getgid(), (int)geteuid());
		gid_t g = 0;
		SHOW("setgroups(2) denied", setgroups(1, &g));
		SHOW("setuid(5) unmapped", setuid(5));
		SHOW("setuid(0)", setuid(0));
		/* Privileged inside: a new UTS namespace and a hostname. */
		SHOW("unshare(NEWUTS) inside", unshare(CLONE_NEWUTS));
		SHOW("sethostname inside", sethostname("userns", 6));
		int fd = open("/proc/self/ns/user", O_RDONLY);
		uid_t owner = 99;
		SHOW("NS_GET_OWNER_UID", ioctl(fd, NS_GET_OWNER_UID, &owner));
		printf("owner uid: %d\n", (int)owner);
		int p = ioctl(fd, NS_GET_PARENT);
		printf("NS_GET_PARENT: %s\n", p >= 0 ? "fd" : en(errno));
		struct stat a, b;
		fstat(p, &a);
		fstat(init, &b);
		printf("parent is the initial user ns: %d\n", a.st_ino == b.st_ino);
		int uts = open("/proc/self/ns/uts", O_RDONLY);
		int o = ioctl(uts, NS_GET_USERNS);
		fstat(o, &a);
		fstat(fd, &b);
		printf("uts owned by new user ns: %d\n", a.st_ino == b.st_ino);
		/* Joining the parent user namespace needs privilege there. */
		SHOW("setns(initial user ns)", setns(init, CLONE_NEWUSER));
		fflush(stdout);
		_exit(0);
	}
	wait_code(c);
	close(init);
	/* A process cannot setns into its own user namespace. */
	int me = open("/proc/self/ns/user", O_RDONLY);
	SHOW("setns(own user ns)", setns(me, CLONE_NEWUSER));
	close(me);
}

static void pidns(void) {
	section("pid");
	int pfd[2];
	pipe(pfd);
	SHOW("unshare(CLONE_NEWPID)", unshare(CLONE_NEWPID));
	char a[64], b[64];
	printf("pid_for_children differs: %d\n", ns_ino("pid", a, sizeof a) != ns_ino("pid_for_children", b, sizeof b));
	pid_t c = fork();
	if (c == 0) {
		close(pfd[0]);
		printf("child getpid: %d getppid: %d\n", (int)getpid(), (int)getppid());
		fflush(stdout);
		/* A private /proc of this namespace in a new mount namespace. */
		if (unshare(CLONE_NEWNS) || mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
		    mount("proc", "/proc", "proc", 0, NULL)) {
			printf("proc mount: %s\n", en(errno));
			_exit(1);
		}
		int gfd[2];
		pipe(gfd);
		pid_t g = fork();
		if (g == 0) {
			printf("grandchild getpid: %d getppid: %d\n", (int)getpid(), (int)getppid());
			fflush(stdout);
			write(gfd[1], "g", 1);
			pause();
			_exit(0);
		}
		char gr;
		read(gfd[0], &gr, 1);
		DIR *d = opendir("/proc");
		int nums = 0, max = 0;
		struct dirent *e;
		while ((e = readdir(d))) {
			int n = atoi(e->d_name);
			if (n > 0) {
				nums++;
				if (n > max)
					max = n;
			}
		}
		closedir(d);
		printf("/proc pids: %d, max %d\n", nums, max);
		char link[32];
		ssize_t n = readlink("/proc/self", link, sizeof link - 1);
		link[n > 0 ? n : 0] = 0;
		printf("/proc/self -> %s\n", link);
		char st[512];
		read_file("/proc/2/stat", st, sizeof st);
		int pid = 0, ppid = 0;
		sscanf(st, "%d %*s %*c %d", &pid, &ppid);
		printf("/proc/2/stat pid %d ppid %d\n", pid, ppid);
		read_file("/proc/self/status", st, sizeof st);
		char *ns = strstr(st, "NSpid:");
		if (ns)
			*strchr(ns, '\n') = 0;
		printf("status %s\n", ns ? ns : "none");
		SHOW("kill(2, 0)", kill(2, 0));
		SHOW("kill(3, 0) none", kill(3, 0));
		/* Tell the parent the grandchild's pid (as the parent sees it
		 * it is unknown to us: send ours). Then wait to be killed. */
		write(pfd[1], "r", 1);
		fflush(stdout);
		pause();
		_exit(0);
	}
	close(pfd[1]);
	char r;
	read(pfd[0], &r, 1);
	printf("parent sees child pid > 1: %d\n", c > 1);
	SHOW("kill child from outside", kill(c, SIGKILL));
	printf("child status: %d\n", wait_code(c));
	/* The namespace's init died: it takes no new processes. */
	pid_t d = fork();
	if (d < 0)
		printf("fork into dead pid ns: %s\n", en(errno));
	else if (d == 0)
		_exit(0);
	else
		printf("fork into dead pid ns: OK?\n");
	close(pfd[0]);
}

static void mountns(const char *dir) {
	section("mnt");
	char path[512], sub[600];
	snprintf(path, sizeof path, "%s/m", dir);
	mkdir(path, 0755);
	int pfd[2], qfd[2];
	pipe(pfd);
	pipe(qfd);
	pid_t c = fork();
	if (c == 0) {
		SHOW("unshare(CLONE_NEWNS)", unshare(CLONE_NEWNS));
		SHOW("make / rprivate", mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL));
		SHOW("mount tmpfs", mount("tmpfs", path, "tmpfs", 0, NULL));
		snprintf(sub, sizeof sub, "%s/inside", path);
		close(open(sub, O_CREAT | O_WRONLY, 0644));
		printf("file inside: %d\n", access(sub, F_OK) == 0);
		fflush(stdout);
		write(pfd[1], "x", 1);
		char r;
		read(qfd[0], &r, 1);
		_exit(0);
	}
	char r;
	read(pfd[0], &r, 1);
	snprintf(sub, sizeof sub, "%s/inside", path);
	printf("parent sees the file: %d\n", access(sub, F_OK) == 0);
	/* setns into the child's mount namespace sees it. */
	char nspath[64];
	snprintf(nspath, sizeof nspath, "/proc/%d/ns/mnt", (int)c);
	int fd = open(nspath, O_RDONLY);
	pid_t j = fork();
	if (j == 0) {
		SHOW("setns(child mnt)", setns(fd, CLONE_NEWNS));
		printf("after setns sees the file: %d\n", access(sub, F_OK) == 0);
		fflush(stdout);
		_exit(0);
	}
	wait_code(j);
	close(fd);
	write(qfd[1], "x", 1);
	wait_code(c);
	rmdir(path);
}

static int mountinfo_has(const char *mnt, const char *tag) {
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char line[1024];
	int found = -1;
	while (fgets(line, sizeof line, f)) {
		char mp[512];
		if (sscanf(line, "%*d %*d %*s %*s %511s", mp) == 1 && strcmp(mp, mnt) == 0)
			found = strstr(line, tag) != NULL;
	}
	fclose(f);
	return found;
}

static void propagation(const char *dir) {
	section("propagation");
	pid_t c = fork();
	if (c == 0) {
		char a[512], b[512], p[600], q[600];
		snprintf(a, sizeof a, "%s/a", dir);
		snprintf(b, sizeof b, "%s/b", dir);
		mkdir(a, 0755);
		mkdir(b, 0755);
		SHOW("unshare(CLONE_NEWNS)", unshare(CLONE_NEWNS));
		SHOW("make / rprivate", mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL));
		SHOW("tmpfs on a", mount("tmpfs", a, "tmpfs", 0, NULL));
		SHOW("make a shared", mount("none", a, NULL, MS_SHARED, NULL));
		printf("a shared in mountinfo: %d\n", mountinfo_has(a, " shared:"));
		SHOW("bind a on b", mount(a, b, NULL, MS_BIND, NULL));
		printf("b shared in mountinfo: %d\n", mountinfo_has(b, " shared:"));
		snprintf(p, sizeof p, "%s/x", a);
		mkdir(p, 0755);
		SHOW("tmpfs on a/x", mount("tmpfs", p, "tmpfs", 0, NULL));
		snprintf(q, sizeof q, "%s/x", b);
		printf("b/x is a mount (propagated): %d\n", mountinfo_has(q, "") == 1);
		SHOW("make b slave", mount("none", b, NULL, MS_SLAVE, NULL));
		printf("b master in mountinfo: %d\n", mountinfo_has(b, " master:"));
		snprintf(p, sizeof p, "%s/y", a);
		mkdir(p, 0755);
		SHOW("tmpfs on a/y", mount("tmpfs", p, "tmpfs", 0, NULL));
		snprintf(q, sizeof q, "%s/y", b);
		printf("b/y is a mount (slave receives): %d\n", mountinfo_has(q, "") == 1);
		snprintf(q, sizeof q, "%s/z", b);
		mkdir(q, 0755);
		SHOW("tmpfs on b/z", mount("tmpfs", q, "tmpfs", 0, NULL));
		snprintf(p, sizeof p, "%s/z", a);
		printf("a/z is a mount (slave does not send): %d\n", mountinfo_has(p, "") == 1);
		SHOW("make a unbindable", mount("none", a, NULL, MS_UNBINDABLE, NULL));
		printf("a unbindable in mountinfo: %d\n", mountinfo_has(a, "unbindable"));
		SHOW("bind unbindable a", mount(a, q, NULL, MS_BIND, NULL));
		SHOW("two propagation types", mount("none", a, NULL, MS_SHARED | MS_PRIVATE, NULL));
		SHOW("propagation of a non-mount", mount("none", dir, NULL, MS_PRIVATE, NULL));
		fflush(stdout);
		_exit(0);
	}
	wait_code(c);
	char a[512];
	snprintf(a, sizeof a, "%s/a/x", dir);
	rmdir(a);
	snprintf(a, sizeof a, "%s/a/y", dir);
	rmdir(a);
	snprintf(a, sizeof a, "%s/a", dir);
	rmdir(a);
	snprintf(a, sizeof a, "%s/b/z", dir);
	rmdir(a);
	snprintf(a, sizeof a, "%s/b", dir);
	rmdir(a);
}

static void pivot(const char *dir) {
	section("pivot_root");
	pid_t c = fork();
	if (c == 0) {
		char nr[512], old[600], notmnt[600];
		snprintf(nr, sizeof nr, "%s/newroot", dir);
		mkdir(nr, 0755);
		SHOW("unshare(CLONE_NEWNS)", unshare(CLONE_NEWNS));
		SHOW("make / rprivate", mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL));
		snprintf(notmnt, sizeof notmnt, "%s", dir);
		snprintf(old, sizeof old, "%s/old", nr);
		SHOW("pivot_root(not a mount)", syscall(SYS_pivot_root, notmnt, "/"));
		SHOW("tmpfs on newroot", mount("tmpfs", nr, "tmpfs", 0, NULL));
		mkdir(old, 0755);
		SHOW("pivot_root(put_old outside)", syscall(SYS_pivot_root, nr, "/tmp"));
		SHOW("pivot_root(file)", syscall(SYS_pivot_root, "/etc/passwd", old));
		SHOW("pivot_root", syscall(SYS_pivot_root, nr, old));
		SHOW("chdir /", chdir("/"));
		printf("old root visible: %d\n", access("/old/etc/passwd", F_OK) == 0);
		SHOW("umount2(/old, MNT_DETACH)", umount2("/old", MNT_DETACH));
		printf("old root gone: %d\n", access("/old/etc/passwd", F_OK) != 0);
		char cwd[256];
		printf("cwd: %s\n", getcwd(cwd, sizeof cwd) ? cwd : en(errno));
		/* pivot_root(".", ".") as bwrap does. */
		mkdir("/nr2", 0755);
		SHOW("tmpfs on /nr2", mount("tmpfs", "/nr2", "tmpfs", 0, NULL));
		close(open("/nr2/marker", O_CREAT | O_WRONLY, 0644));
		SHOW("chdir /nr2", chdir("/nr2"));
		SHOW("pivot_root(., .)", syscall(SYS_pivot_root, ".", "."));
		SHOW("umount2(., MNT_DETACH)", umount2(".", MNT_DETACH));
		SHOW("chdir / again", chdir("/"));
		printf("marker at /: %d, old dir gone: %d\n", access("/marker", F_OK) == 0,
		       access("/nr2", F_OK) != 0);
		fflush(stdout);
		_exit(0);
	}
	wait_code(c);
	char nr[512];
	snprintf(nr, sizeof nr, "%s/newroot", dir);
	rmdir(nr);
}

static void mount_api(const char *dir) {
	section("new mount api");
	pid_t c = fork();
	if (c == 0) {
		char nm[512], nm2[512], f[600];
		snprintf(nm, sizeof nm, "%s/nm", dir);
		snprintf(nm2, sizeof nm2, "%s/nm2", dir);
		mkdir(nm, 0755);
		mkdir(nm2, 0755);
		SHOW("unshare(CLONE_NEWNS)", unshare(CLONE_NEWNS));
		SHOW("make / rprivate", mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL));
		SHOW("fsopen(nosuchfs)", syscall(SYS_fsopen, "nosuchfs", 0));
		SHOW("fsopen(bad flags)", syscall(SYS_fsopen, "tmpfs", 0x100));
		int fd = syscall(SYS_fsopen, "tmpfs", 0);
		printf("fsopen(tmpfs): %s\n", fd >= 0 ? "fd" : en(errno));
		int p[2];
		pipe(p);
		SHOW("fsconfig(pipe)", syscall(SYS_fsconfig, p[0], 1, "size", "1m", 0));
		SHOW("fsconfig(SET_STRING size)", syscall(SYS_fsconfig, fd, 1, "size", "1m", 0));
		SHOW("fsconfig(SET_STRING no value)", syscall(SYS_fsconfig, fd, 1, "size", NULL, 0));
		SHOW("fsconfig(bad cmd)", syscall(SYS_fsconfig, fd, 99, NULL, NULL, 0));
		SHOW("fsmount before create", syscall(SYS_fsmount, fd, 0, 0));
		SHOW("fsconfig(CMD_CREATE)", syscall(SYS_fsconfig, fd, 6, NULL, NULL, 0));
		SHOW("fsmount(bad flags)", syscall(SYS_fsmount, fd, 0x10, 0));
		int m = syscall(SYS_fsmount, fd, 0, 0);
		printf("fsmount: %s\n", m >= 0 ? "fd" : en(errno));
		SHOW("fsmount twice", syscall(SYS_fsmount, fd, 0, 0));
		int cf = openat(m, "file", O_CREAT | O_WRONLY, 0644);
		printf("create in detached mount: %s\n", cf >= 0 ? "OK" : en(errno));
		close(cf);
		SHOW("move_mount(bad flags)", syscall(SYS_move_mount, m, "", AT_FDCWD, nm, 0x1000));
		SHOW("move_mount", syscall(SYS_move_mount, m, "", AT_FDCWD, nm, 4));
		snprintf(f, sizeof f, "%s/file", nm);
		printf("file visible at target: %d\n", access(f, F_OK) == 0);
		int t = syscall(SYS_open_tree, AT_FDCWD, nm, 1);
		printf("open_tree(CLONE): %s\n", t >= 0 ? "fd" : en(errno));
		SHOW("open_tree(bad flags)", syscall(SYS_open_tree, AT_FDCWD, nm, 0x40));
		SHOW("move_mount clone", syscall(SYS_move_mount, t, "", AT_FDCWD, nm2, 4));
		snprintf(f, sizeof f, "%s/file", nm2);
		printf("file visible at clone: %d\n", access(f, F_OK) == 0);
		struct { unsigned long long set, clr, prop, userns; } attr = {1, 0, 0, 0};
		SHOW("mount_setattr(bad size)", syscall(SYS_mount_setattr, AT_FDCWD, nm2, 0, &attr, 8));
		SHOW("mount_setattr(RDONLY)", syscall(SYS_mount_setattr, AT_FDCWD, nm2, 0, &attr, sizeof attr));
		snprintf(f, sizeof f, "%s/new", nm2);
		cf = open(f, O_CREAT | O_WRONLY, 0644);
		printf("create on ro clone: %s\n", cf >= 0 ? "OK" : en(errno));
		attr.set = 0;
		attr.prop = MS_SHARED;
		SHOW("mount_setattr(shared)", syscall(SYS_mount_setattr, AT_FDCWD, nm, 0, &attr, sizeof attr));
		printf("nm shared in mountinfo: %d\n", mountinfo_has(nm, " shared:"));
		attr.prop = MS_SHARED | MS_SLAVE;
		SHOW("mount_setattr(two propagations)", syscall(SYS_mount_setattr, AT_FDCWD, nm, 0, &attr, sizeof attr));
		fflush(stdout);
		_exit(0);
	}
	wait_code(c);
	char a[512];
	snprintf(a, sizeof a, "%s/nm", dir);
	rmdir(a);
	snprintf(a, sizeof a, "%s/nm2", dir);
	rmdir(a);
}

static void others(void) {
	section("ipc cgroup time net");
	int q = msgget(0x5eed0a, IPC_CREAT | 0600);
	printf("parent msgget: %s\n", q >= 0 ? "OK" : en(errno));
	pid_t c = fork();
	if (c == 0) {
		char a[64], b[64];
		unsigned long i0 = ns_ino("ipc", a, sizeof a), c0 = ns_ino("cgroup", a, sizeof a);
		unsigned long t0 = ns_ino("time_for_children", a, sizeof a), n0 = ns_ino("net", a, sizeof a);
		SHOW("unshare(IPC|CGROUP|TIME|NET)", unshare(CLONE_NEWIPC | CLONE_NEWCGROUP | CLONE_NEWTIME | CLONE_NEWNET));
		printf("new ipc %d cgroup %d time_for_children %d net %d\n", ns_ino("ipc", b, sizeof b) != i0,
		       ns_ino("cgroup", b, sizeof b) != c0, ns_ino("time_for_children", b, sizeof b) != t0,
		       ns_ino("net", b, sizeof b) != n0);
		printf("time unchanged until a child: %d\n", ns_ino("time", b, sizeof b) != ns_ino("time_for_children", a, sizeof a));
		SHOW("msgget of the parent's key in a new ipc ns", msgget(0x5eed0a, 0));
		int mine = msgget(0x5eed0a, IPC_CREAT | IPC_EXCL | 0600);
		printf("same key created anew: %s\n", mine >= 0 ? "OK" : en(errno));
		int s = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(1), .sin_addr.s_addr = htonl(0x7f000001)};
		SHOW("connect 127.0.0.1 with lo down", connect(s, (struct sockaddr *)&sa, sizeof sa));
		close(s);
		fflush(stdout);
		_exit(0);
	}
	wait_code(c);
	SHOW("parent queue still there", msgget(0x5eed0a, 0));
	SHOW("remove it", msgctl(q, IPC_RMID, NULL));
}

int main(void) {
	setvbuf(stdout, NULL, _IOLBF, 0);
	pid_t probe = fork();
	if (probe == 0)
		_exit(unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID) == 0 ? 0 : 1);
	if (wait_code(probe) != 0) {
		printf("SKIP\n");
		return 0;
	}
	char dir[] = "/tmp/ruml-ns-XXXXXX";
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	ns_files();
	uts();
	userns();
	mountns(dir);
	propagation(dir);
	pivot(dir);
	mount_api(dir);
	others();
	pidns();
	rmdir(dir);
	printf("result: OK\n");
	return 0;
}
