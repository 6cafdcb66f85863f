/* clone with CLONE_PIDFD, CLONE_PARENT_SETTID, CLONE_CHILD_SETTID and
 * CLONE_CHILD_CLEARTID at bad addresses: a pidfd that cannot be stored
 * fails the clone with EFAULT and leaves no child behind; the tid
 * addresses are ignored as Linux does (the child exists). Each child is
 * reaped, and then there is none left. */
#define _GNU_SOURCE
#include <stdio.h>
#include <signal.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
int main(void) {
    unsigned long fl[] = {0x1000, 0x100000, 0x1000000, 0x200000};
    void *bad[] = {(void*)1, (void*)0xffff800000000000UL, (void*)0x7ffffffff000UL};
    for (int i = 0; i < 4; i++) for (int b = 0; b < 3; b++) {
        unsigned long f = fl[i] | SIGCHLD;
        long r = syscall(SYS_clone, f, 0, bad[b], bad[b], 0);
        if (r == 0) _exit(0);
        int e = errno;
        int st; long w = waitpid(-1, &st, __WALL);
        long w2 = waitpid(-1, &st, __WALL | WNOHANG);
        printf("flags %#lx ptr %p: clone %s wait %s wait2 %ld\n", f, bad[b], r > 0 ? "child" : strerror(e), w > 0 ? "child" : strerror(errno), w2);
    }
    fflush(stdout);
    return 0;
}
