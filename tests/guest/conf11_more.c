/* Small conformance fixes: epoll_ctl on descriptor 0 when it is /dev/null
 * (the tests' stdin: EPERM natively, so for ruml's console too), and
 * rt_sigqueueinfo/rt_tgsigqueueinfo naming pids in the caller's PID
 * namespace (a process that is pid 1 in a new namespace queues to itself). */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile int got;
static void on_usr1(int s, siginfo_t *si, void *u)
{
	(void)s;
	(void)u;
	got = si->si_value.sival_int;
}

int main(void)
{
	int ep = epoll_create1(0);
	struct epoll_event ev = {.events = EPOLLIN};
	int r = epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev);
	printf("epoll_ctl stdin (/dev/null): %d %s\n", r, r ? strerrorname_np(errno) : "-");
	fflush(stdout);
	if (unshare(CLONE_NEWPID) != 0) {
		printf("unshare: %s\n", strerrorname_np(errno));
		return 0;
	}
	pid_t c = fork();
	if (c == 0) {
		struct sigaction sa = {.sa_sigaction = on_usr1, .sa_flags = SA_SIGINFO};
		sigaction(SIGUSR1, &sa, NULL);
		siginfo_t si;
		memset(&si, 0, sizeof si);
		si.si_signo = SIGUSR1;
		si.si_code = SI_QUEUE;
		si.si_value.sival_int = 42;
		printf("child pid %d\n", getpid());
		long q = syscall(SYS_rt_sigqueueinfo, getpid(), SIGUSR1, &si);
		printf("rt_sigqueueinfo self: %ld %s got %d\n", q, q ? strerrorname_np(errno) : "-", got);
		si.si_value.sival_int = 43;
		q = syscall(SYS_rt_tgsigqueueinfo, getpid(), gettid(), SIGUSR1, &si);
		printf("rt_tgsigqueueinfo self: %ld %s got %d\n", q, q ? strerrorname_np(errno) : "-", got);
		/* SI_USER to oneself is allowed, to another pid it is EPERM. */
		si.si_code = SI_USER;
		q = syscall(SYS_rt_sigqueueinfo, getpid(), SIGUSR1, &si);
		printf("SI_USER self: %ld %s\n", q, q ? strerrorname_np(errno) : "-");
		q = syscall(SYS_rt_sigqueueinfo, 2, SIGUSR1, &si);
		printf("SI_USER other: %ld %s\n", q, q ? strerrorname_np(errno) : "-");
		si.si_code = SI_QUEUE;
		q = syscall(SYS_rt_sigqueueinfo, 77, SIGUSR1, &si);
		printf("missing pid: %ld %s\n", q, q ? strerrorname_np(errno) : "-");
		fflush(stdout);
		_exit(0);
	}
	int st;
	waitpid(c, &st, 0);
	printf("child exit %d\n", WEXITSTATUS(st));
	return 0;
}
